import Foundation
import StableDiffusion
import Testing

@Suite("UNetConfiguration")
struct UNetConfigurationTests {
    @Test("the tiny fixture's config.json decodes, ignoring the keys it does not know")
    func decodesFixture() throws {
        let c = try UNetFixtures.configuration()
        #expect(c.blockOutChannels == [16, 16, 16, 16])
        #expect(c.layersPerBlock == 2)
        #expect(c.attentionHeadDim == .all(8) && c.numAttentionHeads == nil)
        #expect((0..<4).map { c.heads(block: $0) } == [8, 8, 8, 8])
        #expect(c.crossAttentionDim == 4)
        #expect(c.normNumGroups == 4 && c.normEps == 1e-5)
        #expect(c.downBlockTypes == ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"])
        #expect(c.upBlockTypes == ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"])
        #expect(c.sampleSize == 8 && c.flipSinToCos && c.freqShift == 0 && !c.useLinearProjection)
        #expect(c.timeEmbeddingDim == 64)
        try c.validate()
    }

    @Test("SD 1.5's published config (written by diffusers 0.6, with fewer keys) decodes to .sd15")
    func decodesSD15() throws {
        let json = """
        {
          "_class_name": "UNet2DConditionModel", "_diffusers_version": "0.6.0", "act_fn": "silu",
          "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280],
          "center_input_sample": false, "cross_attention_dim": 768,
          "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
          "downsample_padding": 1, "flip_sin_to_cos": true, "freq_shift": 0, "in_channels": 4,
          "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32,
          "out_channels": 4, "sample_size": 64,
          "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
          "a_key_from_the_future": {"nested": [1, 2, 3]}
        }
        """
        let c = try JSONDecoder().decode(UNetConfiguration.self, from: Data(json.utf8))
        #expect(c == .sd15)
        #expect((0..<4).map { c.heads(block: $0) } == [8, 8, 8, 8])
        #expect(c.timeEmbeddingDim == 1280)
        try c.validate()
    }

    @Test("SD 2.x's per-block head counts and linear projections decode")
    func decodesSD2() throws {
        let json = """
        {"attention_head_dim": [5, 10, 20, 20], "block_out_channels": [320, 640, 1280, 1280],
         "cross_attention_dim": 1024, "use_linear_projection": true, "upcast_attention": true,
         "sample_size": 96}
        """
        let c = try JSONDecoder().decode(UNetConfiguration.self, from: Data(json.utf8))
        #expect(c.attentionHeadDim == .each([5, 10, 20, 20]))
        // 320/5 = 640/10 = 1280/20 = 64: every head is 64 wide, although the key says "head dim".
        #expect((0..<4).map { c.blockOutChannels[$0] / c.heads(block: $0) } == [64, 64, 64, 64])
        #expect(c.useLinearProjection && c.crossAttentionDim == 1024)
        try c.validate()
    }

    @Test("num_attention_heads, when a config gives it, wins over attention_head_dim")
    func numAttentionHeads() throws {
        let json = #"{"attention_head_dim": 8, "num_attention_heads": [5, 10, 20, 20], "cross_attention_dim": 768}"#
        let c = try JSONDecoder().decode(UNetConfiguration.self, from: Data(json.utf8))
        #expect((0..<4).map { c.heads(block: $0) } == [5, 10, 20, 20])
    }

    @Test("encoding and decoding again gives the same configuration")
    func roundTrip() throws {
        var c = UNetConfiguration.sd15
        c.attentionHeadDim = .each([5, 10, 20, 20])
        c.classEmbedType = "timestep"
        let again = try JSONDecoder().decode(UNetConfiguration.self, from: try JSONEncoder().encode(c))
        #expect(again == c)
    }

    @Test("an architecture this project does not run is rejected, naming the key")
    func rejectsUnsupported() throws {
        let sdxl = #"{"addition_embed_type": "text_time", "cross_attention_dim": 2048}"#
        let c = try JSONDecoder().decode(UNetConfiguration.self, from: Data(sdxl.utf8))
        #expect(throws: UNetConfigurationError.unsupported(key: "addition_embed_type", value: "text_time",
                                                           supported: "null (SDXL's \"text_time\" is not supported)")) {
            try c.validate()
        }
        var heads = UNetConfiguration.sd15
        heads.attentionHeadDim = .all(7)   // 320 channels do not split into 7 heads
        #expect(throws: UNetConfigurationError.self) { try heads.validate() }
        var levels = UNetConfiguration.sd15
        levels.upBlockTypes.removeLast()
        do {
            try levels.validate()
            Issue.record("three up blocks for four levels should be rejected")
        } catch let error as UNetConfigurationError {
            #expect("\(error)".contains("up_block_types"))
        }
    }

    @Test("a config value of the wrong JSON type is a decoding error naming the key")
    func wrongType() {
        let json = #"{"block_out_channels": 320}"#
        do {
            _ = try JSONDecoder().decode(UNetConfiguration.self, from: Data(json.utf8))
            Issue.record("a number where a list belongs should not decode")
        } catch DecodingError.typeMismatch(_, let context) {
            #expect(context.codingPath.map(\.stringValue) == ["block_out_channels"])
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }
}
