import Foundation
import StableDiffusion
import TensorCore
import Testing

/// The whole pipeline on the tiny model against diffusers' own runs (fixtures made by
/// Tools/reference/make_reference.py): same prompts, seed, sizes, steps and samplers.
@Suite("Pipeline: tiny model end to end against diffusers")
struct PipelineTests {
    static let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
    static let reference = try! SafeTensors.read(path: fixtures.appendingPathComponent("reference/pipelines.safetensors").path)

    /// The tiny model's sizes come from its diffusers configs (its 4 GroupNorm groups cannot be
    /// read off the shapes of the single file).
    static func tinyConfiguration() throws -> StableDiffusionConfiguration {
        try StableDiffusionConfiguration(checkpoint: Checkpoint.open(fixtures.appendingPathComponent("tiny/diffusers").path))
    }

    static func pipeline(_ layout: String) throws -> StableDiffusionPipeline {
        try StableDiffusionPipeline(checkpoint: fixtures.appendingPathComponent(layout).path,
                                    configuration: tinyConfiguration())
    }

    static func reference(_ name: String) -> Tensor { reference[name]!.tensor() }

    /// diffusers' `output_type="np"`: clamp(x / 2 + 0.5, 0, 1) in NHWC.
    static func asNumPyImage(_ image: Tensor) -> Tensor {
        image.map { min(max($0 / 2 + 0.5, 0), 1) }.permuted([0, 2, 3, 1])
    }

    static func request(_ scheduler: SchedulerKind) -> GenerationRequest {
        var request = GenerationRequest(prompt: "a photograph of an astronaut riding a horse")
        request.negativePrompt = "blurry, low quality"
        request.guidanceScale = 7.5
        request.width = 64
        request.height = 64
        request.steps = 4
        request.seed = 42
        request.scheduler = scheduler
        return request
    }

    // Tolerance: the latents pass through 4-5 UNet evaluations (each ~70 layers, float32 sums in a
    // different order: ~1e-6 per evaluation, see UNetTests) and guidance multiplies the difference
    // of two predictions by 7.5; with random weights the latents grow to |x| ≈ 20-60. Errors are
    // measured relative to the largest latent value; 1e-4 of it is 100x above what float32
    // reordering gives and far below what any wrong formula gives (those differ at the 1e-1 level).
    @Test("txt2img: every step's latents and the final picture match diffusers",
          arguments: [(SchedulerKind.ddim, "ddim"), (.pndm, "pndm"), (.euler, "euler"),
                      (.eulerAncestral, "euler_ancestral"), (.dpmSolverMultistepKarras, "dpmpp_2m_karras")])
    func textToImage(scheduler: SchedulerKind, name: String) throws {
        let pipeline = try Self.pipeline("tiny/tiny-sd.safetensors")
        var steps: [DenoisingStep] = []
        let result = try pipeline.generate(Self.request(scheduler), onStep: { steps.append($0) })
        #expect(steps.count == (scheduler == .pndm ? 5 : 4))
        for step in steps {
            let expected = Self.reference("txt2img.\(name).step\(step.index).latents")
            let scale = max(1, expected.scalars.map(abs).max()!)
            #expect(step.next.maxAbsDifference(expected) / scale < 1e-4, "step \(step.index)")
        }
        let image = Self.asNumPyImage(result.image)
        // Pixels are in [0, 1]; the decoder adds ~30 more layers.
        #expect(image.maxAbsDifference(Self.reference("txt2img.\(name).image")) < 1e-4)
    }

    @Test("the guidance halves are the UNet's predictions for the negative prompt and the prompt")
    func guidanceHalves() throws {
        let pipeline = try Self.pipeline("tiny/tiny-sd.safetensors")
        var first: DenoisingStep?
        _ = try pipeline.generate(Self.request(.ddim), onStep: { if first == nil { first = $0 } })
        let step = try #require(first)
        #expect(step.unconditionalNoise!.maxAbsDifference(Self.reference("txt2img.ddim.step0.noise_pred_uncond")) < 1e-4)
        #expect(step.textNoise!.maxAbsDifference(Self.reference("txt2img.ddim.step0.noise_pred_text")) < 1e-4)
    }

    @Test("a cancellation flag set during a step stops the run before the next one")
    func cancellation() throws {
        let pipeline = try Self.pipeline("tiny/tiny-sd.safetensors")
        let stop = CancellationFlag()
        var seen: [Int] = []
        #expect(throws: GenerationError.cancelled) {
            _ = try pipeline.generate(Self.request(.ddim), cancellation: stop, onStep: { step in
                seen.append(step.index)
                if step.index == 1 { stop.cancel() }
            })
        }
        #expect(seen == [0, 1])
        // A flag that is never set changes nothing.
        var steps = 0
        _ = try pipeline.generate(Self.request(.ddim), cancellation: CancellationFlag(), onStep: { _ in steps += 1 })
        #expect(steps == 4)
    }

    @Test("img2img (DDIM, strength 0.6): the same three steps and picture as diffusers")
    func imageToImage() throws {
        let pipeline = try Self.pipeline("tiny/tiny-sd.safetensors")
        var request = Self.request(.ddim)
        request.steps = 5
        request.seed = 7
        request.strength = 0.6
        request.initImage = Self.reference("img2img.ddim.input_image").map { $0 * 2 - 1 }
        var timesteps: [Float] = []
        let result = try pipeline.generate(request, onStep: { timesteps.append($0.timestep) })
        #expect(timesteps == [401, 201, 1])
        let image = Self.asNumPyImage(result.image)
        #expect(image.maxAbsDifference(Self.reference("img2img.ddim.image")) < 1e-4)
    }

    @Test("the single file (fp32 and fp16) and the diffusers folder give the same picture")
    func layoutsAgree() throws {
        let images = try ["tiny/tiny-sd.safetensors", "tiny/tiny-sd-fp16.safetensors", "tiny/diffusers"].map {
            try Self.pipeline($0).generate(Self.request(.euler)).image
        }
        // The three copies hold exactly the same numbers (the fixture weights are fp16-exact).
        #expect(images[0] == images[1])
        #expect(images[0] == images[2])
    }

    @Test("bad requests are refused before any work, with the reason")
    func badRequests() throws {
        var request = Self.request(.ddim)
        request.width = 100
        #expect(throws: GenerationError.invalid("--width must be a multiple of 8 (the VAE shrinks images 8x), got 100; try 96")) {
            try request.validate()
        }
        request = Self.request(.ddim)
        request.steps = 0
        #expect(throws: GenerationError.self) { try request.validate() }
        request = Self.request(.ddim)
        request.guidanceScale = -1
        #expect(throws: GenerationError.self) { try request.validate() }
    }
}
