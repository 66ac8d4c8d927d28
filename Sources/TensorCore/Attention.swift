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
    Profiler.measure("attention (QKᵀ, softmax, ·V)") {
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

    // Query rows per block: the block's scores (rows, S) take at most 384 KB, so they are still in
    // the core's L2 cache when the softmax and the product with V read them back. At 64x64 latents
    // (S = 4096) that is 24 rows (a multiple of the GEMM's 6-row tile) instead of a 64 MB score
    // matrix per head.
    let rowsPerBlock = min(t, max(mr, (96 << 10) / max(1, s) / mr * mr))
    // Every element is written below: each (sample, head) fills its columns for all query rows.
    var out = Tensor(shape: [batch, t, valueWidth], unsafeUninitialized: { _ in })

    query.withUnsafePointer { q in
    key.withUnsafePointer { k in
    value.withUnsafePointer { v in
    out.withUnsafeMutablePointer { o in
    (mask ?? Tensor.zeros([0])).withUnsafePointer { maskPointer in
        let q = SendablePointer(UnsafeMutablePointer(mutating: q)), k = SendablePointer(UnsafeMutablePointer(mutating: k))
        let v = SendablePointer(UnsafeMutablePointer(mutating: v)), o = SendablePointer(o)
        let m = SendablePointer(UnsafeMutablePointer(mutating: maskPointer))

        // One piece of work per (sample, head), each on one core with single-threaded GEMMs.
        func attendOneHead(_ task: Int) {
            let n = task / heads, h = task % heads
            let qHead = q.pointer + n * t * width + h * d
            let oHead = o.pointer + n * t * valueWidth + h * dv
            // Kᵀ (d, S) and V (S, dv) of this head, packed once for all blocks of query rows.
            // Kᵀ is K read with swapped strides.
            let keysT = PackedMatrix(columnsOf: MatrixOperand(k.pointer + n * s * width + h * d, rowStride: 1, columnStride: width),
                                     count: s, depth: d, onAllCores: false)
            let values = PackedMatrix(columnsOf: .rowMajor(v.pointer + n * s * valueWidth + h * dv, rowLength: valueWidth),
                                      count: dv, depth: s, onAllCores: false)
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: rowsPerBlock * s)
            defer { scores.deallocate() }

            for first in stride(from: 0, to: t, by: rowsPerBlock) {
                let rows = min(rowsPerBlock, t - first)
                // scores = Q_block · Kᵀ   (rows, d) · (d, S)
                serialGEMM(rows: 0..<rows, columns: 0..<s, k: d, a: .matrix(.rowMajor(qHead + first * width, rowLength: width)),
                           b: .packed(keysT), c: scores, ldc: s, accumulate: false)
                // probabilities = softmax(scores / √d + mask), row by row.
                for r in 0..<rows {
                    let row = scores + r * s
                    if mask != nil {
                        let maskRow = m.pointer + (first + r) * s
                        for j in 0..<s { row[j] = row[j] * scale + maskRow[j] }
                        softmaxRow(row, count: s)
                    } else {
                        softmaxRow(row, count: s, scale: scale)
                    }
                }
                observer?(n, h, first..<(first + rows), UnsafeBufferPointer(start: scores, count: rows * s))
                // out_block = probabilities · V   (rows, S) · (S, dv), written into head h's slice.
                serialGEMM(rows: 0..<rows, columns: 0..<dv, k: s, a: .matrix(.rowMajor(scores, rowLength: s)),
                           b: .packed(values), c: oHead + first * valueWidth, ldc: valueWidth, accumulate: false)
            }
        }

        // An observer sees the heads one after another, on the calling thread.
        if observer == nil {
            Parallel.forEach(batch * heads, attendOneHead)
        } else {
            for task in 0..<(batch * heads) { attendOneHead(task) }
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
