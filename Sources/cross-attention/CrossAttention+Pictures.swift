import Foundation
import FrameExport
import LessonKit
import StableDiffusion
import TensorCore

/// The pictures and tables of lesson 4's first three stages.
extension CrossAttention {
    /// The `(77, D)` embedding as a heat strip, one band per token, with the bands named on the left.
    func embeddingPicture(_ embedding: Tensor, tokens: TokenizedPrompt) -> RGBImage {
        let rowHeight = 6, margin = 120, d = embedding.shape[1]
        let strip = RGBImage(heatmap: embedding, colorMap: .viridis, range: -2...2)
            .resized(width: max(d, 768), height: CLIPTokenizer.contextLength * rowHeight, filter: .nearest)
        var picture = RGBImage(width: margin + strip.width, height: strip.height + 8, color: RGBColor(hex: 0x1B1B1F))
        picture.paste(strip, x: margin, y: 4)
        // Each group of rows gets a bracket and a name, placed top to bottom without overlapping.
        let font = BitmapFont(.small), white = RGBColor(hex: 0xF2F2F2)
        let groups = [("start", 0..<1), ("\(tokens.tokens.count) tokens", 1..<tokens.endPosition),
                      ("end", tokens.endPosition..<(tokens.endPosition + 1)),
                      ("padding", (tokens.endPosition + 1)..<CLIPTokenizer.contextLength)].filter { !$0.1.isEmpty }
        var free = 0
        for (name, rows) in groups {
            let top = 4 + rows.lowerBound * rowHeight, bottom = 4 + rows.upperBound * rowHeight
            picture.fillRectangle(x: margin - 6, y: top + 1, width: 3, height: max(1, bottom - top - 2), color: white)
            let y = max(free, (top + bottom) / 2 - font.characterHeight / 2)
            picture.drawText(name, x: margin - 10 - font.width(of: name), y: y, font: font, color: white)
            free = y + font.lineHeight
        }
        return picture.captioned("the text embedding: \(CLIPTokenizer.contextLength) rows (one per token) x \(d) numbers; "
                                 + "colour -2 (purple) to +2 (yellow)")
    }

    /// The toy's scene, each word's attention map, and what attention paints, side by side.
    func toyPicture() -> RGBImage {
        let size = ToyAttention.size, words = ToyAttention.words
        func enlarge(_ image: RGBImage) -> RGBImage { image.resized(width: 160, height: 160, filter: .nearest) }
        let scene = ToyAttention.mix(ToyAttention.coverage(), ToyAttention.regionColours)          // (T, 3)
        let (output, probabilities) = ToyAttention.wholePicture()
        var tiles = [enlarge(RGBImage(tensor: ToyAttention.asPicture(scene)))]
        var labels = ["the picture (queries)"]
        for (w, word) in words.enumerated() {
            let column = (0..<(size * size)).map { probabilities[$0 * words.count + w] }
            tiles.append(enlarge(RGBImage(heatmap: column, width: size, height: size, colorMap: .magma, range: 0...1)))
            labels.append("attention to \"\(word)\"")
        }
        tiles.append(enlarge(RGBImage(tensor: ToyAttention.asPicture(output.reshaped([size * size, 3])))))
        labels.append("output: p x V")
        return RGBImage.grid(tiles, columns: tiles.count, labels: labels,
                             title: "softmax(Q K^T / sqrt(4)) V on a 16x16 toy: black = 0, yellow = 1")
    }

    /// "(2, 0, 0, 1)": a vector's numbers in `format`.
    func vector(_ values: [Float], format: String) -> String {
        "(" + values.map { String(format: format, $0) }.joined(separator: ", ") + ")"
    }

    /// A (regions, words) matrix with labels.
    func table(_ title: String, _ matrix: Tensor, narrator: Narrator) {
        narrator.show(title)
        narrator.show("".padded(to: 9) + ToyAttention.words.map { $0.padded(to: 9) }.joined())
        for i in 0..<matrix.shape[0] {
            narrator.show(ToyAttention.regions[i].padded(to: 9)
                          + (0..<matrix.shape[1]).map { String(format: "%-9.2f", matrix[i, $0]) }.joined())
        }
    }
}
