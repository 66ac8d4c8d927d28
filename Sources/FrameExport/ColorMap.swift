/// Turns numbers into colours for heatmaps: attention maps, latent channels, noise levels.
///
/// Viridis and magma (from matplotlib) are *perceptually uniform*: equal steps in value look
/// like equal steps in colour, and brightness rises steadily from low to high, so the picture
/// stays readable in greyscale and for colour-blind readers. (A rainbow map does neither: it
/// invents sharp edges where yellow and cyan sit and hides changes inside its wide green band.)
///
/// Each map is stored as 17 colours sampled from matplotlib's 256-entry table (entries 0, 16, 32,
/// ..., 240 and 255, rounded to 8 bits). A value between two samples is interpolated linearly in
/// RGB; the result stays within a couple of levels of the full table.
///
/// ```swift
/// ColorMap.viridis.color(at: 0)     // #440154, dark purple
/// ColorMap.viridis.color(at: 1)     // #fde725, yellow
/// ```
public enum ColorMap: Sendable, CaseIterable {
    /// Dark purple, blue, green, yellow. The default for most data.
    case viridis
    /// Black, purple, orange, pale yellow. Good when high values should glow on a dark ground.
    case magma
    /// Black to white.
    case gray

    /// The colour for `t` in `0...1`; values outside are clamped, NaN maps to the low end.
    public func color(at t: Float) -> RGBColor {
        let t = t.isNaN ? 0 : min(max(t, 0), 1)
        let table: [UInt32]
        switch self {
        case .gray:
            let level = UInt8((t * 255).rounded())
            return RGBColor(level, level, level)
        case .viridis: table = Self.viridisSamples
        case .magma: table = Self.magmaSamples
        }
        // Sample k sits at table entry min(16 k, 255), that is at t = min(16 k, 255) / 255.
        let entry = t * 255
        let k = min(Int(entry / 16), table.count - 2)
        let start = Float(16 * k), end = Float(min(16 * (k + 1), 255))
        return RGBColor(hex: table[k]).mixed(with: RGBColor(hex: table[k + 1]), amount: (entry - start) / (end - start))
    }

    /// A horizontal strip running through the whole map from left (0) to right (1), as a legend.
    public func colorBar(width: Int, height: Int) -> RGBImage {
        var bar = RGBImage(width: width, height: height)
        for x in 0..<width {
            bar.fillRectangle(x: x, y: 0, width: 1, height: height,
                              color: color(at: width > 1 ? Float(x) / Float(width - 1) : 0))
        }
        return bar
    }

    // Matplotlib's _viridis_data and _magma_data (CC0), entries 0, 16, ..., 240, 255, as 0xRRGGBB.
    private static let viridisSamples: [UInt32] = [
        0x440154, 0x48186A, 0x472D7B, 0x424086, 0x3B528B, 0x33638D, 0x2C728E, 0x26828E, 0x21918C,
        0x1FA088, 0x28AE80, 0x3FBC73, 0x5EC962, 0x84D44B, 0xADDC30, 0xD8E219, 0xFDE725,
    ]
    private static let magmaSamples: [UInt32] = [
        0x000004, 0x0A0822, 0x1D1147, 0x36106B, 0x51127C, 0x6A1C81, 0x832681, 0x9C2E7F, 0xB73779,
        0xD0416F, 0xE75263, 0xF56B5C, 0xFC8961, 0xFEA772, 0xFEC488, 0xFDE2A3, 0xFCFDBF,
    ]
}
