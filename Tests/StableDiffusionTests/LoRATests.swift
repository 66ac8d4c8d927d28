import Foundation
import StableDiffusion
import TensorCore
import Testing

/// LoRA files in the three namings against diffusers' `load_lora_weights` + `fuse_lora(0.7)` on the
/// tiny model (fixtures by Tools/reference/make_lora_reference.py: one random change to 28 layers,
/// written as kohya, PEFT and old-diffusers files).
@Suite("LoRA: kohya, PEFT and old diffusers files merged as diffusers fuses them")
struct LoRATests {
    static let fixtures = PipelineTests.fixtures
    static func fixture(_ path: String) -> String { fixtures.appendingPathComponent(path).path }
    static let reference = try! SafeTensors.read(path: fixture("lora/reference.safetensors"))
    static let files = ["kohya.safetensors", "peft.safetensors", "diffusers_old.safetensors"]
    static let strength = 0.7

    /// The float32 single file: diffusers fused in float32, so the merged weights stay float32 here too.
    static func checkpoint(_ file: String) throws -> Checkpoint {
        try Checkpoint.open(fixture("tiny/tiny-sd.safetensors")).applying([(LoRA.read(path: fixture("lora/" + file)), strength)])
    }

    @Test("each file is read in its format, with every layer's rank and alpha", arguments: files)
    func formats(file: String) throws {
        let lora = try LoRA.read(path: Self.fixture("lora/" + file))
        #expect(lora.format == [.kohya, .peft, .diffusersLegacy][Self.files.firstIndex(of: file)!])
        #expect(lora.layers.count == 28)
        #expect(lora.layers.filter { $0.component == .textEncoder }.count == 7)
        let conv1 = try #require(lora.layers.first { $0.module.contains("resnets") && $0.module.hasSuffix("conv1") && $0.module.contains("down") })
        #expect(conv1.rank == 2 && conv1.down.shape == [2, 16, 3, 3] && conv1.up.shape == [16, 2, 1, 1])
        // alpha / r: 2 for the 3x3 convolutions (r 2, alpha 4); the old format has no alpha (= r).
        #expect(conv1.alpha == (lora.format == .diffusersLegacy ? nil : 4))
        let targets = try Checkpoint.open(Self.fixture("tiny/tiny-sd.safetensors")).targets(of: lora)
        #expect(targets.unmatched.isEmpty && targets.matched.count == 28)
    }

    // Tolerance: W + s·α/r·(up·down) with r ≤ 4 products summed in another order than torch's
    // matmul; weights and changes are O(1), so a few float32 ulps (≤ 1e-6) separate the two.
    @Test("the merged weights equal diffusers' fused ones (linear, 1x1 and 3x3 convolutions, text encoder)", arguments: files)
    func fusedWeights(file: String) throws {
        let checkpoint = try Self.checkpoint(file)
        let fused = Self.reference.keys.filter { $0.hasPrefix("fused.") }.sorted()
        #expect(fused.count == 6)
        for name in fused {
            var key = String(name.dropFirst("fused.".count))
            let component: Component = key.hasPrefix("unet.") ? .unet : .textEncoder
            key = String(key.drop { $0 != "." }.dropFirst())
            let expected = Self.reference[name]!.tensor()
            let merged = try checkpoint.store(component).tensor(key, shape: expected.shape)
            let original = try Checkpoint.open(Self.fixture("tiny/tiny-sd.safetensors")).store(component).tensor(key, shape: expected.shape)
            #expect(merged.maxAbsDifference(expected) < 1e-6, "\(key)")
            #expect(original.maxAbsDifference(expected) > 0.01, "\(key): the LoRA changes it")
        }
    }

    // Tolerance as PipelineTests': 1e-4 on pixels in [0, 1], while the LoRA moves them by 0.079 on
    // average and up to 0.57.
    @Test("the picture with the LoRA at 0.7 is diffusers' (and clearly not the picture without it)", arguments: files)
    func picture(file: String) throws {
        let pipeline = try StableDiffusionPipeline(checkpoint: Self.fixture("tiny/tiny-sd.safetensors"),
                                                   configuration: PipelineTests.tinyConfiguration(),
                                                   loras: [(Self.fixture("lora/" + file), Self.strength)])
        let embeddings = try pipeline.encode(prompts: ["a photograph of an astronaut riding a horse"])
        #expect(embeddings.maxAbsDifference(Self.reference["lora.prompt_embeds"]!.tensor()) < 1e-5)
        var steps: [Tensor] = []
        let result = try pipeline.generate(Self.request(), onStep: { steps.append($0.next) })
        for (index, latents) in steps.enumerated() {
            let expected = Self.reference["lora.step\(index).latents"]!.tensor()
            #expect(latents.maxAbsDifference(expected) / max(1, expected.scalars.map(abs).max()!) < 1e-4)
        }
        let image = PipelineTests.asNumPyImage(result.image)
        #expect(image.maxAbsDifference(Self.reference["lora.image"]!.tensor()) < 1e-4)
        #expect(image.maxAbsDifference(Self.reference["base.image"]!.tensor()) > 0.3)
    }

