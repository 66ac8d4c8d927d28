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

/// `reference/unet_gradients.json`: the tiny UNet's training loss and its gradients under PyTorch
/// autograd (see Tools/reference/make_gradient_reference.py).
struct GradientReference: Decodable {
    struct Fingerprint: Decodable { var shape: [Int], norm: Double, dot: Double, head: [Double] }
    var timesteps: [Int]
    var latents: [Float], noise: [Float], context: [Float]
    var loss: Float
    var gradients: [String: Fingerprint]

    static func load() throws -> GradientReference {
        let url = UNetFixtures.root.appendingPathComponent("reference/unet_gradients.json")
        return try JSONDecoder().decode(GradientReference.self, from: Data(contentsOf: url))
    }
}

@Suite("Training the tiny UNet against PyTorch autograd")
struct UNetGradientReferenceTests {
    @Test("the loss and every parameter's gradient (length, a fixed projection, the first numbers) match autograd")
    func matchesAutograd() throws {
        let reference = try GradientReference.load()
        let trainer = try UNetTrainerTests.trainer(learningRate: 0)
        let latents = Tensor(shape: [2, 4, 8, 8], scalars: reference.latents)
        let noise = Tensor(shape: [2, 4, 8, 8], scalars: reference.noise)
        let context = Tensor(shape: [2, 77, 4], scalars: reference.context)
        let (loss, gradients) = try trainer.lossAndGradients(latents: latents, context: context,
                                                             timesteps: reference.timesteps, noise: noise)
        // Tolerances: float32 on both sides, sums in other orders through ~70 layers forward and
        // back; the loss (a mean of 512 squares) agrees to ~1e-6 relative, each gradient to ~1e-5
        // of its length. 1e-4 of the length leaves a 10x margin and is far below what a missing
        // path or a wrong factor gives (1e-2 and more).
        #expect(abs(loss - reference.loss) < 1e-5 * reference.loss, "loss \(loss) vs \(reference.loss)")
        #expect(Set(gradients.keys) == Set(reference.gradients.keys))
        var worst = 0.0
        for (key, expected) in reference.gradients {
            let g = try #require(gradients[key], "no gradient for \(key)")
            #expect(g.shape == expected.shape, "\(key)")
            let values = g.scalars.map(Double.init)
            let norm = values.reduce(0) { $0 + $1 * $1 }.squareRoot()
            let dot = values.enumerated().reduce(0) { $0 + $1.element * sin(0.7 * Double($1.offset) + 0.3) }
            let scale = max(expected.norm, 1e-6)
            let errors = [abs(norm - expected.norm), abs(dot - expected.dot)] + zip(values, expected.head).map { abs($0 - $1) }
            worst = max(worst, errors.max()! / scale)
            #expect(errors.allSatisfy { $0 <= 1e-4 * scale }, "\(key): norm \(norm) vs \(expected.norm), dot \(dot) vs \(expected.dot)")
        }
        print("UNet gradients vs autograd: loss \(loss) vs \(reference.loss), worst error \(worst) of a gradient's length")
    }
}
