import TensorCore

/// Receives the cross-attention probabilities of one UNet layer, one block of query rows of one
/// head at a time: `(layer, batch, head, rows, probabilities)`.
///
/// - `layer` is the diffusers module path, e.g. `"down_blocks.0.attentions.1.transformer_blocks.0.attn2"`;
/// - `rows` are query positions, i.e. latent pixels in row-major order (`y · W + x`);
/// - `probabilities` is `(rows.count, S)` row-major, `S` = 77 tokens: how much each pixel looks at
///   each word. The buffer is only valid during the call.
public typealias CrossAttentionObserver = (_ layer: String, _ batch: Int, _ head: Int, _ rows: Range<Int>,
                                           _ probabilities: UnsafeBufferPointer<Float>) -> Void

/// Multi-head attention, diffusers' `Attention`: self-attention (`attn1`) or cross-attention to the
/// text (`attn2`).
///
///     q = to_q(x)                  (N, T, C)     queries from the image tokens (pixels)
///     k = to_k(context)            (N, S, C)     keys and values from `context`: the pixels
///     v = to_v(context)            (N, S, C)     again (self), or the 77 text tokens (cross)
///     out = to_out.0(softmax(q kᵀ / √d) v)       per head, d = C / heads
///
/// The heads stay packed side by side in the feature dimension, `(N, T, H·d)`, exactly as the
/// projections produce them; `scaledDotProductAttention` picks each head out in place.
public struct Attention: Sendable {
    /// The module's path in the checkpoint, e.g. `mid_block.attentions.0.transformer_blocks.0.attn2`.
    public let name: String
    public let heads: Int
    public let toQ: Linear     // (H·d, C_query), no bias; checkpoint key to_q
    public let toK: Linear     // (H·d, C_context), no bias; to_k
    public let toV: Linear     // (H·d, C_context), no bias; to_v
    public let toOut: Linear   // (C_query, H·d), with bias; to_out.0 (to_out.1 is dropout)

    /// - Parameters:
    ///   - queryDim: channels of the image tokens, `C`.
    ///   - contextDim: width of the context tokens for cross-attention (768), nil for self-attention.
    ///   - heads: number of heads `H`; `headDim` is `d`.
    public init(_ weights: Weights, queryDim: Int, contextDim: Int?, heads: Int, headDim: Int) throws {
        let inner = heads * headDim
        let contextDim = contextDim ?? queryDim
        name = String(weights.prefix.dropLast())
        self.heads = heads
        toQ = try Linear(weights["to_q"], inFeatures: queryDim, outFeatures: inner, bias: false)
        toK = try Linear(weights["to_k"], inFeatures: contextDim, outFeatures: inner, bias: false)
        toV = try Linear(weights["to_v"], inFeatures: contextDim, outFeatures: inner, bias: false)
        toOut = try Linear(weights["to_out.0"], inFeatures: inner, outFeatures: queryDim)
    }

    /// - Parameters:
    ///   - x: the image tokens, `(N, T, C)`.
    ///   - context: `(N, S, C_context)` for cross-attention; nil attends `x` to itself.
    ///   - observer: sees the probabilities; `name` is passed as its layer name.
    /// - Returns: `(N, T, C)`.
    public func callAsFunction(_ x: Tensor, context: Tensor? = nil, observer: CrossAttentionObserver? = nil) -> Tensor {
        let source = context ?? x
        let q = toQ(x)          // (N, T, H·d)
        let k = toK(source)     // (N, S, H·d)
        let v = toV(source)     // (N, S, H·d)
        let name = self.name
        let attended = scaledDotProductAttention(
            query: q, key: k, value: v, heads: heads,
            observer: observer.map { observe in { batch, head, rows, p in observe(name, batch, head, rows, p) } })
        return toOut(attended)  // (N, T, C)
    }
}

// MARK: - Training

extension Attention {
    /// What the training forward keeps for the backward.
    public struct Saved: Sendable {
        let x: Tensor                 // (N, T, C): input of to_q
        let source: Tensor            // (N, S, C_context): input of to_k and to_v (x itself for attn1)
        let q, k, v: Tensor           // the projections, inputs of the attention
        let attended: Tensor          // (N, T, H·d): input of to_out.0
        let isSelfAttention: Bool
    }

    /// `callAsFunction(x, context:)`, keeping what `backward` needs.
    public func trainingForward(_ x: Tensor, context: Tensor? = nil) -> (output: Tensor, saved: Saved) {
        let source = context ?? x
        let q = toQ(x), k = toK(source), v = toV(source)
        let attended = scaledDotProductAttention(query: q, key: k, value: v, heads: heads)
        return (toOut(attended), Saved(x: x, source: source, q: q, k: k, v: v, attended: attended,
                                       isSelfAttention: context == nil))
    }

    /// The backward of `trainingForward`. In self-attention the keys and values come from `x`
    /// too, so its gradient collects all three paths; in cross-attention theirs goes to the context.
    ///
    ///     dAttended = to_out.0ᵀ(dOut);  dq, dk, dv = attentionᵀ(dAttended)
    ///     dx = to_qᵀ(dq) (+ to_kᵀ(dk) + to_vᵀ(dv) in self-attention);  dContext = to_kᵀ(dk) + to_vᵀ(dv)
    public func backward(_ dOut: Tensor, saved: Saved, gradients: inout Gradients) -> (dx: Tensor, dContext: Tensor?) {
        let dAttended = toOut.backward(dOut, input: saved.attended, gradients: &gradients)
        let (dq, dk, dv) = scaledDotProductAttentionBackward(dAttended, query: saved.q, key: saved.k, value: saved.v, heads: heads)
        var dx = toQ.backward(dq, input: saved.x, gradients: &gradients)
        var dSource = toK.backward(dk, input: saved.source, gradients: &gradients)
        dSource += toV.backward(dv, input: saved.source, gradients: &gradients)
        if saved.isSelfAttention {
            dx += dSource
            return (dx, nil)
        }
        return (dx, dSource)
    }
}
