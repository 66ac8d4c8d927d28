import Foundation
import FrameExport

// The JSON messages of the classroom page's WebSocket (`/ws`). Each has a `type`; the page's
// classroom.js reads them by that name.
//
// The page sends:
//   {"type": "generate", "run": "a", "settings": {ClassroomSettings}}   — queue a run ("run" is the page's label for it)
//   {"type": "cancel"}                                                    — drop this page's runs, waiting or running
// The server answers with `hello` once, then for each run `queued` (whenever its place changes),
// `started`, one `step` per denoising step, and `done` or `failed`; `busy` when the queue is full.
// Every page also gets `class` whenever the class's state changes (pages, queue, gallery).

/// Sent once, when a page connects: which model is loaded and what it draws best with.
public struct HelloMessage: Encodable, Sendable {
    public let type = "hello"
    public let model: ModelInfo
}

/// The loaded model, for the page's defaults and the health check.
public struct ModelInfo: Encodable, Sendable {
    /// "tiny-shapes (shipped)" or the checkpoint's file name.
    public let name: String
    public let isShapesModel: Bool
    /// The picture side the model was trained at (`sd generate`'s default width and height).
    public let side: Int
    /// A prompt the model knows how to draw, and the guidance it draws best with.
    public let examplePrompt: String
    public let suggestedCfg: Float
    public let schedulers: [String]
    /// Tokens in its vocabulary (49,408 for SD's CLIP; a few hundred for the shapes model).
    public let vocabulary: Int
    /// The forward-noising panel's built-in pictures.
    public let pictures: [String]
}

/// A run's place in the queue: 0 means it is next (or running).
public struct QueuedMessage: Encodable, Sendable {
    public let type = "queued"
    public let run: String
    public let position: Int
}

/// A prompt word, as a chip on the page, with the token positions (1-based, in CLIP's 77) whose
/// attention maps add up to its map.
public struct WordChip: Encodable, Sendable, Equatable {
    public let word: String
    public let positions: [Int]
}

/// The run has left the queue and the UNet is working.
public struct StartedMessage: Encodable, Sendable {
    public let type = "started"
    public let run: String
    /// Denoising steps that will run.
    public let steps: Int
    public let words: [WordChip]
    /// The attention maps' size (the latent's, or a quarter of it for large pictures).
    public let mapWidth: Int, mapHeight: Int
    /// Words the model has no token for, said once (the shapes model knows 4 colours, 3 shapes, 5 places).
    public let notice: String?
}

/// One finished denoising step.
public struct StepMessage: Encodable, Sendable {
    public let type = "step"
    public let run: String
    /// 0-based, and how many steps the run has.
    public let index: Int, count: Int
    /// The UNet's timestep t, ᾱ_t (signal kept: x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε) and σ_t = √((1−ᾱ_t)/ᾱ_t).
    public let timestep: Float, alphaBar: Float, sigma: Float
    /// PNG data URLs: the noisy latent x_t, the predicted noise ε, the predicted clean picture x̂₀.
    public let noisy: String, noise: String, clean: String
    /// Per word (as in `StartedMessage.words`): its cross-attention map at this step, row-major,
    /// 0...255 (scaled so the map's largest value is 255), and its share of all attention.
    public let attention: [[UInt8]]
    public let shares: [Float]
}

/// The run is finished; the picture and the run's GIF can be fetched from the URLs.
public struct DoneMessage: Encodable, Sendable {
    public let type = "done"
    public let run: String
    /// The final picture as a PNG data URL (the same file as at `png`).
    public let image: String
    public let png: String, gif: String
    public let seconds: Double
}

/// The run could not be done; `message` says why in one sentence.
public struct FailedMessage: Encodable, Sendable {
    public let type = "failed"
    public let run: String?
    public let message: String
}

/// The queue is full: nothing was queued.
public struct BusyMessage: Encodable, Sendable {
    public let type = "busy"
    public let run: String?
    public let message: String
}

/// The whole class, sent to every page when it changes.
public struct ClassMessage: Encodable, Sendable {
    public let type = "class"
    /// Pages open now.
    public let pages: Int
    /// Runs waiting in the queue.
    public let waiting: Int
    /// The prompt being drawn now, if any.
    public let drawing: String?
    /// The class's latest pictures, newest first.
    public let gallery: [GalleryEntry]
}

/// One finished picture of the class: a thumbnail, the full picture's address, and the settings
/// that make it again (`sd generate`'s names, defaults filled in).
public struct GalleryEntry: Encodable, Sendable {
    public let thumbnail: String
    public let png: String
    public let settings: ClassroomSettings

    package init(thumbnail: String, png: String, settings: ClassroomSettings) {
        self.thumbnail = thumbnail
        self.png = png
        self.settings = settings
    }
}

/// What the page sends.
struct PageMessage: Decodable {
    var type: String
    var run: String?
    var settings: ClassroomSettings?
}

extension Encodable {
    /// The message as one line of JSON.
    func jsonText() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Every message is a plain struct of strings and numbers; encoding cannot fail.
        return (try? String(decoding: encoder.encode(self), as: UTF8.self)) ?? "{}"
    }
}

extension RGBImage {
    /// The picture as a `data:image/png;base64,…` URL, for an `<img src>` without a second request.
    func pngDataURL() -> String {
        let png = (try? pngData()) ?? Data()
        return "data:image/png;base64," + png.base64EncodedString()
    }
}
