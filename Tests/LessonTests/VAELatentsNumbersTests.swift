import Foundation
import FrameExport
import LessonKit
import StableDiffusion
import Testing
import TensorCore

/// Lesson 3's numbers: the compression, the VAE on paper, the UNet's cost, and the measurements
/// of pictures and latents.
@Suite("Lesson 3: the numbers vae-latents computes")
struct VAELatentsNumbersTests {
    static let vae = StableDiffusionConfiguration.sd15.vae

    @Test("512x512x3 = 786,432 numbers become 64x64x4 = 16,384: 48x fewer")
    func compression() {
        let native = LatentCompression(width: 512, height: 512, configuration: Self.vae)
        #expect(native.pixelNumbers == 786_432)
        #expect(native.latentWidth == 64 && native.latentHeight == 64 && native.latentChannels == 4)
        #expect(native.latentNumbers == 16_384)
        #expect(native.ratio == 48)                                  // 8 · 8 · 3 / 4
        #expect(native.bytes.pixels == 3_145_728 && native.bytes.latents == 65_536)   // 4 bytes per number
        let odd = LatentCompression(width: 96, height: 64, configuration: Self.vae)
        #expect(odd.latentNumbers == 4 * 8 * 12 && odd.ratio == 48)
        #expect(LatentCompression.examples(width: 512, height: 512, configuration: Self.vae).count == 1)
        #expect(LatentCompression.examples(width: 96, height: 64, configuration: Self.vae).map(\.width) == [512, 96])
    }

    @Test("the VAE on paper: shapes, numbers, and the convolutions' FLOPs from their layer shapes")
    func stageTable() throws {
        let table = try VAEStageTable(configuration: Self.vae, height: 64, width: 64)
        let byName = Dictionary(table.rows.map { ($0.network + " " + $0.name, $0) }) { first, _ in first }
        let mean = try #require(byName["encoder mean"])
        #expect(mean.shape == [1, 4, 8, 8] && mean.numbers == 256)
        let convOut = try #require(byName["decoder decoder.conv_out"])
        #expect(convOut.shape == [1, 3, 64, 64] && convOut.numbers == 12_288)
        // A 3x3 convolution costs 2 · C_in · C_out · 9 · H · W: 128 → 3 channels at 64x64.
        #expect(convOut.gflop == Double(2 * 128 * 3 * 9 * 64 * 64) / 1e9)
        let convIn = try #require(byName["encoder encoder.conv_in"])
        #expect(convIn.gflop == Double(2 * 3 * 128 * 9 * 64 * 64) / 1e9)
        #expect(table.rows.allSatisfy { $0.numbers == $0.shape.reduce(1, *) })
        let totals = try AutoencoderKL.flops(configuration: Self.vae, height: 64, width: 64)
        #expect(table.encodeFlops == totals.encode && table.decodeFlops == totals.decode)
        #expect(table.rows.allSatisfy { $0.numbers <= table.widest.numbers })
        #expect(table.rows.contains { $0.name == "encoder.down_blocks.3.resnets.1" })
    }

    @Test("UNet activations for SD 1.5 at 64x64 with guidance, worked out from the layer widths")
    func unetCost() {
        let unet = StableDiffusionConfiguration.sd15.unet
        let cost = UNetCost(configuration: unet, height: 64, width: 64, batch: 2)
        // Skips: conv_in (320·64²), 2 resnets per level, and a downsampler's output after the first three:
        //   320·4096 + 2·320·4096 + 320·1024 + 2·640·1024 + 640·256 + 2·1280·256 + 1280·64 + 2·1280·64
        let skipNumbers = 320 * 4096 + 2 * 320 * 4096 + 320 * 1024 + 2 * 640 * 1024 + 640 * 256
            + 2 * 1280 * 256 + 1280 * 64 + 2 * 1280 * 64
        #expect(cost.skipBytes == Double(2 * skipNumbers * 4))
        // Scores: batch 2 · 8 heads · T² with T = 4096 tokens, 4 bytes each = 1 GiB.
        #expect(cost.attentionScoreBytes == Double(2 * 8 * 4096 * 4096 * 4))
        // The GEGLU projection: batch 2 · T · 8 · 320, 4 bytes each.
        #expect(cost.feedForwardBytes == Double(2 * 4096 * 8 * 320 * 4))
        #expect(cost.totalBytes == cost.skipBytes + cost.attentionScoreBytes + cost.feedForwardBytes)
        #expect(cost.gflop == UNet2DConditionModel.flopCount(configuration: unet, latentHeight: 64, latentWidth: 64, batch: 2) / 1e9)
    }

