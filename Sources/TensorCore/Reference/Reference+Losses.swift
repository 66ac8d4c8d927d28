import Foundation

// The losses Stable Diffusion is trained with, each with its gradient. A loss is one number; its
// gradient has the shape of what it was computed from, and starts every backward pass.

extension Reference {
    /// Mean squared error, `L = (1/m) Σ_i (a_i − b_i)²`, and `dL/da_i = 2 (a_i − b_i) / m`.
    ///
    /// The UNet's loss: `a` is the predicted noise ε̂, `b` the noise ε that was added.
    public static func meanSquaredError(_ a: Tensor, _ b: Tensor) -> (loss: Float, gradient: Tensor) {
        let m = Float(a.count)
        var sum = 0.0
        for i in 0..<a.count { let d = Double(a.scalars[i] - b.scalars[i]); sum += d * d }
        return (Float(sum / Double(m)), zip(a, b) { 2 * ($0 - $1) / m })
    }

    /// Mean absolute error, `L = (1/m) Σ_i |a_i − b_i|`, and `dL/da_i = sign(a_i − b_i) / m` (0 where
    /// they are equal). The VAE's reconstruction loss.
    public static func meanAbsoluteError(_ a: Tensor, _ b: Tensor) -> (loss: Float, gradient: Tensor) {
        let m = Float(a.count)
        var sum = 0.0
        for i in 0..<a.count { sum += Double(abs(a.scalars[i] - b.scalars[i])) }
        return (Float(sum / Double(m)), zip(a, b) { ($0 > $1 ? 1 : $0 < $1 ? -1 : 0) / m })
    }

    /// The KL divergence of the VAE's diagonal Gaussian `N(μ, e^logvar)` from `N(0, 1)`, summed over
    /// each sample's latent numbers and averaged over the `N` samples (diffusers' `kl()` sums, the
    /// training loss takes the batch mean):
    ///
    ///     L = (1/N) Σ_n ½ Σ_i (μ_i² + e^(logvar_i) − 1 − logvar_i)
    ///     dL/dμ_i = μ_i / N,   dL/dlogvar_i = ½ (e^(logvar_i) − 1) / N
    ///
    /// It pulls every latent towards a unit Gaussian, so that a decoder can start from noise.
    public static func gaussianKL(mean: Tensor, logvar: Tensor) -> (loss: Float, dMean: Tensor, dLogvar: Tensor) {
        let N = Float(mean.shape[0])
        var sum = 0.0
        for i in 0..<mean.count {
            let mu = Double(mean.scalars[i]), lv = Double(logvar.scalars[i])
            sum += 0.5 * (mu * mu + exp(lv) - 1 - lv)
        }
        return (Float(sum / Double(N)), map(mean) { $0 / N }, map(logvar) { 0.5 * (expf($0) - 1) / N })
    }
}
