import TensorCore

/// The numbers of the shapes model's training, SD's recipe in miniature:
///
/// 1. **autoencoder**: the VAE alone, on fresh drawn pictures every step (L1 + a tiny KL term);
/// 2. the latent **scaling factor**, measured as SD's 0.18215 was: one over the standard deviation
///    of the encoder's latents;
/// 3. **diffusion**: UNet and text encoder together on noise prediction, over a pool of pictures
///    encoded once by the finished VAE, with 10% of captions dropped.
///
/// Both phases use AdamW with a short linear warm-up and keep an EMA of the weights, which is
/// what gets written out. The defaults are the run that made `Examples/tiny-shapes`.
///
/// ```swift
/// var recipe = TinyShapesRecipe()
/// recipe.diffusionSteps = 300          // a quick run for a lesson
/// try recipe.validate()
/// ```
public struct TinyShapesRecipe: Codable, Equatable, Sendable {
    /// Decides the pictures, the starting weights, t, ε and every other random draw.
    public var seed: UInt64 = 0

    public var autoencoderSteps = 1400
    public var autoencoderBatch = 8
    public var autoencoderLearningRate: Float = 2e-3
    /// The squared error's weight beside L1 (see `VAETrainer`), standing in for SD's perceptual term.
    public var squaredErrorWeight: Float = 1

    /// Where the encoder's log-variance starts (the bias of `quant_conv`'s second half); nil
    /// leaves it near 0 as any random start does. At σ ≈ 1 the sampling noise drowns what the
    /// encoder says, and training only slowly learns to lower it; SD's KL weight is so small
    /// that its finished VAE has a small σ anyway, so starting there skips the slow part.
    public var startLogVariance: Float? = -6

    /// Pictures encoded once for the diffusion phase (each step samples its latents from their posteriors).
    public var latentPool = 4096

    public var diffusionSteps = 1800
    public var diffusionBatch = 64
    public var diffusionLearningRate: Float = 1e-3
    public var captionDropout: Float = 0.1

    /// Steps over which each phase's learning rate rises linearly to its full value.
    public var warmupSteps = 100
    /// Decay of both phases' moving averages (young averages move faster, see `ExponentialMovingAverage`).
    public var emaDecay: Float = 0.999

    public init() {}

    /// Throws a `TrainingError` naming the first number that cannot work.
    public func validate() throws {
        let counts: [(String, Int, Int)] = [
            ("autoencoder steps", autoencoderSteps, 0), ("autoencoder batch", autoencoderBatch, 1),
            ("latent pool", latentPool, 1), ("diffusion steps", diffusionSteps, 0),
            ("diffusion batch", diffusionBatch, 1), ("warm-up steps", warmupSteps, 0),
        ]
        for (name, value, least) in counts where value < least || value > 10_000_000 {
            throw TrainingError.setting(name, value: "\(value)", mustBe: "a whole number from \(least) to 10,000,000")
        }
        for (name, rate) in [("autoencoder learning rate", autoencoderLearningRate), ("diffusion learning rate", diffusionLearningRate)]
        where !(rate > 0 && rate.isFinite) {
            throw TrainingError.setting(name, value: "\(rate)", mustBe: "a positive number")
        }
        guard (0...1).contains(captionDropout) else {
            throw TrainingError.setting("caption dropout", value: "\(captionDropout)", mustBe: "in [0, 1]")
        }
        guard (0..<1).contains(emaDecay) else {
            throw TrainingError.setting("EMA decay", value: "\(emaDecay)", mustBe: "in [0, 1)")
        }
    }

    /// The number of steps of a phase.
    public func steps(of phase: TinyShapesTraining.Phase) -> Int {
        switch phase {
        case .autoencoder: return autoencoderSteps
        case .diffusion: return diffusionSteps
        case .finished: return 0
        }
    }

    /// The learning rate of step `step` (from 1) of a phase whose full rate is `base`.
    func learningRate(_ base: Float, step: Int) -> Float {
        LearningRateWarmup(base: base, warmupSteps: warmupSteps).rate(atStep: step)
    }
}