    @Test("the whole picture: 50 steps on latents plus one decode, against 50 steps on pixels; scores grow 4096x")
    func diffusionCost() throws {
        let cost = try DiffusionCost(configuration: .sd15)
        #expect(cost.latent.height == 64 && cost.pixel.height == 512)
        // (512²)² / (64²)² = 64² = 4096: the score matrix grows with the square of the positions.
        #expect(cost.pixel.attentionScoreBytes / cost.latent.attentionScoreBytes == 4096)
        #expect(cost.pixel.feedForwardBytes / cost.latent.feedForwardBytes == 64)
        let decode = try AutoencoderKL.flops(configuration: Self.vae, height: 512, width: 512).decode
        #expect(cost.latentRunGFLOP == 50 * cost.latent.gflop + Double(decode) / 1e9)
        #expect(cost.pixelRunGFLOP == 50 * cost.pixel.gflop)
        #expect(cost.runRatio == cost.pixelRunGFLOP / cost.latentRunGFLOP)
        #expect(cost.pixel.gflop / cost.latent.gflop > 64)           // at least the growth of the convolutions
    }

    @Test("self-attention's products by hand: 4·N·T²·C per layer; 92% of the pixel UNet, 4096x the latent one")
    func selfAttentionSplit() throws {
        let cost = try DiffusionCost(configuration: .sd15)
        // SD 1.5 at 64x64 latents, batch 2: 5 transformers at 4096 tokens (320 channels), 5 at 1024 (640),
        // 5 at 256 (1280) and the middle one at 64 (1280).
        let layers: [(count: Double, tokens: Double, channels: Double)] = [(5, 4096, 320), (5, 1024, 640), (5, 256, 1280), (1, 64, 1280)]
        var byHand = 0.0
        for layer in layers { byHand += layer.count * 4 * 2 * layer.tokens * layer.tokens * layer.channels }
        #expect(abs(cost.latent.selfAttentionGFLOP * 1e9 - byHand) < 1)
        #expect(abs(cost.pixel.selfAttentionGFLOP / cost.latent.selfAttentionGFLOP - 4096) < 1e-9)
        let share = cost.pixel.selfAttentionGFLOP / cost.pixel.gflop
        #expect(share > 0.91 && share < 0.93, "share \(share)")
        // What is left grows with the positions: 64x, a little less for the pixel UNet's 3 input channels.
        let rest = (cost.pixel.gflop - cost.pixel.selfAttentionGFLOP) / (cost.latent.gflop - cost.latent.selfAttentionGFLOP)
        #expect(rest > 63 && rest <= 64, "rest \(rest)")
    }

    @Test("PSNR from a known error: 10 log₁₀(1/MSE) on the 0-1 scale, clamped pictures")
    func psnr() {
        let grey = Tensor(repeating: 0, shape: [1, 3, 2, 2])          // 0.5 on the 0-1 scale
        let lighter = Tensor(repeating: 0.2, shape: [1, 3, 2, 2])     // 0.6: every pixel 0.1 off
        // (0.2 is not exact in float32, so 0.01 holds to about 10⁻⁸.)
        #expect(abs(PixelComparison.meanSquaredError(grey, lighter) - 0.01) < 1e-7)
        #expect(abs(PixelComparison.peakSignalToNoise(grey, lighter) - 20) < 1e-4)
        let black = Tensor(repeating: -1, shape: [1, 3, 2, 2]), white = Tensor(repeating: 1, shape: [1, 3, 2, 2])
        #expect(PixelComparison.peakSignalToNoise(black, white) == 0)                         // MSE 1
        #expect(PixelComparison.peakSignalToNoise(grey, grey) == 120)                         // MSE floor 10⁻¹²
        #expect(PixelComparison.meanSquaredError(white, Tensor(repeating: 1.5, shape: [1, 3, 2, 2])) == 0)  // clamped
    }

    @Test("the difference map averages |a − b| over the three colour channels")
    func differenceMap() {
        // Against grey (0.5 on the 0-1 scale), pixel 0 is 0.7, 0.9 and 0.2: off by 0.2, 0.4 and 0.3,
        // (0.2 + 0.4 + 0.3) / 3 = 0.3. Pixel 1 is grey in both.
        var b = Tensor.zeros([1, 3, 1, 2])
        b.scalars[0] = 0.4; b.scalars[2] = 0.8; b.scalars[4] = -0.6
        let map = PixelComparison.differenceMap(Tensor.zeros([1, 3, 1, 2]), b)
        #expect(map.shape == [1, 2])
        #expect(abs(map.scalars[0] - 0.3) < 1e-6)
        #expect(map.scalars[1] == 0)
    }

