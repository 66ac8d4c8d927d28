import TensorCore

/// Trains a UNet and its text encoder together on captioned latents, as the latent diffusion
/// paper's text-to-image model trained its own transformer (SD 1.x instead kept OpenAI's CLIP
/// frozen). One step:
///
///     caption → "" with probability p (10%)      so the model also learns the unconditional ε̂
///     c  = text_encoder(tokenize(caption))       the text vectors cross-attention reads
///     t, ε drawn; x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε
///     L  = ‖ε − ε̂(x_t, t, c)‖² / n
///     backward through the UNet, then on from dL/dc through the text encoder; both networks step
///
/// Dropping captions is what makes classifier-free guidance possible: at sampling time the model
/// is asked for ε̂ with and without the caption, and the difference is amplified.
///
/// ```swift
/// var trainer = try TextToImageTrainer(unet: unetTrainer, textParameters: clipWeights,
///                                      textConfiguration: clipConfig, tokenizer: tokenizer, optimiser: AdamW(validating: 1e-3))
/// var generator = TorchGenerator(seed: 0)
/// let loss = try trainer.step(latents: x0, captions: ["a red circle", "a blue square at the top"], generator: &generator)
/// ```
public struct TextToImageTrainer {
    public private(set) var unet: UNetTrainer
    /// The text encoder's Float32 master weights, by checkpoint key (`text_model.embeddings...`).
    public private(set) var textParameters: [String: Tensor]
    public let textConfiguration: CLIPTextConfiguration
    /// Clipping, AdamW and the moving average of the text encoder.
    public var textUpdate: ParameterUpdate
    public let tokenizer: CLIPTokenizer
    /// The share of captions replaced by the empty prompt.
    public let captionDropout: Float

    public init(unet: UNetTrainer, textParameters: [String: Tensor], textConfiguration: CLIPTextConfiguration,
                tokenizer: CLIPTokenizer, optimiser: AdamW, maxGradientNorm: Float? = 1, emaDecay: Float? = nil,
                captionDropout: Float = 0.1) throws {
        guard (0...1).contains(captionDropout) else {
            throw TrainingError.setting("caption dropout", value: "\(captionDropout)", mustBe: "in [0, 1]")
        }
        guard textConfiguration.hiddenSize == unet.configuration.crossAttentionDim else {
            throw TrainingError.setting("text encoder's width", value: "\(textConfiguration.hiddenSize)",
                                        mustBe: "the UNet's cross-attention width \(unet.configuration.crossAttentionDim)")
        }
        self.unet = unet
        self.textParameters = textParameters
        self.textConfiguration = textConfiguration
        self.tokenizer = tokenizer
        self.captionDropout = captionDropout
        textUpdate = try ParameterUpdate(optimiser: optimiser, maxGradientNorm: maxGradientNorm, emaDecay: emaDecay,
                                         parameters: textParameters)
        _ = try textEncoder()
    }

    /// Sets both networks' learning rate (a warm-up changes it step by step).
    public mutating func setLearningRate(_ rate: Float) {
        unet.update.optimiser.learningRate = rate
        textUpdate.optimiser.learningRate = rate
    }

    /// Continues the UNet's optimiser and average from a saved state.
    public mutating func restoreUNetUpdate(_ snapshot: ParameterUpdateSnapshot) throws {
        try unet.update.restore(snapshot, parameters: unet.parameters)
    }

    /// The text encoder with the current weights.
    public func textEncoder() throws -> CLIPTextModel { try Self.textEncoder(textParameters, configuration: textConfiguration) }

    /// The text encoder with the averaged weights (the current ones if no average is kept).
    public func averagedTextEncoder() throws -> CLIPTextModel {
        try Self.textEncoder(textUpdate.averaged?.shadow ?? textParameters, configuration: textConfiguration)
    }

    private static func textEncoder(_ parameters: [String: Tensor], configuration: CLIPTextConfiguration) throws -> CLIPTextModel {
        let store = WeightStore(tensors: parameters)
        let model = try CLIPTextModel(Weights(store)["text_model"], configuration: configuration)
        try store.checkAllUsed()
        return model
    }

    /// One step on latents `(N, 4, h, w)` (already scaled) and their N captions. The generator
    /// draws, in order, which captions to drop, the timesteps and the noise. Returns the loss before the step.
    @discardableResult
    public mutating func step(latents: Tensor, captions: [String], generator: inout TorchGenerator) throws -> Float {
        guard captions.count == latents.shape.first else {
            throw TrainingError.batchShape("\(captions.count) captions for \(latents.shape.first ?? 0) latents")
        }
        let kept = captions.map { generator.uniformFloat() >= captionDropout ? $0 : "" }
        let (timesteps, noise) = unet.drawTimestepsAndNoise(like: latents, generator: &generator)
        let encoder = try textEncoder()
        let (context, saved) = encoder.trainingForward(kept.map { tokenizer.tokenize($0).ids })
        let (loss, dContext) = try unet.stepReturningContextGradient(latents: latents, context: context, timesteps: timesteps, noise: noise)
        var gradients = Gradients()
        encoder.backward(dContext, saved: saved, gradients: &gradients)
        textUpdate.apply(gradients.tensors, to: &textParameters)
        return loss
    }
}
