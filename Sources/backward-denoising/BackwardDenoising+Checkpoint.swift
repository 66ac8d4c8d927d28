import ArgumentParser
import Foundation
import FrameExport
import LessonKit
import StableDiffusion
import TensorCore

/// With a trained network: text-to-image with the shapes model or a Stable Diffusion checkpoint,
/// every step opened up.
extension BackwardDenoising {
    /// The options, with `model`'s defaults where none was given; `side` is the model's picture size.
    func drawing(model: LessonModel, side: Int) -> LessonDrawing {
        LessonDrawing(model: model, side: side, prompt: prompt, cfg: cfg, width: width, height: height,
                      defaults: (sd: Self.defaultPrompt, shapes: Self.shapesPrompt))
    }

    /// The generation this run asks for.
    func request(_ drawing: LessonDrawing, scheduler: SchedulerKind, steps: Int) -> GenerationRequest {
        drawing.request(steps: steps, seed: seed, scheduler: scheduler)
    }

    /// The samplers and step counts of the comparison grid (empty for 'none').
    func comparison() throws -> (samplers: [SchedulerKind], steps: [Int]) {
        if compareSamplers.trimmingCharacters(in: .whitespaces) == "none" { return ([], []) }
        let samplers = try compareSamplers.split(separator: ",").map { part -> SchedulerKind in
            let name = part.trimmingCharacters(in: .whitespaces)
            guard let kind = SchedulerKind(rawValue: name) else {
                let names = SchedulerKind.allCases.map(\.rawValue).joined(separator: ", ")
                throw ValidationError("--compare-samplers: '\(name)' is not a sampler; choose from \(names) or 'none'")
            }
            return kind
        }
        let counts = try compareSteps.split(separator: ",").map { part -> Int in
            let text = part.trimmingCharacters(in: .whitespaces)
            guard let n = Int(text), (1...1000).contains(n) else {
                throw ValidationError("--compare-steps: '\(text)' is not a step count between 1 and 1000")
            }
            return n
        }
        guard !samplers.isEmpty, !counts.isEmpty else {
            throw ValidationError("--compare-samplers and --compare-steps need at least one entry each (or --compare-samplers none)")
        }
        return (samplers, counts)
    }

    func runWithModel(_ model: LessonModel, narrator: Narrator, output: String) throws {
        // Open the checkpoint before creating anything, so a bad path leaves no folder behind.
        let pipeline = try LessonCheckpoint.pipeline(model.path)
        let drawing = drawing(model: model, side: pipeline.configuration.unet.sampleSize * 8)
        let request = request(drawing, scheduler: scheduler, steps: steps)
        try request.validate()
        let (samplers, counts) = try comparison()
        let out = try LessonOutput(output, parameters: [
            ("lesson", "backward-denoising"), ("checkpoint", model.name),
            ("prompt", request.prompt), ("seed", "\(seed)"), ("steps", "\(steps)"), ("cfg", "\(drawing.cfg)"),
            ("scheduler", scheduler.rawValue), ("size", "\(drawing.width)x\(drawing.height)"),
        ])

        try showPromptAndNoise(request, model: model, pipeline: pipeline, narrator)
        let preview = try pipeline.latentPreview()
        let (recorded, time) = try showDenoisingLoop(request, pipeline: pipeline, preview: preview, narrator, out)
        try showDecodedSteps(recorded, pipeline: pipeline, preview: preview, request: request, narrator, out)
        if !samplers.isEmpty {
            try showSamplers(samplers, counts: counts, drawing: drawing, time: time, pipeline: pipeline, narrator, out)
        }
        if editing { try showEditing(drawing, model: model, pipeline: pipeline, time: time, narrator, out) }
        narrator.stage("Done")
        narrator.say("Files written:\n" + out.summary)
        if model.isShapesModel {
            // One guided step (batch 2) of each UNet, counted from its architecture.
            let here = UNet2DConditionModel.flopCount(configuration: pipeline.configuration.unet, latentHeight: request.height / 8,
                                                      latentWidth: request.width / 8, batch: 2)
            let sd = UNet2DConditionModel.flopCount(configuration: StableDiffusionConfiguration.sd15.unet, latentHeight: 64,
                                                    latentWidth: 64, batch: 2)
            narrator.say(String(format: """
                With Stable Diffusion 1.5 (--checkpoint PATH) the same stages run at 512x512 with 64x64x4 latents \
                and an 860-million-weight UNet: %@ per step instead of %@, %.0f times the arithmetic, for pictures \
                of anything its captions described.
                """, Format.flops(gflop: sd / 1e9), Format.flops(gflop: here / 1e9), sd / here))
        }
    }

