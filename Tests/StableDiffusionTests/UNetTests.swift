import Foundation
import StableDiffusion
import TensorCore
import Testing

@Suite("UNet2DConditionModel")
struct UNetTests {
    // Tolerance of the whole-network comparisons. The output is deep: 52 convolutions (conv_in,
    // 22 ResNets of two, 3 down- and 3 upsamplers, conv_out) and 16 transformers of about ten
    // matrix products each lie in sequence, and every sum here runs in a different order (blocked
    // GEMM, im2col) than in PyTorch, each adding float32 rounding of ~1e-7 relative. Outputs are of
    // order 1 (max |out| 2.3); the measured error is about 2e-6. 1e-4 leaves room for other CPUs'
    // SIMD widths, while a misplaced weight or a wrong head split moves the output by 0.01 to 1.
    static let tolerance: Float = 1e-4

    @Test("the tiny UNet's noise prediction matches diffusers at timestep 981 (batch 2, 16x16)")
    func matchesReference() throws {
        let unet = try UNetFixtures.model()
        let sample = try UNetFixtures.reference("unet.sample")                     // (2, 4, 16, 16)
        let context = try UNetFixtures.reference("unet.encoder_hidden_states")     // (2, 77, 4)
        let expected = try UNetFixtures.reference("unet.out")
        let out = unet(sample, timestep: 981, encoderHiddenStates: context)
        #expect(out.shape == [2, 4, 16, 16])
        let error = out.maxAbsDifference(expected)
        print("UNet t=981 batch 2 16x16: max abs error \(error), max |output| \(expected.scalars.map(abs).max()!)")
        #expect(error < Self.tolerance)
    }

    @Test("a fractional timestep (499.5) on one sample matches diffusers")
    func fractionalTimestep() throws {
        let unet = try UNetFixtures.model()
        let sample = try UNetFixtures.reference("unet.sample").slice(1..<2)
        let context = try UNetFixtures.reference("unet.encoder_hidden_states").slice(1..<2)
        let expected = try UNetFixtures.reference("unet.out_t499_5")
        let out = unet(sample, timestep: 499.5, encoderHiddenStates: context)
        let error = out.maxAbsDifference(expected)
        print("UNet t=499.5 batch 1 16x16: max abs error \(error)")
        #expect(error < Self.tolerance)
        // The timestep matters: the same input at t=981 is far from this output.
        let other = unet(sample, timestep: 981, encoderHiddenStates: context)
        #expect(other.maxAbsDifference(expected) > 0.01)
    }

    @Test("a 12x10 latent (not a multiple of 8) upsamples to the skip sizes, as diffusers does")
    func oddLatentSize() throws {
        // 12x10 → 6x5 → 3x3 → 2x2 on the way down; on the way up 2x2 must become 3x3 and 3x3 must
        // become 6x5, not 4x4 and 6x6. Inputs are torch.randn with seeds 11 and 12 (TorchGenerator
        // draws the same numbers); the expected values were recorded from diffusers 0.42.1 running
        // the same fixture at timestep 250 (output flattened, NCHW).
        var noise = TorchGenerator(seed: 11)
        var text = TorchGenerator(seed: 12)
        let sample = noise.randn([1, 4, 12, 10])
        let context = text.randn([1, 77, 4])
        let out = try UNetFixtures.model()(sample, timestep: 250, encoderHiddenStates: context)
        #expect(out.shape == [1, 4, 12, 10])
        let indices = [0, 37, 101, 163, 240, 299, 358, 419, 479]
        let expected: [Float] = [1.06464458, -0.239882141, 1.00983739, -0.315758824, -0.216759741,
                                 0.386177629, -0.157245964, 0.308081776, 0.176544398]
        let error = zip(indices, expected).map { abs(out.scalars[$0] - $1) }.max()!
        let absMean = out.scalars.map(abs).reduce(0, +) / Float(out.count)
        print("UNet t=250 batch 1 12x10: max abs error at 9 recorded points \(error), "
              + "mean |out| \(absMean) (diffusers 0.45731926)")
        #expect(error < Self.tolerance)
        #expect(abs(absMean - 0.45731926) < Self.tolerance)
    }

