import TensorCore

/// What one step of a sampler driven by `OptimalDenoiser` saw and did.
///
/// The tensors are those of the whole batch; the weights are those of its first row (the lesson
/// samples one picture at a time).
public struct DenoiserStep {
    /// The step's position in the run, from 0.
    public let index: Int
    /// The training timestep t the step denoises.
    public let timestep: Int
    /// ᾱ_t, from the sampler's float32 schedule.
    public let alphaBar: Float
    /// x_t, the sample the step starts from.
    public let latents: Tensor
    /// ε̂, the noise prediction the sampler stepped with (the guided one, when guided).
    public let noise: Tensor
    /// x̂₀, the predicted clean sample.
    public let clean: Tensor
    /// x_prev, the sample the step hands to the next one.
    public let next: Tensor
    /// The denoiser's weights w_i over the pictures (the conditional ones, when guided).
    public let weights: [Double]

    /// σ_t = √((1 − ᾱ_t) / ᾱ_t): the noise measured against the picture (x_t/√ᾱ_t = x₀ + σ_t · ε).
    public var sigma: Float { ((1 - alphaBar) / alphaBar).squareRoot() }
    /// The largest weight: how sure the denoiser is which picture x_t came from.
    public var topWeight: Double { weights.max()! }
    /// The index of the picture with the largest weight.
    public var topPicture: Int { weights.firstIndex(of: topWeight)! }
}

/// A whole run of the sampler, from pure noise to its result.
public struct SamplerRun {
    /// One entry per step, in order.
    public let steps: [DenoiserStep]
    /// With guidance: the unconditional and the conditional x̂₀ of the first step.
    public let firstPredictions: (unconditional: Tensor, conditional: Tensor)?

    /// The sample after the last step.
    public var result: Tensor { steps.last!.next }

    /// The 1-based step from which one picture holds more than 99% of the weight (the last step
    /// when none does): where the sampler has made its choice.
    public var settledStep: Int {
        (steps.firstIndex { $0.topWeight > 0.99 } ?? steps.count - 1) + 1
    }
}
