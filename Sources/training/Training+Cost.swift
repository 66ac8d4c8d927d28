import Foundation
import FrameExport
import LessonKit
import StableDiffusion
import TensorCore

/// Stages 7-8: the shipped model drawing what it never saw, and what training costs.
extension Training {
    /// The guidance scales stage 7 compares, after the empty prompt.
    static let guidanceScales: [Float] = [1, 3, 7.5]


    func showLeftOutPairs(_ pipeline: StableDiffusionPipeline, _ narrator: Narrator, _ out: LessonOutput) throws {
        narrator.stage("The shipped model draws what it never saw")
        narrator.say("""
            The shipped model trained for 23 minutes (1400 + 1800 steps). Asked for the two pairs it never saw, in \
            every place, at seed 0 and guidance 3, each picture read back by its pixels (the colour of the shape's \
            pixels, and where their centre is; judge the shapes by eye in 05-left-out-pairs.png):
            """)
        let side = pipeline.configuration.unet.sampleSize * 8
        var tiles: [RGBImage] = [], labels: [String] = [], right = 0
        for (colour, shape) in ShapesDataset.leftOut {
            for position in ShapeScene.Position.allCases {
                let caption = ShapeScene(colour: colour, shape: shape, position: position).caption
                let image = try pipeline.generate(GenerationRequest(prompt: caption, guidanceScale: LessonModel.shapesGuidance,
                                                                    seed: 0, width: side, height: side)).image
                let reading = ShapeReading(image)
                let ok = reading?.colour == colour && reading?.position == position
                right += ok ? 1 : 0
                narrator.show(caption.padded(to: 34) + "→ " + (reading?.colourAndPlace ?? "nothing drawn") + (ok ? "" : "   (wrong)"))
                tiles.append(RGBImage(tensor: image).enlarged(toAtLeast: 128))
                labels.append(caption)
            }
        }
        narrator.say("""
            \(right) of \(tiles.count) have the asked colour in the asked place. A perfect denoiser of the training \
            pictures (lesson 2) could never draw these: there is no green triangle among them to copy. The network \
            learned "green" and "triangle" as separate ideas, from other pictures, and the words' vectors combine \
            in cross-attention.
            """)
        narrator.show("wrote " + (try out.save(RGBImage.grid(tiles, columns: 5, labels: labels,
                                                            title: "never in the training data (seed 0, guidance 3)"),
                                               as: "05-left-out-pairs.png")))
        try showGuidance(pipeline, side: side, narrator, out)
        narrator.pause()
    }

    /// Guidance 0 (no text: what the 10% of dropped captions taught), 1, 3 and 7.5.
    func showGuidance(_ pipeline: StableDiffusionPipeline, side: Int, _ narrator: Narrator, _ out: LessonOutput) throws {
        let prompt = "a green triangle on the left"
        narrator.say("""
            The dropped captions are what make guidance possible: they taught the network an answer without text. \
            Here, same seed, the empty prompt (that answer: some shape, somewhere), then "\(prompt)" with guidance \
            w = 1 (the text's answer alone), 3 and 7.5 (w times as far along the difference, ε_empty + w · (ε_text − \
            ε_empty)):
            """)
        var tiles: [RGBImage] = [], labels: [String] = []
        for (text, scale) in [("", Float(1))] + Self.guidanceScales.map({ (prompt, $0) }) {
            let image = try pipeline.generate(GenerationRequest(prompt: text, guidanceScale: scale, seed: 1, width: side, height: side)).image
            let label = text.isEmpty ? "empty prompt" : String(format: "w = %g", scale)
            narrator.show(label.padded(to: 14) + "→ " + (ShapeReading(image)?.colourAndPlace ?? "nothing drawn"))
            tiles.append(RGBImage(tensor: image).enlarged(toAtLeast: 128))
            labels.append(label)
        }
        narrator.say("""
            At w = 7.5 the network is pushed to a prediction it never made in training: the shape loses its form \
            and its colour drifts. Lesson 4 shows the same at 7.5 and 12.
            """)
        narrator.show("wrote " + (try out.save(RGBImage.grid(tiles, columns: tiles.count, labels: labels,
                                                            title: "\(prompt), seed 1"), as: "06-guidance.png")))
    }

    // MARK: - Stage 8: the cost

