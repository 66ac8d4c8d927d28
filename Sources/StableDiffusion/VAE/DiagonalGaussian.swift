import Foundation
import TensorCore

/// The encoder's answer for an image: a Gaussian with a diagonal covariance over latents
/// (diffusers' `DiagonalGaussianDistribution`).
///
/// A *variational* autoencoder does not map an image to one latent but to a distribution of them,
/// `N(mean, diag(exp(logvar)))`. Training draws from it so that nearby latents decode to similar
/// images, which is what makes the latent space smooth enough for diffusion. The KL term of the
/// training loss was weighted very lightly in SD 1.x, so the learned variance is small and `mean`
/// and a sample differ by little; img2img in diffusers samples all the same.
///
/// ```swift
/// let posterior = try vae.encode(image)                     // image (1, 3, 512, 512) in [-1, 1]
/// var generator = TorchGenerator(seed: 42)
/// let z = posterior.sample(generator: &generator) * vae.scalingFactor   // img2img's start
/// ```
public struct DiagonalGaussian: Sendable {
    /// μ, `(N, latent, h, w)`: the first half of `quant_conv`'s output channels.
    public let mean: Tensor
    /// log σ², `(N, latent, h, w)`: the second half, clamped to [-30, 20] so that `exp` neither
    /// underflows to a zero deviation nor overflows.
    public let logvar: Tensor

    /// Splits `(N, 2·latent, h, w)` moments into mean and log-variance along the channels.
    public init(moments: Tensor) throws {
        guard moments.rank == 4, moments.shape[1] % 2 == 0 else {
            throw VAEError.wrongInputShape(what: "the moments", expected: "(N, 2·latent, h, w)", found: moments.shape)
        }
        // The first half of the channels is the mean, the second the log-variance, clamped to [−30, 20].
        let (mean, logvar) = moments.splitChannels(at: moments.shape[1] / 2)
        self.mean = mean
        self.logvar = Tensor(shape: logvar.shape, scalars: logvar.scalars.map { Swift.min(Swift.max($0, -30), 20) })
    }

    /// σ = exp(logvar / 2), `(N, latent, h, w)`.
    public var standardDeviation: Tensor { logvar.map { expf(0.5 * $0) } }

    /// A draw `z = μ + σ · ε`, `ε ~ N(0, I)`, equal to diffusers' `latent_dist.sample(generator)`:
    /// ε is `torch.randn(mean.shape, generator=generator)`, one call for the whole batch.
    public func sample(generator: inout TorchGenerator) -> Tensor {
        let noise = generator.randn(mean.shape)
        return mean + standardDeviation * noise
    }
}
