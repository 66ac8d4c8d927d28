import Foundation
import StableDiffusion

/// The checkpoint a lesson runs with, if any: `--checkpoint PATH`, else `$SD_CHECKPOINT`, else
/// none (the lesson then teaches with its built-in, download-free material).
public enum LessonCheckpoint {
    /// The path to use, or nil for the embedded default.
    public static func path(_ option: String?) -> String? {
        if let option, !option.isEmpty { return option }
        if let environment = ProcessInfo.processInfo.environment["SD_CHECKPOINT"], !environment.isEmpty {
            return environment
        }
        return nil
    }

    /// Opens the pipeline, turning checkpoint problems into one-sentence lesson errors.
    public static func pipeline(_ path: String) throws -> StableDiffusionPipeline {
        do {
            return try StableDiffusionPipeline(checkpoint: path)
        } catch {
            throw LessonError("cannot use checkpoint: \(error)")
        }
    }

    /// What to tell a student who has no checkpoint yet.
    public static let howToGetOne = """
        To see the real model, download a Stable Diffusion 1.x checkpoint (for example \
        v1-5-pruned-emaonly.safetensors, about 4 GB; a .ckpt file works too, from the model's page on Hugging Face; \
        the license asks you to accept its terms there) and run this lesson with \
        --checkpoint PATH, or set SD_CHECKPOINT=PATH once in your shell.
        """
}
