import Foundation
import FrameExport
import StableDiffusion
import TensorCore

/// The pictures a shapes training run shows as it goes.
public enum ShapesTrainingPictures {
    /// Held-out pictures over their round trips through the VAE (encode, take the mean, decode),
    /// and the PSNR of the round trips over the first 64 held-out pictures.
    public static func roundTrips(vae: AutoencoderKL, step: Int) throws -> (image: RGBImage, psnr: Double) {
        let (pictures, _) = TinyShapesModel.heldOut.batch(0..<64)
        let decoded = try vae.decode(try vae.encode(pictures).mean)
        let psnr = PixelComparison.peakSignalToNoise(pictures, decoded)
        let shown = 8
        let originals = RGBImage.images(fromBatch: pictures.slice(0..<shown))
        let trips = RGBImage.images(fromBatch: decoded.slice(0..<shown))
        let image = RGBImage.grid((originals + trips).map { $0.enlarged(toAtLeast: 128) }, columns: shown,
                                  title: String(format: "autoencoder after %d steps: drawn (top), decoded (bottom), PSNR %.1f dB", step, psnr))
        return (image, psnr)
    }

    /// One picture per sample prompt (seed 0, the pipeline's default sampler), with the prompts
    /// as labels. Guidance 3: a model this small draws its cleanest shapes at low guidance, while
    /// SD's usual 7.5 pushes them out of shape.
    public static func samples(_ pipeline: StableDiffusionPipeline, title: String,
                               prompts: [String] = TinyShapesModel.samplePrompts, guidance: Float = 3) throws -> RGBImage {
        let size = pipeline.configuration.unet.sampleSize * 8
        let pictures = try prompts.map { prompt in
            try pipeline.generate(GenerationRequest(prompt: prompt, guidanceScale: guidance, width: size, height: size)).image
        }
        return RGBImage.grid(pictures.map { RGBImage(tensor: $0).enlarged(toAtLeast: 128) }, columns: 4,
                             labels: prompts, title: title + String(format: " (guidance %g)", guidance))
    }
}
