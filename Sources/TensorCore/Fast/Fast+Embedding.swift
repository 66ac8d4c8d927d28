// Embedding lookup, fast: the twin of `Reference.embedding` (Reference/Reference+Embedding.swift).

extension Fast {
    /// `Reference.embedding`, copying whole rows.
    public static func embedding(_ ids: [[Int]], table: Tensor) -> Tensor {
        let width = table.shape[1]
        var out = [Float]()
        out.reserveCapacity(ids.count * (ids.first?.count ?? 0) * width)
        for id in ids.joined() { out += table.scalars[(id * width)..<((id + 1) * width)] }
        return Tensor(shape: [ids.count, ids.first?.count ?? 0, width], scalars: out)
    }

    /// The same with a 16-bit table, widening only the rows it reads: a lookup of 77 tokens reads
    /// 77 rows of CLIP's 49,408, not the whole table.
    public static func embedding(_ ids: [[Int]], table: HalfTensor) -> Tensor {
        let width = table.shape[1]
        var out = [Float]()
        out.reserveCapacity(ids.count * (ids.first?.count ?? 0) * width)
        for id in ids.joined() { out += table.widened(elements: (id * width)..<((id + 1) * width)) }
        return Tensor(shape: [ids.count, ids.first?.count ?? 0, width], scalars: out)
    }
}
