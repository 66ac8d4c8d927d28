import Foundation

// Group normalisation: the UNet and the VAE normalise every feature map with it.

extension Reference {
    /// GroupNorm (Wu & He, 2018): the `C` channels are split into `G` groups of `C/G`, and each
    /// sample's group is normalised over all its channels and pixels together:
    ///
    ///     μ = mean of the group,  σ² = mean of (x − μ)²  (biased, as PyTorch)
    ///     y[n, c, i] = (x[n, c, i] − μ) / √(σ² + ε) · γ[c] + β[c]
    ///
    /// and, with `silu`, `y · σ(y)` after that (the UNet's and the VAE's ResNet blocks always
    /// follow a GroupNorm with SiLU; the fast kernel does both in one pass, so the plain one
    /// offers the same pair). Sums are taken in Double, so a large group loses no digits.
    ///
    /// - Parameters:
    ///   - x: `(N, C, ...)`, usually `(N, C, H, W)`.
    ///   - weight: γ, `(C)`, or nil for 1; bias: β, `(C)`, or nil for 0.
    ///   - eps: ε, 1e-5 in the UNet, 1e-6 in the VAE.
    /// - Returns: the shape of `x`.
    public static func groupNorm(_ x: Tensor, groups G: Int, weight: Tensor?, bias: Tensor?, eps: Float,
                                 silu applySiLU: Bool = false) -> Tensor {
        let N = x.shape[0], C = x.shape[1]
        precondition(C % G == 0, "groupNorm: \(C) channels do not split into \(G) groups")
        let pixels = x.count / (N * C)              // H·W for a feature map
        let groupChannels = C / G
        let xs = x.scalars, gamma = weight?.scalars, beta = bias?.scalars
        var out = [Float](repeating: 0, count: x.count)
        for n in 0..<N {
            for g in 0..<G {
                let channels = (g * groupChannels)..<((g + 1) * groupChannels)
                let group = channels.flatMap { c in (0..<pixels).map { i in Double(xs[(n * C + c) * pixels + i]) } }
                let (mean, invStd) = normalisationStatistics(group, eps: eps)
                for c in channels {
                    for i in 0..<pixels {
                        let index = (n * C + c) * pixels + i
                        let normalised = Float((Double(xs[index]) - mean) * invStd)
                        let y = normalised * (gamma?[c] ?? 1) + (beta?[c] ?? 0)
                        out[index] = applySiLU ? silu(y) : y
                    }
                }
            }
        }
        return Tensor(shape: x.shape, scalars: out)
    }
}

// MARK: - Backward

extension Reference {
    /// The gradients of `groupNorm`. With `x̂ = (x − μ)·r`, `r = 1/√(σ² + ε)`, `z = γ·x̂ + β` and
    /// `y = z` (or `y = silu(z)`), for each (sample, group) of `m` numbers:
    ///
    ///     dz      = dy                         (or dy · silu'(z), silu'(z) = σ(z)·(1 + z·(1 − σ(z))))
    ///     dγ[c]  += dz · x̂,   dβ[c] += dz      (summed over samples and pixels)
    ///     dx̂      = dz · γ[c]
    ///     dx      = r · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ · x̂))
    ///
    /// The last line is the chain rule through μ and σ, which every element of the group shares:
    /// moving one input moves the mean and the spread that all the others were normalised by.
    public static func groupNormBackward(_ dy: Tensor, x: Tensor, groups G: Int, weight: Tensor?, bias: Tensor?,
                                         eps: Float, silu applySiLU: Bool = false)
        -> (dx: Tensor, dWeight: Tensor, dBias: Tensor) {
        let N = x.shape[0], C = x.shape[1]
        let pixels = x.count / (N * C)
        let groupChannels = C / G
        let xs = x.scalars, gs = dy.scalars, gamma = weight?.scalars, beta = bias?.scalars
        var dx = [Float](repeating: 0, count: x.count)
        var dGamma = [Float](repeating: 0, count: C), dBeta = [Float](repeating: 0, count: C)
        for n in 0..<N {
            for g in 0..<G {
                // The group's elements, in order: (channel, pixel) → index into x.
                let indices = (g * groupChannels..<(g + 1) * groupChannels).flatMap { c in
                    (0..<pixels).map { i in (c: c, index: (n * C + c) * pixels + i) }
                }
                let (mean, invStd) = normalisationStatistics(indices.map { Double(xs[$0.index]) }, eps: eps)
                var dNormalised = [Double](), normalised = [Double]()
                for (c, index) in indices {
                    let xHat = (Double(xs[index]) - mean) * invStd
                    var dz = Double(gs[index])
                    if applySiLU {
                        let z = xHat * Double(gamma?[c] ?? 1) + Double(beta?[c] ?? 0)
                        let sigma = 1 / (1 + exp(-z))
                        dz *= sigma * (1 + z * (1 - sigma))
                    }
                    dGamma[c] += Float(dz * xHat)
                    dBeta[c] += Float(dz)
                    dNormalised.append(dz * Double(gamma?[c] ?? 1))
                    normalised.append(xHat)
                }
                let grads = normalisationBackward(dNormalised, normalised: normalised, invStd: invStd)
                for (k, (_, index)) in indices.enumerated() { dx[index] = Float(grads[k]) }
            }
        }
        return (Tensor(shape: x.shape, scalars: dx), Tensor(shape: [C], scalars: dGamma), Tensor(shape: [C], scalars: dBeta))
    }
}

/// Mean and `1/√(σ² + ε)` of a set of numbers, σ² the biased variance (as PyTorch's norms).
func normalisationStatistics(_ values: [Double], eps: Float) -> (mean: Double, invStd: Double) {
    let mean = values.reduce(0, +) / Double(values.count)
    let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
    return (mean, 1 / (variance + Double(eps)).squareRoot())
}

/// The gradient through `x̂ = (x − μ)·r` for one normalised set: `dx = r · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ · x̂))`.
func normalisationBackward(_ dNormalised: [Double], normalised: [Double], invStd: Double) -> [Double] {
    let m = Double(dNormalised.count)
    let meanD = dNormalised.reduce(0, +) / m
    let meanDX = zip(dNormalised, normalised).reduce(0) { $0 + $1.0 * $1.1 } / m
    return zip(dNormalised, normalised).map { invStd * ($0 - meanD - $1 * meanDX) }
}
