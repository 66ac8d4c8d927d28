import TensorCore

/// Trains a UNet the way Stable Diffusion's was trained (Ho et al., 2020; Rombach et al., 2022):
/// noise a clean latent to a random timestep, and teach the network to say which noise was added.
///
/// One step, for latents x₀, text vectors c, timesteps t (one per sample) and noise ε ~ N(0, I):
///
///     x_t  = √ᾱ_t · x₀ + √(1 − ᾱ_t) · ε                  the forward process, in one jump
///     loss = mean((ε_θ(x_t, t, c) − ε)²)                 how wrong the predicted noise is
///     g    = ∂loss/∂θ                                     backpropagation through the whole UNet
///     θ    ← AdamW(θ, clip(g))                            one optimiser step on Float32 master weights
///     θ̄    ← EMA(θ̄, θ)                                    the averaged weights that get released
///
/// The weights live in `parameters`, by checkpoint key; the network is built from them again for
/// every step (building only looks tensors up), so what is trained can be saved as is.
///
/// ```swift
/// var trainer = try UNetTrainer(parameters: weights, configuration: config, optimiser: AdamW(learningRate: 1e-4))
/// var generator = TorchGenerator(seed: 0)
/// let loss = try trainer.step(latents: x0, context: text, generator: &generator)   // random t and ε
/// ```
public struct UNetTrainer {
    /// The Float32 master weights, by checkpoint key.
    public private(set) var parameters: [String: Tensor]
    public let configuration: UNetConfiguration
    /// Clipping, AdamW and the moving average.
    public var update: ParameterUpdate
    public var optimiser: AdamW { update.optimiser }
    /// The moving average of the weights (nil: none kept).
    public var averaged: ExponentialMovingAverage? { update.averaged }
    /// The forward process's ᾱ_t (Stable Diffusion's scaled-linear schedule by default).
    public let schedule: NoiseSchedule
    /// The gradient length before clipping at the last step (a sudden jump means trouble).
    public var lastGradientNorm: Float { update.lastGradientNorm }
    /// Each sample of the last step: its timestep and its own squared error (the step's loss is
    /// their mean). Shows which noise levels are hard to learn.
    public private(set) var lastSamples: [SampleLoss] = []

    /// One training sample's timestep and mean squared error.
    public struct SampleLoss: Sendable, Equatable {
        public let timestep: Int
        public let loss: Float
        public init(timestep: Int, loss: Float) { (self.timestep, self.loss) = (timestep, loss) }
    }

    /// Checks the settings and that `parameters` are exactly the weights `configuration` asks for
    /// (a missing, extra or misshapen one is named), so no step can fail on them later.
    public init(parameters: [String: Tensor], configuration: UNetConfiguration, optimiser: AdamW,
                maxGradientNorm: Float? = 1, emaDecay: Float? = nil,
                schedule: NoiseSchedule = NoiseSchedule(.scaledLinear)) throws {
        self.update = try ParameterUpdate(optimiser: optimiser, maxGradientNorm: maxGradientNorm, emaDecay: emaDecay,
                                          parameters: parameters)
        self.parameters = parameters
        self.configuration = configuration
        self.schedule = schedule
        _ = try unet()
    }

    /// The network with the current weights.
    public func unet() throws -> UNet2DConditionModel {
        try Self.unet(parameters, configuration: configuration)
    }

    /// The network with the averaged weights (the current ones if no average is kept).
    public func averagedUNet() throws -> UNet2DConditionModel {
        try Self.unet(averaged?.shadow ?? parameters, configuration: configuration)
    }

    private static func unet(_ parameters: [String: Tensor], configuration: UNetConfiguration) throws -> UNet2DConditionModel {
        let store = WeightStore(tensors: parameters)
        let unet = try UNet2DConditionModel(Weights(store), configuration: configuration)
        try store.checkAllUsed()
        return unet
    }

    /// The loss and every weight's gradient at the current weights, without changing them.
    public func lossAndGradients(latents: Tensor, context: Tensor, timesteps: [Int], noise: Tensor) throws
        -> (loss: Float, gradients: Gradients) {
        let result = try lossAndAllGradients(latents: latents, context: context, timesteps: timesteps, noise: noise)
        return (result.loss, result.gradients)
    }

    /// `lossAndGradients`, and the gradient of the loss with respect to the text vectors.
    func lossAndAllGradients(latents: Tensor, context: Tensor, timesteps: [Int], noise: Tensor) throws
        -> (loss: Float, gradients: Gradients, dContext: Tensor, samples: [SampleLoss]) {
        try checkBatch(latents: latents, context: context, timesteps: timesteps, noise: noise)
        let unet = try Profiler.measure("building the UNet from its weights") { try self.unet() }
        // x_t per sample: each has its own timestep.
        let noisy = Tensor.concatenate(timesteps.indices.map { n in
            schedule.addNoise(to: latents.slice(n..<n + 1), noise: noise.slice(n..<n + 1), at: timesteps[n])
        }, axis: 0)
        let (prediction, saved) = unet.trainingForward(noisy, timesteps: timesteps.map(Float.init), encoderHiddenStates: context)
        let (loss, dPrediction) = meanSquaredError(prediction, noise)
        var gradients = Gradients()
        let (_, dContext) = unet.backward(dPrediction, saved: saved, gradients: &gradients)
        // Sample n's own loss: the mean of (ε̂ − ε)² over its numbers.
        let perSample = prediction.count / max(1, timesteps.count)
        let samples = timesteps.indices.map { n in
            let range = n * perSample..<(n + 1) * perSample
            let sum = zip(prediction.scalars[range], noise.scalars[range]).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
            return SampleLoss(timestep: timesteps[n], loss: sum / Float(perSample))
        }
        return (loss, gradients, dContext, samples)
    }

