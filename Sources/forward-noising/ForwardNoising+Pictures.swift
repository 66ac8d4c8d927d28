import Foundation
import FrameExport
import LessonKit
import StableDiffusion

/// The pictures of lesson 1, drawn from numbers computed in `LessonKit`.
extension ForwardNoising {
    /// Stage 2's plot: ᾱ_t of all three schedules, and their SNR on a log scale, side by side.
    func schedulePlot(highlight: NoiseSchedule.Kind) -> RGBImage {
        var alphaPlot = LinePlot(title: "ᾱ_t: share of the picture's variance left at step t",
                                 xLabel: "timestep t", yLabel: "ᾱ_t", width: 720, height: 400)
        var snrPlot = LinePlot(title: "signal-to-noise ratio ᾱ_t / (1 − ᾱ_t)", xLabel: "timestep t",
                               yLabel: "SNR (log scale)", yScale: .logarithmic, width: 720, height: 400)
        for kind in NoiseSchedule.Kind.allCases {
            let s = NoiseSchedule(kind)
            let name = kind == highlight ? "\(kind.rawValue) (this run)" : kind.rawValue
            alphaPlot.addSeries(name, y: s.alphasCumprod)
            snrPlot.addSeries(name, y: s.signalToNoiseCurve)
        }
        return RGBImage.sideBySide([alphaPlot.render(), snrPlot.render()])
    }

    /// Stage 4's grid: x_t at each chosen timestep, labelled with ᾱ_t.
    func timestepGrid(_ tiles: [RGBImage], rows: [ScheduleRow]) -> RGBImage {
        let labels = rows.map { String(format: "t=%d  ᾱ=%.3f", $0.timestep, $0.alphaBar) }
        return RGBImage.grid(tiles, columns: min(4, tiles.count), labels: labels,
                             title: "x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε   (\(schedule.rawValue), seed \(seed))")
    }

    /// Stage 5's grid: one row per schedule, the same timesteps, x₀ and ε in every column.
    func scheduleComparison(_ steps: [Int], _ process: ForwardProcess) -> RGBImage {
        var tiles: [RGBImage] = [], labels: [String] = []
        for kind in NoiseSchedule.Kind.allCases {
            let other = process.with(schedule: NoiseSchedule(kind))
            for t in steps {
                tiles.append(RGBImage(tensor: other.noised(at: t)).thumbnail(maxSide: 128))
                labels.append(String(format: "%@ t=%d", kind.rawValue, t))
            }
        }
        return RGBImage.grid(tiles, columns: steps.count, labels: labels, title: "rows: scaled-linear, linear, cosine")
    }

    /// Stage 6's animation: one frame per timestep, captioned with ᾱ_t and the two factors.
    func forwardAnimation(_ process: ForwardProcess, timesteps: [Int]) -> AnimatedGIF {
        var animation = AnimatedGIF()
        for (frame, t) in timesteps.enumerated() {
            let row = process.schedule.row(at: t)
            // Two short lines, so every frame's caption bar has the same height.
            let caption = String(format: "t = %d   ᾱ = %.3f\n%.2f·x₀ + %.2f·ε", t, row.alphaBar, row.signalScale, row.noiseScale)
            // Hold the first and last frames a little longer so the eye can settle.
            let delay = frame == 0 || frame == timesteps.count - 1 ? 100 : 8
            animation.addFrame(RGBImage(tensor: process.noised(at: t)).captioned(caption), delay: delay)
        }
        return animation
    }

    /// Stage 7's plot: the histograms of x_t as density curves, with N(0, 1) for reference.
    func histogramPlot(_ histograms: [Histogram], at steps: [Int]) -> RGBImage {
        var plot = LinePlot(title: "distribution of pixel values in x_t", xLabel: "value", yLabel: "density",
                            width: 720, height: 420)
        for (t, histogram) in zip(steps, histograms) {
            plot.addSeries("t = \(t)", x: histogram.centres, y: histogram.densities)
        }
        // The standard normal density, where every histogram is heading.
        let centres = histograms[0].centres
        plot.addSeries("N(0, 1)", x: centres, y: centres.map(Histogram.standardNormalDensity),
                       color: RGBColor(hex: 0x888888))
        return plot.render()
    }
}
