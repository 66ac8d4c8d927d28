import TensorCore

/// Group normalisation with a learned per-channel scale and shift (PyTorch's `nn.GroupNorm`).
public struct GroupNorm: Sendable {
    public let weight: Tensor   // (C)
    public let bias: Tensor     // (C)
    public let groups: Int
    public let eps: Float

    public init(_ weights: Weights, groups: Int, channels: Int, eps: Float) throws {
        weight = try weights.tensor("weight", shape: [channels])
        bias = try weights.tensor("bias", shape: [channels])
        self.groups = groups
        self.eps = eps
    }

    /// `(N, C, ...)` → same shape. With `silu: true`, `silu(norm(x))` in one pass.
    public func callAsFunction(_ x: Tensor, silu: Bool = false) -> Tensor {
        x.groupNorm(groups: groups, weight: weight, bias: bias, eps: eps, silu: silu)
    }
}

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