    @Test("the cross-attention observer sees every attn2 layer by name, with rows that sum to one")
    func crossAttentionObserver() throws {
        let unet = try UNetFixtures.model()
        let sample = try UNetFixtures.reference("unet.sample")
        let context = try UNetFixtures.reference("unet.encoder_hidden_states")
        var rowsSeen: [String: Int] = [:]
        var worstRowSum: Float = 0
        let observed = unet(sample, timestep: 981, encoderHiddenStates: context) { layer, batch, head, rows, p in
            #expect(p.count == rows.count * 77)
            #expect((0..<2).contains(batch) && (0..<8).contains(head))
            rowsSeen[layer, default: 0] += rows.count
            for r in 0..<rows.count {
                worstRowSum = max(worstRowSum, abs(p[(r * 77)..<((r + 1) * 77)].reduce(0, +) - 1))
            }
        }
        // 2 attentions in each of down_blocks.0-2, 1 in the mid block, 3 in each of up_blocks.1-3.
        var expectedLayers: [String: Int] = [:]   // layer → query rows seen: pixels × batch 2 × 8 heads
        for (level, pixels) in [(0, 256), (1, 64), (2, 16)] {
            for i in 0..<2 {
                expectedLayers["down_blocks.\(level).attentions.\(i).transformer_blocks.0.attn2"] = pixels * 16
            }
        }
        expectedLayers["mid_block.attentions.0.transformer_blocks.0.attn2"] = 4 * 16
        for (level, pixels) in [(1, 16), (2, 64), (3, 256)] {
            for i in 0..<3 {
                expectedLayers["up_blocks.\(level).attentions.\(i).transformer_blocks.0.attn2"] = pixels * 16
            }
        }
        #expect(rowsSeen == expectedLayers)
        #expect(worstRowSum < 1e-5)
        // Watching does not change the result.
        #expect(observed == unet(sample, timestep: 981, encoderHiddenStates: context))
    }

    @Test("layer names given to the observer are relative to the UNet even when its keys have a prefix")
    func observerNamesUnderPrefix() throws {
        var prefixed: [String: TensorRecord] = [:]
        for (key, record) in try UNetFixtures.records() { prefixed["unet." + key] = record }
        let store = WeightStore(prefixed)
        let unet = try UNet2DConditionModel(Weights(store)["unet"], configuration: try UNetFixtures.configuration())
        try store.checkAllUsed()
        var layers = Set<String>()
        _ = unet(try UNetFixtures.reference("unet.sample"), timestep: 981,
                 encoderHiddenStates: try UNetFixtures.reference("unet.encoder_hidden_states")) { layer, _, _, _, _ in
            layers.insert(layer)
        }
        #expect(layers.count == 16)
        #expect(layers.contains("mid_block.attentions.0.transformer_blocks.0.attn2"))
    }

    @Test("a missing tensor is an error naming its key")
    func missingKey() throws {
        var records = try UNetFixtures.records()
        let key = "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight"
        #expect(records.removeValue(forKey: key) != nil)
        #expect(throws: CheckpointError.missingKey(key)) {
            _ = try UNet2DConditionModel(Weights(WeightStore(records)), configuration: try UNetFixtures.configuration())
        }
    }

    @Test("a tensor of the wrong shape is an error naming its key and both shapes")
    func wrongShape() throws {
        var records = try UNetFixtures.records()
        // conv_out's (4, 16, 3, 3) kernel where conv_in's (16, 4, 3, 3) belongs.
        records["conv_in.weight"] = records["conv_out.weight"]
        #expect(throws: CheckpointError.wrongShape(key: "conv_in.weight", expected: [16, 4, 3, 3], found: [4, 16, 3, 3])) {
            _ = try UNet2DConditionModel(Weights(WeightStore(records)), configuration: try UNetFixtures.configuration())
        }
    }

    @Test("loading with the wrong configuration names the first tensor that does not fit")
    func wrongConfiguration() throws {
        // The tiny weights read with SD 1.5's configuration: conv_in should have 320 channels.
        #expect(throws: CheckpointError.wrongShape(key: "conv_in.weight", expected: [320, 4, 3, 3], found: [16, 4, 3, 3])) {
            _ = try UNet2DConditionModel(Weights(WeightStore(try UNetFixtures.records())), configuration: .sd15)
        }
    }

    @Test("a tensor the UNet does not use is reported by checkAllUsed")
    func unusedKey() throws {
        var records = try UNetFixtures.records()
        records["time_embedding.linear_3.weight"] = records["time_embedding.linear_2.weight"]
        let store = WeightStore(records)
        _ = try UNet2DConditionModel(Weights(store), configuration: try UNetFixtures.configuration())
        #expect(throws: CheckpointError.unexpectedKeys(["time_embedding.linear_3.weight"])) {
            try store.checkAllUsed()
        }
    }
}