    @Test("patch averages: each channel's mean over a patch, rounded down")
    func patchAverages() {
        var image = RGBImage(width: 4, height: 2)
        // Left patch: red 0, 10, 20, 31 → 61/4 = 15; right patch all 200.
        for (i, red) in [0, 10, 20, 31].enumerated() { image[i % 2, i / 2] = RGBColor(UInt8(red), 4, 8) }
        for x in 2..<4 { for y in 0..<2 { image[x, y] = RGBColor(200, 200, 200) } }
        let averaged = image.patchAverages(factor: 2)
        #expect(averaged.width == 2 && averaged.height == 1)
        #expect(averaged[0, 0] == RGBColor(15, 4, 8))
        #expect(averaged[1, 0] == RGBColor(200, 200, 200))
    }

    @Test("the encoding: z = s·μ, the average σ = e^(logvar/2), the average |μ|, and each channel")
    func encoding() throws {
        // Moments (1, 8, 1, 2): μ = channels 0-3, log σ² = channels 4-7.
        let mu: [Float] = [1, -1, 2, -2, 0.5, 0.5, -3, 3]
        let logvar: [Float] = [0, 0, -2, -2, 0, 0, -2, -2]
        let posterior = try DiagonalGaussian(moments: Tensor(shape: [1, 8, 1, 2], scalars: mu + logvar))
        let encoding = LatentEncoding(posterior: posterior, scalingFactor: 0.18215)
        #expect(encoding.latents == Tensor(shape: [1, 4, 1, 2], scalars: mu.map { $0 * 0.18215 }))
        // σ = 1 for half the numbers and e^(−1) for the other half.
        #expect(abs(Double(encoding.averageSigma) - (1 + exp(-1)) / 2) < 1e-6)
        #expect(encoding.averageMagnitude == 13.0 / 8)                  // (1+1+2+2+0.5+0.5+3+3)/8
        #expect(encoding.channels.count == 4)
        #expect(encoding.channels[3].min == -3 * 0.18215 && encoding.channels[3].max == 3 * 0.18215)
        #expect(abs(encoding.channels[2].mean - 0.5 * 0.18215) < 1e-7)
        #expect(abs(encoding.scalingMistake - 5.49) < 0.01)              // 1 / 0.18215
        #expect(LatentChannels.split(encoding.latents)[1].scalars == [2 * 0.18215, -2 * 0.18215])
    }

    @Test("SNR for data of variance v is v · ᾱ/(1 − ᾱ)")
    func snrWithVariance() {
        let schedule = NoiseSchedule(.scaledLinear)
        for t in [200, 500, 800] {
            let a = schedule.alphasCumprod[t]
            #expect(abs(schedule.signalToNoise(at: t, dataVariance: 0.25) - 0.25 * a / (1 - a)) < 1e-12)
            #expect(abs(schedule.signalToNoise(at: t, dataVariance: 1) - schedule.signalToNoise(at: t)) < 1e-12)
        }
        #expect(TensorSummary(Tensor(shape: [2], scalars: [1, -1])).variance == 1)
    }

    @Test("noise on pixels and on latents: the draws' order, x_t, the SNRs and the PSNRs")
    func noiseRows() {
        let x = ExamplePictures.hills(width: 16, height: 16)
        let z = x * 0.5                                               // a stand-in latent: a quarter of the variance
        let noises = LatentNoiseDraws(seed: 9, latentShape: z.shape, pixelShape: x.shape)
        var generator = TorchGenerator(seed: 9)
        #expect(noises.latent == generator.randn(z.shape))
        #expect(noises.pixel == generator.randn(x.shape))
        #expect(noises.randomLatent == generator.randn(z.shape))
        let schedule = NoiseSchedule(.scaledLinear)
        // "Decoding" doubles the stand-in latent back to the picture's scale.
        let rows = LatentNoiseRow.rows(picture: x, latents: z, noises: noises, timesteps: [0, 500], schedule: schedule) { $0 * 2 }
        for row in rows {
            let a = Float(schedule.alphasCumprod[row.timestep])
            #expect(row.noisyPixels.maxAbsDifference(x.scaled(a.squareRoot(), plus: noises.pixel, times: (1 - a).squareRoot())) < 1e-5)
            #expect(abs(row.latentSNR / row.pixelSNR - 0.25) < 1e-4)
            #expect(row.pixelPSNR == PixelComparison.peakSignalToNoise(x, row.noisyPixels))
            #expect(row.latentPSNR == PixelComparison.peakSignalToNoise(x, row.decodedNoisyLatents))
        }
        #expect(rows[0].pixelPSNR > rows[1].pixelPSNR)                  // more noise, less picture
    }
}
