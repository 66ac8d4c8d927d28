import Foundation
import LessonKit
import StableDiffusion
import TensorCore
import Testing

/// The model shipped in `Examples/tiny-shapes`, judged by what it draws: each picture is read back
/// by its pixels (`ShapeReading`) and compared with the prompt.
@Suite("The shipped shapes model follows its prompts")
struct ShippedShapesModelTests {
    static let folder = ExamplePicturesTests.projectFolder.appendingPathComponent("Examples/tiny-shapes")

    static func pipeline() throws -> StableDiffusionPipeline { try StableDiffusionPipeline(checkpoint: folder.path) }

    /// Reads what the model draws for `captions` at `seeds`; returns the readings (nil: nothing drawn).
    static func readings(_ pipeline: StableDiffusionPipeline, _ scenes: [ShapeScene], seeds: [UInt64])
        throws -> [(scene: ShapeScene, reading: ShapeReading?)] {
        try scenes.flatMap { scene in
            try seeds.map { seed in
                let request = GenerationRequest(prompt: scene.caption, steps: 20, guidanceScale: 3, seed: seed, width: 64, height: 64)
                return (scene, ShapeReading(try pipeline.generate(request).image))
            }
        }
    }

    @Test("the folder is a miniature of a diffusers download, under 8 MB, with 16-bit weights")
    func folderLayout() throws {
        var bytes = 0
        let enumerator = FileManager.default.enumerator(at: Self.folder, includingPropertiesForKeys: [.fileSizeKey])!
        for case let url as URL in enumerator {
            bytes += try url.resourceValues(forKeys: [.fileSizeKey]).fileSize ?? 0
        }
        #expect(bytes < 8_000_000)
        let pipeline = try Self.pipeline()
        #expect(pipeline.checkpoint.layout == .diffusers)
        #expect(pipeline.configuration.unet == TinyShapesModel.unet)
        #expect(pipeline.checkpoint.stores[.unet]!.record("conv_in.weight")!.type == .float16)
        // The scaling factor was measured, not copied from SD (0.18215).
        #expect(pipeline.configuration.vae.scalingFactor != 1 && pipeline.configuration.vae.scalingFactor != 0.18215)
    }

    @Test("colour and position match the prompt for nearly every caption of the grammar")
    func followsPrompts() throws {
        let pipeline = try Self.pipeline()
        let scenes = ShapeScene.Colour.allCases.flatMap { colour in ShapeScene.Shape.allCases.flatMap { shape in
            ShapeScene.Position.allCases.map { ShapeScene(colour: colour, shape: shape, position: $0) }
        }}
        let results = try Self.readings(pipeline, scenes, seeds: [0])
        let right = results.filter { $0.reading?.colour == $0.scene.colour && $0.reading?.position == $0.scene.position }
        let wrong = results.filter { r in !right.contains { $0.scene.caption == r.scene.caption } }
        #expect(right.count >= 57, "wrong: \(wrong.map { "\($0.scene.caption) → \($0.reading?.description ?? "nothing")" })")
    }

    @Test("it draws the two pairs it never saw, a green triangle and a red square, in every position")
    func composesLeftOutPairs() throws {
        let pipeline = try Self.pipeline()
        let scenes = ShapesDataset.leftOut.flatMap { colour, shape in
            ShapeScene.Position.allCases.map { ShapeScene(colour: colour, shape: shape, position: $0) }
        }
        let results = try Self.readings(pipeline, scenes, seeds: [0, 1])
        let right = results.filter { $0.reading?.colour == $0.scene.colour && $0.reading?.position == $0.scene.position }
        #expect(right.count >= 18, "\(results.map { "\($0.scene.caption) → \($0.reading?.description ?? "nothing")" })")
    }

    @Test("a colour preview fitted to its latents predicts each patch's colour far better than SD 1.x's map")
    func fittedLatentPreview() throws {
        let pipeline = try Self.pipeline()
        let fitted = try pipeline.latentPreview()           // fitted on held-out pictures 0..<64
        #expect(fitted.factors != LatentPreview.sd15.factors)
        // Judged on pictures the fit did not see: 64..<96, one latent pixel per 8x8 patch.
        let (pictures, _) = TinyShapesModel.heldOut.batch(64..<96)
        let vae = try pipeline.vae()
        let latents = try vae.encode(pictures).mean * vae.scalingFactor
        func rmsError(_ preview: LatentPreview) -> Double {
            var sum = 0.0
            for n in 0..<32 {
                let rgb = preview.rgb(latents.slice(n..<n + 1))
                for k in 0..<3 {
                    for y in 0..<8 {
                        for x in 0..<8 {
                            var mean = 0.0
                            for py in 0..<8 { for px in 0..<8 { mean += Double(pictures.scalars[((n * 3 + k) * 64 + y * 8 + py) * 64 + x * 8 + px]) } }
                            let error = Double(rgb.scalars[(k * 8 + y) * 8 + x]) - mean / 64
                            sum += error * error
                        }
                    }
                }
            }
            return (sum / Double(32 * 3 * 64)).squareRoot()
        }
        let (own, sd) = (rmsError(fitted), rmsError(.sd15))
        #expect(own < 0.5 * sd && own < 0.3, "fitted \(own), SD 1.x's \(sd)")
    }

    @Test("guidance visibly matters: at w = 7.5 the picture differs clearly from w = 1, which follows the prompt")
    func guidanceMatters() throws {
        let pipeline = try Self.pipeline()
        func picture(_ scale: Float) throws -> Tensor {
            try pipeline.generate(GenerationRequest(prompt: "a green triangle on the left", steps: 20, guidanceScale: scale,
                                                    seed: 1, width: 64, height: 64)).image
        }
        let (gentle, strong) = (try picture(1), try picture(7.5))
        let reading = ShapeReading(gentle)
        #expect(reading?.colour == .green && reading?.position == .left, "\(String(describing: reading))")
        // Mean absolute difference in grey levels of 255 (measured: 15.5).
        let difference = zip(gentle.scalars, strong.scalars).map { abs($0 - $1) }.reduce(0, +) / Float(gentle.count) * 127.5
        #expect(difference > 5, "w = 1 and w = 7.5 differ by only \(difference) grey levels")
    }

    @Test("its VAE redraws held-out pictures at 30 dB or more")
    func autoencoderQuality() throws {
        // The number `sd train` prints: held-out pictures 0..<64, encoded to the mean, decoded.
        let psnr = try ShapesTrainingPictures.roundTrips(vae: Self.pipeline().vae(), step: 0).psnr
        #expect(psnr >= 30)
    }
}
