import Foundation

/// A Stable Diffusion checkpoint on disk, opened (memory-mapped) and sorted into its three networks.
///
/// Two layouts are understood:
/// - the single file people download, `.safetensors` or the older `.ckpt` (original CompVis key
///   names, renamed here with `KeyMapping`; a `.ckpt` is read by `TorchCheckpoint`, which never
///   runs code from the file), and
/// - the diffusers folder (`model_index.json`, `unet/`, `vae/`, `text_encoder/`, `tokenizer/`,
///   `scheduler/`), whose key names the Swift modules use directly.
///
/// Opening reads only the headers; tensor bytes are paged in when a network is built.
///
/// ```swift
/// let checkpoint = try Checkpoint.open("v1-5-pruned-emaonly.safetensors")
/// print(checkpoint.layout, checkpoint.parameterCount(.unet))   // single file, 859520964
/// let training = try Checkpoint.open("v1-5-pruned.ckpt", useEMA: true)   // UNet from model_ema.*
/// ```
public struct Checkpoint: Sendable {
    public enum Layout: String, Sendable {
        case singleFile = "single file (original key names)"
        case diffusers = "diffusers folder"
    }

    public let path: String
    public let layout: Layout
    /// The tensors of each network, under diffusers names.
    public internal(set) var stores: [Component: WeightStore]
    /// Keys in the file that no rename rule knows (reported by `sd inspect`, rejected on load).
    public let unrecognisedKeys: [String]
    /// Keys deliberately skipped: schedule buffers, `position_ids`, EMA copies.
    public let ignoredKeys: [String]
    /// For a diffusers folder: the folder's files (`unet/config.json`, `tokenizer/vocab.json`, ...).
    public let folder: URL?
    /// Whether the UNet uses the file's EMA copies (`model_ema.*`) instead of its raw weights.
    public internal(set) var usesEMA = false
    /// The standalone VAE that replaced the checkpoint's own (`replacingVAE(with:)`), if any.
    public internal(set) var vaeFile: String?
    /// That VAE's `config.json`, when it came as a diffusers folder.
    var vaeConfigFile: URL?

