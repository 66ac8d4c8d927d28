import ArgumentParser
import StableDiffusion

/// The numbers of a shapes training run on the command line, shared by `sd train` and the
/// training lesson. Every option left out keeps the base recipe's value, so a command can start
/// from its own defaults and tell which numbers the user chose.
///
/// ```swift
/// @OptionGroup var recipeOptions: RecipeOptions
/// let recipe = recipeOptions.recipe(from: TinyShapesRecipe())      // the shipped model's numbers, overridden
/// ```
public struct RecipeOptions: ParsableArguments {
    public init() {}

    @Option(help: "Seed of the pictures, the starting weights and every random draw (default \(TinyShapesRecipe().seed)).")
    public var seed: UInt64?

    @Option(help: "Steps of the autoencoder phase (default \(TinyShapesRecipe().autoencoderSteps)).")
    public var autoencoderSteps: Int?

    @Option(help: "Pictures per autoencoder step (default \(TinyShapesRecipe().autoencoderBatch)).")
    public var autoencoderBatch: Int?

    @Option(help: "AdamW's learning rate in the autoencoder phase, after a linear warm-up (default \(TinyShapesRecipe().autoencoderLearningRate)).")
    public var autoencoderLearningRate: Float?

    @Option(help: "Weight of the squared error beside L1 in the autoencoder's loss; 0: L1 alone (default \(TinyShapesRecipe().squaredErrorWeight)).")
    public var squaredErrorWeight: Float?

    @Option(help: "Where the encoder's log-variance starts; 0 is a plain random start (default \(TinyShapesRecipe().startLogVariance ?? 0)).")
    public var startLogVariance: Float?

    @Option(help: "Pictures encoded once for the diffusion phase (default \(TinyShapesRecipe().latentPool)).")
    public var latentPool: Int?

    @Option(help: "Steps of the diffusion phase (default \(TinyShapesRecipe().diffusionSteps)).")
    public var diffusionSteps: Int?

    @Option(help: "Captioned latents per diffusion step (default \(TinyShapesRecipe().diffusionBatch)).")
    public var diffusionBatch: Int?

    @Option(help: "AdamW's learning rate in the diffusion phase, after a linear warm-up (default \(TinyShapesRecipe().diffusionLearningRate)).")
    public var diffusionLearningRate: Float?

    /// The options given, by name, for a message that says which ones do not apply.
    public var given: [String] {
        let options: [(String, Any?)] = [
            ("--seed", seed), ("--autoencoder-steps", autoencoderSteps), ("--autoencoder-batch", autoencoderBatch),
            ("--autoencoder-learning-rate", autoencoderLearningRate), ("--squared-error-weight", squaredErrorWeight),
            ("--start-log-variance", startLogVariance), ("--latent-pool", latentPool), ("--diffusion-steps", diffusionSteps),
            ("--diffusion-batch", diffusionBatch), ("--diffusion-learning-rate", diffusionLearningRate),
        ]
        return options.filter { $0.1 != nil }.map(\.0)
    }

    /// `base` with every given option put in.
    public func recipe(from base: TinyShapesRecipe) -> TinyShapesRecipe {
        var recipe = base
        if let seed { recipe.seed = seed }
        if let autoencoderSteps { recipe.autoencoderSteps = autoencoderSteps }
        if let autoencoderBatch { recipe.autoencoderBatch = autoencoderBatch }
        if let autoencoderLearningRate { recipe.autoencoderLearningRate = autoencoderLearningRate }
        if let squaredErrorWeight { recipe.squaredErrorWeight = squaredErrorWeight }
        if let startLogVariance { recipe.startLogVariance = startLogVariance == 0 ? nil : startLogVariance }
        if let latentPool { recipe.latentPool = latentPool }
        if let diffusionSteps { recipe.diffusionSteps = diffusionSteps }
        if let diffusionBatch { recipe.diffusionBatch = diffusionBatch }
        if let diffusionLearningRate { recipe.diffusionLearningRate = diffusionLearningRate }
        return recipe
    }
}
