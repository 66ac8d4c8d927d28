import Foundation
import TensorCore

/// What one denoising step did, handed to the caller after every step (for progress bars, frames
/// and the lessons' explanations). Latents are `(1, 4, h, w)` at the UNet's scale.
public struct DenoisingStep: @unchecked Sendable {
    /// 0-based position among the steps that run, and how many run.
    public let index: Int
    public let count: Int
    public let timestep: Float
    /// σ of this step for the samplers that use one (Euler, DPM-Solver).
    public let sigma: Float?
    /// x_t: the noisy latent the step started from.
    public let latents: Tensor
    /// The guided noise prediction ε that the sampler used.
    public let noisePrediction: Tensor
    /// The two halves of the guidance batch (nil when guidance is off).
    public let unconditionalNoise: Tensor?
    public let textNoise: Tensor?
    /// The sampler's estimate of the clean latent x₀ at this step.
    public let predictedOriginal: Tensor
    /// The latent after the step, x_{t−1}.
    public let next: Tensor
}

/// The picture and how long each stage took.
public struct GenerationResult: @unchecked Sendable {
    /// `(1, 3, height, width)`, in [−1, 1] up to overshoot (not clamped).
    public let image: Tensor
    /// The final latent `(1, 4, height/8, width/8)`, at the UNet's scale.
    public let latents: Tensor
    /// Stage name and seconds, in order.
    public let timings: [(stage: String, seconds: Double)]
}

/// Stable Diffusion 1.x text-to-image and image-to-image, exactly as diffusers' pipelines run it.
///
/// ```swift
/// let pipeline = try StableDiffusionPipeline(checkpoint: "v1-5-pruned-emaonly.safetensors")
/// var request = GenerationRequest(prompt: "a lighthouse at dawn, oil painting")
/// request.seed = 42
/// let result = try pipeline.generate(request) { step in print(step.index, step.timestep) }
/// ```
///
/// The networks are built from the memory-mapped checkpoint when first needed. The text encoder
/// is dropped as soon as the prompts are encoded; the UNet and VAE are kept for the next picture.
public final class StableDiffusionPipeline {
    public let checkpoint: Checkpoint
    public let configuration: StableDiffusionConfiguration
    private var cachedUNet: UNet2DConditionModel?
    private var cachedVAE: AutoencoderKL?
    private var cachedTokenizer: CLIPTokenizer?
    /// TAESD, for requests with `decoder = .taesd` and for cheap previews (set by the caller).
    public var tinyAutoencoder: TinyAutoencoder?

    /// Opens a checkpoint (`.safetensors`, `.ckpt` or diffusers folder). Pass `configuration` to
    /// override what would be inferred (needed only for models with non-SD-1.x head or group
    /// counts); `useEMA` picks the UNet's EMA weights of a training checkpoint (see `Checkpoint.open`);
    /// `vae` replaces the checkpoint's VAE with a standalone one (see `Checkpoint.replacingVAE`);
    /// `loras` are merged into the weights, each at its strength (see `Checkpoint.applying`).
    public init(checkpoint path: String, configuration: StableDiffusionConfiguration? = nil, useEMA: Bool = false,
                vae: String? = nil, loras: [(path: String, strength: Double)] = []) throws {
        var checkpoint = try Checkpoint.open(path, useEMA: useEMA)
        if let vae { checkpoint = try checkpoint.replacingVAE(with: vae) }
        if !loras.isEmpty {
            checkpoint = try checkpoint.applying(loras.map { (try LoRA.read(path: $0.path), $0.strength) })
        }
        self.checkpoint = checkpoint
        self.configuration = try configuration ?? StableDiffusionConfiguration(checkpoint: checkpoint)
        // Checked before anything uses a number (a picture size computed from `sample_size`, say):
        // a lying config file is an error here, not an overflow or a billion-layer allocation later.
        try self.configuration.unet.validate()
        try self.configuration.vae.validate()
        try self.configuration.textEncoder.validate()
    }

