import StableDiffusion

/// One denoising step, and a whole picture, in latent space against the same UNet on pixels.
///
/// The pixel UNet is the checkpoint's UNet with 3 input and output channels, run on the full
/// picture; the latent one runs on the picture divided by the VAE's downsampling factor. A whole
/// picture costs `steps` UNet evaluations, plus (in latent space) one VAE decode.
public struct DiffusionCost: Sendable {
    /// One guided step (batch 2) on latents and on pixels.
    public let latent, pixel: UNetCost
    /// GFLOP of a whole picture: `steps · latent.gflop + decode / 10⁹`, and `steps · pixel.gflop`.
    public let latentRunGFLOP, pixelRunGFLOP: Double

    /// Counts a `side` x `side` picture made in `steps` steps with `configuration`'s networks.
    public init(configuration: StableDiffusionConfiguration, side: Int = 512, steps: Int = 50) throws {
        let factor = configuration.vae.downsamplingFactor
        var pixelUNet = configuration.unet                                  // the same network, fed RGB
        pixelUNet.inChannels = 3
        pixelUNet.outChannels = 3
        latent = UNetCost(configuration: configuration.unet, height: side / factor, width: side / factor, batch: 2)
        pixel = UNetCost(configuration: pixelUNet, height: side, width: side, batch: 2)
        let vaeFlops = try AutoencoderKL.flops(configuration: configuration.vae, height: side, width: side)
        latentRunGFLOP = Double(steps) * latent.gflop + Double(vaeFlops.decode) / 1e9
        pixelRunGFLOP = Double(steps) * pixel.gflop
    }

    /// How many times more arithmetic the whole picture takes on pixels.
    public var runRatio: Double { pixelRunGFLOP / latentRunGFLOP }
}
