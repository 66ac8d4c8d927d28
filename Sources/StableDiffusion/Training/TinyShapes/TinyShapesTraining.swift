import Foundation
import TensorCore

/// One run of `TinyShapesRecipe`, step by step, from random weights to a diffusers folder.
///
/// The run is a function of the recipe alone: scene `i` of step `k` is always the same picture,
/// and every random draw of a step comes from a generator seeded by (seed, phase, step). So a run
/// saved with `saveState` and continued with `init(resuming:)` takes exactly the steps the
/// uninterrupted run would have taken, and the same seed on the same number of threads gives the
/// same weights.
///
/// ```swift
/// let run = try TinyShapesTraining(recipe: TinyShapesRecipe())
/// while run.phase != .finished {
///     let report = try run.step()                    // e.g. autoencoder 12/900: L1 0.081, KL 312
///     if report.step % 100 == 0 { try run.saveState(to: "state.safetensors") }
/// }
/// try run.writeModel(to: URL(fileURLWithPath: "tiny-shapes"))
/// ```
public final class TinyShapesTraining {
    public enum Phase: String, Sendable {
        case autoencoder, diffusion, finished
    }

    /// What one step did.
    public struct StepReport: Sendable {
        public let phase: Phase
        /// The step just taken (from 1) and the phase's step count.
        public let step: Int, steps: Int
        /// The losses before the step: ("L1", ...), ("KL", ...) or ("MSE", ...).
        public let losses: [(name: String, value: Float)]
        /// In the diffusion phase, each latent's timestep and own squared error.
        public var samples: [UNetTrainer.SampleLoss] = []
    }

    /// The recipe; a phase ended early by `endPhaseEarly` has its step count lowered to the steps taken.
    public private(set) var recipe: TinyShapesRecipe
    public let tokenizer: CLIPTokenizer
    /// The phase of the next step, and how many of its steps are done.
    public private(set) var phase: Phase
    public private(set) var stepsDone: Int

    private var autoencoder: VAETrainer?
    private var diffusion: TextToImageTrainer?
    /// The finished VAE (its moving average), once the autoencoder phase is over.
    public private(set) var finishedVAE: [String: Tensor]?
    /// One over the standard deviation of the pool's latents, once measured.
    public private(set) var scalingFactor: Float?
    private var pool: LatentPool?

    /// A fresh run: random weights for the VAE; the other two networks start after it.
    public init(recipe: TinyShapesRecipe) throws {
        try recipe.validate()
        self.recipe = recipe
        tokenizer = try TinyShapesModel.tokenizer()
        phase = .autoencoder
        stepsDone = 0
        var start = try RandomWeights.parameters(seed: recipe.seed &+ 1) {
            _ = try AutoencoderKL($0, configuration: TinyShapesModel.vae)
        }
        if let logVariance = recipe.startLogVariance, var bias = start["quant_conv.bias"] {
            // quant_conv's outputs are (mean, log-variance), `latent` channels each.
            let latent = TinyShapesModel.vae.latentChannels
            for c in latent..<2 * latent { bias.scalars[c] = logVariance }
            start["quant_conv.bias"] = bias
        }
        autoencoder = try VAETrainer(parameters: start, configuration: TinyShapesModel.vae,
                                     optimiser: AdamW(validating: recipe.autoencoderLearningRate), emaDecay: recipe.emaDecay,
                                     squaredErrorWeight: recipe.squaredErrorWeight)
        try advanceIfPhaseDone()
    }

    /// The number of steps of a phase.
    public func steps(of phase: Phase) -> Int { recipe.steps(of: phase) }

    /// Ends the current phase after the steps already taken (a time limit ran out), recording the
    /// shorter count in `recipe` so the run can be repeated exactly.
    public func endPhaseEarly() throws {
        switch phase {
        case .autoencoder: recipe.autoencoderSteps = stepsDone
        case .diffusion: recipe.diffusionSteps = stepsDone
        case .finished: return
        }
        try advanceIfPhaseDone()
    }

    /// The model's configuration, with the scaling factor once it is measured.
    public var configuration: StableDiffusionConfiguration {
        var vae = TinyShapesModel.vae
        vae.scalingFactor = scalingFactor ?? vae.scalingFactor
        return StableDiffusionConfiguration(textEncoder: TinyShapesModel.textEncoder(vocabularySize: tokenizer.vocabularySize),
                                            unet: TinyShapesModel.unet, vae: vae, scheduler: .sd15)
    }

    // MARK: Steps

