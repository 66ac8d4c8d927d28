import Foundation
import Testing
import StableDiffusion
import TensorCore

// The tiny text encoder (width 4, 2 heads, 2 layers, MLP 16, full 49,408-token vocabulary and
// 77 positions) against transformers' CLIPTextModel run on the same weights.

private func textEncoderFixtureURL(_ path: String) -> URL {
    Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent(path)
}

private func tinyTextEncoderRecords() throws -> [String: TensorRecord] {
    try SafeTensors.read(path: textEncoderFixtureURL("tiny/diffusers/text_encoder/model.safetensors").path)
}

private func tinyConfiguration() throws -> CLIPTextConfiguration {
    try CLIPTextConfiguration.load(textEncoderFixtureURL("tiny/diffusers/text_encoder/config.json"))
}

private func referenceTensor(_ name: String) throws -> Tensor {
    let records = try SafeTensors.read(path: textEncoderFixtureURL("reference/text_encoder.safetensors").path)
    return records[name]!.tensor()
}

/// The reference batch: "a photograph of an astronaut riding a horse" and "", from our tokenizer
/// (whose ids the tokenizer tests check against the same reference).
private func referenceIDs() throws -> [[Int]] {
    let tokenizer = try CLIPTokenizer()
    return ["a photograph of an astronaut riding a horse", ""].map { tokenizer.tokenize($0).ids }
}

@Suite("CLIP text encoder")
struct TextEncoderTests {
    // Tolerance: float32 throughout on both sides, so the differences are summation order only
    // (sums of 4 to 77 terms in the GEMMs, layer norms and softmax), 2 layers deep, on values of
    // size ~1 to 4. Measured: about 1e-6. 1e-5 leaves a 10x margin and is still far below what a
    // wrong mask, scale, activation or weight (all changes of 1e-2 or more) would give.
    static let tolerance: Float = 1e-5

    @Test("the last hidden state matches transformers' CLIPTextModel")
    func lastHiddenState() throws {
        let store = WeightStore(try tinyTextEncoderRecords())
        let model = try CLIPTextModel(Weights(store)["text_model"], configuration: try tinyConfiguration())
        try store.checkAllUsed()

        let out = model(try referenceIDs())
        let expected = try referenceTensor("text_encoder.last_hidden_state")
        #expect(out.shape == [2, 77, 4])
        #expect(out.maxAbsDifference(expected) < Self.tolerance)
    }

    @Test("every layer's output matches transformers' hidden_states", arguments: 0...2)
    func hiddenStates(index: Int) throws {
        let store = WeightStore(try tinyTextEncoderRecords())
        let model = try CLIPTextModel(Weights(store)["text_model"], configuration: try tinyConfiguration())
        let states = model.hiddenStates(try referenceIDs())
        #expect(states.count == 3)
        #expect(states[index].maxAbsDifference(try referenceTensor("text_encoder.hidden_states.\(index)")) < Self.tolerance)
    }

    @Test("CLIP skip 1 is the final layer norm of the second-to-last layer's output")
    func clipSkip() throws {
        let store = WeightStore(try tinyTextEncoderRecords())
        let model = try CLIPTextModel(Weights(store)["text_model"], configuration: try tinyConfiguration())
        let skipped = model(try referenceIDs(), skippingLastLayers: 1)
        let expected = model.finalLayerNorm(try referenceTensor("text_encoder.hidden_states.1"))
        #expect(skipped.maxAbsDifference(expected) < Self.tolerance)
        #expect(skipped.maxAbsDifference(model(try referenceIDs())) > 1e-2)
    }

