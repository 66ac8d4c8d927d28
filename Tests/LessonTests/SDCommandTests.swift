import Foundation
import FrameExport
import Testing

/// The `sd` command run as a user would, on the tiny test model (a diffusers folder, whose
/// config files describe its unusual sizes).
@Suite("sd: tokenize, inspect and generate from the command line")
struct SDCommandTests {
    static let tinyModel = ExamplePicturesTests.projectFolder
        .appendingPathComponent("Tests/StableDiffusionTests/Fixtures/tiny/diffusers").path
    static let tinySingleFile = ExamplePicturesTests.projectFolder
        .appendingPathComponent("Tests/StableDiffusionTests/Fixtures/tiny/tiny-sd-fp16.safetensors").path

    @Test("tokenize prints the 77 ids, then each token with its id")
    func tokenize() throws {
        let run = try LessonRunner.run("sd", ["tokenize", "a photo of a cat"])
        #expect(run.status == 0)
        let lines = run.output.split(separator: "\n")
        let ids = lines[0].split(separator: " ").compactMap { Int($0) }
        #expect(ids.count == 77)
        // Start token, the four words of CLIP's vocabulary, end token, then end-token padding.
        #expect(Array(ids.prefix(7)) == [49406, 320, 1125, 539, 320, 2368, 49407])
        #expect(ids.suffix(70).allSatisfy { $0 == 49407 })
        #expect(run.output.contains("1125"))
    }

    @Test("inspect reports the layout and the parameters of each network")
    func inspect() throws {
        let run = try LessonRunner.run("sd", ["inspect", "--checkpoint", Self.tinySingleFile])
        #expect(run.status == 0, "\(run.errors)")
        #expect(run.output.contains("single file"))
        #expect(run.output.contains("unet") && run.output.contains("0.27 M parameters"))
        #expect(run.output.contains("962 (F16 962)"))   // 975 in the file, less 13 ignored
    }

