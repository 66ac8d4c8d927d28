import TensorCore

/// The bottleneck of the encoder and of the decoder: residual block, self-attention, residual
/// block, all at the smallest resolution and the widest channel count (diffusers' `UNetMidBlock2D`
/// without a time embedding).
///
///     h = resnets.0(x)
///     h = attentions.0(h)     every pixel looks at every other pixel
///     h = resnets.1(h)
///
/// Checkpoint keys: `resnets.0`, `attentions.0`, `resnets.1` (under `encoder.mid_block` or
/// `decoder.mid_block`).
public struct VAEMidBlock: Sendable {
    public let resnets: [ResnetBlock2D]     // 2 blocks, (C, C, 3, 3) convolutions
    public let attentions: [VAEAttention]   // 1 layer, (C, C) projections

    /// - Parameters:
    ///   - channels: `C`, the last entry of `block_out_channels` (512 in SD 1.x).
    ///   - groups: GroupNorm groups (32 in SD 1.x).
    public init(_ weights: Weights, channels: Int, groups: Int) throws {
        resnets = try (0..<2).map {
            try ResnetBlock2D(weights["resnets.\($0)"], inChannels: channels, outChannels: channels,
                              timeEmbeddingDim: nil, groups: groups, eps: 1e-6)
        }
        attentions = [try VAEAttention(weights["attentions.0"], channels: channels, groups: groups)]
    }

    /// `(N, C, H, W)` → `(N, C, H, W)`.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = resnets[0](x)
        h = attentions[0](h)
        return resnets[1](h)
    }
}
