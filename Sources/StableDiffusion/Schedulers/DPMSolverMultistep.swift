import Foundation
import TensorCore

/// DPM++ 2M Karras (Lu et al., 2022; Karras et al., 2022): diffusers' `DPMSolverMultistepScheduler`
/// with `algorithm_type = "dpmsolver++"`, `solver_order = 2`, `lower_order_final = true`,
/// `use_karras_sigmas = true`.
///
/// It solves the diffusion ODE in λ = log(α/σ) (the log signal-to-noise ratio), where the update is
/// exact for a constant x₀ prediction; "2M" corrects it with the previous step's x₀ (a 2nd-order
/// multistep method). The "Karras" noise levels crowd the steps toward low noise:
/// σ_i = (σ_max^(1/7) + i/(N − 1) · (σ_min^(1/7) − σ_max^(1/7)))⁷. Its timesteps come from those σ,
/// so `timestep_spacing` and `steps_offset` do not apply.
public struct DPMSolverMultistepScheduler: Scheduler {
    public let configuration: SchedulerConfiguration
    public let inferenceSteps: Int
    public let integerTimesteps: [Int]
    public let timesteps: [Float]
    let sigmaList: [Float]
    public var sigmas: [Float]? { sigmaList }
    public var initNoiseSigma: Float { 1 }

    private var previousX0: Tensor?        // the last step's data prediction (model_outputs[-2])
    private var nextStepIndex: Int?

    public init(configuration: SchedulerConfiguration = .sd15, steps n: Int) throws {
        try configuration.checkSupported(steps: n)
        self.configuration = configuration
        self.inferenceSteps = n
        let table = configuration.alphasCumprod().map { ((1 - $0) / $0).squareRoot() }  // σ_t, float32
        let logTable = table.map { Float(log(Double($0))) }
        // σ_i = (σ_max^(1/ρ) + ramp_i (σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ, ρ = 7, in double
        let minRoot = pow(Double(table.first!), 1 / 7.0), maxRoot = pow(Double(table.last!), 1 / 7.0)
        let karras = (0..<n).map { i -> Double in
            let ramp = n == 1 ? 0 : i == n - 1 ? 1 : Double(i) * (1 / Double(n - 1))   // np.linspace(0, 1, n)
            return pow(maxRoot + ramp * (minRoot - maxRoot), 7)
        }
        // diffusers rounds these to the nearest integer, except for the cosine schedule (truncated).
        let rounding: FloatingPointRoundingRule =
            configuration.betaSchedule == .squaredCosine ? .towardZero : .toNearestOrEven
        integerTimesteps = karras.map { Int(Self.timestep(forSigma: $0, logSigmas: logTable).rounded(rounding)) }
        timesteps = integerTimesteps.map(Float.init)
        sigmaList = karras.map { Float($0) } + [0]
    }

    /// The fractional timestep with noise level σ: linear interpolation in log σ between the two
    /// training timesteps around it (diffusers' `_sigma_to_t`).
    static func timestep(forSigma sigma: Double, logSigmas: [Float]) -> Double {
        let logSigma = log(max(sigma, 1e-10))
        let low = min(logSigmas.lastIndex { Double($0) <= logSigma } ?? 0, logSigmas.count - 2)
        let gap = Double(logSigmas[low] - logSigmas[low + 1])           // (a float32 difference, as numpy's)
        let w = min(max((Double(logSigmas[low]) - logSigma) / gap, 0), 1)
        return (1 - w) * Double(low) + w * Double(low + 1)              // t = (1 − w)·low + w·(low + 1)
    }

    public mutating func reset() { previousX0 = nil; nextStepIndex = nil }

    public mutating func step(modelOutput eps: Tensor, stepIndex i: Int, sample x: Tensor,
                              generator: inout TorchGenerator) -> (prevSample: Tensor, predictedOriginal: Tensor) {
        precondition(nextStepIndex == nil || nextStepIndex == i,
                     "DPM-Solver keeps a history: step through consecutive indices, or reset() to start over")
        nextStepIndex = i + 1
        // α = 1/√(σ² + 1), σ' = σ α: the DDPM signal and noise scales; λ = log α − log σ'.
        func scales(_ sigma: Float) -> (alpha: Float, sigma: Float, lambda: Float) {
            let alpha = 1 / (sigma * sigma + 1).squareRoot()
            return (alpha, sigma * alpha, log(alpha) - log(sigma * alpha))
        }
        let s0 = scales(sigmaList[i]), t = scales(sigmaList[i + 1])
        let x0 = x.zipMap(eps) { x, e in (x - s0.sigma * e) / s0.alpha }     // x̂₀ = (x − σ'_s ε)/α_s
        let h = t.lambda - s0.lambda
        let a = t.sigma / s0.sigma, b = t.alpha * (exp(-h) - 1)
        // 1st order (DPM-Solver++ 1, the DDIM step): x_t = (σ'_t/σ'_s) x − α_t (e^{−h} − 1) x̂₀
        var prev = x.scaled(a, plus: x0, times: -b)
        if let previousX0, i != sigmaList.count - 2 {                        // 2M, except first and last steps
            let r0 = (s0.lambda - scales(sigmaList[i - 1]).lambda) / h       // r₀ = h₀/h
            let d1 = (x0 - previousX0) * (1 / r0)                            // D₁ = (x̂₀ − x̂₀_prev)/r₀
            prev = prev.scaled(1, plus: d1, times: -(0.5 * b))               //     − ½ α_t(e^{−h} − 1) D₁
        }
        previousX0 = x0
        return (prev, x0)
    }

    /// x_t = α x₀ + σ' ε with α = 1/√(σ² + 1), σ' = σ α (the DDPM latent at this noise level).
    public func addNoise(original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor {
        let sigma = sigmaList[stepIndex], alpha = 1 / (sigma * sigma + 1).squareRoot()
        return original.scaled(alpha, plus: noise, times: sigma * alpha)
    }
}
