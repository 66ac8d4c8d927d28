import Foundation
import TensorCore

/// A LoRA file: low-rank changes to some of a checkpoint's weights.
///
/// LoRA (Hu et al. 2021, "Low-Rank Adaptation of Large Language Models") fine-tunes a network
/// without touching its weights: each adapted layer learns two thin matrices, `down` (r × in)
/// and `up` (out × r), with a rank r of 4 to 128 instead of a full (out × in) change. The adapted
/// layer computes `W x + (α / r) · up · down · x`; merged once at load time that is one weight,
///
///     W' = W + scale · (α / r) · up · down
///
/// so a step costs what it cost before. `scale` is the user's strength (`--lora FILE:0.7`); α is
/// stored with the LoRA (kohya's `.alpha`, PEFT's `lora_alpha`), and without it α = r. For a
/// convolution, `down` is a convolution (r, in, kh, kw) and `up` a 1x1 one (out, r, 1, 1): their
/// product, reshaped, is a change of the (out, in, kh, kw) kernel.
///
/// Three namings are read:
/// - kohya (sd-scripts, most downloaded files, the LCM-LoRA): `lora_unet_<module>` and
///   `lora_te_<module>`, the diffusers module path with every `.` written as `_`, then
///   `.lora_down.weight`, `.lora_up.weight` and `.alpha`;
/// - diffusers / PEFT (`save_lora_weights` today): `unet.<module>.lora_A.weight` (down) and
///   `.lora_B.weight` (up), `text_encoder.<module>...`; α lives in the header's metadata;
/// - diffusers before PEFT: `unet.<module>.lora.down.weight` / `.lora.up.weight`,
///   `text_encoder.<module>.lora_linear_layer.down.weight`, and the attention processors'
///   `<attention>.processor.to_q_lora.down.weight`; no α (α = r).
///
/// ```swift
/// let lora = try LoRA.read(path: "lcm-lora-sdv1-5.safetensors")
/// let checkpoint = try Checkpoint.open("v1-5-pruned-emaonly.safetensors").applying([(lora, 1.0)])
/// ```
public struct LoRA: Sendable {
    public enum Format: String, Sendable {
        case kohya = "kohya (lora_unet_… / lora_te_…, lora_down / lora_up / alpha)"
        case peft = "diffusers / PEFT (unet.… / text_encoder.…, lora_A / lora_B)"
        case diffusersLegacy = "diffusers before PEFT (lora.down / lora.up)"
    }

    /// One adapted layer: the two factors, as the file names the layer.
    public struct Layer: Sendable {
        /// The layer as the file names it (`lora_unet_down_blocks_0_…` or `unet.down_blocks.0.…`).
        public let name: String
        /// The network, when the name says it (nil: no known prefix).
        public let component: Component?
        /// The module path in the file's own spelling, after the network's prefix.
        public let module: String
        public let down: TensorRecord
        public let up: TensorRecord
        public let alpha: Float?
        public var rank: Int { down.shape.first ?? 0 }
    }

    public let path: String
    public let format: Format
    public let layers: [Layer]

    /// Reads a LoRA file (`.safetensors`, or a `.ckpt`/`.pt` through the restricted reader).
    public static func read(path: String) throws -> LoRA {
        let (records, metadata) = Checkpoint.isPyTorchFile(path)
            ? (try TorchCheckpoint.read(path: path).tensors, [:]) : try SafeTensors.readWithMetadata(path: path)
        guard !records.isEmpty else { throw CheckpointError.badLoRA(path, "the LoRA file holds no tensors") }
        try rejectOtherKinds(records.keys, path: path)
        if records.keys.contains(where: { $0.hasPrefix("lora_unet_") || $0.hasPrefix("lora_te_") }) {
            return try readKohya(records, path: path)
        }
        return try readDiffusers(records, metadata: metadata, path: path)
    }

