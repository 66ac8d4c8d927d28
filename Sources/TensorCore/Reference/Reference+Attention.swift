// Scaled dot-product attention (Vaswani et al., 2017), how every token gathers information from
// the others (self-attention) or from the words of the prompt (cross-attention):
//
//     Attention(Q, K, V) = softmax(Q Kᵀ / √d + mask) V

extension Reference {
    /// Multi-head attention, one (sample, head, query) at a time. For head `h`, query token `i`:
    ///
    ///     score[j] = (Σ_c q[n, i, h·d + c] · k[n, j, h·d + c]) / √d + mask[i, j]     for every key j
    ///     p        = softmax(score)                                                  (S probabilities)
    ///     out[n, i, h·dv + c] = Σ_j p[j] · v[n, j, h·dv + c]
    ///
    /// The heads sit side by side in the feature dimension, as the linear projections produce them:
    /// head `h` of a token is features `h·d ..< (h+1)·d`.
    ///
    /// - Parameters:
    ///   - query: `(N, T, H·d)`; key: `(N, S, H·d)`; value: `(N, S, H·dv)`.
    ///   - heads: `H`.
    ///   - mask: optional additive mask `(T, S)`: 0 where allowed, `−∞` where not (CLIP's causal
    ///     mask forbids looking at later tokens).
    ///   - observer: optional; sees each head's probabilities, all `T` rows at once.
    /// - Returns: `(N, T, H·dv)`.
    public static func scaledDotProductAttention(query: Tensor, key: Tensor, value: Tensor, heads H: Int,
                                                 mask: Tensor? = nil, observer: AttentionObserver? = nil) -> Tensor {
        let N = query.shape[0], T = query.shape[1], S = key.shape[1]
        let d = query.shape[2] / H, dv = value.shape[2] / H
        let qs = query.scalars, ks = key.scalars, vs = value.scalars, masks = mask?.scalars
        var out = [Float](repeating: 0, count: N * T * H * dv)
        for n in 0..<N {
            for h in 0..<H {
                var probabilities = [Float]()          // (T, S), for the observer
                for i in 0..<T {
                    var scores = [Float](repeating: 0, count: S)
                    for j in 0..<S {
                        var dot: Float = 0
                        for c in 0..<d { dot += qs[(n * T + i) * H * d + h * d + c] * ks[(n * S + j) * H * d + h * d + c] }
                        scores[j] = dot / Float(d).squareRoot() + (masks?[i * S + j] ?? 0)
                    }
                    let p = softmax(row: scores)
                    for c in 0..<dv {
                        var sum: Float = 0
                        for j in 0..<S { sum += p[j] * vs[(n * S + j) * H * dv + h * dv + c] }
                        out[(n * T + i) * H * dv + h * dv + c] = sum
                    }
                    if observer != nil { probabilities += p }
                }
                if let observer {
                    probabilities.withUnsafeBufferPointer { observer(n, h, 0..<T, $0) }
                }
            }
        }
        return Tensor(shape: [N, T, H * dv], scalars: out)
    }
}

// MARK: - Backward

extension Reference {
    /// The gradients of `scaledDotProductAttention`, one (sample, head, query) at a time. The
    /// forward's probabilities `p` are computed again, then, with `dOut` the gradient of query
    /// `i`'s output (`dv` numbers of head `h`):
    ///
    ///     dp[j]   = Σ_c dOut[c] · v[j, c]                 how the output moves with each probability
    ///     dv[j]  += p[j] · dOut                           each value was weighted by its probability
    ///     ds      = softmaxBackward(dp, p)                through the softmax, to the scores
    ///     dq     += Σ_j ds[j] · k[j] / √d                 score j = q · k[j] / √d + mask
    ///     dk[j]  += ds[j] · q / √d
    ///
    /// A masked key (mask −∞, p = 0) gets no gradient from that query. The mask is a constant.
    ///
    /// - Returns: `dq (N, T, H·d)`, `dk (N, S, H·d)`, `dv (N, S, H·dv)`.
    public static func scaledDotProductAttentionBackward(_ dOut: Tensor, query: Tensor, key: Tensor, value: Tensor,
                                                         heads H: Int, mask: Tensor? = nil)
        -> (dQuery: Tensor, dKey: Tensor, dValue: Tensor) {
        let N = query.shape[0], T = query.shape[1], S = key.shape[1]
        let d = query.shape[2] / H, dv = value.shape[2] / H
        let qs = query.scalars, ks = key.scalars, vs = value.scalars, gs = dOut.scalars, masks = mask?.scalars
        let scale = 1 / Float(d).squareRoot()
        var dq = [Float](repeating: 0, count: query.count), dk = [Float](repeating: 0, count: key.count)
        var dV = [Float](repeating: 0, count: value.count)
        for n in 0..<N {
            for h in 0..<H {
                for i in 0..<T {
                    let q = { (c: Int) in (n * T + i) * H * d + h * d + c }        // index of q[n, i, h·d + c]
                    let k = { (j: Int, c: Int) in (n * S + j) * H * d + h * d + c }
                    let v = { (j: Int, c: Int) in (n * S + j) * H * dv + h * dv + c }
                    let o = { (c: Int) in (n * T + i) * H * dv + h * dv + c }
                    var scores = [Float](repeating: 0, count: S)
                    for j in 0..<S {
                        var dot: Float = 0
                        for c in 0..<d { dot += qs[q(c)] * ks[k(j, c)] }
                        scores[j] = dot * scale + (masks?[i * S + j] ?? 0)
                    }
                    let p = softmax(row: scores)
                    var dp = [Float](repeating: 0, count: S)
                    for j in 0..<S {
                        for c in 0..<dv {
                            dp[j] += gs[o(c)] * vs[v(j, c)]
                            dV[v(j, c)] += p[j] * gs[o(c)]
                        }
                    }
                    let ds = softmaxBackward(row: dp, probabilities: p)
                    for j in 0..<S {
                        for c in 0..<d {
                            dq[q(c)] += ds[j] * ks[k(j, c)] * scale
                            dk[k(j, c)] += ds[j] * qs[q(c)] * scale
                        }
                    }
                }
            }
        }
        return (Tensor(shape: query.shape, scalars: dq), Tensor(shape: key.shape, scalars: dk),
                Tensor(shape: value.shape, scalars: dV))
    }
}
