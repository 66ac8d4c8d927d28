import ArgumentParser
import Foundation
import StableDiffusion

/// `sd convert`: turn an original `.ckpt` into a `.safetensors` file of the same weights.
///
/// ```
/// $ sd convert --checkpoint sd15.ckpt --output sd15.safetensors      # an SD 1.5 file in float32
/// read      sd15.ckpt: 1143 tensors
/// skipped   0 EMA copies, 12 schedule buffers and other tensors no network uses
/// wrote     sd15.safetensors: 1131 tensors, 4264.9 MB
/// ```
///
/// The output keeps the original key names and every tensor the three networks use, plus CLIP's
/// `position_ids`; values are copied byte for byte, never rounded. The file appears only when it
/// is complete.
struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a .ckpt checkpoint to .safetensors (same weights, original key names).")

    @Option(help: ArgumentHelp("The .ckpt (or .safetensors) file to convert.", valueName: "path"))
    var checkpoint: String

    @Option(help: ArgumentHelp("The .safetensors file to write.", valueName: "path"))
    var output: String

    @Flag(name: .customLong("use-ema"), help: "Write the UNet's EMA weights (model_ema.*) in place of its raw ones.")
    var useEMA = false

    func validate() throws {
        guard output.lowercased().hasSuffix(".safetensors") else {
            throw ValidationError("--output must end in .safetensors")
        }
        guard URL(fileURLWithPath: output).standardized.path != URL(fileURLWithPath: checkpoint).standardized.path else {
            throw ValidationError("--output must differ from --checkpoint")
        }
    }

    func run() throws {
        // Opening as a model checks that this is an SD 1.x checkpoint before anything is written.
        _ = try Checkpoint.open(checkpoint, useEMA: useEMA)
        let (tensors, usedEMA) = try Checkpoint.originalTensors(checkpoint, useEMA: useEMA)
        var kept: [String: TensorRecord] = [:]
        var emaCopies = 0, other = 0
        for (key, record) in tensors {
            if key.hasPrefix("model_ema.") { emaCopies += 1; continue }
            if key.hasSuffix("embeddings.position_ids") || (!KeyMapping.isIgnored(key) && KeyMapping.rename(key) != nil) {
                kept[key] = record
            } else {
                other += 1
            }
        }
        print(row("read", "\(checkpoint): \(tensors.count) tensors" + (usedEMA ? " (EMA copies used for the UNet)" : "")))
        print(row("skipped", "\(emaCopies) EMA copies, \(other) schedule buffers and other tensors no network uses"))
        try SafeTensorsWriter.write(kept, to: output)
        let bytes = kept.values.reduce(0) { $0 + $1.byteRange.count }
        print(row("wrote", String(format: "%@: %d tensors, %.1f MB", output, kept.count, Double(bytes) / 1e6)))
    }

    private func row(_ label: String, _ value: String) -> String {
        label.padding(toLength: 10, withPad: " ", startingAt: 0) + value
    }
}
