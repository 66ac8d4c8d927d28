import ArgumentParser
import Foundation
import FrameExport
import LessonKit
import StableDiffusion
import TensorCore

/// Lesson 1: the forward diffusion process, `x_t = √ᾱ_t · x₀ + √(1 − ᾱ_t) · ε`, made visible.
///
/// Reads top to bottom like the lesson (`Lessons/01-forward-noising.md`): load a picture, look at
/// the noise schedule, draw the noise, jump to chosen timesteps, compare schedules, animate, and
/// watch the pixel values turn into a bell curve. The numbers come from `LessonKit`
/// (`ScheduleRow`, `ForwardProcess`, `Histogram`); this file narrates them.
///
/// ```
/// forward-noising                                   # pauses after each stage in a terminal
/// forward-noising --no-pause --schedule cosine --seed 7 --timesteps 0,100,400,999
/// ```
@main
struct ForwardNoising: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward-noising",
        abstract: "Lesson 1: watch q(x_t | x_0) turn a picture into noise, one timestep at a time.",
        discussion: "The lesson text is in Lessons/01-forward-noising.md.")

    @Option(help: "A PNG or JPEG picture (default: Examples/hills.png, drawn by code).")
    var image: String?

    @Option(help: "Noise schedule: scaled-linear (Stable Diffusion), linear (DDPM) or cosine.")
    var schedule: NoiseSchedule.Kind = .scaledLinear

    @Option(help: "Seed of the noise ε (the same ε is used at every timestep).")
    var seed: UInt64 = 42

    @Option(help: "Timesteps to show, comma-separated, each in 0...999.")
    var timesteps: String = "0,50,100,200,300,500,700,999"

    @Option(help: "The picture is scaled so that its longer side has this many pixels (16...1024).")
    var size: Int = 256

    @Option(help: "Frames in the animation (2...1000).")
    var frames: Int = 60

    @Option(help: "Folder for the pictures and the animation.")
    var output: String = "output/forward-noising"

    @Flag(help: "Run straight through without waiting for Enter.")
    var noPause = false

    @OptionGroup var kernelsOption: KernelsOption

    /// The timesteps of the histogram stage.
    static let histogramSteps = [0, 250, 500, 999]

    mutating func validate() throws {
        _ = try parsedTimesteps()
        guard (16...1024).contains(size) else { throw ValidationError("--size must be between 16 and 1024, got \(size)") }
        guard (2...1000).contains(frames) else { throw ValidationError("--frames must be between 2 and 1000, got \(frames)") }
    }

    func parsedTimesteps() throws -> [Int] { try parseTimesteps(timesteps) }

    func run() throws {
        let narrator = Narrator(pauses: !noPause)
        let steps = try parsedTimesteps()
        narrator.title("Lesson 1 · Forward noising",
                       subtitle: "x_t = √ᾱ_t · x₀ + √(1 − ᾱ_t) · ε   — how a picture dissolves into noise")
        // Read the input before creating anything, so a bad --image leaves no folder behind.
        let (picture, source) = try InputPicture.load(image)
        let out = try LessonOutput(output, parameters: [
            ("lesson", "forward-noising"), ("schedule", schedule.rawValue), ("seed", "\(seed)"),
        ])

        let x0 = try showCleanPicture(picture, source: source, narrator, out)
        let noiseSchedule = try showSchedule(steps, narrator, out)
        let process = showNoise(x0: x0, schedule: noiseSchedule, narrator)
        try showTimesteps(steps, process, narrator, out)
        try showSchedulesSideBySide(steps, process, narrator, out)
        try showAnimation(process, narrator, out)
        try showHistograms(process, narrator, out)

        narrator.stage("Done")
        narrator.say("Files written:\n" + out.summary)
        narrator.say("Next: Lessons/02-backward-denoising.md runs this film backwards.")
    }

    /// Stage 1: the clean picture x₀, as numbers in [−1, 1].
    func showCleanPicture(_ picture: RGBImage, source: String, _ narrator: Narrator, _ out: LessonOutput) throws -> Tensor {
        narrator.stage("The clean picture x₀")
        let clean = picture.thumbnail(maxSide: size)
        let x0 = clean.toTensor()                                       // (1, 3, H, W) in [−1, 1]
        let stats = TensorSummary(x0)
        narrator.say("Using \(source), scaled to \(clean.width)x\(clean.height).")
        narrator.say("""
            Stable Diffusion sees pixels as numbers in [−1, 1] (black −1, white +1). This picture's values: \
            mean \(fmt(stats.mean)), standard deviation \(fmt(stats.standardDeviation)).
            """)
        narrator.preview(clean)
        narrator.show("wrote " + (try out.save(clean.captioned("x₀: the clean picture"), as: "00-input.png")))
        narrator.pause()
        return x0
    }

    /// Stage 2: the schedule β_t and what it leaves of the signal, ᾱ_t.
    func showSchedule(_ steps: [Int], _ narrator: Narrator, _ out: LessonOutput) throws -> NoiseSchedule {
        narrator.stage("The noise schedule: β_t and ᾱ_t")
        let noiseSchedule = NoiseSchedule(schedule)
        narrator.say("\(schedule.rawValue): \(schedule.summary).")
        narrator.say("""
            Each step adds noise of variance β_t and shrinks the picture by √(1 − β_t). Multiplying the (1 − β) \
            of all steps so far gives ᾱ_t, the share of the picture's variance that survives (and, for data of \
            variance 1, the share of x_t's variance that is picture; SNR = ᾱ/(1 − ᾱ) is the ratio for such data):
            """)
        narrator.show("   t        β_t        ᾱ_t    √ᾱ_t (signal)   √(1−ᾱ_t) (noise)       SNR")
        for row in steps.map(noiseSchedule.row(at:)) {
            narrator.show(String(format: "%4d   %.6f   %.6f        %.4f            %.4f   %9.4g", row.timestep, row.beta,
                                 row.alphaBar, row.signalScale, row.noiseScale, row.signalToNoise))
        }
        narrator.say("""
            For data of variance 1, signal and noise carry equal variance (SNR = 1) at t ≈ \
            \(noiseSchedule.equalVarianceTimestep). Real pictures have less variance and drown sooner (stage 4).
            """)
        narrator.show("wrote " + (try out.save(schedulePlot(highlight: schedule), as: "01-schedule.png")))
        narrator.pause()
        return noiseSchedule
    }

    /// Stage 3: the noise ε, drawn once.
    func showNoise(x0: Tensor, schedule: NoiseSchedule, _ narrator: Narrator) -> ForwardProcess {
        narrator.stage("The noise ε ~ N(0, I)")
        let process = ForwardProcess(clean: x0, seed: seed, schedule: schedule)
        let stats = TensorSummary(process.noise)
        narrator.say("""
            One standard normal number per pixel and channel, \(stats.count) in all, from seed \(seed) (the same \
            numbers torch.randn draws for this seed). Mean \(fmt(stats.mean)), standard deviation \
            \(fmt(stats.standardDeviation)).
            """)
        narrator.say("""
            Because the forward process collapses to a single formula, we can jump straight to any t with this \
            one ε. No loop over steps is needed; training does exactly this with a random t per picture.
            """)
        narrator.pause()
        return process
    }

    /// Stage 4: x_t at the chosen timesteps.
    func showTimesteps(_ steps: [Int], _ process: ForwardProcess, _ narrator: Narrator, _ out: LessonOutput) throws {
        narrator.stage("Jumping to x_t")
        let rows = steps.map(process.schedule.row(at:))
        let tiles = steps.map { RGBImage(tensor: process.noised(at: $0)) }
        let variance = Double(process.clean.standardDeviation * process.clean.standardDeviation)
        narrator.say(String(format: """
            ᾱ_t is the share of x_t's variance that is picture only for data of variance 1. This picture's pixels \
            have variance %.3f (standard deviation %.2f), so it drowns sooner: its share is ᾱ·v / (ᾱ·v + 1 − ᾱ).
            """, variance, variance.squareRoot()))
        narrator.show("                                            share of x_t's variance that is picture")
        narrator.show("                                              unit-variance data      this picture")
        for row in rows {
            narrator.show(String(format: "t = %3d: x_t = %.3f · x₀ + %.3f · ε        %5.1f%%              %5.1f%%",
                                 row.timestep, row.signalScale, row.noiseScale, row.picturePercent,
                                 100 * row.pictureShare(ofVariance: variance)))
        }
        narrator.say("Fine details (the window, the door) drown first, then edges; large areas of colour survive longest.")
        narrator.preview(tiles[tiles.count / 2])
        narrator.show("wrote " + (try out.save(timestepGrid(tiles, rows: rows), as: "02-timesteps.png",
                                               extra: [("timesteps", timesteps)])))
        narrator.pause()
    }

    /// Stage 5: the same timesteps under each schedule.
    func showSchedulesSideBySide(_ steps: [Int], _ process: ForwardProcess, _ narrator: Narrator,
                                 _ out: LessonOutput) throws {
        narrator.stage("Three schedules side by side")
        for kind in NoiseSchedule.Kind.allCases {
            let other = NoiseSchedule(kind)
            narrator.show(String(format: "%-13@ ᾱ at t=500: %.3f   at t=999: %.5f", kind.rawValue as NSString,
                                 other.row(at: 500).alphaBar, other.row(at: 999).alphaBar))
        }
        let last = NoiseSchedule(.scaledLinear).row(at: 999)
        narrator.say(String(format: """
            The linear schedule has erased the picture long before t = 999; cosine spreads the destruction more \
            evenly (it was designed on 32x32 and 64x64 pictures; larger ones need more noise for the same damage). \
            Stable Diffusion's ᾱ at t = 999 is %.4f, not 0: training's last step still holds %.0f%% of the \
            picture's amplitude, but sampling starts from pure noise. That mismatch is behind SD 1.x's trouble with \
            very dark or very bright pictures.
            """, last.alphaBar, 100 * last.signalScale))
        narrator.show("wrote " + (try out.save(scheduleComparison(steps, process), as: "03-schedules.png",
                                               extra: [("timesteps", timesteps)])))
        narrator.pause()
    }

    /// Stage 6: the whole process as an animation.
    func showAnimation(_ process: ForwardProcess, _ narrator: Narrator, _ out: LessonOutput) throws {
        narrator.stage("The whole forward process, t = 0 … 999")
        let animation = forwardAnimation(process, timesteps: ForwardProcess.animationTimesteps(frames: frames))
        narrator.say("\(frames) frames, t rising evenly from 0 to 999.")
        narrator.show("wrote " + (try out.save(animation, as: "04-forward.gif")))
        narrator.pause()
    }

    /// Stage 7: pixel statistics become Gaussian.
    func showHistograms(_ process: ForwardProcess, _ narrator: Narrator, _ out: LessonOutput) throws {
        narrator.stage("Pixel values become a bell curve")
        narrator.say("""
            At t = 0 the histogram is the picture's own (sky, grass, house); as t grows it turns into the standard \
            normal curve of ε, which is where the backward process will start.
            """)
        let noisy = Self.histogramSteps.map(process.noised(at:))
        for (t, xt) in zip(Self.histogramSteps, noisy) {
            let stats = TensorSummary(xt)
            narrator.show(String(format: "t = %3d: mean %+.3f, standard deviation %.3f", t, stats.mean, stats.standardDeviation))
        }
        narrator.say("""
            The spread grows towards 1 but is not 1 along the way: x_t's variance is ᾱ·v + (1 − ᾱ), which is 1 at \
            every t only for a picture of variance v = 1. This one starts lower, so its x_t does too.
            """)
        let histograms = noisy.map { Histogram($0.scalars) }
        narrator.show("wrote " + (try out.save(histogramPlot(histograms, at: Self.histogramSteps), as: "05-histograms.png")))
    }

    func fmt(_ value: Float) -> String { String(format: "%.3f", value) }
}
