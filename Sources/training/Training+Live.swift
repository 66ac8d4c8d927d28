import Foundation
import FrameExport
import LessonKit
import StableDiffusion
import TensorCore

/// What the live run leaves for the stages after it.
struct LiveRun {
    /// The run's folder: a diffusers model (once the diffusion phase has begun) and its `training/` trail.
    let folder: String
    /// The recipe, with each phase's step count lowered to the steps it had time for.
    let recipe: TinyShapesRecipe
    let autoencoderSeconds: Double, diffusionSeconds: Double
    /// Every step's losses: (step, L1, MSE) of the autoencoder, (step, MSE) of the diffusion model.
    let autoencoderLosses: [(step: Int, l1: Double, mse: Double)]
    let diffusionLosses: [(step: Int, mse: Double)]
    let byTimestep: LossByTimestep
    /// The sheets written along the way, by step: round trips through the VAE, and samples.
    let roundTripSheets: [(step: Int, path: String)], sampleSheets: [(step: Int, path: String)]
    /// The held-out PSNR through the VAE at the end of its phase, and the measured scaling factor.
    let psnr: Double?, scalingFactor: Float?
}

/// Stages 4-6: a training run from scratch, its loss curves and its samples over time.
extension Training {
    func trainLive(_ narrator: Narrator, _ out: LessonOutput) throws -> LiveRun {
        narrator.stage("Training from scratch, live (\(Format.duration(minutes * 60)))")
        let recipe = self.recipe
        narrator.say("""
            Now the whole recipe, from random weights, on this computer, cut short to fit in \
            \(Format.duration(minutes * 60)). It is the recipe of the shipped model (sd train), in two phases:
            """)
        narrator.show("""
            1. autoencoder: \(recipe.autoencoderBatch) fresh pictures per step; loss = L1 + squared error + a tiny KL term; \
            AdamW, learning rate \(recipe.autoencoderLearningRate)
            """)
        narrator.show("""
            2. diffusion:   \(recipe.diffusionBatch) captioned latents per step; loss = mean((ε̂ − ε)²); text encoder and \
            UNet together, \(Int(recipe.captionDropout * 100))% captions dropped; AdamW, learning rate \(recipe.diffusionLearningRate)
            """)
        narrator.say("""
            Between them, the scaling factor is measured (one over the spread of \(recipe.latentPool) encoded \
            pictures), as SD's 0.18215 was. The autoencoder gets a third of the time. Released weights are the \
            moving averages (EMA, decay \(recipe.emaDecay)), as in SD.
            """)

        let folder = out.path("model")
        // A finished earlier run of this lesson is replaced, not mixed with this one.
        if FileManager.default.fileExists(atPath: folder + "/training/losses.csv") {
            try FileManager.default.removeItem(atPath: folder)
        }
        let training = try TinyShapesTraining(recipe: recipe)
        let run = try ShapesTrainingRun(folder: folder, training: training, saveEvery: saveEvery)
        var roundTrips: [(Int, String)] = [], samples: [(Int, String)] = []
        run.onPicture = { path in
            let name = (path as NSString).lastPathComponent
            let step = Int(name.filter(\.isNumber)) ?? 0
            if name.hasPrefix("samples") { samples.append((step, path)) } else { roundTrips.append((step, path)) }
        }
        let start = Date()
        run.deadline = start + minutes * 60
        var autoencoder: [(Int, Double, Double)] = [], diffusion: [(Int, Double)] = []
        var byTimestep = LossByTimestep()
        var autoencoderEnd = start, lastLine = Date.distantPast
        try run.run { report in
            let value = { (name: String) in Double(report.losses.first { $0.name == name }?.value ?? .nan) }
            switch report.phase {
            case .autoencoder:
                autoencoder.append((report.step, value("L1"), value("MSE")))
                autoencoderEnd = Date()
            case .diffusion, .finished:
                if diffusion.isEmpty {
                    narrator.show(String(format: "scaling factor measured: %.4f; the diffusion phase begins", training.scalingFactor ?? 1))
                }
                diffusion.append((report.step, value("MSE")))
                byTimestep.add(step: report.step, report.samples)
            }
            if Date().timeIntervalSince(lastLine) >= 10 || report.step == 1 {
                lastLine = Date()
                let losses = report.losses.map { String(format: "%@ %.4g", $0.name, $0.value) }.joined(separator: "  ")
                narrator.show("\(report.phase.rawValue.padded(to: 12)) step \(String(report.step).rightAligned(to: 5))  "
                              + losses.padded(to: 40) + Format.duration(Date().timeIntervalSince(start)))
            }
        }
        let end = Date()
        narrator.show(String(format: "done: %d autoencoder steps in %.0f s, %d diffusion steps in %.0f s",
                             training.recipe.autoencoderSteps, autoencoderEnd.timeIntervalSince(start),
                             training.recipe.diffusionSteps, end.timeIntervalSince(autoencoderEnd)))
        narrator.pause()
        return LiveRun(folder: folder, recipe: training.recipe, autoencoderSeconds: autoencoderEnd.timeIntervalSince(start),
                       diffusionSeconds: end.timeIntervalSince(autoencoderEnd),
                       autoencoderLosses: autoencoder.map { (step: $0.0, l1: $0.1, mse: $0.2) },
                       diffusionLosses: diffusion.map { (step: $0.0, mse: $0.1) }, byTimestep: byTimestep,
                       roundTripSheets: roundTrips.map { (step: $0.0, path: $0.1) },
                       sampleSheets: samples.map { (step: $0.0, path: $0.1) }, psnr: run.lastPSNR,
                       scalingFactor: training.scalingFactor)
    }

