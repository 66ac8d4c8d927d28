import Foundation
import StableDiffusion
import TensorCore
import Testing

@Suite("Training the tiny UNet")
struct UNetTrainerTests {
    /// The tiny fixture UNet (SD 1.5's structure, 16 channels) as Float32 master weights.
    static func trainer(learningRate: Float) throws -> UNetTrainer {
        let parameters = try UNetFixtures.records().mapValues { $0.tensor() }
        return UNetTrainer(parameters: parameters, configuration: try UNetFixtures.configuration(),
                           optimiser: AdamW(learningRate: learningRate))
    }

    @Test("overfitting one fixed batch drives the noise-prediction loss down more than tenfold")
    func overfitOneBatch() throws {
        var trainer = try Self.trainer(learningRate: 3e-3)
        var generator = TorchGenerator(seed: 1)
        let latents = generator.randn([2, 4, 8, 8]), context = generator.randn([2, 77, 4]), noise = generator.randn([2, 4, 8, 8])
        var losses: [Float] = []
        for _ in 0..<40 {
            losses.append(try trainer.step(latents: latents, context: context, timesteps: [300, 700], noise: noise))
        }
        print("UNet overfit: loss \(losses[0]) → \(losses.last!) after \(losses.count) steps")
        #expect(losses.last! * 10 < losses[0])
        #expect(trainer.optimiser.steps == 40)
    }

    @Test("the training step's gradient points downhill: a small step against it lowers the loss")
    func gradientPointsDownhill() throws {
        let trainer = try Self.trainer(learningRate: 1e-3)
        var generator = TorchGenerator(seed: 2)
        let latents = generator.randn([1, 4, 8, 8]), context = generator.randn([1, 77, 4]), noise = generator.randn([1, 4, 8, 8])
        let (loss, gradients) = try trainer.lossAndGradients(latents: latents, context: context, timesteps: [500], noise: noise)
        // Every weight the UNet loaded has a gradient.
        #expect(gradients.keys == trainer.parameters.keys.sorted())
        // θ − η·g with a small η: the loss falls by about η·‖g‖² (first-order Taylor).
        let eta: Float = 1e-3
        let squaredNorm = gradients.tensors.values.reduce(0.0) { $0 + $1.scalars.reduce(0.0) { $0 + Double($1 * $1) } }
        let moved = trainer.parameters.merging(gradients.tensors.mapValues { $0 * -eta }) { $0 + $1 }
        let after = UNetTrainer(parameters: moved, configuration: trainer.configuration, optimiser: AdamW(learningRate: 0))
        let (newLoss, _) = try after.lossAndGradients(latents: latents, context: context, timesteps: [500], noise: noise)
        let predicted = Double(eta) * squaredNorm
        print("UNet descent: loss \(loss) → \(newLoss), predicted drop \(predicted)")
        #expect(abs(Double(loss - newLoss) - predicted) < 0.1 * predicted)
    }
}
