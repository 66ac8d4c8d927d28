import TensorCore

/// DDIM (Song et al., 2020): estimate the clean latent, then jump to the next timestep's noise
/// level along the same noise direction (diffusers' `DDIMScheduler`).
///
/// With `eta = 0` (the default) the sampler is deterministic; `eta = 1` adds as much fresh noise
/// as the original stochastic DDPM sampler.
public struct DDIMScheduler: Scheduler {
    public let configuration: SchedulerConfiguration
    public let inferenceSteps: Int
    /// η: how much of the noise is replaced by fresh noise at each step.
    public let eta: Float
    /// ᾱ_t for t = 0..<T (float32, as diffusers).
    public let alphasCumprod: [Float]
    /// ᾱ after the last step: 1, or ᾱ_0 when `set_alpha_to_one` is false (SD 1.5).
    public let finalAlphaCumprod: Float
    /// The timesteps as integers, for indexing ᾱ_t.
    public let integerTimesteps: [Int]
    public let timesteps: [Float]
    public var initNoiseSigma: Float { 1 }
    /// DDIM and PNDM work with ᾱ_t, not σ.
    public var sigmas: [Float]? { nil }

    public init(configuration: SchedulerConfiguration = .sd15, steps: Int, eta: Float = 0) throws {
        try configuration.checkSupported(steps: steps)
        guard (0...1).contains(eta) else {
            throw SchedulerError.unsupportedSetting(key: "eta", value: "\(eta)", supported: ["0 ... 1"])
        }
        self.configuration = configuration
        self.inferenceSteps = steps
        self.eta = eta
        alphasCumprod = configuration.alphasCumprod()
        finalAlphaCumprod = configuration.setAlphaToOne ? 1 : alphasCumprod[0]
        integerTimesteps = try configuration.integerTimesteps(steps: steps)
        timesteps = integerTimesteps.map(Float.init)
    }

    public func step(modelOutput eps: Tensor, stepIndex: Int, sample x: Tensor,
                     generator: inout TorchGenerator) -> (prevSample: Tensor, predictedOriginal: Tensor) {
        let t = integerTimesteps[stepIndex]
        let previous = t - configuration.numTrainTimesteps / inferenceSteps   // diffusers' prev_timestep
        let alphaT = alphasCumprod[t]                                         // ᾱ_t
        let alphaPrev = previous >= 0 ? alphasCumprod[previous] : finalAlphaCumprod   // ᾱ_prev
        let betaT = 1 - alphaT                                                // 1 − ᾱ_t
        // x̂₀ = (x_t − √(1 − ᾱ_t) ε) / √ᾱ_t
        var x0 = x.zipMap(eps) { x, e in (x - betaT.squareRoot() * e) / alphaT.squareRoot() }
        if configuration.clipSample {
            let r = Float(configuration.clipSampleRange)
            x0 = x0.map { min(max($0, -r), r) }
        }
        // σ_t = η √((1 − ᾱ_prev)/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ_prev)   (DDIM paper, eq. 16)
        let variance = ((1 - alphaPrev) / betaT) * (1 - alphaT / alphaPrev)
        let sigma = eta * variance.squareRoot()
        // x_prev = √ᾱ_prev x̂₀ + √(1 − ᾱ_prev − σ_t²) ε + σ_t z
        var prev = x0.scaled(alphaPrev.squareRoot(), plus: eps, times: (1 - alphaPrev - sigma * sigma).squareRoot())
        if eta > 0 {
            prev = prev.scaled(1, plus: generator.randn(eps.shape), times: sigma)
        }
        return (prev, x0)
    }

    /// x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε
    public func addNoise(original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor {
        let alpha = alphasCumprod[integerTimesteps[stepIndex]]
        return original.scaled(alpha.squareRoot(), plus: noise, times: (1 - alpha).squareRoot())
    }
}
