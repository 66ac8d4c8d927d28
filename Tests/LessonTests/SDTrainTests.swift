import Foundation
import FrameExport
import StableDiffusion
import TensorCore
import Testing

/// `sd train` run as a user would, on a miniature recipe (a few steps of two pictures).
@Suite("sd train: the recipe from the command line, its record and its refusals")
struct SDTrainTests {
    static let miniature = ["--autoencoder-steps", "2", "--autoencoder-batch", "2", "--latent-pool", "4",
                            "--diffusion-steps", "2", "--diffusion-batch", "2", "--save-every", "1"]

    @Test("a whole run writes a diffusers folder, the losses, pictures and the recipe, and no state")
    func wholeRun() throws {
        let folder = try LessonRunner.temporaryFolder()
        let run = try LessonRunner.run("sd", ["train", "--output", "model"] + Self.miniature, in: folder)
        #expect(run.status == 0, "\(run.errors)")
        #expect(run.errors.contains("2/2"))   // the progress bar
        let model = folder.appendingPathComponent("model")
        for file in ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
                     "vae/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors", "tokenizer/vocab.json",
                     "scheduler/scheduler_config.json", "training/recipe.json",
                     "training/autoencoder-00001.png", "training/samples-00002.png"] {
            #expect(FileManager.default.fileExists(atPath: model.appendingPathComponent(file).path), "\(file)")
        }
        #expect(!FileManager.default.fileExists(atPath: model.appendingPathComponent("training/state.safetensors").path))
        let losses = try String(contentsOf: model.appendingPathComponent("training/losses.csv"), encoding: .utf8)
            .split(separator: "\n")
        #expect(losses.first == "phase,step,l1,kl,mse")
        #expect(losses.dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).prefix(2).joined(separator: ",") }
                == ["autoencoder,1", "autoencoder,2", "diffusion,1", "diffusion,2"])

        // The model is a checkpoint like any other; its pictures default to its own size, 64x64.
        let generate = try LessonRunner.run("sd", ["generate", "--checkpoint", "model", "--prompt", "a red circle",
                                                   "--steps", "2", "--output", "red.png"], in: folder)
        #expect(generate.status == 0, "\(generate.errors)")
        #expect(!generate.errors.contains("never learned"))
        // Words outside the captions' vocabulary: said once, and the picture is still made.
        let unknown = try LessonRunner.run("sd", ["generate", "--checkpoint", "model", "--prompt", "a purple dog",
                                                  "--steps", "2", "--output", "dog.png"], in: folder)
        #expect(unknown.status == 0, "\(unknown.errors)")
        #expect(unknown.errors.contains("never learned the words 'purple', 'dog'"), "\(unknown.errors)")
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("dog.png").path))
        let picture = try RGBImage(contentsOfFile: folder.appendingPathComponent("red.png").path)
        #expect(picture.width == 64 && picture.height == 64)
    }

    @Test("--minutes ends each phase early, and recipe.json records the steps actually taken")
    func timeLimit() throws {
        let folder = try LessonRunner.temporaryFolder()
        let run = try LessonRunner.run("sd", ["train", "--output", "model"] + Self.miniature
                                       + ["--autoencoder-steps", "100000", "--diffusion-steps", "100000", "--minutes", "0.1"], in: folder)
        #expect(run.status == 0, "\(run.errors)")
        let data = try Data(contentsOf: folder.appendingPathComponent("model/training/recipe.json"))
        let recipe = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let autoencoder = try #require(recipe["autoencoderSteps"] as? Int), diffusion = try #require(recipe["diffusionSteps"] as? Int)
        #expect((1..<100_000).contains(autoencoder) && (1..<100_000).contains(diffusion), "\(recipe)")
        let rows = try String(contentsOf: folder.appendingPathComponent("model/training/losses.csv"), encoding: .utf8)
            .split(separator: "\n").count - 1
        #expect(rows == autoencoder + diffusion)
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("model/model_index.json").path))
    }

    @Test("bad input: one clear message, non-zero exit, nothing written", arguments: [
        BadInput(arguments: ["--minutes", "0"], message: "--minutes must be a positive number"),
        BadInput(arguments: ["--diffusion-batch", "0"], message: "the diffusion batch must be"),
        BadInput(arguments: ["--resume", "start.png"], message: "start.png"),
        BadInput(arguments: ["--resume", "plain.safetensors"], message: "not a saved training run"),
        BadInput(arguments: ["--output", "start.png/inside"], message: "start.png"),
        BadInput(arguments: ["--resume", "plain.safetensors", "--seed", "3"], message: "its own recipe; leave out --seed"),
    ])
    func badInput(_ bad: BadInput) throws {
        let folder = try LessonRunner.temporaryFolder()
        try RGBImage(width: 8, height: 8, color: .white).writePNG(to: folder.appendingPathComponent("start.png").path)
        // A safetensors file with one tensor: a valid file, but no training state.
        try SafeTensorsWriter.write(["w": Tensor(shape: [1], scalars: [1])],
                                    to: folder.appendingPathComponent("plain.safetensors").path)
        let before = LessonRunner.files(in: folder)
        // A resumed run keeps its saved recipe, so only fresh runs get the miniature one.
        let recipe = bad.arguments.contains("--resume") ? [] : Self.miniature
        let run = try LessonRunner.run("sd", ["train", "--output", "model"] + recipe + bad.arguments, in: folder)
        #expect(run.status != 0)
        #expect(run.errors.contains(bad.message), "stderr: \(run.errors)")
        #expect(LessonRunner.files(in: folder) == before)
    }

    @Test("a folder holding an unfinished run is not overwritten: the message says how to resume it")
    func unfinishedRun() throws {
        let folder = try LessonRunner.temporaryFolder()
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("model/training"), withIntermediateDirectories: true)
        try Data("state".utf8).write(to: folder.appendingPathComponent("model/training/state.safetensors"))
        let run = try LessonRunner.run("sd", ["train", "--output", "model"] + Self.miniature, in: folder)
        #expect(run.status != 0)
        #expect(run.errors.contains("--resume model/training/state.safetensors"), "stderr: \(run.errors)")
    }
}
