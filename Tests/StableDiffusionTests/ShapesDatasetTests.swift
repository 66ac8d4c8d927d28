import Foundation
import StableDiffusion
import TensorCore
import Testing

@Suite("The shapes world: pictures, captions, what is left out, and reading a picture back")
struct ShapesDatasetTests {
    @Test("a scene is fixed by (seed, index); another seed gives other scenes")
    func reproducible() {
        let a = ShapesDataset(seed: 3), b = ShapesDataset(seed: 3), c = ShapesDataset(seed: 4)
        #expect((0..<20).map(a.scene) == (0..<20).map(b.scene))
        #expect((0..<20).map(a.scene) != (0..<20).map(c.scene))
        #expect(a.batch(5..<9).pixels == b.batch(5..<9).pixels)
    }

    @Test("training never shows a green triangle or a red square, and shows every other pair in every position")
    func leftOut() {
        let data = ShapesDataset(seed: 0)
        var seen = Set<String>()
        for index in 0..<5000 {
            let scene = data.scene(index)
            #expect(!ShapesDataset.isLeftOut(scene.colour, scene.shape), "scene \(index): \(scene.caption)")
            seen.insert(scene.caption)
        }
        let expected = Set(ShapesDataset.allCaptions.filter { !$0.contains("green triangle") && !$0.contains("red square") })
        #expect(seen == expected)
        #expect(ShapesDataset.allCaptions.count == 60 && expected.count == 50)
        #expect(ShapesDataset.allCaptions.contains("a yellow square at the bottom"))
        #expect(ShapesDataset.allCaptions.contains("a blue triangle"))
    }

    @Test("pixels: [−1, 1], a grey background in the corners, the shape's colour at its centre")
    func pixels() {
        let scene = ShapeScene(colour: .blue, shape: .triangle, position: .right)
        let picture = scene.render(size: 64)
        #expect(picture.shape == [1, 3, 64, 64])
        #expect(picture.scalars.allSatisfy { $0 >= -1 && $0 <= 1 })
        let plane = 64 * 64
        func rgb(_ x: Int, _ y: Int) -> [Float] { (0..<3).map { (picture.scalars[$0 * plane + y * 64 + x] + 1) / 2 } }
        #expect(rgb(0, 0) == [1, 1, 1])
        let centre = rgb(Int(scene.centre.x * 64), Int(scene.centre.y * 64))
        #expect(zip(centre, [0.16, 0.32, 0.88] as [Float]).allSatisfy { abs($0 - $1) < 1e-5 })
    }

    @Test("ShapeReading reads colour, position and shape back from every kind of training picture")
    func readingBack() throws {
        let data = ShapesDataset(seed: 1)
        var wrong: [String] = []
        for index in 0..<300 {
            let scene = data.scene(index)
            let reading = try #require(ShapeReading(scene.render()))
            if reading.description != ShapeScene(colour: scene.colour, shape: scene.shape, position: scene.position).caption {
                wrong.append("\(scene.caption) read as \(reading)")
            }
        }
        #expect(wrong.isEmpty, "\(wrong)")
        // A plain background shows nothing.
        #expect(ShapeReading(Tensor(repeating: 0.8, shape: [1, 3, 64, 64])) == nil)
    }

    @Test("a vocabulary learned from the captions: every word one token, an unseen word in pieces, saved as diffusers saves it")
    func learnedVocabulary() throws {
        var words: [String: Int] = [:]
        for caption in ShapesDataset.allCaptions { for word in caption.split(separator: " ") { words[String(word), default: 0] += 1 } }
        let merges = BytePairEncoding.learnMerges(words: words)
        let tokenizer = try CLIPTokenizer(merges: merges)
        for word in words.keys { #expect(tokenizer.bpe.encode(word) == [word + "</w>"], "\(word)") }
        // 512 byte tokens, one per merge, the two special tokens.
        #expect(tokenizer.vocabularySize == 512 + merges.count + 2)
        #expect(tokenizer.bpe.encode("purple").count > 1)
        let prompt = tokenizer.tokenize("a green triangle on the left")
        #expect(prompt.ids.count == 77 && prompt.ids[0] == tokenizer.startID && prompt.ids[7] == tokenizer.endID)

        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tokenizer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("tokenizer"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try tokenizer.write(to: folder.appendingPathComponent("tokenizer"))
        let loaded = try CLIPTokenizer(diffusersFolder: folder)
        #expect(loaded.vocabulary == tokenizer.vocabulary)
        #expect(loaded.tokenize("a purple hexagon").ids == tokenizer.tokenize("a purple hexagon").ids)
    }
}

@Suite("The shapes model's configuration")
struct TinyShapesModelTests {
    @Test("three SD-shaped networks small enough to ship: under 4 M parameters (8 MB in 16 bits), latents of 8x8x4")
    func sizes() throws {
        let tokenizer = try TinyShapesModel.tokenizer()
        let text = TinyShapesModel.textEncoder(vocabularySize: tokenizer.vocabularySize)
        let count = { (weights: [String: Tensor]) in weights.values.reduce(0) { $0 + $1.count } }
        let vae = try RandomWeights.parameters { _ = try AutoencoderKL($0, configuration: TinyShapesModel.vae) }
        let encoder = try RandomWeights.parameters { _ = try CLIPTextModel($0["text_model"], configuration: text) }
        let unet = try RandomWeights.parameters { _ = try UNet2DConditionModel($0, configuration: TinyShapesModel.unet) }
        let total = count(vae) + count(encoder) + count(unet)
        print("shapes model: VAE \(count(vae)), text encoder \(count(encoder)), UNet \(count(unet)) parameters")
        #expect(total < 4_000_000)
        #expect(TinyShapesModel.vae.downsamplingFactor == 8 && TinyShapesModel.vae.latentChannels == 4)
        #expect(TinyShapesModel.unet.sampleSize * 8 == TinyShapesModel.pictureSize)
        #expect(text.hiddenSize == TinyShapesModel.unet.crossAttentionDim)
        // Every word of the grammar is one token: "a red circle on the left" is 6 tokens between start and end.
        let ids = tokenizer.tokenize("a red circle on the left").ids
        #expect(ids[7] == tokenizer.endID && ids[6] != tokenizer.endID)
    }
}
