import TensorCore

/// What the optimal denoiser makes of one known picture, noised to one timestep.
///
/// x_t = √ᾱ_t · x⁽ᵏ⁾ + √(1 − ᾱ_t) · ε for a picture k of the set; the probe records the weight the
/// denoiser gives picture k (its certainty that x_t came from it) and the largest weight of any
/// other picture.
public struct DenoiserProbe {
    /// How sure the denoiser is, in three words.
    public enum Certainty: Equatable {
        /// The picture's weight is over 0.99: the denoiser names it.
        case certain
        /// Between 0.2 and 0.99: a blend in which the picture is emerging.
        case emerging
        /// Under 0.2: a blend of several pictures.
        case blend
    }

    /// The timestep t.
    public let timestep: Int
    /// ᾱ_t.
    public let alphaBar: Float
    /// x_t, `(1, 3, size, size)`.
    public let noisy: Tensor
    /// ε̂, the denoiser's noise prediction.
    public let noise: Tensor
    /// x̂₀ = Σ w_i x⁽ⁱ⁾.
    public let clean: Tensor
    /// w_k: the weight of the picture that was noised.
    public let weight: Double
    /// The largest weight of the other pictures.
    public let largestOther: Double

    /// `weight` sorted into certain (> 0.99), emerging, or a blend (< 0.2).
    public var certainty: Certainty {
        weight > 0.99 ? .certain : weight < 0.2 ? .blend : .emerging
    }
}

extension OptimalDenoiser {
    /// Noises example `picture` (a `(1, …)` tensor of it is `pixels`) with `noise` to each of
    /// `timesteps` and asks the denoiser what it sees.
    ///
    /// - Parameter alphasCumprod: ᾱ_t for every training timestep.
    public func probe(picture: Int, pixels: Tensor, noise: Tensor, timesteps: [Int],
                      alphasCumprod: [Float]) -> [DenoiserProbe] {
        timesteps.map { t in
            let a = alphasCumprod[t]
            let xt = pixels.scaled(a.squareRoot(), plus: noise, times: (1 - a).squareRoot())
            let (predicted, clean, weights) = predictNoise(xt, alphaBar: a)
            let others = weights[0].indices.filter { $0 != picture }.map { weights[0][$0] }
            return DenoiserProbe(timestep: t, alphaBar: a, noisy: xt, noise: predicted, clean: clean,
                                 weight: weights[0][picture], largestOther: others.max() ?? 0)
        }
    }
}
