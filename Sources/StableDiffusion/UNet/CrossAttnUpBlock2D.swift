import TensorCore

/// One level of the UNet's decoder half with attention (diffusers' `CrossAttnUpBlock2D`): each
/// ResNet block first takes back one skip connection from the encoder half, concatenated along
/// channels, then a transformer reads the prompt; finally the map is upsampled (except on the
/// last, finest level).
///
///     for i in 0..<layers + 1:
///         x = concat(x, skips.pop())        along channels: (N, C_x + C_skip, H, W)
///         x = resnets.i(x, t_emb)           back to C channels
///         x = attentions.i(x, context)
///     x = upsamplers.0(x)                   (N, C, H, W) → (N, C, 2H, 2W)
///
/// Channel arithmetic, for up level `i` mirroring down level `L−1−i` (`L` levels, `C_j` =
/// `block_out_channels[j]`, `C = C_{L−1−i}`). The encoder stored, in order: conv_in's output, then
/// per level its `layers` ResNet outputs and its downsampler's output. Popped from the end, this
/// level gets its mirror level's `layers` ResNet outputs (`C` channels each), then the downsampler
/// output of the next finer level (`C_{L−2−i}` channels; for the finest level, conv_in's, `C_0`):
///
///     resnets.0 in:  C_prev (from the block below) + C         (SD 1.x up_blocks.1: 1280 + 1280)
///     resnets.1 in:  C + C                                      (1280 + 1280)
///     resnets.2 in:  C + C_{L−2−i}                              (1280 + 640)
///
/// so every up level has one ResNet more than its down level, to drain its share of the skips.
public struct CrossAttnUpBlock2D: Sendable {
    public let resnets: [ResnetBlock2D]
    public let attentions: [Transformer2DModel]
    public let upsamplers: [Upsample2D]   // empty on the last level

    /// - Parameters:
    ///   - level: the block's index `i` in `up_blocks` (0 = the coarsest).
    public init(_ weights: Weights, configuration c: UNetConfiguration, level: Int) throws {
        let channels = upBlockChannels(c, level: level)
        resnets = try (0..<channels.resnetInputs.count).map { i in
            try ResnetBlock2D(weights["resnets.\(i)"], inChannels: channels.resnetInputs[i], outChannels: channels.output,
                              timeEmbeddingDim: c.timeEmbeddingDim, groups: c.normNumGroups, eps: c.normEps)
        }
        // Heads mirror the down blocks: up level i uses the head count of down level L−1−i.
        let heads = c.heads(block: c.blockOutChannels.count - 1 - level)
        attentions = try (0..<resnets.count).map { i in
            try Transformer2DModel(weights["attentions.\(i)"], channels: channels.output, heads: heads,
                                   contextDim: c.crossAttentionDim, layers: c.transformerLayersPerBlock,
                                   groups: c.normNumGroups, useLinearProjection: c.useLinearProjection)
        }
        let isLast = level == c.blockOutChannels.count - 1
        upsamplers = isLast ? [] : [try Upsample2D(weights["upsamplers.0"], channels: channels.output)]
    }

    /// - Parameters:
    ///   - x: `(N, C_prev, H, W)` from the block below.
    ///   - skips: this level's skip tensors in the order the encoder stored them (one per ResNet);
    ///     they are used last first.
    ///   - upsampleSize: the size the upsampler must produce when it is not exactly `(2H, 2W)`.
    /// - Returns: `(N, C, 2H, 2W)`, or `(N, C, H, W)` on the last level.
    public func callAsFunction(_ x: Tensor, skips: [Tensor], timeEmbedding: Tensor, context: Tensor,
                               upsampleSize: (height: Int, width: Int)? = nil,
                               observer: CrossAttentionObserver? = nil) -> Tensor {
        precondition(skips.count == resnets.count, "\(resnets.count) skip tensors expected, got \(skips.count)")
        var x = x
        for (i, skip) in skips.reversed().enumerated() {
            x = Tensor.concatenateChannels(x, skip)            // (N, C_x + C_skip, H, W)
            x = resnets[i](x, timeEmbedding: timeEmbedding)     // (N, C, H, W)
            x = attentions[i](x, context: context, observer: observer)
        }
        for upsampler in upsamplers {
            x = upsampler(x, outputSize: upsampleSize)
        }
        return x
    }
}

/// The channel counts of up block `level`: what each ResNet takes in (the running map plus one
/// skip tensor) and the block's output. See `CrossAttnUpBlock2D` for the arithmetic.
func upBlockChannels(_ c: UNetConfiguration, level: Int) -> (resnetInputs: [Int], output: Int) {
    let reversed = Array(c.blockOutChannels.reversed())      // coarsest first: 1280, 1280, 640, 320
    let output = reversed[level]
    let fromBelow = reversed[max(level - 1, 0)]             // the previous up block's output (or the mid block's)
    let finerLevel = reversed[min(level + 1, reversed.count - 1)]
    let layers = c.layersPerBlock + 1
    let resnetInputs = (0..<layers).map { i in
        let running = i == 0 ? fromBelow : output
        let skip = i == layers - 1 ? finerLevel : output
        return running + skip
    }
    return (resnetInputs, output)
}
