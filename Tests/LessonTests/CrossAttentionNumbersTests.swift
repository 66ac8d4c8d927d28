import Foundation
import FrameExport
import LessonKit
import StableDiffusion
import Testing
import TensorCore

/// Lesson 4's numbers: the toy worked by hand, the attention maps collected from a UNet, and the
/// measurements of words, embeddings and pictures.
@Suite("Lesson 4: the numbers cross-attention computes")
struct CrossAttentionNumbersTests {
    @Test("the toy by hand: scores q·k/√4, softmax rows, and p·V, recomputed here")
    func toyByHand() {
        let (scores, p, output) = ToyAttention.byHand()
        // A region's query against a word's key, divided by √d = 2.
        for i in 0..<4 {
            for j in 0..<4 {
                let dot = zip(ToyAttention.regionQueries[i], ToyAttention.wordKeys[j]).map { $0 * $1 }.reduce(0, +)
                #expect(scores[i, j] == dot / 2)
            }
        }
        // Sky: scores (1, 2, 0, 0), so p = (e, e², 1, 1) / (e + e² + 2): 0.22 to <start>, 0.61 to "sky".
        let e = exp(1.0), total = e + e * e + 2
        #expect(abs(Double(p[0, 0]) - e / total) < 1e-6 && abs(Double(p[0, 1]) - e * e / total) < 1e-6)
        #expect(String(format: "%.2f %.2f", p[0, 1], p[0, 0]) == "0.61 0.22")
        // House: scores (1, 0, 0, 0): e/(e + 3) to <start>, 1/(e + 3) to each word.
        #expect(abs(Double(p[3, 0]) - e / (e + 3)) < 1e-6 && abs(Double(p[3, 1]) - 1 / (e + 3)) < 1e-6)
        for i in 0..<4 {
            #expect(abs((0..<4).map { p[i, $0] }.reduce(0, +) - 1) < 1e-6)
            for c in 0..<3 {
                let mixed = (0..<4).map { p[i, $0] * ToyAttention.wordValues[$0][c] }.reduce(0, +)
                #expect(abs(output[i, c] - mixed) < 1e-6)
            }
        }
    }

    @Test("the toy's 256 pixels: rows sum to one, pure pixels match the table, borders mix regions")
    func toyWholePicture() {
        let (output, probabilities) = ToyAttention.wholePicture()
        let words = ToyAttention.words.count, pixels = ToyAttention.size * ToyAttention.size
        #expect(output.shape == [1, pixels, 3])
        for pixel in [0, 100, 255] {
            #expect(abs(probabilities[(pixel * words)..<((pixel + 1) * words)].reduce(0, +) - 1) < 1e-5)
        }
        #expect(ToyAttention.wholePictureDifference() < 1e-6)
        // A border pixel is one whose 4x4 sample points do not all fall in one region.
        var borders = 0
        for pixel in 0..<pixels {
            var seen = Set<Int>()
            for sy in 0..<4 {
                for sx in 0..<4 {
                    seen.insert(ToyAttention.region((Double(pixel % 16) + (Double(sx) + 0.5) / 4) / 16,
                                                    (Double(pixel / 16) + (Double(sy) + 0.5) / 4) / 16))
                }
            }
            if seen.count > 1 { borders += 1 }
        }
        #expect(ToyAttention.borderPixelCount == borders)
        #expect(borders > 0 && borders < pixels)
    }

    /// Feeds `maps` one layer's probabilities `(rows, 5)` for one head: <start>, 2 words, <end>, padding.
    static func observe(_ maps: AttentionMaps, layer: String, head: Int, _ rows: [[Float]]) {
        let flat = rows.flatMap { $0 }
        flat.withUnsafeBufferPointer { maps.observe(layer: layer, batch: 0, head: head, rows: 0..<rows.count, probabilities: $0) }
    }

