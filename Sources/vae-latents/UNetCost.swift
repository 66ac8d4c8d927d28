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
struct UNetCost {
    let height, width, batch: Int
    let gflop: Double
    let skipBytes, attentionScoreBytes, feedForwardBytes: Double

    /// Bytes per number: float32, what this project computes in (float16 on a GPU halves all of it).
    static let bytesPerNumber = 4.0

    var totalBytes: Double { skipBytes + attentionScoreBytes + feedForwardBytes }

    /// - Parameters: height, width: the UNet's input size (latent or pixel), batch: 2 for
    ///   classifier-free guidance.
    init(configuration c: UNetConfiguration, height: Int, width: Int, batch: Int) {
        (self.height, self.width, self.batch) = (height, width, batch)
        gflop = UNet2DConditionModel.flopCount(configuration: c, latentHeight: height, latentWidth: width,
                                               batch: batch) / 1e9
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

/// "1.5 GB", "2.2 TB": bytes in powers of 1000, as disk and memory makers print them.
func formatBytes(_ bytes: Double) -> String {
    let units = ["bytes", "kB", "MB", "GB", "TB", "PB"]
    var value = bytes, unit = 0
    while value >= 1000 && unit < units.count - 1 {
        value /= 1000
        unit += 1
    }
    guard unit > 0 else { return "\(Int(value)) bytes" }
    return String(format: value < 10 ? "%.2f" : value < 100 ? "%.1f" : "%.0f", value) + " " + units[unit]
}

/// "1606.5 GFLOP", "2.51 TFLOP", "1.2 PFLOP".
func formatFlops(gflop: Double) -> String {
    if gflop >= 1e6 { return String(format: "%.1f PFLOP", gflop / 1e6) }
    if gflop >= 1e3 { return String(format: "%.2f TFLOP", gflop / 1e3) }
    return String(format: "%.1f GFLOP", gflop)
}
