import Foundation
import FrameExport
import LessonKit
import StableDiffusion
import TensorCore

/// The stages of lesson 3 that need the VAE's weights: encode, decode, the scaling factor, noise
/// in latent space, and a random latent.
extension VAELatents {
    func runTheVAE(_ vae: AutoencoderKL, preview: LatentPreview, clean: RGBImage, narrator: Narrator, out: LessonOutput) throws {
        let x = clean.toTensor()                                            // (1, 3, H, W) in [−1, 1]
        // Small pictures are shown enlarged (without smoothing), so every panel is at least 256 wide.
        let zoom = RGBImage.zoom(width: clean.width, height: clean.height, toAtLeast: 256)
        let panelSize = (width: clean.width * zoom, height: clean.height * zoom)
        let shown = { (image: RGBImage) in image.resized(width: panelSize.width, height: panelSize.height, filter: .nearest) }

        let encoding = try showEncoding(vae, x: x, preview: preview, shown: shown, narrator, out)
        let decoded = try showDecoding(vae, x: x, z: encoding.latents, clean: clean, shown: shown, narrator, out)
        try showScalingFactor(vae, x: x, encoding: encoding, decoded: decoded, shown: shown, narrator, out)
        let noises = LatentNoiseDraws(seed: seed, latentShape: encoding.latents.shape, pixelShape: x.shape)
        try showNoiseInLatentSpace(vae, x: x, z: encoding.latents, noises: noises, shown: shown, narrator, out)
        try showRandomLatent(vae, noises.randomLatent, preview: preview, shown: shown, narrator, out)
    }

    /// Encode: the mean of the latent distribution, times the scaling factor.
    func showEncoding(_ vae: AutoencoderKL, x: Tensor, preview: LatentPreview, shown: (RGBImage) -> RGBImage, _ narrator: Narrator,
                      _ out: LessonOutput) throws -> LatentEncoding {
        narrator.stage("Encoding: the picture as 4 latent channels")
        let started = Date()
        let encoding = LatentEncoding(posterior: try vae.encode(x), scalingFactor: vae.scalingFactor)
        let z = encoding.latents                                           // (1, 4, H/8, W/8): what the UNet sees
        let (h, w) = (z.shape[2], z.shape[3])
        narrator.say(String(format: """
            The encoder took %.1f s. It answers with a Gaussian per latent number, not a single value: a mean μ and \
            a log-variance. Here the average σ is %.4f against an average |μ| of %.2f; in a trained SD 1.x VAE σ is \
            tiny next to μ, so this lesson simply takes μ (img2img draws a sample instead; it hardly differs) and \
            multiplies it by the scaling factor %.5f.
            """, Date().timeIntervalSince(started), encoding.averageSigma, encoding.averageMagnitude, encoding.scalingFactor))
        narrator.say("""
            z = \(String(format: "%.5f", encoding.scalingFactor)) · μ has shape \(Format.shape(z.shape)): \(h)x\(w) \
            positions, each a 4-number code mostly for its 8x8 patch of pixels (the encoder's convolutions and \
            attention also let some of the surroundings in).
            """)
        for (c, channel) in encoding.channels.enumerated() {
            narrator.show(String(format: "channel %d: from %+.2f to %+.2f, mean %+.3f, standard deviation %.3f",
                                 c, channel.min, channel.max, channel.mean, channel.standardDeviation))
        }
        narrator.say("""
            Each channel is a small, blocky map of the picture: one colour square per latent. Shapes survive; fine \
            texture is folded into the 4 numbers of each square. A 4x3 matrix fitted to this VAE's latents \
            (LatentPreview: SD 1.x's is a well-known one; another model's is fitted the same way) turns them into \
            a rough colour picture without the decoder.
            """)
        narrator.show("wrote " + (try out.save(channelPicture(encoding, preview: preview, shown: shown), as: "03-latent-channels.png")))
        if let saveLatents {
            try NumPyFile.write(z, to: saveLatents)
            narrator.show("""
                wrote \(saveLatents)  (float32, shape \(Format.shape(z.shape)); in Python: z = numpy.load('\(saveLatents)'))
                """)
        }
        narrator.pause()
        return encoding
    }

