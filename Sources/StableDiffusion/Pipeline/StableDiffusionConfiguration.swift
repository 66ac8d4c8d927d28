import Foundation

/// The sizes of the three networks and the sampler settings of one checkpoint.
///
/// A diffusers folder says everything in its `config.json` files. A single `.safetensors` file
/// says nothing, so its configuration is Stable Diffusion 1.x's, with every width read off the
/// tensor shapes (the way fine-tunes of other widths are still recognised). Two numbers cannot be
/// read from shapes: attention heads (8 in the UNet, width/64 in CLIP) and GroupNorm groups (32);
/// SD 1.x's original code hard-codes them too.
public struct StableDiffusionConfiguration: Equatable, Sendable {
    public var textEncoder: CLIPTextConfiguration
    public var unet: UNetConfiguration
    public var vae: VAEConfiguration
    public var scheduler: SchedulerConfiguration

    public init(textEncoder: CLIPTextConfiguration, unet: UNetConfiguration, vae: VAEConfiguration,
                scheduler: SchedulerConfiguration) {
        self.textEncoder = textEncoder
        self.unet = unet
        self.vae = vae
        self.scheduler = scheduler
    }

    public static let sd15 = StableDiffusionConfiguration(textEncoder: .sd15, unet: .sd15, vae: .sd15, scheduler: .sd15)

    /// The configuration of a checkpoint: for each network, its JSON file (diffusers folders), else
    /// SD 1.x's with the widths read off the tensor shapes. A network the checkpoint lacks keeps
    /// SD 1.x's numbers (the pipeline refuses to run without it anyway).
    public init(checkpoint: Checkpoint) throws {
        func decode<T: Decodable>(_ type: T.Type, _ component: Component) throws -> T? {
            guard let data = checkpoint.configData(component) else { return nil }
            do {
                return try JSONDecoder().decode(T.self, from: data)
            } catch {
                throw CheckpointError.corrupt(checkpoint.vaeFile.flatMap { component == .vae ? $0 : nil } ?? checkpoint.path,
                                              "\(component.rawValue)/config.json cannot be read: \(error)")
            }
        }
        let missing = Set(checkpoint.missingComponents)
        let path = checkpoint.path
        textEncoder = try decode(CLIPTextConfiguration.self, .textEncoder)
            ?? (missing.contains(.textEncoder) ? .sd15 : Self.inferTextEncoder(checkpoint.store(.textEncoder), path: path))
        unet = try decode(UNetConfiguration.self, .unet) ?? Self.inferUNet(checkpoint.store(.unet), path: path)
        vae = try decode(VAEConfiguration.self, .vae)
            ?? (missing.contains(.vae) ? .sd15 : Self.inferVAE(checkpoint.store(.vae), path: checkpoint.vaeFile ?? path))
        if let data = checkpoint.schedulerConfigData {
            do {
                scheduler = try JSONDecoder().decode(SchedulerConfiguration.self, from: data)
            } catch {
                throw CheckpointError.corrupt(path, "scheduler/scheduler_config.json cannot be read: \(error)")
            }
        } else {
            scheduler = .sd15
        }
    }

    /// Reads one dimension of a tensor that every SD 1.x checkpoint has.
    static func dimension(_ store: WeightStore, _ key: String, _ axis: Int, path: String) throws -> Int {
        guard let record = store.record(key) else { throw CheckpointError.missingKey(key) }
        guard axis < record.shape.count else {
            throw CheckpointError.corrupt(path, "tensor '\(key)' has shape \(record.shape), too few dimensions")
        }
        return record.shape[axis]
    }

    static func inferUNet(_ store: WeightStore, path: String) throws -> UNetConfiguration {
        var configuration = UNetConfiguration.sd15
        // conv_in: (320, 4, 3, 3); the first resnet of each level: (C_level, C_in, 3, 3).
        configuration.inChannels = try dimension(store, "conv_in.weight", 1, path: path)
        configuration.outChannels = try dimension(store, "conv_out.weight", 0, path: path)
        configuration.blockOutChannels = try (0..<4).map {
            try dimension(store, "down_blocks.\($0).resnets.0.conv1.weight", 0, path: path)
        }
        // attn2.to_k: (C, D_text), the text width the UNet attends to.
        configuration.crossAttentionDim = try dimension(
            store, "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight", 1, path: path)
        // proj_in is a 1x1 convolution in SD 1.x, a linear layer (2 dimensions) in SD 2.x.
        configuration.useLinearProjection = store.record("down_blocks.0.attentions.0.proj_in.weight")?.shape.count == 2
        return configuration
    }

    static func inferVAE(_ store: WeightStore, path: String) throws -> VAEConfiguration {
        var configuration = VAEConfiguration.sd15
        configuration.blockOutChannels = try (0..<4).map {
            try dimension(store, "encoder.down_blocks.\($0).resnets.0.conv2.weight", 0, path: path)
        }
        // quant_conv maps 2·latent channels (mean and log-variance) to themselves.
        configuration.latentChannels = try dimension(store, "post_quant_conv.weight", 0, path: path)
        return configuration
    }

    static func inferTextEncoder(_ store: WeightStore, path: String) throws -> CLIPTextConfiguration {
        var configuration = CLIPTextConfiguration.sd15
        configuration.vocabSize = try dimension(store, "text_model.embeddings.token_embedding.weight", 0, path: path)
        configuration.hiddenSize = try dimension(store, "text_model.embeddings.token_embedding.weight", 1, path: path)
        configuration.maxPositionEmbeddings = try dimension(store, "text_model.embeddings.position_embedding.weight", 0, path: path)
        configuration.intermediateSize = try dimension(store, "text_model.encoder.layers.0.mlp.fc1.weight", 0, path: path)
        configuration.numHiddenLayers = Set(store.keys.compactMap { key -> Int? in
            guard key.hasPrefix("text_model.encoder.layers.") else { return nil }
            return Int(key.dropFirst("text_model.encoder.layers.".count).prefix { $0 != "." })
        }).count
        // CLIP's heads are 64 wide (ViT-L/14's text tower: 768 = 12 × 64).
        configuration.numAttentionHeads = max(1, configuration.hiddenSize / 64)
        return configuration
    }
}
