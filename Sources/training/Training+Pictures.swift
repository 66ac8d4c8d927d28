import Foundation
import FrameExport
import LessonKit
import StableDiffusion
import TensorCore

/// The pictures of lesson 5, drawn from numbers computed in `LessonKit`.
extension Training {
    /// Stage 1: sixteen training pictures with their captions, and a row of the left-out pairs.
    func dataPicture(_ data: ShapesDataset) -> RGBImage {
        let scenes = (0..<16).map(data.scene)
        let leftOut = ShapesDataset.leftOut.flatMap { colour, shape in
            [ShapeScene.Position.left, .top, .right, .bottom].map { ShapeScene(colour: colour, shape: shape, position: $0) }
        }
        return RGBImage.grid((scenes + leftOut).map { RGBImage(tensor: $0.render()).enlarged(toAtLeast: 128) }, columns: 8,
                             labels: scenes.map(\.caption) + leftOut.map { "never: " + $0.caption },
                             title: "the first 16 training pictures of seed \(data.seed); last row: pairs never in the training data")
    }

    /// Stage 2: per timestep, x_t and what the trained and the untrained network make of it.
    func objectivePicture(_ example: TrainingObjective.Example) -> RGBImage {
        let show = { (pixels: Tensor) in RGBImage(tensor: pixels).enlarged(toAtLeast: 128) }
        var tiles: [RGBImage] = [], labels: [String] = []
        for row in example.rows {
            tiles += [show(row.noisy), show(row.trainedClean), show(row.untrainedClean)]
            labels += ["x_t, t = \(row.timestep)", String(format: "trained: x0, loss %.3f", row.trainedLoss),
                       String(format: "untrained: x0, loss %.2f", row.untrainedLoss)]
        }
        return RGBImage.grid(tiles, columns: 3, labels: labels,
                             title: "\"\(example.caption)\": x_t, and the x0 each network's noise prediction implies")
    }

    /// Stage 5: the autoencoder's losses, the diffusion loss (with the shipped run's), and the
    /// diffusion loss by range of t.
    func lossPlots(_ live: LiveRun, shipped: [(step: Int, mse: Double)]) -> RGBImage {
        var autoencoder = LinePlot(title: "autoencoder: reconstruction error per step", xLabel: "step",
                                   yLabel: "loss (log scale)", yScale: .logarithmic, width: 560, height: 380)
        autoencoder.addSeries("L1", x: live.autoencoderLosses.map { Double($0.step) }, y: live.autoencoderLosses.map(\.l1))
        autoencoder.addSeries("squared error", x: live.autoencoderLosses.map { Double($0.step) },
                              y: live.autoencoderLosses.map(\.mse))
        var plots = [autoencoder.render()]
        guard live.diffusionLosses.count >= 2 else { return RGBImage.sideBySide(plots) }

        let window = max(1, live.diffusionLosses.count / 40)
        var diffusion = LinePlot(title: "diffusion: noise-prediction loss (mean of \(window) steps)", xLabel: "step",
                                 yLabel: "squared error of the noise", width: 560, height: 380)
        diffusion.xRange = 1...Double(live.diffusionLosses.last!.step)
        let smooth = { (points: [(step: Int, mse: Double)]) -> (x: [Double], y: [Double]) in
            let chunks = stride(from: 0, to: points.count, by: window).map { points[$0..<min(points.count, $0 + window)] }
            return (chunks.map { Double($0.last!.step) }, chunks.map { self.mean($0.map(\.mse)) })
        }
        let this = smooth(live.diffusionLosses)
        diffusion.addSeries("this run", x: this.x, y: this.y)
        if !shipped.isEmpty {
            let whole = smooth(shipped.filter { $0.step <= live.diffusionLosses.last!.step })
            diffusion.addSeries("the shipped model's run", x: whole.x, y: whole.y)
        }
        plots.append(diffusion.render())

        let byT = live.byTimestep, tWindow = max(1, live.diffusionLosses.count / 20)
        var ranges = LinePlot(title: "diffusion loss by noise level (mean of \(tWindow) steps)", xLabel: "step",
                              yLabel: "squared error, log scale", yScale: .logarithmic, width: 560, height: 380)
        for r in 0..<byT.rangeCount {
            let t = byT.timesteps(ofRange: r), curve = byT.curve(range: r, window: tWindow)
            ranges.addSeries("t = \(t.lowerBound)-\(t.upperBound)", x: curve.x, y: curve.y)
        }
        plots.append(ranges.render())
        return RGBImage.sideBySide(plots)
    }
}
