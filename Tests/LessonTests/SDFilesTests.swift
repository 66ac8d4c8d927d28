import Foundation
import FrameExport
import Testing

/// `sd` with the files people have: a checkpoint without a VAE and a separate VAE file, an init
/// image of any size, and safetensors files that lie or are damaged.
@Suite("sd: external VAEs, init image sizes, hostile safetensors files")
struct SDFilesTests {
    static let fixtures = ExamplePicturesTests.projectFolder.appendingPathComponent("Tests/StableDiffusionTests/Fixtures")
    static let tinyModel = SDCommandTests.tinyModel

    /// A copy of the tiny diffusers folder, changed by `edit` (given the copy's URL).
    static func tinyModelCopy(_ edit: (URL) throws -> Void) throws -> URL {
        let copy = try LessonRunner.temporaryFolder().appendingPathComponent("model")
        try FileManager.default.copyItem(atPath: tinyModel, toPath: copy.path)
        try edit(copy)
        return copy
    }

    static func generate(_ model: String, _ extra: [String], in folder: URL) throws -> LessonRun {
        try LessonRunner.run("sd", ["generate", "--checkpoint", model, "--prompt", "a red circle", "--seed", "5",
                                    "--steps", "2", "--cfg", "3"] + extra, in: folder)
    }

