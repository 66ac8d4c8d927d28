import TensorCore

/// The VAE's encoder: an image `(N, 3, H, W)` in [-1, 1] → the parameters of a Gaussian over
/// latents, `(N, 2·4, H/8, W/8)` (a mean and a log-variance for each latent value).
///
/// For SD 1.x at 512x512 (channels 128, 256, 512, 512):
///
///     conv_in          (N, 3, 512, 512)   → (N, 128, 512, 512)
///     down_blocks.0    2 resnets, downsample → (N, 128, 256, 256)
///     down_blocks.1    2 resnets (128 → 256), downsample → (N, 256, 128, 128)
///     down_blocks.2    2 resnets (256 → 512), downsample → (N, 512, 64, 64)
///     down_blocks.3    2 resnets, no downsample → (N, 512, 64, 64)
///     mid_block        resnet, attention, resnet → (N, 512, 64, 64)
///     conv_norm_out, SiLU, conv_out → (N, 8, 64, 64)
///
/// Checkpoint keys under `encoder.`: `conv_in`, `down_blocks.{i}`, `mid_block`, `conv_norm_out`,
/// `conv_out`. (This type is not called `Encoder` so as not to hide Swift's `Encoder` protocol.)
public struct VAEEncoder: Sendable {
    public let convIn: Conv2d                   // (C_0, 3, 3, 3); named conv_in
    public let downBlocks: [DownEncoderBlock2D] // one per level; named down_blocks
    public let midBlock: VAEMidBlock            // at C_last channels; named mid_block
    public let convNormOut: GroupNorm           // (C_last), (C_last); named conv_norm_out
    public let convOut: Conv2d                  // (2·latent, C_last, 3, 3); named conv_out

    public init(_ weights: Weights, configuration: VAEConfiguration) throws {
        let c = configuration, channels = c.blockOutChannels, groups = c.normNumGroups
        convIn = try Conv2d(weights["conv_in"], inChannels: c.inChannels, outChannels: channels[0],
                            kernelSize: 3, padding: 1)
        downBlocks = try channels.indices.map { i in
            try DownEncoderBlock2D(weights["down_blocks.\(i)"], inChannels: i == 0 ? channels[0] : channels[i - 1],
                                   outChannels: channels[i], layers: c.layersPerBlock, groups: groups,
                                   addDownsample: i < channels.count - 1)
        }
        midBlock = try VAEMidBlock(weights["mid_block"], channels: channels.last!, groups: groups)
        convNormOut = try GroupNorm(weights["conv_norm_out"], groups: groups, channels: channels.last!, eps: 1e-6)
        // Twice the latent channels: a mean and a log-variance for each ("double_z" in the original).
        convOut = try Conv2d(weights["conv_out"], inChannels: channels.last!, outChannels: 2 * c.latentChannels,
                             kernelSize: 3, padding: 1)
    }

    /// `(N, 3, H, W)` → `(N, 2·latent, H/8, W/8)`.
    public func callAsFunction(_ image: Tensor) -> Tensor {
        var h = convIn(image)
        for block in downBlocks { h = block(h) }
        h = midBlock(h)
        return convOut(convNormOut(h, silu: true))
    }
}

// MARK: - Training

extension VAEEncoder {
    /// What the training forward keeps.
    public struct Saved: Sendable {
        let image: Tensor
        let blocks: [DownEncoderBlock2D.Saved]
        let mid: VAEMidBlock.Saved
        let last: Tensor, normalised: Tensor      // inputs of conv_norm_out and conv_out
    }

    /// `callAsFunction(image)`, keeping what `backward` needs.
    public func trainingForward(_ image: Tensor) -> (output: Tensor, saved: Saved) {
        var h = convIn(image), blocks: [DownEncoderBlock2D.Saved] = []
        for block in downBlocks {
            let (out, s) = block.trainingForward(h)
            blocks.append(s)
            h = out
        }
        let (last, mid) = midBlock.trainingForward(h)
        let normalised = convNormOut(last, silu: true)
        return (convOut(normalised), Saved(image: image, blocks: blocks, mid: mid, last: last, normalised: normalised))
    }

    /// The backward of `trainingForward`, filling `gradients` (the image itself is data).
    public func backward(_ dOut: Tensor, saved: Saved, gradients: inout Gradients) {
        var d = convOut.backward(dOut, input: saved.normalised, gradients: &gradients)
        d = convNormOut.backward(d, input: saved.last, silu: true, gradients: &gradients)
        d = midBlock.backward(d, saved: saved.mid, gradients: &gradients)
        for (block, s) in zip(downBlocks, saved.blocks).reversed() { d = block.backward(d, saved: s, gradients: &gradients) }
        _ = convIn.backward(d, input: saved.image, gradients: &gradients)
    }
}
