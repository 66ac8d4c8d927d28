import TensorCore

/// One level of the UNet's decoder half without attention (diffusers' `UpBlock2D`): the coarsest
/// up level of SD 1.x, mirroring `DownBlock2D`.
///
///     for i in 0..<layers + 1:
///         x = resnets.i(concat(x, skips.pop()), t_emb)
///     x = upsamplers.0(x)                   (unless this is the last level)
///
/// The channel arithmetic is the same as `CrossAttnUpBlock2D`'s. In SD 1.x (up_blocks.0):
/// 1280 + 1280, 1280 + 1280, 1280 + 1280 (the skip is the 8x8 output of down_blocks.2's downsampler).
public struct UpBlock2D: Sendable {
    public let resnets: [ResnetBlock2D]
    public let upsamplers: [Upsample2D]   // empty on the last level

    /// - Parameters:
    ///   - level: the block's index `i` in `up_blocks` (0 = the coarsest).
    public init(_ weights: Weights, configuration c: UNetConfiguration, level: Int) throws {
        let channels = upBlockChannels(c, level: level)
        resnets = try (0..<channels.resnetInputs.count).map { i in
            try ResnetBlock2D(weights["resnets.\(i)"], inChannels: channels.resnetInputs[i], outChannels: channels.output,
                              timeEmbeddingDim: c.timeEmbeddingDim, groups: c.normNumGroups, eps: c.normEps)
        }
        let isLast = level == c.blockOutChannels.count - 1
        upsamplers = isLast ? [] : [try Upsample2D(weights["upsamplers.0"], channels: channels.output)]
    }

    /// `(N, C_prev, H, W)` and this level's skips (in stored order) → `(N, C, 2H, 2W)`.
    public func callAsFunction(_ x: Tensor, skips: [Tensor], timeEmbedding: Tensor,
                               upsampleSize: (height: Int, width: Int)? = nil) -> Tensor {
        precondition(skips.count == resnets.count, "\(resnets.count) skip tensors expected, got \(skips.count)")
        var x = x
        for (resnet, skip) in zip(resnets, skips.reversed()) {
            x = Tensor.concatenateChannels(x, skip)       // (N, C_x + C_skip, H, W)
            x = resnet(x, timeEmbedding: timeEmbedding)   // (N, C, H, W)
        }
        for upsampler in upsamplers {
            x = upsampler(x, outputSize: upsampleSize)
        }
        return x
    }
}
