/// How `RGBImage.resized(width:height:filter:)` computes new pixels.
public enum ResizeFilter: Sendable {
    /// Smooth: a triangle (tent) filter, widened when shrinking so that every source pixel
    /// contributes (the "antialiased bilinear" of Pillow). Good for photos and thumbnails.
    case bilinear
    /// Blocky: each output pixel copies the closest source pixel. Good for enlarging tiny
    /// pictures such as a 64x64 latent so that every value stays a visible square.
    case nearest
}

extension RGBImage {
    /// A copy scaled to `width` x `height` (the aspect ratio may change).
    ///
    /// Bilinear resizing is separable: rows are resampled first, then columns, each with the
    /// weights from `resampleWeights`. Sums are kept in `Float` and rounded once at the end.
    ///
    /// ```swift
    /// let preview = image.resized(width: 128, height: 128)
    /// let blocky = latentPicture.resized(width: 512, height: 512, filter: .nearest)
    /// ```
    public func resized(width newWidth: Int, height newHeight: Int, filter: ResizeFilter = .bilinear) -> RGBImage {
        precondition(newWidth > 0 && newHeight > 0, "cannot resize to \(newWidth)x\(newHeight)")
        precondition(width > 0 && height > 0, "cannot resize an empty image")
        if newWidth == width && newHeight == height { return self }
        switch filter {
        case .nearest: return resizedNearest(newWidth, newHeight)
        case .bilinear: return resizedBilinear(newWidth, newHeight)
        }
    }

    /// Shrinks each side down to a multiple of `multiple` (8 by default), as diffusers does
    /// before encoding a picture: the VAE halves the size three times, so 8 must divide it.
    ///
    /// A 513x771 photo becomes 512x768. The image is scaled, not cropped, so nothing is cut off.
    public func resizedToMultiple(of multiple: Int = 8) -> RGBImage {
        precondition(multiple > 0, "multiple must be positive")
        let newWidth = max(multiple, width - width % multiple)
        let newHeight = max(multiple, height - height % multiple)
        return resized(width: newWidth, height: newHeight)
    }

    /// A copy whose longer side is at most `maxSide`, keeping the aspect ratio.
    ///
    /// Images that already fit are returned unchanged: a thumbnail never enlarges.
    public func thumbnail(maxSide: Int) -> RGBImage {
        precondition(maxSide > 0, "maxSide must be positive")
        let longest = max(width, height)
        guard longest > maxSide else { return self }
        let scale = Double(maxSide) / Double(longest)
        return resized(width: max(1, Int((Double(width) * scale).rounded())),
                       height: max(1, Int((Double(height) * scale).rounded())))
    }

    /// Scales the image to cover `width` x `height`, then cuts off what sticks out on either side.
    ///
    /// This is how a photo of any shape is turned into the square 512x512 input SD 1.x expects,
    /// without stretching it.
    public func aspectFilled(width targetWidth: Int, height targetHeight: Int) -> RGBImage {
        let scale = max(Double(targetWidth) / Double(width), Double(targetHeight) / Double(height))
        let scaled = resized(width: max(targetWidth, Int((Double(width) * scale).rounded())),
                             height: max(targetHeight, Int((Double(height) * scale).rounded())))
        return scaled.cropped(x: (scaled.width - targetWidth) / 2, y: (scaled.height - targetHeight) / 2,
                              width: targetWidth, height: targetHeight)
    }

    /// The rectangle with top-left corner `(x, y)`; it must lie inside the image.
    public func cropped(x: Int, y: Int, width cropWidth: Int, height cropHeight: Int) -> RGBImage {
        precondition(x >= 0 && y >= 0 && cropWidth >= 0 && cropHeight >= 0
                     && x + cropWidth <= width && y + cropHeight <= height,
                     "crop (\(x), \(y), \(cropWidth)x\(cropHeight)) is outside a \(width)x\(height) image")
        var out = [UInt8]()
        out.reserveCapacity(cropWidth * cropHeight * 3)
        for row in y..<(y + cropHeight) {
            let start = (row * width + x) * 3
            out.append(contentsOf: pixels[start..<(start + cropWidth * 3)])
        }
        return RGBImage(width: cropWidth, height: cropHeight, pixels: out)
    }