    @Test("a model folder without vae/ says so and suggests --vae; with --vae FOLDER the picture is the complete model's")
    func externalVAE() throws {
        let folder = try LessonRunner.temporaryFolder()
        let noVAE = try Self.tinyModelCopy { try FileManager.default.removeItem(at: $0.appendingPathComponent("vae")) }
        let refused = try Self.generate(noVAE.path, ["--width", "64", "--height", "64", "--output", "a.png"], in: folder)
        #expect(refused.status == 1 && !refused.signalled)
        #expect(refused.errors.contains("holds no VAE") && refused.errors.contains("--vae"))
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("a.png").path))

        let inspect = try LessonRunner.run("sd", ["inspect", "--checkpoint", noVAE.path])
        #expect(inspect.status == 0 && inspect.output.contains("missing"), "\(inspect.errors)")

        let vae = Self.tinyModel + "/vae"
        let replaced = try Self.generate(noVAE.path, ["--vae", vae, "--width", "64", "--height", "64", "--output", "b.png"], in: folder)
        #expect(replaced.status == 0, "\(replaced.errors)")
        let complete = try Self.generate(Self.tinyModel, ["--width", "64", "--height", "64", "--output", "c.png"], in: folder)
        #expect(complete.status == 0, "\(complete.errors)")
        let b = try RGBImage(contentsOfFile: folder.appendingPathComponent("b.png").path)
        let c = try RGBImage(contentsOfFile: folder.appendingPathComponent("c.png").path)
        #expect(b.pixels == c.pixels)
    }

    @Test("img2img takes the init image's size, rounded down to a multiple of 8; --width/--height still win")
    func initImageSize() throws {
        let folder = try LessonRunner.temporaryFolder()
        var start = RGBImage(width: 100, height: 75, color: RGBColor(200, 40, 40))
        for y in 20..<50 { for x in 30..<70 { start[x, y] = RGBColor(20, 40, 220) } }
        try start.writePNG(to: folder.appendingPathComponent("start.png").path)
        let own = try Self.generate(Self.tinyModel, ["--init-image", "start.png", "--output", "own.png"], in: folder)
        #expect(own.status == 0, "\(own.errors)")
        #expect(own.errors.contains("cropped to 96x72"))
        let picture = try RGBImage(contentsOfFile: folder.appendingPathComponent("own.png").path)
        #expect(picture.width == 96 && picture.height == 72)

        let asked = try Self.generate(Self.tinyModel, ["--init-image", "start.png", "--width", "64", "--height", "128", "--output", "asked.png"], in: folder)
        #expect(asked.status == 0, "\(asked.errors)")
        let scaled = try RGBImage(contentsOfFile: folder.appendingPathComponent("asked.png").path)
        #expect(scaled.width == 64 && scaled.height == 128)

        try RGBImage(width: 40, height: 300).writePNG(to: folder.appendingPathComponent("thin.png").path)
        let thin = try Self.generate(Self.tinyModel, ["--init-image", "thin.png", "--output", "thin-out.png"], in: folder)
        #expect(thin.status == 1 && thin.errors.contains("40x300") && thin.errors.contains("--width"))
    }

    @Test("--lora FILE:STRENGTH changes the picture the same way in any format; sd inspect --lora says what it touches")
    func lora() throws {
        let folder = try LessonRunner.temporaryFolder()
        let lora = Self.fixtures.appendingPathComponent("lora").path
        let inspect = try LessonRunner.run("sd", ["inspect", "--checkpoint", Self.tinyModel, "--lora", lora + "/kohya.safetensors"])
        #expect(inspect.status == 0, "\(inspect.errors)")
        #expect(inspect.output.contains("kohya") && inspect.output.contains("rank 2, 4"))
        #expect(inspect.output.contains("unet         21 weights") && inspect.output.contains("attn2.to_k 2"))
        #expect(inspect.output.contains("text_encoder 7 weights") && inspect.output.contains("every layer finds its weight"))

        var pictures: [String: RGBImage] = [:]
        for (name, extra) in [("none", [String]()), ("kohya", ["--lora", lora + "/kohya.safetensors:0.7"]),
                              ("peft", ["--lora", lora + "/peft.safetensors:0.7"])] {
            let run = try Self.generate(Self.tinyModel, extra + ["--width", "64", "--height", "64", "--output", name + ".png"], in: folder)
            #expect(run.status == 0, "\(run.errors)")
            pictures[name] = try RGBImage(contentsOfFile: folder.appendingPathComponent(name + ".png").path)
        }
        #expect(pictures["kohya"]!.pixels == pictures["peft"]!.pixels)
        #expect(pictures["kohya"]!.pixels != pictures["none"]!.pixels)
        let text = try readPNGText(folder.appendingPathComponent("kohya.png").path)
        #expect(text.first { $0.key == "parameters" }?.value.contains("kohya.safetensors at 0.7") == true)

        let missing = try Self.generate(Self.tinyModel, ["--lora", "nowhere.safetensors", "--output", "x.png"], in: folder)
        #expect(missing.status == 1 && missing.errors.contains("nowhere.safetensors"))
    }

    @Test("--decoder taesd draws the picture with TAESD, --preview taesd the frames; both need --taesd")
    func taesd() throws {
        let folder = try LessonRunner.temporaryFolder()
        let taesd = Self.fixtures.appendingPathComponent("taesd/taesd_decoder.safetensors").path
        let run = try Self.generate(Self.tinyModel, ["--width", "64", "--height", "64", "--taesd", taesd, "--decoder", "taesd",
                                                     "--preview", "taesd", "--frames", "frames", "--output", "t.png"], in: folder)
        #expect(run.status == 0, "\(run.errors)")
        #expect(run.output.contains("taesd decode") && !run.output.contains("vae decode"))
        #expect(LessonRunner.files(in: folder.appendingPathComponent("frames")) == ["step-001.png", "step-002.png", "step-003.png"])   // PNDM: one more evaluation
        let vae = try Self.generate(Self.tinyModel, ["--width", "64", "--height", "64", "--output", "v.png"], in: folder)
        #expect(vae.status == 0)
        let a = try RGBImage(contentsOfFile: folder.appendingPathComponent("t.png").path)
        let b = try RGBImage(contentsOfFile: folder.appendingPathComponent("v.png").path)
        #expect(a.width == 64 && a.pixels != b.pixels)
        let missing = try Self.generate(Self.tinyModel, ["--decoder", "taesd", "--output", "x.png"], in: folder)
        #expect(missing.status != 0 && missing.errors.contains("--taesd"))
    }

    // MARK: Hostile safetensors files

    /// The tiny model's single file split into its header (as JSON) and its data.
    static func tinyFileParts() throws -> (header: [String: Any], data: Data, file: Data) {
        let file = try Data(contentsOf: fixtures.appendingPathComponent("tiny/tiny-sd-fp16.safetensors"))
        let length = Int(file.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let header = try JSONSerialization.jsonObject(with: file.subdata(in: 8..<(8 + length))) as! [String: Any]
        return (header, file.subdata(in: (8 + length)..<file.count), file)
    }

    static func assemble(_ header: [String: Any], _ data: Data) throws -> Data {
        let json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        return withUnsafeBytes(of: UInt64(json.count).littleEndian) { Data($0) } + json + data
    }

    /// The file with one header entry changed: `field` of the tensor `key` set to `value`.
    static func lying(_ key: String, _ field: String, _ value: Any) throws -> Data {
        var (header, data, _) = try tinyFileParts()
        var entry = header[key] as! [String: Any]
        entry[field] = value
        header[key] = entry
        return try assemble(header, data)
    }

    /// Runs `sd inspect` on `bytes`; it must exit 0, or 1 with one line on stderr, never by a signal.
    static func expectCleanOutcome(_ bytes: Data, _ what: String, requireError: Bool) throws {
        let folder = try LessonRunner.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("model.safetensors").path
        try bytes.write(to: URL(fileURLWithPath: path))
        let run = try LessonRunner.run("sd", ["inspect", "--checkpoint", path])
        #expect(!run.signalled, "\(what): killed by signal \(run.status)")
        #expect(run.status == 1 || (run.status == 0 && !requireError), "\(what): exit status \(run.status)")
        if run.status == 1 {
            let lines = run.errors.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].hasPrefix("Error: "), "\(what): \(run.errors)")
        }
    }

    static let conv = "model.diffusion_model.input_blocks.0.0.weight"

    @Test("lying headers: absurd shapes, unknown types, offsets outside the file, malformed entries", arguments: [
        "shape 2^31 x 2^31 x 2^31", "shape 0 x 2^62 x 2^62", "shape 2^62 x 2^62 x 0", "negative dimension",
        "dimension 2^80", "fractional dimension", "shape as a string", "dtype F64", "dtype U8", "dtype F8_E4M3",
        "dtype missing", "offsets past the end", "negative offset", "offsets reversed", "offset 2^70",
        "three offsets", "entry not an object",
    ])
    func lyingHeaders(mutation: String) throws {
        let bytes: Data
        switch mutation {
        case "shape 2^31 x 2^31 x 2^31": bytes = try Self.lying(Self.conv, "shape", [2147483648, 2147483648, 2147483648])
        case "shape 0 x 2^62 x 2^62": bytes = try Self.lying(Self.conv, "shape", [0, 1 << 62, 1 << 62])
        case "shape 2^62 x 2^62 x 0": bytes = try Self.lying(Self.conv, "shape", [1 << 62, 1 << 62, 0])
        case "negative dimension": bytes = try Self.lying(Self.conv, "shape", [-16, 4, 3, 3])
        case "dimension 2^80": bytes = try Self.lying(Self.conv, "shape", [pow(2.0, 80.0)])
        case "fractional dimension": bytes = try Self.lying(Self.conv, "shape", [1.5])
        case "shape as a string": bytes = try Self.lying(Self.conv, "shape", "16x4x3x3")
        case "dtype F64": bytes = try Self.lying(Self.conv, "dtype", "F64")
        case "dtype U8": bytes = try Self.lying(Self.conv, "dtype", "U8")
        case "dtype F8_E4M3": bytes = try Self.lying(Self.conv, "dtype", "F8_E4M3")
        case "dtype missing":
            var (header, data, _) = try Self.tinyFileParts()
            var entry = header[Self.conv] as! [String: Any]
            entry["dtype"] = nil
            header[Self.conv] = entry
            bytes = try Self.assemble(header, data)
        case "offsets past the end": bytes = try Self.lying(Self.conv, "data_offsets", [1_300_000, 1_301_152])
        case "negative offset": bytes = try Self.lying(Self.conv, "data_offsets", [-1152, 0])
        case "offsets reversed": bytes = try Self.lying(Self.conv, "data_offsets", [1152, 0])
        case "offset 2^70": bytes = try Self.lying(Self.conv, "data_offsets", [pow(2.0, 70.0), pow(2.0, 70.0) + 1152])
        case "three offsets": bytes = try Self.lying(Self.conv, "data_offsets", [0, 576, 1152])
        default: bytes = try Self.lying(Self.conv, "shape", [16, 4, 3, 3]).replacing(Data(#"{"data_offsets""#.utf8), with: Data(#"["data_offsets""#.utf8), maxReplacements: 1)
        }
        try Self.expectCleanOutcome(bytes, mutation, requireError: true)
    }

    @Test("absurd header lengths and truncated files")
    func lengthsAndTruncations() throws {
        let file = try Self.tinyFileParts().file
        let headerLength = Int(file.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        for length: UInt64 in [0, 1, 7, UInt64(file.count), UInt64(Int64.max), UInt64.max] {
            let bytes = withUnsafeBytes(of: length.littleEndian) { Data($0) } + file.dropFirst(8)
            try Self.expectCleanOutcome(bytes, "header length \(length)", requireError: true)
        }
        for cut in [0, 3, 8, 9, 100, headerLength + 7, headerLength + 8, headerLength + 9, file.count / 2, file.count - 1] {
            try Self.expectCleanOutcome(file.prefix(cut), "first \(cut) of \(file.count) bytes", requireError: true)
        }
    }

    @Test("bytes of the header changed one at a time: a clean error or a clean report, never a crash")
    func headerByteFlips() throws {
        let file = try Self.tinyFileParts().file
        let headerLength = Int(file.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        // Structural characters, digits and letters, at positions spread over the whole header.
        let replacements: [UInt8] = Array("\"{]:,9-e".utf8) + [0x00, 0xFF]
        for (index, position) in stride(from: 8, to: 8 + headerLength, by: headerLength / 30).enumerated() {
            var damaged = file
            damaged[position] = replacements[index % replacements.count]
            try Self.expectCleanOutcome(damaged, "byte \(position) set to \(damaged[position])", requireError: false)
        }
    }

    @Test("lying config files (absurd layer counts, sizes that overflow, an unsupported padding) stop sd generate with one message")
    func lyingConfigs() throws {
        let cases: [(file: String, key: String, value: Any)] = [
            ("unet/config.json", "layers_per_block", 1_000_000_000), ("unet/config.json", "sample_size", 1 << 62),
            ("unet/config.json", "downsample_padding", 0), ("unet/config.json", "transformer_layers_per_block", 1_000_000_000),
            ("vae/config.json", "layers_per_block", 1_000_000_000), ("vae/config.json", "latent_channels", 1 << 62),
            ("text_encoder/config.json", "num_hidden_layers", 1_000_000_000),
            ("scheduler/scheduler_config.json", "num_train_timesteps", 1 << 62),
        ]
        for (file, key, value) in cases {
            let model = try Self.tinyModelCopy { copy in
                let url = copy.appendingPathComponent(file)
                var config = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
                config[key] = value
                try JSONSerialization.data(withJSONObject: config).write(to: url)
            }
            let folder = try LessonRunner.temporaryFolder()
            let run = try Self.generate(model.path, ["--width", "64", "--height", "64", "--output", "x.png"], in: folder)
            let lines = run.errors.split(separator: "\n").filter { !$0.hasPrefix("[") }
            #expect(run.status == 1 && !run.signalled && lines.count == 1, "\(file) \(key): status \(run.status), \(run.errors)")
            #expect(run.errors.contains(key), "\(file) \(key): \(run.errors)")
        }
    }

    @Test("a UNet file whose header lies about shapes stops sd generate with one message, before any output")
    func lyingShapesInAModel() throws {
        for (key, shape) in [("conv_in.weight", [16, 36]), ("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight", [64, 1]),
                             ("time_embedding.linear_1.weight", [1024])] {
            let model = try Self.tinyModelCopy { copy in
                let url = copy.appendingPathComponent("unet/diffusion_pytorch_model.safetensors")
                let file = try Data(contentsOf: url)
                let length = Int(file.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
                var header = try JSONSerialization.jsonObject(with: file.subdata(in: 8..<(8 + length))) as! [String: Any]
                var entry = header[key] as! [String: Any]
                entry["shape"] = shape
                header[key] = entry
                try Self.assemble(header, file.subdata(in: (8 + length)..<file.count)).write(to: url)
            }
            let folder = try LessonRunner.temporaryFolder()
            let run = try Self.generate(model.path, ["--width", "64", "--height", "64", "--output", "x.png"], in: folder)
            #expect(run.status == 1 && !run.signalled, "\(key): \(run.errors)")
            #expect(run.errors.contains(key), "\(run.errors)")
            #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("x.png").path))
        }
    }
}