    /// Stage 1: the text and the starting noise.
    func showPromptAndNoise(_ request: GenerationRequest, model: LessonModel, pipeline: StableDiffusionPipeline,
                            _ narrator: Narrator) throws {
        narrator.stage("The prompt and the starting noise")
        if model.isShapesModel { narrator.say(LessonCheckpoint.aboutTheShapesModel) }
        let tokenizer = try pipeline.tokenizer()
        let tokens = tokenizer.tokenize(request.prompt)
        let cut = tokens.truncatedCount > 0 ? " (the last \(tokens.truncatedCount) do not fit and are ignored)" : ""
        narrator.say("Prompt: \"\(request.prompt)\" → \(tokens.tokens.count) tokens for the text encoder\(cut).")
        let unknown = tokenizer.wordsWithoutToken(in: request.prompt)
        if model.isShapesModel, !unknown.isEmpty {
            narrator.say("The shapes model never saw the words \(unknown.map { "'\($0)'" }.joined(separator: ", ")); it draws from the rest.")
        }
        let latentShape = [1, pipeline.configuration.unet.inChannels, request.height / 8, request.width / 8]
        narrator.say("""
            The picture is made in latent space: \(latentShape[1]) x \(latentShape[2]) x \(latentShape[3]) numbers \
            for a \(request.width)x\(request.height) picture (lesson 3 explains why). Sampling starts from pure noise \
            of that shape, seed \(seed), sampler \(scheduler.rawValue): \(scheduler.summary).
            """)
        let cfg = request.guidanceScale
        if request.usesGuidance {
            narrator.say("""
                Guidance w = \(cfg): every step runs the UNet twice (as one batch of two), once with the empty prompt \
                and once with the text, and mixes ε = ε_uncond + w · (ε_text − ε_uncond).
                """)
        } else {
            narrator.say("Guidance is off (--cfg \(cfg) ≤ 1): one UNet call per step, with the text only.")
        }
        narrator.pause()
    }

    /// Stage 2: the denoising loop, opened up. Returns every step and the time it took.
    func showDenoisingLoop(_ request: GenerationRequest, pipeline: StableDiffusionPipeline, preview: LatentPreview,
                           _ narrator: Narrator, _ out: LessonOutput) throws -> ([DenoisingStep], DenoisingTime) {
        narrator.stage("Step by step: x_t, the predicted noise, the predicted picture")
        let alphas = pipeline.configuration.scheduler.alphasCumprod()   // ᾱ_t, for σ_t of every step
        var recorded: [DenoisingStep] = [], numbers: [CheckpointStep] = []
        let result = try pipeline.generate(request, onStep: { step in
            let n = CheckpointStep(step, alphasCumprod: alphas)
            recorded.append(step)
            numbers.append(n)
            if step.index == 0 { narrator.show("step      t    sigma   std x_t   std eps   std x0   rms(eps_text - eps_uncond)") }
            narrator.show(String(format: "%4d   %4.0f  %7.3f    %6.3f    %6.3f   %6.3f   %@", n.index + 1, n.timestep, n.sigma,
                                 n.latentStd, n.noiseStd, n.cleanStd, n.guidanceGap.map { String(format: "%.4f", $0) } ?? "-"))
        })
        let time = DenoisingTime(timings: result.timings, steps: recorded.count)
        let first = numbers.first!, last = numbers.last!
        narrator.say(String(format: """
            %d steps in %.1f s (%.2f s per step). sigma, the noise measured against the picture (x_t / sqrt(alpha_bar) \
            = x0 + sigma·eps), falls from %.2f to %.3f. The spread of x_t goes from %.2f to %.2f, that of the \
            predicted x0 from %.2f to %.2f.
            """, recorded.count, time.seconds, time.perStep, first.sigma, last.sigma, first.latentStd,
            result.latents.standardDeviation, first.cleanStd, last.cleanStd))
        narrator.say("""
            In the animation (01-reverse.gif) watch the predicted x0: the first steps settle the layout and colours, \
            the later ones only sharpen details. Below it, the two noise predictions that guidance mixes, and where \
            they differ: that map is where the text is changing the picture.
            """)
        narrator.show("time per stage: " + result.timings.map { String(format: "%@ %.1f s", $0.stage, $0.seconds) }
            .joined(separator: ", "))
        let final = RGBImage(tensor: result.image)
        narrator.preview(final)
        let caption = "\(request.prompt)\nseed \(seed), \(steps) steps, \(scheduler.rawValue), cfg \(request.guidanceScale)"
        narrator.show("wrote " + (try out.save(final.captioned(caption), as: "00-result.png")))
        var animation = AnimatedGIF()
        for (i, step) in recorded.enumerated() {
            animation.addFrame(panel(step, numbers[i], preview: preview), delay: i == recorded.count - 1 ? 200 : 25)
        }
        narrator.show("wrote " + (try out.save(animation, as: "01-reverse.gif")))
        var csv = ["step,timestep,sigma,latent_std,noise_std,x0_std,guidance_gap_rms"]
        for (i, n) in numbers.enumerated() {
            csv.append(String(format: "%d,%.0f,%.5f,%.5f,%.5f,%.5f,%@", i + 1, n.timestep, n.sigma, n.latentStd,
                              n.noiseStd, n.cleanStd, n.guidanceGap.map { String(format: "%.5f", $0) } ?? ""))
        }
        narrator.show("wrote " + (try out.save(text: csv.joined(separator: "\n") + "\n", as: "steps.csv")))
        narrator.pause()
        return (recorded, time)
    }

