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
