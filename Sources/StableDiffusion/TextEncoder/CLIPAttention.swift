import TensorCore

/// Multi-head self-attention of a CLIP text layer: every token looks at itself and the tokens
/// before it, and takes a weighted mix of their values.
///
///     q = x Wqᵀ + bq,  k = x Wkᵀ + bk,  v = x Wvᵀ + bv                  each (N, T, D), H heads of d = D/H
///     head_h = softmax(q_h k_hᵀ / √d + causal mask) v_h                   (N, T, d)
///     out = concat(head_1, ..., head_H) Woᵀ + bo                          (N, T, D)
///
/// The causal mask (-∞ above the diagonal) keeps token t from seeing tokens after it, as in a
/// language model: CLIP was trained that way, so the vector of "horse" in "a red horse" knows
/// about "red", but "red" knows nothing of "horse".
public struct CLIPAttention: Sendable {
    public let qProj: Linear     // (D, D); named q_proj
    public let kProj: Linear     // (D, D); named k_proj
    public let vProj: Linear     // (D, D); named v_proj
    public let outProj: Linear   // (D, D); named out_proj
    public let heads: Int

    public init(_ weights: Weights, configuration c: CLIPTextConfiguration) throws {
        let d = c.hiddenSize
        qProj = try Linear(weights["q_proj"], inFeatures: d, outFeatures: d)
        kProj = try Linear(weights["k_proj"], inFeatures: d, outFeatures: d)
        vProj = try Linear(weights["v_proj"], inFeatures: d, outFeatures: d)
        outProj = try Linear(weights["out_proj"], inFeatures: d, outFeatures: d)
        heads = c.numAttentionHeads
    }

    /// `(N, T, D)` → `(N, T, D)`; `mask` is `(T, T)`, 0 where allowed and -∞ where not.
    public func callAsFunction(_ x: Tensor, mask: Tensor?) -> Tensor {
        // The heads stay packed side by side in the last dimension: (N, T, H·d).
        let attended = scaledDotProductAttention(query: qProj(x), key: kProj(x), value: vProj(x),
                                                 heads: heads, mask: mask)
        return outProj(attended)
    }
}

// MARK: - Training

extension CLIPAttention {
    /// What the training forward keeps: the input, the projections and the attended values.
    public struct Saved: Sendable {
        let x, q, k, v, attended: Tensor
    }

    /// `callAsFunction(x, mask:)`, keeping what `backward` needs.
    public func trainingForward(_ x: Tensor, mask: Tensor?) -> (output: Tensor, saved: Saved) {
        let q = qProj(x), k = kProj(x), v = vProj(x)
        let attended = scaledDotProductAttention(query: q, key: k, value: v, heads: heads, mask: mask)
        return (outProj(attended), Saved(x: x, q: q, k: k, v: v, attended: attended))
    }

    /// The backward of `trainingForward`: queries, keys and values all came from `x`, so its
    /// gradient collects all three paths. The mask is a constant.
    public func backward(_ dOut: Tensor, saved: Saved, mask: Tensor?, gradients: inout Gradients) -> Tensor {
        let dAttended = outProj.backward(dOut, input: saved.attended, gradients: &gradients)
        let (dq, dk, dv) = scaledDotProductAttentionBackward(dAttended, query: saved.q, key: saved.k, value: saved.v,
                                                             heads: heads, mask: mask)
        var dx = qProj.backward(dq, input: saved.x, gradients: &gradients)
        dx += kProj.backward(dk, input: saved.x, gradients: &gradients)
        dx += vProj.backward(dv, input: saved.x, gradients: &gradients)
        return dx
    }
}
