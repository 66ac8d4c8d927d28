import Foundation
import FrameExport
import LessonKit
import StableDiffusion
import TensorCore

/// The model the classroom draws with, and what it shows of each run.
///
/// Not thread-safe (the pipeline caches its networks): the server calls it from its generation
/// queue only, one run at a time (`GenerationQueue`).
///
/// ```swift
/// let model = try ClassroomModel(LessonModel(path: "Examples/tiny-shapes", isShapesModel: true))
/// let png = try model.picture(request)      // the same file `sd generate` writes
/// ```
public final class ClassroomModel: @unchecked Sendable {
    public let pipeline: StableDiffusionPipeline
    public let info: ModelInfo
    /// The scheduler's ᾱ_t, t = 0...999 (float32, as the samplers use them).
    let alphasCumprod: [Float]
    /// Latents to colours without the VAE: the model's own fitted projection.
    let colours: LatentPreview
    /// Pictures this small are decoded by the VAE at every step (milliseconds for the shapes
    /// model); larger ones show the colour projection, as SD's 64x64 latents would cost a full
    /// decode (seconds) per step.
    static let largestDecodedSide = 128

    public init(_ model: LessonModel) throws {
        pipeline = try StableDiffusionPipeline(checkpoint: model.path)
        try pipeline.checkComplete()
        let side = pipeline.configuration.unet.sampleSize * 8
        alphasCumprod = pipeline.configuration.scheduler.alphasCumprod()
        colours = (try? pipeline.latentPreview()) ?? .sd15
        info = ModelInfo(name: model.name, isShapesModel: model.isShapesModel, side: side,
                         examplePrompt: model.isShapesModel ? "a red circle on the left" : "a lighthouse at dawn, oil painting",
                         suggestedCfg: model.isShapesModel ? LessonModel.shapesGuidance : 7.5,
                         schedulers: SchedulerKind.allCases.map(\.rawValue),
                         vocabulary: try pipeline.tokenizer().vocabularySize,
                         pictures: NoisingPictures.builtInNames)
    }

    /// The picture for `request` as PNG bytes with its settings in text notes: byte for byte
    /// what `sd generate` writes for the same settings and checkpoint.
    public func picture(_ request: GenerationRequest, cancellation: CancellationFlag? = nil) throws -> Data {
        let result = try pipeline.generate(request, cancellation: cancellation)
        return try GeneratedPicture.pngData(result.image, request: request)
    }

    /// What a watched run leaves behind for "save": the final PNG and the run as a GIF.
    public struct FinishedRun: Sendable {
        public let png: Data
        public let gif: Data
        public let seconds: Double
        /// The picture at most 128 pixels a side, as a PNG data URL (for the class's gallery).
        public let thumbnail: String
    }

    /// Runs `request` and tells `send` what happens: `started`, then one `step` per denoising step
    /// with its three pictures and the words' attention maps.
    func watch(_ request: GenerationRequest, run: String, cancellation: CancellationFlag?,
               send: @escaping (any Encodable & Sendable) -> Void) throws -> FinishedRun {
        let start = Date()
        let tokenizer = try pipeline.tokenizer()
        let tokens = tokenizer.tokenize(request.prompt)
        let words = Self.wordChips(request.prompt, tokenizer: tokenizer, tokenCount: tokens.tokens.count)
        let latent = (height: request.height / 8, width: request.width / 8)
        let maps = AttentionMaps(latentHeight: latent.height, latentWidth: latent.width,
                                 tokenCount: tokens.tokens.count, batch: request.usesGuidance ? 1 : 0)
        let pooling = AttentionPooling(height: latent.height, width: latent.width)
        let steps = try request.scheduler.makeScheduler(steps: request.steps, configuration: pipeline.configuration.scheduler)
            .timesteps.count
        send(StartedMessage(run: run, steps: steps, words: words, mapWidth: pooling.width, mapHeight: pooling.height,
                            notice: PromptWords.unlearnedWordsNotice(request.prompt, tokenizer: tokenizer).map { "Note: " + $0 + "." }))

        var frames: [RGBImage] = []
        let decodes = max(request.width, request.height) <= Self.largestDecodedSide
        let result = try pipeline.generate(request, crossAttentionObserver: maps.observe, cancellation: cancellation) { step in
            maps.finishStep(index: step.index, timestep: step.timestep)
            let noisy = self.picture(step.latents, decoded: decodes)
            let clean = self.picture(step.predictedOriginal, decoded: decodes)
            // ε is noise in latent space: its colour projection shows where and how strongly.
            let noise = RGBImage(tensor: self.colours.rgb(step.noisePrediction))
            let levels = self.noiseLevels(step)
            let now = maps.steps.last!
            let attention = words.map { pooling.bytes(maps.normalisedMap(positions: $0.positions, steps: [now])) }
            let shares = words.map { AttentionMaps.share(of: $0.positions, in: now) }
            send(StepMessage(run: run, index: step.index, count: step.count, timestep: step.timestep,
                             alphaBar: levels.alphaBar, sigma: levels.sigma,
                             noisy: noisy.pngDataURL(), noise: noise.pngDataURL(), clean: clean.pngDataURL(),
                             attention: attention, shares: shares))
            frames.append(DenoisingFrame.picture(noisy: noisy, clean: clean, step: step,
                                                 side: min(256, max(noisy.width, noisy.height) * 4)))
        }
        return FinishedRun(png: try GeneratedPicture.pngData(result.image, request: request),
                           gif: try DenoisingFrame.animation(frames).encoded(),
                           seconds: Date().timeIntervalSince(start),
                           thumbnail: RGBImage(tensor: result.image).thumbnail(maxSide: 128).pngDataURL())
    }

