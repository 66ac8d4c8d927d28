import Foundation
import StableDiffusion
import TensorCore
import Testing

/// Original PyTorch `.ckpt` files, read without Python and without running their pickle (fixtures
/// made by Tools/reference/make_ckpt_fixtures.py with torch.save).
@Suite("TorchCheckpoint: .ckpt files, same weights as .safetensors, nothing executed")
struct TorchCheckpointTests {
    static let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
    static func fixture(_ name: String) -> String { fixtures.appendingPathComponent(name).path }

    /// The raw bytes of a tensor: equal bytes means equal values, every one of them.
    static func bytes(_ record: TensorRecord) -> [UInt8] { Array(record.file.bytes[record.byteRange]) }

    /// Same keys, element types, shapes and bytes.
    static func expectSame(_ found: [String: TensorRecord], _ expected: [String: TensorRecord]) {
        #expect(found.keys.sorted() == expected.keys.sorted())
        for (key, record) in expected {
            guard let other = found[key] else { continue }
            #expect(other.type == record.type && other.shape == record.shape, "\(key)")
            #expect(bytes(other) == bytes(record), "\(key)")
        }
    }

    /// The message a failed read gives, as the user sees it.
    static func message(_ name: String) -> String {
        do {
            _ = try Checkpoint.open(fixture(name))
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test("the tiny model's .ckpt gives exactly the tensors of its .safetensors (all keys, every value)")
    func tinyModelMatchesSafeTensors() throws {
        let checkpoint = try TorchCheckpoint.read(path: Self.fixture("ckpt/tiny-sd-fp16.ckpt"))
        let reference = try SafeTensors.read(path: Self.fixture("tiny/tiny-sd-fp16.safetensors"))
        #expect(checkpoint.tensors.count == 975)
        Self.expectSame(checkpoint.tensors, reference)
        #expect(checkpoint.otherEntries.sorted() == ["epoch", "global_step"])
    }

    @Test("float32, float16, bfloat16 and int64 storages, views at an offset, parameters, Lightning's extras; zip64 alike")
    func storageTypesAndViews() throws {
        let reference = try SafeTensors.read(path: Self.fixture("ckpt/small-ema.safetensors"))
        for name in ["ckpt/small-ema.ckpt", "ckpt/small-zip64.ckpt"] {
            let checkpoint = try TorchCheckpoint.read(path: Self.fixture(name))
            Self.expectSame(checkpoint.tensors, reference)
            #expect(checkpoint.otherEntries.sorted() == ["callbacks", "epoch", "global_step", "note", "pytorch-lightning_version"], "\(name)")
            let view = try #require(checkpoint.tensors["first_stage_model.quant_conv.weight"])
            #expect(view.floats() == (4..<12).map(Float.init))
        }
    }

    @Test("the pipeline draws the same picture from the .ckpt as from the .safetensors")
    func samePicture() throws {
        let configuration = try StableDiffusionConfiguration(checkpoint: Checkpoint.open(Self.fixture("tiny/diffusers")))
        var request = GenerationRequest(prompt: "a lighthouse at dawn")
        request.width = 64
        request.height = 64
        request.steps = 2
        request.seed = 7
        var images: [Tensor] = []
        for name in ["ckpt/tiny-sd-fp16.ckpt", "tiny/tiny-sd-fp16.safetensors"] {
            let pipeline = try StableDiffusionPipeline(checkpoint: Self.fixture(name), configuration: configuration)
            images.append(try pipeline.generate(request, onStep: { _ in }).image)
        }
        #expect(images[0].shape == [1, 3, 64, 64])
        #expect(images[0].scalars == images[1].scalars)
    }

    @Test("useEMA: the UNet takes the model_ema.* copies (parameter path without dots); without it they are ignored")
    func ema() throws {
        let raw = try TorchCheckpoint.read(path: Self.fixture("ckpt/small-ema.ckpt")).tensors
        #expect(Checkpoint.emaKey("model.diffusion_model.input_blocks.0.0.weight") == "model_ema.diffusion_modelinput_blocks00weight")
        let plain = try Checkpoint.open(Self.fixture("ckpt/small-ema.ckpt"))
        let averaged = try Checkpoint.open(Self.fixture("ckpt/small-ema.ckpt"), useEMA: true)
        #expect(!plain.usesEMA && averaged.usesEMA)
        for name in ["weight", "bias"] {
            let original = raw["model.diffusion_model.input_blocks.0.0.\(name)"]!
            let copy = raw["model_ema.diffusion_modelinput_blocks00\(name)"]!
            #expect(Self.bytes(plain.store(.unet).record("conv_in.\(name)")!) == Self.bytes(original))
            #expect(Self.bytes(averaged.store(.unet).record("conv_in.\(name)")!) == Self.bytes(copy))
            #expect(Self.bytes(original) != Self.bytes(copy))
        }
        // The other networks have no EMA copies and are the same either way.
        #expect(Self.bytes(averaged.store(.vae).record("quant_conv.bias")!) == Self.bytes(raw["first_stage_model.quant_conv.bias"]!))
        #expect(plain.ignoredKeys.contains("model_ema.decay"))
        // A file without EMA copies: the flag changes nothing.
        #expect(try !Checkpoint.open(Self.fixture("ckpt/tiny-sd-fp16.ckpt"), useEMA: true).usesEMA)
    }

    @Test("a pickle that calls os.system or eval is refused, naming the global, and nothing runs",
          arguments: [("ckpt/system.ckpt", "posix.system"), ("ckpt/eval.ckpt", "builtins.eval")])
    func maliciousPickle(file: String, global: String) throws {
        let marker = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("sd-ckpt-fixture-ran-code")
        try? FileManager.default.removeItem(at: marker)
        let message = Self.message(file)
        #expect(message.contains("refusing to load '\(global)'"), "\(message)")
        #expect(message.contains("asks to run code"))
        #expect(!FileManager.default.fileExists(atPath: marker.path))
    }

    @Test("broken or unsupported files give one clear message", arguments: [
        ("ckpt/double.ckpt", "torch.DoubleStorage"),
        ("ckpt/truncated.ckpt", "no zip directory at the end of the file (truncated download?)"),
        ("ckpt/legacy.ckpt", "legacy (pre-1.6) format"),
        ("ckpt/transposed.ckpt", "has strides [1, 3], not contiguous"),
        ("ckpt/calls-class.ckpt", "refusing to call 'pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint'"),
        ("tiny/tiny_config.json", "not a valid checkpoint"),
    ])
    func brokenFiles(file: String, expected: String) throws {
        let message = Self.message(file)
        #expect(message.contains(expected), "\(message)")
        #expect(!message.contains("\n"))
    }

    @Test("damaged files never crash the reader: every 25th byte changed in turn gives a tensor list or an error")
    func damagedBytes() throws {
        let original = try Data(contentsOf: URL(fileURLWithPath: Self.fixture("ckpt/small-ema.ckpt")))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("damaged-\(UUID().uuidString).ckpt").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var errors = 0
        for position in stride(from: 0, to: original.count, by: 25) {
            for value: UInt8 in [0x00, 0xFF] {
                var damaged = original
                damaged[position] = value
                try damaged.write(to: URL(fileURLWithPath: path))
                do { _ = try TorchCheckpoint.read(path: path) } catch is CheckpointError { errors += 1 }
            }
        }
        #expect(errors > 0)
    }

    @Test("SafeTensorsWriter: what it writes reads back identically; no temporary file is left")
    func writeSafeTensors() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let tensors = try TorchCheckpoint.read(path: Self.fixture("ckpt/small-ema.ckpt")).tensors
        let output = folder.appendingPathComponent("small.safetensors").path
        try SafeTensorsWriter.write(tensors, to: output)
        Self.expectSame(try SafeTensors.read(path: output), tensors)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["small.safetensors"])
        // The header is padded so the data starts 8-byte aligned.
        let headerLength = try Data(contentsOf: URL(fileURLWithPath: output)).prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        #expect(headerLength % 8 == 0)

        // Failure: the target is a folder, so the final rename fails; nothing partial remains.
        let blocked = folder.appendingPathComponent("blocked.safetensors")
        try FileManager.default.createDirectory(at: blocked.appendingPathComponent("inside"), withIntermediateDirectories: true)
        #expect(throws: CheckpointError.self) { try SafeTensorsWriter.write(tensors, to: blocked.path) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() == ["blocked.safetensors", "small.safetensors"])
    }
}
