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

// MARK: - Training

extension VAEMidBlock {
    /// What the training forward keeps.
    public struct Saved: Sendable {
        let first: ResnetBlock2D.Saved, attention: VAEAttention.Saved, second: ResnetBlock2D.Saved
    }

    /// `callAsFunction(x)`, keeping what `backward` needs.
    public func trainingForward(_ x: Tensor) -> (output: Tensor, saved: Saved) {
        let (h0, s0) = resnets[0].trainingForward(x)
        let (h1, sa) = attentions[0].trainingForward(h0)
        let (h2, s1) = resnets[1].trainingForward(h1)
        return (h2, Saved(first: s0, attention: sa, second: s1))
    }

    /// The backward of `trainingForward`.
    public func backward(_ dOut: Tensor, saved: Saved, gradients: inout Gradients) -> Tensor {
        let d1 = resnets[1].backward(dOut, saved: saved.second, gradients: &gradients).dx
        let d0 = attentions[0].backward(d1, saved: saved.attention, gradients: &gradients)
        return resnets[0].backward(d0, saved: saved.first, gradients: &gradients).dx
    }
}
