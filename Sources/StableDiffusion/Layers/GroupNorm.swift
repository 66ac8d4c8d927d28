import TensorCore

/// Group normalisation with a learned per-channel scale and shift (PyTorch's `nn.GroupNorm`).
public struct GroupNorm: Sendable {
    public let weight: Tensor   // (C)
    public let bias: Tensor     // (C)
    public let groups: Int
    public let eps: Float
    /// The layer's key prefix in the checkpoint, e.g. `down_blocks.0.resnets.0.norm1.`.
    public let key: String

    public init(_ weights: Weights, groups: Int, channels: Int, eps: Float) throws {
        weight = try weights.tensor("weight", shape: [channels])
        bias = try weights.tensor("bias", shape: [channels])
        self.groups = groups
        self.eps = eps
        key = weights.prefix
    }

    /// `(N, C, ...)` → same shape. With `silu: true`, `silu(norm(x))` in one pass.
    public func callAsFunction(_ x: Tensor, silu: Bool = false) -> Tensor {
        x.groupNorm(groups: groups, weight: weight, bias: bias, eps: eps, silu: silu)
    }

    /// The backward of `callAsFunction(x, silu:)`: adds dγ and dβ to `gradients` and returns dx.
    public func backward(_ dy: Tensor, input x: Tensor, silu: Bool = false, gradients: inout Gradients) -> Tensor {
        let g = groupNormBackward(dy, input: x, groups: groups, weight: weight, bias: bias, eps: eps, silu: silu)
        gradients.add(g.dWeight, for: key + "weight")
        gradients.add(g.dBias, for: key + "bias")
        return g.dx
    }
}
