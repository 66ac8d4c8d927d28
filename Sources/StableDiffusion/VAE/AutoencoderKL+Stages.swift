// A walk through the VAE on paper: every stage's output shape and arithmetic, computed from the
// configuration alone, without weights and without running a layer.

/// One stage of the VAE: a layer or block, its output shape and its cost.
public struct VAEStage: Sendable, Equatable {
    /// The checkpoint path of the layer or block (`encoder.down_blocks.1.resnets.0`), or
    /// `image`, `latents`, `mean` for the tensors between the networks.
    public let name: String
    /// Output shape, `(N, C, H, W)`.
    public let shape: [Int]
    /// Floating-point operations: 2 per multiply-add of the stage's convolutions, linear layers
    /// and attention products. GroupNorm, SiLU, softmax and the residual additions cost a few
    /// operations per value, under 1% of the total, and are left out.
    public let flops: Int
}

extension AutoencoderKL {
    /// Every stage of the encoder (image → mean) and of the decoder (latents → image) for an
    /// image of `height` x `width` pixels, with shapes and FLOP counts.
    ///
    /// For SD 1.5 at 512x512: 64x64x4 latents; encoding costs 1.12 TFLOP and decoding 2.51 TFLOP
    /// (the same counts as PyTorch's `FlopCounterMode` on diffusers' VAE), 69% of the decoding in
    /// the stages that produce 256x256 and 512x512 maps; the decoder's attention is 1.7% of it.
    ///
    /// - Throws: `VAEError` for an unsupported configuration or a size that is not a positive
    ///   multiple of 8.
    public static func stages(configuration: VAEConfiguration, height: Int, width: Int,
                              batch: Int = 1) throws -> (encoder: [VAEStage], decoder: [VAEStage]) {
        try configuration.validate()
        let factor = configuration.downsamplingFactor
        guard height > 0, width > 0, height % factor == 0, width % factor == 0 else {
            throw VAEError.sizeNotDivisible(height: height, width: width, factor: factor)
        }
        guard batch > 0 else {
            throw VAEError.wrongInputShape(what: "the batch", expected: "N ≥ 1", found: [batch])
        }
        let c = configuration, channels = c.blockOutChannels, layers = c.layersPerBlock

        // Encoder: image → moments → mean.
        var walk = ShapeWalk(batch: batch, channels: c.inChannels, height: height, width: width)
        walk.record("image")
        walk.conv("encoder.conv_in", to: channels[0], kernel: 3)
        for (i, levelChannels) in channels.enumerated() {
            for j in 0..<layers { walk.resnet("encoder.down_blocks.\(i).resnets.\(j)", to: levelChannels) }
            if i < channels.count - 1 {
                walk.conv("encoder.down_blocks.\(i).downsamplers.0", to: levelChannels, kernel: 3, stride: 2)
            }
        }
        walk.midBlock("encoder.mid_block")
        walk.conv("encoder.conv_out", to: 2 * c.latentChannels, kernel: 3)     // after conv_norm_out and SiLU
        walk.conv("quant_conv", to: 2 * c.latentChannels, kernel: 1)
        walk.channels = c.latentChannels                                         // the first half of the moments
        walk.record("mean")
        let encoderStages = walk.stages

        // Decoder: latents → image, walking the channel list backwards.
        walk = ShapeWalk(batch: batch, channels: c.latentChannels, height: height / factor, width: width / factor)
        walk.record("latents")
        walk.conv("post_quant_conv", to: c.latentChannels, kernel: 1)
        let reversed = Array(channels.reversed())
        walk.conv("decoder.conv_in", to: reversed[0], kernel: 3)
        walk.midBlock("decoder.mid_block")
        for (i, levelChannels) in reversed.enumerated() {
            for j in 0...layers { walk.resnet("decoder.up_blocks.\(i).resnets.\(j)", to: levelChannels) }
            if i < reversed.count - 1 { walk.upsample("decoder.up_blocks.\(i).upsamplers.0") }
        }
        walk.conv("decoder.conv_out", to: c.outChannels, kernel: 3)             // after conv_norm_out and SiLU
        return (encoderStages, walk.stages)
    }

