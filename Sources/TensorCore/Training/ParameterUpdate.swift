/// What happens to a network's weights after its gradients are known, as one step:
///
///     g ← clip(g)            the gradients scaled down together to at most `maxGradientNorm`
///     θ ← AdamW(θ, g)        one optimiser step on the Float32 master weights
///     θ̄ ← EMA(θ̄, θ)          the moving average that gets released, if one is kept
///
/// Every trainer (UNet, VAE, text encoder) updates its weights through one of these.
///
/// ```swift
/// var update = try ParameterUpdate(optimiser: AdamW(validating: 1e-4), emaDecay: 0.999, parameters: weights)
/// update.apply(gradients, to: &weights)
/// ```
public struct ParameterUpdate {
    public var optimiser: AdamW
    /// Gradients are scaled down together to at most this length (nil: never).
    public var maxGradientNorm: Float?
    /// The moving average of the weights, updated after every step (nil: none kept).
    public internal(set) var averaged: ExponentialMovingAverage?
    /// The gradient length before clipping at the last step (a sudden jump means trouble).
    public private(set) var lastGradientNorm: Float = 0

    /// Checks the settings a command line or a file may get wrong, naming the first bad one.
    public init(optimiser: AdamW, maxGradientNorm: Float? = 1, emaDecay: Float? = nil, parameters: [String: Tensor]) throws {
        guard optimiser.learningRate > 0, optimiser.learningRate.isFinite else {
            throw TrainingError.setting("learning rate", value: "\(optimiser.learningRate)", mustBe: "a positive number")
        }
        if let maxGradientNorm, !(maxGradientNorm > 0) {
            throw TrainingError.setting("gradient-norm limit", value: "\(maxGradientNorm)", mustBe: "positive")
        }
        if let emaDecay, !(0..<1).contains(emaDecay) {
            throw TrainingError.setting("EMA decay", value: "\(emaDecay)", mustBe: "in [0, 1)")
        }
        self.optimiser = optimiser
        self.maxGradientNorm = maxGradientNorm
        self.averaged = emaDecay.map { ExponentialMovingAverage(parameters, decay: $0) }
    }

    /// Clips `gradients`, takes one AdamW step on `parameters` and moves the average.
    public mutating func apply(_ gradients: [String: Tensor], to parameters: inout [String: Tensor]) {
        Profiler.measure("optimiser (clipping, AdamW, EMA)") {
            // Clipping's factor is applied inside AdamW's pass (the same numbers, one pass fewer).
            lastGradientNorm = maxGradientNorm == nil ? 0 : gradientNorm(gradients)
            let scale = maxGradientNorm.map { clippingFactor(norm: lastGradientNorm, maxNorm: $0) } ?? 1
            optimiser.step(&parameters, gradients: gradients, gradientScale: scale)
            averaged?.update(parameters)
        }
    }
}
