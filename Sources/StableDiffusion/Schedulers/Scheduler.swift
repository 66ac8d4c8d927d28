import TensorCore

/// A sampler: the rule that turns the UNet's noise prediction into a slightly less noisy latent.
///
/// Every sampler runs the same loop (diffusers' `StableDiffusionPipeline`):
///
/// ```swift
/// var scheduler = try SchedulerKind.euler.makeScheduler(steps: 25)
/// var generator = TorchGenerator(seed: 42)
/// var latents = generator.randn([1, 4, 64, 64]) * scheduler.initNoiseSigma
/// for i in scheduler.timesteps.indices {
///     let input = scheduler.scaleModelInput(latents, stepIndex: i)
///     let noise = unet(input, timestep: scheduler.timesteps[i], text: context)
///     latents = scheduler.step(modelOutput: noise, stepIndex: i, sample: latents,
///                              generator: &generator).prevSample
/// }
/// ```
///
/// `stepIndex` counts model evaluations: `0..<timesteps.count`. That is `inferenceSteps` for all
/// samplers but PNDM, which evaluates the model once more (its second timestep is repeated).
/// Samplers with a history (PNDM, DPM-Solver) must be stepped in order; `reset()` starts over.
public protocol Scheduler: Sendable {
    /// The configuration it was made from.
    var configuration: SchedulerConfiguration { get }
    /// The number of sampling steps asked for.
    var inferenceSteps: Int { get }
    /// The timestep t given to the UNet at each model evaluation, noisiest first.
    var timesteps: [Float] { get }
    /// σ at each step plus a final 0, for the samplers that work with x = x₀ + σ ε (nil otherwise).
    var sigmas: [Float]? { get }
    /// The standard deviation of the starting noise: `latents = randn · initNoiseSigma`.
    var initNoiseSigma: Float { get }
    /// What the UNet is fed at this step (the Euler samplers divide by √(σ² + 1)).
    func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor
    /// One denoising step: the latent for the next timestep, and this step's estimate of the
    /// clean latent x₀. Draws from `generator` only if the sampler adds fresh noise.
    mutating func step(modelOutput: Tensor, stepIndex: Int, sample: Tensor,
                       generator: inout TorchGenerator) -> (prevSample: Tensor, predictedOriginal: Tensor)
    /// Noises a clean latent to the noise level of `timesteps[stepIndex]` (for img2img).
    func addNoise(original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor
    /// Forgets the history of previous steps, so the scheduler can sample again.
    mutating func reset()
}

extension Scheduler {
    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor { sample }
    public mutating func reset() {}
}

/// The part of the schedule that image-to-image runs.
public struct ImageToImageSteps: Equatable, Sendable {
    /// The step indices to run, in order (into `timesteps`).
    public let stepIndices: Range<Int>
    /// The timestep at which the init latents are noised: `timesteps[stepIndices.lowerBound]`.
    public let noiseTimestep: Float
    /// The step index to pass to `addNoise`.
    public var noiseStepIndex: Int { stepIndices.lowerBound }
}

extension Scheduler {
    /// The steps img2img runs for a given strength, as diffusers' `get_timesteps` picks them.
    ///
    /// Strength 0.6 with 25 steps skips the first 10 steps: the init latents are noised to the
    /// level of step 10 and denoised from there.
    ///
    ///     init_timestep = min(int(steps · strength), steps)
    ///     t_start       = max(steps − init_timestep, 0)
    ///     run timesteps[t_start...]        (PNDM's list is one longer, so it runs one more)
    public func imageToImageSteps(strength: Double) throws -> ImageToImageSteps {
        guard (0...1).contains(strength) else { throw SchedulerError.invalidStrength(strength) }
        let initTimestep = min(Int(Double(inferenceSteps) * strength), inferenceSteps)
        guard initTimestep >= 1 else { throw SchedulerError.noStepsLeft(steps: inferenceSteps, strength: strength) }
        let start = max(inferenceSteps - initTimestep, 0)    // every sampler here has order 1
        return ImageToImageSteps(stepIndices: start..<timesteps.count, noiseTimestep: timesteps[start])
    }
}
