// Layer normalisation: CLIP's text transformer and the UNet's transformer blocks use it.

extension Reference {
    /// LayerNorm (Ba et al., 2016): every token's feature vector of `D` numbers is normalised on
    /// its own:
    ///
    ///     μ = (1/D) Σ_i x[t, i],  σ² = (1/D) Σ_i (x[t, i] − μ)²
    ///     y[t, i] = (x[t, i] − μ) / √(σ² + ε) · γ[i] + β[i]
    ///
    /// - Parameters:
    ///   - x: `(..., D)`: every leading index is one token.
    ///   - weight: γ, `(D)`, or nil for 1; bias: β, `(D)`, or nil for 0.
    ///   - eps: ε (1e-5 in CLIP and in the UNet).
    /// - Returns: the shape of `x`.
    public static func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) -> Tensor {
        let D = x.shape[x.rank - 1]
        let tokens = x.count / D
        let xs = x.scalars, gamma = weight?.scalars, beta = bias?.scalars
        var out = [Float](repeating: 0, count: x.count)
        for t in 0..<tokens {
            let (mean, invStd) = normalisationStatistics((0..<D).map { Double(xs[t * D + $0]) }, eps: eps)
            for i in 0..<D {
                let normalised = Float((Double(xs[t * D + i]) - mean) * invStd)
                out[t * D + i] = normalised * (gamma?[i] ?? 1) + (beta?[i] ?? 0)
            }
        }
        return Tensor(shape: x.shape, scalars: out)
    }
}

// MARK: - Backward

extension Reference {
    /// The gradients of `layerNorm`, token by token (see `groupNormBackward` for the formula; here
    /// each token's `D` features are the normalised set):
    ///
    ///     dγ[i] = Σ_t dy[t, i] · x̂[t, i],   dβ[i] = Σ_t dy[t, i]
    ///     dx[t] = r_t · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ · x̂)),   dx̂ = dy[t] · γ
    public static func layerNormBackward(_ dy: Tensor, x: Tensor, weight: Tensor?, eps: Float)
        -> (dx: Tensor, dWeight: Tensor, dBias: Tensor) {
        let D = x.shape[x.rank - 1]
        let tokens = x.count / D
        let xs = x.scalars, gs = dy.scalars, gamma = weight?.scalars
        var dx = [Float](repeating: 0, count: x.count)
        var dGamma = [Float](repeating: 0, count: D), dBeta = [Float](repeating: 0, count: D)
        for t in 0..<tokens {
            let (mean, invStd) = normalisationStatistics((0..<D).map { Double(xs[t * D + $0]) }, eps: eps)
            let normalised = (0..<D).map { (Double(xs[t * D + $0]) - mean) * invStd }
            for i in 0..<D {
                dGamma[i] += gs[t * D + i] * Float(normalised[i])
                dBeta[i] += gs[t * D + i]
            }
            let dNormalised = (0..<D).map { Double(gs[t * D + $0]) * Double(gamma?[$0] ?? 1) }
            let grads = normalisationBackward(dNormalised, normalised: normalised, invStd: invStd)
            for i in 0..<D { dx[t * D + i] = Float(grads[i]) }
        }
        return (Tensor(shape: x.shape, scalars: dx), Tensor(shape: [D], scalars: dGamma), Tensor(shape: [D], scalars: dBeta))
    }
}
