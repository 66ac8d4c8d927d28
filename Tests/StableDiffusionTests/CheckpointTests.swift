import Foundation
import StableDiffusion
import TensorCore
import Testing

@Suite("Checkpoints: layouts, the rename table, and bad files")
struct CheckpointTests {
    static let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!
    static func fixture(_ path: String) -> String { fixtures.appendingPathComponent(path).path }

    @Test("every tensor of the single file lands on the diffusers key with the same numbers")
    func renameTableMatchesDiffusers() throws {
        let single = try Checkpoint.open(Self.fixture("tiny/tiny-sd.safetensors"))
        let folder = try Checkpoint.open(Self.fixture("tiny/diffusers"))
        #expect(single.layout == .singleFile && folder.layout == .diffusers)
        #expect(single.unrecognisedKeys.isEmpty)
        // 12 schedule buffers and position_ids are not weights of any network.
        #expect(single.ignoredKeys.count == 13)
        for component in Component.allCases {
            let a = single.store(component), b = folder.store(component)
            #expect(a.keys == b.keys, "\(component): key sets differ")
            for key in a.keys {
                let x = a.record(key)!.tensor(), y = b.record(key)!.tensor()
                // The VAE attention's 1x1 convolutions are (C, C, 1, 1) in one layout, (C, C) in the other.
                #expect(x.scalars == y.scalars, "\(component)/\(key)")
            }
        }
    }

    @Test("a few renames spelled out", arguments: [
        ("model.diffusion_model.input_blocks.4.1.proj_in.weight", Component.unet, "down_blocks.1.attentions.0.proj_in.weight"),
        ("model.diffusion_model.input_blocks.9.0.op.bias", .unet, "down_blocks.2.downsamplers.0.conv.bias"),
        ("model.diffusion_model.output_blocks.2.1.conv.weight", .unet, "up_blocks.0.upsamplers.0.conv.weight"),
        ("model.diffusion_model.output_blocks.8.2.conv.weight", .unet, "up_blocks.2.upsamplers.0.conv.weight"),
        ("model.diffusion_model.output_blocks.11.0.skip_connection.weight", .unet, "up_blocks.3.resnets.2.conv_shortcut.weight"),
        ("model.diffusion_model.middle_block.2.emb_layers.1.weight", .unet, "mid_block.resnets.1.time_emb_proj.weight"),
        ("model.diffusion_model.input_blocks.1.1.norm.weight", .unet, "down_blocks.0.attentions.0.norm.weight"),
        ("first_stage_model.decoder.up.0.block.2.nin_shortcut.bias", .vae, "decoder.up_blocks.3.resnets.2.conv_shortcut.bias"),
        ("first_stage_model.encoder.mid.attn_1.proj_out.weight", .vae, "encoder.mid_block.attentions.0.to_out.0.weight"),
        ("first_stage_model.quant_conv.weight", .vae, "quant_conv.weight"),
        ("cond_stage_model.transformer.text_model.final_layer_norm.bias", .textEncoder, "text_model.final_layer_norm.bias"),
    ])
    func renames(original: String, component: Component, renamed: String) {
        let result = KeyMapping.rename(original)
        #expect(result?.0 == component && result?.1 == renamed)
    }

    @Test("the inferred configuration of the single file has the tiny model's widths")
    func inferredConfiguration() throws {
        let configuration = try StableDiffusionConfiguration(checkpoint: Checkpoint.open(Self.fixture("tiny/tiny-sd.safetensors")))
        #expect(configuration.unet.blockOutChannels == [16, 16, 16, 16])
        #expect(configuration.unet.crossAttentionDim == 4)
        #expect(configuration.vae.blockOutChannels == [8, 16, 16, 16])
        #expect(configuration.textEncoder.hiddenSize == 4 && configuration.textEncoder.numHiddenLayers == 2)
        #expect(configuration.textEncoder.intermediateSize == 16)
    }

    /// Writes a safetensors file from a JSON header string and raw bytes.
    static func write(header: String, data: [UInt8], to name: String) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-\(UUID().uuidString)-\(name)")
        var bytes = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { Array($0) }
        bytes += Array(header.utf8) + data
        try Data(bytes).write(to: url)
        return url.path
    }

    @Test("bad files give one message naming the problem")
    func badFiles() throws {
        func message(_ path: String) -> String {
            do { _ = try Checkpoint.open(path); return "opened" } catch { return "\(error)" }
        }
        #expect(message("/no/such/model.safetensors").contains("does not exist"))
        let text = try Self.write(header: "", data: [], to: "empty.safetensors")
        #expect(message(text).contains("too short") || message(text).contains("header"))
        // Header says 8 bytes of float32 data, file holds 4.
        let truncated = try Self.write(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: [0, 0, 128, 63], to: "t.safetensors")
        #expect(message(truncated).contains("claims bytes 0..<8 but only 4 data bytes exist"))
        // Offsets cover 8 bytes but shape (3) needs 12.
        let lying = try Self.write(header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: Array(repeating: 0, count: 8), to: "l.safetensors")
        #expect(message(lying).contains("needs 12 bytes"))
        let float8 = try Self.write(header: #"{"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}"#, data: [0], to: "f8.safetensors")
        #expect(message(float8).contains("F8_E4M3"))
        let huge = try Self.write(header: "{}", data: [], to: "h.safetensors")
        #expect(message(huge).contains("no text_encoder tensors") || message(huge).contains("holds no"))
        let sdxl = try Self.write(header: #"{"conditioner.embedders.0.x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0], to: "xl.safetensors")
        #expect(message(sdxl).contains("Stable Diffusion XL"))
        let sd2 = try Self.write(header: #"{"cond_stage_model.model.token_embedding.weight":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0], to: "v2.safetensors")
        #expect(message(sd2).contains("2.x"))
        let notJSON = try Self.write(header: "not json at all", data: [], to: "nj.safetensors")
        #expect(message(notJSON).contains("not a JSON object"))
    }

    @Test("a checkpoint missing one UNet tensor is refused, naming the key")
    func missingTensor() throws {
        // Copy the tiny single file without one tensor by rewriting its header.
        let records = try SafeTensors.read(path: Self.fixture("tiny/tiny-sd.safetensors"))
        let dropped = "model.diffusion_model.middle_block.1.proj_out.bias"
        var header: [String: Any] = [:]
        var data: [UInt8] = []
        for name in records.keys.sorted() where name != dropped {
            let record = records[name]!
            let bytes = Array(record.file.bytes[record.byteRange])
            header[name] = ["dtype": record.type.rawValue, "shape": record.shape, "data_offsets": [data.count, data.count + bytes.count]]
            data += bytes
        }
        let json = String(decoding: try JSONSerialization.data(withJSONObject: header), as: UTF8.self)
        let path = try Self.write(header: json, data: data, to: "missing.safetensors")
        let configuration = try StableDiffusionConfiguration(checkpoint: Checkpoint.open(Self.fixture("tiny/diffusers")))
        let pipeline = try StableDiffusionPipeline(checkpoint: path, configuration: configuration)
        #expect(throws: CheckpointError.missingKey("mid_block.attentions.0.proj_out.bias")) { try pipeline.unet() }
    }
}
