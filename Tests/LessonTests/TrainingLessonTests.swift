import Foundation
import FrameExport
import LessonKit
import StableDiffusion
import TensorCore
import Testing

/// Lesson 5 run as a student runs it, with a live run small enough for a test: every stage, its
/// pictures, and the model it trains, which opens like any checkpoint.
@Suite("Lesson 5: training")
struct TrainingLessonTests {
    /// The recipe `sd train`'s tests use: two steps of each phase, a sheet after each.
    static let tinyRun = SDTrainTests.miniature

    @Test("an unattended run: the data, the objective, backprop against nudging, a live run, the left-out pairs, the cost")
    func wholeLesson() throws {
        let folder = try LessonRunner.temporaryFolder()
        let run = try LessonRunner.run("training", ["--no-pause", "--output", "out"] + Self.tinyRun, in: folder)
        #expect(run.status == 0, "stderr: \(run.errors)")
        let out = folder.appendingPathComponent("out")
        #expect(LessonRunner.files(in: out) == [
            "00-data.png", "01-objective.png", "02-losses.png", "03-autoencoder.png", "04-samples-final.png",
            "04-samples-over-training.gif", "04-samples-shipped-run.gif", "05-left-out-pairs.png", "06-guidance.png",
            "07-cost.csv", "losses-by-timestep.csv", "model",
        ])
        // The census: both left-out pairs never appear.
        #expect(run.output.contains("green   circle") && run.output.contains("triangle 0 "))
        #expect(run.output.contains("square 0 "))
        // Backprop and nudging agree on every probed weight (to 1%).
        let rows = run.output.split(separator: "\n").filter { $0.contains(".weight[") || $0.contains(".bias[") }
        #expect(rows.count == 5)
        for row in rows {
            let numbers = row.split(separator: " ").suffix(2).compactMap { Double($0) }
            #expect(numbers.count == 2 && abs(numbers[0] - numbers[1]) <= 0.01 * abs(numbers[0]), "\(row)")
        }
        // The live run: 2 + 2 steps, a model that opens and draws.
        let losses = try String(contentsOf: out.appendingPathComponent("model/training/losses.csv"), encoding: .utf8)
        #expect(losses.split(separator: "\n").count == 1 + 2 + 2)
        let pipeline = try StableDiffusionPipeline(checkpoint: out.appendingPathComponent("model").path)
        #expect(try pipeline.generate(GenerationRequest(prompt: "a red circle", steps: 2, width: 64, height: 64)).image.shape == [1, 3, 64, 64])
        // The shipped model draws the left-out pairs (10 of 10 when measured; room for other CPUs' rounding).
        let drawn = try #require(run.output.firstMatch(of: #/(\d+) of 10 have the asked colour in the asked place/#)).1
        #expect(Int(drawn)! >= 8)
        // The cost: SD 1.5's estimate and the reported hours.
        #expect(run.output.contains("In all 9.9 ZFLOP"))
        #expect(run.output.contains("150,000"))
        let cost = try String(contentsOf: out.appendingPathComponent("07-cost.csv"), encoding: .utf8)
        #expect(cost.hasPrefix("checkpoint,steps,side,flop_per_picture,flop_total\nv1-1,237000,256,"))
    }

    @Test("bad input: one clear message, non-zero exit, nothing written", arguments: [
        BadInput(arguments: ["--minutes", "0"], message: "--minutes must be a positive number"),
        BadInput(arguments: ["--minutes", "nan"], message: "--minutes must be a positive number"),
        BadInput(arguments: ["--save-every", "0"], message: "--save-every must be at least 1"),
        BadInput(arguments: ["--diffusion-batch", "0"], message: "diffusion batch"),
        BadInput(arguments: ["--autoencoder-learning-rate=-1"], message: "autoencoder learning rate"),
        BadInput(arguments: ["--model", "no/such/model"], message: "cannot use checkpoint"),
    ])
    func badInput(_ input: BadInput) throws {
        let folder = try LessonRunner.temporaryFolder()
        let run = try LessonRunner.run("training", ["--no-pause", "--output", "out"] + input.arguments, in: folder)
        #expect(run.status != 0)
        #expect(run.errors.contains(input.message), "stderr: \(run.errors)")
        #expect(!run.errors.contains("Fatal error"))
        #expect(LessonRunner.files(in: folder).isEmpty)
    }

    @Test("--model none skips the stages that need the trained model; the live run still trains")
    func withoutTheModel() throws {
        let folder = try LessonRunner.temporaryFolder()
        let run = try LessonRunner.run("training", ["--no-pause", "--output", "out", "--model", "none"] + Self.tinyRun, in: folder)
        #expect(run.status == 0, "stderr: \(run.errors)")
        let files = LessonRunner.files(in: folder.appendingPathComponent("out"))
        #expect(!files.contains("01-objective.png") && !files.contains("05-left-out-pairs.png"))
        #expect(files.contains("02-losses.png") && files.contains("model"))
    }
}
