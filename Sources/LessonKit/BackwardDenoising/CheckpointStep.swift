import StableDiffusion
import TensorCore

/// The numbers lesson 2 prints about one step of a real Stable Diffusion generation.
public struct CheckpointStep {
    /// The step's position, from 0.
    public let index: Int
    /// The timestep the step denoises.
    public let timestep: Float
    /// σ_t: see `noiseLevel(of:alphasCumprod:)`.
    public let sigma: Float
    /// The spread of x_t, of the guided ε̂ and of x̂₀.
    public let latentStd, noiseStd, cleanStd: Float
    /// rms(ε_text − ε_uncond), the part of the prediction the text changes; nil without guidance.
    public let guidanceGap: Float?

    /// Measures `step`; `alphasCumprod` is the checkpoint's training schedule ᾱ_t.
    public init(_ step: DenoisingStep, alphasCumprod: [Float]) {
        index = step.index
        timestep = step.timestep
        sigma = Self.noiseLevel(of: step, alphasCumprod: alphasCumprod)
        latentStd = step.latents.standardDeviation
        noiseStd = step.noisePrediction.standardDeviation
        cleanStd = step.predictedOriginal.standardDeviation
        if let u = step.unconditionalNoise, let t = step.textNoise {
            guidanceGap = Difference.rootMeanSquare(t, u)
        } else {
            guidanceGap = nil
        }
    }

    /// σ of a step: the sampler's own for the σ-based samplers, else √((1 − ᾱ_t)/ᾱ_t) from the
    /// training schedule at the rounded timestep (the same quantity: x_t/√ᾱ_t = x₀ + σ·ε).
    public static func noiseLevel(of step: DenoisingStep, alphasCumprod alphas: [Float]) -> Float {
        noiseLevel(sigma: step.sigma, timestep: step.timestep, alphasCumprod: alphas)
    }

    /// `sigma` when the sampler has one, else √((1 − ᾱ_t)/ᾱ_t) at `timestep` rounded (and kept
    /// inside the schedule).
    public static func noiseLevel(sigma: Float?, timestep: Float, alphasCumprod alphas: [Float]) -> Float {
        if let sigma { return sigma }
        let alphaBar = alphas[min(max(Int(timestep.rounded()), 0), alphas.count - 1)]
        return ((1 - alphaBar) / alphaBar).squareRoot()
    }

    /// Where the text changes the step's prediction (see `guidanceMap(unconditional:text:)`); nil
    /// without guidance.
    public static func guidanceMap(of step: DenoisingStep) -> (values: [Float], height: Int, width: Int)? {
        guard let u = step.unconditionalNoise, let t = step.textNoise else { return nil }
        return guidanceMap(unconditional: u, text: t)
    }

    /// `|ε_text − ε_uncond|` of two `(1, C, h, w)` predictions averaged over the C channels: one
    /// number per latent position, `(h · w)` row-major.
    public static func guidanceMap(unconditional u: Tensor, text t: Tensor) -> (values: [Float], height: Int, width: Int) {
        let channels = u.shape[1], h = u.shape[2], w = u.shape[3], plane = h * w
        var gap = [Float](repeating: 0, count: plane)
        for c in 0..<channels {
            for i in 0..<plane { gap[i] += abs(t.scalars[c * plane + i] - u.scalars[c * plane + i]) / Float(channels) }
        }
        return (gap, h, w)
    }
}

/// How long lesson 2's checkpoint run took, and what its comparison grid will cost.
public struct DenoisingTime {
    /// Seconds of the denoising loop.
    public let seconds: Double
    /// Seconds per step: `seconds / steps` (steps at least 1).
    public let perStep: Double

    /// The denoising stage's time from `timings` (0 when missing), over `steps` steps.
    public init(timings: [(stage: String, seconds: Double)], steps: Int) {
        seconds = timings.first { $0.stage == "denoising" }?.seconds ?? 0
        perStep = seconds / Double(max(1, steps))
    }

    /// The steps of a grid of every sampler at every step count, `samplers · Σ counts`, and
    /// their estimated seconds at this run's pace.
    public func comparison(samplers: Int, stepCounts: [Int]) -> (steps: Int, seconds: Double) {
        let total = samplers * stepCounts.reduce(0, +)
        return (total, Double(total) * perStep)
    }
}

/// The cells of a picture grid.
public enum GridCell {
    /// The size of one picture in a grid: the longer side `max(width, height)` clamped to
    /// `minSide...maxSide` (small pictures are enlarged so their labels fit), the other in
    /// proportion (rounded down).
    public static func size(width: Int, height: Int, minSide: Int = 192, maxSide: Int = 256) -> (width: Int, height: Int) {
        let side = min(maxSide, max(minSide, max(width, height)))
        return (width * side / max(width, height), height * side / max(width, height))
    }
}