    @Test("attention maps: shares averaged over pixels, heads and layers; maps stretched to the latent size")
    func attentionMaps() {
        let maps = AttentionMaps(latentHeight: 2, latentWidth: 2, tokenCount: 2, batch: 0)
        // Layer "fine": 2x2 pixels, one head. Layer "coarse": 1 pixel, two heads.
        Self.observe(maps, layer: "fine", head: 0, [[0.5, 0.1, 0.2, 0.1, 0.1], [0.5, 0.3, 0.0, 0.1, 0.1],
                                                    [0.5, 0.0, 0.3, 0.1, 0.1], [0.5, 0.2, 0.1, 0.1, 0.1]])
        Self.observe(maps, layer: "coarse", head: 0, [[0.2, 0.4, 0.0, 0.2, 0.2]])
        Self.observe(maps, layer: "coarse", head: 1, [[0.2, 0.0, 0.4, 0.2, 0.2]])
        maps.finishStep(index: 0, timestep: 999)
        let step = maps.steps[0]
        // <start>: fine 0.5, coarse 0.2 → 0.35. End + padding: fine 0.2, coarse 0.4 → 0.3.
        #expect(abs(step.startShare - 0.35) < 1e-6 && abs(step.endShare - 0.3) < 1e-6)
        // Word 1: fine (0.1 + 0.3 + 0 + 0.2)/4 = 0.15, coarse (0.4 + 0)/2 = 0.2 → 0.175; word 2 the same.
        #expect(abs(step.tokenShares[0] - 0.175) < 1e-6 && abs(step.tokenShares[1] - 0.175) < 1e-6)
        #expect(abs(step.startShare + step.tokenShares.reduce(0, +) + step.endShare - 1) < 1e-6)
        // Word 1's map: (fine + the coarse layer's 0.2 everywhere) / 2.
        let expected: [Float] = [0.1, 0.3, 0.0, 0.2].map { ($0 + 0.2) / 2 }
        #expect(zip(step.maps[0], expected).allSatisfy { abs($0 - $1) < 1e-6 })
        #expect(maps.layerSizes.map(\.name) == ["fine", "coarse"])
        #expect(maps.layerSizes.map(\.heads) == [1, 2])
        #expect(maps.distinctLayerSizes.map(\.width) == [2, 1])
        // Averaged shares, the peak and the scaled map.
        #expect(abs(maps.averageShares.words - 0.35) < 1e-6)
        #expect(maps.share(positions: [1, 2]) == step.tokenShares[0] + step.tokenShares[1])
        #expect(AttentionMaps.share(of: [2], in: step) == step.tokenShares[1])
        let map = maps.normalisedMap(positions: [1])
        #expect(map.min() == 0 && map.max() == 1)
        #expect(maps.peak(of: map) == (1, 0))                  // 0.3 at pixel 1: x 1, y 0
    }

    @Test("the loudest word leaves out tokens without letters")
    func loudestWord() {
        let maps = AttentionMaps(latentHeight: 1, latentWidth: 1, tokenCount: 2, batch: 0)
        Self.observe(maps, layer: "only", head: 0, [[0.1, 0.2, 0.6, 0.05, 0.05]])
        maps.finishStep(index: 0, timestep: 1)
        let words = [PromptToken(id: 1, text: "cat", endsWord: true), PromptToken(id: 2, text: ",", endsWord: true)]
        #expect(maps.loudestWordPosition(tokens: words) == 1)   // "," gets more, but is not a word
        let both = [PromptToken(id: 1, text: "cat", endsWord: true), PromptToken(id: 2, text: "dog", endsWord: true)]
        #expect(maps.loudestWordPosition(tokens: both) == 2)
    }

    @Test("bilinear resizing samples at pixel centres, as align_corners=False")
    func bilinear() {
        // Source x of output pixel i: (i + ½)·2/4 − ½ = −0.25, 0.25, 0.75, 1.25 (clamped to 0 and 1).
        let out = AttentionMaps.resizeBilinear([0, 1, 2, 3], height: 2, width: 2, toHeight: 4, toWidth: 4)
        #expect(Array(out[0..<4]) == [0, 0.25, 0.75, 1])
        #expect(Array(out[4..<8]) == [0.5, 0.75, 1.25, 1.5])      // a quarter of the way to row 1
        #expect(Array(out[12..<16]) == [2, 2.25, 2.75, 3])
        #expect(AttentionMaps.scaledToUnit([2, 4, 6]) == [0, 0.5, 1])
        #expect(AttentionMaps.scaledToUnit([3, 3]) == [0, 0])
    }

    @Test("layer sizes: the latent halved, rounding up, until the pixels fit")
    func layerSizes() {
        #expect(AttentionMaps.layerSize(pixels: 4096, latentHeight: 64, latentWidth: 64) == (64, 64))
        #expect(AttentionMaps.layerSize(pixels: 256, latentHeight: 64, latentWidth: 64) == (16, 16))
        // 8x12 → 4x6 → 2x3 → 1x2.
        #expect(AttentionMaps.layerSize(pixels: 6, latentHeight: 8, latentWidth: 12) == (2, 3))
        #expect(AttentionMaps.layerSize(pixels: 2, latentHeight: 8, latentWidth: 12) == (1, 2))
    }

    @Test("mean and Pearson correlation, worked by hand")
    func statistics() {
        #expect(Statistics.mean([1, 2, 3, 6]) == 3)
        #expect(Statistics.mean([]) == 0)
        // Deviations (−1.5, −0.5, 0.5, 1.5) and (−1.5, 0.5, −0.5, 1.5): Σab = 4, Σa² = Σb² = 5.
        #expect(abs(Statistics.correlation([1, 2, 3, 4], [1, 3, 2, 4]) - 0.8) < 1e-6)
        #expect(abs(Statistics.correlation([1, 2, 3], [2, 4, 6]) - 1) < 1e-6)
        #expect(abs(Statistics.correlation([1, 2, 3], [6, 4, 2]) + 1) < 1e-6)
        #expect(Statistics.correlation([1, 2, 3], [5, 5, 5]) == 0)
    }

    @Test("embedding lengths: √(Σ e²) per position, and the start token against the rest")
    func embeddingLengths() {
        let lengths = EmbeddingLengths(Tensor(shape: [1, 3, 2], scalars: [3, 4, 0, 1, 6, 8]))
        #expect(lengths.lengths == [5, 1, 10])
        #expect(lengths.startRatio(endPosition: 2) == 5 / 5.5)      // mean of 1 and 10
    }

