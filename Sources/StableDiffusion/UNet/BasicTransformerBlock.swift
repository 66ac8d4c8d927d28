import TensorCore

/// One transformer block over the pixels of a feature map (diffusers' `BasicTransformerBlock`):
/// the pixels talk to each other, then read the prompt, then think on their own.
///
///     x = x + attn1(norm1(x))                  self-attention among the H·W pixels
///     x = x + attn2(norm2(x), context)         cross-attention: each pixel reads the 77 text tokens
///     x = x + ff(norm3(x))                     the GEGLU MLP, per pixel
///
/// Pre-norm residual layout: each sub-layer sees a LayerNorm-ed copy and adds its result back,
/// so the residual stream `x` keeps its scale through many blocks. Tokens are `(N, T, C)` with
/// `T = H·W` throughout; the block never reshapes.
public struct BasicTransformerBlock: Sendable {
    public let norm1: LayerNorm      // (C), eps 1e-5
    public let attn1: Attention      // self-attention
    public let norm2: LayerNorm      // (C)
    public let attn2: Attention      // cross-attention, keys and values from the text
    public let norm3: LayerNorm      // (C)
    public let ff: FeedForward

    /// - Parameters:
    ///   - channels: `C`, the width of the pixel tokens.
    ///   - heads: attention heads; each is `C / heads` wide.
    ///   - contextDim: width of the text tokens (768).
    public init(_ weights: Weights, channels: Int, heads: Int, contextDim: Int) throws {
        let headDim = channels / heads
        norm1 = try LayerNorm(weights["norm1"], features: channels)
        attn1 = try Attention(weights["attn1"], queryDim: channels, contextDim: nil, heads: heads, headDim: headDim)
        norm2 = try LayerNorm(weights["norm2"], features: channels)
        attn2 = try Attention(weights["attn2"], queryDim: channels, contextDim: contextDim, heads: heads, headDim: headDim)
        norm3 = try LayerNorm(weights["norm3"], features: channels)
        ff = try FeedForward(weights["ff"], channels: channels)
    }

    /// - Parameters:
    ///   - x: pixel tokens `(N, H·W, C)`.
    ///   - context: text tokens `(N, 77, 768)`.
    ///   - observer: sees `attn2`'s probabilities.
    /// - Returns: `(N, H·W, C)`.
    public func callAsFunction(_ x: Tensor, context: Tensor, observer: CrossAttentionObserver? = nil) -> Tensor {
        var x = x
        x = x + attn1(norm1(x))
        x = x + attn2(norm2(x), context: context, observer: observer)
        x = x + ff(norm3(x))
        return x
    }
}
