import TensorCore

/// The few numbers a lesson prints about a tensor: its size, mean, spread and range.
///
/// Mean and standard deviation are TensorCore's (accumulated in Double, population form:
/// `σ = √(Σ (x_i − mean)² / n)`), so a summary prints exactly what `tensor.mean` and
/// `tensor.standardDeviation` would.
public struct TensorSummary: Equatable, Sendable {
    /// How many numbers the tensor holds.
    public let count: Int
    /// Σ x_i / n.
    public let mean: Float
    /// √(Σ (x_i − mean)² / n).
    public let standardDeviation: Float
    /// The smallest number.
    public let min: Float
    /// The largest number.
    public let max: Float

    /// Summarises every number of `tensor`, whatever its shape.
    public init(_ tensor: Tensor) {
        count = tensor.count
        mean = tensor.mean
        standardDeviation = tensor.standardDeviation
        (min, max) = tensor.range
    }
}
