import Foundation
import TensorCore

/// Everything that decides the picture `generate` makes.
///
/// With the same request and checkpoint, the result equals diffusers' `StableDiffusionPipeline`
/// (or `StableDiffusionImg2ImgPipeline` with an init image) on CPU with
/// `torch.Generator("cpu").manual_seed(seed)`.
public struct GenerationRequest: Sendable {
    public var prompt: String
    /// What to steer away from; empty means "unconditional", as in diffusers.
    public var negativePrompt: String = ""
    /// Sampling steps (model evaluations; PNDM makes one more).
    public var steps: Int = 25
    /// Classifier-free guidance scale `w`: ε = ε_uncond + w · (ε_text − ε_uncond). At `w ≤ 1` the
    /// unconditional pass is skipped, as diffusers does.
    public var guidanceScale: Float = 7.5
    public var seed: UInt64 = 0
    public var width: Int = 512
    public var height: Int = 512
    public var scheduler: SchedulerKind = .pndm
    /// img2img: the starting picture `(1, 3, height, width)` in [−1, 1].
    public var initImage: Tensor?
    /// img2img: how much of the schedule to run, 0...1 (1 ignores the init image almost entirely).
    public var strength: Double = 0.8
    /// Decode the picture in square tiles of this many pixels (a multiple of 64), blended where
    /// they overlap by a quarter, instead of in one piece; nil decodes in one piece. The decoder's
    /// activations then only exist for one tile, which bounds memory on small machines (its
    /// largest activation at 512x512 is 128 MB, at 256x256 tiles 32 MB), at the price of a
    /// slightly different picture (see `AutoencoderKL.decodeTiled`).
    public var vaeTileSize: Int?
    /// Which autoencoder turns the final latent into the picture: SD's VAE, or TAESD (the
    /// pipeline's `tinyAutoencoder`), about 18x less work (141 GFLOP against 2.5 TFLOP at 512x512) for a slightly softer picture.
    public var decoder: PictureDecoder = .vae

    public init(prompt: String, negativePrompt: String = "", steps: Int = 25, guidanceScale: Float = 7.5,
                seed: UInt64 = 0, width: Int = 512, height: Int = 512, scheduler: SchedulerKind = .pndm) {
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        self.steps = steps
        self.guidanceScale = guidanceScale
        self.seed = seed
        self.width = width
        self.height = height
        self.scheduler = scheduler
    }

    /// Whether the guidance batch (unconditional + text) is run.
    public var usesGuidance: Bool { guidanceScale > 1 }

    /// Checks the numbers a user types, with messages that say what is allowed.
    public func validate() throws {
        guard steps >= 1 else { throw GenerationError.invalid("--steps must be at least 1, got \(steps)") }
        guard steps <= 1000 else { throw GenerationError.invalid("--steps must be at most 1000 (the training schedule's length), got \(steps)") }
        guard guidanceScale >= 0, guidanceScale.isFinite else {
            throw GenerationError.invalid("--cfg (guidance scale) must be 0 or more, got \(guidanceScale)")
        }
        for (name, value) in [("width", width), ("height", height)] {
            guard value >= 64, value <= 2048 else {
                throw GenerationError.invalid("--\(name) must be between 64 and 2048 pixels, got \(value)")
            }
            guard value % 8 == 0 else {
                throw GenerationError.invalid("--\(name) must be a multiple of 8 (the VAE shrinks images 8x), got \(value); try \(value / 8 * 8)")
            }
        }
        if let vaeTileSize {
            guard vaeTileSize >= 64, vaeTileSize % 64 == 0 else {
                throw GenerationError.invalid("--vae-tile must be a multiple of 64 pixels, at least 64, got \(vaeTileSize)")
            }
        }
        if let initImage {
            guard initImage.shape == [1, 3, height, width] else {
                throw GenerationError.invalid("the init image is \(initImage.shape), expected (1, 3, \(height), \(width))")
            }
            guard (0...1).contains(strength), strength > 0 else {
                throw GenerationError.invalid("--strength must be in (0, 1], got \(strength)")
            }
        }
    }
}

/// The autoencoder that draws the final picture.
public enum PictureDecoder: String, Sendable, CaseIterable {
    case vae, taesd
}

/// A request that cannot be run, with the reason in words.
public enum GenerationError: Error, CustomStringConvertible, Equatable {
    case invalid(String)
    /// The caller's `CancellationFlag` was set.
    case cancelled

    public var description: String {
        switch self {
        case .invalid(let message): return message
        case .cancelled: return "the generation was cancelled"
        }
    }
}

/// A stop sign for a generation, set from another thread and looked at between steps.
///
/// ```swift
/// let stop = CancellationFlag()
/// DispatchQueue.global().asyncAfter(deadline: .now() + 5) { stop.cancel() }
/// _ = try pipeline.generate(request, cancellation: stop)   // throws GenerationError.cancelled after 5 s
/// ```
public final class CancellationFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var set = false

    public init() {}

    public func cancel() { lock.withLock { set = true } }

    public var isSet: Bool { lock.withLock { set } }
}
