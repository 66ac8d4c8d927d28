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
///
/// The weights live in `parameters`, by checkpoint key; the network is built from them again for
/// every step (building only looks tensors up), so what is trained can be saved as is.
///
/// ```swift
/// var trainer = UNetTrainer(parameters: weights, configuration: config, optimiser: AdamW(learningRate: 1e-4))
/// let loss = try trainer.step(latents: x0, context: text, timesteps: [500, 120], noise: epsilon)
/// ```
public struct UNetTrainer {
    /// The Float32 master weights, by checkpoint key.
    public private(set) var parameters: [String: Tensor]
    public let configuration: UNetConfiguration
    public var optimiser: AdamW
    /// Gradients are scaled down together to at most this length (nil: never).
    public var maxGradientNorm: Float?
    /// The forward process's ᾱ_t (Stable Diffusion's scaled-linear schedule by default).
    public let schedule: NoiseSchedule

    public init(parameters: [String: Tensor], configuration: UNetConfiguration, optimiser: AdamW,
                maxGradientNorm: Float? = 1, schedule: NoiseSchedule = NoiseSchedule(.scaledLinear)) {
        self.parameters = parameters
        self.configuration = configuration
        self.optimiser = optimiser
        self.maxGradientNorm = maxGradientNorm
        self.schedule = schedule
    }

    /// The network with the current weights.
    public func unet() throws -> UNet2DConditionModel {
        let store = WeightStore(tensors: parameters)
        let unet = try UNet2DConditionModel(Weights(store), configuration: configuration)
        try store.checkAllUsed()
        return unet
    }

    /// The loss and every weight's gradient at the current weights, without changing them.
    public func lossAndGradients(latents: Tensor, context: Tensor, timesteps: [Int], noise: Tensor) throws
        -> (loss: Float, gradients: Gradients) {
        precondition(timesteps.count == latents.shape[0] && noise.shape == latents.shape,
                     "\(timesteps.count) timesteps and noise \(noise.shape) for latents \(latents.shape)")
        let unet = try unet()
        // x_t per sample: each has its own timestep.
        let noisy = Tensor.concatenate(timesteps.indices.map { n in
            schedule.addNoise(to: latents.slice(n..<n + 1), noise: noise.slice(n..<n + 1), at: timesteps[n])
        }, axis: 0)
        let (prediction, saved) = unet.trainingForward(noisy, timesteps: timesteps.map(Float.init), encoderHiddenStates: context)
        let (loss, dPrediction) = meanSquaredError(prediction, noise)
        var gradients = Gradients()
        _ = unet.backward(dPrediction, saved: saved, gradients: &gradients)
        return (loss, gradients)
    }

    /// One training step: loss, gradients, clipping, AdamW. Returns the loss before the step.
    @discardableResult
    public mutating func step(latents: Tensor, context: Tensor, timesteps: [Int], noise: Tensor) throws -> Float {
        let (loss, gradients) = try lossAndGradients(latents: latents, context: context, timesteps: timesteps, noise: noise)
        var tensors = gradients.tensors
        if let maxGradientNorm { clipGradientNorm(&tensors, maxNorm: maxGradientNorm) }
        optimiser.step(&parameters, gradients: tensors)
        return loss
    }
}

extension UNetTrainer {
    /// Writes the current weights as a diffusers UNet file (`unet/diffusion_pytorch_model.safetensors`),
    /// under the same keys it was loaded with, atomically: float32, or float16 as most shared
    /// checkpoints are.
    public func save(to path: String, precision: HalfTensor.Format? = nil) throws {
        try SafeTensorsWriter.write(parameters, precision: precision, to: path, metadata: ["format": "pt"])
    }
}