    /// LyCORIS variants and LoRAs for other models are named, not half-applied.
    static func rejectOtherKinds(_ keys: Dictionary<String, TensorRecord>.Keys, path: String) throws {
        let kinds: [(String, String)] = [
            ("hada_w1_a", "a LoHa (LyCORIS) file"), ("lokr_w1", "a LoKr (LyCORIS) file"),
            ("lora_mid.weight", "a LoCon file with Tucker-decomposed convolutions (lora_mid)"),
            ("dora_scale", "a DoRA file (dora_scale)"), ("lora_magnitude_vector", "a DoRA file (lora_magnitude_vector)"),
            ("lora_te1_", "a LoRA for Stable Diffusion XL (two text encoders)"), ("lora_te2_", "a LoRA for Stable Diffusion XL (two text encoders)"),
        ]
        for (marker, what) in kinds where keys.contains(where: { $0.contains(marker) }) {
            throw CheckpointError.badLoRA(path, "it is " + what + ", which is not supported; LoRA files with lora_down/lora_up or lora_A/lora_B pairs are supported")
        }
    }

    static func readKohya(_ records: [String: TensorRecord], path: String) throws -> LoRA {
        var down: [String: TensorRecord] = [:], up: [String: TensorRecord] = [:], alpha: [String: Float] = [:]
        var stray: [String] = []
        for (key, record) in records {
            if let name = key.strippingSuffix(".lora_down.weight") { down[name] = record }
            else if let name = key.strippingSuffix(".lora_up.weight") { up[name] = record }
            else if let name = key.strippingSuffix(".alpha") {
                guard record.elementCount == 1, let value = record.floats().first, value.isFinite else {
                    throw CheckpointError.badLoRA(path, "'\(key)' should hold one finite number, it has shape \(record.shape)\(record.elementCount == 1 ? " and value \(record.floats()[0])" : "")")
                }
                alpha[name] = value
            } else { stray.append(key) }
        }
        let layers = try pairUp(down: down, up: up, path: path, stray: stray) { name in
            for (prefix, component) in [("lora_unet_", Component.unet), ("lora_te_", .textEncoder)] where name.hasPrefix(prefix) {
                return (component, String(name.dropFirst(prefix.count)), alpha[name])
            }
            return (nil, name, alpha[name])
        }
        return LoRA(path: path, format: .kohya, layers: layers)
    }

    static func readDiffusers(_ records: [String: TensorRecord], metadata: [String: String], path: String) throws -> LoRA {
        var down: [String: TensorRecord] = [:], up: [String: TensorRecord] = [:]
        var stray: [String] = []
        var format = Format.peft
        for (key, record) in records {
            if let name = key.strippingSuffix(".lora_A.weight") { down[name] = record }
            else if let name = key.strippingSuffix(".lora_B.weight") { up[name] = record }
            else if let name = legacyName(key, "down") { down[name] = record; format = .diffusersLegacy }
            else if let name = legacyName(key, "up") { up[name] = record; format = .diffusersLegacy }
            else { stray.append(key) }
        }
        guard !down.isEmpty || !up.isEmpty else {
            let shown = records.keys.sorted().prefix(3).joined(separator: ", ")
            throw CheckpointError.badLoRA(path, "it has no lora_down/lora_up, lora_A/lora_B or lora.down/lora.up tensors (found \(shown), ...)")
        }
        let alphas = try PEFTAlphas(metadata: metadata, path: path)
        let layers = try pairUp(down: down, up: up, path: path, stray: stray) { name in
            for (prefix, component) in [("unet.", Component.unet), ("text_encoder.", .textEncoder)] where name.hasPrefix(prefix) {
                let module = String(name.dropFirst(prefix.count))
                return (component, module, alphas.alpha(component: component, module: module))
            }
            // Files from the first diffusers LoRA scripts hold the UNet only, without a prefix.
            return (.unet, name, alphas.alpha(component: .unet, module: name))
        }
        return LoRA(path: path, format: format, layers: layers)
    }

