import StableDiffusion
import TensorCore

/// The noise lesson 3 adds, drawn from one `TorchGenerator` in a fixed order: ε for the latents,
/// ε for the pixels, then a random latent to decode.
public struct LatentNoiseDraws {
    /// ε for the latents, shape of z.
    public let latent: Tensor
    /// ε for the pixels, shape of x.
    public let pixel: Tensor
    /// A latent of N(0, I), where sampling starts, shape of z.
    public let randomLatent: Tensor

    /// Draws the three with `torch.randn`'s numbers for `seed`.
    public init(seed: UInt64, latentShape: [Int], pixelShape: [Int]) {
        var generator = TorchGenerator(seed: seed)
        latent = generator.randn(latentShape)
        pixel = generator.randn(pixelShape)
        randomLatent = generator.randn(latentShape)
    }
}

/// Noise at timestep t added once to the pixels and once to the latents, and how much of the
/// picture each keeps.
///
/// Both use `x_t = √ᾱ_t · x₀ + √(1 − ᾱ_t) · ε`. For data of variance v the SNR is
/// `v · ᾱ_t / (1 − ᾱ_t)`; the PSNRs compare the noisy pixels, and the decoded noisy latents,
/// with the clean picture.
public struct LatentNoiseRow {
    /// The timestep t.
    public let timestep: Int
    /// ᾱ_t.
    public let alphaBar: Double
    /// SNR of the noisy pixels and of the noisy latents.
    public let pixelSNR, latentSNR: Double
    /// The noisy pixels x_t, and the noisy latents z_t decoded, both `(1, 3, H, W)`.
    public let noisyPixels, decodedNoisyLatents: Tensor
    /// PSNR of each against the clean picture, in dB.
    public let pixelPSNR, latentPSNR: Double

    /// One row per timestep: the picture `x` and its latent `z` noised with `noises`, the noisy
    /// latent turned into pixels by `decode`.
    public static func rows(picture x: Tensor, latents z: Tensor, noises: LatentNoiseDraws, timesteps: [Int],
                            schedule: NoiseSchedule, decode: (Tensor) throws -> Tensor) rethrows -> [LatentNoiseRow] {
        let pixelVariance = TensorSummary(x).variance, latentVariance = TensorSummary(z).variance
        return try timesteps.map { t in
            let noisy = schedule.addNoise(to: x, noise: noises.pixel, at: t)
            let seen = try decode(schedule.addNoise(to: z, noise: noises.latent, at: t))
            return LatentNoiseRow(timestep: t, alphaBar: schedule.alphasCumprod[t],
                                  pixelSNR: schedule.signalToNoise(at: t, dataVariance: pixelVariance),
                                  latentSNR: schedule.signalToNoise(at: t, dataVariance: latentVariance),
                                  noisyPixels: noisy, decodedNoisyLatents: seen,
                                  pixelPSNR: PixelComparison.peakSignalToNoise(x, noisy),
                                  latentPSNR: PixelComparison.peakSignalToNoise(x, seen))
        }
    }
}

extension NoiseSchedule {
    /// The SNR of x_t for data of variance v instead of 1: `v · ᾱ_t / (1 − ᾱ_t)`.
    public func signalToNoise(at t: Int, dataVariance v: Double) -> Double {
        alphasCumprod[t] * v / (1 - alphasCumprod[t])
    }
}

extension TensorSummary {
    /// σ², from the Float standard deviation.
    public var variance: Double { Double(standardDeviation * standardDeviation) }
}
