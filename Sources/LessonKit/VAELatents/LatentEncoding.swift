import StableDiffusion
import TensorCore

/// What the VAE's encoder made of a picture, and the numbers lesson 3 prints about it.
///
/// The encoder answers with a diagonal Gaussian per latent number (mean μ, log-variance);
/// Stable Diffusion takes μ and multiplies it by the scaling factor s (0.18215 in SD 1.x):
/// z = s · μ, `(1, C, H/8, W/8)`, the latent the UNet sees.
public struct LatentEncoding {
    /// μ, the encoder's mean, unscaled.
    public let mean: Tensor
    /// z = s · μ.
    public let latents: Tensor
    /// s.
    public let scalingFactor: Float
    /// The average σ = exp(½ · log-variance) over all latent numbers.
    public let averageSigma: Float
    /// The average |μ|.
    public let averageMagnitude: Float

    /// Reads `posterior` and scales its mean by `scalingFactor`.
    public init(posterior: DiagonalGaussian, scalingFactor: Float) {
        mean = posterior.mean
        latents = posterior.mean * scalingFactor
        self.scalingFactor = scalingFactor
        averageSigma = posterior.standardDeviation.mean
        averageMagnitude = posterior.mean.map(abs).mean
    }

    /// Each channel of z, summarised.
    public var channels: [TensorSummary] { LatentChannels.split(latents).map(TensorSummary.init) }

    /// The scale of z's decode when the factor is not undone (decode(z)): 1/s too small, and
    /// when it is undone twice (decode(z / s²)): 1/s too large.
    public var scalingMistake: Float { 1 / scalingFactor }
}
