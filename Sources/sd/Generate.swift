import ArgumentParser
import Foundation
import FrameExport
import LessonKit
import StableDiffusion
import TensorCore

/// `sd generate`: text to image (or image to image) with a Stable Diffusion 1.x checkpoint.
///
/// ```
/// sd generate --checkpoint v1-5-pruned-emaonly.safetensors \
///     --prompt "a lighthouse at dawn, oil painting" --seed 42 --output lighthouse.png
/// sd generate --prompt "the same, in winter" --init-image lighthouse.png --strength 0.6 \
///     --scheduler euler-a --gif steps.gif --output winter.png      # checkpoint from $SD_CHECKPOINT
/// ```
///
/// For the same checkpoint, prompt, seed, size, steps, guidance and scheduler the picture equals
/// what diffusers makes on a CPU with `torch.Generator("cpu").manual_seed(seed)`.
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make a picture from a prompt (and optionally a starting picture).")

    @OptionGroup var checkpointOption: CheckpointOption
    @OptionGroup var kernelsOption: KernelsOption

    @Option(help: "What to draw (may be empty: unconditional).")
    var prompt: String

    @Option(help: "What to steer away from (default: empty).")
    var negativePrompt = ""

    @Option(help: "Sampling steps (1...1000).")
    var steps = 25

    @Option(help: "Classifier-free guidance scale; 1 or less turns guidance off.")
    var cfg: Float = 7.5

    @Option(help: "Seed of the random numbers (same as torch.manual_seed).")
    var seed: UInt64 = 0

    @Option(help: "Width in pixels, a multiple of 8 (default: the model's own size, 512 for SD 1.x).")
    var width: Int?

    @Option(help: "Height in pixels, a multiple of 8 (default: the model's own size).")
    var height: Int?

    @Option(help: "Sampler: \(SchedulerKind.allCases.map(\.rawValue).joined(separator: ", ")).")
    var scheduler: SchedulerKind = .pndm

    @Option(help: ArgumentHelp("A standalone VAE to use instead of the checkpoint's: .safetensors, .ckpt or a diffusers vae/ folder.", valueName: "path"))
    var vae: String?

    @Option(name: .customLong("lora"), help: ArgumentHelp(
        "A LoRA file (kohya or diffusers/PEFT) merged into the weights, with an optional strength: --lora style.safetensors:0.8. Repeatable.",
        valueName: "file[:strength]"))
    var loras: [LoRAArgument] = []

    @Option(help: "A PNG or JPEG to start from (img2img); its own size (rounded down to a multiple of 8) unless --width/--height say otherwise.")
    var initImage: String?

    @Option(help: "img2img: how much to change the init image, in (0, 1].")
    var strength = 0.8

    @Option(help: "Where to write the PNG.")
    var output: String

    @Option(help: "Also write an animated GIF with one frame per denoising step.")
    var gif: String?

    @Option(help: "Also write one PNG per denoising step into this folder.")
    var frames: String?

    @Option(help: "How frames show latents: fast (linear colour projection), taesd (the tiny autoencoder, needs --taesd) or vae (the real decoder, slow).")
    var preview: FramePreview = .fast

    @Option(help: "What draws the final picture: vae (the checkpoint's) or taesd (the tiny autoencoder, much faster, a little softer; needs --taesd).")
    var decoder: PictureDecoder = .vae

    @Option(help: ArgumentHelp("TAESD, the tiny autoencoder: taesd_decoder.safetensors, a folder with it, or a diffusers AutoencoderTiny folder.", valueName: "path"))
    var taesd: String?

    @Option(name: .customLong("vae-tile"),
            help: "Decode the picture in tiles of this many pixels (a multiple of 64, e.g. 256) to save memory on small machines; changes the picture slightly.")
    var vaeTile: Int?

    @Flag(name: .customLong("use-ema"), help: "Use the UNet's EMA weights (model_ema.*) of a training checkpoint such as sd-v1-4.ckpt.")
    var useEMA = false

    func validate() throws {
        if (decoder == .taesd || preview == .taesd) && taesd == nil {
            throw ValidationError("--decoder taesd and --preview taesd need the tiny autoencoder's file: --taesd taesd_decoder.safetensors")
        }
    }

    func run() throws {
        let path = try checkpointOption.resolved()
        let pipeline = try StableDiffusionPipeline(checkpoint: path, useEMA: useEMA, vae: vae,
                                                   loras: loras.map { ($0.path, $0.strength) })
        if let taesd { pipeline.tinyAutoencoder = try TinyAutoencoder.load(taesd) }
        let picture = try initImage.map { try RGBImage(contentsOfFile: $0) }
        // Text-to-image draws at the size the model was trained at, as diffusers picks it (the
        // UNet's sample size × 8); img2img keeps the init image's size, each side rounded down to a
        // multiple of 8 (the VAE's factor), as diffusers does.
        let modelSize = pipeline.configuration.unet.sampleSize * 8
        let defaultSize: (width: Int, height: Int) = picture.map { ($0.width / 8 * 8, $0.height / 8 * 8) } ?? (modelSize, modelSize)
        let width = self.width ?? defaultSize.width
        let height = self.height ?? defaultSize.height
        var request = GenerationRequest(prompt: prompt, negativePrompt: negativePrompt, steps: steps, guidanceScale: cfg,
                                        seed: seed, width: width, height: height, scheduler: scheduler)
        request.strength = strength
        request.vaeTileSize = vaeTile
        request.decoder = decoder
        if let picture { request.initImage = try startingPicture(picture, width: width, height: height) }
        try request.validate()
        try checkOutputPaths()

        if let warning = try truncationWarning(pipeline) { printError(warning) }
        if let notice = PromptWords.unlearnedWordsNotice(prompt + " " + negativePrompt, tokenizer: try pipeline.tokenizer()) {
            printError("note: " + notice)
        }
        let recorder = FrameRecorder(pipeline: pipeline, preview: preview, width: width, height: height,
                                     enabled: gif != nil || frames != nil)
        let progress = ProgressBar(total: request.steps)
        let (result, kernels) = try Kernels.counting {
            try pipeline.generate(request, onStep: { step in
                progress.update(step.index + 1, total: step.count, detail: String(format: "t=%.0f", step.timestep))
                recorder.record(step)
            })
        }
        progress.finish()

        try AtomicFile.write(GeneratedPicture.pngData(result.image, request: request, extras: extraParameters()), to: output)
        print("wrote \(output)")
        if let gif {
            try recorder.animation().write(to: gif)
            print("wrote \(gif) (\(recorder.frames.count) frames)")
        }
        if let frames {
            try recorder.writeFrames(to: frames)
            print("wrote \(recorder.frames.count) frames to \(frames)/")
        }
        print("time per stage:")
        for (stage, seconds) in result.timings + recorder.timings {
            print("  " + stage.padding(toLength: 14, withPad: " ", startingAt: 0) + String(format: "%8.2f s", seconds))
        }
        print(KernelsOption.report(kernels))
    }

    /// The init image as the `(1, 3, height, width)` tensor img2img starts from. When only the
    /// rounding to multiples of 8 separates the sizes, the few extra pixels are cut off (no
    /// resampling); otherwise the picture is scaled to cover the size and cropped, with a note.
    func startingPicture(_ picture: RGBImage, width: Int, height: Int) throws -> Tensor {
        let size = "\(width)x\(height)", own = "\(picture.width)x\(picture.height)"
        if self.width == nil || self.height == nil, !(64...2048).contains(width) || !(64...2048).contains(height) {
            throw GenerationError.invalid("the init image is \(own) pixels; pictures from 64 to 2048 pixels a side can be used as they are, so pass --width and --height (for example --width 512 --height 512) to scale it")
        }
        let trim = (x: picture.width - width, y: picture.height - height)
        if (0..<8).contains(trim.x) && (0..<8).contains(trim.y) {
            if trim != (0, 0) { printError("note: the init image (\(own)) is cropped to \(size), a multiple of 8") }
            return picture.cropped(x: trim.x / 2, y: trim.y / 2, width: width, height: height).toTensor()
        }
        printError("note: the init image (\(own)) is scaled and cropped to \(size)")
        return picture.aspectFilled(width: width, height: height).toTensor()
    }

    /// Refuses to start a long run whose outputs cannot be written.
    func checkOutputPaths() throws {
        for file in [output] + (gif.map { [$0] } ?? []) {
            let folder = (file as NSString).deletingLastPathComponent
            var isDirectory: ObjCBool = false
            if !folder.isEmpty && !(FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) && isDirectory.boolValue) {
                throw ValidationError("the folder of '\(file)' does not exist")
            }
        }
        if let frames { try ensureDirectory(frames) }
    }

    func truncationWarning(_ pipeline: StableDiffusionPipeline) throws -> String? {
        let tokenizer = try pipeline.tokenizer()
        for (name, text) in [("prompt", prompt), ("negative prompt", negativePrompt)] {
            let tokens = tokenizer.tokenize(text)
            if tokens.truncatedCount > 0 {
                return "warning: the \(name) is \(tokens.tokens.count + tokens.truncatedCount) tokens long; CLIP reads only the first 75, so the last \(tokens.truncatedCount) are ignored"
            }
        }
        return nil
    }

    /// What the picture's `parameters` note says beyond the request's own settings.
    func extraParameters() -> [String] {
        var parts: [String] = []
        if let initImage { parts += ["init image: \(initImage)", "strength: \(strength)"] }
        if let vae { parts.append("vae: \(vae)") }
        if decoder == .taesd, let taesd { parts.append("decoder: taesd \(taesd)") }
        return parts + loras.map { "lora: \($0.path) at \($0.strength)" }
    }
}

/// `--preview fast|taesd|vae`
enum FramePreview: String, ExpressibleByArgument, CaseIterable {
    case fast, taesd, vae
}

extension PictureDecoder: ExpressibleByArgument {}


func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
