import StableDiffusion

/// What training costs, counted from the architecture: Stable Diffusion 1.5 on its published
/// schedule, and the shapes model on its recipe.
///
/// A training step runs each trained network forward and backward. The backward pass computes two
/// gradients per layer, one for the layer's input and one for its weights, each about as much
/// arithmetic as the forward, so forward + backward ≈ 3 x forward. Frozen networks (SD's VAE
/// encoder and text encoder) run forward only.
///
/// ```swift
/// let sd = try TrainingCost.sd15()
/// print(sd.totalFLOPs, sd.gpuHours(utilisation: 0.4))       // ≈ 8.5e21 FLOP, ≈ 19,000 A100-hours
/// ```
public enum TrainingCost {
    /// One stretch of SD's training: `steps` steps of `batch` pictures at `side` x `side`.
    public struct Stretch: Sendable {
        public let checkpoint: String
        public let steps: Int
        public let side: Int
    }

    /// SD v1's published schedule (the v1 model cards), each stretch continuing the one before:
    /// v1-1 from scratch, v1-2 from v1-1, v1-5 from v1-2. (v1-3 and v1-4 are side branches of v1-2.)
    public static let sd15Schedule = [
        Stretch(checkpoint: "v1-1", steps: 237_000, side: 256), Stretch(checkpoint: "v1-1", steps: 194_000, side: 512),
        Stretch(checkpoint: "v1-2", steps: 515_000, side: 512), Stretch(checkpoint: "v1-5", steps: 595_000, side: 512),
    ]
    /// Pictures per step, on 32 machines of 8 A100s each.
    public static let sd15Batch = 2048, sd15GPUs = 256
    /// An A100's peak for dense 16-bit matrix products (tensor cores), in FLOP/s.
    public static let a100Peak = 312e12
    /// A typical share of that peak reached by a large, well-tuned training run.
    public static let assumedUtilisation = 0.4
    /// The figures reported for SD v1: A100 hours (its model card) and their market price.
    public static let reportedGPUHours = 150_000.0, reportedDollars = 600_000.0

    /// SD 1.5's training, estimated.
    public struct Estimate: Sendable {
        /// FLOPs of one picture at each stretch's size, and of each whole stretch.
        public let sampleFLOPs: [Double], stretchFLOPs: [Double]
        public var totalFLOPs: Double { stretchFLOPs.reduce(0, +) }

        /// A100-hours at `utilisation` of the peak.
        public func gpuHours(utilisation: Double) -> Double {
            totalFLOPs / (TrainingCost.a100Peak * utilisation) / 3600
        }

        /// The share of the peak at which the reported hours would do exactly this arithmetic.
        public var impliedUtilisation: Double {
            totalFLOPs / (TrainingCost.reportedGPUHours * 3600 * TrainingCost.a100Peak)
        }
    }

    /// FLOPs of training on one `side` x `side` picture with SD 1.5: the UNet forward and backward,
    /// the frozen VAE encoder and text encoder forward.
    public static func sd15Sample(side: Int) throws -> (unet: Double, vae: Double, text: Double) {
        let c = StableDiffusionConfiguration.sd15
        let latent = side / c.vae.downsamplingFactor
        let unet = 3 * UNet2DConditionModel.flopCount(configuration: c.unet, latentHeight: latent, latentWidth: latent, batch: 1)
        let vae = Double(try AutoencoderKL.flops(configuration: c.vae, height: side, width: side).encode)
        return (unet, vae, CLIPTextModel.flopCount(configuration: c.textEncoder))
    }

    public static func sd15() throws -> Estimate {
        let samples = try sd15Schedule.map { stretch in
            let cost = try sd15Sample(side: stretch.side)
            return cost.unet + cost.vae + cost.text
        }
        return Estimate(sampleFLOPs: samples,
                        stretchFLOPs: zip(sd15Schedule, samples).map { Double($0.steps * sd15Batch) * $1 })
    }

    /// The shapes model's training from `recipe`, in FLOPs: the autoencoder phase (encoder and
    /// decoder forward and backward), the pool encoded once, and the diffusion phase (UNet and text
    /// encoder, both trained, forward and backward).
    public static func shapesModel(_ recipe: TinyShapesRecipe) throws -> (autoencoder: Double, pool: Double, diffusion: Double) {
        let side = TinyShapesModel.pictureSize, latent = side / TinyShapesModel.vae.downsamplingFactor
        let vae = try AutoencoderKL.flops(configuration: TinyShapesModel.vae, height: side, width: side)
        let unet = UNet2DConditionModel.flopCount(configuration: TinyShapesModel.unet, latentHeight: latent, latentWidth: latent, batch: 1)
        // The vocabulary's size changes no arithmetic: a token's vector is looked up, not computed.
        let text = CLIPTextModel.flopCount(configuration: TinyShapesModel.textEncoder(vocabularySize: 1))
        return (autoencoder: 3 * Double(vae.encode + vae.decode) * Double(recipe.autoencoderBatch * recipe.autoencoderSteps),
                pool: Double(vae.encode * recipe.latentPool),
                diffusion: 3 * (unet + text) * Double(recipe.diffusionBatch * recipe.diffusionSteps))
    }
}
