import TensorCore

// The text encoder's training forward and backward, for a text encoder trained jointly with the
// UNet (as the latent diffusion paper's text-to-image model trained its own transformer): the
// UNet's backward hands over the gradient of the context, and it flows on from here.

extension CLIPTextModel {
    /// What the training forward keeps.
    public struct Saved: Sendable {
        let ids: [[Int]]
        let mask: Tensor
        let layers: [CLIPEncoderLayer.Saved]
        let last: Tensor                        // input of the final layer norm
    }

    /// `callAsFunction(ids)`, keeping what `backward` needs.
    public func trainingForward(_ ids: [[Int]]) -> (output: Tensor, saved: Saved) {
        let mask = causalMask(ids.first?.count ?? 0)
        precondition(ids.allSatisfy { $0.count == mask.shape[0] } && mask.shape[0] <= configuration.maxPositionEmbeddings,
                     "token rows must all have one length of at most \(configuration.maxPositionEmbeddings)")
        var x = embeddings(ids)
        var saved: [CLIPEncoderLayer.Saved] = []
        for layer in layers {
            let (out, s) = layer.trainingForward(x, mask: mask)
            saved.append(s)
            x = out
        }
        return (finalLayerNorm(x), Saved(ids: ids, mask: mask, layers: saved, last: x))
    }

    /// The backward of `trainingForward`: fills `gradients` for every weight (the token ids
    /// themselves have no gradient).
    public func backward(_ dOut: Tensor, saved: Saved, gradients: inout Gradients) {
        var d = finalLayerNorm.backward(dOut, input: saved.last, gradients: &gradients)
        for (layer, s) in zip(layers, saved.layers).reversed() {
            d = layer.backward(d, saved: s, mask: saved.mask, gradients: &gradients)
        }
        embeddings.backward(d, ids: saved.ids, gradients: &gradients)
    }
}