    /// Throws, naming what is missing, unless the checkpoint holds every network `request` needs
    /// (checked before any work starts): the text encoder and UNet always; SD's VAE unless TAESD
    /// draws the picture of a text-to-image request.
    public func checkComplete(for request: GenerationRequest? = nil) throws {
        _ = try checkpoint.requiredStore(.textEncoder)
        if request?.decoder == .taesd {
            guard tinyAutoencoder?.decoder != nil else {
                throw GenerationError.invalid("the TAESD decoder was asked for but none is loaded (sd generate: --taesd FILE)")
            }
            if request?.initImage == nil { return }
        }
        _ = try checkpoint.requiredStore(.vae)
    }

    // MARK: Components

    /// The tokenizer: the diffusers folder's own files when present, else CLIP's built-in merges.
    public func tokenizer() throws -> CLIPTokenizer {
        if let cachedTokenizer { return cachedTokenizer }
        let tokenizer = try checkpoint.folder.map { try CLIPTokenizer(diffusersFolder: $0) } ?? CLIPTokenizer()
        guard tokenizer.vocabularySize <= configuration.textEncoder.vocabSize else {
            throw CheckpointError.corrupt(checkpoint.path, "the tokenizer has \(tokenizer.vocabularySize) tokens but the text encoder only \(configuration.textEncoder.vocabSize)")
        }
        cachedTokenizer = tokenizer
        return tokenizer
    }

    /// Builds the CLIP text encoder (every tensor checked, none left over).
    public func loadTextEncoder() throws -> CLIPTextModel {
        let store = try checkpoint.requiredStore(.textEncoder)
        let model = try CLIPTextModel(Weights(store)["text_model"], configuration: configuration.textEncoder)
        try store.checkAllUsed()
        return model
    }

    /// The UNet, built on first use.
    public func unet() throws -> UNet2DConditionModel {
        if let cachedUNet { return cachedUNet }
        let store = try checkpoint.requiredStore(.unet)
        var model = try UNet2DConditionModel(Weights(store), configuration: configuration.unet)
        try store.checkAllUsed()
        model.givesBackWeightPages = true
        cachedUNet = model
        return model
    }

    /// The VAE, built on first use.
    public func vae() throws -> AutoencoderKL {
        if let cachedVAE { return cachedVAE }
        let store = try checkpoint.requiredStore(.vae)
        let model = try AutoencoderKL(Weights(store), configuration: configuration.vae)
        try store.checkAllUsed()
        cachedVAE = model
        return model
    }

    // MARK: Text

    /// Text embeddings `(N, 77, D)` for prompts, in the order given.
    public func encode(prompts: [String]) throws -> Tensor {
        let tokenizer = try tokenizer()
        let ids = prompts.map { tokenizer.tokenize($0).ids }
        let encoder = try loadTextEncoder()   // released when this function returns
        defer { checkpoint.store(.textEncoder).releaseMappedPages() }
        return encoder(ids)
    }

    /// The guidance context: `[negative, prompt]` stacked as diffusers does (unconditional first),
    /// or just the prompt when guidance is off.
    public func context(for request: GenerationRequest) throws -> Tensor {
        request.usesGuidance ? try encode(prompts: [request.negativePrompt, request.prompt])
                             : try encode(prompts: [request.prompt])
    }

    // MARK: Sampling

