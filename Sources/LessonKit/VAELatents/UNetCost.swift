import StableDiffusion

/// What one UNet evaluation costs at a given input size, computed from the architecture alone.
///
/// The FLOPs come from `UNet2DConditionModel.flopCount` (convolutions, linear layers and
/// attention products, 2 per multiply-add). The memory is the three kinds of activation that
/// grow with the picture:
/// - the skip connections: every down-block output is kept until the up block that reads it;
/// - the self-attention scores of the finest level, `(N·heads, T, T)` with `T = h·w` tokens, when
///   computed all at once as the textbook formula (and plain PyTorch) does;
/// - the widest single feature map: the feed-forward layer's `(N, T, 8·C)` GEGLU projection at the
///   finest level.
public struct UNetCost: Sendable {
    /// The UNet's input size (latent or pixel) and batch (2 with classifier-free guidance).
    public let height, width, batch: Int
    /// Arithmetic of one evaluation, in GFLOP (10⁹ operations, 2 per multiply-add), and the part of it
    /// in self-attention's products (every position against every other).
    public let gflop, selfAttentionGFLOP: Double
    /// Bytes of the skip connections, of one self-attention score matrix at the finest level,
    /// and of the widest feed-forward activation.
    public let skipBytes, attentionScoreBytes, feedForwardBytes: Double

    /// Bytes per number: float32, what this project computes in (float16 on a GPU halves all of it).
    public static let bytesPerNumber = 4.0

    /// The three activations together.
    public var totalBytes: Double { skipBytes + attentionScoreBytes + feedForwardBytes }

    /// Counts the cost of `c` at `height` x `width` with `batch` inputs.
    ///
    /// - Parameters: height, width: the UNet's input size (latent or pixel), batch: 2 for
    ///   classifier-free guidance.
    public init(configuration c: UNetConfiguration, height: Int, width: Int, batch: Int) {
        (self.height, self.width, self.batch) = (height, width, batch)
        gflop = UNet2DConditionModel.flopCount(configuration: c, latentHeight: height, latentWidth: width,
                                               batch: batch) / 1e9
        selfAttentionGFLOP = UNet2DConditionModel.selfAttentionFlopCount(configuration: c, latentHeight: height,
                                                                         latentWidth: width, batch: batch) / 1e9
        let n = Double(batch), bytes = Self.bytesPerNumber
        // Skips: conv_in's output, each resnet's (and transformer's) output, each downsampler's.
        var (h, w) = (height, width)
        var skipNumbers = Double(c.blockOutChannels[0] * h * w)
        for (level, channels) in c.blockOutChannels.enumerated() {
            skipNumbers += Double(c.layersPerBlock * channels * h * w)
            if level < c.blockOutChannels.count - 1 {
                h = (h + 2 * c.downsamplePadding - 3) / 2 + 1
                w = (w + 2 * c.downsamplePadding - 3) / 2 + 1
                skipNumbers += Double(channels * h * w)
            }
        }
        skipBytes = n * skipNumbers * bytes
        let tokens = Double(height * width), first = Double(c.blockOutChannels[0])
        attentionScoreBytes = n * Double(c.heads(block: 0)) * tokens * tokens * bytes
        feedForwardBytes = n * tokens * 8 * first * bytes
    }
}
