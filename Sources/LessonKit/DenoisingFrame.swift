import Foundation
import FrameExport
import StableDiffusion

/// One frame of a denoising animation: the noisy latent x_t and the predicted clean picture x̂₀
/// side by side, captioned with the step, its timestep and (for the σ samplers) its σ. `sd
/// generate --gif` and the classroom page's "save the run as a GIF" draw the same frames.
///
/// ```swift
/// gif.addFrame(DenoisingFrame.picture(noisy: xt, clean: x0, step: step, side: 256))
/// ```
public enum DenoisingFrame {
    /// The two pictures scaled so the longer side of each is `side` pixels, labelled and captioned.
    public static func picture(noisy: RGBImage, clean: RGBImage, step: DenoisingStep, side: Int = 256) -> RGBImage {
        let longest = max(noisy.width, noisy.height)
        let width = noisy.width * side / longest, height = noisy.height * side / longest
        var caption = String(format: "step %d/%d   t = %.0f", step.index + 1, step.count, step.timestep)
        if let sigma = step.sigma { caption += "   sigma = " + String(format: "%.3f", sigma) }
        return RGBImage.sideBySide([noisy.resized(width: width, height: height),
                                    clean.resized(width: width, height: height)],
                                   labels: ["noisy latent x_t", "predicted x_0"])
            .captioned(caption)
    }

    /// The frames as a looping GIF: a quarter second each, the last held for 1.5 s.
    public static func animation(_ frames: [RGBImage]) -> AnimatedGIF {
        var gif = AnimatedGIF()
        for (i, frame) in frames.enumerated() { gif.addFrame(frame, delay: i == frames.count - 1 ? 150 : 25) }
        return gif
    }
}
