import StableDiffusion
import TensorCore

/// The training objective on one picture, asked of a trained network and of the same network at
/// its random starting weights:
///
///     x₀ = scaling factor · E(picture),   x_t = √ᾱ_t · x₀ + √(1 − ᾱ_t) · ε,   loss = mean((ε̂ − ε)²)
///
/// ```swift
/// let tools = try TrainingObjective(pipeline: try StableDiffusionPipeline(checkpoint: "Examples/tiny-shapes"))
/// let example = try tools.example(scene: ShapesDataset(seed: 0).scene(3), timesteps: [50, 950], seed: 0)
/// ```
public struct TrainingObjective {
    public let pipeline: StableDiffusionPipeline
    let vae: AutoencoderKL
    let trained: UNet2DConditionModel
    /// The same architecture with the random weights a training run starts from.
    let untrained: UNet2DConditionModel
    /// SD's training schedule (scaled-linear β from 0.00085 to 0.012).
    let schedule = NoiseSchedule(.scaledLinear)

    /// What one picture at one timestep looks like to the networks.
    public struct Row: Sendable {
        public let timestep: Int
        public let alphaBar: Double
        /// mean((ε̂ − ε)²) of the untrained network, the trained one with the caption, and the
        /// trained one with the empty prompt.
        public let untrainedLoss, trainedLoss, emptyPromptLoss: Float
        /// Pictures (1, 3, H, W): x_t decoded, and the x̂₀ each network's ε̂ implies, decoded.
        public let noisy, trainedClean, untrainedClean: Tensor
    }

    public struct Example: Sendable {
        public let caption: String
        /// The picture (1, 3, H, W) and its round trip through the VAE.
        public let picture, roundTrip: Tensor
        public let rows: [Row]
    }

    /// - Parameter seed: the untrained network's weights (as `TinyShapesTraining` draws them from its recipe's seed).
    public init(pipeline: StableDiffusionPipeline, seed: UInt64 = 0) throws {
        self.pipeline = pipeline
        vae = try pipeline.vae()
        trained = try pipeline.unet()
        let configuration = pipeline.configuration.unet
        let start = try RandomWeights.parameters(seed: seed &+ 3) { _ = try UNet2DConditionModel($0, configuration: configuration) }
        untrained = try UNet2DConditionModel(Weights(WeightStore(tensors: start)), configuration: configuration)
    }

    /// The scaled latents of pictures `(N, 3, H, W)`: the encoder's mean times the scaling factor.
    public func latents(_ pixels: Tensor) throws -> Tensor {
        try vae.encode(pixels).mean * vae.scalingFactor
    }

    /// `scene` noised to each of `timesteps` with one noise draw (seed `seed`), and what the networks say.
    public func example(scene: ShapeScene, timesteps: [Int], seed: UInt64) throws -> Example {
        let size = pipeline.configuration.unet.sampleSize * pipeline.configuration.vae.downsamplingFactor
        let picture = scene.render(size: size)
        let x0 = try latents(picture)
        var generator = TorchGenerator(seed: seed)
        let noise = generator.randn(x0.shape)
        let (text, empty) = try (pipeline.encode(prompts: [scene.caption]), pipeline.encode(prompts: [""]))
        let rows = try timesteps.map { t -> Row in
            let xt = schedule.addNoise(to: x0, noise: noise, at: t)
            let fromTrained = trained(xt, timestep: Float(t), encoderHiddenStates: text)
            let fromEmpty = trained(xt, timestep: Float(t), encoderHiddenStates: empty)
            let fromUntrained = untrained(xt, timestep: Float(t), encoderHiddenStates: text)
            // x̂₀ = (x_t − √(1 − ᾱ_t) · ε̂) / √ᾱ_t, the clean latents an ε̂ implies.
            let clean = { (epsilon: Tensor) in
                (xt - epsilon * Float(self.schedule.noiseScale(at: t))) * Float(1 / self.schedule.signalScale(at: t))
            }
            return Row(timestep: t, alphaBar: schedule.alphasCumprod[t],
                       untrainedLoss: meanSquaredError(fromUntrained, noise).loss,
                       trainedLoss: meanSquaredError(fromTrained, noise).loss,
                       emptyPromptLoss: meanSquaredError(fromEmpty, noise).loss,
                       noisy: try vae.decode(scaledLatents: xt), trainedClean: try vae.decode(scaledLatents: clean(fromTrained)),
                       untrainedClean: try vae.decode(scaledLatents: clean(fromUntrained)))
        }
        return Example(caption: scene.caption, picture: picture, roundTrip: try vae.decode(scaledLatents: x0), rows: rows)
    }
}
