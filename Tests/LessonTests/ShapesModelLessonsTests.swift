import Foundation
import FrameExport
import LessonKit
import StableDiffusion
import TensorCore
import Testing

/// Lessons 2-4 run on the shipped shapes model when no checkpoint is named: they find it from
/// any working folder (through the executable's location), use its size, prompts and guidance, and
/// what they draw follows the prompt.
@Suite("Lessons 2-4 default to the shipped shapes model")
struct ShapesModelLessonsTests {
    /// The top-left `side` x `side` pixels of a picture the lesson wrote (its caption is below).
    static func picture(_ url: URL, side: Int = 64) throws -> Tensor {
        try RGBImage(contentsOfFile: url.path).cropped(x: 0, y: 0, width: side, height: side).toTensor()
    }

    /// Runs `lesson` unattended into `out/` of a fresh folder, able to find the shipped model as a
    /// student's run does; returns the run and that `out` folder.
    static func run(_ lesson: String, _ arguments: [String] = []) throws -> (LessonRun, out: URL) {
        let folder = try LessonRunner.temporaryFolder()
        let run = try LessonRunner.run(lesson, ["--no-pause", "--output", "out"] + arguments, in: folder,
                                       environment: LessonRunner.shippedModel)
        #expect(run.status == 0, "stderr: \(run.errors)")
        return (run, folder.appendingPathComponent("out"))
    }

    @Test("backward-denoising: the built-in stages, then every step of the shapes model, which draws the prompt")
    func backwardDenoising() throws {
        let (run, out) = try Self.run("backward-denoising", ["--compare-steps", "5"])
        #expect(run.output.contains("shapes model that ships with this project"))
        #expect(LessonRunner.files(in: out).contains("05-steering.png"))             // the built-in stages ran
        #expect(LessonRunner.files(in: out.appendingPathComponent("shapes-model"))
                == ["00-result.png", "01-reverse.gif", "02-steps.png", "03-samplers.png", "04-img2img-strength.png",
                    "05-negative-prompt.png", "steps.csv"])
        // img2img: the lowest strength keeps the drawn yellow circle's colour, the highest is the prompt's blue.
        #expect(run.output.contains(#/\n +0\.1 +2 +41 +0\.980 +yellow, on the left/#), "\(run.output)")
        #expect(run.output.contains(#/\n +1\.0 +25 +961 +0\.085 +blue/#))
        let reading = ShapeReading(try Self.picture(out.appendingPathComponent("shapes-model/00-result.png")))
        #expect(reading?.colour == .blue && reading?.position == .top, "\(String(describing: reading))")
        // 25 steps at 64x64 with guidance 3 (the shapes model's defaults), one CSV row each.
        let csv = try String(contentsOf: out.appendingPathComponent("shapes-model/steps.csv"), encoding: .utf8)
        #expect(csv.split(separator: "\n").count == 26)
        #expect(run.output.contains("cfg 3.0") || run.output.contains("w = 3.0"))
    }

    @Test("vae-latents: a drawn shape through the shapes model's VAE, at 30 dB, with its own scaling factor")
    func vaeLatents() throws {
        let (run, out) = try Self.run("vae-latents")
        #expect(LessonRunner.files(in: out).contains("07-random-latent.png"))
        #expect(run.output.contains("scaled to 64x64"))
        #expect(run.output.contains("The scaling factor 0.518"))
        let psnr = try #require(run.output.firstMatch(of: #/PSNR (\d+\.\d) dB \(mean squared/#)).1
        #expect(Double(psnr)! >= 30, "reconstruction PSNR \(psnr) dB")
    }

    @Test("cross-attention: the shapes model's words, at its size and guidance, with its default swap")
    func crossAttention() throws {
        let (run, out) = try Self.run("cross-attention", ["--steps", "10"])
        #expect(run.output.contains("The text embedding (77 x 64)"))
        #expect(run.output.contains("\"a red triangle on the left\""))                   // circle=triangle
        let reading = ShapeReading(try Self.picture(out.appendingPathComponent("picture.png")))
        #expect(reading?.colour == .red && reading?.position == .left, "\(String(describing: reading))")
        #expect(LessonRunner.files(in: out).contains("guidance-scales.png"))
    }

    @Test("--checkpoint none keeps to the built-in material even where the shapes model could be found")
    func noneMeansBuiltIn() throws {
        let (run, out) = try Self.run("backward-denoising", ["--checkpoint", "none"])
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("shapes-model").path))
        #expect(!run.output.contains("shapes model that ships"))
    }
}
