import Foundation
import FrameExport
import LessonKit
import Testing
import TensorCore

@Suite("Lesson 3: vae-latents, run as a user would")
struct VAELatentsTests {
    static let tinyModel = SDCommandTests.tinyModel

    @Test("without a checkpoint: the shape walk, the 48x arithmetic, the costs and how to get a checkpoint")
    func withoutCheckpoint() throws {
        let out = try LessonRunner.temporaryFolder().appendingPathComponent("out")
        let run = try LessonRunner.run("vae-latents", ["--no-pause", "--output", out.path, "--size", "64"])
        #expect(run.status == 0, "stderr: \(run.errors)")
        #expect(LessonRunner.files(in: out) == ["00-input.png", "01-vae-stages.csv", "02-patches.png", "08-unet-cost.csv", "08-unet-cost.png"])
        let stages = try String(contentsOf: out.appendingPathComponent("01-vae-stages.csv"), encoding: .utf8)
        #expect(stages.contains("encoder,mean,1,4,8,8,256,"))
        #expect(stages.contains("decoder,decoder.conv_out,1,3,64,64,12288,"))
        // The cost table: one score matrix grows (512² / 64²)² = 4096x from latents to pixels.
        let cost = try String(contentsOf: out.appendingPathComponent("08-unet-cost.csv"), encoding: .utf8)
        let scores = try #require(cost.split(separator: "\n").first { $0.hasPrefix("attention_score_bytes,") })
        let bytes = scores.split(separator: ",").dropFirst().compactMap { Double($0) }
        #expect(bytes.count == 2 && bytes[1] / bytes[0] == 4096)
    }

    @Test("with the tiny model: every picture, the latents file, and its decoding")
    func withCheckpoint() throws {
        let folder = try LessonRunner.temporaryFolder()
        let out = folder.appendingPathComponent("out"), latents = folder.appendingPathComponent("z.npy")
        let run = try LessonRunner.run("vae-latents", [
            "--no-pause", "--output", out.path, "--checkpoint", Self.tinyModel, "--size", "64",
            "--seed", "7", "--timesteps", "100,900", "--save-latents", latents.path,
        ])
        #expect(run.status == 0, "stderr: \(run.errors)")
        #expect(LessonRunner.files(in: out) == [
            "00-input.png", "01-vae-stages.csv", "02-patches.png", "03-latent-channels.png",
            "04-reconstruction.png", "05-scaling.png", "06-noise-pixels-vs-latents.png",
            "07-random-latent.png", "08-unet-cost.csv", "08-unet-cost.png",
        ])
        let text = try readPNGText(out.appendingPathComponent("06-noise-pixels-vs-latents.png").path)
        #expect(text.contains(PNGTextEntry(key: "lesson", value: "vae-latents")))
        #expect(text.contains(PNGTextEntry(key: "seed", value: "7")))
        #expect(text.contains(PNGTextEntry(key: "timesteps", value: "100,900")))

        let z = try NumPyFile.read(latents.path)
        #expect(z.shape == [1, 4, 8, 8])

        let decodedFolder = folder.appendingPathComponent("decoded")
        let decode = try LessonRunner.run("vae-latents", [
            "--no-pause", "--output", decodedFolder.path, "--checkpoint", Self.tinyModel, "--load-latents", latents.path,
        ])
        #expect(decode.status == 0, "stderr: \(decode.errors)")
        #expect(LessonRunner.files(in: decodedFolder) == ["decoded-latents.png"])
    }

    @Test("a JPEG whose sides are not multiples of 8 is scaled to them, and its latents follow its shape")
    func oddSizedJPEG() throws {
        let folder = try LessonRunner.temporaryFolder()
        let photo = folder.appendingPathComponent("photo.jpg")
        try RGBImage(width: 100, height: 70, color: RGBColor(hex: 0x336699)).writeJPEG(to: photo.path)
        let out = folder.appendingPathComponent("out")
        let latents = folder.appendingPathComponent("z.npy")
        let run = try LessonRunner.run("vae-latents", [
            "--no-pause", "--output", out.path, "--checkpoint", Self.tinyModel, "--image", photo.path, "--timesteps", "500",
            "--save-latents", latents.path,
        ])
        #expect(run.status == 0, "stderr: \(run.errors)")
        // 100x70 is scaled to 96x64, so the latents are 12 wide and 8 high.
        #expect(try NumPyFile.read(latents.path).shape == [1, 4, 8, 12])
    }

    @Test("bad input: one clear message, non-zero exit, nothing written", arguments: [
        BadInput(arguments: ["--image", "no-such-picture.png"], message: "no-such-picture.png"),
        BadInput(arguments: ["--image", "notes.txt"], message: "notes.txt"),
        BadInput(arguments: ["--size", "32"], message: "--size must be between 64 and 1024"),
        BadInput(arguments: ["--timesteps", "0,1000"], message: "1000 is out of range"),
        BadInput(arguments: ["--checkpoint", "no-such-model.safetensors"], message: "no-such-model.safetensors"),
        BadInput(arguments: ["--save-latents", "z.npy"], message: "--save-latents needs a checkpoint"),
        BadInput(arguments: ["--checkpoint", tinyModel, "--save-latents", "z.txt"], message: "must end in .npy"),
        BadInput(arguments: ["--checkpoint", tinyModel, "--save-latents", "missing/z.npy"], message: "'missing' does not exist"),
        BadInput(arguments: ["--checkpoint", tinyModel, "--load-latents", "none.npy"], message: "'none.npy' cannot be read"),
        BadInput(arguments: ["--checkpoint", tinyModel, "--load-latents", "whole.npy", "--image", "x.png"], message: "leave out --image"),
        BadInput(arguments: ["--checkpoint", tinyModel, "--load-latents", "notes.txt"], message: "not a NumPy .npy file"),
        BadInput(arguments: ["--checkpoint", tinyModel, "--load-latents", "float64.npy"], message: "holds float64 numbers ('<f8'); it must be float32"),
        BadInput(arguments: ["--checkpoint", tinyModel, "--load-latents", "three-channels.npy"], message: "has shape (1, 3, 8, 8); --load-latents needs (1, 4, h, w)"),
        BadInput(arguments: ["--checkpoint", tinyModel, "--load-latents", "cut-off.npy"], message: "should hold 256 float32 numbers"),
        BadInput(arguments: ["--checkpoint", tinyModel, "--load-latents", "not-finite.npy"], message: "NaN or infinite"),
    ])
    func badInput(_ bad: BadInput) throws {
        let folder = try LessonRunner.temporaryFolder()
        try "just words".write(to: folder.appendingPathComponent("notes.txt"), atomically: false, encoding: .utf8)
        try NumPyFile.write(Tensor.zeros([1, 3, 8, 8]), to: folder.appendingPathComponent("three-channels.npy").path)
        try NumPyFile.write(Tensor(repeating: .nan, shape: [1, 4, 8, 8]), to: folder.appendingPathComponent("not-finite.npy").path)
        try NumPyFile.write(Tensor.zeros([1, 4, 8, 8]), to: folder.appendingPathComponent("whole.npy").path)
        let whole = try Data(contentsOf: folder.appendingPathComponent("whole.npy"))
        try whole.dropLast(4).write(to: folder.appendingPathComponent("cut-off.npy"))
        try Self.numPyHeader("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 4, 8, 8), }", dataBytes: 8 * 256)
            .write(to: folder.appendingPathComponent("float64.npy"))
        let before = LessonRunner.files(in: folder)

        let run = try LessonRunner.run("vae-latents", ["--no-pause", "--output", "out"] + bad.arguments, in: folder)
        #expect(run.status != 0)
        #expect(run.errors.contains(bad.message), "stderr was: \(run.errors)")
        #expect(LessonRunner.files(in: folder) == before, "something was written")
    }

    @Test("an output folder that cannot be created is named in the error")
    func blockedOutputFolder() throws {
        let folder = try LessonRunner.temporaryFolder()
        try "a file, not a folder".write(to: folder.appendingPathComponent("taken"), atomically: false, encoding: .utf8)
        let run = try LessonRunner.run("vae-latents", ["--no-pause", "--output", "taken/out"], in: folder)
        #expect(run.status == 1)
        #expect(run.errors.contains("taken/out"))
    }

    /// A version 1.0 `.npy` file with this header (padded as NumPy pads it) and zeroed data.
    static func numPyHeader(_ header: String, dataBytes: Int) -> Data {
        var text = header
        text += String(repeating: " ", count: (64 - (10 + text.utf8.count + 1) % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(text.utf8.count & 0xFF), UInt8(text.utf8.count >> 8)])
        data.append(contentsOf: Array(text.utf8))
        data.append(Data(count: dataBytes))
        return data
    }
}

