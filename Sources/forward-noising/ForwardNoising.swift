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
/// watch the pixel values turn into a bell curve.
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

        // Stage 1: the clean picture x₀.
        narrator.stage("The clean picture x₀")
        let clean = picture.thumbnail(maxSide: size)
        let x0 = clean.toTensor()                                       // (1, 3, H, W) in [−1, 1]
        narrator.say("Using \(source), scaled to \(clean.width)x\(clean.height).")
        narrator.say("Stable Diffusion sees pixels as numbers in [−1, 1] (black −1, white +1). This picture's values: mean \(fmt(x0.mean)), standard deviation \(fmt(x0.standardDeviation)).")
        narrator.preview(clean)
        narrator.show("wrote " + (try out.save(clean.captioned("x₀: the clean picture"), as: "00-input.png")))
        narrator.pause()

        // Stage 2: the schedule β_t and what it leaves of the signal, ᾱ_t.
        narrator.stage("The noise schedule: β_t and ᾱ_t")
        let noiseSchedule = NoiseSchedule(schedule)
        narrator.say("\(schedule.rawValue): \(schedule.summary).")
        narrator.say("Each step adds noise of variance β_t and shrinks the picture by √(1 − β_t). Multiplying the (1 − β) of all steps so far gives ᾱ_t, the share of the picture's variance that survives:")
        narrator.show("   t        β_t        ᾱ_t    √ᾱ_t (signal)   √(1−ᾱ_t) (noise)       SNR")
        for t in steps {
            narrator.show(String(format: "%4d   %.6f   %.6f        %.4f            %.4f   %9.4g",
                                 t, noiseSchedule.betas[t], noiseSchedule.alphasCumprod[t],
                                 noiseSchedule.signalScale(at: t), noiseSchedule.noiseScale(at: t),
                                 noiseSchedule.signalToNoise(at: t)))
        }
        let crossing = noiseSchedule.alphasCumprod.firstIndex { $0 < 0.5 } ?? 999
        narrator.say("Signal and noise carry equal variance (SNR = 1) at t ≈ \(crossing).")
        narrator.show("wrote " + (try out.save(schedulePlot(highlight: schedule), as: "01-schedule.png")))
        narrator.pause()

        // Stage 3: the noise ε, drawn once.
        narrator.stage("The noise ε ~ N(0, I)")
        var generator = TorchGenerator(seed: seed)
        let noise = generator.randn(x0.shape)                          // (1, 3, H, W)
        narrator.say("One standard normal number per pixel and channel, \(noise.count) in all, from seed \(seed) (the same numbers torch.randn draws for this seed). Mean \(fmt(noise.mean)), standard deviation \(fmt(noise.standardDeviation)).")
        narrator.say("Because the forward process collapses to a single formula, we can jump straight to any t with this one ε. No loop over steps is needed; training does exactly this with a random t per picture.")
        narrator.pause()

        // Stage 4: x_t at the chosen timesteps.
        narrator.stage("Jumping to x_t")
        var tiles: [RGBImage] = []
        for t in steps {
            let xt = noiseSchedule.addNoise(to: x0, noise: noise, at: t)
            tiles.append(RGBImage(tensor: xt))
            narrator.show(String(format: "t = %3d: x_t = %.3f · x₀ + %.3f · ε   → %4.1f%% of the variance is picture",
                                 t, noiseSchedule.signalScale(at: t), noiseSchedule.noiseScale(at: t),
                                 100 * noiseSchedule.alphasCumprod[t]))
        }
        let labels = steps.map { String(format: "t=%d  ᾱ=%.3f", $0, noiseSchedule.alphasCumprod[$0]) }
        let grid = RGBImage.grid(tiles, columns: min(4, tiles.count), labels: labels,
                                 title: "x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε   (\(schedule.rawValue), seed \(seed))")
        narrator.say("Fine details (the window, the door) drown first, then edges; large areas of colour survive longest.")
        narrator.preview(tiles[tiles.count / 2])
        narrator.show("wrote " + (try out.save(grid, as: "02-timesteps.png", extra: [("timesteps", timesteps)])))
        narrator.pause()

        // Stage 5: the same timesteps under each schedule.
        narrator.stage("Three schedules side by side")
        var rows: [RGBImage] = [], rowLabels: [String] = []
        for kind in NoiseSchedule.Kind.allCases {
            let other = NoiseSchedule(kind)
            for t in steps {
                rows.append(RGBImage(tensor: other.addNoise(to: x0, noise: noise, at: t)).thumbnail(maxSide: 128))
                rowLabels.append(String(format: "%@ t=%d", kind.rawValue, t))
            }
            narrator.show(String(format: "%-13@ ᾱ at t=500: %.3f   at t=999: %.5f", kind.rawValue as NSString,
                                 other.alphasCumprod[500], other.alphasCumprod[999]))
        }
        narrator.say("The linear schedule has erased the picture long before t = 999; cosine spreads the destruction evenly over time.")
        let comparison = RGBImage.grid(rows, columns: steps.count, labels: rowLabels,
                                       title: "rows: scaled-linear, linear, cosine")
        narrator.show("wrote " + (try out.save(comparison, as: "03-schedules.png", extra: [("timesteps", timesteps)])))
        narrator.pause()

        // Stage 6: the whole process as an animation.
        narrator.stage("The whole forward process, t = 0 … 999")
        var animation = AnimatedGIF()
        for frame in 0..<frames {
            let t = frame * 999 / (frames - 1)
            let xt = noiseSchedule.addNoise(to: x0, noise: noise, at: t)
            // Two short lines, so every frame's caption bar has the same height.
            let caption = String(format: "t = %d   ᾱ = %.3f\n%.2f·x₀ + %.2f·ε", t,
                                 noiseSchedule.alphasCumprod[t], noiseSchedule.signalScale(at: t), noiseSchedule.noiseScale(at: t))
            // Hold the first and last frames a little longer so the eye can settle.
            animation.addFrame(RGBImage(tensor: xt).captioned(caption), delay: frame == 0 || frame == frames - 1 ? 100 : 8)
        }
        narrator.say("\(frames) frames, t rising evenly from 0 to 999.")
        narrator.show("wrote " + (try out.save(animation, as: "04-forward.gif")))
        narrator.pause()

        // Stage 7: pixel statistics become Gaussian.
        narrator.stage("Pixel values become a bell curve")
        narrator.say("At t = 0 the histogram is the picture's own (sky, grass, house); as t grows it turns into the standard normal curve of ε, which is where the backward process will start.")
        let histogramSteps = [0, 250, 500, 999]
        for t in histogramSteps {
            let xt = noiseSchedule.addNoise(to: x0, noise: noise, at: t)
            narrator.show(String(format: "t = %3d: mean %+.3f, standard deviation %.3f", t, xt.mean, xt.standardDeviation))
        }
        narrator.show("wrote " + (try out.save(histogramPlot(x0: x0, noise: noise, schedule: noiseSchedule, at: histogramSteps),
                                                 as: "05-histograms.png")))

        narrator.stage("Done")
        narrator.say("Files written:\n" + out.summary)
        narrator.say("Next: Lessons/02-backward-denoising.md runs this film backwards.")
    }

    /// ᾱ_t for all three schedules, and their SNR on a log scale, stacked.
    func schedulePlot(highlight: NoiseSchedule.Kind) -> RGBImage {
        var alphaPlot = LinePlot(title: "ᾱ_t: share of the picture's variance left at step t",
                                 xLabel: "timestep t", yLabel: "ᾱ_t", width: 720, height: 400)
        var snrPlot = LinePlot(title: "signal-to-noise ratio ᾱ_t / (1 − ᾱ_t)", xLabel: "timestep t",
                               yLabel: "SNR (log scale)", yScale: .logarithmic, width: 720, height: 400)
        for kind in NoiseSchedule.Kind.allCases {
            let s = NoiseSchedule(kind)
            let name = kind == highlight ? "\(kind.rawValue) (this run)" : kind.rawValue
            alphaPlot.addSeries(name, y: s.alphasCumprod)
            snrPlot.addSeries(name, y: (0..<s.trainingSteps).map { s.signalToNoise(at: $0) })
        }
        return RGBImage.sideBySide([alphaPlot.render(), snrPlot.render()])
    }

    /// Histograms (as curves) of the pixel values of x_t at a few timesteps.
    func histogramPlot(x0: Tensor, noise: Tensor, schedule: NoiseSchedule, at steps: [Int]) -> RGBImage {
        var plot = LinePlot(title: "distribution of pixel values in x_t", xLabel: "value", yLabel: "density",
                            width: 720, height: 420)
        let bins = 80, low = -4.0, high = 4.0
        let centres = (0..<bins).map { low + (Double($0) + 0.5) * (high - low) / Double(bins) }
        for t in steps {
            let xt = schedule.addNoise(to: x0, noise: noise, at: t)
            var counts = [Double](repeating: 0, count: bins)
            for v in xt.scalars {
                let bin = Int((Double(v) - low) / (high - low) * Double(bins))
                if bin >= 0 && bin < bins { counts[bin] += 1 }
            }
            let scale = Double(bins) / (high - low) / Double(xt.count)   // counts → probability density
            plot.addSeries("t = \(t)", x: centres, y: counts.map { $0 * scale })
        }
        // The standard normal density, where every histogram is heading.
        plot.addSeries("N(0, 1)", x: centres, y: centres.map { exp(-$0 * $0 / 2) / (2 * Double.pi).squareRoot() },
                       color: RGBColor(hex: 0x888888))
        return plot.render()
    }

    func fmt(_ value: Float) -> String { String(format: "%.3f", value) }
}


