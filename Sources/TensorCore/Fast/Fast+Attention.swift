import Foundation

// Scaled dot-product attention, fast: the twin of `Reference.scaledDotProductAttention`
// (Reference/Reference+Attention.swift), `softmax(Q Kᵀ / √d + mask) V` for every head.
//
// Tensors keep the heads packed side by side in the feature dimension, `(N, T, H·d)`, exactly as
// the linear projections produce them: head `h` of token `t` is the slice `[h·d, (h+1)·d)`. The
// GEMM's strided operands pick a head out in place, so no permute to `(N, H, T, d)` is ever made.
// Each head (or, with fewer heads than cores, each share of a head's queries) runs on one core in
// `AttentionHead`, which computes the products transposed (see there for why).

extension Fast {
    /// `Reference.scaledDotProductAttention`, one (sample, head) per core, products on the
    /// micro-kernel. The observer sees blocks of query rows, on the calling thread.
    public static func scaledDotProductAttention(query: Tensor, key: Tensor, value: Tensor, heads: Int,
                                                 mask: Tensor?, observer: AttentionObserver?) -> Tensor {
        Profiler.measure("attention (QKᵀ, softmax, ·V)") {
            attention(query: query, key: key, value: value, heads: heads, mask: mask, observer: observer)
        }
    }
}

private func attention(query: Tensor, key: Tensor, value: Tensor, heads: Int,
               mask: Tensor?, observer: AttentionObserver?) -> Tensor {
    let batch = query.shape[0], t = query.shape[1], s = key.shape[1]
    let width = query.shape[2], valueWidth = value.shape[2]
    precondition(query.rank == 3 && key.rank == 3 && value.rank == 3, "attention needs (N, T, H·d) tensors")
    precondition(key.shape[0] == batch && value.shape[0] == batch && value.shape[1] == s && key.shape[2] == width,
                 "attention shapes do not fit: q \(query.shape), k \(key.shape), v \(value.shape)")
    precondition(width % heads == 0 && valueWidth % heads == 0, "\(width) features do not split into \(heads) heads")
    if let mask { precondition(mask.shape == [t, s], "mask must be (\(t), \(s)), got \(mask.shape)") }
    let d = width / heads, dv = valueWidth / heads
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

        // One piece of work per (sample, head, share of the queries), each on one core. The
        // queries are shared out only when there are fewer heads than cores: the VAE's attention
        // is one head of one sample, which would otherwise leave all cores but one idle.
        let shares = observer == nil ? max(1, (Parallel.threadCount + batch * heads - 1) / (batch * heads)) : 1
        func attendOneHead(_ task: Int) {
            let n = task / (heads * shares), h = task / shares % heads
            let queries = GEMMTiling.share(task % shares, of: shares, total: t, unit: nr)
            if queries.isEmpty { return }
            let head = AttentionHead(
                query: MatrixOperand.rowMajor(q.pointer + (n * t + queries.lowerBound) * width + h * d, rowLength: width),
                key: MatrixOperand.rowMajor(k.pointer + n * s * width + h * d, rowLength: width),
                value: MatrixOperand.rowMajor(v.pointer + n * s * valueWidth + h * dv, rowLength: valueWidth),
                mask: mask == nil ? nil : UnsafePointer(m.pointer + queries.lowerBound * s),
                queries: queries.count, keys: s, depth: d, valueDepth: dv)
            let output = o.pointer + (n * t + queries.lowerBound) * valueWidth + h * dv
            head.attend(into: output, outputRowLength: valueWidth,
                        observe: observer.map { observer in { rows, probabilities in observer(n, h, rows, probabilities) } })
        }

        // An observer sees the heads one after another, on the calling thread.
        if observer == nil {
            Parallel.forEach(batch * heads * shares, attendOneHead)
        } else {
            for task in 0..<(batch * heads) { attendOneHead(task) }
        }
    }}}}}
    return out
}

/// One head of one sample, computed on one core in blocks of query rows.
///
/// The products are computed *transposed*, with the keys down the rows:
///
///     Sᵀ = K · Qᵀ        (S, d) · (d, queries)      scores, one column per query
///     Pᵀ = softmax down each column of Sᵀ
///     Oᵀ = Vᵀ · Pᵀ       (dv, S) · (S, queries)
///
/// Why: with 16 queries side by side, Sᵀ is `S` rows of 16 numbers, which is exactly the packed
/// layout of a 16-column panel of the GEMM's right operand (see GEMM+Packing.swift). So the
/// probabilities go straight from the softmax into the second product, with no copy; the softmax
/// works on 16 queries at once, two vectors per key; and the short side of the second product is
/// dv (40 in SD's UNet), padded to 42 rows for the 6-row register tile instead of 48 columns for
/// the 16-column one. The division by the softmax's sum waits until the end, where it touches
/// `dv` numbers per query instead of `S`.
struct AttentionHead {
    /// `(T, d)`, `(S, d)`, `(S, dv)`: this head's slices, rows `width` apart.
    let query, key, value: MatrixOperand
    /// Additive mask `(T, S)`, row-major, or nil.
    let mask: UnsafePointer<Float>?
    let queries, keys, depth, valueDepth: Int

