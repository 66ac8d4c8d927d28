import Foundation
import StableDiffusion
import TensorCore
import Testing

/// Checkpoints as people have them: the text encoder with and without transformers' `text_model.`
/// level, bfloat16 weights, files without a VAE, and standalone VAEs in every naming.
///
/// The variants are made from the tiny model's fixtures, by renaming keys (`SafeTensorsWriter`
/// copies the bytes) or by `Tools/reference/make_ckpt_fixtures.py` for the `.ckpt` ones, so the
/// numbers are known: a variant must give exactly the network the original gives.
@Suite("Checkpoints as they come: key variants, bf16, external VAEs")
struct CheckpointVariantTests {
    static let fixtures = PipelineTests.fixtures
    static func fixture(_ path: String) -> String { fixtures.appendingPathComponent(path).path }
    static let singleFile = fixture("tiny/tiny-sd-fp16.safetensors")
    static let folder = fixture("tiny/diffusers")

    static func temporary(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("variant-\(UUID().uuidString)-\(name)").path
    }

    /// A copy of the tiny single file with keys renamed (nil drops the tensor).
    static func renamedCopy(_ rename: (String) -> String?) throws -> String {
        var renamed: [String: TensorRecord] = [:]
        for (key, record) in try SafeTensors.read(path: singleFile) {
            if let name = rename(key) { renamed[name] = record }
        }
        let path = temporary("model.safetensors")
        try SafeTensorsWriter.write(renamed, to: path)
        return path
    }

    /// A copy of the tiny diffusers folder whose `file` is rewritten with keys renamed.
    static func folderCopy(rewriting file: String, _ rename: (String) -> String) throws -> String {
        let copy = temporary("diffusers")
        try FileManager.default.copyItem(atPath: folder, toPath: copy)
        let path = copy + "/" + file
        let records = try SafeTensors.read(path: path)
        try FileManager.default.removeItem(atPath: path)
        try SafeTensorsWriter.write(Dictionary(uniqueKeysWithValues: records.map { (rename($0.key), $0.value) }), to: path)
        return copy
    }

    static let prompts = ["a red circle", "an astronaut riding a horse"]

    static func textEmbeddings(_ pipeline: StableDiffusionPipeline) throws -> Tensor {
        try pipeline.encode(prompts: prompts)
    }

