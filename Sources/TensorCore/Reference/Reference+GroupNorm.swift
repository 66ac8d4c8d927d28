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
                let size = Double(groupChannels * pixels)
                var sum = 0.0
                for c in channels { for i in 0..<pixels { sum += Double(xs[(n * C + c) * pixels + i]) } }
                let mean = sum / size
                var squares = 0.0
                for c in channels {
                    for i in 0..<pixels { let d = Double(xs[(n * C + c) * pixels + i]) - mean; squares += d * d }
                }
                let invStd = 1 / (squares / size + Double(eps)).squareRoot()
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
