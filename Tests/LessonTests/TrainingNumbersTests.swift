import Foundation
import LessonKit
import StableDiffusion
import TensorCore
import Testing

/// The numbers behind lesson 5: the cost estimate, the gradient probe, the loss by noise level,
/// the data census and the way durations are written.
@Suite("Lesson 5's numbers")
struct TrainingNumbersTests {
    @Test("text encoder FLOPs by hand: 12 layers of 77 tokens, 4 projections, 2 products, 2 MLP layers")
    func textEncoderFlops() {
        // SD 1.x: d = 768, MLP 3072: 12 · (4·2·77·768² + 4·77²·768 + 2·2·77·768·3072) = 13,298,503,680.
        #expect(CLIPTextModel.flopCount(configuration: .sd15) == 13_298_503_680)
        // The shapes model: d = 64, MLP 256, 2 layers: 2 · (4·2·77·64² + 4·77²·64 + 2·2·77·64·256) = 18,174,464.
        #expect(CLIPTextModel.flopCount(configuration: TinyShapesModel.textEncoder(vocabularySize: 559)) == 18_174_464)
    }

    @Test("SD 1.5's training: 3 x the UNet's forward, the frozen encoders once, times the published schedule")
    func sd15Estimate() throws {
        let at512 = try TrainingCost.sd15Sample(side: 512)
        // One UNet evaluation at 64x64 latents is 803.25 GFLOP (1606.5 for the batch of 2 PyTorch's counter agrees with).
        #expect(abs(at512.unet - 3 * 803.25e9) < 1e8)
        let encode = try AutoencoderKL.flops(configuration: .sd15, height: 512, width: 512).encode
        #expect(at512.vae == Double(encode))
        let estimate = try TrainingCost.sd15()
        let perPicture = at512.unet + at512.vae + at512.text
        #expect(estimate.sampleFLOPs[1] == perPicture && estimate.sampleFLOPs[3] == perPicture)
        // 194k + 515k + 595k steps at 512², 237k at 256², 2048 pictures each.
        let expected = 2048 * (237_000 * estimate.sampleFLOPs[0] + 1_304_000 * perPicture)
        #expect(abs(estimate.totalFLOPs - expected) < 1e-9 * expected)
        #expect(estimate.totalFLOPs > 9.8e21 && estimate.totalFLOPs < 1.0e22)
        // Hours at 40% of 312 TFLOP/s, and the share of the peak 150,000 hours would mean.
        #expect(abs(estimate.gpuHours(utilisation: 0.4) - estimate.totalFLOPs / (0.4 * 312e12 * 3600)) < 1e-6)
        #expect(abs(estimate.impliedUtilisation - estimate.totalFLOPs / (150_000 * 3600 * 312e12)) < 1e-12)
    }

    @Test("the shapes model's recipe in FLOPs: 3 x (encode + decode) per picture, the pool once, 3 x (UNet + text) per latent")
    func shapesModelCost() throws {
        var recipe = TinyShapesRecipe()
        recipe.autoencoderSteps = 10; recipe.autoencoderBatch = 2; recipe.latentPool = 5
        recipe.diffusionSteps = 7; recipe.diffusionBatch = 3
        let cost = try TrainingCost.shapesModel(recipe)
        let vae = try AutoencoderKL.flops(configuration: TinyShapesModel.vae, height: 64, width: 64)
        let unet = UNet2DConditionModel.flopCount(configuration: TinyShapesModel.unet, latentHeight: 8, latentWidth: 8, batch: 1)
        #expect(cost.autoencoder == 3 * Double(vae.encode + vae.decode) * 20)
        #expect(cost.pool == Double(vae.encode) * 5)
        #expect(abs(cost.diffusion - 3 * (unet + 18_174_464) * 21) < 1)
    }