    func showCost(_ live: LiveRun, _ narrator: Narrator, _ out: LessonOutput) throws {
        narrator.stage("What training costs: this run, the shipped model, Stable Diffusion 1.5")
        let sd = try TrainingCost.sd15()
        narrator.say("""
            Stable Diffusion 1.5's training, counted from its architecture: each picture costs the UNet forward and \
            backward (3 x the forward: the backward computes a gradient for each layer's input and one for its \
            weights), plus the frozen VAE encoder and text encoder forward. Batches of \(TrainingCost.sd15Batch), \
            the published schedule:
            """)
        narrator.show("checkpoint   steps      size      per picture     whole stretch")
        var csv = "checkpoint,steps,side,flop_per_picture,flop_total\n"
        for (i, stretch) in TrainingCost.sd15Schedule.enumerated() {
            narrator.show(stretch.checkpoint.padded(to: 13) + Format.grouped(stretch.steps).padded(to: 11)
                          + "\(stretch.side)²".padded(to: 10) + Format.flops(gflop: sd.sampleFLOPs[i] / 1e9).padded(to: 16)
                          + Format.flops(gflop: sd.stretchFLOPs[i] / 1e9))
            csv += "\(stretch.checkpoint),\(stretch.steps),\(stretch.side),\(sd.sampleFLOPs[i]),\(sd.stretchFLOPs[i])\n"
        }
        let hours = sd.gpuHours(utilisation: TrainingCost.assumedUtilisation)
        let pricePerHour = TrainingCost.reportedDollars / TrainingCost.reportedGPUHours
        narrator.say(String(format: """
            In all %@. An A100 does at most %.0f TFLOP/s of 16-bit matrix products; a large training run keeps \
            about %.0f%% of that, so this is %@ A100-hours (%.1f days on the %d GPUs), or $%@ at the $%.0f an hour the \
            reported figures imply. The reported figures are %@ A100-hours and about $%@: %.0f times more, as if the \
            GPUs had run at %.1f%% of their peak.
            """, Format.flops(gflop: sd.totalFLOPs / 1e9), TrainingCost.a100Peak / 1e12, 100 * TrainingCost.assumedUtilisation,
            Format.grouped(Int(hours)), hours / Double(TrainingCost.sd15GPUs) / 24, TrainingCost.sd15GPUs,
            Format.grouped(Int(hours * pricePerHour)), pricePerHour, Format.grouped(Int(TrainingCost.reportedGPUHours)),
            Format.grouped(Int(TrainingCost.reportedDollars)), TrainingCost.reportedGPUHours / hours, 100 * sd.impliedUtilisation))
        narrator.say("""
            Why the gap: the reported hours are for all of SD v1, not one line of checkpoints (v1-3 and v1-4 are \
            two more branches of 195k and 225k steps, and every release had experiments and restarts behind it); \
            the training code of 2022 computed attention the plain way, writing every 4096 x 4096 score matrix to \
            memory and reading it back, so much of each step waited on memory, not arithmetic; and waiting for \
            2048 web pictures per step, saving checkpoints and keeping the EMA all take GPU time without \
            arithmetic. The estimate counts only the arithmetic that cannot be avoided.
            """)

        let shippedRecipe = TinyShapesRecipe()
        let shipped = try TrainingCost.shapesModel(shippedRecipe)
        let shippedFLOPs = shipped.autoencoder + shipped.pool + shipped.diffusion
        let shippedSeconds = Self.shippedTrainingSeconds
        let liveCost = try TrainingCost.shapesModel(live.recipe)
        let liveFLOPs = liveCost.autoencoder + (live.recipe.diffusionSteps > 0 ? liveCost.pool : 0) + liveCost.diffusion
        let liveSeconds = live.autoencoderSeconds + live.diffusionSeconds
        let rate = liveFLOPs / liveSeconds
        narrator.say(String(format: """
            The shapes model, counted the same way: its recipe is %@ (autoencoder %@, encoding the pool %@, \
            diffusion %@, where the text encoder is trained too). It took %@ on two CPU cores, %.1f GFLOP/s. This \
            lesson's run did %@ in %@, %.1f GFLOP/s on this computer. SD 1.5's training is %@ times more \
            arithmetic; at this run's speed it would take %@.
            """, Format.flops(gflop: shippedFLOPs / 1e9), Format.flops(gflop: shipped.autoencoder / 1e9),
            Format.flops(gflop: shipped.pool / 1e9), Format.flops(gflop: shipped.diffusion / 1e9),
            Format.duration(shippedSeconds), shippedFLOPs / shippedSeconds / 1e9, Format.flops(gflop: liveFLOPs / 1e9),
            Format.duration(liveSeconds), rate / 1e9, Format.grouped(Int(sd.totalFLOPs / shippedFLOPs)),
            Format.duration(sd.totalFLOPs / rate)))
        csv += "tiny-shapes (shipped),\(shippedRecipe.autoencoderSteps + shippedRecipe.diffusionSteps),64,,\(shippedFLOPs)\n"
        csv += "this run,\(live.recipe.autoencoderSteps + live.recipe.diffusionSteps),64,,\(liveFLOPs)\n"
        narrator.show("wrote " + (try out.save(text: csv, as: "07-cost.csv")))
    }

    /// The shipped model's training time: 23 min 35 s on a 2-core AMD EPYC (Examples/tiny-shapes/README.md).
    static let shippedTrainingSeconds = 23.0 * 60 + 35
}
