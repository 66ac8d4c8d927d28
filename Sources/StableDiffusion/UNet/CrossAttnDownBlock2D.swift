import TensorCore

/// One level of the UNet's encoder half with attention (diffusers' `CrossAttnDownBlock2D`):
/// ResNet blocks, each followed by a transformer that lets the pixels read the prompt, then a
/// stride-2 downsampler (except on the last level).
///
///     for i in 0..<layers:
///         x = resnets.i(x, t_emb)          first one: C_in → C, then C → C
///         x = attentions.i(x, context)
///         skips.append(x)                  kept for the up block at the same resolution
///     x = downsamplers.0(x)                (N, C, H, W) → (N, C, ⌈H/2⌉, ⌈W/2⌉)
///     skips.append(x)
///
/// Every stored output becomes one skip connection in the decoder half, so a level with 2
/// layers and a downsampler hands over 3 tensors.
public struct CrossAttnDownBlock2D: Sendable {
    public let resnets: [ResnetBlock2D]
    public let attentions: [Transformer2DModel]
    public let downsamplers: [Downsample2D]   // empty on the last level

    /// - Parameters:
    ///   - level: the block's index `i` in `down_blocks`, for its channel and head counts.
    public init(_ weights: Weights, configuration c: UNetConfiguration, level: Int) throws {
        let outChannels = c.blockOutChannels[level]
        let inChannels = level == 0 ? c.blockOutChannels[0] : c.blockOutChannels[level - 1]
        resnets = try (0..<c.layersPerBlock).map { i in
            try ResnetBlock2D(weights["resnets.\(i)"], inChannels: i == 0 ? inChannels : outChannels,
                              outChannels: outChannels, timeEmbeddingDim: c.timeEmbeddingDim,
                              groups: c.normNumGroups, eps: c.normEps)
        }
        attentions = try (0..<c.layersPerBlock).map { i in
            try Transformer2DModel(weights["attentions.\(i)"], channels: outChannels, heads: c.heads(block: level),
                                   contextDim: c.crossAttentionDim, layers: c.transformerLayersPerBlock,
                                   groups: c.normNumGroups, useLinearProjection: c.useLinearProjection)
        }
        let isLast = level == c.blockOutChannels.count - 1
        downsamplers = isLast ? [] : [try Downsample2D(weights["downsamplers.0"], channels: outChannels,
                                                        padding: c.downsamplePadding)]
    }

    /// - Parameters:
    ///   - x: `(N, C_in, H, W)`.
    ///   - timeEmbedding: `(N, D_time)`.
    ///   - context: text tokens `(N, 77, 768)`.
    /// - Returns: the output `(N, C, H', W')` and the skip tensors, in the order they were made.
    public func callAsFunction(_ x: Tensor, timeEmbedding: Tensor, context: Tensor,
                               observer: CrossAttentionObserver? = nil) -> (output: Tensor, skips: [Tensor]) {
        var x = x
        var skips: [Tensor] = []
        for (resnet, attention) in zip(resnets, attentions) {
            x = resnet(x, timeEmbedding: timeEmbedding)
            x = attention(x, context: context, observer: observer)
            skips.append(x)
        }
        for downsampler in downsamplers {
            x = downsampler(x)
            skips.append(x)
        }
        return (x, skips)
    }
}
