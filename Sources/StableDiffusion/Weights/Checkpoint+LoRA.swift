import Foundation
import TensorCore

/// One LoRA layer's change of one weight: `delta = scale · up · down`, with
/// `scale = strength · α / r` (see `LoRA`).
public struct LowRankUpdate: Sendable {
    /// (out, r) or (out, r, 1, 1).
    public let up: TensorRecord
    /// (r, in) or (r, in, kh, kw).
    public let down: TensorRecord
    public let scale: Float

    /// The change, (out, in·kh·kw), in Float32: `scale · (up · down)`, the product first as
    /// PEFT computes it.
    public func delta() -> Tensor {
        let rank = down.shape[0]
        let up = self.up.tensor(shape: [self.up.shape[0], rank])
        let down = self.down.tensor(shape: [rank, self.down.elementCount / rank])
        return up.matmul(down) * scale
    }
}

/// Where a LoRA's layers land in a checkpoint.
public struct LoRATargets: Sendable {
    /// Each used layer of the LoRA, with the network and weight key it changes.
    public var matched: [(layer: LoRA.Layer, component: Component, key: String)] = []
    /// Layers whose name matches no weight of the checkpoint (or whose shape does not fit it), with the reason.
    public var unmatched: [(name: String, reason: String)] = []
}

extension Checkpoint {
    /// Finds the weight each layer of `lora` changes.
    ///
    /// kohya names are the module path with `.` written as `_`
    /// (`lora_unet_down_blocks_0_attentions_0_proj_in` is `down_blocks.0.attentions.0.proj_in`),
    /// which cannot be undone by rule (`transformer_blocks` has an underscore of its own), so they are
    /// looked up in a table made from the checkpoint's own weight names: in diffusers' spelling,
    /// and for the UNet also in the original code's (`input_blocks_1_1_proj_in`), which LoRAs
    /// trained on that code use.
    public func targets(of lora: LoRA) -> LoRATargets {
        var tables: [Component: [String: String]] = [:]
        func kohyaTable(_ component: Component) -> [String: String] {
            if let table = tables[component] { return table }
            var table: [String: String] = [:]
            for key in store(component).keys {
                guard let module = key.strippingSuffix(".weight") else { continue }
                table[module.replacingOccurrences(of: ".", with: "_")] = key
                if component == .unet, let original = KeyMapping.originalName(key, component: .unet),
                   let module = original.strippingSuffix(".weight") {
                    table[String(module.dropFirst("model.diffusion_model.".count)).replacingOccurrences(of: ".", with: "_")] = key
                }
            }
            tables[component] = table
            return table
        }
        var result = LoRATargets()
        for layer in lora.layers {
            guard let component = layer.component else {
                result.unmatched.append((layer.name, "no lora_unet_ / lora_te_ prefix says which network it changes")); continue
            }
            let key: String?
            switch lora.format {
            case .kohya:
                key = kohyaTable(component)[layer.module]
            case .peft, .diffusersLegacy:
                key = KeyMapping.diffusersName(layer.module + ".weight", component: component)
            }
            guard let key, let record = store(component).record(key) else {
                result.unmatched.append((layer.name, "no weight \(component.rawValue)/\(key ?? layer.module) in the checkpoint")); continue
            }
            // The product up · down must have as many numbers as the weight, with its output size.
            let (up, down) = (layer.up.shape, layer.down.shape)
            let product = up[0].multipliedReportingOverflow(by: layer.down.elementCount / layer.rank)
            guard up[0] == record.shape.first, !product.overflow, product.partialValue == record.elementCount,
                  down.count == 2 || down.count == record.shape.count else {
                result.unmatched.append((layer.name, "factors \(down) and \(up) do not fit \(key) \(record.shape)")); continue
            }
            result.matched.append((layer, component, key))
        }
        return result
    }

    /// This checkpoint with LoRAs merged into its weights: each changed weight becomes
    /// `W + strength · α / r · up · down` when it is read, in the precision the file stores `W` in.
    /// Every layer of every LoRA must find its weight; otherwise the error lists those that do not.
    public func applying(_ loras: [(lora: LoRA, strength: Double)]) throws -> Checkpoint {
        var updates: [Component: [String: [LowRankUpdate]]] = [:]
        for (lora, strength) in loras {
            let targets = targets(of: lora)
            guard targets.unmatched.isEmpty else {
                let shown = targets.unmatched.prefix(4).map { "\($0.name) (\($0.reason))" }.joined(separator: "; ")
                throw CheckpointError.badLoRA(lora.path, "\(targets.unmatched.count) of its \(lora.layers.count) LoRA layers match nothing in '\(path)': \(shown)\(targets.unmatched.count > 4 ? "; ..." : "")")
            }
            for (layer, component, key) in targets.matched {
                // α / r in Double, as diffusers computes it in Python, then one rounding to Float.
                let alpha = Double(layer.alpha ?? Float(layer.rank))
                let scale = Float(alpha / Double(layer.rank) * strength)
                updates[component, default: [:]][key, default: []].append(LowRankUpdate(up: layer.up, down: layer.down, scale: scale))
            }
        }
        var copy = self
        for (component, changes) in updates { copy.stores[component] = store(component).merging(changes) }
        return copy
    }
}
