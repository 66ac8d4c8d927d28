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

    /// Tokens per piece of work. Each token goes through the MLP on its own, so the tokens can go
    /// in pieces: the hidden layer, 8x wider than the input before GEGLU halves it, then exists
    /// for 2048 tokens at a time (21 MB) instead of for all of them (84 MB for the 8192 tokens of a
    /// guided step at 512x512), and the memory it takes is reused from piece to piece.
    public static let tokensPerPiece = 2048

    /// `(N, T, C)` → `(N, T, C)`.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let channels = x.shape[x.rank - 1]
        let tokens = x.reshaped([x.count / channels, channels])  // (N·T, C)
        let pieces = stride(from: 0, to: tokens.shape[0], by: Self.tokensPerPiece).map { first in
            let piece = tokens.shape[0] <= Self.tokensPerPiece
                ? tokens : tokens.slice(first..<min(tokens.shape[0], first + Self.tokensPerPiece))
            // The first half of the projection's features is the value, the second half the gate
            // (PyTorch's `chunk(2, dim=-1)`); one fused pass computes hidden · gelu(gate).
            return net2(net0Proj(piece).geglu())     // (n, 2·4C) → (n, 4C) → (n, C)
        }
        return (pieces.count == 1 ? pieces[0] : Tensor.concatenate(pieces, axis: 0)).reshaped(x.shape)
    }
}

// MARK: - Training

extension FeedForward {
    /// What the training forward keeps: the input and the two hidden layers (all tokens at once).
    public struct Saved: Sendable {
        let x: Tensor          // (N, T, C): input of net.0.proj
        let projected: Tensor  // (N, T, 2·4C): [hidden, gate], input of GEGLU
        let activated: Tensor  // (N, T, 4C): input of net.2
    }

    /// `callAsFunction`, on all tokens in one piece, keeping what `backward` needs.
    public func trainingForward(_ x: Tensor) -> (output: Tensor, saved: Saved) {
        let projected = net0Proj(x)
        let activated = projected.geglu()
        return (net2(activated), Saved(x: x, projected: projected, activated: activated))
    }

    /// The backward of `trainingForward`: net.2, GEGLU and net.0.proj in reverse.
    public func backward(_ dOut: Tensor, saved: Saved, gradients: inout Gradients) -> Tensor {
        let dActivated = net2.backward(dOut, input: saved.activated, gradients: &gradients)
        let dProjected = saved.projected.gegluBackward(dActivated)
        return net0Proj.backward(dProjected, input: saved.x, gradients: &gradients)
    }
}
