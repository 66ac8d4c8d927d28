import Foundation
import TensorCore

/// The Latent Consistency Model sampler (Luo et al. 2023, "Latent Consistency Models"; diffusers'
/// `LCMScheduler`): a picture in 2 to 8 steps.
///
/// An LCM (or a normal model with the LCM-LoRA) was distilled to answer, from any noisy latent,
/// with the *end* of the sampling trajectory: the clean latent itself, not a small step towards
/// it. So each step is a jump to a finished picture, and the next step re-noises that picture a
/// little less and asks again:
///
///     x̂₀       = (x_t − √(1 − ᾱ_t) ε) / √ᾱ_t                       (the ε-prediction's clean latent)
///     denoised = c_out(t) · x̂₀ + c_skip(t) · x_t                    (the consistency function)
///     x_prev   = √ᾱ_prev · denoised + √(1 − ᾱ_prev) · z,  z fresh    (all steps but the last)
///     x_prev   = denoised                                           (the last step)
///
/// with the boundary conditions that make the function the identity at t = 0:
/// `c_skip = σ_d² / ((s t)² + σ_d²)`, `c_out = s t / √((s t)² + σ_d²)`, σ_d = 0.5 and the
/// timestep scaling s = 10 (so both are within 2.5e-5 of 0 and 1 for t ≥ 19: in practice
/// denoised ≈ x̂₀).
///
/// Timesteps: the distillation used a grid of `originalInferenceSteps` = 50 timesteps,
/// t = 20 i − 1 (19, 39, ..., 999); N steps take every (50 / N)-th of them from the top,
/// `t_j = 999 − 20 ⌊j · 50 / N⌋`: 4 steps are 999, 759, 499, 259. More than 50 steps is refused,
/// as diffusers does.
///
/// Guidance: LCM models are distilled with the guidance baked in; run them with `--cfg 1` to 2.
public struct LCMScheduler: Scheduler {
    public let configuration: SchedulerConfiguration
    public let inferenceSteps: Int
    /// The length of the timestep grid the model was distilled on.
    public let originalInferenceSteps: Int
    /// s in c_skip and c_out: how the timestep is stretched before the boundary conditions.
    public let timestepScaling: Float
    public let alphasCumprod: [Float]
    public let integerTimesteps: [Int]
    public let timesteps: [Float]
    public var initNoiseSigma: Float { 1 }
    public var sigmas: [Float]? { nil }

    public init(configuration: SchedulerConfiguration = .sd15, steps: Int,
                originalInferenceSteps: Int = 50, timestepScaling: Float = 10) throws {
        try configuration.checkSupported(steps: steps)
        guard steps <= originalInferenceSteps else {
            throw SchedulerError.tooManyConsistencySteps(steps, originalSteps: originalInferenceSteps)
        }
        self.configuration = configuration
        self.inferenceSteps = steps
        self.originalInferenceSteps = originalInferenceSteps
        self.timestepScaling = timestepScaling
        alphasCumprod = configuration.alphasCumprod()
        // The distillation grid: k = T / 50 = 20; t = k·i − 1 for i = 1...50.
        let k = configuration.numTrainTimesteps / originalInferenceSteps
        let grid = (1...originalInferenceSteps).map { $0 * k - 1 }
        // N positions from the top: ⌊j · 50 / N⌋ for j = 0..<N (diffusers: floor(linspace(0, 50, N,
        // endpoint=False)), the same integers), counted down from the last grid entry.
        integerTimesteps = (0..<steps).map { grid[grid.count - 1 - $0 * originalInferenceSteps / steps] }
        timesteps = integerTimesteps.map(Float.init)
    }

    /// c_skip and c_out at timestep t, in float32 as diffusers computes them.
    public func boundaryScalings(_ t: Int) -> (skip: Float, out: Float) {
        let sigmaData: Float = 0.5
        let scaled = Float(t) * timestepScaling
        let skip = sigmaData * sigmaData / (scaled * scaled + sigmaData * sigmaData)
        let out = scaled / (scaled * scaled + sigmaData * sigmaData).squareRoot()
        return (skip, out)
    }

    public func step(modelOutput eps: Tensor, stepIndex: Int, sample x: Tensor,
                     generator: inout TorchGenerator) -> (prevSample: Tensor, predictedOriginal: Tensor) {
        let t = integerTimesteps[stepIndex]
        let isLast = stepIndex == integerTimesteps.count - 1
        let alphaT = alphasCumprod[t]                                          // ᾱ_t
        let betaT = 1 - alphaT
        // x̂₀ = (x_t − √(1 − ᾱ_t) ε) / √ᾱ_t
        let x0 = x.zipMap(eps) { x, e in (x - betaT.squareRoot() * e) / alphaT.squareRoot() }
        // denoised = c_out x̂₀ + c_skip x_t
        let (skip, out) = boundaryScalings(t)
        let denoised = x0.zipMap(x) { x0, x in out * x0 + skip * x }
        guard !isLast else { return (denoised, denoised) }
        // Re-noise to the next timestep's level with fresh noise: x = √ᾱ_prev d + √(1 − ᾱ_prev) z.
        let alphaPrev = alphasCumprod[integerTimesteps[stepIndex + 1]]
        let noise = generator.randn(eps.shape)
        let prev = denoised.zipMap(noise) { d, z in alphaPrev.squareRoot() * d + (1 - alphaPrev).squareRoot() * z }
        return (prev, denoised)
    }

    /// x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε
    public func addNoise(original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor {
        let alpha = alphasCumprod[integerTimesteps[stepIndex]]
        return original.scaled(alpha.squareRoot(), plus: noise, times: (1 - alpha).squareRoot())
    }
}