    /// Takes the next step of the current phase; after a phase's last step the next phase is set
    /// up (the scaling factor measured and the pool encoded between the two).
    @discardableResult
    public func step() throws -> StepReport {
        let k = stepsDone + 1
        let seed = stepSeed(phase: phase, step: k)
        var generator = TorchGenerator(seed: seed)
        let report: StepReport
        switch phase {
        case .autoencoder:
            autoencoder!.update.optimiser.learningRate = recipe.learningRate(recipe.autoencoderLearningRate, step: k)
            let b = recipe.autoencoderBatch
            let (pixels, _) = ShapesDataset(seed: recipe.seed).batch((k - 1) * b..<k * b)
            let (l1, kl, l2) = try autoencoder!.step(images: pixels, generator: &generator)
            report = StepReport(phase: .autoencoder, step: k, steps: recipe.autoencoderSteps,
                                losses: [("L1", l1), ("MSE", l2), ("KL", kl)])
        case .diffusion:
            diffusion!.setLearningRate(recipe.learningRate(recipe.diffusionLearningRate, step: k))
            var picker = SplitMix64(seed: ~seed)
            let indices = (0..<recipe.diffusionBatch).map { _ in picker.below(pool!.count) }
            let latents = pool!.sample(indices, generator: &generator) * scalingFactor!
            let loss = try diffusion!.step(latents: latents, captions: indices.map { pool!.captions[$0] }, generator: &generator)
            report = StepReport(phase: .diffusion, step: k, steps: recipe.diffusionSteps, losses: [("MSE", loss)],
                                samples: diffusion!.unet.lastSamples)
        case .finished:
            throw TrainingError.setting("phase", value: "finished", mustBe: "unfinished to take a step")
        }
        stepsDone = k
        try advanceIfPhaseDone()
        return report
    }

    /// Every step's own random stream: (seed, phase, step) → a generator seed.
    private func stepSeed(phase: Phase, step: Int) -> UInt64 {
        var mixer = SplitMix64(seed: recipe.seed ^ ((phase == .autoencoder ? 0xA0 : 0xD1) << 56) ^ UInt64(step))
        return mixer.next()
    }

    private func advanceIfPhaseDone() throws {
        while phase != .finished && stepsDone >= steps(of: phase) {
            switch phase {
            case .autoencoder:
                finishedVAE = autoencoder!.update.averaged?.shadow ?? autoencoder!.parameters
                autoencoder = nil
                phase = .diffusion
                try startDiffusion()
            case .diffusion:
                phase = .finished
            case .finished:
                break
            }
            stepsDone = 0
        }
    }

    /// Encodes the latent pool with the finished VAE, measures the scaling factor on it and makes
    /// the text encoder and UNet with random weights.
    private func startDiffusion(restoring state: [String: Tensor]? = nil) throws {
        let vae = try AutoencoderKL(Weights(WeightStore(tensors: finishedVAE!)), configuration: TinyShapesModel.vae)
        pool = try LatentPool(vae: vae, data: ShapesDataset(seed: recipe.seed &+ 1), count: recipe.latentPool)
        scalingFactor = 1 / pool!.sampleStandardDeviation(seed: recipe.seed)
        let textConfiguration = TinyShapesModel.textEncoder(vocabularySize: tokenizer.vocabularySize)
        let text = try state?.prefixed("text/") ?? RandomWeights.parameters(seed: recipe.seed &+ 2) {
            _ = try CLIPTextModel($0["text_model"], configuration: textConfiguration)
        }
        let unetStart = try state?.prefixed("unet/") ?? RandomWeights.parameters(seed: recipe.seed &+ 3) {
            _ = try UNet2DConditionModel($0, configuration: TinyShapesModel.unet)
        }
        let unet = try UNetTrainer(parameters: unetStart, configuration: TinyShapesModel.unet,
                                   optimiser: AdamW(validating: recipe.diffusionLearningRate), emaDecay: recipe.emaDecay)
        diffusion = try TextToImageTrainer(unet: unet, textParameters: text, textConfiguration: textConfiguration,
                                           tokenizer: tokenizer, optimiser: AdamW(validating: recipe.diffusionLearningRate),
                                           emaDecay: recipe.emaDecay, captionDropout: recipe.captionDropout)
    }

    // MARK: Results

    /// The weights to release, by network: the moving averages (the VAE's once it is finished).
    public func releasedWeights() -> [Component: [String: Tensor]] {
        var weights: [Component: [String: Tensor]] = [:]
        if let autoencoder { weights[.vae] = autoencoder.update.averaged?.shadow ?? autoencoder.parameters }
        if let finishedVAE { weights[.vae] = finishedVAE }
        if let diffusion {
            weights[.unet] = diffusion.unet.averaged?.shadow ?? diffusion.unet.parameters
            weights[.textEncoder] = diffusion.textUpdate.averaged?.shadow ?? diffusion.textParameters
        }
        return weights
    }

    /// The VAE to release so far (the moving average).
    public func releasedVAE() throws -> AutoencoderKL {
        try AutoencoderKL(Weights(WeightStore(tensors: releasedWeights()[.vae]!)), configuration: configuration.vae)
    }

