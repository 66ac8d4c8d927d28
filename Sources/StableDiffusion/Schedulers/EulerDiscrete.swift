import Foundation
import TensorCore

/// Euler's method on the probability-flow ODE (Karras et al., 2022), diffusers'
/// `EulerDiscreteScheduler`.
///
/// It works with the latent scaled so that only noise is added: x = x₀ + σ ε with
/// σ_t = √((1 − ᾱ_t)/ᾱ_t) (the DDPM latent is this divided by √(σ² + 1)). Then dx/dσ = ε, and
/// one Euler step is a straight line to the next noise level: x_next = x + (σ_next − σ) ε̂.
public struct EulerDiscreteScheduler: Scheduler {
    public let configuration: SchedulerConfiguration
    public let inferenceSteps: Int
    public let timesteps: [Float]
    /// σ at each timestep, then 0.
    let sigmaList: [Float]
    public var sigmas: [Float]? { sigmaList }
    public let initNoiseSigma: Float

    public init(configuration: SchedulerConfiguration = .sd15, steps: Int) throws {
        try configuration.checkSupported(steps: steps)
        self.configuration = configuration
        self.inferenceSteps = steps
        timesteps = configuration.spacedTimesteps(steps: steps).map { Float($0) }
        try configuration.checkRange(timesteps.map { Int($0.rounded(.down)) }, steps: steps, upperBound: .max)
        // σ_t = √((1 − ᾱ_t)/ᾱ_t) for t = 0..<T, in float32; fractional timesteps interpolate linearly
        // (np.interp, which also holds σ at its last value for t ≥ T − 1).
        let table = configuration.alphasCumprod().map { ((1 - $0) / $0).squareRoot() }
        func interpolated(_ t: Double) -> Float {
            if t <= 0 { return table[0] }
            if t >= Double(table.count - 1) { return table[table.count - 1] }
            let j = Int(t.rounded(.down)), low = Double(table[j]), high = Double(table[j + 1])
            return t == Double(j) ? table[j] : Float((high - low) * (t - Double(j)) + low)
        }
        sigmaList = timesteps.map { interpolated(Double($0)) } + [0]
        // "leading" does not start at pure noise, so the starting latent has variance σ_max² + 1.
        let sigmaMax = sigmaList.max()!
        initNoiseSigma = configuration.timestepSpacing == .leading ? (sigmaMax * sigmaMax + 1).squareRoot() : sigmaMax
    }

    /// The UNet was trained on DDPM latents, x / √(σ² + 1).
    public func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor {
        let sigma = sigmaList[stepIndex]
        let scale = (sigma * sigma + 1).squareRoot()
        return sample.map { $0 / scale }
    }

    public func step(modelOutput eps: Tensor, stepIndex: Int, sample x: Tensor,
                     generator: inout TorchGenerator) -> (prevSample: Tensor, predictedOriginal: Tensor) {
        let sigma = sigmaList[stepIndex], dt = sigmaList[stepIndex + 1] - sigma
        let x0 = x.zipMap(eps) { x, e in x - sigma * e }                 // x̂₀ = x − σ ε
        let derivative = x.zipMap(x0) { x, x0 in (x - x0) / sigma }       // d = (x − x̂₀)/σ  (= ε)
        let prev = x.zipMap(derivative) { x, d in x + d * dt }            // x_next = x + d (σ_next − σ)
        return (prev, x0)
    }

    /// x = x₀ + σ ε
    public func addNoise(original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor {
        let sigma = sigmaList[stepIndex]
        return original.zipMap(noise) { x, n in x + n * sigma }
    }
}
