import TensorCore

/// A lookup table from integer ids to learned vectors (PyTorch's `nn.Embedding`).
public struct Embedding: Sendable {
    public let storedWeight: Parameter  // (vocabulary, D)

    public init(_ weights: Weights, count: Int, features: Int) throws {
        storedWeight = try weights.parameter("weight", shape: [count, features])
    }

    /// The whole table as Float32 `(vocabulary, D)`.
    public var weight: Tensor { storedWeight.value }

    /// Ids `(N, T)` → vectors `(N, T, D)`.
    public func callAsFunction(_ ids: [[Int]]) -> Tensor {
        let features = storedWeight.shape[1]
        let flat = ids.flatMap { $0 }
        for id in flat {
            precondition(id >= 0 && id < storedWeight.shape[0], "id \(id) outside the table of \(storedWeight.shape[0])")
        }
        return Tensor(shape: [ids.count, ids.first?.count ?? 0, features], scalars: storedWeight.rows(flat))
    }
}
