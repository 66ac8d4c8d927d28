import Foundation
import StableDiffusion
import TensorCore
import Testing

/// TAESD against diffusers' `AutoencoderTiny` on a random tiny TAESD (fixtures by
/// Tools/reference/make_taesd_reference.py: SD's TAESD layout, 4 channels instead of 64).
@Suite("TAESD: the tiny autoencoder in both file layouts, against diffusers' AutoencoderTiny")
struct TinyAutoencoderTests {
    static func fixture(_ path: String) -> String { PipelineTests.fixtures.appendingPathComponent("taesd/" + path).path }
    static let reference = try! SafeTensors.read(path: fixture("reference.safetensors")).mapValues { $0.tensor() }

    // Tolerance: about 20 convolutions of float32 sums in another order than PyTorch's (~1e-7
    // relative each) and libm's tanh against PyTorch's; 1e-5 on values of order 1 is 100x that,
    // while a wrong layer, a missing ReLU or an off-by-one key shifts values by 1e-1 or more.
    @Test("decode and encode give diffusers' numbers, from the authors' files and from the diffusers folder",
          arguments: ["authors' files", "diffusers folder", "the two authors' files, one at a time"])
    func decodeAndEncode(source: String) throws {
        let decoderSource: TinyAutoencoder, encoderSource: TinyAutoencoder
        switch source {
        case "authors' files":
            decoderSource = try TinyAutoencoder.load(PipelineTests.fixtures.appendingPathComponent("taesd").path)
            encoderSource = decoderSource
        case "diffusers folder":
            decoderSource = try TinyAutoencoder.load(Self.fixture("diffusers"))
            encoderSource = decoderSource
        default:
            decoderSource = try TinyAutoencoder.load(Self.fixture("taesd_decoder.safetensors"))
            encoderSource = try TinyAutoencoder.load(Self.fixture("taesd_encoder.safetensors"))
            #expect(decoderSource.encoder == nil && encoderSource.decoder == nil)
        }
        let image = try decoderSource.decode(Self.reference["decode.latents"]!)
        #expect(image.shape == [1, 3, 64, 64])
        #expect(image.maxAbsDifference(Self.reference["decode.image"]!) < 1e-5)
        let latents = try encoderSource.encode(Self.reference["encode.image"]!)
        #expect(latents.shape == [1, 4, 8, 8])
        #expect(latents.maxAbsDifference(Self.reference["encode.latents"]!) < 1e-5)
    }

    // Tolerance as PipelineTests' (1e-4 on pixels in [0, 1]).
    @Test("a pipeline run with the TAESD decoder draws diffusers' picture (StableDiffusionPipeline with vae=AutoencoderTiny), without SD's VAE")
    func pipeline() throws {
        let withoutVAE = try CheckpointVariantTests.renamedCopy { $0.hasPrefix("first_stage_model.") ? nil : $0 }
        let pipeline = try StableDiffusionPipeline(checkpoint: withoutVAE, configuration: PipelineTests.tinyConfiguration())
        var request = LoRATests.request()
        request.decoder = .taesd
        #expect(throws: GenerationError.self) { try pipeline.checkComplete(for: request) }
        pipeline.tinyAutoencoder = try TinyAutoencoder.load(Self.fixture("taesd_decoder.safetensors"))
        var steps: [Tensor] = []
        let result = try pipeline.generate(request, onStep: { steps.append($0.next) })
        for (index, latents) in steps.enumerated() {
            #expect(latents.maxAbsDifference(Self.reference["txt2img.step\(index).latents"]!) < 1e-4)
        }
        #expect(result.timings.contains { $0.stage == "taesd decode" })
        let image = PipelineTests.asNumPyImage(result.image)
        #expect(image.maxAbsDifference(Self.reference["txt2img.image"]!) < 1e-4)
        // img2img still needs SD's VAE to encode the start picture.
        request.initImage = Tensor.zeros([1, 3, 64, 64])
        #expect(throws: CheckpointError.missingComponent(withoutVAE, .vae)) { try pipeline.checkComplete(for: request) }
    }

    @Test("the authors' keys map onto diffusers': encoder index N is layers.N, decoder index N is layers.N-1")
    func keyMapping() {
        #expect(KeyMapping.tinyAutoencoderName("3.conv.0.weight", decoderFile: true) == "decoder.layers.2.conv.0.weight")
        #expect(KeyMapping.tinyAutoencoderName("14.weight", decoderFile: false) == "encoder.layers.14.weight")
        #expect(KeyMapping.tinyAutoencoderName("0.weight", decoderFile: true) == nil)   // the clamp has no weights
        #expect(KeyMapping.tinyAutoencoderName("conv.weight", decoderFile: false) == nil)
    }

    @Test("not a TAESD: one message naming the file and what is wrong")
    func badFiles() throws {
        func message(_ path: String) -> String {
            do { _ = try TinyAutoencoder.load(path); return "loaded" } catch { return "\(error)" }
        }
        #expect(message(PipelineTests.fixtures.appendingPathComponent("tiny/tiny-sd-fp16.safetensors").path).contains("not a TAESD file"))
        #expect(message(PipelineTests.fixtures.appendingPathComponent("tiny").path).contains("no TAESD here"))
        #expect(message("/no/such/taesd.safetensors").contains("does not exist"))
        // A decoder file missing one block's convolution.
        let records = try SafeTensors.read(path: Self.fixture("taesd_decoder.safetensors"))
        let path = CheckpointVariantTests.temporary("taesd_decoder.safetensors")
        try SafeTensorsWriter.write(records.filter { !$0.key.hasPrefix("9.conv.2.") }, to: path)
        let missing = message(path)
        #expect(missing.contains("not a TAESD of SD 1.x's layout") && missing.contains("decoder.layers.8.conv.2.weight"))
    }
}

@Suite("TAESD: the decoder's cost")
struct TinyAutoencoderCostTests {
    @Test("SD's TAESD decoder costs 141.4 GFLOP at 512x512, counted by hand level by level (the VAE decoder: 2.5 TFLOP)")
    func flopCount() throws {
        let decoder = try TinyDecoder(Weights(RandomWeights.store(seed: 4))["decoder"]["layers"], configuration: .sd)
        // A 3x3 convolution from c to c' channels on an h x w map: 2 · c' · c · 9 · h · w.
        func conv(_ cIn: Int, _ cOut: Int, _ side: Int) -> Int { 2 * cOut * cIn * 9 * side * side }
        let byHand = conv(4, 64, 64)                              // conv from the latents, 64x64
            + 9 * conv(64, 64, 64) + conv(64, 64, 128)            // 3 blocks, up to 128, conv
            + 9 * conv(64, 64, 128) + conv(64, 64, 256)           // 3 blocks, up to 256, conv
            + 9 * conv(64, 64, 256) + conv(64, 64, 512)           // 3 blocks, up to 512, conv
            + 3 * conv(64, 64, 512) + conv(64, 3, 512)            // 1 block, conv to RGB
        #expect(decoder.flopCount(latentHeight: 64, latentWidth: 64) == byHand)
        #expect(abs(Double(byHand) / 1e9 - 141.4) < 0.05)
    }
}
