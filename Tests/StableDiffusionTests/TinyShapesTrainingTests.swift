import Foundation
import StableDiffusion
import TensorCore
import Testing

/// The shapes model's training run on a miniature recipe (a few steps of two pictures each), so
/// the whole recipe, saving and resuming included, runs in seconds.
@Suite("Training the shapes model: phases, resuming, the diffusers folder it writes")
struct TinyShapesTrainingTests {
    static var smallRecipe: TinyShapesRecipe {
        var recipe = TinyShapesRecipe()
        recipe.seed = 5
        recipe.autoencoderSteps = 3
        recipe.autoencoderBatch = 2
        recipe.latentPool = 6
        recipe.diffusionSteps = 3
        recipe.diffusionBatch = 2
        recipe.warmupSteps = 2
        return recipe
    }

    static func temporaryFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("shapes-training-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    static func finish(_ run: TinyShapesTraining) throws {
        while run.phase != .finished { try run.step() }
    }

    /// The largest difference between two runs' released weights, over every tensor of every network.
    static func largestDifference(_ a: TinyShapesTraining, _ b: TinyShapesTraining) -> Float {
        let (x, y) = (a.releasedWeights(), b.releasedWeights())
        #expect(Set(x.keys) == Set(y.keys))
        var largest: Float = 0
        for (component, tensors) in x {
            #expect(Set(tensors.keys) == Set(y[component]!.keys))
            for (key, tensor) in tensors { largest = max(largest, tensor.maxAbsDifference(y[component]![key]!)) }
        }
        return largest
    }

    @Test("the phases follow SD's recipe: autoencoder, then the scaling factor, then diffusion; losses are finite")
    func phases() throws {
        let run = try TinyShapesTraining(recipe: Self.smallRecipe)
        #expect(run.phase == .autoencoder && run.scalingFactor == nil)
        var reports: [TinyShapesTraining.StepReport] = []
        while run.phase != .finished { reports.append(try run.step()) }
        #expect(reports.map(\.phase) == [.autoencoder, .autoencoder, .autoencoder, .diffusion, .diffusion, .diffusion])
        #expect(reports.map(\.step) == [1, 2, 3, 1, 2, 3])
        #expect(reports.prefix(3).allSatisfy { $0.losses.map(\.name) == ["L1", "MSE", "KL"] })
        #expect(reports.suffix(3).allSatisfy { $0.losses.map(\.name) == ["MSE"] })
        #expect(reports.allSatisfy { $0.losses.allSatisfy { $0.value.isFinite && $0.value > 0 } })
        // A young VAE's latents are spread unevenly; the factor makes them spread 1, whatever it is.
        let factor = try #require(run.scalingFactor)
        #expect(factor.isFinite && factor > 0)
        #expect(run.configuration.vae.scalingFactor == factor)
        #expect(throws: TrainingError.self) { try run.step() }
    }

    @Test("a run saved and resumed in each phase ends with exactly the weights of an uninterrupted run")
    func resumingIsExact() throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let whole = try TinyShapesTraining(recipe: Self.smallRecipe)
        try Self.finish(whole)

        let first = try TinyShapesTraining(recipe: Self.smallRecipe)
        try first.step()
        try first.step()
        let inAutoencoder = folder.appendingPathComponent("a.safetensors").path
        try first.saveState(to: inAutoencoder)
        let second = try TinyShapesTraining(resuming: inAutoencoder)
        #expect(second.phase == .autoencoder && second.stepsDone == 2)
        try second.step()
        try second.step()
        #expect(second.phase == .diffusion && second.stepsDone == 1)
        let inDiffusion = folder.appendingPathComponent("b.safetensors").path
        try second.saveState(to: inDiffusion)
        let third = try TinyShapesTraining(resuming: inDiffusion)
        #expect(third.scalingFactor == whole.scalingFactor)
        try Self.finish(third)
        #expect(Self.largestDifference(whole, third) == 0)