    /// The fixtures' run: PipelineTests' request (DDIM, 64x64, seed 42, guidance 7.5) with 2 steps.
    static func request() -> GenerationRequest {
        var request = PipelineTests.request(.ddim)
        request.steps = 2
        return request
    }

    @Test("on a float16 checkpoint the merged weights stay float16 (same step cost); the picture moves only by that rounding")
    func keepsPrecision() throws {
        let pipeline = try StableDiffusionPipeline(checkpoint: Self.fixture("tiny/diffusers"),
                                                   loras: [(Self.fixture("lora/kohya.safetensors"), Self.strength)])
        let store = pipeline.checkpoint.store(.unet)
        #expect(store.updatedKeys.count == 21)
        let parameter = try store.parameter("down_blocks.0.resnets.0.conv1.weight", shape: [16, 16, 3, 3])
        guard case .halves(let half) = parameter.storage else { Issue.record("the merged weight is not 16-bit"); return }
        #expect(half.format == .float16)
        let expected = Self.reference["fused.unet.down_blocks.0.resnets.0.conv1.weight"]!.tensor()
        #expect(parameter.value == HalfTensor(rounding: expected, to: .float16).widened())
        // The fixture measured that rounding the fused weights to float16 moves pixels by ≤ 9e-4.
        let image = PipelineTests.asNumPyImage(try pipeline.generate(Self.request()).image)
        #expect(image.maxAbsDifference(Self.reference["lora.image"]!.tensor()) < 2e-3)
    }

    @Test("two LoRAs add up: the same file twice at 0.35 is once at 0.7")
    func severalLoRAs() throws {
        let lora = try LoRA.read(path: Self.fixture("lora/peft.safetensors"))
        let twice = try Checkpoint.open(Self.fixture("tiny/tiny-sd.safetensors")).applying([(lora, 0.35), (lora, 0.35)])
        let once = try Self.checkpoint("peft.safetensors")
        let key = "down_blocks.0.attentions.0.proj_in.weight"
        #expect(try twice.store(.unet).tensor(key, shape: [16, 16, 1, 1]).maxAbsDifference(once.store(.unet).tensor(key, shape: [16, 16, 1, 1])) < 1e-6)
    }

    @Test("the attention processors' keys (…attn1.processor.to_q_lora.down.weight) name the same layers")
    func processorKeys() throws {
        let records = try SafeTensors.read(path: Self.fixture("lora/diffusers_old.safetensors"))
        var renamed: [String: TensorRecord] = [:]
        for (key, record) in records {
            var name = key
            for projection in ["to_q", "to_k", "to_v"] {
                name = name.replacingOccurrences(of: ".\(projection).lora.", with: ".processor.\(projection)_lora.")
            }
            name = name.replacingOccurrences(of: ".to_out.0.lora.", with: ".processor.to_out_lora.")
            renamed[name] = record
        }
        #expect(renamed.keys.contains { $0.contains("processor.to_out_lora.up") })
        let path = CheckpointVariantTests.temporary("processor.safetensors")
        try SafeTensorsWriter.write(renamed, to: path)
        let lora = try LoRA.read(path: path)
        let targets = try Checkpoint.open(Self.fixture("tiny/tiny-sd.safetensors")).targets(of: lora)
        let original = try Checkpoint.open(Self.fixture("tiny/tiny-sd.safetensors")).targets(of: LoRA.read(path: Self.fixture("lora/diffusers_old.safetensors")))
        #expect(targets.unmatched.isEmpty)
        #expect(Set(targets.matched.map(\.key)) == Set(original.matched.map(\.key)))
    }

    @Test("bad LoRA files: one message naming the problem")
    func badFiles() throws {
        func message(_ rename: (String) -> String?) -> String {
            do {
                var renamed: [String: TensorRecord] = [:]
                for (key, record) in try SafeTensors.read(path: Self.fixture("lora/kohya.safetensors")) {
                    if let name = rename(key) { renamed[name] = record }
                }
                let path = CheckpointVariantTests.temporary("bad.safetensors")
                try SafeTensorsWriter.write(renamed, to: path)
                _ = try Checkpoint.open(Self.fixture("tiny/tiny-sd.safetensors")).applying([(LoRA.read(path: path), 1)])
                return "accepted"
            } catch { return "\(error)" }
        }
        let unknown = message { $0.replacingOccurrences(of: "lora_unet_mid_block_", with: "lora_unet_middle_block_") }
        #expect(unknown.contains("2 of its 28 LoRA layers match nothing") && unknown.contains("lora_unet_middle_block_attentions_0"))
        let lonely = message { $0.hasPrefix("lora_te_text_model_encoder_layers_1_self_attn_v_proj.lora_up") ? nil : $0 }
        #expect(lonely.contains("only one of its two factors") && lonely.contains("layers_1_self_attn_v_proj"))
        let loha = message { $0.replacingOccurrences(of: "lora_down.weight", with: "hada_w1_a") }
        #expect(loha.contains("LoHa"))
        let sdxl = message { $0.replacingOccurrences(of: "lora_te_", with: "lora_te1_") }
        #expect(sdxl.contains("Stable Diffusion XL"))
        do {
            _ = try LoRA.read(path: Self.fixture("tiny/tiny-sd-fp16.safetensors"))
            Issue.record("a checkpoint was read as a LoRA")
        } catch {
            #expect("\(error)".contains("cannot be used as a LoRA") && "\(error)".contains("no lora_down"))
        }
    }
}

