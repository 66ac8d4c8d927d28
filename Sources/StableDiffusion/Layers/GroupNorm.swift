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
