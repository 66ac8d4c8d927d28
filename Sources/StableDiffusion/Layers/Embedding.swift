import TensorCore

/// A lookup table from integer ids to learned vectors (PyTorch's `nn.Embedding`).
public struct Embedding: Sendable {
    public let storedWeight: Parameter  // (vocabulary, D)

    public init(_ weights: Weights, count: Int, features: Int) throws {
        storedWeight = try weights.parameter("weight", shape: [count, features])
    }

    /// The whole table as Float32 `(vocabulary, D)`.
    public var weight: Tensor { storedWeight.value }

    /// Ids `(N, T)` → vectors `(N, T, D)`. A 16-bit table stays 16-bit: only the rows looked up
    /// are widened.
    public func callAsFunction(_ ids: [[Int]]) -> Tensor {
        switch storedWeight.storage {
        case .float32(let table): return embeddingLookup(ids, table: table)
        case .halves(let table): return embeddingLookup(ids, table: table)
        }
    }
}