    /// Decode: how much of the picture comes back.
    func showDecoding(_ vae: AutoencoderKL, x: Tensor, z: Tensor, clean: RGBImage, shown: (RGBImage) -> RGBImage,
                      _ narrator: Narrator, _ out: LessonOutput) throws -> Tensor {
        narrator.stage("Decoding: the way back, and what it loses")
        let started = Date()
        let decoded = try vae.decode(scaledLatents: z)                      // (1, 3, H, W)
        let seconds = Date().timeIntervalSince(started)
        let psnr = PixelComparison.peakSignalToNoise(x, decoded)
        let mse = max(PixelComparison.meanSquaredError(x, decoded), 1e-12)
        let difference = PixelComparison.differenceMap(x, decoded)          // (H, W), in [0, 1] of full scale
        let worst = TensorSummary(difference).max
        narrator.say(String(format: "The decoder took %.1f s to paint %d x %d x 3 numbers from %d x %d x 4.",
                            seconds, clean.height, clean.width, z.shape[2], z.shape[3]))
        narrator.say(String(format: """
            Reconstruction error: PSNR %.1f dB (mean squared error %.5f on a 0-1 scale). Published measurements put \
            SD 1.x's VAE at about 23-27 dB on photos; above about 40 dB differences are hard to see at all. The \
            largest error at one pixel is %.0f%% of full scale.
            """, psnr, mse, 100 * worst))
        narrator.say("""
            The difference image shows where the loss is: sharp edges, small text and fine repeating texture, the \
            things that do not fit in 4 numbers per 8x8 patch.
            """)
        narrator.preview(RGBImage(tensor: decoded))
        let panel = reconstructionPicture(clean, decoded: decoded, difference: difference, psnr: psnr, worst: worst,
                                          latentSize: (z.shape[3], z.shape[2]), shown: shown)
        narrator.show("wrote " + (try out.save(panel, as: "04-reconstruction.png", extra: [("psnr", String(format: "%.2f", psnr))])))
        narrator.pause()
        return decoded
    }

    /// The scaling factor, and what forgetting to undo it does.
    func showScalingFactor(_ vae: AutoencoderKL, x: Tensor, encoding: LatentEncoding, decoded: Tensor,
                           shown: (RGBImage) -> RGBImage, _ narrator: Narrator, _ out: LessonOutput) throws {
        let scale = encoding.scalingFactor, z = encoding.latents
        let s = String(format: "%g", scale)   // 0.18215 in SD 1.x; each model measures its own
        narrator.stage("The scaling factor \(s)")
        narrator.say(String(format: """
            The encoder's raw latents μ have standard deviation %.3f; times %.5f that becomes %.3f. The noise ε the \
            UNet was trained to remove has standard deviation 1, so the scaling puts picture and noise on the same \
            footing and the noise schedule's ᾱ means what it says.
            """, encoding.mean.standardDeviation, scale, z.standardDeviation))
        narrator.say("The factor is undone before decoding. Forgetting that, either way, gives these:")
        let forgot = try vae.decode(z)                                      // latents 1/s too small (5.5x in SD 1.x)
        let twice = try vae.decode(z * (1 / (scale * scale)))               // 1/s too large
        let psnr = [decoded, forgot, twice].map { PixelComparison.peakSignalToNoise(x, $0) }
        narrator.show("decode(z / \(s)), right:".padded(to: 40) + String(format: "PSNR %5.1f dB", psnr[0]))
        narrator.show("decode(z), forgot to divide:".padded(to: 40)
                      + String(format: "PSNR %5.1f dB  (latents %.1fx too small)", psnr[1], encoding.scalingMistake))
        narrator.show("decode(z / \(s)²), divided twice:".padded(to: 40)
                      + String(format: "PSNR %5.1f dB  (latents %.1fx too large)", psnr[2], encoding.scalingMistake))
        let panel = RGBImage.sideBySide([decoded, forgot, twice].map { shown(RGBImage(tensor: $0)) },
                                        labels: ["decode(z / \(s)): right", "decode(z): forgot to divide",
                                                 "decode(z / \(s)^2): divided twice"],
                                        title: "the scaling factor must be undone exactly once before decoding")
        narrator.show("wrote " + (try out.save(panel, as: "05-scaling.png")))
        narrator.pause()
    }

