import Foundation

// Scaled dot-product attention (Vaswani et al., 2017), multi-head:
//
//     Attention(Q, K, V) = softmax(Q Kᵀ / √d + mask) V
//
// computed separately for each head. Tensors keep the heads packed side by side in the feature
// dimension, `(N, T, H·d)`, exactly as the linear projections produce them: head `h` of token `t`
// is the slice `[h·d, (h+1)·d)`. The GEMM's strided operands pick a head out in place, so no
// permute to `(N, H, T, d)` is ever made.

/// Called with the attention probabilities of one block of query rows of one head:
/// `(batch, head, query rows, probabilities (rows.count, S) row-major)`. The cross-attention lesson
/// uses it to see which words each pixel looks at.
public typealias AttentionObserver = (_ batch: Int, _ head: Int, _ rows: Range<Int>,
                                      _ probabilities: UnsafeBufferPointer<Float>) -> Void

/// Multi-head scaled dot-product attention.
///
/// - Parameters:
///   - query: `(N, T, H·d)`; key: `(N, S, H·d)`; value: `(N, S, H·dv)`.
///   - heads: `H`.
///   - mask: optional additive mask `(T, S)`: 0 where allowed, `-infinity` where not (CLIP's
///     causal mask forbids looking at later tokens).
///   - observer: optional, sees the probabilities (see `AttentionObserver`).
/// - Returns: `(N, T, H·dv)`.
public func scaledDotProductAttention(query: Tensor, key: Tensor, value: Tensor, heads: Int,
                                      mask: Tensor? = nil, observer: AttentionObserver? = nil) -> Tensor {
    Profiler.measure("attention (scale, mask, softmax)") {
        attention(query: query, key: key, value: value, heads: heads, mask: mask, observer: observer)
    }
}

func attention(query: Tensor, key: Tensor, value: Tensor, heads: Int,
               mask: Tensor?, observer: AttentionObserver?) -> Tensor {
    let batch = query.shape[0], t = query.shape[1], s = key.shape[1]
    let width = query.shape[2], valueWidth = value.shape[2]
    precondition(query.rank == 3 && key.rank == 3 && value.rank == 3, "attention needs (N, T, H·d) tensors")
    precondition(key.shape[0] == batch && value.shape[0] == batch && value.shape[1] == s && key.shape[2] == width,
                 "attention shapes do not fit: q \(query.shape), k \(key.shape), v \(value.shape)")
    precondition(width % heads == 0 && valueWidth % heads == 0, "\(width) features do not split into \(heads) heads")
    if let mask { precondition(mask.shape == [t, s], "mask must be (\(t), \(s)), got \(mask.shape)") }
    let d = width / heads, dv = valueWidth / heads
    let scale = 1 / Float(d).squareRoot()

    // Scores for a block of query rows: (rows, S). At 64x64 latents T = S = 4096; a block of 1024
    // rows keeps the score matrix at 16 MB instead of 64 MB per head.
    let rowsPerBlock = max(1, min(t, (4 << 20) / max(1, s)))
    var scores = [Float](repeating: 0, count: rowsPerBlock * s)
    var out = Tensor.zeros([batch, t, valueWidth])

    query.withUnsafePointer { q in
    key.withUnsafePointer { k in
    value.withUnsafePointer { v in
    out.withUnsafeMutablePointer { o in
    scores.withUnsafeMutableBufferPointer { scoreBuffer in
        let sc = scoreBuffer.baseAddress!
        for n in 0..<batch {
            for h in 0..<heads {
                let qHead = q + n * t * width + h * d
                let kHead = k + n * s * width + h * d
                let vHead = v + n * s * valueWidth + h * dv
                for first in stride(from: 0, to: t, by: rowsPerBlock) {
                    let rows = min(rowsPerBlock, t - first)
                    // scores = Q_block · Kᵀ   (rows, d) · (d, S); Kᵀ is K read with swapped strides.
                    gemm(m: rows, n: s, k: d,
                         a: MatrixOperand(qHead + first * width, rowStride: width, columnStride: 1),
                         b: MatrixOperand(kHead, rowStride: 1, columnStride: width),
                         c: sc, ldc: s)
                    // probabilities = softmax(scores / √d + mask), row by row.
                    let rowsPointer = SendablePointer(sc)
                    Parallel.forEachChunk(of: rows, minimumChunk: 16) { range in
                        for r in range {
                            let row = rowsPointer.pointer + r * s
                            if let mask {
                                mask.withUnsafePointer { m in
                                    let maskRow = m + (first + r) * s
                                    for j in 0..<s { row[j] = row[j] * scale + maskRow[j] }
                                }
                            } else {
                                for j in 0..<s { row[j] *= scale }
                            }
                            softmaxRow(row, count: s)
                        }
                    }
                    observer?(n, h, first..<(first + rows), UnsafeBufferPointer(start: sc, count: rows * s))
                    // out_block = probabilities · V   (rows, S) · (S, dv), written into head h's slice.
                    gemm(m: rows, n: dv, k: s,
                         a: .rowMajor(sc, rowLength: s),
                         b: MatrixOperand(vHead, rowStride: valueWidth, columnStride: 1),
                         c: o + n * t * valueWidth + first * valueWidth + h * dv, ldc: valueWidth)
                }
            }
        }
    }}}}}
    return out
}

/// The definition, with plain loops and Double sums: the test oracle for
/// `scaledDotProductAttention`.
public func attentionReference(query: Tensor, key: Tensor, value: Tensor, heads: Int, mask: Tensor? = nil) -> Tensor {
    let batch = query.shape[0], t = query.shape[1], s = key.shape[1]
    let d = query.shape[2] / heads, dv = value.shape[2] / heads
    var out = Tensor.zeros([batch, t, value.shape[2]])
    for n in 0..<batch {
        for h in 0..<heads {
            for i in 0..<t {
                var logits = [Double](repeating: 0, count: s)
                for j in 0..<s {
                    var dot = 0.0
                    for c in 0..<d { dot += Double(query[n, i, h * d + c]) * Double(key[n, j, h * d + c]) }
                    logits[j] = dot / Double(d).squareRoot() + Double(mask?[i, j] ?? 0)
                }
                let top = logits.max()!
                let weights = logits.map { exp($0 - top) }
                let total = weights.reduce(0, +)
                for c in 0..<dv {
                    var sum = 0.0
                    for j in 0..<s { sum += weights[j] / total * Double(value[n, j, h * dv + c]) }
                    out[n, i, h * dv + c] = Float(sum)
                }
            }
        }
    }
    return out
}

/// CLIP's causal mask `(T, T)`: token `i` may attend to tokens `0...i` only.
public func causalMask(_ length: Int) -> Tensor {
    var mask = Tensor.zeros([length, length])
    for i in 0..<length { for j in (i + 1)..<max(i + 1, length) { mask[i, j] = -Float.infinity } }
    return mask
}
