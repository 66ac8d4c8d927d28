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
/// on latents against pixels. By default the VAE is the shipped shapes model's, working on a
/// drawn shape; with `--checkpoint none` the lesson teaches everything that needs only shapes.
/// The numbers come from `LessonKit`; the stages that need the VAE's weights are in
/// `VAELatents+VAE.swift`.
///
/// ```
/// vae-latents                                              # the shapes model's VAE, no download needed
/// vae-latents --checkpoint v1-5-pruned-emaonly.safetensors --image photo.jpg --save-latents z.npy
/// vae-latents --checkpoint v1-5-pruned-emaonly.safetensors --load-latents z.npy
/// ```
@main
struct VAELatents: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vae-latents",
        abstract: "Lesson 3: squeeze a picture into 4 x H/8 x W/8 latents and back, and see what that saves.",
        discussion: "The lesson text is in Lessons/03-vae-latents.md.")

    @Option(help: """
        A PNG or JPEG picture (default: a drawn red circle with the shapes model, else Examples/hills.png, drawn by \
        code).
        """)
    var image: String?

    @Option(help: """
        A Stable Diffusion 1.x checkpoint: a .safetensors file or a diffusers folder (default: $SD_CHECKPOINT, else \
        the shipped shapes model; 'none': no VAE).
        """)
    var checkpoint: String?

    @Option(help: """
        The picture is scaled so that its longer side has this many pixels, then to multiples of 8 (64...1024; \
        default 256, and 64 for the shapes model's own picture).
        """)
    var size: Int?

    @Option(help: """
        Timesteps at which to compare noise in latent space with noise on pixels, comma-separated, each in 0...999.
        """)
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

    @OptionGroup var kernelsOption: KernelsOption

    mutating func validate() throws {
        _ = try parsedTimesteps()
        if let size, !(64...1024).contains(size) {
            throw ValidationError("--size must be between 64 and 1024, got \(size)")
        }
        if let saveLatents {
            guard saveLatents.hasSuffix(".npy") else {
                throw ValidationError("--save-latents: '\(saveLatents)' must end in .npy")
            }
            let folder = (saveLatents as NSString).deletingLastPathComponent
            var isFolder: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) && isFolder.boolValue
            guard folder.isEmpty || exists else {
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
        let model = LessonCheckpoint.model(checkpoint)
        if model == nil, saveLatents != nil || loadLatents != nil {
            throw LessonError("--\(saveLatents != nil ? "save" : "load")-latents needs a checkpoint's VAE, and none was given. "
                              + LessonCheckpoint.howToGetOne)
        }
        let pipeline = try model.map { try LessonCheckpoint.pipeline($0.path) }
        let vae: AutoencoderKL? = try pipeline.map { pipeline in
            do { return try pipeline.vae() } catch { throw LessonError("cannot use checkpoint: \(error)") }
        }
        // The colour projection of this VAE's latents, for the pictures that show them without decoding.
        let preview = try pipeline.map { try $0.latentPreview() }
        let sdConfiguration = pipeline?.configuration ?? .sd15
        let loaded = try loadLatents.map { try readLatents($0, channels: sdConfiguration.vae.latentChannels) }
        let drawsShape = model?.isShapesModel == true && image == nil
        let input = loaded != nil ? nil : drawsShape ? Self.shapePicture : try InputPicture.load(image)
        let side = size ?? (drawsShape ? TinyShapesModel.pictureSize : 256)

        let out = try LessonOutput(output, parameters: [
            ("lesson", "vae-latents"), ("seed", "\(seed)"), ("checkpoint", model?.name ?? "none"),
        ])
        if model?.isShapesModel == true { narrator.say(LessonCheckpoint.aboutTheShapesModel) }

        // --load-latents: decode the file and stop (a VAE and the latents were checked above).
        if let vae, let loaded, let loadLatents {
            try decodeLoadedLatents(loaded, from: loadLatents, vae: vae, preview: preview ?? .sd15, narrator: narrator,
                                    out: out)
            return
        }
        guard let (picture, source) = input else { return }                // loaded above whenever latents were not

        let clean = try showPicture(picture, source: source, side: side, narrator, out)
        try showStages(configuration: sdConfiguration.vae, picture: clean, narrator, out)
        try showCompression(configuration: sdConfiguration.vae, picture: clean, narrator, out)
        if let vae {
            try runTheVAE(vae, preview: preview ?? .sd15, clean: clean, narrator: narrator, out: out)
        } else {
            explainWhatNeedsWeights(narrator)
        }
        // The cost of diffusion on pixels is SD's story: the shapes model's UNet would make it about tiny numbers.
        let named = model?.isShapesModel == false
        try showCosts(configuration: named ? sdConfiguration : .sd15,
                      describedAs: named ? "this checkpoint's UNet" : "SD 1.5's UNet", narrator, out)

        narrator.stage("Done")
        narrator.say("Files written:\n" + out.summary)
        if model?.isShapesModel == true {
            narrator.say("""
                With SD 1.5 (--checkpoint PATH) the VAE is the same design with 128 to 512 channels and 2 ResNets per \
                level instead of 16 to 32 and 1, trained on photos: any picture comes back at about 23-27 dB, and its \
                scaling factor is 0.18215.
                """)
        }
        narrator.say("Next: Lessons/04-cross-attention.md shows how the prompt steers the UNet.")
    }

    /// The shapes model's picture: a red circle on the left, from the held-out pictures no training run saw.
    static var shapePicture: (image: RGBImage, source: String) {
        let scene = TinyShapesModel.heldOut.scene(colour: .red, shape: .circle, position: .left, index: 0)
        return (RGBImage(tensor: scene.render(size: TinyShapesModel.pictureSize)),
                "'\(scene.caption)', drawn by code (a held-out picture: the shapes model never saw it)")
    }

    // MARK: - The stages that need only shapes

    /// Stage 1: the picture, as numbers.
    func showPicture(_ picture: RGBImage, source: String, side: Int, _ narrator: Narrator,
                     _ out: LessonOutput) throws -> RGBImage {
        narrator.stage("The picture x: numbers the UNet would have to work on")
        let clean = picture.thumbnail(maxSide: side).resizedToMultiple(of: 8)
        let numbers = Format.grouped(3 * clean.height * clean.width)
        narrator.say("Using \(source), scaled to \(clean.width)x\(clean.height) (the VAE needs multiples of 8).")
        narrator.say("""
            That is 3 x \(clean.height) x \(clean.width) = \(numbers) numbers in [−1, 1]. Diffusion would have to \
            denoise every one of them, dozens of times, with SD 1.5's UNet of 860 million weights.
            """)
        narrator.preview(clean)
        let caption = "x: \(clean.width)x\(clean.height)x3 = \(numbers) numbers"
        narrator.show("wrote " + (try out.save(clean.captioned(caption), as: "00-input.png")))
        narrator.pause()
        return clean
    }

    /// Stage 2: the encoder and decoder on paper (shapes only: no weights needed), also as CSV.
    func showStages(configuration: VAEConfiguration, picture: RGBImage, _ narrator: Narrator, _ out: LessonOutput) throws {
        narrator.stage("The VAE on paper: every stage's shape")
        let table = try VAEStageTable(configuration: configuration, height: picture.height, width: picture.width)
        narrator.say("""
            The encoder halves the picture three times while widening the channels, then squeezes the result into \
            4 channels (mean) plus 4 more (log-variance). The decoder walks back up. Shapes are (batch, channels, \
            height, width):
            """)
        var csv = "network,stage,batch,channels,height,width,numbers,gflop\n"
        for (i, row) in table.rows.enumerated() {
            if i == 0 || table.rows[i - 1].network != row.network { narrator.show("\(row.network):") }
            narrator.show("  " + row.name.padded(to: 40) + Format.shape(row.shape).padded(to: 20)
                          + Format.grouped(row.numbers).rightAligned(to: 12) + " numbers" + String(format: "%9.2f GFLOP", row.gflop))
            csv += "\(row.network),\(row.name),\(row.shape.map(String.init).joined(separator: ",")),\(row.numbers),\(row.gflop)\n"
        }
        narrator.say("""
            One encode costs \(Format.flops(gflop: Double(table.encodeFlops) / 1e9)), one decode \
            \(Format.flops(gflop: Double(table.decodeFlops) / 1e9)). The biggest tensor on the way is \
            \(table.widest.name) with \(Format.grouped(table.widest.numbers)) numbers: the VAE is expensive, but it \
            runs once per picture, not once per denoising step.
            """)
        narrator.show("wrote " + (try out.save(text: csv, as: "01-vae-stages.csv")))
        narrator.pause()
    }

    /// Stage 3: 48x fewer numbers, for SD's native 512x512 and for this picture.
    func showCompression(configuration: VAEConfiguration, picture: RGBImage, _ narrator: Narrator, _ out: LessonOutput) throws {
        narrator.stage("The compression: 48x fewer numbers")
        let factor = configuration.downsamplingFactor, latent = configuration.latentChannels
        let examples = LatentCompression.examples(width: picture.width, height: picture.height, configuration: configuration)
        for c in examples {
            narrator.show("\(c.width)x\(c.height)".rightAligned(to: 9) + " x 3 = " + Format.grouped(c.pixelNumbers).rightAligned(to: 9)
                          + " numbers  ->  " + "\(c.latentWidth)x\(c.latentHeight)".rightAligned(to: 7) + " x \(latent) = "
                          + Format.grouped(c.latentNumbers).rightAligned(to: 7) + String(format: " numbers:  %.0fx fewer", c.ratio))
        }
        narrator.say("""
            Where 48 comes from: each side shrinks \(factor)x, so the area shrinks \(factor) x \(factor) = \
            \(factor * factor)x; 3 colour channels become \(latent) latent channels, so 64 x 3 / 4 = 48.
            """)
        let native = examples[0].bytes
        narrator.say("""
            As float32 a 512x512 picture is \(Format.bytes(native.pixels)); its latent is \
            \(Format.bytes(native.latents)). But the real saving is not in storing the input: it is in everything \
            the UNet computes from it at every step, which grows with the number of positions (64x) and, in \
            attention, with its square (4096x).
            """)
        narrator.say("""
            02-patches.png cuts x into those patches. A 4-number code per patch can hold much more than the patch's \
            average colour shown on the right (edges, texture, shading), but not everything; with a checkpoint, the \
            decoding stage measures what is lost.
            """)
        narrator.show("wrote " + (try out.save(patchPicture(picture, factor: factor, channels: latent), as: "02-patches.png")))
        narrator.pause()
    }

    /// Instead of stages 4-8: what they need, and how to get it.
    func explainWhatNeedsWeights(_ narrator: Narrator) {
        narrator.stage("Encoding and decoding need the VAE's weights")
        narrator.say("""
            Everything so far came from the architecture alone. To see real latents, what the decoder makes of \
            them, and noise in latent space, the lesson needs a checkpoint.
            """)
        narrator.say(LessonCheckpoint.howToGetOne)
        narrator.say("Then run: swift run -c release vae-latents --checkpoint PATH")
        narrator.pause()
    }

    /// The last stage: one UNet step on 64x64 latents against the same UNet on 512x512 pixels.
    func showCosts(configuration: StableDiffusionConfiguration, describedAs name: String, _ narrator: Narrator,
                   _ out: LessonOutput) throws {
        narrator.stage("What diffusion in latent space saves")
        let cost = try DiffusionCost(configuration: configuration)
        let (latent, pixel) = (cost.latent, cost.pixel)
        narrator.say("\(name), one denoising step with classifier-free guidance (batch 2), counted from the architecture:")
        narrator.show("".padded(to: 40) + "64x64 latents".padded(to: 18) + "512x512 pixels".padded(to: 18) + "ratio")
        func row(_ label: String, _ a: Double, _ b: Double, _ format: (Double) -> String) {
            narrator.show(label.padded(to: 40) + format(a).padded(to: 18) + format(b).padded(to: 18) + String(format: "%.0fx", b / a))
        }
        row("arithmetic per step", latent.gflop, pixel.gflop) { Format.flops(gflop: $0) }
        row("  of it convolutions and linear layers", latent.gflop - latent.selfAttentionGFLOP,
            pixel.gflop - pixel.selfAttentionGFLOP) { Format.flops(gflop: $0) }
        row("  of it self-attention's products", latent.selfAttentionGFLOP, pixel.selfAttentionGFLOP) { Format.flops(gflop: $0) }
        row("skip connections kept for the up path", latent.skipBytes, pixel.skipBytes, Format.bytes)
        row("one self-attention score matrix", latent.attentionScoreBytes, pixel.attentionScoreBytes, Format.bytes)
        row("widest feature map (feed-forward)", latent.feedForwardBytes, pixel.feedForwardBytes, Format.bytes)
        row("these activations together", latent.totalBytes, pixel.totalBytes, Format.bytes)
        narrator.say("""
            A whole 50-step picture: \(Format.flops(gflop: cost.latentRunGFLOP)) in latent space (the VAE decode \
            included, once), \(Format.flops(gflop: cost.pixelRunGFLOP)) on pixels, \
            \(String(format: "%.0f", cost.runRatio))x more.
            """)
        narrator.say("""
            Convolutions and linear layers grow with the number of positions (64x more on pixels); self-attention \
            compares every position with every other, so its products and its score matrix grow with the square: \
            (512 x 512)² / (64 x 64)² = 4096x. \(String(format: "%.0f", 100 * pixel.selfAttentionGFLOP / pixel.gflop))% of \
            the pixel-space figure is that attention, so the comparison is with a UNet no one would build: real \
            pixel-space models attend only at their coarse levels (or in windows), and cut the picture's size in \
            cascades of models. Even then, every convolution still does 64x the work. At 64x64 the scores fit in a graphics card; at 512x512 they would fill \
            \(Format.bytes(pixel.attentionScoreBytes)) for one layer. (Float32 throughout; float16 on a GPU halves \
            every memory figure, and memory-efficient attention avoids storing the scores, but not the arithmetic.)
            """)
        var csv = "quantity,latent_64x64,pixels_512x512\n"
        csv += "gflop_per_step,\(latent.gflop),\(pixel.gflop)\n"
        csv += "skip_bytes,\(latent.skipBytes),\(pixel.skipBytes)\n"
        csv += "attention_score_bytes,\(latent.attentionScoreBytes),\(pixel.attentionScoreBytes)\n"
        csv += "feed_forward_bytes,\(latent.feedForwardBytes),\(pixel.feedForwardBytes)\n"
        csv += "gflop_50_steps,\(cost.latentRunGFLOP),\(cost.pixelRunGFLOP)\n"
        narrator.show("wrote " + (try out.save(text: csv, as: "08-unet-cost.csv")))
        narrator.show("wrote " + (try out.save(costChart(latent: latent, pixel: pixel), as: "08-unet-cost.png")))
    }
}
