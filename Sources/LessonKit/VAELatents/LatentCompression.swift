import StableDiffusion

/// How many numbers a picture is, and how many its latent is.
///
/// A `W` x `H` RGB picture is `3·H·W` numbers; its latent is `C · (H/f) · (W/f)` for `C` latent
/// channels and downsampling factor `f` (4 and 8 in SD 1.x), so the ratio is `3 f² / C` = 48.
public struct LatentCompression: Sendable, Equatable {
    /// The picture's size in pixels.
    public let width, height: Int
    /// The latent's size in positions, and its channels.
    public let latentWidth, latentHeight, latentChannels: Int

    /// The compression of a `width` x `height` picture by a VAE with `configuration`.
    public init(width: Int, height: Int, configuration: VAEConfiguration) {
        let factor = configuration.downsamplingFactor
        (self.width, self.height) = (width, height)
        (latentWidth, latentHeight, latentChannels) = (width / factor, height / factor, configuration.latentChannels)
    }

    /// 3 · height · width.
    public var pixelNumbers: Int { 3 * height * width }
    /// latentChannels · latentHeight · latentWidth.
    public var latentNumbers: Int { latentChannels * latentHeight * latentWidth }
    /// pixelNumbers / latentNumbers.
    public var ratio: Double { Double(pixelNumbers) / Double(latentNumbers) }
    /// The picture and its latent as float32, in bytes (4 per number).
    public var bytes: (pixels: Double, latents: Double) {
        (Double(pixelNumbers * 4), Double(latentNumbers * 4))
    }

    /// SD's native 512x512 first, then the user's size when it differs.
    public static func examples(width: Int, height: Int, configuration: VAEConfiguration) -> [LatentCompression] {
        let sizes = (height, width) == (512, 512) ? [(512, 512)] : [(512, 512), (height, width)]
        return sizes.map { LatentCompression(width: $0.1, height: $0.0, configuration: configuration) }
    }
}