    /// Stage 3: selected steps through the real decoder.
    func showDecodedSteps(_ recorded: [DenoisingStep], pipeline: StableDiffusionPipeline, preview: LatentPreview,
                          request: GenerationRequest,
                          _ narrator: Narrator, _ out: LessonOutput) throws {
        narrator.stage("The predicted picture through the VAE decoder")
        narrator.say("""
            The previews above are a cheap colour projection of the latents. Here the predicted x0 of a few steps \
            goes through the real VAE decoder, the same one that makes the final picture.
            """)
        let vae = try pipeline.vae()
        let cell = GridCell.size(width: request.width, height: request.height)
        var tiles: [RGBImage] = [], labels: [String] = []
        let picked = StepSelection.evenlySpaced(recorded.count, count: 5)
        for i in picked {
            let s = recorded[i]
            tiles.append(RGBImage(tensor: preview.rgb(s.latents)).resized(width: cell.width, height: cell.height, filter: .nearest))
            labels.append(String(format: "x_t  step %d  t=%.0f", i + 1, s.timestep))
        }
        for i in picked {
            let decoded = try vae.decode(scaledLatents: recorded[i].predictedOriginal)
            tiles.append(RGBImage(tensor: decoded).resized(width: cell.width, height: cell.height))
            labels.append("x0 (VAE)  step \(i + 1)")
        }
        narrator.show("wrote " + (try out.save(RGBImage.grid(tiles, columns: picked.count, labels: labels,
                                                            title: "\(request.prompt) (seed \(seed))"),
                                               as: "02-steps.png")))
        narrator.pause()
    }

    /// Stage 4: samplers and step counts, same seed.
    func showSamplers(_ samplers: [SchedulerKind], counts: [Int], drawing: LessonDrawing, time: DenoisingTime,
                      pipeline: StableDiffusionPipeline, _ narrator: Narrator, _ out: LessonOutput) throws {
        narrator.stage("Samplers and step counts, same seed")
        narrator.say("""
            Every sampler below starts from the same noise (seed \(seed)) and asks the same UNet the same question; \
            they differ only in how they turn ε̂ into the next x_t.
            """)
        let cost = time.comparison(samplers: samplers.count, stepCounts: counts)
        narrator.say(String(format: "That is %d more steps, about %.0f s at this run's %.2f s per step (--compare-samplers none skips it).",
                            cost.steps, cost.seconds, time.perStep))
        let cell = GridCell.size(width: drawing.width, height: drawing.height)
        var grid: [RGBImage] = [], labels: [String] = []
        for kind in samplers {
            for n in counts {
                let begin = Date()
                let image = try pipeline.generate(request(drawing, scheduler: kind, steps: n)).image
                grid.append(RGBImage(tensor: image).resized(width: cell.width, height: cell.height))
                labels.append("\(kind.rawValue), \(n) steps")
                narrator.show(kind.rawValue.padding(toLength: 16, withPad: " ", startingAt: 0)
                              + String(format: "%4d steps  %6.1f s", n, Date().timeIntervalSince(begin)))
            }
        }
        narrator.show("wrote " + (try out.save(RGBImage.grid(grid, columns: counts.count, labels: labels,
                                                            title: "same prompt and seed; rows: samplers, columns: steps"),
                                               as: "03-samplers.png",
                                               extra: [("compare_samplers", compareSamplers), ("compare_steps", compareSteps)])))
        narrator.pause()
    }

    /// One frame: x_t, the guided ε̂ and x̂₀ on top; the two predictions guidance mixes below.
    func panel(_ s: DenoisingStep, _ numbers: CheckpointStep, preview: LatentPreview) -> RGBImage {
        func show(_ latent: Tensor) -> RGBImage { RGBImage(tensor: preview.rgb(latent)).enlarged(toAtLeast: 192) }
        var images = [show(s.latents), show(s.noisePrediction), show(s.predictedOriginal)]
        var labels = ["noisy latent x_t", "predicted noise (guided)", "predicted x0"]
        if let u = s.unconditionalNoise, let t = s.textNoise, let gap = CheckpointStep.guidanceMap(of: s) {
            let heat = RGBImage(heatmap: gap.values, width: gap.width, height: gap.height, colorMap: .magma)
            images += [show(u), show(t), heat.resized(width: images[0].width, height: images[0].height, filter: .nearest)]
            labels += ["unconditional noise", "text noise", "|text - uncond|"]
        }
        let caption = String(format: "step %d/%d   t = %.0f   sigma = %.3f", s.index + 1, s.count, s.timestep, numbers.sigma)
        return RGBImage.grid(images, columns: 3, labels: labels).captioned(caption)
    }
}