    /// Runs the whole pipeline: text → latents → denoising loop → VAE decode.
    ///
    /// - Parameters:
    ///   - crossAttentionObserver: sees the attention probabilities of every cross-attention
    ///     layer during every UNet call (batch index 0 is the negative prompt when guidance is on).
    ///   - cancellation: looked at before every denoising step; once another thread has set it,
    ///     `generate` stops and throws `GenerationError.cancelled` (a server whose browser went away).
    ///   - onStep: called after every denoising step.
    public func generate(_ request: GenerationRequest, crossAttentionObserver: CrossAttentionObserver? = nil,
                         cancellation: CancellationFlag? = nil,
                         onStep: ((DenoisingStep) -> Void)? = nil) throws -> GenerationResult {
        try request.validate()
        try checkComplete(for: request)
        var timings: [(String, Double)] = []
        func timed<T>(_ stage: String, _ body: () throws -> T) rethrows -> T {
            let start = DispatchTime.now().uptimeNanoseconds
            defer { timings.append((stage, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)) }
            return try body()
        }

        let context: Tensor = try timed("text encoder") { try self.context(for: request) }
        let unet: UNet2DConditionModel = try timed("load unet") { try self.unet() }
        var generator = TorchGenerator(seed: request.seed)
        var scheduler = try request.scheduler.makeScheduler(steps: request.steps, configuration: configuration.scheduler)
        let latentShape = [1, configuration.unet.inChannels, request.height / 8, request.width / 8]

        // Starting point: pure noise (txt2img), or the init image's latent noised to the level
        // where sampling starts (img2img). The random draws happen in diffusers' order.
        var latents: Tensor
        var stepIndices = 0..<scheduler.timesteps.count
        if let initImage = request.initImage {
            let vae: AutoencoderKL = try timed("load vae") { try self.vae() }
            let clean: Tensor = try timed("vae encode") {
                try vae.encode(initImage).sample(generator: &generator) * vae.scalingFactor
            }
            let steps = try scheduler.imageToImageSteps(strength: request.strength)
            stepIndices = steps.stepIndices
            let noise = generator.randn(clean.shape)
            latents = scheduler.addNoise(original: clean, noise: noise, stepIndex: steps.noiseStepIndex)
        } else {
            latents = generator.randn(latentShape) * scheduler.initNoiseSigma
        }

        try timed("denoising") {
            for (position, i) in stepIndices.enumerated() {
                if cancellation?.isSet == true { throw GenerationError.cancelled }
                let t = scheduler.timesteps[i]
                let input = scheduler.scaleModelInput(latents, stepIndex: i)
                var noise: Tensor, unconditional: Tensor?, text: Tensor?
                if request.usesGuidance {
                    // One UNet call on the batch [x, x] with contexts [negative, prompt].
                    let both = unet(Tensor.concatenate([input, input], axis: 0), timestep: t, encoderHiddenStates: context,
                                    crossAttentionObserver: crossAttentionObserver)
                    let halves = both.chunked(2)
                    unconditional = halves[0]
                    text = halves[1]
                    // ε = ε_uncond + w · (ε_text − ε_uncond)
                    noise = halves[0].scaled(1 - request.guidanceScale, plus: halves[1], times: request.guidanceScale)
                } else {
                    noise = unet(input, timestep: t, encoderHiddenStates: context,
                                 crossAttentionObserver: crossAttentionObserver)
                }
                let (next, original) = scheduler.step(modelOutput: noise, stepIndex: i, sample: latents, generator: &generator)
                onStep?(DenoisingStep(index: position, count: stepIndices.count, timestep: t,
                                      sigma: scheduler.sigmas?[i], latents: latents, noisePrediction: noise,
                                      unconditionalNoise: unconditional, textNoise: text,
                                      predictedOriginal: original, next: next))
                latents = next
            }
        }
        // (The UNet has given back its weights' pages block by block: see `givesBackWeightPages`.)
        let image: Tensor
        if request.decoder == .taesd, let tiny = tinyAutoencoder {
            image = try timed("taesd decode") { try tiny.decode(latents) }
        } else {
            let vae: AutoencoderKL = try timed("load vae") { try self.vae() }
            image = try timed("vae decode") {
                guard let tile = request.vaeTileSize else { return try vae.decode(scaledLatents: latents) }
                // Tile and overlap in latent pixels: 8 image pixels each; a quarter overlap as in diffusers.
                return try vae.decodeTiled(scaledLatents: latents, tileSize: tile / 8, overlap: tile / 32)
            }
        }
        return GenerationResult(image: image, latents: latents, timings: timings.filter { $0.1 > 0 || $0.0 != "load vae" })
    }
}
