import ArgumentParser
import Foundation

/// The `--checkpoint` option shared by every command that loads a model; falls back to the
/// `SD_CHECKPOINT` environment variable.
struct CheckpointOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "A Stable Diffusion 1.x .safetensors or .ckpt file, or a diffusers folder (default: $SD_CHECKPOINT).",
        valueName: "path"))
    var checkpoint: String?

    /// The path to use, or a validation error telling the user how to provide one.
    func resolved() throws -> String {
        if let checkpoint, !checkpoint.isEmpty { return checkpoint }
        if let fromEnvironment = ProcessInfo.processInfo.environment["SD_CHECKPOINT"], !fromEnvironment.isEmpty {
            return fromEnvironment
        }
        throw ValidationError("no checkpoint given: pass --checkpoint PATH or set SD_CHECKPOINT")
    }
}
