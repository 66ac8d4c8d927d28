import Foundation

/// `--vae`: a checkpoint's VAE replaced by a standalone one.
///
/// People swap the VAE because a fine-tuned one decodes faces and small text better (the
/// `vae-ft-mse-840000-ema-pruned` files), or because a checkpoint ships without one. A standalone
/// VAE comes as
/// - a single `.safetensors` or `.ckpt` in the original naming (`encoder.down.0.block.0...`,
///   `quant_conv.*`; sometimes still under `first_stage_model.`; training files also carry the
///   loss network's `loss.*` tensors and EMA copies, which are skipped),
/// - a single file in diffusers naming (`encoder.down_blocks.0.resnets.0...`), or
/// - a diffusers `vae/` folder (`config.json` + `diffusion_pytorch_model.safetensors`), or a whole
///   diffusers model folder, whose `vae/` is taken.
///
/// ```swift
/// let checkpoint = try Checkpoint.open("dreamshaper.safetensors").replacingVAE(with: "vae-ft-mse.safetensors")
/// ```
extension Checkpoint {
    /// This checkpoint with its VAE (if any) replaced by the one at `path`.
    public func replacingVAE(with path: String) throws -> Checkpoint {
        let vae = try Self.openVAE(path)
        var copy = self
        copy.stores[.vae] = vae.store
        copy.vaeFile = path
        copy.vaeConfigFile = vae.config
        return copy
    }

    /// The VAE tensors (diffusers names) of a standalone VAE, and its config file if it has one.
    static func openVAE(_ path: String) throws -> (store: WeightStore, config: URL?) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CheckpointError.missing(path)
        }
        if isDirectory.boolValue {
            // A `vae/` folder itself, or a model folder that contains one.
            var folder = URL(fileURLWithPath: path)
            if FileManager.default.fileExists(atPath: folder.appendingPathComponent("model_index.json").path) {
                folder.appendPathComponent("vae")
            }
            let candidates = ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"]
            guard let file = candidates.map({ folder.appendingPathComponent($0) })
                    .first(where: { FileManager.default.fileExists(atPath: $0.path) }) else {
                throw CheckpointError.corrupt(path, "a VAE folder needs diffusion_pytorch_model.safetensors (and config.json)")
            }
            let config = folder.appendingPathComponent("config.json")
            let store = try diffusersStore(file, .vae).0
            return (store, FileManager.default.fileExists(atPath: config.path) ? config : nil)
        }
        let records = isPyTorchFile(path) ? try TorchCheckpoint.read(path: path).tensors : try SafeTensors.read(path: path)
        let keys = records.keys.filter { !isSkippedInStandaloneVAE($0) }
        guard !keys.isEmpty else { throw CheckpointError.corrupt(path, "it holds no tensors") }
        let diffusersNaming = keys.contains { $0.contains("down_blocks.") || $0.contains("mid_block.") }
        var renamed: [String: TensorRecord] = [:]
        var foreign: [String] = []
        for key in keys {
            let name: String?
            if diffusersNaming {
                name = KeyMapping.diffusersName(key, component: .vae)
            } else {
                let original = key.hasPrefix("first_stage_model.") ? key : "first_stage_model." + key
                name = KeyMapping.rename(original).flatMap { $0.0 == .vae ? $0.1 : nil }
            }
            guard let name, ["encoder.", "decoder.", "quant_conv.", "post_quant_conv."].contains(where: name.hasPrefix) else {
                foreign.append(key); continue
            }
            renamed[name] = records[key]!
        }
        guard foreign.isEmpty else {
            let shown = foreign.sorted().prefix(4).joined(separator: ", ")
            throw CheckpointError.corrupt(path, "not a standalone VAE: \(foreign.count) tensor(s) belong to no VAE (\(shown)\(foreign.count > 4 ? ", ..." : "")); a VAE file holds encoder.*, decoder.*, quant_conv.* and post_quant_conv.*")
        }
        return (WeightStore(renamed), nil)
    }

    /// Tensors of a VAE training file that no VAE uses: the loss network and EMA copies.
    static func isSkippedInStandaloneVAE(_ key: String) -> Bool {
        key.hasPrefix("loss.") || key.hasPrefix("model_ema.") || KeyMapping.isIgnored(key)
    }
}
