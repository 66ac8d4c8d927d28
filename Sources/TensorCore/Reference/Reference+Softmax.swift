import Foundation

// Softmax turns a row of scores into probabilities that sum to one.

extension Reference {
    /// Softmax over the last dimension, row by row (see `softmax(row:)`).
    ///
    /// - Parameter x: `(..., D)`: each leading index is one row of `D` scores.
    /// - Returns: the shape of `x`, each row now summing to one.
    public static func softmax(_ x: Tensor) -> Tensor {
        let D = x.shape[x.rank - 1]
        var out = [Float]()
        out.reserveCapacity(x.count)
        for r in 0..<(x.count / D) {
            out += softmax(row: Array(x.scalars[(r * D)..<((r + 1) * D)]))
        }
        return Tensor(shape: x.shape, scalars: out)
    }

    /// `p_i = e^(z_i − m) / Σ_j e^(z_j − m)` with `m = max_j z_j`.
    ///
    /// Subtracting the maximum changes nothing mathematically (it cancels between numerator and
    /// denominator) and keeps `e^z` from overflowing: the largest term is `e^0 = 1`. A row whose
    /// every score is `−∞` (all masked out) has no probabilities; it is defined as all zeros.
    public static func softmax(row z: [Float]) -> [Float] {
        let m = z.max() ?? 0
        if m == -.infinity { return [Float](repeating: 0, count: z.count) }
        let e = z.map { expf($0 - m) }
        let sum = e.reduce(0, +)
        return e.map { $0 / sum }
    }
}

// MARK: - Backward

extension Reference {
    /// The gradient of `softmax(row:)`: with `p = softmax(z)` and the gradient `dp` of its output,
    ///
    ///     dz_i = p_i · (dp_i − Σ_j p_j · dp_j)
    ///
    /// (∂p_j/∂z_i = p_j·(δ_ij − p_i): raising one score raises its own probability and lowers all
    /// the others, since they must still sum to one). A masked score (p = 0) gets no gradient.
    public static func softmaxBackward(row dp: [Float], probabilities p: [Float]) -> [Float] {
        var dot: Float = 0
        for j in 0..<p.count { dot += p[j] * dp[j] }
        return (0..<p.count).map { p[$0] * (dp[$0] - dot) }
    }

    /// `softmaxBackward(row:probabilities:)` for every row of the last dimension.
    public static func softmaxBackward(_ dOut: Tensor, output p: Tensor) -> Tensor {
        let D = p.shape[p.rank - 1]
        var dz = [Float]()
        dz.reserveCapacity(p.count)
        for r in 0..<(p.count / D) {
            let rows = (r * D)..<((r + 1) * D)
            dz += softmaxBackward(row: Array(dOut.scalars[rows]), probabilities: Array(p.scalars[rows]))
        }
        return Tensor(shape: p.shape, scalars: dz)
    }
}
