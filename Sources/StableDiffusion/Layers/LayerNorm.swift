import TensorCore

/// Layer normalisation over the last dimension (PyTorch's `nn.LayerNorm`).
public struct LayerNorm: Sendable {
    public let weight: Tensor   // (D)
    public let bias: Tensor     // (D)
    public let eps: Float
    /// The layer's key prefix in the checkpoint, e.g. `final_layer_norm.`.
    public let key: String

    public init(_ weights: Weights, features: Int, eps: Float = 1e-5) throws {
        weight = try weights.tensor("weight", shape: [features])
        bias = try weights.tensor("bias", shape: [features])
        self.eps = eps
        key = weights.prefix
    }

    /// `(..., D)` → same shape.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        x.layerNorm(weight: weight, bias: bias, eps: eps)
    }

    /// The backward of `callAsFunction(x)`: adds dγ and dβ to `gradients` and returns dx.
    public func backward(_ dy: Tensor, input x: Tensor, gradients: inout Gradients) -> Tensor {
        let g = layerNormBackward(dy, input: x, weight: weight, eps: eps)
        gradients.add(g.dWeight, for: key + "weight")
        gradients.add(g.dBias, for: key + "bias")
        return g.dx
    }
}