@Suite("NumPy .npy files")
struct NumPyFileTests {
    @Test("writes the same bytes as numpy.save for a float32 array")
    func sameBytesAsNumPy() throws {
        let path = try LessonRunner.temporaryFolder().appendingPathComponent("a.npy").path
        try NumPyFile.write(Tensor(shape: [1, 2, 3], scalars: [0, 1, 2, 3, 4, 5]), to: path)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        // numpy.save("a.npy", numpy.arange(6, dtype=numpy.float32).reshape(1, 2, 3)): a 128-byte
        // header (header length 0x76), then the six numbers.
        #expect(bytes.count == 128 + 24)
        #expect(Array(bytes[0..<10]) == [0x93] + Array("NUMPY".utf8) + [1, 0, 0x76, 0])
        let header = String(decoding: bytes[10..<128], as: UTF8.self)
        #expect(header.hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3), }   "))
        #expect(header.hasSuffix(" \n"))
        #expect(Array(bytes[132..<136]) == [0, 0, 0x80, 0x3F])        // 1.0 as little-endian float32
    }

    @Test("reads back what it wrote, including one-dimensional shapes")
    func roundTrip() throws {
        let folder = try LessonRunner.temporaryFolder()
        for shape in [[5], [1, 4, 3, 2]] {
            let count = shape.reduce(1, *)
            let tensor = Tensor(shape: shape, scalars: (0..<count).map { Float($0) * 0.25 - 1 })
            let path = folder.appendingPathComponent("t\(shape.count).npy").path
            try NumPyFile.write(tensor, to: path)
            #expect(try NumPyFile.read(path) == tensor)
        }
    }

    @Test("Fortran order is refused with the fix")
    func fortranOrder() throws {
        let path = try LessonRunner.temporaryFolder().appendingPathComponent("f.npy")
        try VAELatentsTests.numPyHeader("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", dataBytes: 16).write(to: path)
        #expect(throws: LessonError.self) { try NumPyFile.read(path.path) }
        do {
            _ = try NumPyFile.read(path.path)
        } catch {
            #expect("\(error)".contains("np.ascontiguousarray"))
        }
    }
}
