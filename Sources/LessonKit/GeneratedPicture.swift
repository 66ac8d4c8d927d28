import Foundation
import FrameExport
import StableDiffusion
import TensorCore

/// The PNG a generation ends in, with its settings written into it as text notes (the
/// `parameters` note other Stable Diffusion tools read), so a picture says how to make it again.
/// `sd generate` and the classroom server both write it, so the same settings give the same file.
///
/// ```swift
/// let png = try GeneratedPicture.pngData(result.image, request: request)
/// ```
public enum GeneratedPicture {
    /// "prompt: …, negative prompt: …, steps: 25, cfg: 7.5, seed: 0, size: 512x512, scheduler: pndm",
    /// then `extras` (the command line's init image, VAE, LoRAs), comma-separated.
    public static func parameters(_ request: GenerationRequest, extras: [String] = []) -> String {
        let parts = ["prompt: \(request.prompt)", "negative prompt: \(request.negativePrompt)",
                     "steps: \(request.steps)", "cfg: \(request.guidanceScale)", "seed: \(request.seed)",
                     "size: \(request.width)x\(request.height)", "scheduler: \(request.scheduler.rawValue)"]
        return (parts + extras).joined(separator: ", ")
    }

    /// The notes: `parameters`, then the prompt and negative prompt on their own.
    public static func notes(_ request: GenerationRequest, extras: [String] = []) -> [PNGTextEntry] {
        [PNGTextEntry(key: "parameters", value: parameters(request, extras: extras)),
         PNGTextEntry(key: "prompt", value: request.prompt),
         PNGTextEntry(key: "negative_prompt", value: request.negativePrompt)]
    }

    /// The picture `(1, 3, h, w)` in [−1, 1] as PNG bytes with the notes.
    public static func pngData(_ image: Tensor, request: GenerationRequest, extras: [String] = []) throws -> Data {
        try RGBImage(tensor: image).pngData(text: notes(request, extras: extras))
    }
}
