import ArgumentParser

/// `sd`: run Stable Diffusion 1.x from the command line, in plain Swift on the CPU.
///
/// ```
/// sd inspect --checkpoint v1-5-pruned-emaonly.safetensors
/// ```
@main
struct SD: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sd",
        abstract: "Stable Diffusion 1.x in plain Swift: inspect checkpoints, tokenize prompts, generate pictures.",
        discussion: """
            The checkpoint is a single .safetensors or .ckpt file (SD 1.4, 1.5 or a fine-tune) or a diffusers \
            folder. Pass it with --checkpoint, or set SD_CHECKPOINT once.
            """,
        subcommands: [Generate.self, Tokenize.self, Inspect.self, Convert.self, Train.self, ClassroomCommand.self])
}
