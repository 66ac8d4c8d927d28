import Foundation
import FrameExport
import LessonKit
import Testing

@Suite("Lesson 4: cross-attention, run as a user would")
struct CrossAttentionTests {
    /// The tiny random-weight model: every code path runs, the pictures are noise.
    static let tinyModel = ExamplePicturesTests.projectFolder
        .appendingPathComponent("Tests/StableDiffusionTests/Fixtures/tiny/diffusers").path

    @Test("without a checkpoint: the tokens, the toy by hand and SD 1.5's anatomy; only their pictures are written")
    func withoutCheckpoint() throws {
        let folder = try LessonRunner.temporaryFolder()
        let run = try LessonRunner.run("cross-attention", ["--no-pause", "--output", "out"], in: folder)
        #expect(run.status == 0, "stderr: \(run.errors)")
        #expect(LessonRunner.files(in: folder.appendingPathComponent("out")) == ["toy-attention.png", "unet-anatomy.png"])
        #expect(run.output.contains("down_blocks.0 64x64   320 ch   2 ResNets + 2 transformers (8 heads), then downsample"))
    }

    @Test("with the tiny model: one heatmap per word, the CSV, the animation and both grids")
    func withTinyModel() throws {
        let folder = try LessonRunner.temporaryFolder()
        let out = folder.appendingPathComponent("out")
        let run = try LessonRunner.run("cross-attention", [
            "--no-pause", "--output", out.path, "--checkpoint", Self.tinyModel,
            "--width", "64", "--height", "64", "--steps", "2", "--seed", "7",
            "--prompt", "a red apple, on a table", "--swap", "table=chair",
        ])
        #expect(run.status == 0, "stderr: \(run.errors)")
        #expect(LessonRunner.files(in: out) == [
            "01-a.png", "02-red.png", "03-apple.png", "04-comma.png", "05-on.png", "06-a.png", "07-table.png",
            "attention.csv", "guidance-scales.png", "picture.png", "swapped-word.png", "text-embedding.png",
            "toy-attention.png", "unet-anatomy.png", "words-over-steps.gif", "words.png",
        ])
        let text = try readPNGText(out.appendingPathComponent("03-apple.png").path)
        #expect(text.contains(PNGTextEntry(key: "token", value: "apple")))
        #expect(text.contains(PNGTextEntry(key: "seed", value: "7")))
        #expect(text.contains(PNGTextEntry(key: "prompt", value: "a red apple, on a table")))
        let gif = try Data(contentsOf: out.appendingPathComponent("words-over-steps.gif"))
        #expect(gif.starts(with: Array("GIF89a".utf8)))

        // The CSV: per step, <start>, the 7 tokens and <end>+padding, whose shares add up to 1.
        let csv = try String(contentsOf: out.appendingPathComponent("attention.csv"), encoding: .utf8)
        let rows = csv.split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        #expect(csv.hasPrefix("step,timestep,position,token,mean_attention\n"))
        #expect(csv.contains(",4,\",\","))
        let steps = Set(rows.map { $0[0] })
        #expect(rows.count == steps.count * 9)
        for step in steps {
            let total = rows.filter { $0[0] == step }.compactMap { Double($0.last!) }.reduce(0, +)
            #expect(abs(total - 1) < 1e-3, "step \(step): shares add up to \(total)")
        }
    }

    @Test("--save-maps with the shapes model: one .npy per word; 'red' and 'circle' look hardest at the circle")
    func savedMapsLocalise() throws {
        let folder = try LessonRunner.temporaryFolder()
        let shapes = ExamplePicturesTests.projectFolder.appendingPathComponent("Examples/tiny-shapes").path
        let run = try LessonRunner.run("cross-attention", [
            "--no-pause", "--output", "out", "--checkpoint", shapes, "--steps", "20", "--prompt", "a red circle on the left",
            "--save-maps", "maps",
        ], in: folder)
        #expect(run.status == 0, "stderr: \(run.errors)")
        let maps = folder.appendingPathComponent("maps")
        #expect(LessonRunner.files(in: maps) == ["01-a.npy", "02-red.npy", "03-circle.npy", "04-on.npy", "05-the.npy", "06-left.npy"])
        // Which 8x8-pixel cells (one latent pixel each) the circle covers, read from the picture
        // (its top 64 rows; the caption is below).
        let picture = try RGBImage(contentsOfFile: folder.appendingPathComponent("out/picture.png").path)
            .cropped(x: 0, y: 0, width: 64, height: 64).toTensor()
        var coverage = [Double](repeating: 0, count: 64)
        for y in 0..<64 {
            for x in 0..<64 {
                let rgb = (0..<3).map { picture.scalars[$0 * 4096 + y * 64 + x] }
                if rgb.max()! - rgb.min()! > 0.6 { coverage[(y / 8) * 8 + x / 8] += 1 / 64 }
            }
        }
        let onCircle = coverage.indices.filter { coverage[$0] > 0.25 }
        #expect(!onCircle.isEmpty && onCircle.allSatisfy { $0 % 8 < 4 }, "the circle should be on the left: \(coverage)")
        func brightness(_ word: String) throws -> (peak: Int, ratio: Float) {
            let map = try NumPyFile.read(maps.appendingPathComponent(word).path)
            #expect(map.shape == [8, 8])
            let peak = map.scalars.indices.max { map.scalars[$0] < map.scalars[$1] }!
            let on = onCircle.map { map.scalars[$0] }.reduce(0, +) / Float(onCircle.count)
            let offCells = map.scalars.indices.filter { !onCircle.contains($0) }
            let off = offCells.map { map.scalars[$0] }.reduce(0, +) / Float(offCells.count)
            return (peak, on / off)
        }
        /// Whether a cell or one of its neighbours holds part of the circle.
        func touchesCircle(_ cell: Int) -> Bool {
            (-1...1).contains { dy in (-1...1).contains { dx in
                let (y, x) = (cell / 8 + dy, cell % 8 + dx)
                return (0..<8).contains(y) && (0..<8).contains(x) && coverage[y * 8 + x] > 0
            }}
        }
        // "circle" lights its circle clearly (2.6 times brighter on it than off it when measured);
        // "red" only faintly (1.06 times), so for it only the brightest cell is asked to be at the circle.
        let circle = try brightness("03-circle.npy"), red = try brightness("02-red.npy")
        #expect(coverage[circle.peak] > 0.5 && circle.ratio > 1.5, "circle: \(circle)")
        #expect(touchesCircle(red.peak), "red: \(red)")
    }

    @Test("a prompt over 75 tokens is run with a warning that names what is cut off")
    func longPrompt() throws {
        let folder = try LessonRunner.temporaryFolder()
        let prompt = Array(repeating: "apple", count: 80).joined(separator: " ")
        let run = try LessonRunner.run("cross-attention", ["--no-pause", "--output", "out", "--prompt", prompt], in: folder)
        #expect(run.status == 0, "stderr: \(run.errors)")
        #expect(run.errors.contains("the prompt is 80 tokens long; CLIP reads only the first 75, so the last 5 are ignored"))
    }

    @Test("bad input: one clear message, non-zero exit, nothing written", arguments: [
        BadInput(arguments: ["--prompt", ""], message: "--prompt is empty"),
        BadInput(arguments: ["--prompt", "   "], message: "--prompt is empty"),
        BadInput(arguments: ["--swap", "apple"], message: "--swap must be OLD=NEW"),
        BadInput(arguments: ["--swap", "banana=pear"], message: "the prompt has no word 'banana'"),
        BadInput(arguments: ["--steps", "0"], message: "--steps must be at least 1"),
        BadInput(arguments: ["--width", "100"], message: "--width must be a multiple of 8"),
        BadInput(arguments: ["--cfg", "-1"], message: "--cfg"),
        BadInput(arguments: ["--save-maps", "maps"], message: "--save-maps needs a model"),
        BadInput(arguments: ["--checkpoint", "no-such-model.safetensors"], message: "no-such-model.safetensors"),
        BadInput(arguments: ["--checkpoint", "notes.txt"], message: "notes.txt"),
    ])
    func badInput(_ bad: BadInput) throws {
        let folder = try LessonRunner.temporaryFolder()
        try "just words".write(to: folder.appendingPathComponent("notes.txt"), atomically: false, encoding: .utf8)
        let run = try LessonRunner.run("cross-attention", ["--no-pause", "--output", "out"] + bad.arguments, in: folder)
        #expect(run.status != 0)
        #expect(run.errors.contains(bad.message), "stderr was: \(run.errors)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("out").path))
    }

    @Test("a checkpoint with a damaged VAE file stops the lesson before anything is written")
    func damagedCheckpoint() throws {
        let folder = try LessonRunner.temporaryFolder()
        let model = folder.appendingPathComponent("model")
        try FileManager.default.copyItem(at: URL(fileURLWithPath: Self.tinyModel), to: model)
        let vae = model.appendingPathComponent("vae/diffusion_pytorch_model.safetensors")
        try Data(try Data(contentsOf: vae).prefix(2000)).write(to: vae)
        let run = try LessonRunner.run("cross-attention", ["--no-pause", "--output", "out", "--checkpoint", "model"], in: folder)
        #expect(run.status == 1)
        #expect(run.errors.contains("cannot use checkpoint"))
        #expect(run.errors.contains("diffusion_pytorch_model.safetensors"))
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("out").path))
    }

    @Test("an output folder that cannot be created is named in the error")
    func blockedOutputFolder() throws {
        let folder = try LessonRunner.temporaryFolder()
        try "a file, not a folder".write(to: folder.appendingPathComponent("taken"), atomically: false, encoding: .utf8)
        let run = try LessonRunner.run("cross-attention", ["--no-pause", "--output", "taken/out"], in: folder)
        #expect(run.status == 1)
        #expect(run.errors.contains("taken/out"))
    }
}
