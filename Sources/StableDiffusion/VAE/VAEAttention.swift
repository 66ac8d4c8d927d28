import TensorCore

/// Single-head self-attention over all pixels of a feature map, with a residual connection: the
/// VAE's one global layer, in the middle of both the encoder and the decoder.
///
/// Convolutions only see a neighbourhood; this layer lets every pixel of the smallest feature map
/// (64x64 for a 512x512 image) look at every other one. Each pixel is a token whose features are
/// its `C` channels:
///
///     h = group_norm(x)                         (N, C, H, W)
///     h → tokens                                (N, T, C),  T = H·W
///     Q = h W_qᵀ + b_q,  K = h W_kᵀ + b_k,  V = h W_vᵀ + b_v      (N, T, C) each
///     A = softmax(Q Kᵀ / √C) V                  one head of width C
///     out = x + to_out(A)                       back to (N, C, H, W)
///
/// Checkpoint keys (diffusers): `group_norm`, `to_q`, `to_k`, `to_v`, `to_out.0` (`to_out.1` is a
/// dropout, which has no weights). The four projection matrices are stored as linear weights
/// `(C, C)`; older diffusers files and the original single-file layout store them as 1x1
/// convolutions `(C, C, 1, 1)`, which are the same numbers with two extra unit dimensions, so
/// both shapes are accepted.
public struct VAEAttention: Sendable {
    public let groupNorm: GroupNorm     // (C), (C); named group_norm
    public let toQ: Linear              // (C, C) + (C); named to_q
    public let toK: Linear              // (C, C) + (C); named to_k
    public let toV: Linear              // (C, C) + (C); named to_v
    public let toOut: Linear            // (C, C) + (C); named to_out.0

    /// - Parameters:
    ///   - channels: `C` (512 in SD 1.x).
    ///   - groups: GroupNorm groups (the configuration's `norm_num_groups`, 32 in SD 1.x).
    public init(_ weights: Weights, channels: Int, groups: Int) throws {
        groupNorm = try GroupNorm(weights["group_norm"], groups: groups, channels: channels, eps: 1e-6)
        toQ = try Self.projection(weights["to_q"], channels: channels)
        toK = try Self.projection(weights["to_k"], channels: channels)
        toV = try Self.projection(weights["to_v"], channels: channels)
        toOut = try Self.projection(weights["to_out.0"], channels: channels)
    }

    /// A `(C, C)` projection stored either as a linear weight `(C, C)` or as a 1x1 convolution
    /// kernel `(C, C, 1, 1)`: a 1x1 convolution applies the same matrix to every pixel, which is
    /// what a linear layer does to every token.
    static func projection(_ weights: Weights, channels: Int) throws -> Linear {
        let storedShape = weights.store.record(weights.key("weight"))?.shape
        let asConvolution = [channels, channels, 1, 1]
        let weight = storedShape == asConvolution
            ? try weights.parameter("weight", shape: asConvolution).reshaped([channels, channels])
            : try weights.parameter("weight", shape: [channels, channels])   // also reports a missing key
        let bias = try weights.tensor("bias", shape: [channels])
        return Linear(weight: weight, bias: bias, key: weights.prefix)
    }

    /// `(N, C, H, W)` → `(N, C, H, W)`.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let (batch, channels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        // Pixels become tokens: (N, C, H, W) → (N, C, T) → (N, T, C).
        let tokens = groupNorm(x).reshaped([batch, channels, height * width]).permuted([0, 2, 1])
        let query = toQ(tokens), key = toK(tokens), value = toV(tokens)        // (N, T, C) each
        // One head: the scores are divided by √C, C being the whole channel count.
        let attended = scaledDotProductAttention(query: query, key: key, value: value, heads: 1)
        // (N, T, C) → (N, C, T) → (N, C, H, W), then the residual.
        let out = toOut(attended).permuted([0, 2, 1]).reshaped([batch, channels, height, width])
        return x + out
    }
}

// MARK: - Training

extension VAEAttention {
    /// What the training forward keeps.
    public struct Saved: Sendable {
        let x, tokens, query, key, value, attended: Tensor
    }

    /// `callAsFunction(x)`, keeping what `backward` needs.
    public func trainingForward(_ x: Tensor) -> (output: Tensor, saved: Saved) {
        let (batch, channels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let tokens = groupNorm(x).reshaped([batch, channels, height * width]).permuted([0, 2, 1])
        let query = toQ(tokens), key = toK(tokens), value = toV(tokens)
        let attended = scaledDotProductAttention(query: query, key: key, value: value, heads: 1)
        let out = toOut(attended).permuted([0, 2, 1]).reshaped([batch, channels, height, width])
        return (x + out, Saved(x: x, tokens: tokens, query: query, key: key, value: value, attended: attended))
    }

    /// The backward of `trainingForward`: the projections and the attention in reverse, the
    /// token permute undone, and the residual's gradient added.
    public func backward(_ dOut: Tensor, saved: Saved, gradients: inout Gradients) -> Tensor {
        let (batch, channels, height, width) = (dOut.shape[0], dOut.shape[1], dOut.shape[2], dOut.shape[3])
        let dTokensOut = dOut.reshaped([batch, channels, height * width]).permuted([0, 2, 1])
        let dAttended = toOut.backward(dTokensOut, input: saved.attended, gradients: &gradients)
        let (dq, dk, dv) = scaledDotProductAttentionBackward(dAttended, query: saved.query, key: saved.key,
                                                             value: saved.value, heads: 1)
        var dTokens = toQ.backward(dq, input: saved.tokens, gradients: &gradients)
        dTokens += toK.backward(dk, input: saved.tokens, gradients: &gradients)
        dTokens += toV.backward(dv, input: saved.tokens, gradients: &gradients)
        var dx = groupNorm.backward(dTokens.permuted([0, 2, 1]).reshaped([batch, channels, height, width]), input: saved.x,
                                    gradients: &gradients)
        dx += dOut
        return dx
    }
}
