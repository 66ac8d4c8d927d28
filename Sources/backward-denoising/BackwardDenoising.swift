import ArgumentParser
import Foundation
import FrameExport
import LessonKit
import StableDiffusion
import TensorCore

/// Lesson 2: the reverse process. Start from pure noise and remove a little of it at every step,
/// steered by the text, until a picture remains.
///
/// Without a checkpoint the lesson needs no download and no training: the denoiser is the exact,
/// optimal one for a small built-in set of pictures (`OptimalDenoiser`), driven by the very
/// sampler code Stable Diffusion uses (`DDIMScheduler`, with η = 0 for DDIM and η = 1 for DDPM's
/// ancestral sampling). With a checkpoint it runs real text-to-image and opens up every step
/// (`BackwardDenoising+Checkpoint.swift`).
///
/// ```
/// backward-denoising                                        # built-in pictures, Enter to advance
/// backward-denoising --no-pause --steps 50 --seed 7 --prompt sea
/// backward-denoising --checkpoint v1-5-pruned-emaonly.safetensors --prompt "a red fox in snow"
/// ```
@main
struct BackwardDenoising: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backward-denoising",
        abstract: "Lesson 2: watch a sampler turn pure noise into a picture, step by step.",
        discussion: """
            Without a checkpoint the lesson uses the exact denoiser of a small built-in picture set \
            (offline, seconds). With --checkpoint (or SD_CHECKPOINT) it runs Stable Diffusion. \
            The lesson text is in Lessons/02-backward-denoising.md.
            """)

    @Option(help: ArgumentHelp("A Stable Diffusion 1.x .safetensors file or diffusers folder (default: $SD_CHECKPOINT; none: the built-in pictures).", valueName: "path"))
    var checkpoint: String?

    @Option(help: "What to draw. Without a checkpoint: words from the built-in pictures' labels, such as 'sea' or 'grass'.")
    var prompt: String?

    @Option(help: "Sampling steps (1...1000).")
    var steps = 25

    @Option(help: "Seed of the starting noise (same as torch.manual_seed).")
    var seed: UInt64 = 42

    @Option(help: "Width in pixels, a multiple of 8 (with a checkpoint).")
    var width = 512

    @Option(help: "Height in pixels, a multiple of 8 (with a checkpoint).")
    var height = 512

    @Option(help: "Sampler with a checkpoint: \(SchedulerKind.allCases.map(\.rawValue).joined(separator: ", ")).")
    var scheduler: SchedulerKind = .ddim

    @Option(help: "Classifier-free guidance scale w: ε = ε_uncond + w · (ε_text − ε_uncond); 1 or less turns it off.")
    var cfg: Float = 7.5

    @Option(help: "With a checkpoint: samplers for the comparison grid, comma-separated (or 'none').")
    var compareSamplers = "ddim,euler-a,dpmpp-2m-karras"

    @Option(help: "With a checkpoint: step counts for the comparison grid, comma-separated.")
    var compareSteps = "5,10"

    @Option(help: "Without a checkpoint: side of the built-in pictures in pixels (16...128).")
    var size = 48

    @Option(help: "Folder for the pictures, the animations and the numbers.")
    var output = "output/backward-denoising"

    @Flag(help: "Run straight through without waiting for Enter.")
    var noPause = false

    static let defaultPrompt = "a lighthouse on a rocky coast at sunset, oil painting"

    mutating func validate() throws {
        guard (1...1000).contains(steps) else {
            throw ValidationError("--steps must be between 1 and 1000 (the training schedule's length), got \(steps)")
        }
        guard cfg.isFinite, cfg >= 0 else { throw ValidationError("--cfg must be 0 or more, got \(cfg)") }
        if LessonCheckpoint.path(checkpoint) != nil {
            do { try request(scheduler: scheduler, steps: steps).validate() } catch { throw ValidationError("\(error)") }
            _ = try comparison()
        } else {
            guard (16...128).contains(size) else { throw ValidationError("--size must be between 16 and 128, got \(size)") }
            if let prompt, PictureSet(size: 16).indices(matching: prompt).isEmpty {
                let labels = PictureSet(size: 16).pictures.map { "'\($0.label)'" }.joined(separator: ", ")
                throw ValidationError("--prompt '\(prompt)' matches none of the built-in pictures; without a checkpoint use words from their labels: \(labels)")
            }
        }
    }

    func run() throws {
        let narrator = Narrator(pauses: !noPause)
        narrator.title("Lesson 2 · Backward denoising",
                       subtitle: "from pure noise to a picture: remove a little noise at every step, steered by the text")
        if let path = LessonCheckpoint.path(checkpoint) {
            try runWithCheckpoint(path, narrator: narrator)
        } else {
            try runBuiltIn(narrator)
        }
    }

    // MARK: - Without a checkpoint: the perfect denoiser of a small picture set

    func runBuiltIn(_ narrator: Narrator) throws {
        let set = PictureSet(size: size)
        let denoiser = OptimalDenoiser(matrix: set.matrix)
        let out = try LessonOutput(output, parameters: [
            ("lesson", "backward-denoising"), ("denoiser", "optimal for the built-in set"), ("seed", "\(seed)"),
            ("steps", "\(steps)"),
        ])
        var csv = ["sampler,step,timestep,alpha_bar,sigma,x_std,noise_std,x0_std,top_weight,top_picture"]

        // Stage 1: the "training set".
        narrator.stage("The training set")
        narrator.say("No checkpoint given, so this lesson brings its own tiny world: \(set.pictures.count) pictures of \(size)x\(size) pixels, drawn by code. Every number in this lesson is exact; nothing was trained.")
        narrator.say(LessonCheckpoint.howToGetOne)
        narrator.preview(RGBImage.grid(set.pictures.map { RGBImage(tensor: $0.pixels) }, columns: 4), columns: 60)
        let tiles = set.pictures.map { enlarge($0.pixels) }
        narrator.show("wrote " + (try out.save(RGBImage.grid(tiles, columns: 4, labels: set.pictures.map(\.label),
                                                            title: "the training set: all the denoiser knows"),
                                               as: "00-training-set.png")))
        narrator.pause()

        // Stage 2: what the perfect denoiser predicts at each noise level.
        narrator.stage("The perfect denoiser: x̂₀ = E[x₀ | x_t]")
        narrator.say("Stable Diffusion's network is trained to answer one question: given the noisy x_t and t, what noise ε is in it? Equivalently, what was the clean x₀? For a finite set of pictures the best possible answer can be written down. x_t came from picture i with probability")
        narrator.show("w_i = softmax_i( −‖x_t − √ᾱ_t · x⁽ⁱ⁾‖² / (2 (1 − ᾱ_t)) )")
        narrator.say("and the best guess is the weighted average x̂₀ = Σ w_i x⁽ⁱ⁾. The noise the sampler needs follows: ε̂ = (x_t − √ᾱ_t · x̂₀) / √(1 − ᾱ_t). Here picture 1 ('\(set.pictures[0].label)') is noised to several t and shown to the denoiser:")
        let schedule = NoiseSchedule.float32(.scaledLinear, betaStart: 0.00085, betaEnd: 0.012).alphasCumprod
        var probeGenerator = TorchGenerator(seed: seed)
        let probeNoise = probeGenerator.randn(set.pictures[0].pixels.shape)
        var probeTiles: [RGBImage] = [], probeLabels: [String] = []
        let probeTimesteps = [999, 990, 980, 960, 900, 500]
        var rows: [[RGBImage]] = [[], [], []]
        narrator.show("   t      ᾱ_t   weight of picture 1   largest other weight   x̂₀ is")
        var firstWeight = 0.0
        for t in probeTimesteps {
            let a = schedule[t]
            let xt = set.pictures[0].pixels.scaled(a.squareRoot(), plus: probeNoise, times: (1 - a).squareRoot())
            let (noise, clean, weights) = denoiser.predictNoise(xt, alphaBar: a)
            let other = weights[0].dropFirst().max() ?? 0
            if t == probeTimesteps[0] { firstWeight = weights[0][0] }
            let verdict = weights[0][0] > 0.99 ? "picture 1" : weights[0][0] < 0.2 ? "a blend of several pictures" : "a blend, picture 1 emerging"
            narrator.show(String(format: "%4d   %.4f          %.3f                 %.3f            %@", t, a,
                                 weights[0][0], other, verdict))
            rows[0].append(enlarge(xt)); rows[1].append(enlarge(noise * 0.5)); rows[2].append(enlarge(clean))
        }
        for (r, name) in ["x_t", "predicted noise", "predicted x0"].enumerated() {
            probeTiles += rows[r]
            probeLabels += probeTimesteps.map { String(format: "%@ t=%d", name, $0) }
        }
        let dimensions = 3 * size * size
        narrator.say(String(format: "At t = 999 only √ᾱ = %.3f of the picture's amplitude is left, yet the denoiser already gives picture 1 a weight of %.2f, and from t = 900 on it is certain. The reason is the number of dimensions: a tiny signal in each of %d numbers adds up. The noise spreads x_t over a sphere of radius √%d ≈ %.0f, but the centres √ᾱ·x⁽ⁱ⁾ of the different pictures are still far enough apart to tell which one x_t came from. (With --size 16 the pictures have 768 numbers and the blend lasts longer.)",
                            schedule[999].squareRoot(), firstWeight, dimensions, dimensions, Double(dimensions).squareRoot()))
        narrator.show("wrote " + (try out.save(RGBImage.grid(probeTiles, columns: probeTimesteps.count, labels: probeLabels,
                                                            title: "rows: x_t, predicted noise, predicted x0 (picture 1 noised)"),
                                               as: "01-perfect-denoiser.png")))
        narrator.pause()

        // Stage 3: DDIM and DDPM from pure noise.
        narrator.stage("From pure noise to a picture: DDIM and DDPM")
        narrator.say("Now the real thing: start from x_T ~ N(0, I), pure noise from seed \(seed), and hand it to the same sampler code Stable Diffusion uses, \(steps) steps. At every step the sampler asks the denoiser for ε̂, computes x̂₀ and moves to the next, less noisy timestep:")
        narrator.show("DDIM (η = 0): x_prev = √ᾱ_prev · x̂₀ + √(1 − ᾱ_prev) · ε̂                  (deterministic)")
        narrator.show("DDPM (η = 1): x_prev = √ᾱ_prev · x̂₀ + √(1 − ᾱ_prev − σ²) · ε̂ + σ · z       (fresh noise z)")
        let shape = [1, 3, size, size]
        let ddim = try sample(denoiser, shape: shape, eta: 0, name: "ddim", csv: &csv, set: set)
        let ddpm = try sample(denoiser, shape: shape, eta: 1, name: "ddpm", csv: &csv, set: set)
        narrator.show("step     t     ᾱ_t    sigma   DDIM: std x_t  top weight      DDPM: std x_t  top weight")
        for i in selectedSteps(ddim.count, count: 8) {
            let d = ddim[i], p = ddpm[i]
            narrator.show(String(format: "%4d   %3d   %.4f  %6.2f        %.3f       %.3f               %.3f       %.3f",
                                 i + 1, d.timestep, d.alphaBar, d.sigma, d.latents.standardDeviation, d.topWeight,
                                 p.latents.standardDeviation, p.topWeight))
        }
        let ddimEnd = ddim.last!, ddpmEnd = ddpm.last!
        let firstChoice = ddim[0].topWeight
        let settled = (ddim.firstIndex { $0.topWeight > 0.99 } ?? ddim.count - 1) + 1
        narrator.say(String(format: "At step 1 the predicted x̂₀ is a blend (the largest weight is %.2f); by step %d one picture has more than 99%% of the weight. From then on the sampler only removes noise around that picture: x_t's spread falls from %.2f towards the picture's own %.2f.",
                            firstChoice, settled, ddim[0].latents.standardDeviation, set.pictures[ddimEnd.topPicture].pixels.standardDeviation))
        if ddimEnd.topPicture == ddpmEnd.topPicture {
            narrator.say("DDIM and DDPM both end on '\(set.pictures[ddimEnd.topPicture].label)': the choice was made in the first steps, and DDPM's fresh noise z came too late to change it. Their paths still differ in the grain of x_t along the way.")
        } else {
            narrator.say("DDIM ends on '\(set.pictures[ddimEnd.topPicture].label)', DDPM on '\(set.pictures[ddpmEnd.topPicture].label)': both started from the same noise, but DDPM's fresh noise z in the first steps tipped it towards another picture.")
        }
        var animation = AnimatedGIF()
        for i in ddim.indices {
            let frame = RGBImage.grid([ddim[i], ddpm[i]].flatMap { [enlarge($0.latents), enlarge($0.noise * 0.5), enlarge($0.clean)] },
                                      columns: 3, labels: ["DDIM x_t", "DDIM predicted noise", "DDIM predicted x0",
                                                           "DDPM x_t", "DDPM predicted noise", "DDPM predicted x0"])
            // Two short lines, so every frame's caption bar has the same height.
            animation.addFrame(frame.captioned(String(format: "step %d/%d   t = %d\nalpha_bar = %.4f   sigma = %.2f",
                                                      i + 1, ddim.count, ddim[i].timestep, ddim[i].alphaBar, ddim[i].sigma)),
                               delay: i == ddim.count - 1 ? 200 : 20)
        }
        narrator.preview(RGBImage.sideBySide([ddimEnd.next, ddpmEnd.next].map { RGBImage(tensor: $0) }), columns: 40)
        narrator.show("wrote " + (try out.save(animation, as: "02-reverse.gif")))
        let picked = selectedSteps(ddim.count, count: 6)
        var stepTiles: [RGBImage] = [], stepLabels: [String] = []
        for (run, name) in [(ddim, "DDIM"), (ddpm, "DDPM")] {
            stepTiles += picked.map { enlarge(run[$0].latents) } + [enlarge(run.last!.next)]
            stepLabels += picked.map { "\(name) x_t, t=\(run[$0].timestep)" } + ["\(name) result"]
            stepTiles += picked.map { enlarge(run[$0].clean) } + [enlarge(run.last!.clean)]
            stepLabels += picked.map { _ in "\(name) predicted x0" } + ["\(name) last x0"]
        }
        narrator.show("wrote " + (try out.save(RGBImage.grid(stepTiles, columns: picked.count + 1, labels: stepLabels,
                                                            title: "seed \(seed), \(steps) steps: x_t and the predicted x0"),
                                               as: "03-reverse-steps.png")))
        narrator.pause()

        // Stage 4: many seeds. The perfect denoiser only copies.
        narrator.stage("Many seeds: a perfect denoiser can only copy")
        var copies: [RGBImage] = [], copyLabels: [String] = []
        var worst: Float = 0
        for s in seed..<seed + 8 {
            var discard: [String] = []
            let run = try sample(denoiser, shape: shape, eta: 0, name: "ddim", csv: &discard, set: set, seed: s)
            let result = run.last!.next
            let nearest = set.pictures.indices.min { rms(result, set.pictures[$0].pixels) < rms(result, set.pictures[$1].pixels) }!
            let distance = rms(result, set.pictures[nearest].pixels)
            worst = max(worst, distance)
            copies.append(enlarge(result))
            copyLabels.append("seed \(s): \(set.pictures[nearest].label)")
        }
        narrator.say(String(format: "Eight seeds, eight results, and every one is a training picture to within an RMS pixel difference of %.3f (pixels run from -1 to 1; the final step leaves √(1 − ᾱ₀) = %.3f of noise).", worst, (1 - schedule[0]).squareRoot()))
        narrator.say("That is no accident: the exact posterior mean of a finite set pulls every path onto one of its members. A perfect denoiser of the training data is a copying machine. Stable Diffusion's UNet has about 860 million parameters but was trained on billions of pictures; it cannot store them, so it has to learn smooth rules (edges, textures, how light falls) that also apply between the pictures it saw. Its denoising is imperfect in exactly the way that lets it make new pictures.")
        narrator.show("wrote " + (try out.save(RGBImage.grid(copies, columns: 4, labels: copyLabels,
                                                            title: "DDIM from 8 seeds: nearest training picture and distance"),
                                               as: "04-memorisation.png")))
        narrator.pause()

        // Stage 5: steering with words.
        try steeringStage(narrator, set: set, denoiser: denoiser, shape: shape, out: out, csv: &csv)

        // Stage 6: the board version in two dimensions.
        try toyStage(narrator, out: out)

        narrator.show("wrote " + (try out.save(text: csv.joined(separator: "\n") + "\n", as: "steps.csv")))
        narrator.stage("Done")
        narrator.say("Files written:\n" + out.summary)
        narrator.say("With a Stable Diffusion checkpoint (--checkpoint PATH or SD_CHECKPOINT) the same lesson opens up every step of real text-to-image.")
    }

    // MARK: Stage 5

    func steeringStage(_ narrator: Narrator, set: PictureSet, denoiser: OptimalDenoiser, shape: [Int],
                       out: LessonOutput, csv: inout [String]) throws {
        narrator.stage("Steering with words: classifier-free guidance")
        narrator.say("So far nothing told the sampler what to draw. Give each picture a caption and ask the denoiser a second question: the best x̂₀ among the pictures whose caption contains the words (the conditional prediction). Stable Diffusion does the same with one network, fed the text or an empty prompt, and mixes the two noise predictions:")
        narrator.show("ε = ε_uncond + w · (ε_text − ε_uncond)        w = --cfg = \(cfg)")
        let words = prompt.map { [$0] } ?? ["sea", "grass", "square"]
        var tiles: [RGBImage] = [], labels: [String] = []
        for word in words {
            let subset = set.indices(matching: word)
            let scheduler = try DDIMScheduler(steps: steps, eta: 0)
            var generator = TorchGenerator(seed: seed)
            var x = generator.randn(shape)
            var middle: (uncond: Tensor, text: Tensor)?
            for i in scheduler.timesteps.indices {
                let a = scheduler.alphasCumprod[scheduler.integerTimesteps[i]]
                let uncond = denoiser.predictNoise(x, alphaBar: a)
                let text = denoiser.predictNoise(x, alphaBar: a, subset: subset)
                // ε = ε_uncond + w · (ε_text − ε_uncond)
                let guided = cfg > 1 ? uncond.noise.scaled(1 - cfg, plus: text.noise, times: cfg) : text.noise
                if i == 0 { middle = (uncond.clean, text.clean) }
                let (next, clean) = scheduler.step(modelOutput: guided, stepIndex: i, sample: x, generator: &generator)
                csv.append(String(format: "guided '%@',%d,%d,%.6f,%.4f,%.4f,%.4f,%.4f,%.4f,%d", word.replacingOccurrences(of: ",", with: " "),
                                  i + 1, scheduler.integerTimesteps[i], a, ((1 - a) / a).squareRoot(), x.standardDeviation,
                                  guided.standardDeviation, clean.standardDeviation, text.weights[0].max()!, text.weights[0].firstIndex(of: text.weights[0].max()!)! + 1))
                x = next
            }
            let matches = subset.map { set.pictures[$0].label }.joined(separator: ", ")
            narrator.show("'\(word)' matches: \(matches)")
            tiles += [enlarge(middle!.uncond), enlarge(middle!.text), enlarge(x)]
            labels += ["step 1, no text: x0", "step 1, '\(word)': x0", "'\(word)', w=\(cfg): result"]
        }
        narrator.say("Same seed, same starting noise, different words, different pictures. At step 1 the unconditional x̂₀ blends whatever the noise resembles most; the conditional one blends only the pictures that match the words. Guidance pushes x_t towards the second and away from the first, w times as hard. The price of a large w is visible too: the leftover grain in the result is amplified along with everything else.")
        narrator.show("wrote " + (try out.save(RGBImage.grid(tiles, columns: 3, labels: labels,
                                                            title: "seed \(seed): unconditional vs conditional prediction, and the guided result"),
                                               as: "05-steering.png", extra: [("cfg", "\(cfg)")])))
        narrator.pause()
    }

    // MARK: Stage 6

    func toyStage(_ narrator: Narrator, out: LessonOutput) throws {
        narrator.stage("On the board: a spiral and a smiley out of a Gaussian cloud")
        narrator.say("The same idea in two dimensions, where every point can be drawn. Each data set is a shape of 400 points; 1000 samples start as a Gaussian cloud and follow DDPM's ancestral steps with the perfect denoiser of the shape.")
        var runs: [(ToyShape, [SIMD2<Float>], [Tensor])] = []
        for shape in ToyShape.allCases {
            let data = shape.points(count: 400)
            let denoiser = OptimalDenoiser(examples: data.map { [$0.x, $0.y] })
            let scheduler = try DDIMScheduler(steps: steps, eta: 1)
            var generator = TorchGenerator(seed: seed)
            var x = generator.randn([1000, 2])                           // (points, 2)
            var path = [x]
            for i in scheduler.timesteps.indices {
                let a = scheduler.alphasCumprod[scheduler.integerTimesteps[i]]
                let noise = denoiser.predictNoise(x, alphaBar: a).noise
                x = scheduler.step(modelOutput: noise, stepIndex: i, sample: x, generator: &generator).prevSample
                path.append(x)
            }
            // How far the samples are from the shape: the mean distance to the nearest data point.
            func distance(_ points: Tensor) -> Double {
                (0..<1000).map { j in
                    Double(data.map { hypot($0.x - points.scalars[2 * j], $0.y - points.scalars[2 * j + 1]) }.min()!)
                }.reduce(0, +) / 1000
            }
            let marks = [0, steps / 2, 3 * steps / 4, steps]
            narrator.show("\(shape.rawValue): mean distance of a sample to the shape " + marks.map {
                String(format: "%.3f after step %d", distance(path[$0]), $0)
            }.joined(separator: ", "))
            runs.append((shape, data, path))
        }
        let schedulerTimesteps = try DDIMScheduler(steps: steps).integerTimesteps
        /// The scatter plot of one shape's samples after step k (k = 0: the starting noise).
        func plot(_ run: (ToyShape, [SIMD2<Float>], [Tensor]), after k: Int, side: Int) -> RGBImage {
            let (shape, data, path) = run
            let label = k == 0 ? "pure noise" : "step \(k), t=\(k < steps ? schedulerTimesteps[k] : 0)"
            var plot = ScatterPlot(xRange: -3...3, yRange: -3...3, title: "\(shape.rawValue): \(label)", width: side, height: side)
            plot.legendPosition = .hidden
            plot.addPoints("data", points: data, color: RGBColor(hex: 0x9A9A9A), radius: 1.5, opacity: 0.8)
            plot.addPoints("samples", points: (0..<1000).map { SIMD2(path[k].scalars[2 * $0], path[k].scalars[2 * $0 + 1]) },
                           color: RGBColor(hex: 0xD62728), radius: 2, opacity: 0.5)
            return plot.render()
        }
        var animation = AnimatedGIF()
        for k in 0...steps {
            animation.addFrame(RGBImage.sideBySide(runs.map { plot($0, after: k, side: 340) }),
                               delay: k == 0 || k == steps ? 150 : 15)
        }
        narrator.say("For most of the steps the cloud hardly changes: σ is still larger than the shape, so the best guess for every point is near the shape's centre, and the sampler only pulls the cloud in gently. The shape appears in the last quarter of the steps, when σ falls below the gaps between its arms; then every sample is pulled onto the nearest stretch of the curve.")
        narrator.show("wrote " + (try out.save(animation, as: "06-toy-2d.gif")))
        let picked = Array(Set([0, steps / 2, 3 * steps / 4, 7 * steps / 8, max(0, steps - 1), steps])).sorted()
        let plots = runs.flatMap { run in picked.map { plot(run, after: $0, side: 260) } }
        narrator.show("wrote " + (try out.save(RGBImage.grid(plots, columns: picked.count,
                                                            title: "grey: the data; red: 1000 samples (DDPM, seed \(seed))"),
                                               as: "07-toy-2d-steps.png")))
        narrator.pause()
    }

    // MARK: Sampling with the perfect denoiser

    /// What one step of the built-in sampler saw and did.
    struct BuiltInStep {
        let timestep: Int
        let alphaBar: Float
        var sigma: Float { ((1 - alphaBar) / alphaBar).squareRoot() }
        let latents: Tensor     // x_t
        let noise: Tensor       // ε̂
        let clean: Tensor       // x̂₀
        let next: Tensor        // x_prev
        let topWeight: Double
        let topPicture: Int
    }

    /// Runs DDIM (η = 0) or DDPM ancestral sampling (η = 1) from pure noise with the perfect denoiser.
    func sample(_ denoiser: OptimalDenoiser, shape: [Int], eta: Float, name: String, csv: inout [String],
                set: PictureSet, seed: UInt64? = nil) throws -> [BuiltInStep] {
        let scheduler = try DDIMScheduler(steps: steps, eta: eta)
        var generator = TorchGenerator(seed: seed ?? self.seed)
        var x = generator.randn(shape) * scheduler.initNoiseSigma   // x_T ~ N(0, I)
        var result: [BuiltInStep] = []
        for i in scheduler.timesteps.indices {
            let t = scheduler.integerTimesteps[i], a = scheduler.alphasCumprod[t]
            let (noise, clean, weights) = denoiser.predictNoise(x, alphaBar: a)
            let next = scheduler.step(modelOutput: noise, stepIndex: i, sample: x, generator: &generator).prevSample
            let top = weights[0].max()!
            let step = BuiltInStep(timestep: t, alphaBar: a, latents: x, noise: noise, clean: clean, next: next,
                                   topWeight: top, topPicture: weights[0].firstIndex(of: top)!)
            csv.append(String(format: "%@,%d,%d,%.6f,%.4f,%.4f,%.4f,%.4f,%.4f,%d", name, i + 1, t, a, step.sigma,
                              x.standardDeviation, noise.standardDeviation, clean.standardDeviation, top, step.topPicture + 1))
            result.append(step)
            x = next
        }
        return result
    }

    // MARK: Helpers

    /// A built-in picture tensor at three times its size, each pixel a visible square.
    func enlarge(_ tensor: Tensor) -> RGBImage {
        let image = RGBImage(tensor: tensor)
        let factor = max(1, 144 / max(image.width, image.height))
        return image.resized(width: image.width * factor, height: image.height * factor, filter: .nearest)
    }

    /// About `count` step indices spread evenly over `0..<total`, always including the first and last.
    func selectedSteps(_ total: Int, count: Int) -> [Int] {
        guard total > count else { return Array(0..<total) }
        return Array(Set((0..<count).map { $0 * (total - 1) / (count - 1) })).sorted()
    }

    func rms(_ a: Tensor, _ b: Tensor) -> Float {
        (zip(a.scalars, b.scalars).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / Float(a.count)).squareRoot()
    }
}


