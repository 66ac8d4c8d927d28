import Foundation
import FrameExport
import LessonKit
import StableDiffusion
import TensorCore

/// `--load-latents`: decode a `.npy` file instead of encoding a picture.
extension VAELatents {
    /// Reads `path` and checks it is `(1, channels, h, w)`; throws a one-sentence error otherwise.
    func readLatents(_ path: String, channels: Int) throws -> Tensor {
        let tensor = try NumPyFile.read(path)
        guard tensor.rank == 4, tensor.shape[0] == 1, tensor.shape[1] == channels,
              (1...256).contains(tensor.shape[2]), (1...256).contains(tensor.shape[3]) else {
            throw LessonError("""
                '\(path)' has shape \(Format.shape(tensor.shape)); --load-latents needs (1, \(channels), h, w) with h \
                and w from 1 to 256, as --save-latents writes it
                """)
        }
        guard tensor.scalars.allSatisfy(\.isFinite) else {
            throw LessonError("'\(path)' contains NaN or infinite numbers")
        }
        return tensor
    }

    /// The only stage of a `--load-latents` run: the file's numbers, decoded.
    func decodeLoadedLatents(_ z: Tensor, from path: String, vae: AutoencoderKL, preview colours: LatentPreview, narrator: Narrator,
                             out: LessonOutput) throws {
        narrator.stage("Decoding latents from \(path)")
        let stats = TensorSummary(z)
        narrator.say("Shape \(Format.shape(z.shape)), " + String(format: """
            values from %+.2f to %+.2f, standard deviation %.3f (read as scaled latents, as the UNet sees them and as \
            --save-latents writes them).
            """, stats.min, stats.max, stats.standardDeviation))
        let decoded = RGBImage(tensor: try vae.decode(scaledLatents: z))
        narrator.say("""
            Decoded to \(decoded.width)x\(decoded.height) pixels: \(Format.grouped(stats.count)) numbers became \
            \(Format.grouped(3 * decoded.width * decoded.height)).
            """)
        narrator.preview(decoded)
        let zoom = RGBImage.zoom(width: decoded.width, height: decoded.height, toAtLeast: 256)
        let (width, height) = (decoded.width * zoom, decoded.height * zoom)
        let preview = RGBImage(tensor: colours.rgb(z)).resized(width: width, height: height, filter: .nearest)
        let name = (path as NSString).lastPathComponent
        let panel = RGBImage.sideBySide([preview, decoded.resized(width: width, height: height, filter: .nearest)],
                                        labels: ["\(z.shape[3])x\(z.shape[2])x4 latents (mixed to RGB)", "decoded"],
                                        title: "decode(" + name + String(format: " / %g)", vae.scalingFactor))
        narrator.show("wrote " + (try out.save(panel, as: "decoded-latents.png", extra: [("latents", name)])))
        narrator.say("Files written:\n" + out.summary)
    }
}