    @Test("words of the prompt: punctuation kept when swapping, and each word's token positions")
    func promptWords() throws {
        #expect(PromptWords.core(of: "Apple,") == "apple")
        #expect(PromptWords.swapping(["a", "red", "Apple,"], at: 2, with: "pear") == ["a", "red", "pear,"])
        let tokenizer = try CLIPTokenizer()
        let words = PromptWords.words("a red apple on an extraordinarily photogenic hippopotamus")
        let tokens = tokenizer.tokenize(words.joined(separator: " "))
        for index in words.indices {
            let positions = PromptWords.tokenPositions(ofWord: index, in: words, tokenizer: tokenizer)
            // The positions hold exactly the word's own tokens, in the tokenized prompt.
            #expect(positions.map { tokens.tokens[$0 - 1].id } == tokenizer.encode(words[index]))
        }
        #expect(PromptWords.tokenPositions(ofWord: 2, in: words, tokenizer: tokenizer) == [3])
        #expect(tokens.wordPieceCount == tokens.tokens.filter { !$0.endsWord }.count)
        #expect(tokens.wordPieceCount == tokens.tokens.count - words.count)    // every word ends exactly once
    }

    @Test("a prompt of 80 words loses its last 5 tokens")
    func droppedTokens() throws {
        let tokenizer = try CLIPTokenizer()
        let prompt = Array(repeating: "apple", count: 80).joined(separator: " ")
        let tokens = tokenizer.tokenize(prompt)
        #expect(tokens.tokens.count == CLIPTokenizer.maximumContentLength && tokens.truncatedCount == 5)
        let lost = PromptWords.droppedTokens(prompt, tokens: tokens, tokenizer: tokenizer)
        #expect(lost.all == 80 && lost.dropped == Array(repeating: "apple", count: 5))
    }

    @Test("the spotlight: full brightness where the map is 1, 15% where it is 0")
    func spotlight() {
        let image = RGBImage(width: 4, height: 2, color: RGBColor(200, 100, 40))
        #expect(image.spotlit(by: [1, 1], mapHeight: 1, mapWidth: 2) == image)
        let dark = image.spotlit(by: [0, 0], mapHeight: 1, mapWidth: 2)
        #expect(dark[0, 0] == RGBColor(30, 15, 6))                 // 200·0.15, 100·0.15, 40·0.15
        #expect(image.meanAbsoluteDifference(to: dark) == Double(170 + 85 + 34) / 3)
    }
}

@Suite("Lesson 4: the UNet's anatomy from its configuration")
struct UNetAnatomyTests {
    @Test("SD 1.5 at 64x64 latents: four levels of 2 ResNets down and 3 up, transformers except at the coarsest, 8 heads")
    func sd15() {
        let anatomy = UNetAnatomy(configuration: .sd15, latentSide: 64, batch: 2)
        #expect(anatomy.down.map(\.shape) == [[2, 320, 64, 64], [2, 640, 32, 32], [2, 1280, 16, 16], [2, 1280, 8, 8]])
        #expect(anatomy.down.map(\.transformers) == [2, 2, 2, 0] && anatomy.down.map(\.resnets) == [2, 2, 2, 2])
        #expect(anatomy.up.map(\.side) == [8, 16, 32, 64] && anatomy.up.map(\.transformers) == [0, 3, 3, 3])
        #expect(anatomy.up.map(\.resnets) == [3, 3, 3, 3] && anatomy.up.last?.resampler == nil)
        #expect(anatomy.middle.shape == [2, 1280, 8, 8] && anatomy.middle.transformers == 1)
        #expect(anatomy.contextShape == [2, 77, 768] && anatomy.timeEmbeddingWidth == 1280 && anatomy.sinusoidWidth == 320)
        #expect(UNetAnatomy.summary(anatomy.down[0]) == "2 ResNets + 2 transformers (8 heads), then downsample")
        // The checkpoint names of every block, in the order the data flows.
        #expect(anatomy.blocks.map(\.name) == ["down_blocks.0", "down_blocks.1", "down_blocks.2", "down_blocks.3", "mid_block",
                                               "up_blocks.0", "up_blocks.1", "up_blocks.2", "up_blocks.3"])
    }

    @Test("the shapes model: three levels, the coarsest without attention, 4 heads")
    func shapesModel() {
        let anatomy = UNetAnatomy(configuration: TinyShapesModel.unet, latentSide: 8, batch: 2)
        #expect(anatomy.down.map(\.side) == [8, 4, 2] && anatomy.down.map(\.channels) == [32, 64, 64])
        #expect(anatomy.down.map(\.transformers) == [1, 1, 0] && anatomy.up.map(\.transformers) == [0, 2, 2])
        #expect(anatomy.blocks.allSatisfy { $0.heads == 4 })
        #expect(UNetAnatomy.summary(anatomy.down[2]) == "1 ResNet")
    }
}
