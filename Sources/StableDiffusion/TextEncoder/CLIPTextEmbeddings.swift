import TensorCore

/// The input of CLIP's text transformer: for each token, the learned vector of its id plus the
/// learned vector of its position,
///
///     x[n, t] = token_embedding[ids[n, t]] + position_embedding[t]
///
/// Attention itself does not know word order; the position vector is what tells "dog bites man"
/// from "man bites dog".
public struct CLIPTextEmbeddings: Sendable {
    public let tokenEmbedding: Embedding      // (vocab_size, D); named token_embedding
    public let positionEmbedding: Embedding   // (max_position_embeddings, D); named position_embedding

    public init(_ weights: Weights, configuration c: CLIPTextConfiguration) throws {
        tokenEmbedding = try Embedding(weights["token_embedding"], count: c.vocabSize, features: c.hiddenSize)
        positionEmbedding = try Embedding(weights["position_embedding"], count: c.maxPositionEmbeddings,
                                          features: c.hiddenSize)
        // transformers saves the buffer position_ids = [[0, 1, ..., 76]] (int64) in some checkpoints.
        // It is just the positions 0..<T, which this model counts itself.
        let positionIDs = weights.key("position_ids")
        if weights.store.record(positionIDs) != nil { weights.store.ignore(positionIDs) }
    }

    /// Ids `(N, T)` → token vectors `(N, T, D)`.
    public func callAsFunction(_ ids: [[Int]]) -> Tensor {
        let positions = [[Int]](repeating: Array(0..<(ids.first?.count ?? 0)), count: ids.count)
        return tokenEmbedding(ids) + positionEmbedding(positions)
    }
}

// MARK: - Training

extension CLIPTextEmbeddings {
    /// The backward of `callAsFunction(ids)`: both tables collect the output's gradient at the rows
    /// they gave (the sum passes the same gradient to both).
    public func backward(_ dOut: Tensor, ids: [[Int]], gradients: inout Gradients) {
        let positions = [[Int]](repeating: Array(0..<(ids.first?.count ?? 0)), count: ids.count)
        tokenEmbedding.backward(dOut, ids: ids, gradients: &gradients)
        positionEmbedding.backward(dOut, ids: positions, gradients: &gradients)
    }
}
