import TensorCore

/// Trains an `AutoencoderKL` the way Stable Diffusion's first stage was trained, less the
/// perceptual and adversarial terms: encode, sample the latent, decode, and
///
///     L = (1/N) Σ_n Σ_pixels |x − x̂|  +  w · (1/N) Σ_n KL(N(μ, σ²) ‖ N(0, 1))      w = 10⁻⁶ in SD
///
/// The reconstruction term makes the decoder redraw the picture from 48 times fewer numbers; the
/// KL term, tiny on purpose, only keeps the latents from drifting to huge values or collapsing
/// their spread, which is why SD's latents still need scaling (0.18215) before diffusion.
/// Internally the loss is divided by the pixels per sample (a mean), which AdamW does not notice.
///
/// ```swift
/// var trainer = try VAETrainer(parameters: weights, configuration: config, optimiser: AdamW(validating: 1e-3))
/// var generator = TorchGenerator(seed: 0)
/// let losses = try trainer.step(images: pictures, generator: &generator)   // L1 per pixel and KL per sample
/// ```
public struct VAETrainer {
    /// The Float32 master weights, by checkpoint key (`encoder.conv_in.weight`, ...).
    public private(set) var parameters: [String: Tensor]
    public let configuration: VAEConfiguration
    /// Clipping, AdamW and the moving average.
    public var update: ParameterUpdate
    /// w of the formula, against the reconstruction error summed over a sample's pixels.
    public let klWeight: Float

    public init(parameters: [String: Tensor], configuration: VAEConfiguration, optimiser: AdamW,
                maxGradientNorm: Float? = 1, emaDecay: Float? = nil, klWeight: Float = 1e-6) throws {
        guard klWeight >= 0, klWeight.isFinite else {
            throw TrainingError.setting("KL weight", value: "\(klWeight)", mustBe: "0 or more")
        }
        update = try ParameterUpdate(optimiser: optimiser, maxGradientNorm: maxGradientNorm, emaDecay: emaDecay, parameters: parameters)
        self.parameters = parameters
        self.configuration = configuration
        self.klWeight = klWeight
        _ = try vae()
    }

    /// The autoencoder with the current weights (checking that they are exactly the ones it needs).
    public func vae() throws -> AutoencoderKL { try Self.vae(parameters, configuration: configuration) }

    /// The autoencoder with the averaged weights (the current ones if no average is kept).
    public func averagedVAE() throws -> AutoencoderKL {
        try Self.vae(update.averaged?.shadow ?? parameters, configuration: configuration)
    }

    private static func vae(_ parameters: [String: Tensor], configuration: VAEConfiguration) throws -> AutoencoderKL {
        let store = WeightStore(tensors: parameters)
        let vae = try AutoencoderKL(Weights(store), configuration: configuration)
        try store.checkAllUsed()
        return vae
    }

    /// One step on a batch of pictures `(N, 3, H, W)` in [−1, 1], with the latent's sampling noise
    /// drawn from `generator`. Returns the two terms before the step: the mean absolute error per
    /// pixel and the KL per sample.
    @discardableResult
    public mutating func step(images: Tensor, generator: inout TorchGenerator) throws -> (reconstruction: Float, kl: Float) {
        guard images.rank == 4, images.shape[0] >= 1, images.shape[1] == configuration.inChannels else {
            throw TrainingError.batchShape("pictures must be (batch, \(configuration.inChannels), height, width), got \(images.shape)")
        }
        let factor = configuration.downsamplingFactor
        let latentShape = [images.shape[0], configuration.latentChannels, images.shape[2] / factor, images.shape[3] / factor]
        let vae = try Profiler.measure("building the VAE from its weights") { try self.vae() }
        let (reconstruction, posterior, saved) = try vae.trainingForward(images, noise: generator.randn(latentShape))
        let l1 = meanAbsoluteError(reconstruction, images)
        let kl = gaussianKL(mean: posterior.mean, logvar: posterior.logvar)
        // The KL's share of the per-pixel mean: w divided by the pixels of one sample.
        let share = klWeight / Float(images.count / images.shape[0])
        var gradients = Gradients()
        vae.backward(l1.gradient, dMean: kl.dMean * share, dLogvar: kl.dLogvar * share, saved: saved, gradients: &gradients)
        update.apply(gradients.tensors, to: &parameters)
        return (l1.loss, kl.loss)
    }

    /// Writes the weights (or their moving average) as a diffusers `vae/diffusion_pytorch_model.safetensors`.
    public func save(to path: String, precision: HalfTensor.Format? = nil, averaged: Bool = false) throws {
        let weights = averaged ? (update.averaged?.shadow ?? parameters) : parameters
        try SafeTensorsWriter.write(weights, precision: precision, to: path, metadata: ["format": "pt"])
    }
}
