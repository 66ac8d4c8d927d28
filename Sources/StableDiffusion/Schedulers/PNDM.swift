import TensorCore

/// PNDM as Stable Diffusion 1.5 runs it by default: PLMS, a linear multistep method (Liu et al.,
/// 2022) that combines the last four noise predictions like the 4th-order Adams–Bashforth rule
/// (diffusers' `PNDMScheduler` with `skip_prk_steps = true`).
///
/// It needs a history to start, so its first two model evaluations share one step: evaluate at
/// t, take a trial step to t − r, evaluate again there, and redo the step from t with the average
/// of the two predictions (Heun's method). Hence the timestep list repeats its second entry:
/// 50 steps are 51 model evaluations, `[981, 961, 961, 941, ..., 1]`.
public struct PNDMScheduler: Scheduler {
    public let configuration: SchedulerConfiguration
    public let inferenceSteps: Int
    public let alphasCumprod: [Float]
    public let finalAlphaCumprod: Float
    public let integerTimesteps: [Int]
    public let timesteps: [Float]
    public var initNoiseSigma: Float { 1 }
    /// DDIM and PNDM work with ᾱ_t, not σ.
    public var sigmas: [Float]? { nil }

    // History (diffusers' names): model outputs ε of the previous steps, steps taken, and the sample
    // the Heun start step returns to.
    private var ets: [Tensor] = []
    private var counter = 0
    private var curSample: Tensor?
    private var nextStepIndex: Int?

    public init(configuration: SchedulerConfiguration = .sd15, steps: Int) throws {
        try configuration.checkSupported(steps: steps)
        guard configuration.skipPrkSteps else {   // the Runge-Kutta warm-up of the original PNDM
            throw SchedulerError.unsupportedSetting(key: "skip_prk_steps", value: "false", supported: ["true"])
        }
        self.configuration = configuration
        self.inferenceSteps = steps
        alphasCumprod = configuration.alphasCumprod()
        finalAlphaCumprod = configuration.setAlphaToOne ? 1 : alphasCumprod[0]
        var plms = try configuration.integerTimesteps(steps: steps)
        if plms.count > 1 { plms.insert(plms[1], at: 1) }     // [t₀, t₁, t₁, t₂, ...]
        integerTimesteps = plms
        timesteps = plms.map(Float.init)
    }

    public mutating func reset() { ets = []; counter = 0; curSample = nil; nextStepIndex = nil }

    public mutating func step(modelOutput eps: Tensor, stepIndex: Int, sample: Tensor,
                              generator: inout TorchGenerator) -> (prevSample: Tensor, predictedOriginal: Tensor) {
        precondition(nextStepIndex == nil || nextStepIndex == stepIndex,
                     "PNDM keeps a history: step through consecutive indices, or reset() to start over")
        nextStepIndex = stepIndex + 1
        let r = configuration.numTrainTimesteps / inferenceSteps
        var t = integerTimesteps[stepIndex], previous = t - r, x = sample, e: Tensor
        if counter != 1 {
            ets = ets.suffix(3) + [eps]
        } else {
            previous = t; t += r                          // the Heun step redoes t → t − r
        }
        switch (ets.count, counter) {
        case (1, 0):   // trial Euler step from t with ε₀
            e = eps; curSample = sample
        case (1, _):   // Heun: redo the step from t with ε' = (ε₁ + ε₀)/2
            e = (eps + ets[0]).map { $0 / 2 }; x = curSample!; curSample = nil
        case (2, _):   // ε' = (3ε₁ − ε₀)/2, 2nd-order Adams–Bashforth
            e = (3 * ets[1] - ets[0]).map { $0 / 2 }
        case (3, _):   // ε' = (23ε₂ − 16ε₁ + 5ε₀)/12, 3rd order
            e = (23 * ets[2] - 16 * ets[1] + 5 * ets[0]).map { $0 / 12 }
        default:       // ε' = (55ε₃ − 59ε₂ + 37ε₁ − 9ε₀)/24, 4th order
            e = Float(1.0 / 24) * (55 * ets[3] - 59 * ets[2] + 37 * ets[1] - 9 * ets[0])
        }
        counter += 1
        return (previousSample(x, from: t, to: previous, eps: e), predictedOriginal(sample, eps, stepIndex))
    }

    /// PNDM paper eq. 9, the DDIM step written with ᾱ only:
    ///
    ///     x_prev = √(ᾱ_prev/ᾱ_t) x_t − (ᾱ_prev − ᾱ_t) ε / D,
    ///     D = ᾱ_t √(1 − ᾱ_prev) + √(ᾱ_t (1 − ᾱ_t) ᾱ_prev)
    private func previousSample(_ x: Tensor, from t: Int, to previous: Int, eps: Tensor) -> Tensor {
        let alphaT = alphasCumprod[t]
        let alphaPrev = previous >= 0 ? alphasCumprod[previous] : finalAlphaCumprod
        let sampleCoefficient = (alphaPrev / alphaT).squareRoot()
        let denominator = alphaT * (1 - alphaPrev).squareRoot()
            + (alphaT * (1 - alphaT) * alphaPrev).squareRoot()
        return x.zipMap(eps) { x, e in sampleCoefficient * x - (alphaPrev - alphaT) * e / denominator }
    }

    /// PNDM does not report x₀; this step's estimate is x̂₀ = (x_t − √(1 − ᾱ_t) ε) / √ᾱ_t.
    private func predictedOriginal(_ x: Tensor, _ eps: Tensor, _ stepIndex: Int) -> Tensor {
        let alpha = alphasCumprod[integerTimesteps[stepIndex]]
        return x.zipMap(eps) { x, e in (x - (1 - alpha).squareRoot() * e) / alpha.squareRoot() }
    }

    /// x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε
    public func addNoise(original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor {
        let alpha = alphasCumprod[integerTimesteps[stepIndex]]
        return original.scaled(alpha.squareRoot(), plus: noise, times: (1 - alpha).squareRoot())
    }
}