    /// Panels of 16 queries per block: as many as keep the block's scores (S x 16 floats per
    /// panel) within about 512 KB, the size of a core's L2 cache, and at most 4. At 64x64 latents
    /// (S = 4096) that is 2 panels, 32 queries.
    var panelsPerBlock: Int { max(1, min(4, (512 << 10) / (max(1, keys) * nr * MemoryLayout<Float>.stride))) }

    /// Writes `softmax(Q Kᵀ / √d + mask) V` into `output` (rows `outputRowLength` apart), and shows
    /// each block's probabilities, `(rows, S)` row-major, to `observe`.
    func attend(into output: UnsafeMutablePointer<Float>, outputRowLength: Int,
                observe: ((Range<Int>, UnsafeBufferPointer<Float>) -> Void)?) {
        let s = keys, d = depth, dv = valueDepth
        let scale = 1 / Float(d).squareRoot()
        // K as the left operand (S rows) and Vᵀ as the left operand (dv rows): packed once, read
        // by every block of queries.
        let kernel = CPUKernels.active, mr = kernel.tileRows
        let packedKeys = PackedMatrix(.matrix(key), outer: s, depth: d, width: mr, onAllCores: false)
        let packedValuesT = PackedMatrix(.matrix(value.transposed), outer: dv, depth: s, width: mr, onAllCores: false)
        let paddedDV = roundUp(dv, to: mr)
        let panels = panelsPerBlock
        // Per block: Qᵀ's panels (d x 16 each), Sᵀ (S x 16 per panel), Oᵀ (dv x 16 per panel).
        let queryPanels = UnsafeMutablePointer<Float>.allocate(capacity: panels * nr * d)
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: panels * nr * s)
        let outputT = UnsafeMutablePointer<Float>.allocate(capacity: panels * nr * paddedDV)
        var inverseSums = [Float](repeating: 0, count: panels * nr)
        defer { queryPanels.deallocate(); scores.deallocate(); outputT.deallocate() }

        for first in stride(from: 0, to: queries, by: panels * nr) {
            let rows = first..<min(queries, first + panels * nr)
            let blockPanels = (rows.count + nr - 1) / nr
            // Qᵀ for this block, as packed 16-column panels (zero past the last query).
            packPanels(query, outer: rows, depth: 0..<d, width: nr, into: queryPanels)

            for panel in 0..<blockPanels {
                let scoresT = scores + panel * nr * s
                // Sᵀ = K · Qᵀ, one register tile of `mr` keys at a time.
                for slice in depthSlices(d) {
                    let pc = slice.lowerBound
                    let keyPanels = packedKeys.panels(startingAt: 0, depth: slice)
                    for row in stride(from: 0, to: s, by: mr) {
                        kernel.tile(depth: slice.count, a: keyPanels + row * slice.count,
                                    b: queryPanels + panel * nr * d + pc * nr, bPanelStride: 0,
                                    c: scoresT + row * nr, ldc: nr, rows: min(mr, s - row), columns: nr, overwrite: pc == 0)
                    }
                }
                if let mask {
                    // Sᵀ[j, i] = Sᵀ[j, i] / √d + mask[query i, key j]
                    for i in 0..<min(nr, rows.count - panel * nr) {
                        let maskRow = mask + (rows.lowerBound + panel * nr + i) * s
                        for j in 0..<s { scoresT[j * nr + i] = scoresT[j * nr + i] * scale + maskRow[j] }
                    }
                }
                let sums = softmaxColumns(scoresT, count: s, scale: mask == nil ? scale : 1)
                for i in 0..<nr { inverseSums[panel * nr + i] = sums[i] > 0 ? 1 / sums[i] : 0 }
            }

            // Oᵀ = Vᵀ · Pᵀ over S in depth slices: each slice of Vᵀ is read once for all the
            // block's query panels.
            for slice in depthSlices(s) {
                let pc = slice.lowerBound
                let valuePanels = packedValuesT.panels(startingAt: 0, depth: slice)
                for panel in 0..<blockPanels {
                    for row in stride(from: 0, to: dv, by: mr) {
                        kernel.tile(depth: slice.count, a: valuePanels + row * slice.count,
                                    b: scores + panel * nr * s + pc * nr, bPanelStride: 0,
                                    c: outputT + panel * nr * paddedDV + row * nr, ldc: nr,
                                    rows: min(mr, dv - row), columns: nr, overwrite: pc == 0)
                    }
                }
            }

            // O[query, c] = Oᵀ[c, query] / Σ, the softmax's division, done here on dv numbers.
            for (i, query) in rows.enumerated() {
                let panel = i / nr, lane = i % nr
                let source = outputT + panel * nr * paddedDV + lane, target = output + query * outputRowLength
                let inverse = inverseSums[i]
                for c in 0..<dv { target[c] = source[c * nr] * inverse }
            }

            if let observe { observeProbabilities(rows: rows, scores: scores, inverseSums: inverseSums, observe: observe) }
        }
    }

    /// Hands a block's probabilities to an observer the usual way round, `(rows, S)` row-major and
    /// divided by their sums. Only lessons watch attention, on small inputs, so this copy is cheap.
    private func observeProbabilities(rows: Range<Int>, scores: UnsafePointer<Float>, inverseSums: [Float],
                                      observe: (Range<Int>, UnsafeBufferPointer<Float>) -> Void) {
        var probabilities = [Float](repeating: 0, count: rows.count * keys)
        for i in 0..<rows.count {
            let column = scores + i / nr * nr * keys + i % nr
            for j in 0..<keys { probabilities[i * keys + j] = column[j * nr] * inverseSums[i] }
        }
        probabilities.withUnsafeBufferPointer { observe(rows, $0) }
    }
}

