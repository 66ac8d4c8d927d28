import StableDiffusion
import TensorCore

extension OptimalDenoiser {
    /// Classifier-free guidance for the built-in sampler: the pictures the text matches, and w.
    public struct Guidance {
        /// The indices of the examples whose caption matches the text (the conditional model).
        public let subset: [Int]
        /// w in ε = ε_uncond + w · (ε_text − ε_uncond); at 1 or less the text's ε is used as is.
        public let scale: Float

        /// Guidance towards `subset` with scale `scale`.
        public init(subset: [Int], scale: Float) {
            (self.subset, self.scale) = (subset, scale)
        }
    }

    /// Samples from pure noise with Stable Diffusion's DDIM sampler, this denoiser in the place of
    /// the UNet.
    ///
    /// x_T ~ N(0, I) of `shape` comes from `torch.randn` for `seed`. Every step asks the denoiser
    /// for ε̂ and lets `DDIMScheduler` move to the next timestep:
    /// `x_prev = √ᾱ_prev · x̂₀ + √(1 − ᾱ_prev − σ²) · ε̂ + σ · z`, with σ = 0 for η = 0 (DDIM) and
    /// DDPM's ancestral noise for η = 1.
    ///
    /// With `guidance`, every step asks twice (all pictures, and only the matching ones) and mixes
    /// `ε = ε_uncond + w · (ε_text − ε_uncond)`; the step then records the scheduler's x̂₀, the one
    /// the guided ε implies.
    public func sample(shape: [Int], steps: Int, eta: Float, seed: UInt64,
                       guidance: Guidance? = nil) throws -> SamplerRun {
        let scheduler = try DDIMScheduler(steps: steps, eta: eta)
        var generator = TorchGenerator(seed: seed)
        var x = generator.randn(shape) * scheduler.initNoiseSigma   // x_T ~ N(0, I)
        var result: [DenoiserStep] = []
        var first: (Tensor, Tensor)?
        for i in scheduler.timesteps.indices {
            let t = scheduler.integerTimesteps[i], a = scheduler.alphasCumprod[t]
            let plain = predictNoise(x, alphaBar: a)
            var noise = plain.noise, weights = plain.weights[0]
            if let guidance {
                let text = predictNoise(x, alphaBar: a, subset: guidance.subset)
                let w = guidance.scale
                noise = w > 1 ? plain.noise.scaled(1 - w, plus: text.noise, times: w) : text.noise
                weights = text.weights[0]
                if i == 0 { first = (plain.clean, text.clean) }
            }
            let (next, schedulerClean) = scheduler.step(modelOutput: noise, stepIndex: i, sample: x, generator: &generator)
            result.append(DenoiserStep(index: i, timestep: t, alphaBar: a, latents: x, noise: noise,
                                       clean: guidance == nil ? plain.clean : schedulerClean, next: next, weights: weights))
            x = next
        }
        return SamplerRun(steps: result, firstPredictions: first)
    }
}