        // And the runs did train: another seed ends elsewhere.
        var other = Self.smallRecipe
        other.seed = 6
        let elsewhere = try TinyShapesTraining(recipe: other)
        try Self.finish(elsewhere)
        #expect(Self.largestDifference(whole, elsewhere) > 1e-3)
    }

    @Test("a state file that is not one, is damaged or claims too many steps is refused by name")
    func refusedStates() throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let plain = folder.appendingPathComponent("plain.safetensors").path
        try SafeTensorsWriter.write(["w": Tensor(shape: [2], scalars: [1, 2])], to: plain)
        #expect(throws: TrainingError.state("'\(plain)' is a safetensors file but not a saved training run of the shapes model")) {
            try TinyShapesTraining(resuming: plain)
        }

        let run = try TinyShapesTraining(recipe: Self.smallRecipe)
        try run.step()
        let good = folder.appendingPathComponent("good.safetensors").path
        try run.saveState(to: good)
        let (records, metadata) = try SafeTensors.readWithMetadata(path: good)

        var claims = metadata
        claims["steps_done"] = "3"
        let tooFar = folder.appendingPathComponent("too-far.safetensors").path
        try SafeTensorsWriter.write(records, to: tooFar, metadata: claims)
        #expect(throws: TrainingError.state("'\(tooFar)' claims 3 of 3 autoencoder steps done")) {
            try TinyShapesTraining(resuming: tooFar)
        }

        var lessWeights = records
        lessWeights["vae/decoder.conv_out.bias"] = nil
        let missing = folder.appendingPathComponent("missing.safetensors").path
        try SafeTensorsWriter.write(lessWeights, to: missing, metadata: metadata)
        #expect(throws: TrainingError.self) { try TinyShapesTraining(resuming: missing) }

        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        let truncated = folder.appendingPathComponent("truncated.safetensors").path
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: truncated))
        #expect(throws: CheckpointError.self) { try TinyShapesTraining(resuming: truncated) }
    }

    @Test("the written folder opens as a checkpoint: same configuration, tokenizer and weights (to float16)")
    func writtenFolder() throws {
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = try TinyShapesTraining(recipe: Self.smallRecipe)
        #expect(throws: TrainingError.self) { try run.writeModel(to: folder) }   // no UNet yet
        try Self.finish(run)
        try run.writeModel(to: folder)

        let pipeline = try StableDiffusionPipeline(checkpoint: folder.path)
        #expect(pipeline.configuration == run.configuration)
        let tokenizer = try pipeline.tokenizer()
        for caption in ShapesDataset.allCaptions.prefix(12) {
            #expect(tokenizer.tokenize(caption).ids == run.tokenizer.tokenize(caption).ids)
        }
        // Weights are stored in float16: each within half a float16 step (2⁻¹¹ relative) of the run's.
        let released = run.releasedWeights()[.unet]!
        let store = pipeline.checkpoint.stores[.unet]!
        #expect(Set(store.keys) == Set(released.keys))
        for (key, tensor) in released {
            let stored = store.record(key)!.tensor()
            let scale = tensor.scalars.map(abs).max() ?? 0
            #expect(stored.maxAbsDifference(tensor) <= scale / 2048 + 1e-7, "\(key)")
        }
        let picture = try pipeline.generate(GenerationRequest(prompt: "a blue circle", steps: 2, width: 64, height: 64)).image
        #expect(picture.shape == [1, 3, 64, 64])
    }

    @Test("recipes with numbers that cannot work are refused by name")
    func badRecipes() {
        var recipe = TinyShapesRecipe()
        recipe.diffusionBatch = 0
        #expect(throws: TrainingError.setting("diffusion batch", value: "0", mustBe: "a whole number from 1 to 10,000,000")) {
            try recipe.validate()
        }
        recipe = TinyShapesRecipe()
        recipe.autoencoderLearningRate = .nan
        #expect(throws: TrainingError.self) { try TinyShapesTraining(recipe: recipe) }
        recipe = TinyShapesRecipe()
        recipe.captionDropout = 1.5
        #expect(throws: TrainingError.setting("caption dropout", value: "1.5", mustBe: "in [0, 1]")) { try recipe.validate() }
    }
}