    /// The layer of a pre-PEFT diffusers key for factor `side` ("down" or "up"):
    /// `<layer>.lora.down.weight` (UNet), `<layer>.lora_linear_layer.down.weight` (text encoder),
    /// `<attention>.processor.to_q_lora.down.weight` → `<attention>.to_q` (`to_out_lora` → `to_out.0`).
    static func legacyName(_ key: String, _ side: String) -> String? {
        if let name = key.strippingSuffix(".lora.\(side).weight") ?? key.strippingSuffix(".lora_linear_layer.\(side).weight") {
            return name
        }
        guard let stem = key.strippingSuffix(".\(side).weight"), let range = stem.range(of: ".processor.") else { return nil }
        let projection = stem[range.upperBound...]
        guard let base = projection.strippingSuffix("_lora") else { return nil }
        return stem[..<range.lowerBound] + "." + (base == "to_out" ? "to_out.0" : base)
    }

    /// Matches every down factor with its up factor; anything left over is an error naming the keys.
    static func pairUp(down: [String: TensorRecord], up: [String: TensorRecord], path: String, stray: [String],
                       describe: (String) -> (Component?, String, Float?)) throws -> [Layer] {
        let unpaired = Set(down.keys).symmetricDifference(up.keys).sorted()
        guard unpaired.isEmpty, stray.isEmpty else {
            let names = (unpaired.map { $0 + " (only one of its two factors)" } + stray.sorted())
            throw CheckpointError.badLoRA(path, "\(names.count) LoRA key(s) cannot be used: \(names.prefix(4).joined(separator: ", "))\(names.count > 4 ? ", ..." : "")")
        }
        return try down.keys.sorted().map { name in
            let (component, module, alpha) = describe(name)
            let d = down[name]!, u = up[name]!
            // down: (r, in[, kh, kw]); up: (out, r[, 1, 1]).
            guard d.shape.count >= 2, u.shape.count >= 2, d.shape[0] == u.shape[1], d.shape[0] > 0,
                  u.shape.dropFirst(2).allSatisfy({ $0 == 1 }), d.shape.count == u.shape.count else {
                throw CheckpointError.badLoRA(path, "'\(name)': factors of shapes \(d.shape) (down) and \(u.shape) (up) do not multiply")
            }
            return Layer(name: name, component: component, module: module, down: d, up: u, alpha: alpha)
        }
    }
}

/// PEFT keeps α out of the tensors: diffusers writes the adapter's configuration into the
/// safetensors header (`lora_adapter_metadata`: `r`, `lora_alpha`, and per-module exceptions in
/// `alpha_pattern`), one per network (`unet.`, `text_encoder.` prefixed keys). Without it α = r.
struct PEFTAlphas {
    var defaults: [Component: Float] = [:]
    var patterns: [Component: [String: Float]] = [:]

    init(metadata: [String: String], path: String) throws {
        guard let text = metadata["lora_adapter_metadata"] else { return }
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw CheckpointError.badLoRA(path, "the header's lora_adapter_metadata is not JSON")
        }
        for (prefix, component) in [("unet.", Component.unet), ("text_encoder.", .textEncoder)] {
            // Either {"unet.lora_alpha": 8, ...} or {"unet": {"lora_alpha": 8, ...}}.
            var config = (object[String(prefix.dropLast())] as? [String: Any]) ?? [:]
            for (key, value) in object where key.hasPrefix(prefix) { config[String(key.dropFirst(prefix.count))] = value }
            if let alpha = (config["lora_alpha"] as? NSNumber)?.floatValue, alpha.isFinite { defaults[component] = alpha }
            if let pattern = config["alpha_pattern"] as? [String: Any] {
                patterns[component] = pattern.compactMapValues { ($0 as? NSNumber)?.floatValue }.filter { $0.value.isFinite }
            }
        }
    }

    /// α of one module: its pattern entry (a module-path suffix), else the network's `lora_alpha`.
    func alpha(component: Component, module: String) -> Float? {
        if let pattern = patterns[component]?.first(where: { module == $0.key || module.hasSuffix("." + $0.key) }) {
            return pattern.value
        }
        return defaults[component]
    }
}

extension StringProtocol {
    /// The string without `suffix`, or nil if it does not end with it.
    func strippingSuffix(_ suffix: String) -> String? {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : nil
    }
}
