import Foundation
import StableDiffusion
import TensorCore
import Testing

@Suite("Training the tiny UNet")
struct UNetTrainerTests {
    /// The tiny fixture UNet (SD 1.5's structure, 16 channels) as Float32 master weights.
    static func trainer(learningRate: Float) throws -> UNetTrainer {
        let parameters = try UNetFixtures.records().mapValues { $0.tensor() }
        return try UNetTrainer(parameters: parameters, configuration: try UNetFixtures.configuration(),
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

    @Test("each sample's own loss is kept with its timestep, and the step's loss is their mean")
    func perSampleLosses() throws {
        var trainer = try Self.trainer(learningRate: 1e-3)
        var generator = TorchGenerator(seed: 2)
        let latents = generator.randn([3, 4, 8, 8]), context = generator.randn([3, 77, 4]), noise = generator.randn([3, 4, 8, 8])
        // Sample 1 gets zero latents: at t = 999 x_t is nearly all noise, so its loss differs from the others'.
        var scalars = latents.scalars
        for i in 256..<512 { scalars[i] = 0 }
        let loss = try trainer.step(latents: Tensor(shape: latents.shape, scalars: scalars), context: context,
                                    timesteps: [10, 999, 500], noise: noise)
        #expect(trainer.lastSamples.map(\.timestep) == [10, 999, 500])
        let mean = trainer.lastSamples.map(\.loss).reduce(0, +) / 3
        #expect(abs(mean - loss) <= 1e-5 * loss, "mean of samples \(mean), step loss \(loss)")
        #expect(Set(trainer.lastSamples.map(\.loss)).count == 3)
    }

    @Test("trained weights saved in float32 load back as the same UNet; in float16 as its rounded weights; a bad path writes nothing")
    func saveAndLoad() throws {
        var trainer = try Self.trainer(learningRate: 1e-3)
        var generator = TorchGenerator(seed: 4)
        let latents = generator.randn([1, 4, 8, 8]), context = generator.randn([1, 77, 4]), noise = generator.randn([1, 4, 8, 8])
        try trainer.step(latents: latents, context: context, timesteps: [400], noise: noise)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("unet-save-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }

        func loaded(_ name: String) throws -> UNet2DConditionModel {
            let store = WeightStore(try SafeTensors.read(path: folder.appendingPathComponent(name).path))
            let unet = try UNet2DConditionModel(Weights(store), configuration: trainer.configuration)
            try store.checkAllUsed()
            return unet
        }
        let expected = try trainer.unet()(latents, timestep: 400, encoderHiddenStates: context)
        try trainer.save(to: folder.appendingPathComponent("unet.safetensors").path)
        #expect(try loaded("unet.safetensors")(latents, timestep: 400, encoderHiddenStates: context) == expected)

        try trainer.save(to: folder.appendingPathComponent("unet-fp16.safetensors").path, precision: .float16)
        let records = try SafeTensors.read(path: folder.appendingPathComponent("unet-fp16.safetensors").path)
        let key = "down_blocks.0.resnets.0.conv1.weight"
        #expect(records[key]!.type == .float16)
        #expect(records[key]!.tensor() == HalfTensor(rounding: trainer.parameters[key]!, to: .float16).widened())

        let badPath = folder.appendingPathComponent("no/such/folder/unet.safetensors").path
        #expect(throws: CheckpointError.self) { try trainer.save(to: badPath) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() == ["unet-fp16.safetensors", "unet.safetensors"])
    }

    @Test("settings training cannot use are refused at the start, each with a message naming it")
    func badSettings() throws {
        let parameters = try UNetFixtures.records().mapValues { $0.tensor() }
        let configuration = try UNetFixtures.configuration()
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "accepted" } catch { return "\(error)" }
        }
        for rate: Float in [0, -1e-4, .nan, .infinity] {
            #expect(message { _ = try AdamW(validating: rate) }.contains("learning rate must be a positive number"))
            #expect(message { _ = try UNetTrainer(parameters: parameters, configuration: configuration,
                                                  optimiser: AdamW(learningRate: rate)) }.contains("learning rate"))
        }
        #expect(message { _ = try AdamW(validating: 1e-4, beta2: 1) }.contains("AdamW β₂ must be in [0, 1), got 1.0"))
        #expect(message { _ = try AdamW(validating: 1e-4, weightDecay: -0.1) }.contains("weight decay must be 0 or more"))
        #expect(message { _ = try UNetTrainer(parameters: parameters, configuration: configuration, optimiser: AdamW(learningRate: 1e-4),
                                              maxGradientNorm: 0) }.contains("gradient-norm limit must be positive"))
        #expect(message { _ = try UNetTrainer(parameters: parameters, configuration: configuration, optimiser: AdamW(learningRate: 1e-4),
                                              emaDecay: 1) }.contains("EMA decay must be in [0, 1)"))
        var missing = parameters
        missing["conv_in.weight"] = nil
        #expect(message { _ = try UNetTrainer(parameters: missing, configuration: configuration,
                                              optimiser: AdamW(learningRate: 1e-4)) }.contains("conv_in.weight"))
    }

    @Test("a batch that does not fit the network is refused before anything changes, naming what is wrong")
    func badBatches() throws {
        var trainer = try Self.trainer(learningRate: 1e-3)
        let before = trainer.parameters
        var generator = TorchGenerator(seed: 2)
        let latents = generator.randn([2, 4, 8, 8]), context = generator.randn([2, 77, 4]), noise = generator.randn([2, 4, 8, 8])
        let cases: [(Tensor, Tensor, [Int], Tensor, String)] = [
            (generator.randn([2, 3, 8, 8]), context, [1, 2], noise, "latents must be (batch, 4, height, width)"),
            (generator.randn([2, 4, 12, 8]), context, [1, 2], generator.randn([2, 4, 12, 8]), "multiples of 8"),
            (generator.randn([0, 4, 8, 8]), generator.randn([0, 77, 4]), [], generator.randn([0, 4, 8, 8]), "batch size must be at least 1"),
            (latents, context, [1, 2], generator.randn([2, 4, 8, 4]), "noise [2, 4, 8, 4] for latents [2, 4, 8, 8]"),
            (latents, generator.randn([2, 77, 5]), [1, 2], noise, "text vectors must be (2, tokens, 4)"),
            (latents, context, [1], noise, "1 timesteps for 2 samples"),
            (latents, context, [1, 1000], noise, "timestep 1000 is outside"),
        ]
        for (latents, context, timesteps, noise, expected) in cases {
            do {
                try trainer.step(latents: latents, context: context, timesteps: timesteps, noise: noise)
                Issue.record("accepted a batch that should fail with '\(expected)'")
            } catch {
                #expect("\(error)".contains(expected), "\(error)")
            }
        }
        #expect(trainer.optimiser.steps == 0)
        #expect(trainer.parameters == before)
    }

    @Test("a seed fixes the run; the moving average lags behind the weights and is what a release saves")
    func seededRunAndAverage() throws {
        let parameters = try UNetFixtures.records().mapValues { $0.tensor() }
        let configuration = try UNetFixtures.configuration()
        let key = "conv_in.weight"
        func run(seed: UInt64) throws -> (trainer: UNetTrainer, path: [Tensor]) {
            var trainer = try UNetTrainer(parameters: parameters, configuration: configuration,
                                          optimiser: AdamW(learningRate: 1e-3), emaDecay: 0.5)
            var data = TorchGenerator(seed: 9), generator = TorchGenerator(seed: seed)
            let latents = data.randn([2, 4, 8, 8]), context = data.randn([2, 77, 4])
            var path: [Tensor] = []
            for _ in 0..<3 {
                try trainer.step(latents: latents, context: context, generator: &generator)
                path.append(trainer.parameters[key]!)
            }
            return (trainer, path)
        }
        let (first, path) = try run(seed: 1), again = try run(seed: 1).trainer, other = try run(seed: 2).trainer
        #expect(first.parameters == again.parameters)
        #expect(first.parameters != other.parameters)

        // Update k keeps d_k = min(0.5, (1+k)/(10+k)) of the old average (2/11, 3/12, 4/13 here) and
        // takes the rest from the new weights, so the average still remembers the untrained ones.
        var expected = parameters[key]!
        for (k, weights) in path.enumerated() {
            let d = min(0.5, Float(2 + k) / Float(11 + k))
            expected = Reference.zip(expected, weights) { $0 - (1 - d) * ($0 - $1) }
        }
        let average = first.averaged!.shadow[key]!
        #expect(average.maxAbsDifference(expected) < 1e-7)
        #expect(average.maxAbsDifference(first.parameters[key]!) > 1e-4)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("ema-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        try first.save(to: file, averaged: true)
        #expect(try SafeTensors.read(path: file)[key]!.tensor() == first.averaged!.shadow[key]!)
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
        let after = try UNetTrainer(parameters: moved, configuration: trainer.configuration, optimiser: AdamW(learningRate: 1e-3))
        let (newLoss, _) = try after.lossAndGradients(latents: latents, context: context, timesteps: [500], noise: noise)
        let predicted = Double(eta) * squaredNorm
        print("UNet descent: loss \(loss) → \(newLoss), predicted drop \(predicted)")
        #expect(abs(Double(loss - newLoss) - predicted) < 0.1 * predicted)
    }
}

