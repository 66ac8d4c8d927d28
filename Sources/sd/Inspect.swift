import ArgumentParser
import Foundation
import StableDiffusion

/// `sd inspect`: what is inside a checkpoint, without running it.
///
/// ```
/// $ sd inspect --checkpoint v1-5-pruned-emaonly.safetensors
/// layout         single file (original key names)
/// tensors        1131 (F16 1131)
/// text_encoder   123.06 M parameters in 196 tensors
/// unet           859.52 M parameters in 686 tensors
/// vae             83.65 M parameters in 248 tensors
/// ```
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a checkpoint's layout, tensor types and parameters per network.")

    @OptionGroup var checkpointOption: CheckpointOption

    @Flag(help: "List every tensor with its type and shape.")
    var tensors = false

    @Flag(name: .customLong("use-ema"), help: "Count the UNet's EMA weights (model_ema.*) instead of its raw ones.")
    var useEMA = false

    @Option(help: ArgumentHelp("A standalone VAE that replaces the checkpoint's (as sd generate --vae).", valueName: "path"))
    var vae: String?

    @Option(name: .customLong("lora"), help: ArgumentHelp("Also show which weights of the checkpoint a LoRA file changes. Repeatable.", valueName: "file"))
    var loras: [String] = []

    func run() throws {
        let path = try checkpointOption.resolved()
        var checkpoint = try Checkpoint.open(path, useEMA: useEMA)
        if let vae { checkpoint = try checkpoint.replacingVAE(with: vae) }
        let types = checkpoint.typeCounts.sorted { $0.key.rawValue < $1.key.rawValue }
            .map { "\($0.key.rawValue) \($0.value)" }.joined(separator: ", ")
        let total = checkpoint.stores.values.reduce(0) { $0 + $1.keys.count }
        print(row("checkpoint", path))
        print(row("layout", checkpoint.layout.rawValue))
        if useEMA {
            print(row("unet weights", checkpoint.usesEMA ? "EMA copies (model_ema.*)" : "raw (the file has no EMA copies)"))
        }
        print(row("tensors", "\(total) (\(types))"))
        for component in Component.allCases {
            if checkpoint.missingComponents.contains(component) {
                let hint = component == .vae ? " (sd generate needs --vae FILE)" : ""
                print(row(component.rawValue, "missing: the checkpoint holds none of its tensors" + hint))
                continue
            }
            let count = checkpoint.parameterCount(component)
            let store = checkpoint.store(component)
            let source = component == .vae ? checkpoint.vaeFile.map { " from \($0)" } ?? "" : ""
            print(row(component.rawValue, String(format: "%7.2f M parameters in %d tensors", Double(count) / 1e6, store.keys.count) + source))
        }
        if !checkpoint.ignoredKeys.isEmpty {
            print(row("ignored", "\(checkpoint.ignoredKeys.count) tensors the networks do not use (schedule buffers, position ids, EMA copies)"))
        }
        if checkpoint.unrecognisedKeys.isEmpty {
            print(row("unmatched", "none: every tensor has a place in text_encoder, unet or vae"))
        } else {
            print(row("unmatched", "\(checkpoint.unrecognisedKeys.count) tensors match no rename rule:"))
            for key in checkpoint.unrecognisedKeys.prefix(20) { print("               \(key)") }
        }
        for path in loras { try describe(LoRA.read(path: path), in: checkpoint) }
        if tensors {
            for component in Component.allCases {
                let store = checkpoint.store(component)
                for key in store.keys {
                    let record = store.record(key)!
                    print("\(component.rawValue)/\(key)  \(record.type.rawValue) \(record.shape)")
                }
            }
        }
    }

    /// What a LoRA changes: its format and ranks, then per network how many weights of each kind.
    private func describe(_ lora: LoRA, in checkpoint: Checkpoint) {
        let ranks = Set(lora.layers.map(\.rank)).sorted().map(String.init).joined(separator: ", ")
        let alphas = Set(lora.layers.map { $0.alpha.map { String(format: "%g", $0) } ?? "= rank" }).sorted().joined(separator: ", ")
        print(row("lora", lora.path))
        print(row("  format", lora.format.rawValue))
        print(row("  layers", "\(lora.layers.count), rank \(ranks), alpha \(alphas)"))
        let targets = checkpoint.targets(of: lora)
        for component in Component.allCases {
            let keys = targets.matched.filter { $0.component == component }.map(\.key)
            guard !keys.isEmpty else { continue }
            // Group by what the layer is: attn1.to_q (self-attention), attn2.to_k (cross-attention),
            // ff.net.2, conv1, proj_in, self_attn.q_proj, mlp.fc1, ...
            var kinds: [String: Int] = [:]
            let containers: Set<Substring> = ["attn1", "attn2", "ff", "downsamplers", "upsamplers", "self_attn", "mlp", "time_embedding"]
            for key in keys {
                let parts = key.split(separator: ".").dropLast()
                let start = parts.lastIndex(where: containers.contains) ?? parts.index(before: parts.endIndex)
                kinds[parts[start...].joined(separator: "."), default: 0] += 1
            }
            let list = kinds.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
                .map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            print(row("  " + component.rawValue, "\(keys.count) weights: \(list)"))
        }
        if targets.unmatched.isEmpty {
            print(row("  unmatched", "none: every layer finds its weight"))
        } else {
            print(row("  unmatched", "\(targets.unmatched.count) layers find no weight (sd generate refuses this LoRA):"))
            for (name, reason) in targets.unmatched.prefix(20) { print("                 \(name): \(reason)") }
        }
    }

    private func row(_ label: String, _ value: String) -> String {
        label.padding(toLength: 15, withPad: " ", startingAt: 0) + value
    }
}
