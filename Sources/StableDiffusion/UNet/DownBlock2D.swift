import TensorCore

/// One level of the UNet's encoder half without attention (diffusers' `DownBlock2D`): the
/// lowest-resolution level of SD 1.x, where the map is only 8x8 and attention would add little.
///
///     for i in 0..<layers:
///         x = resnets.i(x, t_emb)
///         skips.append(x)
///     x = downsamplers.0(x); skips.append(x)       (only if this is not the last level)
public struct DownBlock2D: Sendable {
    public let resnets: [ResnetBlock2D]
    public let downsamplers: [Downsample2D]   // empty on the last level

    /// - Parameters:
    ///   - level: the block's index `i` in `down_blocks`.
    public init(_ weights: Weights, configuration c: UNetConfiguration, level: Int) throws {
        let outChannels = c.blockOutChannels[level]
        let inChannels = level == 0 ? c.blockOutChannels[0] : c.blockOutChannels[level - 1]
        resnets = try (0..<c.layersPerBlock).map { i in
            try ResnetBlock2D(weights["resnets.\(i)"], inChannels: i == 0 ? inChannels : outChannels,
                              outChannels: outChannels, timeEmbeddingDim: c.timeEmbeddingDim,
                              groups: c.normNumGroups, eps: c.normEps)
        }
        let isLast = level == c.blockOutChannels.count - 1
        downsamplers = isLast ? [] : [try Downsample2D(weights["downsamplers.0"], channels: outChannels,
                                                        padding: c.downsamplePadding)]
    }

    /// `(N, C_in, H, W)` → the output `(N, C, H', W')` and the skip tensors, in order.
    public func callAsFunction(_ x: Tensor, timeEmbedding: Tensor) -> (output: Tensor, skips: [Tensor]) {
        var x = x
        var skips: [Tensor] = []
        for resnet in resnets {
            x = resnet(x, timeEmbedding: timeEmbedding)
            skips.append(x)
        }
        for downsampler in downsamplers {
            x = downsampler(x)
            skips.append(x)
        }
        return (x, skips)
    }
}