/// A parameter's gradient as `Tools/reference/make_gradient_reference.py` records it from PyTorch
/// autograd: its shape, its length, its dot product with `r_i = sin(0.7 i + 0.3)`, its first numbers.
struct GradientFingerprint: Decodable {
    var shape: [Int], norm: Double, dot: Double, head: [Double]
}

/// Holds every gradient to its autograd fingerprint and returns the worst error relative to a
/// gradient's length. Parameter names are compared without `stripping` (a prefix one side has).
///
/// Tolerance: float32 on both sides, sums in other orders through every layer forward and back;
/// a gradient agrees to ~1e-5 of its length. 1e-4 leaves a 10x margin and is far below what a
/// missing path or a wrong factor gives (1e-2 and more). A few gradients are zero in exact
/// arithmetic (an attention key's bias adds the same amount to all of a query's scores, which the
/// softmax ignores), so both sides hold only rounding there: lengths below 1% of the network's
/// largest gradient are measured against that instead.
@discardableResult
func expectMatchesAutograd(_ gradients: Gradients, _ reference: [String: GradientFingerprint], stripping prefix: String = "",
                           sourceLocation: SourceLocation = #_sourceLocation) -> Double {
    func name(_ key: String) -> String { key.hasPrefix(prefix) ? String(key.dropFirst(prefix.count)) : key }
    let ours = Dictionary(uniqueKeysWithValues: gradients.tensors.map { (name($0.key), $0.value) })
    let theirs = Dictionary(uniqueKeysWithValues: reference.map { (name($0.key), $0.value) })
    #expect(Set(ours.keys) == Set(theirs.keys), sourceLocation: sourceLocation)
    var worst = 0.0
    let floor = 1e-2 * (theirs.values.map(\.norm).max() ?? 0)
    for (key, expected) in theirs {
        guard let g = ours[key] else { continue }
        #expect(g.shape == expected.shape, "\(key)", sourceLocation: sourceLocation)
        let values = g.scalars.map(Double.init)
        let norm = values.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let dot = values.enumerated().reduce(0) { $0 + $1.element * sin(0.7 * Double($1.offset) + 0.3) }
        let scale = max(expected.norm, floor)
        let errors = [abs(norm - expected.norm), abs(dot - expected.dot)] + zip(values, expected.head).map { abs($0 - $1) }
        worst = max(worst, errors.max()! / scale)
        #expect(errors.allSatisfy { $0 <= 1e-4 * scale }, "\(key): norm \(norm) vs \(expected.norm), dot \(dot) vs \(expected.dot)",
                sourceLocation: sourceLocation)
    }
    return worst
}

