import Foundation
import StableDiffusion

/// The model a lesson runs with: the checkpoint the student named, or the shapes model that ships
/// with the project.
public struct LessonModel: Sendable {
    /// A `.safetensors`/`.ckpt` file or a diffusers folder.
    public let path: String
    /// True for the shipped shapes model (`Examples/tiny-shapes`), found because nothing was named.
    public let isShapesModel: Bool

    public init(path: String, isShapesModel: Bool) {
        self.path = path
        self.isShapesModel = isShapesModel
    }

    /// The guidance scale the shapes model draws best with: at SD's usual 7.5 its shapes bulge and
    /// its colours bleed (lesson 4 shows why), so its lessons default to 3.
    public static let shapesGuidance: Float = 3

    /// A file or folder name for the lesson's parameter lists.
    public var name: String { isShapesModel ? "tiny-shapes (shipped)" : (path as NSString).lastPathComponent }
}

/// Which model a lesson runs with, if any.
///
/// `--checkpoint PATH`, else `$SD_CHECKPOINT`, else the shapes model shipped in
/// `Examples/tiny-shapes` (looked for in the working folder, then in the folders above the
/// executable, so `swift run` and `.build/release/...` both find it). `none` in either place
/// means the built-in, network-free material only.
///
/// ```swift
/// if let model = LessonCheckpoint.model(checkpoint) { let pipeline = try LessonCheckpoint.pipeline(model.path) }
/// ```
public enum LessonCheckpoint {
    /// The shipped model's folder, relative to the project folder.
    public static let shapesModelFolder = "Examples/tiny-shapes"

    /// The named checkpoint, or the shipped shapes model, or nil for the built-in material only.
    public static func model(_ option: String?) -> LessonModel? {
        if let named = path(option) {
            return named == "none" ? nil : LessonModel(path: named, isShapesModel: false)
        }
        return shippedModelPath().map { LessonModel(path: $0, isShapesModel: true) }
    }

    /// The checkpoint the student named (`--checkpoint`, else `$SD_CHECKPOINT`), or nil.
    public static func path(_ option: String?) -> String? {
        if let option, !option.isEmpty { return option }
        if let environment = ProcessInfo.processInfo.environment["SD_CHECKPOINT"], !environment.isEmpty {
            return environment
        }
        return nil
    }

    /// `Examples/tiny-shapes` under the working folder or under a folder above the executable.
    public static func shippedModelPath() -> String? {
        let files = FileManager.default
        let marker = shapesModelFolder + "/model_index.json"
        if files.fileExists(atPath: marker) { return shapesModelFolder }
        // The executable's own location (from the system, so a bare name found on PATH works too).
        let executable = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
        var folder = executable.resolvingSymlinksInPath().deletingLastPathComponent()
        while folder.pathComponents.count > 1 {
            if files.fileExists(atPath: folder.appendingPathComponent(marker).path) {
                return folder.appendingPathComponent(shapesModelFolder).path
            }
            folder.deleteLastPathComponent()
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

    /// What the shipped shapes model is, in two sentences, for the lessons that use it.
    public static let aboutTheShapesModel = """
        No checkpoint named, so the lesson uses the shapes model that ships with this project \
        (Examples/tiny-shapes): Stable Diffusion's three networks in miniature, trained here from scratch on \
        64x64 pictures of coloured shapes (lesson 5 shows how). It knows 4 colours, 3 shapes and 5 places; \
        everything else about it works as in SD 1.5.
        """
}

/// What a lesson asks its model to draw: the command-line options, with the model's defaults
/// where none was given (the shapes model has its own prompt, guidance and size).
///
/// ```swift
/// let drawing = LessonDrawing(model: model, side: 64, prompt: nil, cfg: nil, width: nil, height: nil,
///                             defaults: (sd: "a red apple on a wooden table", shapes: "a red circle on the left"))
/// ```
public struct LessonDrawing: Sendable {
    public var prompt: String
    public var cfg: Float
    public var width: Int
    public var height: Int

    /// - Parameters:
    ///   - side: the model's picture size (its UNet's sample size times 8).
    ///   - defaults: the lesson's prompt for Stable Diffusion and for the shapes model.
    public init(model: LessonModel?, side: Int, prompt: String?, cfg: Float?, width: Int?, height: Int?,
                defaults: (sd: String, shapes: String)) {
        let shapes = model?.isShapesModel == true
        self.prompt = prompt ?? (shapes ? defaults.shapes : defaults.sd)
        self.cfg = cfg ?? (shapes ? LessonModel.shapesGuidance : 7.5)
        self.width = width ?? side
        self.height = height ?? side
    }

    /// The generation request for these settings.
    public func request(steps: Int, seed: UInt64, scheduler: SchedulerKind = .pndm, prompt: String? = nil,
                        cfg: Float? = nil) -> GenerationRequest {
        GenerationRequest(prompt: prompt ?? self.prompt, steps: steps, guidanceScale: cfg ?? self.cfg, seed: seed,
                          width: width, height: height, scheduler: scheduler)
    }
}
