import TensorCore

/// The per-token MLP of a transformer block, diffusers' `FeedForward` with a GEGLU activation
/// (Shazeer, 2020, "GLU Variants Improve Transformer"):
///
///     [hidden, gate] = net.0.proj(x)          (N, T, C) → (N, T, 2·4C), split in two halves
///     h = hidden · gelu(gate)                 (N, T, 4C): the gate decides, per feature, how much passes
///     out = net.2(h)                          (N, T, 4C) → (N, T, C)
///
/// `net.1` is a dropout layer (nothing at inference, and no weights), hence the gap in the keys.
/// GELU is the exact one, `x · Φ(x)`, not the tanh approximation.
public struct FeedForward: Sendable {
    public let net0Proj: Linear  // (2·D_ff, C); checkpoint key net.0.proj (the GEGLU projection)
    public let net2: Linear      // (C, D_ff); checkpoint key net.2

    /// - Parameters:
    ///   - channels: `C`.
    ///   - multiplier: `D_ff = multiplier · C` (4).
    public init(_ weights: Weights, channels: Int, multiplier: Int = 4) throws {
        let inner = multiplier * channels
        net0Proj = try Linear(weights["net.0.proj"], inFeatures: channels, outFeatures: 2 * inner)
        net2 = try Linear(weights["net.2"], inFeatures: inner, outFeatures: channels)
    }

    /// `(N, T, C)` → `(N, T, C)`.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        // The first half of the projection's features is the value, the second half the gate
        // (PyTorch's `chunk(2, dim=-1)`); one fused pass computes hidden · gelu(gate).
        net2(net0Proj(x).gegluActivation())                   // (N, T, 2·4C) → (N, T, 4C) → (N, T, C)
    }
}
