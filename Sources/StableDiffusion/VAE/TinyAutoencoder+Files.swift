import Foundation
import TensorCore

extension TinyAutoencoder {
    /// Loads TAESD from
    /// - the authors' `taesd_decoder.safetensors` or `taesd_encoder.safetensors` (one half; a
    ///   decoder file is enough to draw pictures), told apart by their first layer,
    /// - a folder holding either or both of those files, or
    /// - a diffusers `AutoencoderTiny` folder (`config.json` + `diffusion_pytorch_model.safetensors`).
    ///
    /// Every tensor is checked and none may be left over, as for the big networks.
    public static func load(_ path: String) throws -> TinyAutoencoder {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw CheckpointError.missing(path) }
        guard isDirectory.boolValue else { return try loadFile(path) }
        let folder = URL(fileURLWithPath: path)
        let config = folder.appendingPathComponent("config.json")
        for name in ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"] {
            let file = folder.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: file.path) else { continue }
            var configuration = TinyAutoencoderConfiguration.sd
            if let data = try? Data(contentsOf: config) {
                do { configuration = try JSONDecoder().decode(TinyAutoencoderConfiguration.self, from: data) } catch {
                    throw CheckpointError.corrupt(config.path, "cannot be read as an AutoencoderTiny config: \(error)")
                }
            }
            return try build(WeightStore(SafeTensors.read(path: file.path)), configuration: configuration, path: path)
        }
        let halves = ["taesd_decoder.safetensors", "taesd_encoder.safetensors"].map { folder.appendingPathComponent($0).path }
            .filter { FileManager.default.fileExists(atPath: $0) }
        guard !halves.isEmpty else {
            throw CheckpointError.corrupt(path, "no TAESD here: expected taesd_decoder.safetensors (and taesd_encoder.safetensors), or an AutoencoderTiny folder with diffusion_pytorch_model.safetensors")
        }
        let parts = try halves.map(loadFile)
        return TinyAutoencoder(decoder: parts.compactMap(\.decoder).first, encoder: parts.compactMap(\.encoder).first, path: path)
    }

    /// One `.safetensors` file: an authors' half, or diffusers' keys in a single file.
    static func loadFile(_ path: String) throws -> TinyAutoencoder {
        let records = try SafeTensors.read(path: path)
        if records.keys.contains(where: { $0.hasPrefix("decoder.layers.") || $0.hasPrefix("encoder.layers.") }) {
            return try build(WeightStore(records), configuration: inferred(records, prefix: { $0 }), path: path)
        }
        // The authors' encoder starts with a convolution from RGB (`0.weight`, (C, 3, 3, 3)); their
        // decoder with the weightless clamp, then a convolution from the latents (`1.weight`).
        let isDecoder = records["0.weight"] == nil && records["1.weight"] != nil
        guard isDecoder || records["0.weight"]?.shape.dropFirst().first == 3 else {
            throw CheckpointError.corrupt(path, "not a TAESD file: expected the layer-index keys of taesd_decoder.safetensors (1.weight, 3.conv.0.weight, ...) or taesd_encoder.safetensors (0.weight, 1.conv.0.weight, ...)")
        }
        var renamed: [String: TensorRecord] = [:]
        for (key, record) in records {
            guard let name = KeyMapping.tinyAutoencoderName(key, decoderFile: isDecoder) else {
                throw CheckpointError.corrupt(path, "tensor '\(key)' has no place in a TAESD \(isDecoder ? "decoder" : "encoder")")
            }
            renamed[name] = record
        }
        return try build(WeightStore(renamed), configuration: inferred(renamed, prefix: { $0 }), path: path)
    }

    /// SD's TAESD layout with the widths read off the first convolution of each half.
    static func inferred(_ records: [String: TensorRecord], prefix: (String) -> String) -> TinyAutoencoderConfiguration {
        var configuration = TinyAutoencoderConfiguration.sd
        if let first = records["decoder.layers.0.weight"], first.shape.count == 4 {
            configuration.decoderBlockOutChannels = Array(repeating: first.shape[0], count: 4)
            configuration.latentChannels = first.shape[1]
        }
        if let first = records["encoder.layers.0.weight"], first.shape.count == 4 {
            configuration.encoderBlockOutChannels = Array(repeating: first.shape[0], count: 4)
        }
        if let last = records["encoder.layers.14.weight"], last.shape.count == 4 { configuration.latentChannels = last.shape[0] }
        return configuration
    }

    /// Builds the halves the store has tensors for; every tensor must be used.
    static func build(_ store: WeightStore, configuration: TinyAutoencoderConfiguration, path: String) throws -> TinyAutoencoder {
        try configuration.check(path: path)
        let weights = Weights(store)
        let hasDecoder = store.keys.contains { $0.hasPrefix("decoder.") }
        let hasEncoder = store.keys.contains { $0.hasPrefix("encoder.") }
        do {
            let decoder = hasDecoder ? try TinyDecoder(weights["decoder"]["layers"], configuration: configuration) : nil
            let encoder = hasEncoder ? try TinyEncoder(weights["encoder"]["layers"], configuration: configuration) : nil
            try store.checkAllUsed()
            return TinyAutoencoder(decoder: decoder, encoder: encoder, path: path)
        } catch let error as CheckpointError {
            throw CheckpointError.corrupt(path, "not a TAESD of SD 1.x's layout: \(error)")
        }
    }
}
