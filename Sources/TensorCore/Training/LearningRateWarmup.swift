/// A learning rate that rises linearly from near zero to `base` over the first `warmupSteps`
/// steps, then stays there (latent diffusion's training warmed up over 10,000 steps):
///
///     lr(step) = base · min(1, step / warmupSteps)        for step = 1, 2, ...
///
/// At the start Adam's running averages hold only a few gradients, so full steps would be noisy.
public struct LearningRateWarmup: Sendable {
    public var base: Float
    public var warmupSteps: Int

    public init(base: Float, warmupSteps: Int) {
        precondition(warmupSteps >= 0, "warm-up steps must be 0 or more, got \(warmupSteps)")
        self.base = base
        self.warmupSteps = warmupSteps
    }

    /// The learning rate of step `step` (counted from 1).
    public func rate(atStep step: Int) -> Float {
        warmupSteps == 0 ? base : base * min(1, Float(step) / Float(warmupSteps))
    }
}
