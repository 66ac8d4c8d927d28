import Foundation
import StableDiffusion
import TensorCore
import Testing

/// The tiny model's three networks and the whole pipeline on the plain kernels: the same outputs as
/// on the fast kernels, and the same as diffusers.
///
/// Tolerances: both kernel sets compute in float32 and differ only in the order of their sums, so
/// each layer's outputs differ by a few ulps and the differences add up through the layers; they
/// are held to the bounds the fast kernels meet against PyTorch in TextEncoderTests, UNetTests
/// and VAETests (1e-5, 1e-4, 1e-4), which are 10x or more above what was measured there.
@Suite("The tiny model on the plain kernels")
struct ReferenceKernelsModelTests {
    /// `body` on the fast kernels and on the plain ones, with proof that the plain run used no
    /// fast kernel.
    func bothKernels(_ body: () throws -> Tensor) rethrows -> (fast: Tensor, plain: Tensor) {
        let fast = try Kernels.using(.fast, body)
        let (plain, tally) = try Kernels.counting { try Kernels.using(.reference, body) }
        #expect(tally.calls(.fast) == 0)
        #expect(tally.calls(.reference) > 10)
        return (fast, plain)
    }

    @Test("CLIP text encoder: last hidden state")
    func textEncoder() throws {
        let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
        let store = WeightStore(try SafeTensors.read(path: root.appendingPathComponent("tiny/diffusers/text_encoder/model.safetensors").path))
        let configuration = try CLIPTextConfiguration.load(root.appendingPathComponent("tiny/diffusers/text_encoder/config.json"))
        let model = try CLIPTextModel(Weights(store)["text_model"], configuration: configuration)
        let tokenizer = try CLIPTokenizer()
        let ids = ["a photograph of an astronaut riding a horse", ""].map { tokenizer.tokenize($0).ids }
        let expected = try SafeTensors.read(path: root.appendingPathComponent("reference/text_encoder.safetensors").path)
        let (fast, plain) = bothKernels { model(ids) }
        #expect(plain.maxAbsDifference(fast) < 1e-5)
        #expect(plain.maxAbsDifference(expected["text_encoder.last_hidden_state"]!.tensor()) < 1e-5)
    }

    @Test("UNet: one guided step's noise prediction")
    func unet() throws {
        let unet = try UNetFixtures.model()
        let sample = try UNetFixtures.reference("unet.sample")                     // (2, 4, 16, 16)
        let context = try UNetFixtures.reference("unet.encoder_hidden_states")     // (2, 77, 4)
        let (fast, plain) = bothKernels { unet(sample, timestep: 981, encoderHiddenStates: context) }
        #expect(plain.maxAbsDifference(fast) < 1e-4)
        #expect(plain.maxAbsDifference(try UNetFixtures.reference("unet.out")) < 1e-4)
    }

    @Test("VAE: encode to the posterior mean, and decode")
    func vae() throws {
        let vae = try VAEFixture.vae()
        let reference = try VAEFixture.reference("vae.safetensors")
        let (fastMean, plainMean) = try bothKernels { try vae.encode(reference["vae.image"]!).mean }
        #expect(plainMean.maxAbsDifference(fastMean) < 1e-4)
        #expect(plainMean.maxAbsDifference(reference["vae.latent_mean"]!) < 1e-4)
        let (fastImage, plainImage) = try bothKernels { try vae.decode(scaledLatents: reference["vae.latents"]!) }
        #expect(plainImage.maxAbsDifference(fastImage) < 1e-4)
        #expect(plainImage.maxAbsDifference(reference["vae.decoded"]!) < 1e-4)
    }

    @Test("txt2img: the plain kernels draw the fast kernels' picture")
    func pipeline() throws {
        let pipeline = try PipelineTests.pipeline("tiny/tiny-sd.safetensors")
        let request = PipelineTests.request(.ddim)
        let (fast, plain) = try bothKernels { try pipeline.generate(request, onStep: { _ in }).image }
        // Pixel values in [−1, 1] after 4 guided steps and the decoder: held to the 1e-4 (on [0, 1])
        // the fast kernels meet against diffusers in PipelineTests, 1/40 of one of 255 levels.
        #expect(plain.maxAbsDifference(fast) < 2e-4)
        #expect(PipelineTests.asNumPyImage(plain).maxAbsDifference(PipelineTests.reference("txt2img.ddim.image")) < 1e-4)
    }
}
