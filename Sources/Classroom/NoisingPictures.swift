import Foundation
import FrameExport
import LessonKit
import StableDiffusion
import TensorCore

/// The forward-noising panel: a picture x₀ noised to timestep t,
/// x_t = √ᾱ_t · x₀ + √(1 − ᾱ_t) · ε  (DDPM, Ho et al. 2020, eq. 4),
/// in pixel space as lesson 1 shows it, with the schedule of the loaded model.
///
/// Pictures are the built-in ones or the class's uploads. An upload is decoded by the project's
/// own reader (PNG or JPEG only), shrunk to at most 256 pixels a side and kept in memory, never
/// written to disk; the last `capacity` uploads are kept.
///
/// ```swift
/// let pictures = NoisingPictures(alphasCumprod: schedule)
/// let view = try pictures.noised("hills", t: 500, seed: 0)   // view.image is a PNG data URL
/// ```
public final class NoisingPictures: @unchecked Sendable {
    /// The pictures every page can noise.
    public static let builtInNames = ["hills", "shapes"]
    /// How many uploads are kept (the oldest is forgotten first).
    public let capacity: Int
    let alphasCumprod: [Float]
    private let lock = NSLock()
    private var uploads: [(id: String, picture: Tensor)] = []
    private let builtIn: [String: Tensor] = [
        "hills": ExamplePictures.hills(width: 256, height: 256),
        "shapes": ShapeScene(colour: .blue, shape: .triangle, position: .left).render(size: 256),
    ]

    public init(alphasCumprod: [Float], capacity: Int = 32) {
        self.alphasCumprod = alphasCumprod
        self.capacity = capacity
    }

    /// What the panel shows for one t.
    public struct View: Encodable, Sendable {
        public let t: Int
        public let alphaBar: Float
        /// Signal-to-noise ratio ᾱ_t / (1 − ᾱ_t).
        public let snr: Float
        /// The noised picture, as a PNG data URL.
        public let image: String
    }

    /// Decodes an uploaded PNG or JPEG and keeps it; returns the name to noise it by.
    public func upload(_ data: Data, limits: ClassroomLimits) throws -> String {
        guard data.count <= limits.uploadBytes else {
            throw ClassroomError.badRequest("the picture is \(data.count) bytes; the most is \(limits.uploadBytes / 1_048_576) MB")
        }
        let image: RGBImage
        do {
            // The reader checks the signature, the header's sizes and every chunk before decoding.
            image = try RGBImage(decoding: data, name: "the uploaded picture")
        } catch {
            throw ClassroomError.badRequest("the upload is not a picture this server can read (PNG or JPEG): \(error)")
        }
        guard image.width <= limits.uploadSide, image.height <= limits.uploadSide else {
            throw ClassroomError.badRequest("the picture is \(image.width)x\(image.height); the most is \(limits.uploadSide) pixels a side")
        }
        let picture = image.thumbnail(maxSide: 256).toTensor()
        let id = "upload-" + UUID().uuidString.prefix(8).lowercased()
        lock.withLock {
            uploads.append((id, picture))
            if uploads.count > capacity { uploads.removeFirst(uploads.count - capacity) }
        }
        return id
    }

    /// The picture `name` (built in or uploaded) noised to timestep `t` with the noise of `seed`.
    public func noised(_ name: String, t: Int, seed: UInt64) throws -> View {
        guard alphasCumprod.indices.contains(t) else {
            throw ClassroomError.badRequest("t must be from 0 to \(alphasCumprod.count - 1), got \(t)")
        }
        let picture = try lock.withLock { () throws -> Tensor in
            if let builtIn = builtIn[name] { return builtIn }
            if let upload = uploads.last(where: { $0.id == name }) { return upload.picture }
            throw ClassroomError.badRequest("there is no picture called '\(name.prefix(40))' (built in: \(Self.builtInNames.joined(separator: ", ")); uploads are kept for the last \(capacity))")
        }
        var generator = TorchGenerator(seed: seed)
        let noise = generator.randn(picture.shape)
        let alphaBar = alphasCumprod[t]
        let noised = picture.scaled(alphaBar.squareRoot(), plus: noise, times: (1 - alphaBar).squareRoot())
        return View(t: t, alphaBar: alphaBar, snr: alphaBar / (1 - alphaBar), image: RGBImage(tensor: noised).pngDataURL())
    }
}