    @Test("the causal mask: a token's vector depends on the tokens before it, never after")
    func causality() throws {
        let store = WeightStore(try tinyTextEncoderRecords())
        let model = try CLIPTextModel(Weights(store)["text_model"], configuration: try tinyConfiguration())
        let tokenizer = try CLIPTokenizer()
        // Same first 7 content tokens; the 8th differs ("horse" vs "camel").
        let a = model([tokenizer.tokenize("a photograph of an astronaut riding a horse").ids])
        let b = model([tokenizer.tokenize("a photograph of an astronaut riding a camel").ids])
        let width = 4
        let before = 8 * width   // positions 0...7: start token + 7 shared words
        #expect(Array(a.scalars[..<before]) == Array(b.scalars[..<before]))
        #expect(Tensor(shape: [width], scalars: Array(a.scalars[before..<(before + width)]))
            .maxAbsDifference(Tensor(shape: [width], scalars: Array(b.scalars[before..<(before + width)]))) > 1e-3)
    }

    @Test("position_ids, which some checkpoints carry, is accepted and ignored")
    func positionIDs() throws {
        let extra = try writePositionIDs()
        defer { try? FileManager.default.removeItem(atPath: extra) }
        let records = try tinyTextEncoderRecords().merging(try SafeTensors.read(path: extra)) { a, _ in a }
        let store = WeightStore(records)
        #expect(store.record("text_model.embeddings.position_ids") != nil)
        let model = try CLIPTextModel(Weights(store)["text_model"], configuration: try tinyConfiguration())
        try store.checkAllUsed()
        #expect(model(try referenceIDs()).maxAbsDifference(try referenceTensor("text_encoder.last_hidden_state")) < Self.tolerance)
    }

    @Test("a missing tensor is an error naming its key")
    func missingKey() throws {
        var records = try tinyTextEncoderRecords()
        records["text_model.encoder.layers.1.mlp.fc2.bias"] = nil
        #expect(throws: CheckpointError.missingKey("text_model.encoder.layers.1.mlp.fc2.bias")) {
            try CLIPTextModel(Weights(WeightStore(records))["text_model"], configuration: try tinyConfiguration())
        }
    }

    @Test("a tensor of the wrong shape is an error naming its key and both shapes")
    func wrongShape() throws {
        let store = WeightStore(try tinyTextEncoderRecords())
        var configuration = try tinyConfiguration()
        configuration.hiddenSize = 8
        #expect(throws: CheckpointError.wrongShape(key: "text_model.embeddings.token_embedding.weight",
                                                   expected: [49408, 8], found: [49408, 4])) {
            try CLIPTextModel(Weights(store)["text_model"], configuration: configuration)
        }
        configuration = try tinyConfiguration()
        configuration.intermediateSize = 32
        #expect(throws: CheckpointError.wrongShape(key: "text_model.encoder.layers.0.mlp.fc1.weight",
                                                   expected: [32, 4], found: [16, 4])) {
            try CLIPTextModel(Weights(store)["text_model"], configuration: configuration)
        }
    }

    @Test("a model with fewer layers than the checkpoint leaves keys unused, and the store says which")
    func unusedLayers() throws {
        let store = WeightStore(try tinyTextEncoderRecords())
        var configuration = try tinyConfiguration()
        configuration.numHiddenLayers = 1
        _ = try CLIPTextModel(Weights(store)["text_model"], configuration: configuration)
        #expect(store.unusedKeys.count == 16 && store.unusedKeys.allSatisfy { $0.hasPrefix("text_model.encoder.layers.1.") })
    }

    /// A safetensors file holding only `text_model.embeddings.position_ids` = [[0, 1, ..., 76]] (int64).
    private func writePositionIDs() throws -> String {
        var header = #"{"text_model.embeddings.position_ids":{"dtype":"I64","shape":[1,77],"data_offsets":[0,616]}}"#
        while header.utf8.count % 8 != 0 { header += " " }
        var data = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(contentsOf: Array(header.utf8))
        for i in 0..<77 { withUnsafeBytes(of: Int64(i).littleEndian) { data.append(contentsOf: $0) } }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("position_ids-\(UUID().uuidString).safetensors").path
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }
}

@Suite("CLIP text configuration")
struct TextConfigurationTests {
    @Test("reads a transformers config.json")
    func decodesFixture() throws {
        let configuration = try tinyConfiguration()
        #expect(configuration == CLIPTextConfiguration(hiddenSize: 4, intermediateSize: 16, numAttentionHeads: 2,
                                                       numHiddenLayers: 2, maxPositionEmbeddings: 77, vocabSize: 49408,
                                                       hiddenAct: .quickGELU, layerNormEps: 1e-5))
        #expect(configuration.headDim == 2)
    }

    @Test("SD 1.5's text encoder is CLIP ViT-L/14's text half")
    func sd15() {
        let c = CLIPTextConfiguration.sd15
        let sizes: [Int] = [c.hiddenSize, c.intermediateSize, c.numAttentionHeads, c.numHiddenLayers,
                            c.maxPositionEmbeddings, c.vocabSize]
        #expect(sizes == [768, 3072, 12, 12, 77, 49408])
        #expect(c.hiddenAct == .quickGELU && c.layerNormEps == 1e-5 && c.headDim == 64)
    }

    @Test("absent keys take transformers' defaults; unknown keys are ignored")
    func defaults() throws {
        let json = #"{"hidden_size": 768, "num_attention_heads": 12, "projection_dim": 768, "hidden_act": "gelu"}"#
        let c = try JSONDecoder().decode(CLIPTextConfiguration.self, from: Data(json.utf8))
        #expect(c.hiddenSize == 768 && c.numAttentionHeads == 12 && c.hiddenAct == .gelu)
        #expect(c.intermediateSize == 2048 && c.numHiddenLayers == 12 && c.maxPositionEmbeddings == 77)
    }

    @Test("unsupported activations and sizes that do not split into heads are errors", arguments: [
        (#"{"hidden_act": "relu"}"#, "hidden_act 'relu' is not supported; expected quick_gelu or gelu"),
        (#"{"hidden_size": 10, "num_attention_heads": 4}"#, "hidden_size 10 does not split into 4 heads"),
        (#"{"num_hidden_layers": 0}"#, "sizes must be positive, got [512, 2048, 8, 0, 77, 49408]"),
    ])
    func invalid(json: String, message: String) throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("config-\(UUID().uuidString).json")
        try json.write(to: url, atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        #expect(throws: CheckpointError.corrupt(url.path, message)) { try CLIPTextConfiguration.load(url) }
    }
}
