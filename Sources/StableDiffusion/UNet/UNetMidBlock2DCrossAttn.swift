import TensorCore

/// The bottom of the U, at the lowest resolution (8x8 for a 512x512 image), where every pixel
/// sees the most of the image (diffusers' `UNetMidBlock2DCrossAttn`):
///
///     x = resnets.0(x, t_emb)
///     x = attentions.0(x, context)
///     x = resnets.1(x, t_emb)
///
/// Channels stay at the last level's count (1280 in SD 1.x) and no skip connections are made.
public struct UNetMidBlock2DCrossAttn: Sendable {
    public let resnets: [ResnetBlock2D]        // 2
    public let attentions: [Transformer2DModel] // 1

    public init(_ weights: Weights, configuration c: UNetConfiguration) throws {
        let level = c.blockOutChannels.count - 1
        let channels = c.blockOutChannels[level]
        resnets = try (0..<2).map { i in
            try ResnetBlock2D(weights["resnets.\(i)"], inChannels: channels, outChannels: channels,
                              timeEmbeddingDim: c.timeEmbeddingDim, groups: c.normNumGroups, eps: c.normEps)
        }
        attentions = [try Transformer2DModel(weights["attentions.0"], channels: channels, heads: c.heads(block: level),
                                             contextDim: c.crossAttentionDim, layers: c.transformerLayersPerBlock,
                                             groups: c.normNumGroups, useLinearProjection: c.useLinearProjection)]
    }

    /// `(N, C, H, W)` → `(N, C, H, W)`.
    public func callAsFunction(_ x: Tensor, timeEmbedding: Tensor, context: Tensor,
                               observer: CrossAttentionObserver? = nil) -> Tensor {
        var x = resnets[0](x, timeEmbedding: timeEmbedding)
        for (attention, resnet) in zip(attentions, resnets.dropFirst()) {
            x = attention(x, context: context, observer: observer)
            x = resnet(x, timeEmbedding: timeEmbedding)
        }
        return x
    }
}

// MARK: - Training

extension UNetMidBlock2DCrossAttn {
    /// What the training forward keeps.
    public struct Saved: Sendable {
        let resnets: [ResnetBlock2D.Saved]
        let attentions: [Transformer2DModel.Saved]
    }

    /// `callAsFunction`, keeping what `backward` needs.
    public func trainingForward(_ x: Tensor, timeEmbedding: Tensor, context: Tensor) -> (output: Tensor, saved: Saved) {
        var (x, first) = resnets[0].trainingForward(x, timeEmbedding: timeEmbedding)
        var resnetsSaved = [first], attentionsSaved: [Transformer2DModel.Saved] = []
        for (attention, resnet) in zip(attentions, resnets.dropFirst()) {
            let (a, sa) = attention.trainingForward(x, context: context)
            let (r, sr) = resnet.trainingForward(a, timeEmbedding: timeEmbedding)
            attentionsSaved.append(sa)
            resnetsSaved.append(sr)
            x = r
        }
        return (x, Saved(resnets: resnetsSaved, attentions: attentionsSaved))
    }

    /// The backward of `trainingForward`: the gradients of the input, the time embedding and the context.
    public func backward(_ dOut: Tensor, saved: Saved, gradients: inout Gradients)
        -> (dx: Tensor, dTimeEmbedding: Tensor, dContext: Tensor) {
        var d = dOut
        var dTime: Tensor?, dContext: Tensor?
        for (i, attention) in attentions.enumerated().reversed() {
            let (dr, dt) = resnets[i + 1].backward(d, saved: saved.resnets[i + 1], gradients: &gradients)
            let (da, dc) = attention.backward(dr, saved: saved.attentions[i], gradients: &gradients)
            (d, dTime, dContext) = (da, accumulated(dTime, dt), accumulated(dContext, dc))
        }
        let (dx, dt) = resnets[0].backward(d, saved: saved.resnets[0], gradients: &gradients)
        return (dx, accumulated(dTime, dt)!, dContext!)
    }
}