/// One of the `reference/*_gradients.json` files.
func gradientReference<Reference: Decodable>(_ file: String, as type: Reference.Type) throws -> Reference {
    try JSONDecoder().decode(type, from: Data(contentsOf: UNetFixtures.root.appendingPathComponent("reference/\(file)")))
}

@Suite("Training the tiny model's three networks against PyTorch autograd")
struct GradientReferenceTests {
    struct UNetCase: Decodable {
        var timesteps: [Int], latents: [Float], noise: [Float], context: [Float], loss: Float
        var gradients: [String: GradientFingerprint]
    }

    @Test("UNet: the noise-prediction loss and every parameter's gradient")
    func unet() throws {
        let reference = try gradientReference("unet_gradients.json", as: UNetCase.self)
        let trainer = try UNetTrainerTests.trainer(learningRate: 1e-4)   // no step is taken
        let (loss, gradients) = try trainer.lossAndGradients(
            latents: Tensor(shape: [2, 4, 8, 8], scalars: reference.latents),
            context: Tensor(shape: [2, 77, 4], scalars: reference.context),
            timesteps: reference.timesteps, noise: Tensor(shape: [2, 4, 8, 8], scalars: reference.noise))
        #expect(abs(loss - reference.loss) < 1e-5 * reference.loss, "loss \(loss) vs \(reference.loss)")
        let worst = expectMatchesAutograd(gradients, reference.gradients)
        print("UNet vs autograd: loss \(loss) vs \(reference.loss), worst gradient error \(worst) of its length")
    }

