import Foundation
import StableDiffusion
import TensorCore
import Testing

@Suite("Training the VAE, and the text encoder together with the UNet")
struct FirstStageAndTextTrainingTests {
    static func floatWeights(_ store: WeightStore) -> [String: Tensor] {
        store.keys.reduce(into: [:]) { $0[$1] = store.record($1)!.tensor() }
    }

    @Test("the tiny VAE learns to redraw two shape pictures: the L1 error falls more than twofold in 30 steps")
    func vaeOverfits() throws {
        var trainer = try VAETrainer(parameters: Self.floatWeights(try VAEFixture.store()),
                                     configuration: try VAEFixture.configuration(), optimiser: AdamW(learningRate: 3e-3))
        let pictures = ShapesDataset(seed: 0, size: 32).batch(0..<2).pixels
        var generator = TorchGenerator(seed: 0)
        var errors: [Float] = []
        for _ in 0..<30 { errors.append(try trainer.step(images: pictures, generator: &generator).reconstruction) }
        print("VAE overfit: L1 \(errors[0]) → \(errors.last!)")
        #expect(errors.last! * 2 < errors[0])
        #expect(throws: TrainingError.self) { try trainer.step(images: Tensor(repeating: 0, shape: [2, 1, 32, 32]), generator: &generator) }
        #expect(throws: TrainingError.self) {
            _ = try VAETrainer(parameters: [:], configuration: try VAEFixture.configuration(), optimiser: AdamW(learningRate: 1e-3),
                               klWeight: -1)
        }
    }

    @Test("text encoder and UNet learn together: the loss at a fixed t and ε falls, both networks' weights move")
    func jointTraining() throws {
        let root = UNetFixtures.root.appendingPathComponent("tiny/diffusers")
        let textWeights = Self.floatWeights(WeightStore(try SafeTensors.read(path: root.appendingPathComponent("text_encoder/model.safetensors").path)))
        let textConfiguration = try CLIPTextConfiguration.load(root.appendingPathComponent("text_encoder/config.json"))
        let unet = try UNetTrainerTests.trainer(learningRate: 3e-3)
        var trainer = try TextToImageTrainer(unet: unet, textParameters: textWeights, textConfiguration: textConfiguration,
                                             tokenizer: try CLIPTokenizer(), optimiser: AdamW(learningRate: 3e-3))
        var data = TorchGenerator(seed: 5), generator = TorchGenerator(seed: 6)
        let latents = data.randn([2, 4, 8, 8]), captions = ["a red circle", "a blue square at the top"]
        let fixedNoise = data.randn([2, 4, 8, 8])
        // Each step draws its own t, whose loss differs by t; the loss is compared at one t and ε.
        func loss(_ trainer: TextToImageTrainer) throws -> Float {
            let context = try trainer.textEncoder()(captions.map { trainer.tokenizer.tokenize($0).ids })
            return try trainer.unet.lossAndGradients(latents: latents, context: context, timesteps: [300, 700], noise: fixedNoise).loss
        }
        let before = try loss(trainer)
        for _ in 0..<40 { try trainer.step(latents: latents, captions: captions, generator: &generator) }
        let after = try loss(trainer)
        print("UNet + text encoder: loss at t = 300, 700 \(before) → \(after)")
        // Fresh t and ε at every step make this harder than overfitting one fixed batch: 40 steps
        // take the loss at the fixed pair to about half.
        #expect(after < 0.7 * before)
        for key in ["text_model.final_layer_norm.weight", "text_model.encoder.layers.0.self_attn.q_proj.weight"] {
            #expect(trainer.textParameters[key]! != textWeights[key]!, "\(key) did not move")
        }
        #expect(trainer.unet.optimiser.steps == 40 && trainer.textUpdate.optimiser.steps == 40)
        #expect(throws: TrainingError.self) { try trainer.step(latents: latents, captions: ["one caption"], generator: &generator) }
        #expect(throws: TrainingError.self) {
            _ = try TextToImageTrainer(unet: unet, textParameters: textWeights, textConfiguration: textConfiguration,
                                       tokenizer: try CLIPTokenizer(), optimiser: AdamW(learningRate: 1e-3), captionDropout: 1.5)
        }
    }
}