    @Test("a single file whose text encoder has no text_model. level gives the same text embeddings")
    func singleFileWithoutTextModelLevel() throws {
        let prefix = "cond_stage_model.transformer.text_model."
        let variant = try Self.renamedCopy { key in
            key.hasPrefix(prefix) ? "cond_stage_model.transformer." + key.dropFirst(prefix.count) : key
        }
        let configuration = try PipelineTests.tinyConfiguration()
        let original = try StableDiffusionPipeline(checkpoint: Self.singleFile, configuration: configuration)
        let renamed = try StableDiffusionPipeline(checkpoint: variant, configuration: configuration)
        #expect(renamed.checkpoint.unrecognisedKeys.isEmpty)
        #expect(renamed.checkpoint.store(.textEncoder).keys == original.checkpoint.store(.textEncoder).keys)
        // The shapes say the same configuration when read from the renamed file.
        #expect(try StableDiffusionConfiguration(checkpoint: renamed.checkpoint).textEncoder
                == StableDiffusionConfiguration(checkpoint: original.checkpoint).textEncoder)
        #expect(try Self.textEmbeddings(renamed).scalars == Self.textEmbeddings(original).scalars)
    }

    /// The names transformers gives the tiny text encoder's tensors (Tools/reference/make_layout_reference.py).
    struct NativeKeys: Decodable {
        let transformersVersion: String
        let stateDict: [String]
        let savePretrained: [String]
    }

    @Test("a diffusers folder whose text encoder has transformers 5's own names (state_dict: no text_model.; save_pretrained) loads the same")
    func diffusersFolderWithTransformersNames() throws {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let native = try decoder.decode(NativeKeys.self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("tiny/text_encoder_native_keys.json")))
        #expect(native.stateDict.contains("encoder.layers.0.mlp.fc1.weight"))
        let original = try StableDiffusionPipeline(checkpoint: Self.folder)
        for names in [native.stateDict, native.savePretrained] {
            // Each of our keys is a native name with or without the `text_model.` level.
            let byOurName = Dictionary(uniqueKeysWithValues: names.map { ($0.hasPrefix("text_model.") ? $0 : "text_model." + $0, $0) })
            let variant = try Self.folderCopy(rewriting: "text_encoder/model.safetensors") { byOurName[$0]! }
            let renamed = try StableDiffusionPipeline(checkpoint: variant)
            #expect(renamed.checkpoint.store(.textEncoder).keys == original.checkpoint.store(.textEncoder).keys)
            #expect(try Self.textEmbeddings(renamed).scalars == Self.textEmbeddings(original).scalars)
        }
    }

    @Test("VAE attention under diffusers' old names (query, key, value, proj_attn) loads as to_q, to_k, to_v, to_out.0")
    func deprecatedVAEAttentionNames() throws {
        let old = ["to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"]
        let variant = try Self.folderCopy(rewriting: "vae/diffusion_pytorch_model.safetensors") { key in
            var name = key
            for (new, deprecated) in old { name = name.replacingOccurrences(of: ".attentions.0.\(new).", with: ".attentions.0.\(deprecated).") }
            return name
        }
        let records = try SafeTensors.read(path: variant + "/vae/diffusion_pytorch_model.safetensors")
        #expect(records.keys.contains("decoder.mid_block.attentions.0.proj_attn.weight"))
        let original = try StableDiffusionPipeline(checkpoint: Self.folder)
        let renamed = try StableDiffusionPipeline(checkpoint: variant)
        let latent = Tensor(shape: [1, 4, 8, 8], scalars: (0..<256).map { sin(Float($0) * 0.37) })
        #expect(try renamed.vae().decode(scaledLatents: latent).scalars == original.vae().decode(scaledLatents: latent).scalars)
    }

    /// The tiny model's Float32 weights rounded to bfloat16 (round to nearest even, as torch does).
    static func bfloat16Store(_ component: Component) throws -> WeightStore {
        let original = try Checkpoint.open(fixture("tiny/tiny-sd.safetensors")).store(component)
        var tensors: [String: Tensor] = [:]
        for key in original.keys {
            tensors[key] = HalfTensor(rounding: original.record(key)!.tensor(), to: .bfloat16).widened()
        }
        return WeightStore(tensors: tensors)
    }

    @Test("a bfloat16 .ckpt without a VAE: 16-bit weights kept, the same networks as rounding the float32 ones, and a clear error until a VAE is given")
    func bfloat16CheckpointWithoutVAE() throws {
        let path = Self.fixture("ckpt/tiny-sd-bf16-novae.ckpt")
        let checkpoint = try Checkpoint.open(path)
        #expect(checkpoint.missingComponents == [.vae])
        #expect(checkpoint.typeCounts[.bfloat16] == checkpoint.store(.unet).keys.count + checkpoint.store(.textEncoder).keys.count)
        #expect(checkpoint.store(.textEncoder).keys == (try Self.bfloat16Store(.textEncoder)).keys)

        let configuration = try PipelineTests.tinyConfiguration()
        let withoutVAE = try StableDiffusionPipeline(checkpoint: path, configuration: configuration)
        #expect(throws: CheckpointError.missingComponent(path, .vae)) { try withoutVAE.checkComplete() }
        #expect("\(CheckpointError.missingComponent(path, .vae))".contains("--vae"))
        #expect(throws: CheckpointError.missingComponent(path, .vae)) {
            _ = try withoutVAE.generate(GenerationRequest(prompt: "a", steps: 1, width: 64, height: 64))
        }

        // Text encoder and UNet: the bf16 file against float32 weights rounded to bf16 here.
        let pipeline = try StableDiffusionPipeline(checkpoint: path, configuration: configuration,
                                                   vae: Self.fixture("ckpt/tiny-vae.ckpt"))
        try pipeline.checkComplete()
        let rounded = try CLIPTextModel(Weights(Self.bfloat16Store(.textEncoder))["text_model"], configuration: configuration.textEncoder)
        let ids = try pipeline.tokenizer().tokenize(Self.prompts[1]).ids
        let context = rounded([ids])
        #expect(try pipeline.loadTextEncoder()([ids]).scalars == context.scalars)
        let latent = Tensor(shape: [1, 4, 8, 8], scalars: (0..<256).map { cos(Float($0) * 0.11) })
        let roundedUNet = try UNet2DConditionModel(Weights(Self.bfloat16Store(.unet)), configuration: configuration.unet)
        let expected = roundedUNet(latent, timestep: 500, encoderHiddenStates: context)
        let unet = try pipeline.unet()
        #expect(unet(latent, timestep: 500, encoderHiddenStates: context).scalars == expected.scalars)
        // bf16 keeps 8 significant bits: the UNet's answer moves visibly from the fp16 model's.
        let fp16UNet = try StableDiffusionPipeline(checkpoint: Self.singleFile, configuration: configuration).unet()
        let difference = (fp16UNet(latent, timestep: 500, encoderHiddenStates: context) - expected).map { abs($0) }.scalars.max()!
        #expect(difference > 1e-4)
        // The picture runs end to end with the VAE from the separate file.
        let result = try pipeline.generate(GenerationRequest(prompt: "a", steps: 1, guidanceScale: 1, width: 64, height: 64))
        #expect(result.image.shape == [1, 3, 64, 64])
    }

    @Test("a standalone VAE in every form gives the checkpoint's own VAE", arguments: [
        "ckpt (original names, no prefix, loss.* tensors)", "safetensors under first_stage_model.",
        "safetensors in diffusers names", "diffusers vae/ folder", "whole diffusers folder",
    ])
    func standaloneVAE(form: String) throws {
        let path: String
        switch form {
        case "ckpt (original names, no prefix, loss.* tensors)": path = Self.fixture("ckpt/tiny-vae.ckpt")
        case "safetensors under first_stage_model.": path = try Self.renamedCopy { $0.hasPrefix("first_stage_model.") ? $0 : nil }
        case "safetensors in diffusers names": path = Self.folder + "/vae/diffusion_pytorch_model.safetensors"
        case "diffusers vae/ folder": path = Self.folder + "/vae"
        default: path = Self.folder
        }
        let withoutVAE = try Self.renamedCopy { $0.hasPrefix("first_stage_model.") ? nil : $0 }
        let configuration = try PipelineTests.tinyConfiguration()
        let original = try StableDiffusionPipeline(checkpoint: Self.singleFile, configuration: configuration)
        let replaced = try StableDiffusionPipeline(checkpoint: withoutVAE, configuration: configuration, vae: path)
        #expect(replaced.checkpoint.vaeFile == path)
        #expect(replaced.checkpoint.store(.vae).keys == original.checkpoint.store(.vae).keys)
        let latent = Tensor(shape: [1, 4, 8, 8], scalars: (0..<256).map { sin(Float($0) * 0.21) })
        #expect(try replaced.vae().decode(scaledLatents: latent).scalars == original.vae().decode(scaledLatents: latent).scalars)
        // A folder brings its config.json: the 4 GroupNorm groups come from it, not from SD 1.x.
        if form.contains("folder") {
            #expect(try StableDiffusionConfiguration(checkpoint: replaced.checkpoint).vae.normNumGroups == 4)
        }
    }

    @Test("--vae with something that is not a VAE, and a checkpoint without a text encoder, say what is wrong")
    func badVAEAndMissingTextEncoder() throws {
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "no error" } catch { return "\(error)" }
        }
        let notVAE = message { _ = try Checkpoint.open(Self.singleFile).replacingVAE(with: Self.fixture("ckpt/tiny-sd-fp16.ckpt")) }
        #expect(notVAE.contains("not a standalone VAE") && notVAE.contains("belong to no VAE"))
        #expect(message { _ = try Checkpoint.open(Self.singleFile).replacingVAE(with: "/no/such/vae.safetensors") }.contains("does not exist"))
        let emptyFolder = Self.temporary("empty")
        try FileManager.default.createDirectory(atPath: emptyFolder, withIntermediateDirectories: true)
        #expect(message { _ = try Checkpoint.open(Self.singleFile).replacingVAE(with: emptyFolder) }.contains("diffusion_pytorch_model.safetensors"))

        let noText = try Self.renamedCopy { $0.hasPrefix("cond_stage_model.") ? nil : $0 }
        let pipeline = try StableDiffusionPipeline(checkpoint: noText, configuration: PipelineTests.tinyConfiguration())
        #expect(pipeline.checkpoint.missingComponents == [.textEncoder])
        let text = message { try pipeline.checkComplete() }
        #expect(text.contains("holds no text encoder") && text.contains("cond_stage_model.transformer"))
        let noUNet = try Self.renamedCopy { $0.hasPrefix("model.diffusion_model.") ? nil : $0 }
        #expect(message { _ = try Checkpoint.open(noUNet) }.contains("holds no unet tensors"))
    }

    @Test("KeyMapping: the text encoder's and the VAE's naming variants", arguments: [
        ("cond_stage_model.transformer.encoder.layers.3.mlp.fc1.weight", Component.textEncoder, "text_model.encoder.layers.3.mlp.fc1.weight"),
        ("cond_stage_model.transformer.final_layer_norm.bias", .textEncoder, "text_model.final_layer_norm.bias"),
        ("cond_stage_model.transformer.text_model.embeddings.token_embedding.weight", .textEncoder, "text_model.embeddings.token_embedding.weight"),
    ])
    func variantRenames(original: String, component: Component, renamed: String) {
        let result = KeyMapping.rename(original)
        #expect(result?.0 == component && result?.1 == renamed)
    }

    @Test("diffusers names: text_model. added where missing, old VAE attention names updated, others kept")
    func diffusersNames() {
        #expect(KeyMapping.diffusersName("encoder.layers.0.self_attn.q_proj.weight", component: .textEncoder) == "text_model.encoder.layers.0.self_attn.q_proj.weight")
        #expect(KeyMapping.diffusersName("text_model.final_layer_norm.weight", component: .textEncoder) == "text_model.final_layer_norm.weight")
        #expect(KeyMapping.diffusersName("decoder.mid_block.attentions.0.proj_attn.bias", component: .vae) == "decoder.mid_block.attentions.0.to_out.0.bias")
        #expect(KeyMapping.diffusersName("encoder.mid_block.attentions.0.key.weight", component: .vae) == "encoder.mid_block.attentions.0.to_k.weight")
        // "key" outside attention is not touched, nor is the UNet.
        #expect(KeyMapping.diffusersName("decoder.conv_in.weight", component: .vae) == "decoder.conv_in.weight")
        #expect(KeyMapping.diffusersName("down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight", component: .unet)
                == "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight")
    }
}

