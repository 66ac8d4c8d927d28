import Foundation
import FrameExport
import LessonKit
import StableDiffusion
import TensorCore

/// The last stage with a model: editing a picture. img2img is lesson 1's forward process run
/// part of the way on the picture's latents, then this lesson's backward process with a prompt.
extension BackwardDenoising {
    /// The strengths of the editing strip: SD's usual range, and for the shapes model more of the
    /// low end, where it switches from the picture to the prompt.
    static func strengths(shapesModel: Bool) -> [Double] {
        shapesModel ? [0.1, 0.2, 0.3, 0.4, 0.6, 1.0] : [0.2, 0.4, 0.6, 0.8, 1.0]
    }

    /// What gets edited: for the shapes model a drawn yellow circle on the left, which the prompt
    /// "a blue square" asks to change in colour, shape and place; for a checkpoint the built-in
    /// hills, edited with the lesson's prompt.
    func editingMaterial(model: LessonModel, drawing: LessonDrawing) throws -> (picture: RGBImage, source: String, prompt: String) {
        if model.isShapesModel {
            let scene = TinyShapesModel.heldOut.scene(colour: .yellow, shape: .circle, position: .left, index: 0)
            return (RGBImage(tensor: scene.render(size: drawing.width)), "a drawn picture, \"\(scene.caption)\"", "a blue square")
        }
        let (picture, source) = try InputPicture.load(nil)
        return (picture.aspectFilled(width: drawing.width, height: drawing.height), source, drawing.prompt)
    }

    func showEditing(_ drawing: LessonDrawing, model: LessonModel, pipeline: StableDiffusionPipeline, time: DenoisingTime,
                     _ narrator: Narrator, _ out: LessonOutput) throws {
        narrator.stage("Editing a picture: img2img and its strength")
        let (picture, source, prompt) = try editingMaterial(model: model, drawing: drawing)
        // A strength whose ⌊s · steps⌋ is 0 would run no step at all: left out.
        let strengths = Self.strengths(shapesModel: model.isShapesModel).filter { Int(Double(steps) * $0) >= 1 }
        let extraSteps = strengths.reduce(0) { $0 + Int(Double(steps) * $1) } + 2 * steps
        narrator.say(String(format: "This stage runs %d more steps, about %.0f s at this run's %.2f s per step (--editing off skips it).",
                            extraSteps, Double(extraSteps) * time.perStep, time.perStep))
        narrator.say("""
            The same two processes edit a picture. Encode it to latents, noise them with lesson 1's formula only \
            part of the way, to the timestep the strength picks, then run the sampler from there with a prompt. \
            With \(steps) steps, strength s runs the last ⌊s · \(steps)⌋ of them: what the noise has not yet \
            covered survives. Here \(source), edited towards "\(prompt)":
            """)
        narrator.show("strength   steps run   first t     √ᾱ_t (picture's amplitude left)"
                      + (model.isShapesModel ? "     read back" : ""))
        let alphas = pipeline.configuration.scheduler.alphasCumprod()
        var tiles = [picture], labels = ["the picture"], colours: [(strength: Double, colour: ShapeScene.Colour?)] = []
        for strength in strengths {
            var request = drawing.request(steps: steps, seed: seed, scheduler: scheduler, prompt: prompt)
            request.initImage = picture.toTensor()
            request.strength = strength
            var first: Float?, count = 0
            let image = try pipeline.generate(request, onStep: { step in
                if first == nil { first = step.timestep }
                count += 1
            }).image
            let t = Int((first ?? 999).rounded())
            let reading = model.isShapesModel ? ShapeReading(image) : nil
            colours.append((strength, reading?.colour))
            narrator.show(String(format: "%8.1f   %9d   %7d     %.3f", strength, count, t, alphas[min(t, alphas.count - 1)].squareRoot())
                          + (reading.map { "                              " + $0.colourAndPlace } ?? ""))
            tiles.append(RGBImage(tensor: image))
            labels.append(String(format: "strength %.1f", strength))
        }
        narrator.say("""
            At low strength the noise only hides fine detail, so the sampler keeps what is large (the layout, the \
            colours) and touches up the rest; at 1.0 it starts from nearly pure noise and the picture is gone: \
            lesson 1's order of destruction, run backwards. With SD 1.x the change is gradual; strengths of about \
            0.3 to 0.6 are common for edits that keep the composition (diffusers' default is 0.8).
            """)
        let kept = colours.filter { $0.colour == .yellow }.map(\.strength).max()
        let taken = colours.filter { $0.colour == .blue }.map(\.strength).min()
        if model.isShapesModel, let kept, let taken {
            narrator.say(String(format: """
                The shapes model keeps the picture's yellow up to strength %.1f (the round edge, a fine detail, may \
                already give way) and draws the prompt's blue square from %.1f on: it knows its few captions so \
                well that once the noise covers the shape, the prompt wins outright.
                """, kept, taken))
        }
        let cell = GridCell.size(width: drawing.width, height: drawing.height)
        let strip = RGBImage.grid(tiles.map { $0.resized(width: cell.width, height: cell.height) }, columns: tiles.count,
                                  labels: labels, title: "img2img towards \"\(prompt)\" (seed \(seed))")
        narrator.show("wrote " + (try out.save(strip, as: "04-img2img-strength.png", extra: [("img2img_prompt", prompt)])))
        try showNegativePrompt(drawing, model: model, pipeline: pipeline, narrator, out)
        narrator.pause()
    }

    /// A negative prompt takes the empty prompt's place in guidance.
    func showNegativePrompt(_ drawing: LessonDrawing, model: LessonModel, pipeline: StableDiffusionPipeline,
                            _ narrator: Narrator, _ out: LessonOutput) throws {
        // The shapes model learned whole captions, so its negative prompt is one too.
        let (prompt, negative) = model.isShapesModel ? ("a circle on the right", "a red circle") : (drawing.prompt, "blurry, dark")
        narrator.say("""
            A negative prompt is the same mechanism as guidance: it replaces the empty prompt, so \
            ε = ε_negative + w · (ε_text − ε_negative) pushes away from what it describes. "\(prompt)", same seed, \
            without and with the negative prompt "\(negative)" (w = \(drawing.cfg)):
            """)
        var tiles: [RGBImage] = []
        for negativePrompt in ["", negative] {
            var request = drawing.request(steps: steps, seed: seed, scheduler: scheduler, prompt: prompt)
            request.negativePrompt = negativePrompt
            let image = try pipeline.generate(request).image
            if model.isShapesModel {
                let reading = ShapeReading(image)
                narrator.show((negativePrompt.isEmpty ? "no negative prompt" : "negative \"\(negativePrompt)\"").padded(to: 24)
                              + "→ " + (reading?.colourAndPlace ?? "nothing drawn"))
            }
            tiles.append(RGBImage(tensor: image))
        }
        let cell = GridCell.size(width: drawing.width, height: drawing.height)
        let pair = RGBImage.grid(tiles.map { $0.resized(width: cell.width, height: cell.height) }, columns: 2,
                                 labels: ["no negative prompt", "negative: \(negative)"], title: "\"\(prompt)\" (seed \(seed))")
        narrator.show("wrote " + (try out.save(pair, as: "05-negative-prompt.png", extra: [("negative_prompt", negative)])))
    }
}