    /// Opens a checkpoint, telling the layout apart by what is on disk.
    ///
    /// `useEMA`: original training checkpoints (`v1-5-pruned.ckpt`, `sd-v1-4-full-ema.ckpt`) hold
    /// two sets of UNet weights, the raw ones and an exponential moving average of them over training
    /// (`model_ema.*`), which usually draws cleaner pictures. With `useEMA` the UNet takes the EMA
    /// copies when the file has them; files without them (`-emaonly`, diffusers folders) are
    /// unaffected.
    public static func open(_ path: String, useEMA: Bool = false) throws -> Checkpoint {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CheckpointError.missing(path)
        }
        if isDirectory.boolValue {
            let folder = URL(fileURLWithPath: path)
            guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("model_index.json").path) else {
                throw CheckpointError.notAFile(path)
            }
            return try openDiffusers(folder)
        }
        return try openSingleFile(path, useEMA: useEMA)
    }

    /// Whether `path` names a PyTorch checkpoint rather than a safetensors file.
    public static func isPyTorchFile(_ path: String) -> Bool {
        [".ckpt", ".pt", ".pth", ".bin"].contains { path.lowercased().hasSuffix($0) }
    }

    /// The tensors of a single file under their original names, with the UNet's EMA copies put in
    /// place of its raw weights when `useEMA` is set and the file has them.
    public static func originalTensors(_ path: String, useEMA: Bool) throws -> (tensors: [String: TensorRecord], usedEMA: Bool) {
        var records = isPyTorchFile(path) ? try TorchCheckpoint.read(path: path).tensors : try SafeTensors.read(path: path)
        var usedEMA = false
        if useEMA {
            for key in records.keys where key.hasPrefix("model.diffusion_model.") {
                guard let copy = records[emaKey(key)] else { continue }
                guard copy.shape == records[key]!.shape else {
                    throw CheckpointError.wrongShape(key: emaKey(key), expected: records[key]!.shape, found: copy.shape)
                }
                records[key] = TensorRecord(name: key, type: copy.type, shape: copy.shape, byteRange: copy.byteRange, file: copy.file)
                usedEMA = true
            }
        }
        return (records, usedEMA)
    }

    /// The EMA copy of a UNet weight. LDM's `LitEma` keeps one buffer per parameter of the
    /// wrapped model, named by the parameter's path with the dots removed (buffer names may not
    /// contain dots): `model.diffusion_model.input_blocks.0.0.weight` →
    /// `model_ema.diffusion_modelinput_blocks00weight`.
    public static func emaKey(_ key: String) -> String {
        "model_ema." + key.dropFirst("model.".count).replacingOccurrences(of: ".", with: "")
    }

    static func openSingleFile(_ path: String, useEMA: Bool) throws -> Checkpoint {
        let (records, usedEMA) = try originalTensors(path, useEMA: useEMA)
        try rejectOtherModels(records, path: path)
        var sorted: [Component: [String: TensorRecord]] = [:]
        var unrecognised: [String] = [], ignored: [String] = []
        for (key, record) in records {
            if KeyMapping.isIgnored(key) { ignored.append(key); continue }
            guard let (component, name) = KeyMapping.rename(key) else { unrecognised.append(key); continue }
            sorted[component, default: [:]][name] = record
        }
        // A file may lack the VAE (some fine-tunes ship the UNet and text encoder only, to be used
        // with a separate VAE file) or the text encoder; the pipeline says so when it needs one.
        guard sorted[.unet] != nil else {
            throw CheckpointError.corrupt(path, "it holds no unet tensors (expected keys starting with \(originalPrefix(.unet)))")
        }
        return Checkpoint(path: path, layout: .singleFile,
                          stores: sorted.mapValues { WeightStore($0) },
                          unrecognisedKeys: unrecognised.sorted(), ignoredKeys: ignored.sorted(), folder: nil,
                          usesEMA: usedEMA)
    }

    static func openDiffusers(_ folder: URL) throws -> Checkpoint {
        var stores: [Component: WeightStore] = [:]
        var ignored: [String] = []
        for component in Component.allCases {
            guard let file = try diffusersWeightFile(folder, component) else { continue }
            let (store, skipped) = try diffusersStore(file, component)
            stores[component] = store
            ignored += skipped.map { component.rawValue + "/" + $0 }
        }
        guard stores[.unet] != nil else {
            throw CheckpointError.corrupt(folder.path, "missing \(diffusersStem(.unet)).safetensors")
        }
        return Checkpoint(path: folder.path, layout: .diffusers, stores: stores,
                          unrecognisedKeys: [], ignoredKeys: ignored.sorted(), folder: folder)
    }

    /// Where a diffusers folder keeps a component's weights, without the extension.
    static func diffusersStem(_ component: Component) -> String {
        switch component {
        case .unet: return "unet/diffusion_pytorch_model"
        case .vae: return "vae/diffusion_pytorch_model"
        case .textEncoder: return "text_encoder/model"
        }
    }

    /// The weight file of one component of a diffusers folder (full or fp16 variant), or nil when
    /// the folder has none.
    static func diffusersWeightFile(_ folder: URL, _ component: Component) throws -> URL? {
        let stem = diffusersStem(component)
        let candidates = [stem + ".safetensors", stem + ".fp16.safetensors"].map { folder.appendingPathComponent($0) }
        if let file = candidates.first(where: { FileManager.default.fileExists(atPath: $0.path) }) { return file }
        let pickle = folder.appendingPathComponent(stem + ".bin").path
        if FileManager.default.fileExists(atPath: pickle) {
            throw CheckpointError.unsupportedModel(pickle, "a PyTorch pickle (.bin) weight file; save the model with safetensors")
        }
        return nil
    }

    /// A component's tensors from a file in diffusers naming, with the naming variants
    /// brought to one (`KeyMapping.diffusersName`); also returns the keys skipped as unused.
    static func diffusersStore(_ file: URL, _ component: Component) throws -> (WeightStore, skipped: [String]) {
        var records: [String: TensorRecord] = [:]
        var skipped: [String] = []
        for (key, record) in try SafeTensors.read(path: file.path) {
            if KeyMapping.isIgnored(key) { skipped.append(key); continue }
            let name = KeyMapping.diffusersName(key, component: component)
            guard records[name] == nil else {
                throw CheckpointError.corrupt(file.path, "tensor '\(key)' appears twice (also under the name '\(name)')")
            }
            records[name] = record
        }
        return (WeightStore(records), skipped)
    }

    /// SD 2.x and SDXL files look similar from afar; say plainly that they are not SD 1.x.
    static func rejectOtherModels(_ records: [String: TensorRecord], path: String) throws {
        if records.keys.contains(where: { $0.hasPrefix("conditioner.embedders.") }) {
            throw CheckpointError.unsupportedModel(path, "a Stable Diffusion XL checkpoint")
        }
        if records.keys.contains(where: { $0.hasPrefix("cond_stage_model.model.") }) {
            throw CheckpointError.unsupportedModel(path, "a Stable Diffusion 2.x checkpoint (OpenCLIP text encoder)")
        }
        if let convIn = records["model.diffusion_model.input_blocks.0.0.weight"], convIn.shape.count == 4, convIn.shape[1] != 4 {
            throw CheckpointError.unsupportedModel(path, "a UNet with \(convIn.shape[1]) input channels (an inpainting or depth model)")
        }
        if let key = records["model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"],
           key.shape.count == 2, key.shape[1] != 768, key.shape[1] == 1024 {
            throw CheckpointError.unsupportedModel(path, "a Stable Diffusion 2.x checkpoint (1024-wide text context)")
        }
    }

    static func originalPrefix(_ component: Component) -> String {
        switch component {
        case .unet: return "model.diffusion_model."
        case .vae: return "first_stage_model."
        case .textEncoder: return "cond_stage_model.transformer.text_model."
        }
    }

    /// The weights of one network (empty when the checkpoint has none of it).
    public func store(_ component: Component) -> WeightStore { stores[component] ?? WeightStore([:]) }

    /// The networks this checkpoint does not hold (a UNet is always there).
    public var missingComponents: [Component] { Component.allCases.filter { stores[$0] == nil } }

    /// The weights of one network, or an error that says what is missing and what to do.
    public func requiredStore(_ component: Component) throws -> WeightStore {
        guard let store = stores[component] else { throw CheckpointError.missingComponent(path, component) }
        return store
    }

    /// Number of parameters (tensor elements) of one network.
    public func parameterCount(_ component: Component) -> Int {
        let store = store(component)
        return store.keys.reduce(0) { $0 + (store.record($1)?.elementCount ?? 0) }
    }

    /// How many tensors of each element type the checkpoint holds.
    public var typeCounts: [StorageType: Int] {
        var counts: [StorageType: Int] = [:]
        for store in stores.values {
            for key in store.keys { counts[store.record(key)!.type, default: 0] += 1 }
        }
        return counts
    }

    /// The JSON config a diffusers folder has for a component (`unet/config.json`, ...), if any.
    public func configData(_ component: Component) -> Data? {
        if component == .vae, vaeFile != nil { return vaeConfigFile.flatMap { try? Data(contentsOf: $0) } }
        guard let folder else { return nil }
        return try? Data(contentsOf: folder.appendingPathComponent(component.rawValue + "/config.json"))
    }

    /// `scheduler/scheduler_config.json` of a diffusers folder, if any.
    public var schedulerConfigData: Data? {
        guard let folder else { return nil }
        return try? Data(contentsOf: folder.appendingPathComponent("scheduler/scheduler_config.json"))
    }

    /// The tokenizer files of a diffusers folder, when both are there.
    public var tokenizerFiles: (vocabulary: URL, merges: URL)? {
        guard let folder else { return nil }
        let vocabulary = folder.appendingPathComponent("tokenizer/vocab.json")
        let merges = folder.appendingPathComponent("tokenizer/merges.txt")
        let manager = FileManager.default
        return manager.fileExists(atPath: vocabulary.path) && manager.fileExists(atPath: merges.path)
            ? (vocabulary, merges) : nil
    }
}