@Suite("Memory: mapped weights given back between networks")
struct MappedPagesTests {
    @Test("released pages read back unchanged, and a pipeline draws the same picture twice after giving its networks' pages back")
    func releasedPagesReadBack() throws {
        let path = CheckpointVariantTests.singleFile
        let records = try SafeTensors.read(path: path)
        let record = try #require(records["model.diffusion_model.input_blocks.1.0.in_layers.2.weight"])
        let before = record.floats()
        record.file.releasePages(0..<record.file.bytes.count)
        #expect(record.floats() == before)

        let pipeline = try StableDiffusionPipeline(checkpoint: CheckpointVariantTests.folder)
        var request = LoRATests.request()
        request.scheduler = .eulerAncestral
        let first = try pipeline.generate(request).image
        let second = try pipeline.generate(request).image
        #expect(first == second)
    }

    @Test("a UNet that gives back each block's weight pages after it runs computes exactly what one that keeps them does")
    func unetGivesBackPages() throws {
        let configuration = try PipelineTests.tinyConfiguration()
        let store = try Checkpoint.open(CheckpointVariantTests.singleFile).store(.unet)
        var unet = try UNet2DConditionModel(Weights(store), configuration: configuration.unet)
        let latent = Tensor(shape: [2, 4, 8, 8], scalars: (0..<512).map { sin(Float($0) * 0.3) })
        let context = Tensor(shape: [2, 77, 4], scalars: (0..<616).map { cos(Float($0) * 0.7) })
        let kept = unet(latent, timestep: 321, encoderHiddenStates: context)
        unet.givesBackWeightPages = true
        for _ in 0..<2 { #expect(unet(latent, timestep: 321, encoderHiddenStates: context) == kept) }
    }
}
