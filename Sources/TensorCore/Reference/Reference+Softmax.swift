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