    /// A latent as a picture: through the VAE when that is cheap, else the colour projection.
    func picture(_ latents: Tensor, decoded: Bool) -> RGBImage {
        if decoded, let vae = try? pipeline.vae(), let image = try? vae.decode(scaledLatents: latents) {
            return RGBImage(tensor: image)
        }
        return RGBImage(tensor: colours.rgb(latents))
    }

    /// ᾱ_t and σ_t of a step: from the sampler's σ when it has one (x = x₀ + σ·ε, so ᾱ = 1/(1+σ²)),
    /// else from the training schedule at the step's timestep.
    func noiseLevels(_ step: DenoisingStep) -> (alphaBar: Float, sigma: Float) {
        if let sigma = step.sigma { return (1 / (1 + sigma * sigma), sigma) }
        let t = min(max(0, Int(step.timestep.rounded())), alphasCumprod.count - 1)
        let alphaBar = alphasCumprod[t]
        return (alphaBar, ((1 - alphaBar) / alphaBar).squareRoot())
    }

    /// The prompt's words whose tokens CLIP reads (the first 75), each with its token positions.
    static func wordChips(_ prompt: String, tokenizer: CLIPTokenizer, tokenCount: Int) -> [WordChip] {
        let words = PromptWords.words(prompt)
        return words.indices.compactMap { index in
            let positions = PromptWords.tokenPositions(ofWord: index, in: words, tokenizer: tokenizer)
                .filter { $0 <= tokenCount }
            return positions.isEmpty ? nil : WordChip(word: words[index], positions: positions)
        }
    }
}

/// Shrinks an attention map for sending: large latents (SD's 64x64) are averaged in square
/// blocks down to at most 32 cells a side; the page stretches the map over the picture anyway.
struct AttentionPooling {
    let sourceHeight: Int, sourceWidth: Int
    let factor: Int
    var height: Int { sourceHeight / factor }
    var width: Int { sourceWidth / factor }

    init(height: Int, width: Int, largestSide: Int = 32) {
        sourceHeight = height
        sourceWidth = width
        var factor = 1
        while max(height, width) / factor > largestSide, height % (factor * 2) == 0, width % (factor * 2) == 0 { factor *= 2 }
        self.factor = factor
    }

    /// A map in [0, 1], `(sourceHeight, sourceWidth)` row-major, as `(height, width)` bytes 0...255.
    func bytes(_ map: [Float]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: height * width)
        let cell = Float(factor * factor)
        for y in 0..<height {
            for x in 0..<width {
                var sum: Float = 0
                for dy in 0..<factor { for dx in 0..<factor { sum += map[(y * factor + dy) * sourceWidth + x * factor + dx] } }
                out[y * width + x] = UInt8(max(0, min(255, (sum / cell * 255).rounded())))
            }
        }
        return out
    }
}
