import Foundation
import StableDiffusion
import Testing

/// `sd convert` run as a user would: a .ckpt in, a .safetensors out with the same weights.
@Suite("sd convert: .ckpt to .safetensors")
struct SDConvertTests {
    static let fixtures = ExamplePicturesTests.projectFolder.appendingPathComponent("Tests/StableDiffusionTests/Fixtures")

    @Test("converts the tiny model's .ckpt to the tensors of its .safetensors, atomically")
    func convert() throws {
        let folder = try LessonRunner.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = try LessonRunner.run("sd", [
            "convert", "--checkpoint", Self.fixtures.appendingPathComponent("ckpt/tiny-sd-fp16.ckpt").path,
            "--output", "tiny.safetensors",
        ], in: folder)
        #expect(run.status == 0, "\(run.errors)")
        #expect(run.output.contains("wrote") && run.output.contains("963 tensors"), "\(run.output)")
        #expect(LessonRunner.files(in: folder) == ["tiny.safetensors"])
        let written = try SafeTensors.read(path: folder.appendingPathComponent("tiny.safetensors").path)
        let reference = try SafeTensors.read(path: Self.fixtures.appendingPathComponent("tiny/tiny-sd-fp16.safetensors").path)
        #expect(written.count == 963)   // 975 less the 12 schedule buffers; position_ids kept
        for (key, record) in written {
            let expected = try #require(reference[key])
            #expect(record.shape == expected.shape && record.type == expected.type, "\(key)")
            #expect(Array(record.file.bytes[record.byteRange]) == Array(expected.file.bytes[expected.byteRange]), "\(key)")
        }
    }

    @Test("--use-ema writes the EMA copies under the UNet's names and drops model_ema.*")
    func convertEMA() throws {
        let folder = try LessonRunner.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = Self.fixtures.appendingPathComponent("ckpt/small-ema.ckpt").path
        let run = try LessonRunner.run("sd", ["convert", "--checkpoint", source, "--output", "ema.safetensors", "--use-ema"], in: folder)
        #expect(run.status == 0, "\(run.errors)")
        let written = try SafeTensors.read(path: folder.appendingPathComponent("ema.safetensors").path)
        let raw = try TorchCheckpoint.read(path: source).tensors
        #expect(!written.keys.contains { $0.hasPrefix("model_ema.") })
        let weight = try #require(written["model.diffusion_model.input_blocks.0.0.weight"])
        let copy = raw["model_ema.diffusion_modelinput_blocks00weight"]!
        #expect(Array(weight.file.bytes[weight.byteRange]) == Array(copy.file.bytes[copy.byteRange]))
    }

    @Test("a refused or broken checkpoint: one message, non-zero exit, nothing written", arguments: [
        "ckpt/system.ckpt", "ckpt/truncated.ckpt",
    ])
    func refused(_ file: String) throws {
        let folder = try LessonRunner.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = try LessonRunner.run("sd", [
            "convert", "--checkpoint", Self.fixtures.appendingPathComponent(file).path, "--output", "out.safetensors",
        ], in: folder)
        #expect(run.status != 0)
        #expect(run.errors.split(separator: "\n").count == 1, "\(run.errors)")
        #expect(LessonRunner.files(in: folder).isEmpty)
    }

    @Test("bad arguments: one message, non-zero exit, nothing written", arguments: [
        (["--output", "out.bin"], "--output must end in .safetensors"),
        (["--output", "same.safetensors"], "--output must differ from --checkpoint"),
    ])
    func badArguments(_ arguments: [String], message: String) throws {
        let folder = try LessonRunner.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let checkpoint = arguments[1] == "same.safetensors" ? "same.safetensors"
            : Self.fixtures.appendingPathComponent("ckpt/small-ema.ckpt").path
        let run = try LessonRunner.run("sd", ["convert", "--checkpoint", checkpoint] + arguments, in: folder)
        #expect(run.status != 0)
        #expect(run.errors.contains(message), "\(run.errors)")
        #expect(LessonRunner.files(in: folder).isEmpty)
    }
}
