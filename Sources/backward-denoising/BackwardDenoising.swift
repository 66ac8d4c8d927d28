import ArgumentParser
import Foundation
import FrameExport
import LessonKit
import StableDiffusion
import TensorCore

/// Lesson 2: the reverse process. Start from pure noise and remove a little of it at every step,
/// steered by the text, until a picture remains.
///
/// First, with no download and no training, the denoiser is the exact, optimal one for a small
/// built-in set of pictures (`OptimalDenoiser`), driven by the very sampler code Stable Diffusion
/// uses (`DDIMScheduler`, with η = 0 for DDIM and η = 1 for DDPM's ancestral sampling). Then a
/// trained network takes its place: the shipped shapes model by default, or the checkpoint named
/// with `--checkpoint`, whose every step is opened up (`BackwardDenoising+Checkpoint.swift`).
/// The numbers come from `LessonKit`; this file narrates.
///
/// ```
/// backward-denoising                                        # built-in pictures, then the shapes model
/// backward-denoising --no-pause --checkpoint none --steps 50 --seed 7 --prompt sea
/// backward-denoising --prompt "a green triangle on the left" --cfg 1
/// backward-denoising --checkpoint v1-5-pruned-emaonly.safetensors --prompt "a red fox in snow"
/// ```
@main
struct BackwardDenoising: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backward-denoising",
        abstract: "Lesson 2: watch a sampler turn pure noise into a picture, step by step.",
        discussion: """
            The lesson first uses the exact denoiser of a small built-in picture set, then the shapes model \
            shipped in Examples/tiny-shapes (offline, under a minute). With --checkpoint (or SD_CHECKPOINT) it \
            runs that Stable Diffusion checkpoint instead; --checkpoint none keeps to the built-in pictures. \
            The lesson text is in Lessons/02-backward-denoising.md.
            """)

    @Option(help: ArgumentHelp("""
        A Stable Diffusion 1.x .safetensors file or diffusers folder (default: $SD_CHECKPOINT, else the shipped \
        shapes model; 'none': the built-in pictures only).
        """, valueName: "path"))
    var checkpoint: String?

    @Option(help: """
        What the model draws (default: '\(BackwardDenoising.shapesPrompt)' with the shapes model). With --checkpoint \
        none: words from the built-in pictures' labels, such as 'sea' or 'grass'.
        """)
    var prompt: String?

    @Option(help: "Sampling steps (1...1000).")
    var steps = 25

    @Option(help: "Seed of the starting noise (same as torch.manual_seed).")
    var seed: UInt64 = 42

    @Option(help: "Width in pixels, a multiple of 8 (default: the model's, 512 for SD 1.x and 64 for the shapes model).")
    var width: Int?

    @Option(help: "Height in pixels, a multiple of 8 (default: the model's).")
    var height: Int?

    @Option(help: "Sampler with a checkpoint: \(SchedulerKind.allCases.map(\.rawValue).joined(separator: ", ")).")
    var scheduler: SchedulerKind = .ddim

    @Option(help: """
        Classifier-free guidance scale w: ε = ε_uncond + w · (ε_text − ε_uncond); 1 or less turns it off \
        (default: 7.5, and 3 for the shapes model).
        """)
    var cfg: Float?

    @Option(help: "With a model: samplers for the comparison grid, comma-separated (or 'none').")
    var compareSamplers = "ddim,euler-a,dpmpp-2m-karras"

    @Option(help: "With a model: step counts for the comparison grid, comma-separated.")
    var compareSteps = "5,10"

    @Option(name: .customLong("editing"), help: ArgumentHelp("""
        With a model: the editing stage, img2img at several strengths and a negative prompt ('on' or 'off'; with a \
        Stable Diffusion checkpoint on a CPU it takes about three times as long as the main picture).
        """, valueName: "on|off"))
    var editingOption = "on"

    /// Whether the editing stage runs.
    var editing: Bool { editingOption == "on" }

    @Option(help: "Side of the built-in pictures in pixels (16...128).")
    var size = 48

    @Option(help: "Folder for the pictures, the animations and the numbers.")
    var output = "output/backward-denoising"

    @Flag(help: "Run straight through without waiting for Enter.")
    var noPause = false

    @OptionGroup var kernelsOption: KernelsOption

    static let defaultPrompt = "a lighthouse on a rocky coast at sunset, oil painting"
    static let shapesPrompt = "a blue triangle at the top"
    /// The timesteps at which stage 2 shows picture 1 to the denoiser.
    static let probeTimesteps = [999, 990, 980, 960, 900, 500]
    /// The words stage 5 steers with when no --prompt is given.
    static let defaultWords = ["sea", "grass", "square"]
    /// ᾱ_t of SD 1.5's training schedule in float32, as the samplers use it.
    static let alphasCumprod = NoiseSchedule.float32(.scaledLinear, betaStart: 0.00085, betaEnd: 0.012).alphasCumprod

    mutating func validate() throws {
        guard (1...1000).contains(steps) else {
            throw ValidationError("--steps must be between 1 and 1000 (the training schedule's length), got \(steps)")
        }
        if let cfg, !(cfg.isFinite && cfg >= 0) { throw ValidationError("--cfg must be 0 or more, got \(cfg)") }
        guard (16...128).contains(size) else { throw ValidationError("--size must be between 16 and 128, got \(size)") }
        if !["on", "off"].contains(editingOption) {
            throw ValidationError("--editing must be 'on' or 'off', got '\(editingOption)'")
        }
        let model = LessonCheckpoint.model(checkpoint)
        if let model {
            let drawing = drawing(model: model, side: 512)
            do { try request(drawing, scheduler: scheduler, steps: steps).validate() } catch { throw ValidationError("\(error)") }
            _ = try comparison()
        } else {
            if let prompt, PictureSet(size: 16).indices(matching: prompt).isEmpty {
                let labels = PictureSet(size: 16).pictures.map { "'\($0.label)'" }.joined(separator: ", ")
                throw ValidationError("""
                    --prompt '\(prompt)' matches none of the built-in pictures; without a checkpoint use words from \
                    their labels: \(labels)
                    """)
            }
        }
    }

    func run() throws {
        let narrator = Narrator(pauses: !noPause)
        narrator.title("Lesson 2 · Backward denoising",
                       subtitle: "from pure noise to a picture: remove a little noise at every step, steered by the text")
        switch LessonCheckpoint.model(checkpoint) {
        case nil:
            try runBuiltIn(narrator, next: nil)
        case let model? where model.isShapesModel:
            try runBuiltIn(narrator, next: model)
            try runWithModel(model, narrator: narrator, output: output + "/shapes-model")
        case let model?:
            try runWithModel(model, narrator: narrator, output: output)
        }
    }

    // MARK: - The perfect denoiser of a small picture set

    /// The built-in stages; `next` is the shapes model that takes over afterwards, if any.
    func runBuiltIn(_ narrator: Narrator, next: LessonModel?) throws {
        let set = PictureSet(size: size)
        let denoiser = OptimalDenoiser(matrix: set.matrix)
        let out = try LessonOutput(output, parameters: [
            ("lesson", "backward-denoising"), ("denoiser", "optimal for the built-in set"), ("seed", "\(seed)"),
            ("steps", "\(steps)"),
        ])
        var csv = ["sampler,step,timestep,alpha_bar,sigma,x_std,noise_std,x0_std,top_weight,top_picture"]

        try showTrainingSet(set, next: next, narrator, out)
        try showPerfectDenoiser(denoiser, set: set, narrator, out)
        let (ddim, ddpm) = try sampleFromNoise(denoiser, set: set, narrator, out)
        csv += ddim.steps.map { csvRow($0, sampler: "ddim") } + ddpm.steps.map { csvRow($0, sampler: "ddpm") }
        try showMemorisation(denoiser, set: set, narrator, out)
        csv += try showSteering(denoiser, set: set, narrator, out)
        try showToyShapes(narrator, out)

        narrator.show("wrote " + (try out.save(text: csv.joined(separator: "\n") + "\n", as: "steps.csv")))
        narrator.say("Files written:\n" + out.summary)
        if next == nil {
            narrator.stage("Done")
            narrator.say("""
                With a model (the shipped shapes model, found when you run from the project folder, or a Stable \
                Diffusion checkpoint named with --checkpoint PATH or SD_CHECKPOINT) the lesson goes on to open up \
                every step of a trained network.
                """)
        } else {
            narrator.say("""
                Now the same samplers with a trained network instead of the perfect denoiser: the shapes model, \
                which never stored its training pictures and has to draw from what it learned.
                """)
            narrator.pause()
        }
    }

    /// The shape every built-in sample has: one picture of the set.
    var pictureShape: [Int] { [1, 3, size, size] }

    /// Stage 1: the "training set".
    func showTrainingSet(_ set: PictureSet, next: LessonModel?, _ narrator: Narrator, _ out: LessonOutput) throws {
        narrator.stage("The training set")
        narrator.say("""
            The lesson starts in a tiny world of its own: \(set.pictures.count) pictures of \(size)x\(size) pixels, \
            drawn by code. Every number in its first stages is exact; nothing was trained.
            """)
        narrator.say(next == nil ? LessonCheckpoint.howToGetOne : """
            After these stages a trained network takes over: the shapes model shipped in \
            \(LessonCheckpoint.shapesModelFolder).
            """)
        narrator.preview(RGBImage.grid(set.pictures.map { RGBImage(tensor: $0.pixels) }, columns: 4), columns: 60)
        narrator.show("wrote " + (try out.save(trainingSetPicture(set), as: "00-training-set.png")))
        narrator.pause()
    }

    /// Stage 2: what the perfect denoiser predicts at each noise level.
    func showPerfectDenoiser(_ denoiser: OptimalDenoiser, set: PictureSet, _ narrator: Narrator,
                             _ out: LessonOutput) throws {
        narrator.stage("The perfect denoiser: x̂₀ = E[x₀ | x_t]")
        narrator.say("""
            Stable Diffusion's network is trained to answer one question: given the noisy x_t and t, what noise ε \
            is in it? Equivalently, what was the clean x₀? For a finite set of pictures the best possible answer \
            can be written down. x_t came from picture i with probability
            """)
        narrator.show("w_i = softmax_i( −‖x_t − √ᾱ_t · x⁽ⁱ⁾‖² / (2 (1 − ᾱ_t)) )")
        narrator.say("""
            and the best guess is the weighted average x̂₀ = Σ w_i x⁽ⁱ⁾. The noise the sampler needs follows: \
            ε̂ = (x_t − √ᾱ_t · x̂₀) / √(1 − ᾱ_t). Here picture 1 ('\(set.pictures[0].label)') is noised to several \
            t and shown to the denoiser:
            """)
        let schedule = Self.alphasCumprod
        var generator = TorchGenerator(seed: seed)
        let probes = denoiser.probe(picture: 0, pixels: set.pictures[0].pixels, noise: generator.randn(pictureShape),
                                    timesteps: Self.probeTimesteps, alphasCumprod: schedule)
        narrator.show("   t      ᾱ_t   weight of picture 1   largest other weight   x̂₀ is")
        for probe in probes {
            let verdict = switch probe.certainty {
            case .certain: "picture 1"
            case .blend: "a blend of several pictures"
            case .emerging: "a blend, picture 1 emerging"
            }
            narrator.show(String(format: "%4d   %.4f          %.3f                 %.3f            %@", probe.timestep,
                                 probe.alphaBar, probe.weight, probe.largestOther, verdict))
        }
        narrator.say(String(format: """
            At t = 999 only √ᾱ = %.3f of the picture's amplitude is left, yet the denoiser already gives picture 1 a \
            weight of %.2f, and from t = 900 on it is certain. The reason is the number of dimensions: a tiny signal \
            in each of %d numbers adds up. The noise spreads x_t over a sphere of radius √%d ≈ %.0f, but the \
            centres √ᾱ·x⁽ⁱ⁾ of the different pictures are still far enough apart to tell which one x_t came from. \
            (With --size 16 the pictures have 768 numbers and the blend lasts longer.)
            """, schedule[999].squareRoot(), probes[0].weight, set.dimensions, set.dimensions, set.noiseRadius))
        narrator.show("wrote " + (try out.save(probePicture(probes), as: "01-perfect-denoiser.png")))
        narrator.pause()
    }

    /// Stage 3: DDIM and DDPM from pure noise.
    func sampleFromNoise(_ denoiser: OptimalDenoiser, set: PictureSet, _ narrator: Narrator,
                         _ out: LessonOutput) throws -> (ddim: SamplerRun, ddpm: SamplerRun) {
        narrator.stage("From pure noise to a picture: DDIM and DDPM")
        narrator.say("""
            Now the real thing: start from x_T ~ N(0, I), pure noise from seed \(seed), and hand it to the same \
            sampler code Stable Diffusion uses, \(steps) steps. At every step the sampler asks the denoiser for ε̂, \
            computes x̂₀ and moves to the next, less noisy timestep:
            """)
        narrator.show("DDIM (η = 0): x_prev = √ᾱ_prev · x̂₀ + √(1 − ᾱ_prev) · ε̂                  (deterministic)")
        narrator.show("DDPM (η = 1): x_prev = √ᾱ_prev · x̂₀ + √(1 − ᾱ_prev − s²) · ε̂ + s · z       (fresh noise z of size s)")
        let ddim = try denoiser.sample(shape: pictureShape, steps: steps, eta: 0, seed: seed)
        let ddpm = try denoiser.sample(shape: pictureShape, steps: steps, eta: 1, seed: seed)
        narrator.say("""
            In the table, sigma is the noise level measured against the picture, σ = √((1 − ᾱ)/ᾱ) (x_t/√ᾱ = x₀ + σ·ε), \
            not DDPM's fresh-noise size s:
            """)
        narrator.show("step     t     ᾱ_t    sigma   DDIM: std x_t  top weight      DDPM: std x_t  top weight")
        for i in StepSelection.evenlySpaced(ddim.steps.count, count: 8) {
            let d = ddim.steps[i], p = ddpm.steps[i]
            narrator.show(String(format: "%4d   %3d   %.4f  %6.2f        %.3f       %.3f               %.3f       %.3f",
                                 i + 1, d.timestep, d.alphaBar, d.sigma, d.latents.standardDeviation, d.topWeight,
                                 p.latents.standardDeviation, p.topWeight))
        }
        let stride = 1000 / steps
        narrator.say("""
            Why the first step is t = \(ddim.steps[0].timestep), not 999: SD's samplers space their \(steps) steps \
            "leading", counting up from 0 in strides of 1000/\(steps) = \(stride) (0, \(stride), \(2 * stride), ...) \
            and adding SD's steps_offset of 1, then walking that list backwards. The noise levels above it are \
            never visited; sampling starts from pure noise all the same. Newer configurations choose "linspace" or \
            "trailing" spacing, which start at t = 999.
            """)
        let ddimChoice = ddim.steps.last!.topPicture, ddpmChoice = ddpm.steps.last!.topPicture
        narrator.say(String(format: """
            At step 1 the predicted x̂₀ is a blend (the largest weight is %.2f); by step %d one picture has more than \
            99%% of the weight. From then on the sampler only removes noise around that picture: x_t's spread falls \
            from %.2f towards the picture's own %.2f.
            """, ddim.steps[0].topWeight, ddim.settledStep, ddim.steps[0].latents.standardDeviation,
            set.pictures[ddimChoice].pixels.standardDeviation))
        if ddimChoice == ddpmChoice {
            narrator.say("""
                DDIM and DDPM both end on '\(set.pictures[ddimChoice].label)': the choice was made in the first \
                steps, and DDPM's fresh noise z came too late to change it. Their paths still differ in the grain \
                of x_t along the way.
                """)
        } else {
            narrator.say("""
                DDIM ends on '\(set.pictures[ddimChoice].label)', DDPM on '\(set.pictures[ddpmChoice].label)': both \
                started from the same noise, but DDPM's fresh noise z in the first steps tipped it towards another \
                picture.
                """)
        }
        narrator.preview(RGBImage.sideBySide([ddim.result, ddpm.result].map { RGBImage(tensor: $0) }), columns: 40)
        narrator.show("wrote " + (try out.save(reverseAnimation(ddim, ddpm), as: "02-reverse.gif")))
        narrator.show("wrote " + (try out.save(reverseSteps(ddim, ddpm), as: "03-reverse-steps.png")))
        narrator.pause()
        return (ddim, ddpm)
    }

    /// Stage 4: many seeds. The perfect denoiser only copies.
    func showMemorisation(_ denoiser: OptimalDenoiser, set: PictureSet, _ narrator: Narrator,
                          _ out: LessonOutput) throws {
        narrator.stage("Many seeds: a perfect denoiser can only copy")
        let seeds = Array(seed..<seed + 8)
        let results = try seeds.map { try denoiser.sample(shape: pictureShape, steps: steps, eta: 0, seed: $0).result }
        let nearest = results.map(set.nearest(to:))
        let worst = nearest.map(\.distance).max()!
        let lastNoise = (1 - Self.alphasCumprod[0]).squareRoot()
        narrator.say(String(format: """
            Eight seeds, eight results, and every one is a training picture to within an RMS pixel difference of \
            %.3f (pixels run from -1 to 1; the final step leaves √(1 − ᾱ₀) = %.3f of noise).
            """, worst, lastNoise))
        narrator.say("""
            That is no accident: the exact posterior mean of a finite set pulls every path onto one of its members. \
            A perfect denoiser of the training data is a copying machine. Stable Diffusion's UNet has about 860 \
            million parameters but was trained on billions of pictures; it cannot store them, so it has to learn \
            smooth rules (edges, textures, how light falls) that also apply between the pictures it saw. Its \
            denoising is imperfect in exactly the way that lets it make new pictures.
            """)
        let labels = zip(seeds, nearest).map { "seed \($0): \(set.pictures[$1.index].label)" }
        narrator.show("wrote " + (try out.save(RGBImage.grid(results.map(enlarge), columns: 4, labels: labels,
                                                            title: "DDIM from 8 seeds: nearest training picture and distance"),
                                               as: "04-memorisation.png")))
        narrator.pause()
    }

    /// Stage 5: steering with words. Returns the CSV rows of the guided runs.
    func showSteering(_ denoiser: OptimalDenoiser, set: PictureSet, _ narrator: Narrator,
                      _ out: LessonOutput) throws -> [String] {
        narrator.stage("Steering with words: classifier-free guidance")
        narrator.say("""
            So far nothing told the sampler what to draw. Give each picture a caption and ask the denoiser a second \
            question: the best x̂₀ among the pictures whose caption contains the words (the conditional \
            prediction). Stable Diffusion does the same with one network, fed the text or an empty prompt, and \
            mixes the two noise predictions. One network can answer both because in training about 10% of the \
            captions were replaced by the empty prompt, so it also learned to denoise without text (lesson 5):
            """)
        let cfg = cfg ?? 7.5
        narrator.show("ε = ε_uncond + w · (ε_text − ε_uncond)        w = --cfg = \(cfg)")
        var csv: [String] = [], tiles: [RGBImage] = [], labels: [String] = []
        // --prompt steers the built-in pictures only when no model will use it.
        let words = LessonCheckpoint.model(checkpoint) == nil ? prompt.map { [$0] } : nil
        for word in words ?? Self.defaultWords {
            let subset = set.indices(matching: word)
            let run = try denoiser.sample(shape: pictureShape, steps: steps, eta: 0, seed: seed,
                                          guidance: .init(subset: subset, scale: cfg))
            csv += run.steps.map { csvRow($0, sampler: "guided '\(word.replacingOccurrences(of: ",", with: " "))'") }
            narrator.show("'\(word)' matches: " + subset.map { set.pictures[$0].label }.joined(separator: ", "))
            tiles += [enlarge(run.firstPredictions!.unconditional), enlarge(run.firstPredictions!.conditional),
                      enlarge(run.result)]
            labels += ["step 1, no text: x0", "step 1, '\(word)': x0", "'\(word)', w=\(cfg): result"]
        }
        narrator.say("""
            Same seed, same starting noise, different words, different pictures. At step 1 the unconditional x̂₀ \
            blends whatever the noise resembles most; the conditional one blends only the pictures that match the \
            words. Guidance pushes x_t towards the second and away from the first, w times as hard. The price of a \
            large w is visible too: the leftover grain in the result is amplified along with everything else.
            """)
        let grid = RGBImage.grid(tiles, columns: 3, labels: labels,
                                 title: "seed \(seed): unconditional vs conditional prediction, and the guided result")
        narrator.show("wrote " + (try out.save(grid, as: "05-steering.png", extra: [("cfg", "\(cfg)")])))
        narrator.pause()
        return csv
    }

    /// Stage 6: the board version in two dimensions.
    func showToyShapes(_ narrator: Narrator, _ out: LessonOutput) throws {
        narrator.stage("On the board: a spiral and a smiley out of a Gaussian cloud")
        narrator.say("""
            The same idea in two dimensions, where every point can be drawn. Each data set is a shape of 400 \
            points; 1000 samples start as a Gaussian cloud and follow DDPM's ancestral steps with the perfect \
            denoiser of the shape.
            """)
        let runs = try ToyShape.allCases.map { try ToyRun(shape: $0, steps: steps, seed: seed) }
        for run in runs {
            narrator.show("\(run.shape.rawValue): mean distance of a sample to the shape " + ToyRun.distanceMarks(steps: steps).map {
                String(format: "%.3f after step %d", run.meanDistance(after: $0), $0)
            }.joined(separator: ", "))
        }
        narrator.say("""
            For most of the steps the cloud hardly changes: σ is still larger than the shape, so the best guess \
            for every point is near the shape's centre, and the sampler only pulls the cloud in gently. The shape \
            appears in the last quarter of the steps, when σ falls below the gaps between its arms; then every \
            sample is pulled onto the nearest stretch of the curve.
            """)
        narrator.show("wrote " + (try out.save(toyAnimation(runs), as: "06-toy-2d.gif")))
        narrator.show("wrote " + (try out.save(toySnapshots(runs), as: "07-toy-2d-steps.png")))
        narrator.pause()
    }

    /// One line of steps.csv.
    func csvRow(_ step: DenoiserStep, sampler name: String) -> String {
        String(format: "%@,%d,%d,%.6f,%.4f,%.4f,%.4f,%.4f,%.4f,%d", name, step.index + 1, step.timestep, step.alphaBar,
               step.sigma, step.latents.standardDeviation, step.noise.standardDeviation, step.clean.standardDeviation,
               step.topWeight, step.topPicture + 1)
    }
}
