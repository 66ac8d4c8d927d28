import Foundation
import FrameExport
import Testing

@Suite("Lesson 1: forward-noising, run as a user would")
struct ForwardNoisingTests {
    @Test("an unattended run writes every picture and the animation, with parameters inside")
    func fullRun() throws {
        let folder = try LessonRunner.temporaryFolder()
        let out = folder.appendingPathComponent("out")
        let run = try LessonRunner.run("forward-noising", [
            "--no-pause", "--output", out.path, "--size", "48", "--frames", "5",
            "--schedule", "cosine", "--seed", "7", "--timesteps", "0,500,999",
        ])
        #expect(run.status == 0, "stderr: \(run.errors)")
        #expect(LessonRunner.files(in: out) == [
            "00-input.png", "01-schedule.png", "02-timesteps.png", "03-schedules.png",
            "04-forward.gif", "05-histograms.png",
        ])
        let text = try readPNGText(out.appendingPathComponent("02-timesteps.png").path)
        #expect(text.contains(PNGTextEntry(key: "schedule", value: "cosine")))
        #expect(text.contains(PNGTextEntry(key: "seed", value: "7")))
        #expect(text.contains(PNGTextEntry(key: "timesteps", value: "0,500,999")))
        let gif = try Data(contentsOf: out.appendingPathComponent("04-forward.gif"))
        #expect(gif.starts(with: Array("GIF89a".utf8)))
    }

    @Test("bad input: one clear message, non-zero exit, nothing written", arguments: [
        BadInput(arguments: ["--image", "no-such-picture.png"], message: "no-such-picture.png"),
        BadInput(arguments: ["--image", "notes.txt"], message: "notes.txt"),
        BadInput(arguments: ["--image", "empty.png"], message: "empty.png"),
        BadInput(arguments: ["--timesteps", "0,1000"], message: "1000 is out of range"),
        BadInput(arguments: ["--timesteps", "ten"], message: "'ten' is not a whole number"),
        BadInput(arguments: ["--schedule", "quadratic"], message: "quadratic"),
        BadInput(arguments: ["--size", "0"], message: "--size"),
    ])
    func badInput(_ bad: BadInput) throws {
        let folder = try LessonRunner.temporaryFolder()
        try "just words".write(to: folder.appendingPathComponent("notes.txt"), atomically: false, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: folder.appendingPathComponent("empty.png").path, contents: Data())
        let run = try LessonRunner.run("forward-noising", ["--no-pause", "--output", "out"] + bad.arguments, in: folder)
        #expect(run.status != 0)
        #expect(run.errors.contains(bad.message), "stderr was: \(run.errors)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("out").path))
    }

    @Test("an output folder that cannot be created is named in the error")
    func blockedOutputFolder() throws {
        let folder = try LessonRunner.temporaryFolder()
        try "a file, not a folder".write(to: folder.appendingPathComponent("taken"), atomically: false, encoding: .utf8)
        let run = try LessonRunner.run("forward-noising", ["--no-pause", "--output", "taken/out"], in: folder)
        #expect(run.status == 1)
        #expect(run.errors.contains("taken/out"))
    }
}
