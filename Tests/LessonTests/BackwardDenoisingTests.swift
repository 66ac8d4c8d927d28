import Foundation
import FrameExport
import Testing

@Suite("Lesson 2: backward-denoising, run as a user would")
struct BackwardDenoisingTests {
    /// The tiny random-weight model: every code path runs, the pictures mean nothing.
    static var tinyCheckpoint: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("StableDiffusionTests/Fixtures/tiny/diffusers").path
    }

    @Test("without a checkpoint: the perfect denoiser's pictures, both animations and the numbers")
    func builtInRun() throws {
        let folder = try LessonRunner.temporaryFolder()
        let out = folder.appendingPathComponent("out")
        let run = try LessonRunner.run("backward-denoising", [
            "--no-pause", "--output", out.path, "--steps", "6", "--seed", "7", "--size", "16",
        ])
        #expect(run.status == 0, "stderr: \(run.errors)")
        #expect(LessonRunner.files(in: out) == [
            "00-training-set.png", "01-perfect-denoiser.png", "02-reverse.gif", "03-reverse-steps.png",
            "04-memorisation.png", "05-steering.png", "06-toy-2d.gif", "07-toy-2d-steps.png", "steps.csv",
        ])
        let text = try readPNGText(out.appendingPathComponent("03-reverse-steps.png").path)
        #expect(text.contains(PNGTextEntry(key: "seed", value: "7")))
        #expect(text.contains(PNGTextEntry(key: "steps", value: "6")))
        let gif = try Data(contentsOf: out.appendingPathComponent("02-reverse.gif"))
        #expect(gif.starts(with: Array("GIF89a".utf8)))
        // One row per step for DDIM, DDPM and each of the three guided words, after the header.
        let rows = try String(contentsOf: out.appendingPathComponent("steps.csv"), encoding: .utf8)
            .split(separator: "\n")
        #expect(rows.first == "sampler,step,timestep,alpha_bar,sigma,x_std,noise_std,x0_std,top_weight,top_picture")
        #expect(rows.count == 1 + 5 * 6)
        #expect(rows.filter { $0.hasPrefix("ddim,") }.count == 6)
        // The last DDIM step runs at t = 1 with almost all of the picture left.
        let lastDDIM = rows.last { $0.hasPrefix("ddim,") }!.split(separator: ",")
        #expect(lastDDIM[2] == "1")
        #expect(Double(lastDDIM[3])! > 0.99)
    }

    @Test("a prompt in built-in mode steers towards the pictures whose labels match")
    func builtInPrompt() throws {
        let folder = try LessonRunner.temporaryFolder()
        let out = folder.appendingPathComponent("out")
        let run = try LessonRunner.run("backward-denoising", [
            "--no-pause", "--output", out.path, "--steps", "4", "--size", "16", "--prompt", "moon",
        ])
        #expect(run.status == 0, "stderr: \(run.errors)")
        let rows = try String(contentsOf: out.appendingPathComponent("steps.csv"), encoding: .utf8).split(separator: "\n")
        // Guided by 'moon', the conditional weights end on picture 2, the moon.
        #expect(rows.last!.hasPrefix("guided 'moon',4,"))
        #expect(rows.last!.hasSuffix(",2"))
    }

    @Test("with the tiny checkpoint: every step's numbers, the animation, the decoded steps and the sampler grid")
    func checkpointRun() throws {
        let folder = try LessonRunner.temporaryFolder()
        let out = folder.appendingPathComponent("out")
        let run = try LessonRunner.run("backward-denoising", [
            "--no-pause", "--output", out.path, "--checkpoint", Self.tinyCheckpoint, "--prompt", "a red fox",
            "--width", "64", "--height", "64", "--steps", "3", "--scheduler", "euler",
            "--compare-samplers", "ddim,dpmpp-2m-karras", "--compare-steps", "1,2",
        ])
        #expect(run.status == 0, "stderr: \(run.errors)")
        #expect(LessonRunner.files(in: out) == ["00-result.png", "01-reverse.gif", "02-steps.png", "03-samplers.png",
                                                "04-img2img-strength.png", "05-negative-prompt.png", "steps.csv"])
        // Editing with 3 steps: strengths whose ⌊3·s⌋ is 0 (0.2) are left out, 1.0 runs all three.
        #expect(!run.output.contains(#/\n +0\.2 +\d/#) && run.output.contains(#/\n +1\.0 +3 +\d+ /#), "\(run.output)")
        let rows = try String(contentsOf: out.appendingPathComponent("steps.csv"), encoding: .utf8).split(separator: "\n")
        #expect(rows.first == "step,timestep,sigma,latent_std,noise_std,x0_std,guidance_gap_rms")
        #expect(rows.count == 1 + 3)
        // Euler's first σ for 3 steps of SD 1.5's schedule (linspace spacing: t = 999).
        #expect(rows[1].hasPrefix("1,999,14.6"))
        #expect(!rows[1].hasSuffix(","), "guidance is on, so the gap between the two predictions is recorded")
        let text = try readPNGText(out.appendingPathComponent("03-samplers.png").path)
        #expect(text.contains(PNGTextEntry(key: "prompt", value: "a red fox")))
        #expect(text.contains(PNGTextEntry(key: "compare_samplers", value: "ddim,dpmpp-2m-karras")))
    }

    @Test("the checkpoint can come from SD_CHECKPOINT; --cfg 1 turns guidance off")
    func checkpointFromEnvironment() throws {
        let folder = try LessonRunner.temporaryFolder()
        // LessonRunner removes SD_CHECKPOINT from the environment, so this test starts the process itself.
        let process = Process()
        process.executableURL = LessonRunner.productsFolder.appendingPathComponent("backward-denoising")
        process.arguments = ["--no-pause", "--output", "out", "--width", "64", "--height", "64", "--steps", "2",
                             "--cfg", "1", "--compare-samplers", "none", "--editing", "off"]
        process.environment = ProcessInfo.processInfo.environment.merging(["SD_CHECKPOINT": Self.tinyCheckpoint]) { $1 }
        process.currentDirectoryURL = folder
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let run = LessonRun(status: process.terminationStatus, output: printed, errors: "")
        #expect(run.status == 0, "stderr: \(run.errors)")
        #expect(LessonRunner.files(in: folder.appendingPathComponent("out"))
                == ["00-result.png", "01-reverse.gif", "02-steps.png", "steps.csv"])
        // Without guidance there is no second prediction, so the last column (its gap) is empty.
        let rows = try String(contentsOf: folder.appendingPathComponent("out/steps.csv"), encoding: .utf8).split(separator: "\n")
        #expect(rows.count == 1 + 2)
        #expect(rows.dropFirst().allSatisfy { $0.hasSuffix(",") })
    }

    @Test("bad input: one clear message, non-zero exit, nothing written", arguments: [
        BadInput(arguments: ["--steps", "0"], message: "--steps must be between 1 and 1000"),
        BadInput(arguments: ["--steps", "many"], message: "many"),
        BadInput(arguments: ["--cfg=-2"], message: "--cfg must be 0 or more"),
        BadInput(arguments: ["--editing", "maybe"], message: "--editing must be 'on' or 'off'"),
        BadInput(arguments: ["--size", "8"], message: "--size must be between 16 and 128"),
        BadInput(arguments: ["--prompt", "a red fox"], message: "matches none of the built-in pictures"),
        BadInput(arguments: ["--scheduler", "heun"], message: "heun"),
        BadInput(arguments: ["--checkpoint", "no-such-model.safetensors"], message: "no-such-model.safetensors"),
        BadInput(arguments: ["--checkpoint", "notes.txt"], message: "notes.txt"),
        BadInput(arguments: ["--checkpoint", "TINY", "--width", "100"], message: "multiple of 8"),
        BadInput(arguments: ["--checkpoint", "TINY", "--height", "32"], message: "--height must be between 64 and 2048"),
        BadInput(arguments: ["--checkpoint", "TINY", "--compare-samplers", "ddim,heun"], message: "'heun' is not a sampler"),
        BadInput(arguments: ["--checkpoint", "TINY", "--compare-steps", "10,0"], message: "'0' is not a step count"),
    ])
    func badInput(_ bad: BadInput) throws {
        let folder = try LessonRunner.temporaryFolder()
        try "just words".write(to: folder.appendingPathComponent("notes.txt"), atomically: false, encoding: .utf8)
        let arguments = bad.arguments.map { $0 == "TINY" ? Self.tinyCheckpoint : $0 }
        let run = try LessonRunner.run("backward-denoising", ["--no-pause", "--output", "out"] + arguments, in: folder)
        #expect(run.status != 0)
        #expect(run.errors.contains(bad.message), "stderr was: \(run.errors)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("out").path))
    }

    @Test("an output folder that cannot be created is named in the error")
    func blockedOutputFolder() throws {
        let folder = try LessonRunner.temporaryFolder()
        try "a file, not a folder".write(to: folder.appendingPathComponent("taken"), atomically: false, encoding: .utf8)
        let run = try LessonRunner.run("backward-denoising", ["--no-pause", "--output", "taken/out", "--size", "16"], in: folder)
        #expect(run.status == 1)
        #expect(run.errors.contains("taken/out"))
    }
}
