import TensorCore

/// The length ‖e_p‖ = √(Σ_d e_p,d²) of every position's vector in a text embedding.
///
/// In SD 1.x the start token's vector stands out: it has read nothing before it, so it is the
/// same for every prompt, and the UNet uses it as a resting place for attention.
public struct EmbeddingLengths {
    /// ‖e_p‖ for p = 0 ..< 77.
    public let lengths: [Float]

    /// Measures a `(1, 77, D)` (or `(77, D)`) embedding, summing squares in Float.
    public init(_ embedding: Tensor) {
        let d = embedding.shape.last!, positions = embedding.count / d
        lengths = (0..<positions).map { p in
            embedding.scalars[(p * d)..<((p + 1) * d)].reduce(0) { $0 + $1 * $1 }.squareRoot()
        }
    }

    /// ‖e_0‖ divided by the mean length of positions 1 ... `endPosition` (the prompt's tokens and
    /// the end token).
    public func startRatio(endPosition: Int) -> Float {
        lengths[0] / Statistics.mean(Array(lengths[1...endPosition]))
    }
}