    @Test("backpropagation agrees with nudging single weights of the shapes UNet")
    func gradientProbe() throws {
        let parameters = try RandomWeights.parameters(seed: 3) { _ = try UNet2DConditionModel($0, configuration: TinyShapesModel.unet) }
        var generator = TorchGenerator(seed: 5)
        let batch = GradientProbe.Batch(latents: generator.randn([1, 4, 8, 8]), context: generator.randn([1, 77, 64]),
                                        timesteps: [600], noise: generator.randn([1, 4, 8, 8]))
        let probe = try GradientProbe(parameters: parameters, configuration: TinyShapesModel.unet, batch: batch,
                                      keys: ["conv_in.weight", "conv_out.bias"])
        #expect(probe.rows.map(\.key) == ["conv_in.weight", "conv_out.bias"])
        #expect(probe.parameterCount == parameters.values.reduce(0) { $0 + $1.count })
        for row in probe.rows {
            // The probed weight has its tensor's largest gradient, and nudging finds the same slope to 1%.
            #expect(abs(row.backprop) > 1e-4)
            #expect(abs(row.nudged - row.backprop) <= 0.01 * abs(row.backprop), "\(row.key): \(row.backprop) vs \(row.nudged)")
        }
        #expect(throws: LessonError.self) {
            _ = try GradientProbe(parameters: parameters, configuration: TinyShapesModel.unet, batch: batch, keys: ["no.such.weight"])
        }
    }

    @Test("losses by noise level: ranges of t, means over steps, and windowed curves")
    func lossByTimestep() {
        var byT = LossByTimestep(rangeWidth: 200)
        #expect(byT.rangeCount == 5 && byT.timesteps(ofRange: 4) == 800...999)
        byT.add(step: 1, [.init(timestep: 10, loss: 1), .init(timestep: 199, loss: 3), .init(timestep: 900, loss: 0.5)])
        byT.add(step: 2, [.init(timestep: 50, loss: 2)])
        byT.add(step: 3, [.init(timestep: 999, loss: 0.1)])
        #expect(byT.mean(range: 0, steps: 1...3) == 2)                   // (1 + 3 + 2) / 3
        #expect(byT.mean(range: 0, steps: 3...3) == nil)
        #expect(abs(byT.mean(range: 4, steps: 1...3)! - 0.3) < 1e-6)   // (0.5 + 0.1) / 2
        let curve = byT.curve(range: 0, window: 2)                      // steps 1-2, then 3 (no sample of range 0)
        #expect(curve.x == [2] && curve.y == [2])
        let high = byT.curve(range: 4, window: 2)
        #expect(high.x == [2, 3] && abs(high.y[0] - 0.5) < 1e-6 && abs(high.y[1] - 0.1) < 1e-6)
    }

    @Test("the data census finds no left-out pair and counts every picture once")
    func census() {
        let census = DataCensus(ShapesDataset(seed: 0), count: 2_000)
        let all = ShapeScene.Colour.allCases.flatMap { c in ShapeScene.Shape.allCases.map { census.count(c, $0) } }
        #expect(all.reduce(0, +) == 2_000)
        #expect(census.count(.green, .triangle) == 0 && census.count(.red, .square) == 0)
        #expect(ShapesDataset.trainingPairs.allSatisfy { census.count($0.0, $0.1) > 100 })   // about 200 each
    }

    @Test("durations in the unit a person would use, and FLOPs up to ZFLOP")
    func formats() {
        #expect(Format.duration(4.25) == "4.2 s" || Format.duration(4.25) == "4.3 s")
        #expect(Format.duration(200) == "3 min 20 s")
        #expect(Format.duration(5.5 * 3600) == "5.5 hours")
        #expect(Format.duration(12 * 86_400) == "12 days")
        #expect(Format.duration(3.4 * 365.25 * 86_400) == "3.4 years")
        #expect(Format.duration(9_778 * 365.25 * 86_400) == "9,778 years")
        #expect(Format.flops(gflop: 401.1e9) == "401.1 EFLOP")
        #expect(Format.flops(gflop: 9.9e12) == "9.9 ZFLOP")
    }
}
