import TensorCore

/// CLIP's text transformer (Radford et al., 2021): reads the 77 token ids of a prompt and returns
/// one 768-number vector per token, the "text embedding" the UNet attends to.
///
///     x = token_embedding[ids] + position_embedding[0..<77]    (N, 77, D)
///     x = encoder.layers[i](x)   for i in 0..<12                (N, 77, D), causal self-attention + MLP
///     out = final_layer_norm(x)                                 (N, 77, D), the last hidden state
///
/// Stable Diffusion uses all 77 vectors (not CLIP's single pooled vector): the UNet's
/// cross-attention lets each pixel pick the words it needs. Because of the causal mask, the
/// vector at position t has read the prompt up to token t, and the `<|endoftext|>` vectors
/// after the prompt have read all of it.
///
/// Weights are the transformers / diffusers `CLIPTextModel` tensors below `text_model.`
/// (`embeddings.token_embedding.weight`, `encoder.layers.0.self_attn.q_proj.weight`, ...):
///
/// ```swift
/// let store = WeightStore(try SafeTensors.read(path: "text_encoder/model.safetensors"))
/// let textEncoder = try CLIPTextModel(Weights(store)["text_model"], configuration: .sd15)
/// try store.checkAllUsed()
/// let context = textEncoder([tokenizer.tokenize("a photograph of an astronaut").ids])   // (1, 77, 768)
/// ```
public struct CLIPTextModel: Sendable {
    public let configuration: CLIPTextConfiguration
    public let embeddings: CLIPTextEmbeddings
    public let layers: [CLIPEncoderLayer]   // named encoder.layers.{i}
    public let finalLayerNorm: LayerNorm    // (D) weight and bias; named final_layer_norm

    /// - Parameter weights: scoped at `text_model` (the caller writes `Weights(store)["text_model"]`).
    public init(_ weights: Weights, configuration: CLIPTextConfiguration = .sd15) throws {
        try configuration.validate()
        self.configuration = configuration
        embeddings = try CLIPTextEmbeddings(weights["embeddings"], configuration: configuration)
        layers = try (0..<configuration.numHiddenLayers).map {
            try CLIPEncoderLayer(weights["encoder"]["layers"]["\($0)"], configuration: configuration)
        }
        finalLayerNorm = try LayerNorm(weights["final_layer_norm"], features: configuration.hiddenSize,
                                       eps: configuration.layerNormEps)
    }

    /// The last hidden state: ids `(N, T)` → `(N, T, D)`, after the final layer norm.
    ///
    /// - Parameters:
    ///   - ids: N rows of T token ids each, T ≤ 77 (Stable Diffusion always passes 77).
    ///   - skippingLastLayers: "CLIP skip": stop this many layers before the end, then apply the
    ///     final layer norm, as diffusers' `clip_skip` does. 0 (the default) runs every layer;
    ///     some fine-tuned models were trained with 1. Must be less than the number of layers.
    public func callAsFunction(_ ids: [[Int]], skippingLastLayers skip: Int = 0) -> Tensor {
        precondition(skip >= 0 && skip < layers.count, "can skip 0..<\(layers.count) layers, not \(skip)")
        let mask = validatedMask(ids)
        var x = embeddings(ids)
        for layer in layers.dropLast(skip) { x = layer(x, mask: mask) }
        return finalLayerNorm(x)
    }

    /// Every intermediate result, as transformers' `output_hidden_states=True` returns them:
    /// element 0 is the embeddings, element i the output of layer i - 1, all `(N, T, D)` and
    /// before the final layer norm (the last one is not the last hidden state).
    public func hiddenStates(_ ids: [[Int]]) -> [Tensor] {
        let mask = validatedMask(ids)
        var states = [embeddings(ids)]
        for layer in layers { states.append(layer(states[states.count - 1], mask: mask)) }
        return states
    }

    /// The causal mask `(T, T)` for `ids`, after checking that they fit the model.
    private func validatedMask(_ ids: [[Int]]) -> Tensor {
        let length = ids.first?.count ?? 0
        precondition(!ids.isEmpty && length > 0, "the text encoder needs at least one row of token ids")
        precondition(ids.allSatisfy { $0.count == length }, "all rows of token ids must have the same length")
        precondition(length <= configuration.maxPositionEmbeddings,
                     "\(length) tokens do not fit the \(configuration.maxPositionEmbeddings) positions")
        return causalMask(length)
    }
}
