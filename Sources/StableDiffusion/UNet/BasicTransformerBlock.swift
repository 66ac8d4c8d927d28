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

// MARK: - Training

extension BasicTransformerBlock {
    /// What the training forward keeps: the residual stream before each sub-layer, and what the
    /// sub-layers keep themselves.
    public struct Saved: Sendable {
        let x, x1, x2: Tensor                        // the stream before attn1, attn2 and ff
        let n1, n2, n3: Tensor                       // their LayerNorm-ed copies
        let attn1: Attention.Saved, attn2: Attention.Saved, ff: FeedForward.Saved
    }

    /// `callAsFunction`, keeping what `backward` needs.
    public func trainingForward(_ x: Tensor, context: Tensor) -> (output: Tensor, saved: Saved) {
        let n1 = norm1(x)
        let (a1, s1) = attn1.trainingForward(n1)
        let x1 = x + a1
        let n2 = norm2(x1)
        let (a2, s2) = attn2.trainingForward(n2, context: context)
        let x2 = x1 + a2
        let n3 = norm3(x2)
        let (f, s3) = ff.trainingForward(n3)
        return (x2 + f, Saved(x: x, x1: x1, x2: x2, n1: n1, n2: n2, n3: n3, attn1: s1, attn2: s2, ff: s3))
    }

    /// The backward of `trainingForward`. Each residual `x + sub(norm(x))` passes the gradient on
    /// unchanged and adds what flows back through the sub-layer and its norm:
    ///
    ///     dx2 = dOut + norm3ᵀ(ffᵀ(dOut));  dx1 = dx2 + norm2ᵀ(attn2ᵀ(dx2));  dx = dx1 + norm1ᵀ(attn1ᵀ(dx1))
    ///
    /// - Returns: the gradients of the pixel tokens and of the text context.
    public func backward(_ dOut: Tensor, saved: Saved, gradients: inout Gradients) -> (dx: Tensor, dContext: Tensor) {
        var dx2 = dOut
        dx2 += norm3.backward(ff.backward(dOut, saved: saved.ff, gradients: &gradients), input: saved.x2, gradients: &gradients)
        let (dn2, dContext) = attn2.backward(dx2, saved: saved.attn2, gradients: &gradients)
        var dx1 = dx2
        dx1 += norm2.backward(dn2, input: saved.x1, gradients: &gradients)
        let (dn1, _) = attn1.backward(dx1, saved: saved.attn1, gradients: &gradients)
        var dx = dx1
        dx += norm1.backward(dn1, input: saved.x, gradients: &gradients)
        return (dx, dContext!)
    }
}