    // MARK: - Stage 5: the losses

    /// - Parameter trainedPSNR: the trained model's VAE on the same held-out pictures, if there is one.
    func showLosses(_ live: LiveRun, trainedPSNR: Double?, _ narrator: Narrator, _ out: LessonOutput) throws {
        narrator.stage("The loss curves, overall and by noise level")
        if let first = live.autoencoderLosses.first, let last = live.autoencoderLosses.last {
            narrator.say(String(format: """
                Autoencoder: the L1 error of a pixel fell from %.3f to %.3f (on a scale of -1 to 1) in %d steps; \
                held-out pictures come back at %.1f dB
                """, first.l1, last.l1, last.step, live.psnr ?? .nan)
                + (trainedPSNR.map { String(format: " (the shipped model's VAE, after its 1400 steps: %.1f dB).", $0) } ?? "."))
        }
        guard live.diffusionLosses.count >= 2 else {
            narrator.say("The diffusion phase had no time for steps. Give the run more --minutes.")
            narrator.show("wrote " + (try out.save(lossPlots(live, shipped: shippedLosses()), as: "02-losses.png")))
            narrator.pause()
            return
        }
        let steps = live.diffusionLosses.count, window = max(1, steps / 10)
        let early = mean(live.diffusionLosses.prefix(window).map(\.mse))
        let late = mean(live.diffusionLosses.suffix(window).map(\.mse))
        narrator.say(String(format: """
            Diffusion: the noise-prediction loss averaged %.3f over the first %d steps and %.3f over the last %d. It \
            never nears 0: t and ε are drawn afresh every step, and at small t no network can fully tell the faint \
            noise from the picture. The batch's own mix of timesteps makes the curve jitter.
            """, early, window, late, window))
        let byT = live.byTimestep
        narrator.show("mean loss by noise level:   first \(window) steps   last \(window) steps")
        var csv = "t_from,t_to,steps_from,steps_to,mean_mse\n"
        for r in 0..<byT.rangeCount {
            let t = byT.timesteps(ofRange: r)
            let a = byT.mean(range: r, steps: 1...window), b = byT.mean(range: r, steps: steps - window + 1...steps)
            narrator.show("  t = \(t.lowerBound)-\(t.upperBound)".padded(to: 28)
                          + (a.map { String(format: "%.3f", $0) } ?? "-").padded(to: 19) + (b.map { String(format: "%.3f", $0) } ?? "-"))
            let curve = byT.curve(range: r, window: window)
            for (x, y) in zip(curve.x, curve.y) {
                csv += "\(t.lowerBound),\(t.upperBound),\(Int(x) - window + 1),\(Int(x)),\(y)\n"
            }
        }
        let ends = (0..<byT.rangeCount).compactMap { byT.mean(range: $0, steps: steps - window + 1...steps) }
        if let small = ends.first, let large = ends.last {
            narrator.say(String(format: """
                At the end, the smallest t (%.3f) is %@ the largest (%.3f). When x_t is nearly all noise, ε ≈ x_t and the \
                network only has to pass its input through; when t is small the noise is a whisper over a clear \
                picture. Yet the small-t steps decide the final details and the large-t steps the layout, so every \
                range matters; SD draws t uniformly, as here.
                """, small, small > large ? "above" : "below", large))
        }
        narrator.show("wrote " + (try out.save(text: csv, as: "losses-by-timestep.csv")))
        narrator.show("wrote " + (try out.save(lossPlots(live, shipped: shippedLosses()), as: "02-losses.png")))
        narrator.pause()
    }

