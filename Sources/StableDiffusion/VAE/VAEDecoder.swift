import TensorCore

/// The VAE's decoder: a latent `(N, 4, h, w)` → an image `(N, 3, 8h, 8w)`, roughly in [-1, 1].
///
/// It mirrors the encoder, walking the channel list backwards. For SD 1.x with 64x64 latents:
///
///     conv_in          (N, 4, 64, 64)     → (N, 512, 64, 64)
///     mid_block        resnet, attention, resnet → (N, 512, 64, 64)
///     up_blocks.0      3 resnets, upsample → (N, 512, 128, 128)
///     up_blocks.1      3 resnets, upsample → (N, 512, 256, 256)
///     up_blocks.2      3 resnets (512 → 256), upsample → (N, 256, 512, 512)
///     up_blocks.3      3 resnets (256 → 128), no upsample → (N, 128, 512, 512)
///     conv_norm_out, SiLU, conv_out → (N, 3, 512, 512)
///
/// Most of the work is at the two largest resolutions: the stages that produce 256x256 and
/// 512x512 maps do 69% of the decoder's 2.5 TFLOP at 512x512 (see `AutoencoderKL.stages`).
///
/// Checkpoint keys under `decoder.`: `conv_in`, `mid_block`, `up_blocks.{i}`, `conv_norm_out`,
/// `conv_out`. (This type is not called `Decoder` so as not to hide Swift's `Decoder` protocol.)
public struct VAEDecoder: Sendable {
    public let convIn: Conv2d                   // (C_last, latent, 3, 3); named conv_in
    public let midBlock: VAEMidBlock            // at C_last channels; named mid_block
    public let upBlocks: [UpDecoderBlock2D]     // one per level, widest first; named up_blocks
    public let convNormOut: GroupNorm           // (C_0), (C_0); named conv_norm_out
    public let convOut: Conv2d                  // (3, C_0, 3, 3); named conv_out

    public init(_ weights: Weights, configuration: VAEConfiguration) throws {
        let c = configuration, groups = c.normNumGroups
        let channels = Array(c.blockOutChannels.reversed())    // 512, 512, 256, 128
        convIn = try Conv2d(weights["conv_in"], inChannels: c.latentChannels, outChannels: channels[0],
                            kernelSize: 3, padding: 1)
        midBlock = try VAEMidBlock(weights["mid_block"], channels: channels[0], groups: groups)
        upBlocks = try channels.indices.map { i in
            try UpDecoderBlock2D(weights["up_blocks.\(i)"], inChannels: i == 0 ? channels[0] : channels[i - 1],
                                 outChannels: channels[i], layers: c.layersPerBlock + 1, groups: groups,
                                 addUpsample: i < channels.count - 1)
        }
        convNormOut = try GroupNorm(weights["conv_norm_out"], groups: groups, channels: channels.last!, eps: 1e-6)
        convOut = try Conv2d(weights["conv_out"], inChannels: channels.last!, outChannels: c.outChannels,
                             kernelSize: 3, padding: 1)
    }

    /// `(N, latent, h, w)` → `(N, 3, 8h, 8w)`.
    public func callAsFunction(_ latents: Tensor) -> Tensor {
        var h = convIn(latents)
        h = midBlock(h)
        for block in upBlocks { h = block(h) }
        return convOut(convNormOut(h, silu: true))
    }
}

// MARK: - Training

extension VAEDecoder {
    /// What the training forward keeps.
    public struct Saved: Sendable {
        let latents: Tensor
        let mid: VAEMidBlock.Saved
        let blocks: [UpDecoderBlock2D.Saved]
        let last: Tensor, normalised: Tensor      // inputs of conv_norm_out and conv_out
    }

    /// `callAsFunction(latents)`, keeping what `backward` needs.
    public func trainingForward(_ latents: Tensor) -> (output: Tensor, saved: Saved) {
        let (middle, mid) = midBlock.trainingForward(convIn(latents))
        var h = middle, blocks: [UpDecoderBlock2D.Saved] = []
        for block in upBlocks {
            let (out, s) = block.trainingForward(h)
            blocks.append(s)
            h = out
        }
        let normalised = convNormOut(h, silu: true)
        return (convOut(normalised), Saved(latents: latents, mid: mid, blocks: blocks, last: h, normalised: normalised))
    }

    /// The backward of `trainingForward`: fills `gradients` and returns the gradient of the latents.
    public func backward(_ dOut: Tensor, saved: Saved, gradients: inout Gradients) -> Tensor {
        var d = convOut.backward(dOut, input: saved.normalised, gradients: &gradients)
        d = convNormOut.backward(d, input: saved.last, silu: true, gradients: &gradients)
        for (block, s) in zip(upBlocks, saved.blocks).reversed() { d = block.backward(d, saved: s, gradients: &gradients) }
        d = midBlock.backward(d, saved: saved.mid, gradients: &gradients)
        return convIn.backward(d, input: saved.latents, gradients: &gradients)
    }
}
