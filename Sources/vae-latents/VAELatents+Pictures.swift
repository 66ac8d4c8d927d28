import Foundation
import FrameExport
import LessonKit
import StableDiffusion
import TensorCore

/// The pictures of lesson 3, drawn from numbers computed in `LessonKit`.
extension VAELatents {
    /// Stage 3: the picture cut into the patches that become one latent position each, beside
    /// the picture with each patch replaced by its average colour: the resolution the UNet works at.
    func patchPicture(_ picture: RGBImage, factor: Int, channels: Int) -> RGBImage {
        let zoom = RGBImage.zoom(width: picture.width, height: picture.height, toAtLeast: 512)
        let (width, height) = (picture.width * zoom, picture.height * zoom)
        var grid = picture.resized(width: width, height: height, filter: .nearest)
        let cell = factor * zoom, line = RGBColor(hex: 0xF2F2F2)
        for x in stride(from: 0, to: width, by: cell) { grid.fillRectangle(x: x, y: 0, width: 1, height: height, color: line) }
        for y in stride(from: 0, to: height, by: cell) { grid.fillRectangle(x: 0, y: y, width: width, height: 1, color: line) }
        let (h, w) = (picture.height / factor, picture.width / factor)
        let averaged = picture.patchAverages(factor: factor).resized(width: width, height: height, filter: .nearest)
        return RGBImage.sideBySide([grid, averaged], labels: [
            "\(picture.width)x\(picture.height) pixels: each square is \(factor)x\(factor)x3 = \(factor * factor * 3) numbers",
            "\(w)x\(h) positions: the VAE keeps \(channels) numbers per square (shown: its average colour)",
        ], title: "what the encoder squeezes: one latent position per \(factor)x\(factor) patch, "
            + "\(factor * factor * 3 / channels)x fewer numbers")
    }

    /// Stage 4: each latent channel coloured over its own range, and all four mixed to RGB.
    func channelPicture(_ encoding: LatentEncoding, preview: LatentPreview, shown: (RGBImage) -> RGBImage) -> RGBImage {
        let z = encoding.latents, (h, w) = (z.shape[2], z.shape[3])
        var tiles: [RGBImage] = [], labels: [String] = []
        for (c, (channel, stats)) in zip(LatentChannels.split(z), encoding.channels).enumerated() {
            tiles.append(shown(RGBImage(heatmap: channel.reshaped([h, w]), colorMap: .viridis)))
            labels.append(String(format: "channel %d: %+.2f .. %+.2f", c, stats.min, stats.max))
        }
        tiles.append(shown(RGBImage(tensor: preview.rgb(z))))
        labels.append("channels 0-3 mixed to RGB")
        return RGBImage.grid(tiles, columns: 5, labels: labels,
                             title: String(format: "z = %g * encoder mean, ", encoding.scalingFactor) + "\(w)x\(h)x4; each channel coloured over its own range")
    }

    /// Stage 5: the original, its reconstruction and where they differ.
    func reconstructionPicture(_ clean: RGBImage, decoded: Tensor, difference: Tensor, psnr: Double, worst: Float,
                               latentSize: (width: Int, height: Int), shown: (RGBImage) -> RGBImage) -> RGBImage {
        let size = "\(clean.width)x\(clean.height)x3"
        return RGBImage.sideBySide([
            shown(clean), shown(RGBImage(tensor: decoded)),
            shown(RGBImage(heatmap: difference, colorMap: .magma, range: 0...max(worst, 1e-6))),
        ], labels: ["original x", String(format: "decode(encode(x)): PSNR %.1f dB", psnr),
                    String(format: "|difference|: black 0, white %.0f%%", 100 * worst)],
           title: "through the VAE and back: \(size) -> \(latentSize.width)x\(latentSize.height)x4 -> \(size)")
    }

    /// Stage 7: the noisy pixels on top, the decoded noisy latents below, one column per t.
    func noiseGrid(_ rows: [LatentNoiseRow], shown: (RGBImage) -> RGBImage) -> RGBImage {
        let tiles = rows.map { shown(RGBImage(tensor: $0.noisyPixels)) } + rows.map { shown(RGBImage(tensor: $0.decodedNoisyLatents)) }
        let labels = rows.map { String(format: "pixels, t=%d", $0.timestep) }
            + rows.map { String(format: "latents, t=%d, decoded", $0.timestep) }
        return RGBImage.grid(tiles, columns: rows.count, labels: labels,
                             title: "same t, same formula: top on pixels, bottom in latent space (decoded)")
    }

    /// The last stage: two pairs of bars on a logarithmic scale, arithmetic and activation memory per step.
    func costChart(latent: UNetCost, pixel: UNetCost) -> RGBImage {
        let width = 760, barLeft = 230, barRight = width - 150, rowHeight = 34
        let font = BitmapFont.forImageWidth(width)
        var image = RGBImage(width: width, height: 350, color: RGBColor(hex: 0x1B1B1F))
        let text = RGBColor(hex: 0xF2F2F2), latentColour = RGBColor(hex: 0x4CB07A), pixelColour = RGBColor(hex: 0xE0604A)
        let attentionColour = RGBColor(hex: 0xF2B8A8)
        image.drawText("one UNet step with guidance (batch 2); linear scale: the lengths are in the true ratio",
                       x: 16, y: 12, font: font, color: text)
        // (title, latent value, pixel value, the pixel value's self-attention part, format)
        let groups: [(String, Double, Double, Double?, (Double) -> String)] = [
            ("arithmetic", latent.gflop * 1e9, pixel.gflop * 1e9, pixel.selfAttentionGFLOP * 1e9, { Format.flops(gflop: $0 / 1e9) }),
            ("activation memory (float32)", latent.totalBytes, pixel.totalBytes, nil, Format.bytes),
        ]
        var y = 50
        for (title, a, b, attention, format) in groups {
            image.drawText(title + String(format: ": %.0fx", b / a), x: 16, y: y, font: font, color: text)
            y += rowHeight
            let scale = Double(barRight - barLeft) / b
            for (label, value, colour) in [("64x64 latents", a, latentColour), ("512x512 pixels", b, pixelColour)] {
                let length = max(2, Int(value * scale))
                image.drawText(label, x: 32, y: y + 6, font: font, color: text)
                image.fillRectangle(x: barLeft, y: y, width: length, height: rowHeight - 10, color: colour)
                if value == b, let attention {
                    // The part of the pixel bar that is self-attention, which real pixel models avoid.
                    let part = Int(attention * scale)
                    image.fillRectangle(x: barLeft + length - part, y: y, width: part, height: rowHeight - 10, color: attentionColour)
                }
                image.drawText(format(value), x: barLeft + length + 8, y: y + 6, font: font, color: text)
                y += rowHeight
            }
            if let attention {
                image.drawText(String(format: "light part: self-attention, %.0f%% of the pixel figure", 100 * attention / b),
                               x: barLeft, y: y, font: font, color: attentionColour)
                y += rowHeight - 10
            }
            y += 18
        }
        image.drawText("(a bar is at least 2 pixels wide, so the latent ones can be seen at all)", x: 16, y: y,
                       font: font, color: text)
        return image
    }
}