    /// The shipped model's diffusion losses from its training record, if it is here.
    func shippedLosses() -> [(step: Int, mse: Double)] {
        guard let path = trainedModelPath,
              let text = try? String(contentsOfFile: path + "/training/losses.csv", encoding: .utf8) else { return [] }
        return text.split(separator: "\n").dropFirst().compactMap { line in
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            guard fields.count == 5, fields[0] == "diffusion", let step = Int(fields[1]), let mse = Double(fields[4]) else { return nil }
            return (step, mse)
        }
    }

    func mean(_ values: [Double]) -> Double { values.reduce(0, +) / Double(max(1, values.count)) }

    // MARK: - Stage 6: the samples

    func showSamplesOverTraining(_ live: LiveRun, _ narrator: Narrator, _ out: LessonOutput) throws {
        narrator.stage("What it draws, as it learns")
        if let last = live.roundTripSheets.last {
            let sheet = try RGBImage(contentsOfFile: last.path)
            narrator.show("wrote " + (try out.save(sheet, as: "03-autoencoder.png")))
        }
        guard !live.sampleSheets.isEmpty else {
            narrator.say("No diffusion steps were taken, so there is nothing to draw yet. Give the run more --minutes.")
            narrator.pause()
            return
        }
        narrator.say("""
            Every \(saveEvery) diffusion steps the run wrote its model and drew the 12 sample prompts (seed 0, guidance \
            3), two of them the left-out pairs; the animation plays the sheets in order.
            """)
        var animation = AnimatedGIF()
        for (i, sheet) in live.sampleSheets.enumerated() {
            animation.addFrame(try RGBImage(contentsOfFile: sheet.path), delay: i == live.sampleSheets.count - 1 ? 300 : 80)
        }
        narrator.show("wrote " + (try out.save(animation, as: "04-samples-over-training.gif")))
        let final = try RGBImage(contentsOfFile: live.sampleSheets.last!.path)
        narrator.preview(final, columns: 60)
        narrator.show("wrote " + (try out.save(final, as: "04-samples-final.png")))

        // Read the final model's pictures back: does it follow the words yet?
        let pipeline = try StableDiffusionPipeline(checkpoint: live.folder)
        let readings = try TinyShapesModel.samplePrompts.map { prompt in
            ShapeReading(try pipeline.generate(GenerationRequest(prompt: prompt, guidanceScale: 3, width: 64, height: 64)).image)
        }
        let asked = TinyShapesModel.samplePrompts.map { prompt in
            ShapeScene.Colour.allCases.first { prompt.contains($0.rawValue) }
        }
        let rightColour = zip(readings, asked).filter { $0?.colour != nil && $0?.colour == $1 }.count
        let colours = Set(readings.compactMap { $0?.colour })
        let steps = live.recipe.diffusionSteps
        if colours.count <= 1 {
            narrator.say("""
                After \(steps) steps it draws \(colours.first.map { "a \($0.rawValue) blob" } ?? "no shape") for every prompt: it \
                has learned what all the pictures share (a light background, one saturated shape somewhere), but not \
                yet what the words say. That is the first thing every run learns; the words take hold later.
                """)
        } else {
            narrator.say("""
                After \(steps) steps \(rightColour) of the 12 pictures have the asked colour (read back by their \
                pixels): the words have begun to steer.
                """)
        }
        try showShippedTrail(narrator, out)
        narrator.pause()
    }

    /// The shipped model's own sheets from its 23-minute run, as a second animation.
    func showShippedTrail(_ narrator: Narrator, _ out: LessonOutput) throws {
        guard let path = trainedModelPath else { return }
        let folder = path + "/training"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [])
            .filter { $0.hasPrefix("samples-") && $0.hasSuffix(".png") }.sorted()
        guard names.count >= 2 else { return }
        var animation = AnimatedGIF()
        for (i, name) in names.enumerated() {
            animation.addFrame(try RGBImage(contentsOfFile: folder + "/" + name), delay: i == names.count - 1 ? 300 : 150)
        }
        let steps = names.map { String(Int($0.filter(\.isNumber)) ?? 0) }.joined(separator: ", ")
        narrator.say("""
            The shipped model's run kept its sheets after \(steps) diffusion steps. At 100 it painted blotches; at \
            300 one blue shape whatever the prompt, where short runs end; at 600 colours and places follow the \
            words, with mistakes; at 1800 every picture is right, the left-out pairs included.
            """)
        narrator.show("wrote " + (try out.save(animation, as: "04-samples-shipped-run.gif")))
    }
}
