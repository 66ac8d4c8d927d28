import TensorCore

/// Trains an `AutoencoderKL` the way Stable Diffusion's first stage was trained, less the
/// adversarial term: encode, sample the latent, decode, and
///
///     L = (1/N) Σ_n Σ_pixels (|x − x̂| + s·(x − x̂)²)  +  w · (1/N) Σ_n KL(N(μ, σ²) ‖ N(0, 1))
///
/// with w = 10⁻⁶ as in SD. The reconstruction term makes the decoder redraw the picture from 48
/// times fewer numbers; the KL term, tiny on purpose, only keeps the latents from drifting to huge
/// values or collapsing their spread, which is why SD's latents still need scaling (0.18215)
/// before diffusion. SD adds a perceptual term (LPIPS, a network trained on photographs) that
/// punishes a wrong shape or colour more than slight blur everywhere; the squared error, weighted
/// by s, plays that part here: L1's gradient is the same for every wrong pixel, so on mostly-
/// background pictures a shape of the wrong colour barely counts, while the square weighs each
/// pixel by how wrong it is. Internally the loss is divided by the pixels per sample (a mean),
/// which AdamW does not notice.
///
/// ```swift
/// var trainer = try VAETrainer(parameters: weights, configuration: config, optimiser: AdamW(validating: 1e-3))
/// var generator = TorchGenerator(seed: 0)
/// let losses = try trainer.step(images: pictures, generator: &generator)   // L1 and KL, and the squared error
/// ```
public struct VAETrainer {
    /// The Float32 master weights, by checkpoint key (`encoder.conv_in.weight`, ...).
    public private(set) var parameters: [String: Tensor]
    public let configuration: VAEConfiguration
    /// Clipping, AdamW and the moving average.
    public var update: ParameterUpdate
    /// w of the formula, against the reconstruction error summed over a sample's pixels.
    public let klWeight: Float
    /// s of the formula: the squared error's weight beside the absolute error (0: L1 alone, as SD).
    public let squaredErrorWeight: Float

    public init(parameters: [String: Tensor], configuration: VAEConfiguration, optimiser: AdamW,
                maxGradientNorm: Float? = 1, emaDecay: Float? = nil, klWeight: Float = 1e-6,
                squaredErrorWeight: Float = 0) throws {
        for (name, weight) in [("KL weight", klWeight), ("squared-error weight", squaredErrorWeight)] where !(weight >= 0 && weight.isFinite) {
            throw TrainingError.setting(name, value: "\(weight)", mustBe: "0 or more")
        }
        update = try ParameterUpdate(optimiser: optimiser, maxGradientNorm: maxGradientNorm, emaDecay: emaDecay, parameters: parameters)
        self.parameters = parameters
        self.configuration = configuration
        self.klWeight = klWeight
        self.squaredErrorWeight = squaredErrorWeight
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
    /// drawn from `generator`. Returns the terms before the step: the mean absolute error per
    /// pixel, the KL per sample and the mean squared error per pixel.
    @discardableResult
    public mutating func step(images: Tensor, generator: inout TorchGenerator) throws
        -> (reconstruction: Float, kl: Float, squared: Float) {
        guard images.rank == 4, images.shape[0] >= 1, images.shape[1] == configuration.inChannels else {
            throw TrainingError.batchShape("pictures must be (batch, \(configuration.inChannels), height, width), got \(images.shape)")
        }
        let factor = configuration.downsamplingFactor
        let latentShape = [images.shape[0], configuration.latentChannels, images.shape[2] / factor, images.shape[3] / factor]
        let vae = try Profiler.measure("building the VAE from its weights") { try self.vae() }
        let (reconstruction, posterior, saved) = try vae.trainingForward(images, noise: generator.randn(latentShape))
        let l1 = meanAbsoluteError(reconstruction, images)
        let l2 = meanSquaredError(reconstruction, images)
        let dReconstruction = squaredErrorWeight == 0 ? l1.gradient : l1.gradient.scaled(1, plus: l2.gradient, times: squaredErrorWeight)
        let kl = gaussianKL(mean: posterior.mean, logvar: posterior.logvar)
        // The KL's share of the per-pixel mean: w divided by the pixels of one sample.
        let share = klWeight / Float(images.count / images.shape[0])
        var gradients = Gradients()
        vae.backward(dReconstruction, dMean: kl.dMean * share, dLogvar: kl.dLogvar * share, saved: saved, gradients: &gradients)
        update.apply(gradients.tensors, to: &parameters)
        return (l1.loss, kl.loss, l2.loss)
    }

    /// Writes the weights (or their moving average) as a diffusers `vae/diffusion_pytorch_model.safetensors`.
    public func save(to path: String, precision: HalfTensor.Format? = nil, averaged: Bool = false) throws {
        let weights = averaged ? (update.averaged?.shadow ?? parameters) : parameters
        try SafeTensorsWriter.write(weights, precision: precision, to: path, metadata: ["format": "pt"])
    }
}
