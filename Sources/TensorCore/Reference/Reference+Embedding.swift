// Embedding lookup: how CLIP turns token ids, and their positions, into vectors.

extension Reference {
    /// PyTorch's `nn.Embedding`: row `id` of a learned table, for every id,
    ///
    ///     out[n, t, i] = table[ids[n][t], i]
    ///
    /// - Parameters:
    ///   - ids: `N` sequences of `T` ids, each in `0..<V`.
    ///   - table: `(V, D)`: one learned vector per id.
    /// - Returns: `(N, T, D)`.
    public static func embedding(_ ids: [[Int]], table: Tensor) -> Tensor {
        let D = table.shape[1]
        let N = ids.count, T = ids.first?.count ?? 0
        var out = [Float](repeating: 0, count: N * T * D)
        for n in 0..<N {
            for t in 0..<T {
                for i in 0..<D { out[(n * T + t) * D + i] = table.scalars[ids[n][t] * D + i] }
            }
        }
        return Tensor(shape: [N, T, D], scalars: out)
    }
}

// MARK: - Backward

extension Reference {
    /// The gradient of `embedding` with respect to the table: each looked-up row collects the
    /// gradients of every place it was used (a token that appears twice gets both):
    ///
    ///     dTable[ids[n][t], i] += dOut[n, t, i]
    ///
    /// Rows never looked up get zero. The ids themselves have no gradient.
    public static func embeddingBackward(_ dOut: Tensor, ids: [[Int]], tableShape: [Int]) -> Tensor {
        let D = tableShape[1], T = ids.first?.count ?? 0
        var dTable = [Float](repeating: 0, count: tableShape[0] * D)
        for n in 0..<ids.count {
            for t in 0..<T {
                for i in 0..<D { dTable[ids[n][t] * D + i] += dOut.scalars[(n * T + t) * D + i] }
            }
        }
        return Tensor(shape: tableShape, scalars: dTable)
    }
}
