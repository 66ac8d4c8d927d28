import TensorCore

/// The gradient of a loss with respect to every parameter a backward pass reached, by the
/// parameter's checkpoint key (`down_blocks.0.resnets.0.conv1.weight`, ...), so that an optimiser
/// can pair each gradient with its weight and a trained network saves under the names it loaded.
///
/// ```swift
/// var gradients = Gradients()
/// let dx = block.backward(dOut, saved: saved, gradients: &gradients).dx
/// print(gradients.keys)       // every weight and bias of the block
/// ```
public struct Gradients: Sendable {
    public private(set) var tensors: [String: Tensor] = [:]

    public init() {}

    /// Adds `gradient` to the one kept for `key`: a parameter used twice collects both.
    public mutating func add(_ gradient: Tensor, for key: String) {
        if let existing = tensors[key] {
            precondition(existing.shape == gradient.shape, "gradient \(gradient.shape) for '\(key)' of \(existing.shape)")
            tensors[key] = existing + gradient
        } else {
            tensors[key] = gradient
        }
    }

    public subscript(key: String) -> Tensor? { tensors[key] }

    /// The parameters that received a gradient, sorted.
    public var keys: [String] { tensors.keys.sorted() }
}

/// `total + more`, or whichever exists: a gradient that several paths add up (the time embedding
/// reaches every ResNet, the text every cross-attention).
func accumulated(_ total: Tensor?, _ more: Tensor?) -> Tensor? {
    guard let total else { return more }
    guard let more else { return total }
    return total + more
}
