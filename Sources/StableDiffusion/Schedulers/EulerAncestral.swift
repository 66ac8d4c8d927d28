import TensorCore

/// Euler ancestral ("euler-a"), diffusers' `EulerAncestralDiscreteScheduler`: an Euler step that
/// goes *below* the next noise level, then adds fresh noise to climb back to it.
///
/// From σ to σ_next, split σ_next² = σ_down² + σ_up²: step deterministically to σ_down, then add
/// σ_up · z with new Gaussian noise z. Because each step forgets some of the old noise, the picture
/// keeps changing with the step count, and a seed does not fix it without the same step count.
/// The timesteps and σs are the plain Euler sampler's.
public struct EulerAncestralDiscreteScheduler: Scheduler {
    private let euler: EulerDiscreteScheduler

    public init(configuration: SchedulerConfiguration = .sd15, steps: Int) throws {
        euler = try EulerDiscreteScheduler(configuration: configuration, steps: steps)
    }

    public var configuration: SchedulerConfiguration { euler.configuration }
    public var inferenceSteps: Int { euler.inferenceSteps }
    public var timesteps: [Float] { euler.timesteps }
    public var sigmas: [Float]? { euler.sigmaList }
    public var initNoiseSigma: Float { euler.initNoiseSigma }
    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor {
        euler.scaleModelInput(sample, stepIndex: stepIndex)
    }
    public func addNoise(original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor {
        euler.addNoise(original: original, noise: noise, stepIndex: stepIndex)
    }

    public func step(modelOutput eps: Tensor, stepIndex: Int, sample x: Tensor,
                     generator: inout TorchGenerator) -> (prevSample: Tensor, predictedOriginal: Tensor) {
        let sigma = euler.sigmaList[stepIndex], next = euler.sigmaList[stepIndex + 1]
        // σ_up = √(σ_next² (σ² − σ_next²) / σ²)
        let up = (next * next * (sigma * sigma - next * next) / (sigma * sigma)).squareRoot()
        let down = (next * next - up * up).squareRoot()                 // σ_down = √(σ_next² − σ_up²)
        let x0 = x.zipMap(eps) { x, e in x - sigma * e }                 // x̂₀ = x − σ ε
        let derivative = x.zipMap(x0) { x, x0 in (x - x0) / sigma }       // d = (x − x̂₀)/σ
        let dt = down - sigma
        let stepped = x.zipMap(derivative) { x, d in x + d * dt }        // x + d (σ_down − σ)
        let z = generator.randn(eps.shape)                               // fresh noise, every step
        return (stepped.zipMap(z) { x, z in x + z * up }, x0)            // ... + σ_up z
    }
}