    /// Names and output shapes of all stages, encoder then decoder (see `stages`).
    ///
    /// ```swift
    /// for (name, shape) in try AutoencoderKL.stageShapes(configuration: .sd15, height: 512, width: 512) {
    ///     print(name, shape)      // "encoder.conv_in [1, 128, 512, 512]", ..., "mean [1, 4, 64, 64]", ...
    /// }
    /// ```
    public static func stageShapes(configuration: VAEConfiguration, height: Int,
                                   width: Int) throws -> [(name: String, shape: [Int])] {
        let (encoder, decoder) = try stages(configuration: configuration, height: height, width: width)
        return (encoder + decoder).map { ($0.name, $0.shape) }
    }

    /// Total FLOPs of one `encode` and one `decode` of a `height` x `width` image (batch 1).
    public static func flops(configuration: VAEConfiguration, height: Int,
                             width: Int) throws -> (encode: Int, decode: Int) {
        let (encoder, decoder) = try stages(configuration: configuration, height: height, width: width)
        return (encoder.reduce(0) { $0 + $1.flops }, decoder.reduce(0) { $0 + $1.flops })
    }
}

/// The running shape `(N, C, H, W)` of a walk through the VAE, and the stages seen so far.
private struct ShapeWalk {
    var batch, channels, height, width: Int
    var stages: [VAEStage] = []

    init(batch: Int, channels: Int, height: Int, width: Int) {
        (self.batch, self.channels, self.height, self.width) = (batch, channels, height, width)
    }

    var pixels: Int { batch * height * width }

    mutating func record(_ name: String, flops: Int = 0) {
        stages.append(VAEStage(name: name, shape: [batch, channels, height, width], flops: flops))
    }

    /// FLOPs of a convolution onto the current map: `2 · C_out · C_in · k² · N · H_out · W_out`.
    func convolutionFlops(from inChannels: Int, to outChannels: Int, kernel: Int) -> Int {
        2 * outChannels * inChannels * kernel * kernel * pixels
    }

    /// A `kernel` x `kernel` convolution; stride 2 halves the map (the encoder's downsampler pads
    /// one row and column first, so `H_out = ⌊(H + 1 − 3) / 2⌋ + 1 = H / 2`).
    mutating func conv(_ name: String, to outChannels: Int, kernel: Int, stride: Int = 1) {
        let inChannels = channels
        height = (height - 1) / stride + 1
        width = (width - 1) / stride + 1
        channels = outChannels
        record(name, flops: convolutionFlops(from: inChannels, to: outChannels, kernel: kernel))
    }

    /// Nearest 2x upsampling (free), then a 3x3 convolution at the new size.
    mutating func upsample(_ name: String) {
        height *= 2
        width *= 2
        record(name, flops: convolutionFlops(from: channels, to: channels, kernel: 3))
    }

    /// Two 3x3 convolutions, plus a 1x1 shortcut when the channel count changes.
    mutating func resnet(_ name: String, to outChannels: Int) {
        let inChannels = channels
        var flops = convolutionFlops(from: inChannels, to: outChannels, kernel: 3)
            + convolutionFlops(from: outChannels, to: outChannels, kernel: 3)
        if inChannels != outChannels { flops += convolutionFlops(from: inChannels, to: outChannels, kernel: 1) }
        channels = outChannels
        record(name, flops: flops)
    }

    /// Resnet, single-head attention over `T = H·W` tokens of width `C`, resnet.
    mutating func midBlock(_ name: String) {
        resnet(name + ".resnets.0", to: channels)
        let tokens = height * width, c = channels
        // to_q, to_k, to_v, to_out: 4 · 2·T·C² per image; Q·Kᵀ and P·V: 2 · 2·T²·C.
        let attention = batch * (4 * 2 * tokens * c * c + 2 * 2 * tokens * tokens * c)
        record(name + ".attentions.0", flops: attention)
        resnet(name + ".resnets.1", to: channels)
    }
}