    /// Noise in latent space against noise on pixels, at the same t.
    func showNoiseInLatentSpace(_ vae: AutoencoderKL, x: Tensor, z: Tensor, noises: LatentNoiseDraws,
                                shown: (RGBImage) -> RGBImage, _ narrator: Narrator, _ out: LessonOutput) throws {
        narrator.stage("Noise in latent space is not noise on pixels")
        narrator.say("""
            The same formula as lesson 1, x_t = sqrt(ᾱ_t)·x0 + sqrt(1 − ᾱ_t)·ε, once on the pixels and once on the \
            latents (then decoded to be seen):
            """)
        narrator.show("".padded(to: 16) + "SNR".padded(to: 22) + "PSNR against x0 (latents decoded)")
        narrator.show("t".rightAligned(to: 4) + "ᾱ_t".rightAligned(to: 8) + "pixels".rightAligned(to: 10)
                      + "latents".rightAligned(to: 10) + "pixels".rightAligned(to: 11) + "latents".rightAligned(to: 14))
        let rows = try LatentNoiseRow.rows(picture: x, latents: z, noises: noises, timesteps: try parsedTimesteps(),
                                           schedule: NoiseSchedule(.scaledLinear)) { try vae.decode(scaledLatents: $0) }
        for row in rows {
            narrator.show(String(format: "%4d  %6.3f  %8.3f  %8.3f  %9.1f dB  %9.1f dB", row.timestep, row.alphaBar,
                                 row.pixelSNR, row.latentSNR, row.pixelPSNR, row.latentPSNR))
        }
        narrator.say("""
            On pixels the noise is grain laid over a picture that stays whole underneath. In latent space each noisy \
            number is the code of (mostly) an 8x8 patch gone wrong: the decoder paints it as blotches, smeared colours and \
            invented texture, which is the kind of damage the UNet learns to undo.
            """)
        narrator.say("""
            The SNR columns differ at the same t because the two have different spreads: the scaled latents have \
            standard deviation \(String(format: "%.2f", z.standardDeviation)), these pixels \
            \(String(format: "%.2f", x.standardDeviation)).
            """)
        narrator.show("wrote " + (try out.save(noiseGrid(rows, shown: shown), as: "06-noise-pixels-vs-latents.png",
                                               extra: [("timesteps", timesteps)])))
        narrator.pause()
    }

    /// A random latent, decoded: where sampling starts.
    func showRandomLatent(_ vae: AutoencoderKL, _ random: Tensor, preview: LatentPreview, shown: (RGBImage) -> RGBImage, _ narrator: Narrator,
                          _ out: LessonOutput) throws {
        narrator.stage("Decoding a random latent")
        let decoded = try vae.decode(scaledLatents: random)
        let stats = TensorSummary(decoded)
        narrator.say("ε ~ N(0, I) of shape \(Format.shape(random.shape)) is exactly" + String(format: """
             what the backward process starts from at t = 999. Decoded, it is not static: pixel values from %+.2f to \
            %+.2f, standard deviation %.2f. The decoder can only paint picture-like stuff (patches of colour, soft \
            edges, texture), so even nonsense in latent space comes out as a plausible-looking smear. Turning it into \
            a picture is the UNet's job (lesson 2).
            """, stats.min, stats.max, stats.standardDeviation))
        let panel = RGBImage.sideBySide([shown(RGBImage(tensor: preview.rgb(random))), shown(RGBImage(tensor: decoded))],
                                        labels: ["random latent (channels mixed to RGB)", "decoded"],
                                        title: "decode(N(0, I)): seed \(seed)")
        narrator.show("wrote " + (try out.save(panel, as: "07-random-latent.png")))
        narrator.pause()
    }
}