    /// One training step: loss, gradients, clipping, AdamW, the moving average. Returns the loss
    /// before the step.
    @discardableResult
    public mutating func step(latents: Tensor, context: Tensor, timesteps: [Int], noise: Tensor) throws -> Float {
        try stepReturningContextGradient(latents: latents, context: context, timesteps: timesteps, noise: noise).loss
    }

    /// `step`, also returning the gradient of the loss with respect to `context`, from which a text
    /// encoder trained together with the UNet continues its backward.
    public mutating func stepReturningContextGradient(latents: Tensor, context: Tensor, timesteps: [Int], noise: Tensor) throws
        -> (loss: Float, dContext: Tensor) {
        let (loss, gradients, dContext, samples) = try lossAndAllGradients(latents: latents, context: context,
                                                                            timesteps: timesteps, noise: noise)
        update.apply(gradients.tensors, to: &parameters)
        lastSamples = samples
        return (loss, dContext)
    }

    /// One training step with the timesteps drawn uniformly from the schedule's and the noise from
    /// `generator` (timesteps first, then the noise), so a seed fixes the whole run.
    @discardableResult
    public mutating func step(latents: Tensor, context: Tensor, generator: inout TorchGenerator) throws -> Float {
        let (timesteps, noise) = drawTimestepsAndNoise(like: latents, generator: &generator)
        return try step(latents: latents, context: context, timesteps: timesteps, noise: noise)
    }

    /// t uniform over the schedule's training steps for each sample, then ε ~ N(0, I) of the latents' shape.
    public func drawTimestepsAndNoise(like latents: Tensor, generator: inout TorchGenerator) -> (timesteps: [Int], noise: Tensor) {
        let count = schedule.trainingSteps
        let timesteps = (0..<(latents.shape.first ?? 0)).map { _ in min(count - 1, Int(generator.uniformFloat() * Float(count))) }
        return (timesteps, generator.randn(latents.shape))
    }

    /// Throws a `TrainingError` naming the first thing about a batch that does not fit the network.
    private func checkBatch(latents: Tensor, context: Tensor, timesteps: [Int], noise: Tensor) throws {
        let c = configuration
        guard latents.rank == 4, latents.shape[1] == c.inChannels else {
            throw TrainingError.batchShape("latents must be (batch, \(c.inChannels), height, width), got \(latents.shape)")
        }
        let batch = latents.shape[0], factor = 1 << (c.blockOutChannels.count - 1)
        guard batch >= 1 else { throw TrainingError.setting("batch size", value: "\(batch)", mustBe: "at least 1") }
        guard latents.shape[2] % factor == 0, latents.shape[3] % factor == 0, latents.shape[2] > 0, latents.shape[3] > 0 else {
            throw TrainingError.batchShape("the latents' height and width must be multiples of \(factor) "
                                           + "(the UNet halves them \(c.blockOutChannels.count - 1) times), got \(latents.shape)")
        }
        guard noise.shape == latents.shape else {
            throw TrainingError.batchShape("noise \(noise.shape) for latents \(latents.shape)")
        }
        guard context.rank == 3, context.shape[0] == batch, context.shape[1] >= 1, context.shape[2] == c.crossAttentionDim else {
            throw TrainingError.batchShape("text vectors must be (\(batch), tokens, \(c.crossAttentionDim)), got \(context.shape)")
        }
        guard timesteps.count == batch else {
            throw TrainingError.batchShape("\(timesteps.count) timesteps for \(batch) samples")
        }
        let count = schedule.trainingSteps
        if let outside = timesteps.first(where: { !(0..<count).contains($0) }) {
            throw TrainingError.batchShape("timestep \(outside) is outside the schedule's 0...\(count - 1)")
        }
    }
}

extension UNetTrainer {
    /// Writes the weights as a diffusers UNet file (`unet/diffusion_pytorch_model.safetensors`),
    /// under the same keys they were loaded with, atomically: float32, or float16 as most shared
    /// checkpoints are. With `averaged`, the moving average is written, as a release would be.
    public func save(to path: String, precision: HalfTensor.Format? = nil, averaged useAverage: Bool = false) throws {
        let weights = useAverage ? (averaged?.shadow ?? parameters) : parameters
        try SafeTensorsWriter.write(weights, precision: precision, to: path, metadata: ["format": "pt"])
    }
}