@Suite("LoRA: kohya names in the original code's spelling")
struct LoRAOriginalNamesTests {
    @Test("KeyMapping.originalName gives back the original name of every tensor of the tiny single file")
    func originalNames() throws {
        var checked = 0
        for original in try SafeTensors.read(path: LoRATests.fixture("tiny/tiny-sd.safetensors")).keys {
            guard !KeyMapping.isIgnored(original), let (component, key) = KeyMapping.rename(original) else { continue }
            #expect(KeyMapping.originalName(key, component: component) == original, "\(key)")
            checked += 1
        }
        #expect(checked == 962)
        #expect(KeyMapping.originalName("down_blocks.1.attentions.0.proj_in.weight", component: .unet)
                == "model.diffusion_model.input_blocks.4.1.proj_in.weight")
        #expect(KeyMapping.originalName("down_blocks.0.resnets.1.norm1.weight", component: .unet)
                == "model.diffusion_model.input_blocks.2.0.in_layers.0.weight")
        // A transformer's norm1 keeps its name (only a residual block's norm1 was in_layers.0).
        #expect(KeyMapping.originalName("down_blocks.0.attentions.0.transformer_blocks.0.norm1.weight", component: .unet)
                == "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.norm1.weight")
        #expect(KeyMapping.originalName("decoder.mid_block.attentions.0.group_norm.weight", component: .vae)
                == "first_stage_model.decoder.mid.attn_1.norm.weight")
    }

    @Test("a kohya LoRA trained on the original code (lora_unet_input_blocks_1_1_proj_in, ..._in_layers_2) merges like its diffusers-named twin")
    func originalSpelling() throws {
        let checkpoint = try Checkpoint.open(LoRATests.fixture("tiny/tiny-sd.safetensors"))
        var renamed: [String: TensorRecord] = [:]
        for (key, record) in try SafeTensors.read(path: LoRATests.fixture("lora/kohya.safetensors")) {
            guard key.hasPrefix("lora_unet_") else { renamed[key] = record; continue }
            // Find the layer's diffusers key, then spell it the original way.
            let name = key.prefix { $0 != "." }, suffix = key.dropFirst(name.count)
            let target = try #require(checkpoint.store(.unet).keys.first {
                $0.replacingOccurrences(of: ".", with: "_") == name.dropFirst("lora_unet_".count) + "_weight"
            })
            let original = try #require(KeyMapping.originalName(target, component: .unet))
            let module = original.dropFirst("model.diffusion_model.".count).dropLast(".weight".count)
            renamed["lora_unet_" + module.replacingOccurrences(of: ".", with: "_") + suffix] = record
        }
        #expect(renamed.keys.contains("lora_unet_input_blocks_1_0_in_layers_2.lora_down.weight"))
        let path = CheckpointVariantTests.temporary("original.safetensors")
        try SafeTensorsWriter.write(renamed, to: path)
        let twin = try checkpoint.targets(of: LoRA.read(path: LoRATests.fixture("lora/kohya.safetensors")))
        let targets = checkpoint.targets(of: try LoRA.read(path: path))
        #expect(targets.unmatched.isEmpty)
        #expect(Set(targets.matched.map(\.key)) == Set(twin.matched.map(\.key)))
    }
}

@Suite("LoRA: PEFT files from a text encoder without the text_model. level")
struct LoRATransformers5Tests {
    @Test("text_encoder.encoder.layers… (transformers 5's module paths) finds the same weights as text_encoder.text_model.encoder.layers…")
    func withoutTextModelLevel() throws {
        var renamed: [String: TensorRecord] = [:]
        for (key, record) in try SafeTensors.read(path: LoRATests.fixture("lora/peft.safetensors")) {
            renamed[key.replacingOccurrences(of: "text_encoder.text_model.", with: "text_encoder.")] = record
        }
        #expect(renamed.keys.contains("text_encoder.encoder.layers.0.self_attn.q_proj.lora_A.weight"))
        let path = CheckpointVariantTests.temporary("peft-t5.safetensors")
        try SafeTensorsWriter.write(renamed, to: path)
        let checkpoint = try Checkpoint.open(LoRATests.fixture("tiny/tiny-sd.safetensors"))
        let targets = checkpoint.targets(of: try LoRA.read(path: path))
        let original = checkpoint.targets(of: try LoRA.read(path: LoRATests.fixture("lora/peft.safetensors")))
        #expect(targets.unmatched.isEmpty)
        #expect(Set(targets.matched.map(\.key)) == Set(original.matched.map(\.key)))
    }
}
