import ArgumentParser
import Foundation
import FrameExport
import LessonKit
import StableDiffusion
import TensorCore

/// Lesson 3: the VAE squeezes a picture into latents 48 times smaller, and the whole of diffusion
/// runs there; that is why Stable Diffusion fits on a home PC.
///
/// Reads top to bottom like the lesson (`Lessons/03-vae-latents.md`): the picture, the encoder and
/// decoder on paper, the latents themselves, the way back and what it loses, the scaling factor,
/// noise in latent space against noise on pixels, a random latent, and what one UNet step costs
/// on latents against pixels. Without a checkpoint it teaches everything that needs only shapes.
///
/// ```
/// vae-latents                                              # shapes and costs, no download needed
/// vae-latents --checkpoint v1-5-pruned-emaonly.safetensors --image photo.jpg --save-latents z.npy
/// vae-latents --checkpoint v1-5-pruned-emaonly.safetensors --load-latents z.npy
/// ```
@main
struct VAELatents: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vae-latents",
        abstract: "Lesson 3: squeeze a picture into 4 x H/8 x W/8 latents and back, and see what that saves.",
        discussion: "The lesson text is in Lessons/03-vae-latents.md.")

    @Option(help: "A PNG or JPEG picture (default: Examples/hills.png, drawn by code).")
    var image: String?

    @Option(help: "A Stable Diffusion 1.x checkpoint: a .safetensors file or a diffusers folder (default: $SD_CHECKPOINT).")
    var checkpoint: String?

    @Option(help: "The picture is scaled so that its longer side has this many pixels, then to multiples of 8 (64...1024).")
    var size: Int = 256

    @Option(help: "Timesteps at which to compare noise in latent space with noise on pixels, comma-separated, each in 0...999.")
    var timesteps: String = "200,500,800"

    @Option(help: "Seed of the noise and of the random latent.")
    var seed: UInt64 = 42

    @Option(help: "Also write the picture's latents (scaled, as the UNet sees them) to this NumPy .npy file.")
    var saveLatents: String?

    @Option(help: "Decode the latents in this NumPy .npy file (float32, shape 1x4xhxw) instead of encoding a picture.")
    var loadLatents: String?

    @Option(help: "Folder for the pictures and tables.")
    var output: String = "output/vae-latents"

    @Flag(help: "Run straight through without waiting for Enter.")
    var noPause = false

    mutating func validate() throws {
        _ = try parsedTimesteps()
        guard (64...1024).contains(size) else { throw ValidationError("--size must be between 64 and 1024, got \(size)") }
        if let saveLatents {
            guard saveLatents.hasSuffix(".npy") else {
                throw ValidationError("--save-latents: '\(saveLatents)' must end in .npy")
            }
            let folder = (saveLatents as NSString).deletingLastPathComponent
            var isFolder: ObjCBool = false
            guard folder.isEmpty || (FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) && isFolder.boolValue) else {
                throw ValidationError("--save-latents: the folder '\(folder)' does not exist")
            }
        }
        if loadLatents != nil && saveLatents != nil {
            throw ValidationError("--load-latents and --save-latents cannot be used together")
        }
        if loadLatents != nil && image != nil {
            throw ValidationError("--load-latents decodes a file instead of encoding a picture; leave out --image")
        }
    }

    func parsedTimesteps() throws -> [Int] { try parseTimesteps(timesteps) }

    func run() throws {
        let narrator = Narrator(pauses: !noPause)
        narrator.title("Lesson 3 · VAE latents",
                       subtitle: "512x512x3 pixels -> 64x64x4 latents: why Stable Diffusion runs on a home PC")

        // Read every input before creating anything, so bad input leaves no folder behind.
        let checkpointPath = LessonCheckpoint.path(checkpoint)
        if checkpointPath == nil, saveLatents != nil || loadLatents != nil {
            throw LessonError("--\(saveLatents != nil ? "save" : "load")-latents needs a checkpoint's VAE, and none was given. "
                              + LessonCheckpoint.howToGetOne)
        }
        let pipeline = try checkpointPath.map { try LessonCheckpoint.pipeline($0) }
        let vae: AutoencoderKL? = try pipeline.map { pipeline in
            do { return try pipeline.vae() } catch { throw LessonError("cannot use checkpoint: \(error)") }
        }
        let sdConfiguration = pipeline?.configuration ?? .sd15
        let loaded = try loadLatents.map { try readLatents($0, channels: sdConfiguration.vae.latentChannels) }
        let input = loaded == nil ? try InputPicture.load(image) : nil

        let out = try LessonOutput(output, parameters: [
            ("lesson", "vae-latents"), ("seed", "\(seed)"),
            ("checkpoint", checkpointPath.map { ($0 as NSString).lastPathComponent } ?? "none"),
        ])

        // --load-latents: decode the file and stop (a VAE and the latents were checked above).
        if let vae, let loaded, let loadLatents {
            try decodeLoadedLatents(loaded, from: loadLatents, vae: vae, narrator: narrator, out: out)
            return
        }
        guard let (picture, source) = input else { return }                // loaded above whenever latents were not

        // Stage 1: the picture, as numbers.
        narrator.stage("The picture x: numbers the UNet would have to work on")
        let clean = picture.thumbnail(maxSide: size).resizedToMultiple(of: 8)
        let x = clean.toTensor()                                            // (1, 3, H, W) in [−1, 1]
        let (height, width) = (clean.height, clean.width)
        narrator.say("Using \(source), scaled to \(width)x\(height) (the VAE needs multiples of 8).")
        narrator.say("That is 3 x \(height) x \(width) = \(grouped(x.count)) numbers in [−1, 1]. Diffusion would have to denoise every one of them, dozens of times, with SD 1.5's UNet of 860 million weights.")
        narrator.preview(clean)
        narrator.show("wrote " + (try out.save(clean.captioned("x: \(width)x\(height)x3 = \(grouped(x.count)) numbers"), as: "00-input.png")))
        narrator.pause()

        // Stage 2: the encoder and decoder on paper (shapes only: no weights needed).
        narrator.stage("The VAE on paper: every stage's shape")
        try walkThroughStages(configuration: sdConfiguration.vae, height: height, width: width, narrator: narrator, out: out)
        narrator.pause()

        // Stage 3: 48x fewer numbers.
        narrator.stage("The compression: 48x fewer numbers")
        showCompression(configuration: sdConfiguration.vae, height: height, width: width, narrator: narrator)
        narrator.say("02-patches.png cuts x into those patches. A 4-number code per patch can hold much more than the patch's average colour shown on the right (edges, texture, shading), but not everything; with a checkpoint, the decoding stage measures what is lost.")
        narrator.show("wrote " + (try out.save(patchPicture(clean, factor: sdConfiguration.vae.downsamplingFactor,
                                                            channels: sdConfiguration.vae.latentChannels),
                                                as: "02-patches.png")))
        narrator.pause()

        if let vae {
            try runTheVAE(vae, x: x, clean: clean, narrator: narrator, out: out)
        } else {
            narrator.stage("Encoding and decoding need the VAE's weights")
            narrator.say("Everything so far came from the architecture alone. To see real latents, what the decoder makes of them, and noise in latent space, the lesson needs a checkpoint.")
            narrator.say(LessonCheckpoint.howToGetOne)
            narrator.say("Then run: swift run -c release vae-latents --checkpoint PATH")
            narrator.pause()
        }

        // The cost of one UNet step on latents against the same UNet on pixels.
        narrator.stage("What diffusion in latent space saves")
        try compareCosts(configuration: sdConfiguration, describedAs: pipeline == nil ? "SD 1.5's UNet" : "this checkpoint's UNet",
                         narrator: narrator, out: out)

        narrator.stage("Done")
        narrator.say("Files written:\n" + out.summary)
        narrator.say("Next: Lessons/04-cross-attention.md shows how the prompt steers the UNet.")
    }

    // MARK: - The stages that need the VAE's weights

    func runTheVAE(_ vae: AutoencoderKL, x: Tensor, clean: RGBImage, narrator: Narrator, out: LessonOutput) throws {
        let scale = vae.scalingFactor
        // Small pictures are shown enlarged (without smoothing), so every panel is at least 256 wide.
        let zoom = max(1, 256 / max(clean.width, clean.height))
        let (height, width) = (clean.height * zoom, clean.width * zoom)
        func shown(_ image: RGBImage) -> RGBImage { image.resized(width: width, height: height, filter: .nearest) }

        // Encode: the mean of the latent distribution, times the scaling factor.
        narrator.stage("Encoding: the picture as 4 latent channels")
        let started = Date()
        let posterior = try vae.encode(x)
        let unscaled = posterior.mean                                       // (1, 4, H/8, W/8)
        let z = unscaled * scale                                            // what the UNet sees
        let (h, w) = (z.shape[2], z.shape[3])
        narrator.say(String(format: "The encoder took %.1f s. It answers with a Gaussian per latent number, not a single value: a mean μ and a log-variance. Here the average σ is %.4f against an average |μ| of %.2f; in a trained SD 1.x VAE σ is tiny next to μ, so Stable Diffusion simply takes μ and multiplies it by the scaling factor %.5f.",
                            Date().timeIntervalSince(started), posterior.standardDeviation.mean, unscaled.map(abs).mean, scale))
        narrator.say("z = \(String(format: "%.5f", scale)) · μ has shape \(shapeText(z.shape)): \(h)x\(w) positions, each a 4-number code for an 8x8 patch of pixels.")
        var tiles: [RGBImage] = [], labels: [String] = []
        for (c, channel) in channels(of: z).enumerated() {
            let (low, high) = channel.range
            narrator.show(String(format: "channel %d: from %+.2f to %+.2f, mean %+.3f, standard deviation %.3f",
                                 c, low, high, channel.mean, channel.standardDeviation))
            tiles.append(RGBImage(heatmap: channel.reshaped([h, w]), colorMap: .viridis)
                .resized(width: width, height: height, filter: .nearest))
            labels.append(String(format: "channel %d: %+.2f .. %+.2f", c, low, high))
        }
        tiles.append(RGBImage(tensor: LatentPreview.rgb(z)).resized(width: width, height: height, filter: .nearest))
        labels.append("channels 0-3 mixed to RGB")
        narrator.say("Each channel is a small, blocky map of the picture: one colour square per latent. Shapes survive; fine texture is folded into the 4 numbers of each square. A fixed 4x3 matrix (LatentPreview) turns them into a rough colour picture without the decoder.")
        narrator.show("wrote " + (try out.save(RGBImage.grid(tiles, columns: 5, labels: labels,
                                                                   title: "z = 0.18215 * encoder mean, \(w)x\(h)x4; each channel coloured over its own range"),
                                                as: "03-latent-channels.png")))
        if let saveLatents {
            try NumPyFile.write(z, to: saveLatents)
            narrator.show("wrote \(saveLatents)  (float32, shape \(shapeText(z.shape)); in Python: z = numpy.load('\(saveLatents)'))")
        }
        narrator.pause()

        // Decode: how much of the picture comes back.
        narrator.stage("Decoding: the way back, and what it loses")
        let decodeStarted = Date()
        let decoded = try vae.decode(scaledLatents: z)                      // (1, 3, H, W)
        let decodeSeconds = Date().timeIntervalSince(decodeStarted)
        let psnr = peakSignalToNoise(x, decoded)
        let difference = pixelDifference(x, decoded)                        // (H, W), in [0, 1] of full scale
        let worst = difference.range.max
        narrator.say(String(format: "The decoder took %.1f s to paint %d x %d x 3 numbers from %d x %d x 4.", decodeSeconds, clean.height, clean.width, h, w))
        narrator.say(String(format: "Reconstruction error: PSNR %.1f dB (mean squared error %.5f on a 0-1 scale). Published measurements put SD 1.x's VAE at about 23-27 dB on photos; above about 40 dB differences are hard to see at all. The largest error at one pixel is %.0f%% of full scale.",
                            psnr, pow(10, -psnr / 10), 100 * worst))
        narrator.say("The difference image shows where the loss is: sharp edges, small text and fine repeating texture, the things that do not fit in 4 numbers per 8x8 patch.")
        let decodedPicture = RGBImage(tensor: decoded)
        narrator.preview(decodedPicture)
        let panel = RGBImage.sideBySide([
            shown(clean), shown(decodedPicture), shown(RGBImage(heatmap: difference, colorMap: .magma, range: 0...max(worst, 1e-6))),
        ], labels: ["original x", String(format: "decode(encode(x)): PSNR %.1f dB", psnr),
                    String(format: "|difference|: black 0, white %.0f%%", 100 * worst)],
           title: "through the VAE and back: \(clean.width)x\(clean.height)x3 -> \(w)x\(h)x4 -> \(clean.width)x\(clean.height)x3")
        narrator.show("wrote " + (try out.save(panel, as: "04-reconstruction.png", extra: [("psnr", String(format: "%.2f", psnr))])))
        narrator.pause()

        // The scaling factor.
        narrator.stage("The scaling factor 0.18215")
        narrator.say(String(format: "The encoder's raw latents μ have standard deviation %.3f; times %.5f that becomes %.3f. The noise ε the UNet was trained to remove has standard deviation 1, so the scaling puts picture and noise on the same footing and the noise schedule's ᾱ means what it says.",
                            unscaled.standardDeviation, scale, z.standardDeviation))
        narrator.say("The factor is undone before decoding. Forgetting that, either way, gives these:")
        let forgot = try vae.decode(z)                                      // latents 1/0.18215 = 5.5x too small
        let twice = try vae.decode(z * (1 / (scale * scale)))               // 5.5x too large
        narrator.show(pad("decode(z / 0.18215), right:", 40) + String(format: "PSNR %5.1f dB", psnr))
        narrator.show(pad("decode(z), forgot to divide:", 40) + String(format: "PSNR %5.1f dB  (latents %.1fx too small)", peakSignalToNoise(x, forgot), 1 / scale))
        narrator.show(pad("decode(z / 0.18215²), divided twice:", 40) + String(format: "PSNR %5.1f dB  (latents %.1fx too large)", peakSignalToNoise(x, twice), 1 / scale))
        let scalingPanel = RGBImage.sideBySide([shown(decodedPicture), shown(RGBImage(tensor: forgot)), shown(RGBImage(tensor: twice))],
                                               labels: ["decode(z / 0.18215): right", "decode(z): forgot to divide", "decode(z / 0.18215^2): divided twice"],
                                               title: "the scaling factor must be undone exactly once before decoding")
        narrator.show("wrote " + (try out.save(scalingPanel, as: "05-scaling.png")))
        narrator.pause()

        // Noise in latent space against noise on pixels, at the same t.
        narrator.stage("Noise in latent space is not noise on pixels")
        let schedule = NoiseSchedule(.scaledLinear)
        var generator = TorchGenerator(seed: seed)
        let latentNoise = generator.randn(z.shape)                          // (1, 4, h, w)
        let pixelNoise = generator.randn(x.shape)                           // (1, 3, H, W)
        narrator.say("The same formula as lesson 1, x_t = sqrt(ᾱ_t)·x0 + sqrt(1 − ᾱ_t)·ε, once on the pixels and once on the latents (then decoded to be seen):")
        narrator.show(pad("", 16) + pad("SNR", 22) + "PSNR against x0 (latents decoded)")
        narrator.show(padLeft("t", 4) + padLeft("ᾱ_t", 8) + padLeft("pixels", 10) + padLeft("latents", 10)
                      + padLeft("pixels", 11) + padLeft("latents", 14))
        var rowPixels: [RGBImage] = [], rowLatents: [RGBImage] = [], noiseLabels: ([String], [String]) = ([], [])
        let steps = try parsedTimesteps()
        for t in steps {
            let pixelNoisy = schedule.addNoise(to: x, noise: pixelNoise, at: t)
            let latentNoisy = schedule.addNoise(to: z, noise: latentNoise, at: t)
            let seen = try vae.decode(scaledLatents: latentNoisy)
            rowPixels.append(shown(RGBImage(tensor: pixelNoisy)))
            rowLatents.append(shown(RGBImage(tensor: seen)))
            noiseLabels.0.append(String(format: "pixels, t=%d", t))
            noiseLabels.1.append(String(format: "latents, t=%d, decoded", t))
            narrator.show(String(format: "%4d  %6.3f  %8.3f  %8.3f  %9.1f dB  %9.1f dB",
                                 t, schedule.alphasCumprod[t], signalToNoise(x, t, schedule), signalToNoise(z, t, schedule),
                                 peakSignalToNoise(x, pixelNoisy), peakSignalToNoise(x, seen)))
        }
        narrator.say("On pixels the noise is grain laid over a picture that stays whole underneath. In latent space each noisy number is an 8x8 patch's code gone wrong: the decoder paints it as blotches, smeared colours and invented texture, which is the kind of damage the UNet learns to undo.")
        narrator.say("The SNR columns differ at the same t because the two have different spreads: the scaled latents have standard deviation \(String(format: "%.2f", z.standardDeviation)), these pixels \(String(format: "%.2f", x.standardDeviation)).")
        let noiseGrid = RGBImage.grid(rowPixels + rowLatents, columns: steps.count, labels: noiseLabels.0 + noiseLabels.1,
                                      title: "same t, same formula: top on pixels, bottom in latent space (decoded)")
        narrator.show("wrote " + (try out.save(noiseGrid, as: "06-noise-pixels-vs-latents.png", extra: [("timesteps", timesteps)])))
        narrator.pause()

        // A random latent.
        narrator.stage("Decoding a random latent")
        let random = generator.randn(z.shape)                               // (1, 4, h, w), where sampling starts
        let randomDecoded = try vae.decode(scaledLatents: random)
        narrator.say("ε ~ N(0, I) of shape \(shapeText(random.shape)) is exactly" + String(format: " what the backward process starts from at t = 999. Decoded, it is not static: pixel values from %+.2f to %+.2f, standard deviation %.2f. The decoder can only paint picture-like stuff (patches of colour, soft edges, texture), so even nonsense in latent space comes out as a plausible-looking smear. Turning it into a picture is the UNet's job (lesson 2).",
                            randomDecoded.range.min, randomDecoded.range.max, randomDecoded.standardDeviation))
        let randomPanel = RGBImage.sideBySide([
            RGBImage(tensor: LatentPreview.rgb(random)).resized(width: width, height: height, filter: .nearest),
            shown(RGBImage(tensor: randomDecoded)),
        ], labels: ["random latent (channels mixed to RGB)", "decoded"], title: "decode(N(0, I)): seed \(seed)")
        narrator.show("wrote " + (try out.save(randomPanel, as: "07-random-latent.png")))
        narrator.pause()
    }

    // MARK: - Stages that need only shapes

    /// Prints the encoder's and decoder's stages with shapes and costs, and writes them as CSV.
    func walkThroughStages(configuration: VAEConfiguration, height: Int, width: Int, narrator: Narrator,
                           out: LessonOutput) throws {
        let (encoder, decoder) = try AutoencoderKL.stages(configuration: configuration, height: height, width: width)
        narrator.say("The encoder halves the picture three times while widening the channels, then squeezes the result into 4 channels (mean) plus 4 more (log-variance). The decoder walks back up. Shapes are (batch, channels, height, width):")
        var csv = "network,stage,batch,channels,height,width,numbers,gflop\n"
        for (network, stages) in [("encoder", encoder), ("decoder", decoder)] {
            narrator.show("\(network):")
            for stage in stages {
                let numbers = stage.shape.reduce(1, *)
                narrator.show("  " + pad(stage.name, 40) + pad(shapeText(stage.shape), 20)
                              + padLeft(grouped(numbers), 12) + " numbers" + String(format: "%9.2f GFLOP", Double(stage.flops) / 1e9))
                csv += "\(network),\(stage.name),\(stage.shape.map(String.init).joined(separator: ",")),\(numbers),\(Double(stage.flops) / 1e9)\n"
            }
        }
        let (encodeFlops, decodeFlops) = (encoder.reduce(0) { $0 + $1.flops }, decoder.reduce(0) { $0 + $1.flops })
        let widest = (encoder + decoder).max { $0.shape.reduce(1, *) < $1.shape.reduce(1, *) }!
        narrator.say("One encode costs \(formatFlops(gflop: Double(encodeFlops) / 1e9)), one decode \(formatFlops(gflop: Double(decodeFlops) / 1e9)). The biggest tensor on the way is \(widest.name) with \(grouped(widest.shape.reduce(1, *))) numbers: the VAE is expensive, but it runs once per picture, not once per denoising step.")
        narrator.show("wrote " + (try out.save(text: csv, as: "01-vae-stages.csv")))
    }

    /// The 48x arithmetic, for the user's picture and for SD's native 512x512.
    func showCompression(configuration: VAEConfiguration, height: Int, width: Int, narrator: Narrator) {
        let factor = configuration.downsamplingFactor, latent = configuration.latentChannels
        let sizes = (height, width) == (512, 512) ? [(512, 512)] : [(512, 512), (height, width)]
        for (h, w) in sizes {
            let pixels = 3 * h * w, latents = latent * (h / factor) * (w / factor)
            narrator.show(padLeft("\(w)x\(h)", 9) + " x 3 = " + padLeft(grouped(pixels), 9) + " numbers  ->  "
                          + padLeft("\(w / factor)x\(h / factor)", 7) + " x \(latent) = " + padLeft(grouped(latents), 7)
                          + String(format: " numbers:  %.0fx fewer", Double(pixels) / Double(latents)))
        }
        narrator.say("Where 48 comes from: each side shrinks \(factor)x, so the area shrinks \(factor) x \(factor) = \(factor * factor)x; 3 colour channels become \(latent) latent channels, so 64 x 3 / 4 = 48.")
        narrator.say("As float32 a 512x512 picture is \(formatBytes(Double(3 * 512 * 512 * 4))); its latent is \(formatBytes(Double(4 * 64 * 64 * 4))). But the real saving is not in storing the input: it is in everything the UNet computes from it at every step, which grows with the number of positions (64x) and, in attention, with its square (4096x).")
    }

    /// The picture cut into the patches that become one latent position each, beside the picture
    /// with each patch replaced by its average colour: the resolution the UNet works at.
    func patchPicture(_ picture: RGBImage, factor: Int, channels: Int) -> RGBImage {
        let zoom = max(1, 512 / max(picture.width, picture.height))
        let (width, height) = (picture.width * zoom, picture.height * zoom)
        var grid = picture.resized(width: width, height: height, filter: .nearest)
        let cell = factor * zoom, line = RGBColor(hex: 0xF2F2F2)
        for x in stride(from: 0, to: width, by: cell) { grid.fillRectangle(x: x, y: 0, width: 1, height: height, color: line) }
        for y in stride(from: 0, to: height, by: cell) { grid.fillRectangle(x: 0, y: y, width: width, height: 1, color: line) }
        let (h, w) = (picture.height / factor, picture.width / factor)
        var averaged = RGBImage(width: w, height: h)
        for py in 0..<h {
            for px in 0..<w {
                var sum = SIMD3<Int>()
                for y in (py * factor)..<((py + 1) * factor) {
                    for x in (px * factor)..<((px + 1) * factor) {
                        let colour = picture[x, y]
                        sum &+= SIMD3(Int(colour.red), Int(colour.green), Int(colour.blue))
                    }
                }
                let mean = sum / (factor * factor)
                averaged[px, py] = RGBColor(UInt8(mean.x), UInt8(mean.y), UInt8(mean.z))
            }
        }
        averaged = averaged.resized(width: width, height: height, filter: .nearest)
        return RGBImage.sideBySide([grid, averaged], labels: [
            "\(picture.width)x\(picture.height) pixels: each square is \(factor)x\(factor)x3 = \(factor * factor * 3) numbers",
            "\(w)x\(h) positions: the VAE keeps \(channels) numbers per square (shown: its average colour)",
        ], title: "what the encoder squeezes: one latent position per \(factor)x\(factor) patch, \(factor * factor * 3 / channels)x fewer numbers")
    }

    /// One UNet step on 64x64 latents against the same UNet on 512x512 pixels.
    func compareCosts(configuration: StableDiffusionConfiguration, describedAs name: String, narrator: Narrator,
                      out: LessonOutput) throws {
        let factor = configuration.vae.downsamplingFactor
        var pixelUNet = configuration.unet                                  // the same network, fed RGB
        pixelUNet.inChannels = 3
        pixelUNet.outChannels = 3
        let latent = UNetCost(configuration: configuration.unet, height: 512 / factor, width: 512 / factor, batch: 2)
        let pixel = UNetCost(configuration: pixelUNet, height: 512, width: 512, batch: 2)
        narrator.say("\(name), one denoising step with classifier-free guidance (batch 2), counted from the architecture:")
        narrator.show(pad("", 40) + pad("64x64 latents", 18) + pad("512x512 pixels", 18) + "ratio")
        func row(_ label: String, _ a: Double, _ b: Double, _ format: (Double) -> String) {
            narrator.show(pad(label, 40) + pad(format(a), 18) + pad(format(b), 18) + String(format: "%.0fx", b / a))
        }
        row("arithmetic per step", latent.gflop, pixel.gflop) { formatFlops(gflop: $0) }
        row("skip connections kept for the up path", latent.skipBytes, pixel.skipBytes, formatBytes)
        row("one self-attention score matrix", latent.attentionScoreBytes, pixel.attentionScoreBytes, formatBytes)
        row("widest feature map (feed-forward)", latent.feedForwardBytes, pixel.feedForwardBytes, formatBytes)
        row("these activations together", latent.totalBytes, pixel.totalBytes, formatBytes)
        let vaeFlops = try AutoencoderKL.flops(configuration: configuration.vae, height: 512, width: 512)
        let steps = 50.0
        let latentRun = steps * latent.gflop + Double(vaeFlops.decode) / 1e9
        let pixelRun = steps * pixel.gflop
        narrator.say("A whole 50-step picture: \(formatFlops(gflop: latentRun)) in latent space (the VAE decode included, once), \(formatFlops(gflop: pixelRun)) on pixels, \(String(format: "%.0f", pixelRun / latentRun))x more.")
        narrator.say("Convolutions and linear layers grow with the number of positions (64x more on pixels); self-attention compares every position with every other, so its score matrix grows with the square: (512 x 512)² / (64 x 64)² = 4096x. At 64x64 the scores fit in a graphics card; at 512x512 they would fill \(formatBytes(pixel.attentionScoreBytes)) for one layer. (Float32 throughout; float16 on a GPU halves every memory figure, and memory-efficient attention avoids storing the scores, but not the arithmetic.)")
        var csv = "quantity,latent_64x64,pixels_512x512\n"
        csv += "gflop_per_step,\(latent.gflop),\(pixel.gflop)\n"
        csv += "skip_bytes,\(latent.skipBytes),\(pixel.skipBytes)\n"
        csv += "attention_score_bytes,\(latent.attentionScoreBytes),\(pixel.attentionScoreBytes)\n"
        csv += "feed_forward_bytes,\(latent.feedForwardBytes),\(pixel.feedForwardBytes)\n"
        csv += "gflop_50_steps,\(latentRun),\(pixelRun)\n"
        narrator.show("wrote " + (try out.save(text: csv, as: "08-unet-cost.csv")))
        narrator.show("wrote " + (try out.save(costChart(latent: latent, pixel: pixel), as: "08-unet-cost.png")))
    }

    /// Two pairs of bars on a logarithmic scale: arithmetic and activation memory per step.
    func costChart(latent: UNetCost, pixel: UNetCost) -> RGBImage {
        let width = 760, barLeft = 230, barRight = width - 150, rowHeight = 34
        let font = BitmapFont.forImageWidth(width)
        var image = RGBImage(width: width, height: 300, color: RGBColor(hex: 0x1B1B1F))
        let text = RGBColor(hex: 0xF2F2F2), latentColour = RGBColor(hex: 0x4CB07A), pixelColour = RGBColor(hex: 0xE0604A)
        image.drawText("one UNet step with guidance (batch 2); log scale: each 10x adds the same length", x: 16, y: 12, font: font, color: text)
        let groups: [(String, Double, Double, (Double) -> String)] = [
            ("arithmetic", latent.gflop * 1e9, pixel.gflop * 1e9, { formatFlops(gflop: $0 / 1e9) }),
            ("activation memory (float32)", latent.totalBytes, pixel.totalBytes, formatBytes),
        ]
        var y = 50
        for (title, a, b, format) in groups {
            image.drawText(title + String(format: ": %.0fx", b / a), x: 16, y: y, font: font, color: text)
            y += rowHeight
            // Bars start at 1/1000 of the smaller value, so both are visible and the ratio reads as length.
            let low = log10(a) - 3, high = log10(b)
            for (label, value, colour) in [("64x64 latents", a, latentColour), ("512x512 pixels", b, pixelColour)] {
                let length = Int(Double(barRight - barLeft) * (log10(value) - low) / (high - low))
                image.drawText(label, x: 32, y: y + 6, font: font, color: text)
                image.fillRectangle(x: barLeft, y: y, width: max(2, length), height: rowHeight - 10, color: colour)
                image.drawText(format(value), x: barLeft + length + 8, y: y + 6, font: font, color: text)
                y += rowHeight
            }
            y += 18
        }
        return image
    }

    // MARK: - Decoding a .npy file

    /// Reads `path` and checks it is `(1, channels, h, w)`; throws a one-sentence error otherwise.
    func readLatents(_ path: String, channels: Int) throws -> Tensor {
        let tensor = try NumPyFile.read(path)
        guard tensor.rank == 4, tensor.shape[0] == 1, tensor.shape[1] == channels,
              (1...256).contains(tensor.shape[2]), (1...256).contains(tensor.shape[3]) else {
            throw LessonError("'\(path)' has shape \(shapeText(tensor.shape)); --load-latents needs (1, \(channels), h, w) with h and w from 1 to 256, as --save-latents writes it")
        }
        guard tensor.scalars.allSatisfy(\.isFinite) else {
            throw LessonError("'\(path)' contains NaN or infinite numbers")
        }
        return tensor
    }

    func decodeLoadedLatents(_ z: Tensor, from path: String, vae: AutoencoderKL, narrator: Narrator,
                             out: LessonOutput) throws {
        narrator.stage("Decoding latents from \(path)")
        let (h, w) = (z.shape[2], z.shape[3])
        narrator.say("Shape \(shapeText(z.shape)), " + String(format: "values from %+.2f to %+.2f, standard deviation %.3f (read as scaled latents, as the UNet sees them and as --save-latents writes them).",
                            z.range.min, z.range.max, z.standardDeviation))
        let decoded = RGBImage(tensor: try vae.decode(scaledLatents: z))
        narrator.say("Decoded to \(decoded.width)x\(decoded.height) pixels: \(grouped(z.count)) numbers became \(grouped(3 * decoded.width * decoded.height)).")
        narrator.preview(decoded)
        let zoom = max(1, 256 / max(decoded.width, decoded.height))
        let (width, height) = (decoded.width * zoom, decoded.height * zoom)
        let preview = RGBImage(tensor: LatentPreview.rgb(z)).resized(width: width, height: height, filter: .nearest)
        let panel = RGBImage.sideBySide([preview, decoded.resized(width: width, height: height, filter: .nearest)], labels: ["\(w)x\(h)x4 latents (mixed to RGB)", "decoded"],
                                        title: "decode(" + (path as NSString).lastPathComponent + " / 0.18215)")
        narrator.show("wrote " + (try out.save(panel, as: "decoded-latents.png", extra: [("latents", (path as NSString).lastPathComponent)])))
        narrator.say("Files written:\n" + out.summary)
    }
}