// MARK: - Backward

extension Fast {
    /// `Reference.scaledDotProductAttentionBackward` as matrix products, per (sample, head):
    ///
    ///     P  = softmax(Q Kᵀ / √d + mask)        recomputed, (T, S)
    ///     dV = Pᵀ · dO                          (S, T) · (T, dv)
    ///     dP = dO · Vᵀ                          (T, dv) · (dv, S)
    ///     dS = P ⊙ (dP − rowsum(P ⊙ dP)) / √d   the softmax's backward, and the scale
    ///     dQ = dS · K,   dK = dSᵀ · Q            (T, S) · (S, d) and (S, T) · (T, d)
    ///
    /// Queries go in blocks, so the (block, S) matrices stay small whatever the picture size; dK
    /// and dV add up over the blocks. Heads read and write their columns of the packed `(N, T, H·d)`
    /// tensors in place. With at least as many (sample, head) pairs as cores, each pair runs on one
    /// core; with fewer (the VAE's single head), the pairs run in turn on the multi-core GEMM.
    public static func scaledDotProductAttentionBackward(_ dOut: Tensor, query: Tensor, key: Tensor, value: Tensor,
                                                         heads: Int, mask: Tensor?) -> (dQuery: Tensor, dKey: Tensor, dValue: Tensor) {
        Profiler.measure("attention backward") {
            attentionBackward(dOut, query: query, key: key, value: value, heads: heads, mask: mask)
        }
    }
}

