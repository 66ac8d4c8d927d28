import ArgumentParser
import Foundation
import FrameExport
import LessonKit
import StableDiffusion
import TensorCore

/// Lesson 5: training. Where the network of lessons 2-4 comes from: a recipe that shows it noisy
/// pictures and corrects its guesses, millions of times.
///
/// Reads top to bottom like the lesson (`Lessons/05-training.md`): the data and what was left out
/// of it, the objective on one picture, backpropagation checked against nudging single weights, a
/// short live training run from scratch (`Training+Live.swift`), the shipped model drawing what it
/// never saw, and what training Stable Diffusion 1.5 cost (`Training+Cost.swift`). The numbers
/// come from `LessonKit` and `StableDiffusion`; these files narrate them.
///
/// ```
/// training                                  # step by step, Enter to advance; a 3-minute live run
/// training --no-pause --minutes 10          # a longer run: sharper samples
/// training --no-pause --diffusion-learning-rate 3e-3 --seed 7
/// ```
@main
struct Training: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "training",
        abstract: "Lesson 5: train a small Stable Diffusion from scratch, and see what training the real one cost.",
        discussion: """
            The live run uses the shapes model's recipe (sd train), cut short by --minutes. The lesson text is in \
            Lessons/05-training.md.
            """)

    @Option(help: "Minutes for the live training run (a third for the autoencoder, the rest for the diffusion model).")
    var minutes: Double = 3

    @Option(help: "Diffusion steps between sample sheets (the animation's frames) and autoencoder steps between round-trip sheets.")
    var saveEvery = 50

    @OptionGroup(title: "The recipe of the live run (defaults: the shipped model's, with a latent pool of 1024)")
    var recipeOptions: RecipeOptions

    @Option(help: ArgumentHelp("""
        The trained shapes model for the stages that need one (default: the shipped Examples/tiny-shapes; 'none': skip \
        those stages).
        """, valueName: "path"))
    var model: String?

    @Option(help: "Folder for the pictures, the animation, the tables and the live run's model.")
    var output = "output/training"

    @Flag(help: "Run straight through without waiting for Enter.")
    var noPause = false

    @OptionGroup var kernelsOption: KernelsOption

    /// The live run's recipe before the options: the shipped one, with a smaller latent pool so
    /// that encoding it takes seconds, not half a minute.
    static var lessonRecipe: TinyShapesRecipe {
        var recipe = TinyShapesRecipe()
        recipe.latentPool = 1024
        return recipe
    }

    /// The tensors whose weights stage 3 probes: the first convolution, the time embedding, the first
    /// cross-attention's key projection (it reads the text), the middle block, the last layer.
    static let probedWeights = [
        "conv_in.weight", "time_embedding.linear_1.weight",
        "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight", "mid_block.resnets.0.conv1.weight",
        "conv_out.bias",
    ]

    mutating func validate() throws {
        guard minutes > 0, minutes.isFinite, minutes <= 24 * 60 else {
            throw ValidationError("--minutes must be a positive number of minutes (at most a day), got \(minutes)")
        }
        guard saveEvery >= 1 else { throw ValidationError("--save-every must be at least 1, got \(saveEvery)") }
        do { try recipe.validate() } catch { throw ValidationError("\(error)") }
    }

    var recipe: TinyShapesRecipe { recipeOptions.recipe(from: Self.lessonRecipe) }

    func run() throws {
        let narrator = Narrator(pauses: !noPause)
        narrator.title("Lesson 5 · Training",
                       subtitle: "show the network noisy pictures, measure how wrong it is, nudge every weight; repeat")
        // Open the model before creating anything, so a bad path leaves no folder behind.
        let trained = try trainedModel()
        let out = try LessonOutput(output, parameters: [
            ("lesson", "training"), ("seed", "\(recipe.seed)"), ("minutes", "\(minutes)"),
            ("model", trained == nil ? "none" : model ?? "tiny-shapes (shipped)"),
        ])

        try showData(narrator, out)
        let objective = try trained.map { try TrainingObjective(pipeline: $0, seed: recipe.seed) }
        if let objective {
            try showObjective(objective, narrator, out)
        } else {
            explainWhatNeedsTheModel(narrator)
        }
        try showBackpropagation(objective, narrator)
        let live = try trainLive(narrator, out)
        let trainedPSNR = try trained.map { try ShapesTrainingPictures.roundTrips(vae: $0.vae(), step: 0).psnr }
        try showLosses(live, trainedPSNR: trainedPSNR, narrator, out)
        try showSamplesOverTraining(live, narrator, out)
        if let trained { try showLeftOutPairs(trained, narrator, out) }
        try showCost(live, narrator, out)

        narrator.stage("Done")
        narrator.say("Files written:\n" + out.summary)
        narrator.say("""
            The live run's model is a checkpoint like any other: sd generate --checkpoint \(live.folder) --prompt "a red \
            circle" --cfg 3. The whole recipe, 23 minutes on two cores, is sd train --output DIR.
            """)
    }

    /// The trained shapes model's folder: `--model`, else the shipped one; nil for 'none' or when it
    /// is not found.
    var trainedModelPath: String? {
        model == "none" ? nil : model ?? LessonCheckpoint.shippedModelPath()
    }

    /// The trained shapes model, opened (nil: see `trainedModelPath`).
    func trainedModel() throws -> StableDiffusionPipeline? {
        try trainedModelPath.map { try LessonCheckpoint.pipeline($0) }
    }

    // MARK: - Stage 1: the data

    func showData(_ narrator: Narrator, _ out: LessonOutput) throws {
        narrator.stage("The data: pictures drawn by code, and their captions")
        let data = ShapesDataset(seed: recipe.seed)
        let colours = ShapeScene.Colour.allCases.count, shapes = ShapeScene.Shape.allCases.count
        let places = ShapeScene.Position.allCases.count
        let census = DataCensus(data, count: 10_000)
        narrator.say("""
            Stable Diffusion learned from about two billion photos with their captions from the web. This model \
            learns from an endless stream of 64x64 pictures drawn by code: \(colours) colours x \(shapes) shapes x \
            \(places) places = \(colours * shapes * places) captions, each drawn with a little jitter in place, size, \
            shade and background. Picture i of seed \(recipe.seed) is always the same picture.
            """)
        narrator.say("""
            Two pairs are left out on purpose, in every place: a green triangle and a red square. The model will see \
            green things and triangles, red things and squares, but never those pairs. If it can draw them at the end \
            (stage 7), it has learned colour and shape as separate ideas, not copied pictures.
            """)
        narrator.show("in the first \(Format.grouped(census.total)) training pictures:")
        for colour in ShapeScene.Colour.allCases {
            let row = ShapeScene.Shape.allCases.map { shape in
                "\(shape.rawValue) \(Format.grouped(census.count(colour, shape)))".padded(to: 16)
            }.joined()
            narrator.show("  " + colour.rawValue.padded(to: 8) + row)
        }
        narrator.show("wrote " + (try out.save(dataPicture(data), as: "00-data.png")))
        narrator.pause()
    }

    // MARK: - Stage 2: the objective

    func showObjective(_ objective: TrainingObjective, _ narrator: Narrator, _ out: LessonOutput) throws {
        narrator.stage("The objective: say which noise was added")
        narrator.say("""
            One training example, exactly as SD's training code makes it: take a picture's latents x₀ (the VAE's \
            encoder, times the scaling factor), pick a timestep t at random from 0 to 999 and noise ε ~ N(0, I), jump \
            straight to x_t, and ask the network which noise it sees. The loss is the squared error:
            """)
        narrator.show("x_t  = √ᾱ_t · x₀ + √(1 − ᾱ_t) · ε")
        narrator.show("loss = mean( (ε_θ(x_t, t, text) − ε)² )")
        narrator.say("""
            With 10% probability the caption is replaced by the empty prompt. Then the same network also learns to \
            answer without text, ε_θ(x_t, t, ""), which is exactly what classifier-free guidance mixes with the \
            prompted answer when sampling (lesson 2).
            """)
        let example = try objective.example(scene: ShapesDataset(seed: recipe.seed).scene(Self.examplePicture),
                                        timesteps: Self.exampleTimesteps, seed: recipe.seed)
        narrator.say("Picture \(Self.examplePicture) of the training data, \"\(example.caption)\", at five timesteps:")
        narrator.show("    t     ᾱ_t    loss: untrained   trained, caption   trained, empty prompt")
        for row in example.rows {
            narrator.show(String(format: "%5d   %.4f        %.3f             %.4f              %.4f", row.timestep, row.alphaBar,
                                 row.untrainedLoss, row.trainedLoss, row.emptyPromptLoss))
        }
        let untrained = example.rows.map(\.untrainedLoss).reduce(0, +) / Float(example.rows.count)
        let (first, last) = (example.rows.first!, example.rows.last!)
        let mostHelped = example.rows.max { $0.emptyPromptLoss / $0.trainedLoss < $1.emptyPromptLoss / $1.trainedLoss }!
        narrator.say(String(format: """
            The untrained network (random weights, as training starts) is off by %.2f on average: about the size of \
            ε itself, whose mean square is 1. The trained one is far closer: %.4f at t = %d, where x_t is nearly all \
            noise and the noise is easy to name, %.4f at t = %d, where the noise is a faint layer over a clear \
            picture and telling the two apart is hard (stage 5 shows the same in the loss curves).
            """, untrained, last.trainedLoss, last.timestep, first.trainedLoss, first.timestep))
        narrator.say(String(format: """
            With the empty prompt instead of the caption the same network does worse, most of all at t = %d \
            (%.4f against %.4f): where the noise hides most of the picture, the words say what is under it. That \
            difference, ε_text − ε_empty, is what guidance multiplies.
            """, mostHelped.timestep, mostHelped.emptyPromptLoss, mostHelped.trainedLoss))
        narrator.show("wrote " + (try out.save(objectivePicture(example), as: "01-objective.png")))
        narrator.pause()
    }

    /// The picture and timesteps of stage 2.
    static let examplePicture = 3
    static let exampleTimesteps = [50, 250, 500, 750, 950]

    func explainWhatNeedsTheModel(_ narrator: Narrator) {
        narrator.stage("The objective: say which noise was added")
        narrator.say("""
            x_t = √ᾱ_t · x₀ + √(1 − ᾱ_t) · ε and loss = mean((ε_θ(x_t, t, text) − ε)²). This stage shows them on a \
            real picture with the trained shapes model, which was not found (run from the project folder, or pass \
            --model Examples/tiny-shapes). The live run below needs no model.
            """)
        narrator.pause()
    }

    // MARK: - Stage 3: backpropagation

    func showBackpropagation(_ objective: TrainingObjective?, _ narrator: Narrator) throws {
        narrator.stage("Backpropagation: one backward pass, every gradient")
        narrator.say("""
            To improve, every weight must move a little in the direction that lowers the loss: w ← w − η · ∂loss/∂w \
            (AdamW scales each step, but this is the idea). The slope ∂loss/∂w could be measured by nudging one \
            weight and running the network again. Backpropagation gets all of them at once: it runs the network \
            forward, keeping what each layer saw, then walks the layers backwards with the chain rule. Here, at the \
            random weights training starts from, both ways for one weight of five tensors:
            """)
        let parameters = try RandomWeights.parameters(seed: recipe.seed &+ 3) {
            _ = try UNet2DConditionModel($0, configuration: TinyShapesModel.unet)
        }
        let batch = try probeBatch(objective)
        let started = Date()
        let probe = try GradientProbe(parameters: parameters, configuration: TinyShapesModel.unet, batch: batch,
                                      keys: Self.probedWeights)
        let seconds = Date().timeIntervalSince(started) / Double(1 + 2 * Self.probedWeights.count)
        narrator.show("weight".padded(to: 66) + "backprop      nudged ±\(probe.nudge)")
        for row in probe.rows {
            narrator.show("\(row.key)[\(row.index)]".padded(to: 66)
                          + String(format: "%+.6f   %+.6f", row.backprop, row.nudged))
        }
        let worst = probe.rows.map { abs($0.backprop - $0.nudged) / max(abs($0.backprop), 1e-12) }.max() ?? 0
        narrator.say(String(format: """
            They agree to %.1f%% or better (the nudged slope carries Float32 rounding and an error of order h²). One \
            forward and backward pass took about %.2f s and gave the gradient of all %@ weights. Nudging would need \
            two forward passes per weight, %@ in all, about %@ at a third of that time each, for a single training \
            step. Every layer has its backward beside its forward in the tensor core (the plain loops in \
            Sources/TensorCore/Reference/), each checked against PyTorch's autograd.
            """, 100 * worst, seconds, Format.grouped(probe.parameterCount), Format.grouped(2 * probe.parameterCount),
            Format.duration(seconds / 3 * Double(2 * probe.parameterCount))))
        narrator.pause()
    }

    /// Two training pictures' latents with captions from the trained model, or, without it, random
    /// latents and text vectors of the right shapes: the gradients are checked all the same.
    func probeBatch(_ objective: TrainingObjective?) throws -> GradientProbe.Batch {
        var generator = TorchGenerator(seed: recipe.seed)
        let latentShape = [2, TinyShapesModel.unet.inChannels, 8, 8]
        let (latents, context): (Tensor, Tensor)
        if let objective {
            let scenes = (0..<2).map { ShapesDataset(seed: recipe.seed).scene($0) }
            latents = try objective.latents(Tensor.concatenate(scenes.map { $0.render() }, axis: 0))
            context = try objective.pipeline.encode(prompts: scenes.map(\.caption))
        } else {
            latents = generator.randn(latentShape)
            context = generator.randn([2, CLIPTokenizer.contextLength, TinyShapesModel.unet.crossAttentionDim])
        }
        return GradientProbe.Batch(latents: latents, context: context, timesteps: [300, 700], noise: generator.randn(latentShape))
    }
}
