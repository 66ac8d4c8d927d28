import Foundation
import StableDiffusion
import Testing

@Suite("VAEConfiguration: diffusers' vae/config.json")
struct VAEConfigurationTests {
    @Test("the tiny fixture's config decodes, unknown and null keys ignored")
    func decodesTinyConfig() throws {
        let configuration = try VAEFixture.configuration()   // has _class_name, force_upcast, latents_mean: null, ...
        #expect(configuration.blockOutChannels == [8, 16, 16, 16])
        #expect(configuration.layersPerBlock == 2)
        #expect(configuration.normNumGroups == 4)
        #expect(configuration.latentChannels == 4)
        #expect(configuration.sampleSize == 64)
        #expect(configuration.scalingFactor == 0.18215)
        #expect(configuration.downsamplingFactor == 8)
        try configuration.validate()
    }

    @Test("SD 1.5's published config (no scaling_factor key) decodes to .sd15")
    func decodesSD15Config() throws {
        // vae/config.json of Stable Diffusion 1.5 as published; written by diffusers 0.6, before
        // scaling_factor was a config key, so it takes the default 0.18215.
        let json = """
        {
          "_class_name": "AutoencoderKL",
          "_diffusers_version": "0.6.0",
          "act_fn": "silu",
          "block_out_channels": [128, 256, 512, 512],
          "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
          "in_channels": 3,
          "latent_channels": 4,
          "layers_per_block": 2,
          "norm_num_groups": 32,
          "out_channels": 3,
          "sample_size": 512,
          "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"]
        }
        """
        let configuration = try JSONDecoder().decode(VAEConfiguration.self, from: Data(json.utf8))
        #expect(configuration == .sd15)
        #expect(configuration.scalingFactor == 0.18215)
    }

    @Test("absent keys take AutoencoderKL's defaults; sample_size may be a list")
    func defaultsAndListSampleSize() throws {
        let empty = try JSONDecoder().decode(VAEConfiguration.self, from: Data("{}".utf8))
        #expect(empty.blockOutChannels == [64] && empty.layersPerBlock == 1 && empty.normNumGroups == 32)
        #expect(empty.sampleSize == 32 && empty.inChannels == 3 && empty.latentChannels == 4)
        let listed = try JSONDecoder().decode(VAEConfiguration.self, from: Data(#"{"sample_size": [768, 512]}"#.utf8))
        #expect(listed.sampleSize == 768)
    }

    @Test("encoding and decoding again gives the same configuration")
    func roundTrips() throws {
        let data = try JSONEncoder().encode(VAEConfiguration.sd15)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("\"block_out_channels\"") && text.contains("\"scaling_factor\""))
        #expect(try JSONDecoder().decode(VAEConfiguration.self, from: data) == .sd15)
    }

    @Test("configurations this project cannot build are rejected with a reason")
    func rejectsUnsupported() throws {
        var groups = VAEConfiguration.sd15
        groups.normNumGroups = 48
        #expect(throws: VAEError.unsupportedConfiguration("128 channels do not split into norm_num_groups = 48 groups")) {
            try groups.validate()
        }
        var activation = VAEConfiguration.sd15
        activation.actFn = "gelu"
        #expect(throws: VAEError.self) { try activation.validate() }
        var blocks = VAEConfiguration.sd15
        blocks.upBlockTypes[3] = "AttnUpDecoderBlock2D"
        #expect(throws: VAEError.self) { try blocks.validate() }
        var empty = VAEConfiguration.sd15
        empty.blockOutChannels = []
        #expect(throws: VAEError.unsupportedConfiguration("block_out_channels is empty")) { try empty.validate() }
        // AutoencoderKL checks before reading any weight.
        let store = try VAEFixture.store()
        #expect(throws: VAEError.self) { try AutoencoderKL(Weights(store), configuration: groups) }
        try VAEConfiguration.sd15.validate()
    }
}
