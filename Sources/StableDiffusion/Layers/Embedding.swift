import TensorCore

/// A lookup table from integer ids to learned vectors (PyTorch's `nn.Embedding`).
public struct Embedding: Sendable {
    public let weight: Tensor   // (vocabulary, D)

    public init(_ weights: Weights, count: Int, features: Int) throws {
        weight = try weights.tensor("weight", shape: [count, features])
    }

    /// Ids `(N, T)` → vectors `(N, T, D)`.
    public func callAsFunction(_ ids: [[Int]]) -> Tensor {
        let features = weight.shape[1]
        var out: [Float] = []
        out.reserveCapacity(ids.count * (ids.first?.count ?? 0) * features)
        for row in ids {
            for id in row {
                precondition(id >= 0 && id < weight.shape[0], "id \(id) outside the table of \(weight.shape[0])")
                out.append(contentsOf: weight.scalars[(id * features)..<((id + 1) * features)])
            }
        }
        return Tensor(shape: [ids.count, ids.first?.count ?? 0, features], scalars: out)
    }
}