    /// Writes the released weights as a diffusers folder (float16, as shared checkpoints are).
    /// Only possible once the diffusion phase has begun: before, there is no UNet or text encoder.
    public func writeModel(to folder: URL) throws {
        let weights = releasedWeights()
        guard weights.count == Component.allCases.count else {
            throw TrainingError.setting("phase", value: phase.rawValue, mustBe: "diffusion or finished to write a model")
        }
        try DiffusersFolderWriter.write(to: folder, configuration: configuration, tokenizer: tokenizer, weights: weights)
    }

    // MARK: Saving and resuming

    /// The `kind` a state file's metadata carries, so another safetensors file is told apart.
    static let stateKind = "tiny-shapes training state"

    /// Writes everything needed to continue: weights, optimiser moments, averages, counters and
    /// the recipe, as one safetensors file (float32), atomically.
    public func saveState(to path: String) throws {
        var tensors: [String: Tensor] = [:]
        var metadata = ["kind": Self.stateKind, "phase": phase.rawValue, "steps_done": "\(stepsDone)",
                        "recipe": String(decoding: try JSONEncoder().encode(recipe), as: UTF8.self)]
        func add(_ prefix: String, _ parameters: [String: Tensor], _ update: ParameterUpdate) {
            for (key, tensor) in parameters { tensors[prefix + "/" + key] = tensor }
            let snapshot = update.snapshot()
            for (key, tensor) in snapshot.tensors { tensors[prefix + ".update/" + key] = tensor }
            metadata[prefix + ".optimiser_steps"] = "\(snapshot.optimiserSteps)"
            metadata[prefix + ".average_updates"] = "\(snapshot.averageUpdates)"
        }
        if let autoencoder { add("vae", autoencoder.parameters, autoencoder.update) }
        if let finishedVAE { for (key, tensor) in finishedVAE { tensors["vae/" + key] = tensor } }
        if let diffusion {
            add("unet", diffusion.unet.parameters, diffusion.unet.update)
            add("text", diffusion.textParameters, diffusion.textUpdate)
        }
        try SafeTensorsWriter.write(tensors, to: path, metadata: metadata)
    }

    /// Continues a run from a file written by `saveState`, checking that it is one.
    public init(resuming path: String) throws {
        let (records, metadata) = try SafeTensors.readWithMetadata(path: path)
        guard metadata["kind"] == Self.stateKind else {
            throw TrainingError.state("'\(path)' is a safetensors file but not a saved training run of the shapes model")
        }
        guard let recipeText = metadata["recipe"],
              let recipe = try? JSONDecoder().decode(TinyShapesRecipe.self, from: Data(recipeText.utf8)),
              let phase = metadata["phase"].flatMap(Phase.init(rawValue:)), phase != .finished,
              let stepsDone = metadata["steps_done"].flatMap(Int.init), stepsDone >= 0 else {
            throw TrainingError.state("'\(path)' has a damaged description (recipe, phase or step count)")
        }
        try recipe.validate()
        self.recipe = recipe
        self.phase = phase
        self.stepsDone = stepsDone
        tokenizer = try TinyShapesModel.tokenizer()
        let tensors = records.mapValues { $0.tensor() }
        func snapshot(_ prefix: String) throws -> ParameterUpdateSnapshot {
            guard let steps = metadata[prefix + ".optimiser_steps"].flatMap(Int.init),
                  let updates = metadata[prefix + ".average_updates"].flatMap(Int.init) else {
                throw TrainingError.state("'\(path)' has no step counts for the \(prefix) optimiser")
            }
            return ParameterUpdateSnapshot(tensors: tensors.prefixed(prefix + ".update/"), optimiserSteps: steps, averageUpdates: updates)
        }
        do {
            switch phase {
            case .autoencoder:
                var trainer = try VAETrainer(parameters: tensors.prefixed("vae/"), configuration: TinyShapesModel.vae,
                                             optimiser: AdamW(validating: recipe.autoencoderLearningRate), emaDecay: recipe.emaDecay,
                                             squaredErrorWeight: recipe.squaredErrorWeight)
                try trainer.update.restore(snapshot("vae"), parameters: trainer.parameters)
                autoencoder = trainer
            case .diffusion, .finished:
                finishedVAE = tensors.prefixed("vae/")
                try startDiffusion(restoring: tensors)
                try diffusion!.restoreUNetUpdate(snapshot("unet"))
                try diffusion!.textUpdate.restore(snapshot("text"), parameters: diffusion!.textParameters)
            }
        } catch let error as CheckpointError {
            throw TrainingError.state("'\(path)' does not hold the shapes model's weights: \(error)")
        }
        guard stepsDone < steps(of: phase) else {
            throw TrainingError.state("'\(path)' claims \(stepsDone) of \(steps(of: phase)) \(phase.rawValue) steps done")
        }
    }
}

extension Dictionary where Key == String, Value == Tensor {
    /// The entries whose keys start with `prefix`, with the prefix removed.
    func prefixed(_ prefix: String) -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: compactMap { key, value in
            key.hasPrefix(prefix) ? (String(key.dropFirst(prefix.count)), value) : nil
        })
    }
}
