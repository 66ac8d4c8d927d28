/// Floating-point operations of the layers that do nearly all of a network's arithmetic:
/// convolutions, linear layers and the two matrix products of attention.
///
/// Each multiply-add counts as 2 operations (the convention of PyTorch's `FlopCounterMode` and of
/// most papers). Biases, normalisations, activations and softmax are left out: they touch each
/// number a few times, while a 3x3 convolution with 320 input channels does 2880 multiply-adds for
/// every output number.
public enum FlopCount {
    /// A convolution: every output number is a dot product over `C_in · k · k` inputs, so
    /// `2 · N · C_out · H_out · W_out · C_in · k²`.
    public static func conv2d(batch: Int, inChannels: Int, outChannels: Int, kernelSize: Int,
                              outHeight: Int, outWidth: Int) -> Double {
        2 * Double(batch) * Double(outChannels) * Double(outHeight * outWidth)
            * Double(inChannels) * Double(kernelSize * kernelSize)
    }

    /// A linear layer on `rows` vectors: `2 · rows · D_in · D_out`.
    public static func linear(rows: Int, inFeatures: Int, outFeatures: Int) -> Double {
        2 * Double(rows) * Double(inFeatures) * Double(outFeatures)
    }

    /// Multi-head attention's two products, `Q Kᵀ` `(T, d)·(d, S)` and `P V` `(T, S)·(S, d)` for
    /// each head: `2 · 2 · N · T · S · d · heads = 4 · N · T · S · C`, whatever the head count.
    public static func attention(batch: Int, queries: Int, keys: Int, width: Int) -> Double {
        4 * Double(batch) * Double(queries) * Double(keys) * Double(width)
    }
}

extension UNet2DConditionModel {
    /// Floating-point operations of one UNet evaluation (see `FlopCount` for what is counted),
    /// computed from the configuration alone by walking the same architecture as the forward pass.
    ///
    /// SD 1.5 on 64x64 latents (512x512 pixels) with batch 2 (one classifier-free guidance step):
    /// 1606.5 GFLOP, 0.8 T multiply-adds per image: 52% in convolutions, 32% in linear layers
    /// (`proj_in`/`proj_out` included) and 16% in attention's products. PyTorch's `FlopCounterMode`
    /// on diffusers' model counts exactly the same.
    ///
    /// - Parameters:
    ///   - latentHeight, latentWidth: latent size (image size / 8).
    ///   - batch: images per evaluation (2 with classifier-free guidance).
    ///   - contextLength: text tokens cross-attention reads (77).
    public static func flopCount(configuration c: UNetConfiguration, latentHeight: Int, latentWidth: Int,
                                 batch: Int, contextLength: Int = 77) -> Double {
        flopCounts(configuration: c, latentHeight: latentHeight, latentWidth: latentWidth, batch: batch,
                   contextLength: contextLength).total
    }

    /// The part of `flopCount` spent in self-attention's two products (`Q Kᵀ` and `P V` of `attn1`,
    /// every position against every other), the part that grows with the square of the positions.
    public static func selfAttentionFlopCount(configuration c: UNetConfiguration, latentHeight: Int, latentWidth: Int,
                                              batch: Int, contextLength: Int = 77) -> Double {
        flopCounts(configuration: c, latentHeight: latentHeight, latentWidth: latentWidth, batch: batch,
                   contextLength: contextLength).selfAttention
    }

