import Foundation
import FrameExport
import LessonKit
import StableDiffusion

/// The pictures, animation and CSV file of the watched generations.
extension WatchedGeneration {
    /// How many tokens the animation shows (the first 11 at most, so a frame stays readable).
    static func animatedTokenCount(_ tokens: Int) -> Int { min(tokens, 11) }

    /// Stage 5: one token's map alone and as a light over the picture, with the token in the PNG's text.
    func saveWordPanel(_ token: PromptToken, position: Int, share: Float, map: RGBImage, lit: RGBImage) throws {
        let name = String(format: "%02d-%@.png", position, Self.fileName(for: token.text))
        out.parameters.append(("token", token.description))
        defer { out.parameters.removeLast() }
        let panel = RGBImage.sideBySide([tile(map, side: 384), tile(lit, side: 384)],
                                        labels: ["attention map (black 0, yellow 1)", "the picture, lit where the map is bright"],
                                        title: String(format: "\"%@\" (token %d): %.2f%% of the attention",
                                                      token.description, position, 100 * share))
        try out.save(panel, as: name)
    }

    /// Stage 6: per step, the x₀ estimate and each word's map of that step.
    func stepAnimation(_ watched: Watched) -> AnimatedGIF {
        let maps = watched.maps
        let shown = Array(tokens.tokens.enumerated().prefix(Self.animatedTokenCount(tokens.tokens.count)))
        var animation = AnimatedGIF()
        for (step, preview) in zip(maps.steps, watched.previews) {
            var tiles = [tile(preview, side: 160)], labels = ["x0 estimate"]
            for (k, token) in shown {
                tiles.append(tile(heatmap(AttentionMaps.scaledToUnit(step.maps[k]), of: maps), side: 160))
                labels.append(String(format: "%@ %.1f%%", token.description, 100 * step.tokenShares[k]))
            }
            // At most 6 across, with the rows as evenly filled as possible.
            let rows = (tiles.count + 5) / 6
            let frame = RGBImage.grid(tiles, columns: (tiles.count + rows - 1) / rows, labels: labels,
                                      title: String(format: "step %d/%d   t = %.0f", step.index + 1, maps.steps.count, step.timestep))
            animation.addFrame(frame, delay: step.index == maps.steps.count - 1 ? 200 : 40)
        }
        return animation
    }

    /// A 0...1 latent-size map in the magma colours.
    func heatmap(_ map: [Float], of maps: AttentionMaps) -> RGBImage {
        RGBImage(heatmap: map, width: maps.latentWidth, height: maps.latentHeight, colorMap: .magma, range: 0...1)
    }

    /// The picture lit by a 0...1 latent-size map (see `RGBImage.spotlit`).
    func spotlight(_ image: RGBImage, _ map: [Float]) -> RGBImage {
        image.spotlit(by: map, mapHeight: drawing.height / 8, mapWidth: drawing.width / 8)
    }

    /// A picture scaled so that its longer side is `side` pixels.
    func tile(_ image: RGBImage, side: Int = 256) -> RGBImage {
        let scale = Double(side) / Double(max(image.width, image.height))
        return image.resized(width: max(1, Int((Double(image.width) * scale).rounded())),
                             height: max(1, Int((Double(image.height) * scale).rounded())))
    }

    /// The attention numbers of the main run, one row per step and token.
    func csv(_ maps: AttentionMaps) -> String {
        var lines = ["step,timestep,position,token,mean_attention"]
        for step in maps.steps {
            let prefix = String(format: "%d,%.0f", step.index + 1, step.timestep)
            lines.append(prefix + String(format: ",0,<start>,%.6f", step.startShare))
            for (k, token) in tokens.tokens.enumerated() {
                lines.append(prefix + String(format: ",%d,%@,%.6f", k + 1, Self.csvField(token.description), step.tokenShares[k]))
            }
            lines.append(prefix + String(format: ",%d,<end>+padding,%.6f", tokens.endPosition, step.endShare))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A CSV field, quoted when it holds a comma, a quote or a line break.
    static func csvField(_ text: String) -> String {
        text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" })
            ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
    }

    /// A token's text made safe for a file name: "apple" stays, "," becomes "comma", "é" → "token".
    static func fileName(for text: String) -> String {
        let named: [String: String] = [",": "comma", ".": "period", "!": "exclamation", "?": "question", "-": "hyphen"]
        if let name = named[text] { return name }
        let kept = String(text.lowercased().unicodeScalars.filter { ("a"..."z").contains($0) || ("0"..."9").contains($0) }
            .map(Character.init))
        return kept.isEmpty ? "token" : String(kept.prefix(40))
    }
}