// MARK: - Measurements

/// PSNR in dB between two `(1, 3, H, W)` pictures in [−1, 1], each clamped to [0, 1] first.
func peakSignalToNoise(_ a: Tensor, _ b: Tensor) -> Double {
    var sum = 0.0
    for (u, v) in zip(a.scalars, b.scalars) {
        let d = Double(min(max((u + 1) / 2, 0), 1) - min(max((v + 1) / 2, 0), 1))
        sum += d * d
    }
    let mse = max(sum / Double(a.count), 1e-12)
    return 10 * log10(1 / mse)
}

/// `(H, W)`: the absolute difference of two pictures averaged over the colour channels, on a 0-1 scale.
func pixelDifference(_ a: Tensor, _ b: Tensor) -> Tensor {
    let (height, width) = (a.shape[2], a.shape[3]), plane = height * width
    var out = Tensor.zeros([height, width])
    for c in 0..<3 {
        for i in 0..<plane {
            let u = min(max((a.scalars[c * plane + i] + 1) / 2, 0), 1)
            let v = min(max((b.scalars[c * plane + i] + 1) / 2, 0), 1)
            out.scalars[i] += abs(u - v) / 3
        }
    }
    return out
}

/// The share of signal to noise in x_t for this particular x₀: ᾱ·Var(x₀) / ((1 − ᾱ)·1).
func signalToNoise(_ x0: Tensor, _ t: Int, _ schedule: NoiseSchedule) -> Double {
    let variance = Double(x0.standardDeviation * x0.standardDeviation)
    return schedule.alphasCumprod[t] * variance / (1 - schedule.alphasCumprod[t])
}

/// The channels of a `(1, C, h, w)` tensor, each `(1, 1, h, w)`.
func channels(of z: Tensor) -> [Tensor] {
    let plane = z.shape[2] * z.shape[3]
    return (0..<z.shape[1]).map { c in
        Tensor(shape: [1, 1, z.shape[2], z.shape[3]], scalars: Array(z.scalars[(c * plane)..<((c + 1) * plane)]))
    }
}

// MARK: - Formatting

func shapeText(_ shape: [Int]) -> String { "(" + shape.map(String.init).joined(separator: ", ") + ")" }

/// 786432 → "786,432".
func grouped(_ n: Int) -> String {
    let digits = String(n)
    var out = ""
    for (i, ch) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
        out.append(ch)
    }
    return out
}

func padLeft(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
}
