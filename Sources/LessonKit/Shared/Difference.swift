import TensorCore

/// How far apart two tensors of the same shape are, as one number.
public enum Difference {
    /// The root-mean-square difference `√(Σ (a_i − b_i)² / n)`, summed in Float.
    ///
    /// Used for "how far is this sample from a training picture" and for the gap between two
    /// noise predictions, `rms(ε_text − ε_uncond)`.
    public static func rootMeanSquare(_ a: Tensor, _ b: Tensor) -> Float {
        precondition(a.count == b.count, "rootMeanSquare needs tensors of the same size")
        return (zip(a.scalars, b.scalars).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / Float(a.count)).squareRoot()
    }
}