    struct TextEncoderCase: Decodable {
        var ids: [[Int]], weights: [Float], loss: Float
        var gradients: [String: GradientFingerprint]
    }

    @Test("CLIP text encoder: a weighted sum of the last hidden state, and every parameter's gradient")
    func textEncoder() throws {
        let reference = try gradientReference("text_encoder_gradients.json", as: TextEncoderCase.self)
        let root = UNetFixtures.root
        let store = WeightStore(try SafeTensors.read(path: root.appendingPathComponent("tiny/diffusers/text_encoder/model.safetensors").path))
        let configuration = try CLIPTextConfiguration.load(root.appendingPathComponent("tiny/diffusers/text_encoder/config.json"))
        let model = try CLIPTextModel(Weights(WeightStore(tensors: store.keys.reduce(into: [:]) {
            $0[$1] = store.record($1)!.tensor()
        }))["text_model"], configuration: configuration)
        let (output, saved) = model.trainingForward(reference.ids)
        let weights = Tensor(shape: output.shape, scalars: reference.weights)
        let loss = zip(output.scalars, weights.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        #expect(abs(loss - Double(reference.loss)) < 1e-5 * abs(Double(reference.loss)) + 1e-5)
        var gradients = Gradients()
        model.backward(weights, saved: saved, gradients: &gradients)
        let worst = expectMatchesAutograd(gradients, reference.gradients, stripping: "text_model.")
        print("CLIP vs autograd: loss \(loss) vs \(reference.loss), worst gradient error \(worst) of its length")
    }

    struct VAECase: Decodable {
        var image: [Float], noise: [Float], loss: Float, kl: Float
        var gradients: [String: GradientFingerprint]
    }

    @Test("VAE: reconstruction (L1) plus KL through the sampled latent, and every parameter's gradient")
    func vae() throws {
        let reference = try gradientReference("vae_gradients.json", as: VAECase.self)
        let store = try VAEFixture.store()
        let tensors = store.keys.reduce(into: [String: Tensor]()) { $0[$1] = store.record($1)!.tensor() }
        let vae = try AutoencoderKL(Weights(WeightStore(tensors: tensors)), configuration: try VAEFixture.configuration())
        let image = Tensor(shape: [1, 3, 32, 32], scalars: reference.image)
        let (reconstruction, posterior, saved) = try vae.trainingForward(image, noise: Tensor(shape: [1, 4, 4, 4], scalars: reference.noise))
        let l1 = meanAbsoluteError(reconstruction, image), kl = gaussianKL(mean: posterior.mean, logvar: posterior.logvar)
        #expect(abs(kl.loss - reference.kl) < 1e-5 * reference.kl)
        #expect(abs(l1.loss + kl.loss - reference.loss) < 1e-5 * reference.loss)
        var gradients = Gradients()
        vae.backward(l1.gradient, dMean: kl.dMean, dLogvar: kl.dLogvar, saved: saved, gradients: &gradients)
        let worst = expectMatchesAutograd(gradients, reference.gradients)
        print("VAE vs autograd: loss \(l1.loss + kl.loss) vs \(reference.loss), worst gradient error \(worst) of its length")
    }
}