    // MARK: - Implementation

    private func resizedNearest(_ newWidth: Int, _ newHeight: Int) -> RGBImage {
        // Output pixel i covers source coordinates around (i + 0.5) * scale; take the pixel there.
        func sources(_ from: Int, _ to: Int) -> [Int] {
            let scale = Double(from) / Double(to)
            return (0..<to).map { min(from - 1, Int((Double($0) + 0.5) * scale)) }
        }
        let xs = sources(width, newWidth), ys = sources(height, newHeight)
        var out = [UInt8](repeating: 0, count: newWidth * newHeight * 3)
        for (y, sy) in ys.enumerated() {
            for (x, sx) in xs.enumerated() {
                let s = (sy * width + sx) * 3, d = (y * newWidth + x) * 3
                out[d] = pixels[s]; out[d + 1] = pixels[s + 1]; out[d + 2] = pixels[s + 2]
            }
        }
        return RGBImage(width: newWidth, height: newHeight, pixels: out)
    }

    private func resizedBilinear(_ newWidth: Int, _ newHeight: Int) -> RGBImage {
        let columns = Self.resampleWeights(from: width, to: newWidth)
        let rows = Self.resampleWeights(from: height, to: newHeight)

        // Pass 1: resample every source row horizontally -> newWidth x height floats.
        var horizontal = [Float](repeating: 0, count: newWidth * height * 3)
        for y in 0..<height {
            for (x, taps) in columns.enumerated() {
                var sum: (Float, Float, Float) = (0, 0, 0)
                for (k, weight) in taps.weights.enumerated() {
                    let s = (y * width + taps.first + k) * 3
                    sum.0 += weight * Float(pixels[s])
                    sum.1 += weight * Float(pixels[s + 1])
                    sum.2 += weight * Float(pixels[s + 2])
                }
                let d = (y * newWidth + x) * 3
                horizontal[d] = sum.0; horizontal[d + 1] = sum.1; horizontal[d + 2] = sum.2
            }
        }

        // Pass 2: resample those columns vertically -> newWidth x newHeight bytes.
        var out = [UInt8](repeating: 0, count: newWidth * newHeight * 3)
        for (y, taps) in rows.enumerated() {
            for x in 0..<newWidth {
                for channel in 0..<3 {
                    var sum: Float = 0
                    for (k, weight) in taps.weights.enumerated() {
                        sum += weight * horizontal[((taps.first + k) * newWidth + x) * 3 + channel]
                    }
                    out[(y * newWidth + x) * 3 + channel] = UInt8(min(max(sum.rounded(), 0), 255))
                }
            }
        }
        return RGBImage(width: newWidth, height: newHeight, pixels: out)
    }

    /// For each output position along one axis: the first source index it reads and the weights
    /// of the consecutive source pixels from there on (they sum to 1).
    ///
    /// Output pixel `i` is centred at source coordinate `c = (i + 0.5) * scale`, with
    /// `scale = from / to`. Source pixel `s` (centred at `s + 0.5`) gets the tent weight
    /// `max(0, 1 - |s + 0.5 - c| / support)`. When enlarging, `support = 1`: plain bilinear
    /// interpolation between the two nearest pixels. When shrinking, `support = scale`, so the
    /// tent spans every source pixel that falls under the output pixel; without that, most source
    /// pixels would be skipped and thin lines and noise would alias into jagged patterns.
    static func resampleWeights(from: Int, to: Int) -> [(first: Int, weights: [Float])] {
        let scale = Double(from) / Double(to)
        let support = max(scale, 1)
        return (0..<to).map { i in
            let center = (Double(i) + 0.5) * scale
            let first = max(0, Int((center - support).rounded(.down)))
            let last = min(from - 1, Int((center + support).rounded(.up)))
            var weights = (first...last).map { s in
                Float(max(0, 1 - abs(Double(s) + 0.5 - center) / support))
            }
            let total = weights.reduce(0, +)
            weights = weights.map { $0 / total }
            return (first, weights)
        }
    }
}