    private static func flopCounts(configuration c: UNetConfiguration, latentHeight: Int, latentWidth: Int,
                                   batch: Int, contextLength: Int) -> (total: Double, selfAttention: Double) {
        let n = batch
        var total = 0.0, selfAttention = 0.0

        func resnet(_ inChannels: Int, _ outChannels: Int, _ h: Int, _ w: Int) {
            total += FlopCount.conv2d(batch: n, inChannels: inChannels, outChannels: outChannels,
                                      kernelSize: 3, outHeight: h, outWidth: w)                      // conv1
            total += FlopCount.linear(rows: n, inFeatures: c.timeEmbeddingDim, outFeatures: outChannels) // time_emb_proj
            total += FlopCount.conv2d(batch: n, inChannels: outChannels, outChannels: outChannels,
                                      kernelSize: 3, outHeight: h, outWidth: w)                      // conv2
            if inChannels != outChannels {
                total += FlopCount.conv2d(batch: n, inChannels: inChannels, outChannels: outChannels,
                                          kernelSize: 1, outHeight: h, outWidth: w)                  // conv_shortcut
            }
        }
        func transformer(_ channels: Int, _ h: Int, _ w: Int) {
            let tokens = h * w
            func pixelLinear(_ inFeatures: Int, _ outFeatures: Int) -> Double {
                FlopCount.linear(rows: n * tokens, inFeatures: inFeatures, outFeatures: outFeatures)
            }
            total += 2 * pixelLinear(channels, channels)                                             // proj_in, proj_out
            for _ in 0..<c.transformerLayersPerBlock {
                total += 4 * pixelLinear(channels, channels)                                         // attn1 q, k, v, out
                let scores = FlopCount.attention(batch: n, queries: tokens, keys: tokens, width: channels)
                total += scores
                selfAttention += scores
                total += 2 * pixelLinear(channels, channels)                                         // attn2 q, out
                total += 2 * FlopCount.linear(rows: n * contextLength, inFeatures: c.crossAttentionDim,
                                              outFeatures: channels)                                 // attn2 k, v
                total += FlopCount.attention(batch: n, queries: tokens, keys: contextLength, width: channels)
                total += pixelLinear(channels, 8 * channels) + pixelLinear(4 * channels, channels)   // ff (GEGLU)
            }
        }
        func conv3x3(_ channels: Int, _ h: Int, _ w: Int) {
            total += FlopCount.conv2d(batch: n, inChannels: channels, outChannels: channels, kernelSize: 3,
                                      outHeight: h, outWidth: w)
        }

        let levels = c.blockOutChannels.count
        let first = c.blockOutChannels[0]
        total += FlopCount.linear(rows: n, inFeatures: first, outFeatures: c.timeEmbeddingDim)      // linear_1
        total += FlopCount.linear(rows: n, inFeatures: c.timeEmbeddingDim, outFeatures: c.timeEmbeddingDim)
        var (h, w) = (latentHeight, latentWidth)
        total += FlopCount.conv2d(batch: n, inChannels: c.inChannels, outChannels: first,
                                  kernelSize: c.convInKernel, outHeight: h, outWidth: w)            // conv_in
        var skipSizes = [(h, w)]

        for level in 0..<levels {
            let outChannels = c.blockOutChannels[level]
            let inChannels = level == 0 ? first : c.blockOutChannels[level - 1]
            for i in 0..<c.layersPerBlock {
                resnet(i == 0 ? inChannels : outChannels, outChannels, h, w)
                if c.downBlockTypes[level] == "CrossAttnDownBlock2D" { transformer(outChannels, h, w) }
                skipSizes.append((h, w))
            }
            if level < levels - 1 {
                // ⌊(H + 2·padding − 3) / 2⌋ + 1
                h = (h + 2 * c.downsamplePadding - 3) / 2 + 1
                w = (w + 2 * c.downsamplePadding - 3) / 2 + 1
                conv3x3(outChannels, h, w)
                skipSizes.append((h, w))
            }
        }

        let bottom = c.blockOutChannels[levels - 1]
        resnet(bottom, bottom, h, w)
        transformer(bottom, h, w)
        resnet(bottom, bottom, h, w)

        for level in 0..<levels {
            let channels = upBlockChannels(c, level: level)
            for resnetInput in channels.resnetInputs {
                resnet(resnetInput, channels.output, h, w)
                if c.upBlockTypes[level] == "CrossAttnUpBlock2D" { transformer(channels.output, h, w) }
                skipSizes.removeLast()
            }
            if level < levels - 1, let next = skipSizes.last {
                (h, w) = next                       // the upsampler lands on the next skip's size
                conv3x3(channels.output, h, w)
            }
        }

        total += FlopCount.conv2d(batch: n, inChannels: first, outChannels: c.outChannels,
                                  kernelSize: c.convOutKernel, outHeight: h, outWidth: w)           // conv_out
        return (total, selfAttention)
    }
}
