import TensorCore

/// The denoiser of Stable Diffusion: given a noisy latent, the timestep and the prompt's token
/// vectors, it predicts the noise in the latent (diffusers' `UNet2DConditionModel`).
///
///     t_emb = time_embedding(sinusoid(t))              (N, 1280)
///     x = conv_in(sample)                              (N, 4, h, w) → (N, 320, h, w)
///     skips = [x]
///     for block in down_blocks:                        halve the resolution, widen the channels;
///         x, s = block(x, t_emb, context)              keep every intermediate map in `skips`
///         skips += s
///     x = mid_block(x, t_emb, context)                 (N, 1280, h/8, w/8)
///     for block in up_blocks:                          double the resolution, concatenating the
///         x = block(x, skips.popLast(k), t_emb, context)   skips of the same resolution back in
///     noise = conv_out(silu(conv_norm_out(x)))         (N, 320, h, w) → (N, 4, h, w)
///
/// The "U": the encoder half compresses the picture to an 8x8 map of 1280-dimensional features,
/// the decoder half expands it again, and skip connections carry the fine detail across. The
/// timestep reaches every ResNet block through `t_emb`; the prompt reaches every transformer
/// through cross-attention.
///
/// Loading reads every tensor by its diffusers key, with its exact shape:
///
/// ```swift
/// let store = WeightStore(try SafeTensors.read(path: "unet/diffusion_pytorch_model.safetensors"))
/// let unet = try UNet2DConditionModel(Weights(store), configuration: .sd15)
/// try store.checkAllUsed()
/// let noise = unet(latents, timestep: 981, encoderHiddenStates: text)   // (N, 4, 64, 64)
/// ```
public struct UNet2DConditionModel: Sendable {
    public let configuration: UNetConfiguration
    public let convIn: Conv2d                      // (C_0, 4, 3, 3); conv_in
    public let timeEmbedding: TimestepEmbedding    // time_embedding (time_proj has no weights)
    public let downBlocks: [UNetDownBlock]         // down_blocks.0 ...
    public let midBlock: UNetMidBlock2DCrossAttn  // mid_block
    public let upBlocks: [UNetUpBlock]             // up_blocks.0 ... (coarsest first)
    public let convNormOut: GroupNorm              // (C_0); conv_norm_out
    public let convOut: Conv2d                     // (4, C_0, 3, 3); conv_out
    /// The key prefix of the UNet in the weight store (usually empty), removed from the layer
    /// names given to observers.
    let rootPrefix: String
    /// The store the weights came from, for `givesBackWeightPages`.
    let store: WeightStore
    /// Whether each block's memory-mapped weights leave resident memory as soon as the block has
    /// run (`WeightStore.releaseMappedPages`). SD 1.5's 1.7 GB of 16-bit weights are then never
    /// all resident at once: the largest block, `up_blocks.1`, holds 0.52 GB. The next call reads
    /// them in again from the operating system's file cache, which costs a small fraction of a
    /// step (about 0.3 s of a 13-17 s guided step at 512x512) and changes no number.
    public var givesBackWeightPages = false

    /// Loads every tensor of the UNet from `weights` (scoped at the UNet's root: `conv_in.weight`,
    /// `down_blocks.0.resnets.0.norm1.weight`, ...), checking each shape against `configuration`.
    ///
    /// Throws `UNetConfigurationError` for an architecture this project does not run, and
    /// `CheckpointError.missingKey` / `.wrongShape` naming the first tensor that is absent or has the
    /// wrong shape. Run `store.checkAllUsed()` afterwards to catch tensors nobody asked for.
    public init(_ weights: Weights, configuration: UNetConfiguration) throws {
        try configuration.validate()
        let c = configuration
        let channels = c.blockOutChannels[0]
        self.configuration = c
        rootPrefix = weights.prefix
        store = weights.store
        convIn = try Conv2d(weights["conv_in"], inChannels: c.inChannels, outChannels: channels,
                            kernelSize: c.convInKernel, padding: (c.convInKernel - 1) / 2)
        timeEmbedding = try TimestepEmbedding(weights["time_embedding"], channels: channels,
                                              timeEmbeddingDim: c.timeEmbeddingDim,
                                              flipSinToCos: c.flipSinToCos, downscaleFreqShift: c.freqShift)
        downBlocks = try c.downBlockTypes.indices.map {
            try UNetDownBlock(weights["down_blocks.\($0)"], configuration: c, level: $0)
        }
        midBlock = try UNetMidBlock2DCrossAttn(weights["mid_block"], configuration: c)
        upBlocks = try c.upBlockTypes.indices.map {
            try UNetUpBlock(weights["up_blocks.\($0)"], configuration: c, level: $0)
        }
        convNormOut = try GroupNorm(weights["conv_norm_out"], groups: c.normNumGroups, channels: channels, eps: c.normEps)
        convOut = try Conv2d(weights["conv_out"], inChannels: channels, outChannels: c.outChannels,
                             kernelSize: c.convOutKernel, padding: (c.convOutKernel - 1) / 2)
    }

