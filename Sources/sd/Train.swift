import ArgumentParser
import Foundation
import LessonKit
import StableDiffusion
import TensorCore

/// `sd train`: trains the shapes model from scratch, SD's recipe in miniature, and writes it as a
/// diffusers folder that every other command opens with `--checkpoint`.
///
/// ```
/// $ sd train --output tiny-shapes                      # the shipped model's recipe, about half an hour
/// autoencoder: 900 steps of 16 pictures
/// [##############................] 412/900 L1 0.0262 KL 1.1e+03  4:02 elapsed, ETA 4:47
/// ...
/// $ sd train --output tiny-shapes --resume tiny-shapes/training/state.safetensors   # after an interruption
/// ```
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train the tiny shapes model from scratch (VAE, then text encoder and UNet).",
        discussion: """
            Writes a diffusers folder to --output, with training/losses.csv, pictures along the way and a \
            resumable state in training/. The same seed and thread count give the same weights.
            """)

    @Option(help: ArgumentHelp("The folder to write the model and its training record to.", valueName: "dir"))
    var output: String

    @OptionGroup(title: "The recipe") var recipeOptions: RecipeOptions

    @Option(help: "Stop each phase early so the run ends within this many minutes (a third for the autoencoder).")
    var minutes: Double?

    @Option(help: "Steps between saved states and pictures.")
    var saveEvery = 100

    @Option(help: ArgumentHelp("Continue an interrupted run from its training/state.safetensors.", valueName: "file"))
    var resume: String?

    func validate() throws {
        if let minutes, !(minutes > 0 && minutes.isFinite) {
            throw ValidationError("--minutes must be a positive number, got \(minutes)")
        }
        guard saveEvery >= 1 else { throw ValidationError("--save-every must be at least 1, got \(saveEvery)") }
        if resume != nil, !recipeOptions.given.isEmpty {
            throw ValidationError("""
                --resume continues the saved run with its own recipe; leave out \(recipeOptions.given.joined(separator: ", "))
                """)
        }
    }

    func run() throws {
        setvbuf(stdout, nil, _IOLBF, 0)   // lines in order with the progress bar on standard error
        let training: TinyShapesTraining
        if let resume {
            training = try TinyShapesTraining(resuming: resume)
            print("resuming: \(training.phase.rawValue), \(training.stepsDone) of \(training.steps(of: training.phase)) steps done")
        } else {
            let state = output + "/training/state.safetensors"
            guard !FileManager.default.fileExists(atPath: state) else {
                throw ValidationError("'\(output)' holds an unfinished run; continue it with --resume \(state), or choose another --output")
            }
            let recipe = recipeOptions.recipe(from: TinyShapesRecipe())
            training = try TinyShapesTraining(recipe: recipe)
        }
        let run = try ShapesTrainingRun(folder: output, training: training, saveEvery: saveEvery)
        run.deadline = minutes.map { Date() + $0 * 60 }
        run.onPicture = { print("wrote \($0)") }

        var progress: ProgressBar?
        var phase: TinyShapesTraining.Phase?
        try run.run { report in
            if report.phase != phase {
                progress?.finish()
                phase = report.phase
                progress = ProgressBar(total: report.steps)
                let recipe = training.recipe
                print(report.phase == .autoencoder
                      ? "autoencoder: \(report.steps) steps of \(recipe.autoencoderBatch) pictures"
                      : String(format: "diffusion: %d steps of %d captioned latents (scaling factor %.4f)",
                               report.steps, recipe.diffusionBatch, training.scalingFactor ?? 1))
            }
            let losses = report.losses.map { "\($0.name) \(String(format: "%.3g", $0.value))" }.joined(separator: " ")
            progress?.update(report.step, total: report.steps, detail: losses)
        }
        progress?.finish()
        if let psnr = run.lastPSNR { print(String(format: "held-out round trips through the VAE: PSNR %.1f dB", psnr)) }
        guard training.recipe.diffusionSteps > 0 else {
            print("no diffusion steps, so no model was written; the autoencoder's progress is in \(output)/training/")
            return
        }
        print("wrote the model to \(output)/ (the diffusers layout) and its training record to \(output)/training/")
        print("try: sd generate --checkpoint \(output) --prompt \"a green triangle on the left\" --cfg 3 --output triangle.png")
    }
}