    @Test("generate writes the picture with its parameters, a GIF and one frame per step")
    func generate() throws {
        let folder = try LessonRunner.temporaryFolder()
        let run = try LessonRunner.run("sd", [
            "generate", "--checkpoint", Self.tinyModel, "--prompt", "a red apple", "--seed", "3",
            "--steps", "3", "--width", "64", "--height", "64", "--scheduler", "euler-a",
            "--output", "apple.png", "--gif", "steps.gif", "--frames", "frames",
        ], in: folder)
        #expect(run.status == 0, "\(run.errors)")
        #expect(run.errors.contains("3/3"))                                   // the progress bar
        #expect(run.output.contains("denoising") && run.output.contains("vae decode"))   // stage times
        let picture = try RGBImage(contentsOfFile: folder.appendingPathComponent("apple.png").path)
        #expect(picture.width == 64 && picture.height == 64)
        let text = try readPNGText(folder.appendingPathComponent("apple.png").path)
        let parameters = text.first { $0.key == "parameters" }?.value ?? ""
        #expect(parameters.contains("seed: 3") && parameters.contains("scheduler: euler-a") && parameters.contains("a red apple"))
        #expect(LessonRunner.files(in: folder.appendingPathComponent("frames")) == ["step-001.png", "step-002.png", "step-003.png"])
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("steps.gif").path))
    }

    @Test("the progress bar, written to a log instead of a terminal, prints the first and last steps and every 5% between")
    func progressInALog() throws {
        let folder = try LessonRunner.temporaryFolder()
        let run = try LessonRunner.run("sd", ["generate", "--checkpoint", Self.tinyModel, "--prompt", "a", "--steps", "100",
                                              "--scheduler", "ddim", "--width", "64", "--height", "64", "--output", "p.png"], in: folder)
        #expect(run.status == 0, "\(run.errors)")
        let lines = run.errors.split(separator: "\n").filter { $0.hasPrefix("[") }
        #expect(lines.count == 21, "\(lines.count) progress lines")
        #expect(lines.first?.contains(" 1/100 ") == true && lines.last?.contains(" 100/100 ") == true)
        #expect(lines.contains { $0.contains(" 50/100 ") })
    }

    @Test("--vae-tile: a tile as large as the picture changes nothing; smaller tiles decode piece by piece")
    func tiledDecode() throws {
        let folder = try LessonRunner.temporaryFolder()
        let runs: [(size: String, tile: String?, name: String)] = [
            ("64", nil, "whole64.png"), ("64", "64", "tiled64.png"), ("128", nil, "whole128.png"), ("128", "64", "tiled128.png"),
        ]
        for (size, tile, name) in runs {
            let run = try LessonRunner.run("sd", ["generate", "--checkpoint", Self.tinyModel, "--prompt", "x", "--seed", "1",
                                                  "--steps", "1", "--width", size, "--height", size, "--output", name]
                                                  + (tile.map { ["--vae-tile", $0] } ?? []), in: folder)
            #expect(run.status == 0, "\(run.errors)")
        }
        func picture(_ name: String) throws -> RGBImage { try RGBImage(contentsOfFile: folder.appendingPathComponent(name).path) }
        #expect(try picture("whole64.png") == picture("tiled64.png"))
        let whole = try picture("whole128.png"), tiled = try picture("tiled128.png")
        #expect(tiled.width == 128 && tiled.height == 128)
        #expect(whole != tiled)   // four 64-pixel tiles, each normalised on its own
    }

    @Test("the same seed gives the same picture; another seed another one")
    func seeds() throws {
        let folder = try LessonRunner.temporaryFolder()
        for (seed, name) in [("5", "a.png"), ("5", "b.png"), ("6", "c.png")] {
            let run = try LessonRunner.run("sd", ["generate", "--checkpoint", Self.tinyModel, "--prompt", "x",
                                                  "--seed", seed, "--steps", "2", "--width", "64", "--height", "64",
                                                  "--output", name], in: folder)
            #expect(run.status == 0, "\(run.errors)")
        }
        let a = try RGBImage(contentsOfFile: folder.appendingPathComponent("a.png").path)
        let b = try RGBImage(contentsOfFile: folder.appendingPathComponent("b.png").path)
        let c = try RGBImage(contentsOfFile: folder.appendingPathComponent("c.png").path)
        #expect(a == b)
        #expect(a != c)
    }

    @Test("bad input: one clear message, non-zero exit, no picture written", arguments: [
        BadInput(arguments: ["--width", "100"], message: "multiple of 8"),
        BadInput(arguments: ["--vae-tile", "100"], message: "--vae-tile must be a multiple of 64"),
        BadInput(arguments: ["--steps", "0"], message: "--steps must be at least 1"),
        BadInput(arguments: ["--cfg=-2"], message: "must be 0 or more"),
        BadInput(arguments: ["--scheduler", "heun"], message: "heun"),
        BadInput(arguments: ["--init-image", "missing.png"], message: "missing.png"),
        BadInput(arguments: ["--strength", "0", "--init-image", "start.png"], message: "--strength"),
        BadInput(arguments: ["--checkpoint", "nowhere.safetensors"], message: "'nowhere.safetensors' does not exist"),
        BadInput(arguments: ["--checkpoint", "start.png"], message: "not a valid checkpoint"),
        BadInput(arguments: ["--output", "no/such/folder/x.png"], message: "does not exist"),
    ])
    func badInput(_ bad: BadInput) throws {
        let folder = try LessonRunner.temporaryFolder()
        try RGBImage(width: 64, height: 64, color: .white).writePNG(to: folder.appendingPathComponent("start.png").path)
        var arguments = ["generate", "--checkpoint", Self.tinyModel, "--prompt", "x", "--steps", "2",
                         "--width", "64", "--height", "64", "--output", "out.png"]
        arguments += bad.arguments   // a repeated option takes the last value
        let run = try LessonRunner.run("sd", arguments, in: folder)
        #expect(run.status != 0)
        #expect(run.errors.contains(bad.message), "stderr: \(run.errors)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("out.png").path))
    }

    @Test("no checkpoint at all: the message says how to give one")
    func noCheckpoint() throws {
        let run = try LessonRunner.run("sd", ["generate", "--prompt", "x", "--output", "out.png"])
        #expect(run.status != 0)
        #expect(run.errors.contains("SD_CHECKPOINT"))
    }
}
