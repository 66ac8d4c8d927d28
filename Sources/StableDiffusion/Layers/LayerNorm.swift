import TensorCore

/// Layer normalisation over the last dimension (PyTorch's `nn.LayerNorm`).
public struct LayerNorm: Sendable {
    public let weight: Tensor   // (D)
    public let bias: Tensor     // (D)
    public let eps: Float

    public init(_ weights: Weights, features: Int, eps: Float = 1e-5) throws {
        weight = try weights.tensor("weight", shape: [features])
        bias = try weights.tensor("bias", shape: [features])
        self.eps = eps
    }

    /// `(..., D)` → same shape.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.layerNorm(weight: weight, bias: bias, eps: eps)
    }
}