private func attentionBackward(_ dOut: Tensor, query: Tensor, key: Tensor, value: Tensor, heads: Int, mask: Tensor?)
    -> (dQuery: Tensor, dKey: Tensor, dValue: Tensor) {
    let batch = query.shape[0], t = query.shape[1], s = key.shape[1]
    let width = query.shape[2], valueWidth = value.shape[2]
    let d = width / heads, dv = valueWidth / heads
    let scale = 1 / Float(d).squareRoot()
    let pairs = batch * heads
    let onePairPerCore = pairs >= Parallel.threadCount
    // Queries per block: the block's P and dP, (block, S) each, within about 1 MB.
    let block = max(1, min(t, (256 << 10) / max(1, s)))
    // Every element is written: dQ block by block, dK and dV by their first block (then added to).
    var dq = Tensor(shape: query.shape, unsafeUninitialized: { _ in })
    var dk = Tensor(shape: key.shape, unsafeUninitialized: { _ in })
    var dV = Tensor(shape: value.shape, unsafeUninitialized: { _ in })

    query.withUnsafePointer { q in key.withUnsafePointer { k in value.withUnsafePointer { v in
    dOut.withUnsafePointer { g in (mask ?? Tensor.zeros([0])).withUnsafePointer { m in
    dq.withUnsafeMutablePointer { dqOut in dk.withUnsafeMutablePointer { dkOut in dV.withUnsafeMutablePointer { dvOut in
        let q = SendablePointer(UnsafeMutablePointer(mutating: q)), k = SendablePointer(UnsafeMutablePointer(mutating: k))
        let v = SendablePointer(UnsafeMutablePointer(mutating: v)), g = SendablePointer(UnsafeMutablePointer(mutating: g))
        let m = SendablePointer(UnsafeMutablePointer(mutating: m))
        let dqOut = SendablePointer(dqOut), dkOut = SendablePointer(dkOut), dvOut = SendablePointer(dvOut)

        // C = A · B on this core, or on all of them when the pairs run one after another.
        func product(_ rows: Int, _ columns: Int, _ depth: Int, _ a: MatrixOperand, _ b: MatrixOperand,
                     _ c: UnsafeMutablePointer<Float>, _ ldc: Int, accumulate: Bool) {
            gemm(m: rows, n: columns, k: depth, a: .matrix(a), b: .matrix(b), c: c, ldc: ldc, accumulate: accumulate,
                 onAllCores: !onePairPerCore)
        }

        func backwardOnePair(_ pair: Int) {
            let n = pair / heads, h = pair % heads
            let probabilities = UnsafeMutablePointer<Float>.allocate(capacity: block * s)
            let dProbabilities = UnsafeMutablePointer<Float>.allocate(capacity: block * s)
            defer { probabilities.deallocate(); dProbabilities.deallocate() }
            // This head's slices: rows `width` (or `valueWidth`) apart.
            let qHead = q.pointer + n * t * width + h * d, kHead = k.pointer + n * s * width + h * d
            let vHead = v.pointer + n * s * valueWidth + h * dv, gHead = g.pointer + n * t * valueWidth + h * dv
            let dqHead = dqOut.pointer + n * t * width + h * d, dkHead = dkOut.pointer + n * s * width + h * d
            let dvHead = dvOut.pointer + n * s * valueWidth + h * dv

            for first in stride(from: 0, to: t, by: block) {
                let rows = min(block, t - first)
                let qBlock = qHead + first * width, gBlock = gHead + first * valueWidth
                // P = softmax(Q Kᵀ / √d + mask), row by row.
                product(rows, s, d, .rowMajor(qBlock, rowLength: width), .transposed(kHead, rowLength: width),
                        probabilities, s, accumulate: false)
                for i in 0..<rows {
                    let row = probabilities + i * s
                    if mask != nil {
                        let maskRow = m.pointer + (first + i) * s
                        for j in 0..<s { row[j] = row[j] * scale + maskRow[j] }
                        softmaxRow(row, count: s)
                    } else {
                        softmaxRow(row, count: s, scale: scale)
                    }
                }
                // dV (+)= Pᵀ · dO and dP = dO · Vᵀ.
                product(s, dv, rows, .transposed(probabilities, rowLength: s), .rowMajor(gBlock, rowLength: valueWidth),
                        dvHead, valueWidth, accumulate: first > 0)
                product(rows, s, dv, .rowMajor(gBlock, rowLength: valueWidth), .transposed(vHead, rowLength: valueWidth),
                        dProbabilities, s, accumulate: false)
                // dS = P ⊙ (dP − Σ P ⊙ dP) / √d, into dP's place.
                for i in 0..<rows {
                    let p = probabilities + i * s, dp = dProbabilities + i * s
                    let dot = dotProduct(p, dp, count: s)
                    for j in 0..<s { dp[j] = p[j] * (dp[j] - dot) * scale }
                }
                // dQ = dS · K for this block, dK (+)= dSᵀ · Q.
                product(rows, d, s, .rowMajor(dProbabilities, rowLength: s), .rowMajor(kHead, rowLength: width),
                        dqHead + first * width, width, accumulate: false)
                product(s, d, rows, .transposed(dProbabilities, rowLength: s), .rowMajor(qBlock, rowLength: width),
                        dkHead, width, accumulate: first > 0)
            }
        }

        if onePairPerCore {
            Parallel.forEach(pairs, backwardOnePair)
        } else {
            for pair in 0..<pairs { backwardOnePair(pair) }
        }
    }}}}}}}}
    return (dq, dk, dV)
}

/// `Σ a[j]·b[j]`, eight lanes wide (a row of attention scores: at most a few thousand terms).
@inline(__always)
private func dotProduct(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
    var lanes = SIMD8<Float>()
    let vectorEnd = count & ~7
    for j in stride(from: 0, to: vectorEnd, by: 8) {
        lanes += eight(a, j) * eight(b, j)
    }
    var sum = lanes.sum()
    for j in vectorEnd..<count { sum += a[j] * b[j] }
    return sum
}
