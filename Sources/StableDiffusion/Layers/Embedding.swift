import TensorCore

/// A lookup table from integer ids to learned vectors (PyTorch's `nn.Embedding`).
public struct Embedding: Sendable {
    public let storedWeight: Parameter  // (vocabulary, D)
    /// The layer's key prefix in the checkpoint, e.g. `embeddings.token_embedding.`.
    public let key: String

    public init(_ weights: Weights, count: Int, features: Int) throws {
        storedWeight = try weights.parameter("weight", shape: [count, features])
        key = weights.prefix
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

    /// The backward of `callAsFunction(ids)`: adds the table's gradient to `gradients` (ids have none).
    public func backward(_ dy: Tensor, ids: [[Int]], gradients: inout Gradients) {
        gradients.add(embeddingBackward(dy, ids: ids, tableShape: storedWeight.shape), for: key + "weight")
    }
}
