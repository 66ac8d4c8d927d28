import Foundation
import FrameExport
import LessonKit
import TensorCore

/// The pictures and animations of lesson 2 without a checkpoint, drawn from `LessonKit`'s numbers.
extension BackwardDenoising {
    /// A built-in picture tensor enlarged to about 144 pixels, each pixel a visible square.
    func enlarge(_ tensor: Tensor) -> RGBImage {
        RGBImage(tensor: tensor).enlarged(toAtLeast: 144)
    }

    /// Stage 1: every picture of the set with its caption.
    func trainingSetPicture(_ set: PictureSet) -> RGBImage {
        RGBImage.grid(set.pictures.map { enlarge($0.pixels) }, columns: 4, labels: set.pictures.map(\.label),
                      title: "the training set: all the denoiser knows")
    }

    /// Stage 2: rows x_t, the predicted noise (at half contrast) and the predicted x₀, one column per t.
    func probePicture(_ probes: [DenoiserProbe]) -> RGBImage {
        var tiles: [RGBImage] = [], labels: [String] = []
        let rows: [(String, (DenoiserProbe) -> Tensor)] = [
            ("x_t", { $0.noisy }), ("predicted noise", { $0.noise * 0.5 }), ("predicted x0", { $0.clean }),
        ]
        for (name, tensor) in rows {
            tiles += probes.map { enlarge(tensor($0)) }
            labels += probes.map { String(format: "%@ t=%d", name, $0.timestep) }
        }
        return RGBImage.grid(tiles, columns: probes.count, labels: labels,
                             title: "rows: x_t, predicted noise, predicted x0 (picture 1 noised)")
    }

    /// Stage 3's animation: per step, DDIM's and DDPM's x_t, ε̂ and x̂₀.
    func reverseAnimation(_ ddim: SamplerRun, _ ddpm: SamplerRun) -> AnimatedGIF {
        var animation = AnimatedGIF()
        let count = ddim.steps.count
        for (d, p) in zip(ddim.steps, ddpm.steps) {
            let frame = RGBImage.grid([d, p].flatMap { [enlarge($0.latents), enlarge($0.noise * 0.5), enlarge($0.clean)] },
                                      columns: 3, labels: ["DDIM x_t", "DDIM predicted noise", "DDIM predicted x0",
                                                           "DDPM x_t", "DDPM predicted noise", "DDPM predicted x0"])
            // Two short lines, so every frame's caption bar has the same height.
            let caption = String(format: "step %d/%d   t = %d\nalpha_bar = %.4f   sigma = %.2f",
                                 d.index + 1, count, d.timestep, d.alphaBar, d.sigma)
            animation.addFrame(frame.captioned(caption), delay: d.index == count - 1 ? 200 : 20)
        }
        return animation
    }

    /// Stage 3's still: a few steps' x_t and x̂₀ of both samplers, then their results.
    func reverseSteps(_ ddim: SamplerRun, _ ddpm: SamplerRun) -> RGBImage {
        let picked = StepSelection.evenlySpaced(ddim.steps.count, count: 6)
        var tiles: [RGBImage] = [], labels: [String] = []
        for (run, name) in [(ddim, "DDIM"), (ddpm, "DDPM")] {
            tiles += picked.map { enlarge(run.steps[$0].latents) } + [enlarge(run.result)]
            labels += picked.map { "\(name) x_t, t=\(run.steps[$0].timestep)" } + ["\(name) result"]
            tiles += picked.map { enlarge(run.steps[$0].clean) } + [enlarge(run.steps.last!.clean)]
            labels += picked.map { _ in "\(name) predicted x0" } + ["\(name) last x0"]
        }
        return RGBImage.grid(tiles, columns: picked.count + 1, labels: labels,
                             title: "seed \(seed), \(steps) steps: x_t and the predicted x0")
    }

    /// The scatter plot of one shape's samples after step k (k = 0: the starting noise).
    func toyPlot(_ run: ToyRun, after k: Int, side: Int) -> RGBImage {
        let label = k == 0 ? "pure noise" : "step \(k), t=\(k < run.steps ? run.timesteps[k] : 0)"
        var plot = ScatterPlot(xRange: -3...3, yRange: -3...3, title: "\(run.shape.rawValue): \(label)", width: side, height: side)
        plot.legendPosition = .hidden
        plot.addPoints("data", points: run.data, color: RGBColor(hex: 0x9A9A9A), radius: 1.5, opacity: 0.8)
        plot.addPoints("samples", points: run.samples(after: k), color: RGBColor(hex: 0xD62728), radius: 2, opacity: 0.5)
        return plot.render()
    }

    /// Stage 6's animation: every shape's cloud after every step, side by side.
    func toyAnimation(_ runs: [ToyRun]) -> AnimatedGIF {
        var animation = AnimatedGIF()
        for k in 0...steps {
            animation.addFrame(RGBImage.sideBySide(runs.map { toyPlot($0, after: k, side: 340) }),
                               delay: k == 0 || k == steps ? 150 : 15)
        }
        return animation
    }

    /// Stage 6's still: one row per shape at `ToyRun.snapshotSteps`.
    func toySnapshots(_ runs: [ToyRun]) -> RGBImage {
        let picked = ToyRun.snapshotSteps(steps: steps)
        let plots = runs.flatMap { run in picked.map { toyPlot(run, after: $0, side: 220) } }
        return RGBImage.grid(plots, columns: picked.count, title: "grey: the data; red: 1000 samples (DDPM, seed \(seed))")
    }
}
