import Foundation
import FrameExport
import LessonKit
import StableDiffusion
import TensorCore

/// Collects one frame per denoising step: the noisy latent x_t and the predicted clean image x₀
/// side by side, captioned with the step and timestep.
final class FrameRecorder {
    private let pipeline: StableDiffusionPipeline
    private let preview: FramePreview
    private let width, height: Int
    private let enabled: Bool
    private(set) var frames: [RGBImage] = []
    /// The colour projection fitted to this model's latents (SD 1.x's, or the shapes model's own).
    private lazy var colours = (try? pipeline.latentPreview()) ?? .sd15
    private var frameSeconds = 0.0
    var timings: [(stage: String, seconds: Double)] { frames.isEmpty ? [] : [("frames", frameSeconds)] }

    init(pipeline: StableDiffusionPipeline, preview: FramePreview, width: Int, height: Int, enabled: Bool) {
        self.pipeline = pipeline
        self.preview = preview
        self.width = width
        self.height = height
        self.enabled = enabled
    }

    func record(_ step: DenoisingStep) {
        guard enabled else { return }
        let start = Date()
        // Frames are at most 256 px on the long side, so a 50-step GIF stays small.
        let side = min(256, max(width, height))
        frames.append(DenoisingFrame.picture(noisy: picture(step.latents), clean: picture(step.predictedOriginal),
                                             step: step, side: side))
        frameSeconds += Date().timeIntervalSince(start)
    }

    /// A latent as a picture: the linear colour projection, the tiny autoencoder, or the real decoder.
    private func picture(_ latents: Tensor) -> RGBImage {
        if preview == .vae, let vae = try? pipeline.vae(), let decoded = try? vae.decode(scaledLatents: latents) {
            return RGBImage(tensor: decoded)
        }
        if preview == .taesd, let decoded = try? pipeline.tinyAutoencoder?.decode(latents) {
            return RGBImage(tensor: decoded)
        }
        return RGBImage(tensor: colours.rgb(latents))
    }

    func animation() -> AnimatedGIF { DenoisingFrame.animation(frames) }

    func writeFrames(to folder: String) throws {
        for (i, frame) in frames.enumerated() {
            try frame.writePNG(to: folder + String(format: "/step-%03d.png", i + 1))
        }
    }
}