    /// Predicts the noise in `sample`.
    ///
    /// - Parameters:
    ///   - sample: noisy latents `(N, 4, h, w)`; any size, 64x64 for 512x512 images.
    ///   - timestep: the diffusion timestep, 0...999 (fractional values are fine).
    ///   - encoderHiddenStates: the text encoder's output `(N, 77, 768)`.
    ///   - crossAttentionObserver: sees the probabilities of every cross-attention layer (`attn2`),
    ///     named by module path, e.g. `"down_blocks.0.attentions.1.transformer_blocks.0.attn2"`.
    /// - Returns: the predicted noise `ε`, `(N, 4, h, w)`.
    public func callAsFunction(_ sample: Tensor, timestep: Float, encoderHiddenStates: Tensor,
                               crossAttentionObserver: CrossAttentionObserver? = nil) -> Tensor {
        let c = configuration
        precondition(sample.rank == 4 && sample.shape[1] == c.inChannels,
                     "the UNet takes (N, \(c.inChannels), h, w) latents, got \(sample.shape)")
        precondition(encoderHiddenStates.rank == 3 && encoderHiddenStates.shape[0] == sample.shape[0]
                     && encoderHiddenStates.shape[2] == c.crossAttentionDim,
                     "the UNet takes (\(sample.shape[0]), S, \(c.crossAttentionDim)) text states, "
                     + "got \(encoderHiddenStates.shape)")
        let context = encoderHiddenStates
        // Each Attention knows its full key prefix; report names relative to the UNet's root.
        let observer = crossAttentionObserver.map { observe -> CrossAttentionObserver in
            let root = rootPrefix.count
            return { layer, batch, head, rows, p in observe(String(layer.dropFirst(root)), batch, head, rows, p) }
        }

        // 1. Time: one embedding per sample, (N, 1280).
        let t = timeEmbedding(timestep, batch: sample.shape[0])

        // 2. Into feature space: (N, 4, h, w) → (N, 320, h, w).
        var x = c.centerInputSample ? sample.map { 2 * $0 - 1 } : sample   // [0, 1] → [-1, 1]
        x = convIn(x)

        // 3. Down: every map made along the way is kept for the up blocks, conv_in's output first.
        var skips = [x]
        for (i, block) in downBlocks.enumerated() {
            let (output, blockSkips) = block(x, timeEmbedding: t, context: context, observer: observer)
            x = output
            skips += blockSkips
            giveBackWeightPages("down_blocks.\(i).")
        }

        // 4. The bottom of the U.
        x = midBlock(x, timeEmbedding: t, context: context, observer: observer)
        giveBackWeightPages("mid_block.")

        // 5. Up: each block takes back as many skips as it has ResNets, the most recent first.
        for (i, block) in upBlocks.enumerated() {
            defer { giveBackWeightPages("up_blocks.\(i).") }
            let mine = Array(skips.suffix(block.resnetCount))
            skips.removeLast(block.resnetCount)
            // The upsampler must land exactly on the size of the next skip. That is 2x, except when
            // the latent size is not a multiple of 8 and a downsampler rounded up (15 → 8 → 16 ≠ 15).
            let upsampleSize = skips.last.map { (height: $0.shape[2], width: $0.shape[3]) }
            x = block(x, skips: mine, timeEmbedding: t, context: context, upsampleSize: upsampleSize,
                      observer: observer)
        }

        // 6. Back to latent space: (N, 320, h, w) → (N, 4, h, w).
        return convOut(convNormOut(x, silu: true))
    }

    private func giveBackWeightPages(_ block: String) {
        if givesBackWeightPages { store.releaseMappedPages(prefix: rootPrefix + block) }
    }
}
