/// An exponential moving average of the weights, which Stable Diffusion's training keeps beside
/// them (the `model_ema.*` tensors of a training checkpoint) and releases as the model: the
/// average of the last few thousand steps draws better pictures than the weights of any one step.
///
/// After every optimiser step, as latent diffusion's `LitEma` does:
///
///     decay  = min(decay, (1 + updates) / (10 + updates))      a short memory while it is young
///     shadow ← shadow − (1 − decay) · (shadow − θ)
public struct ExponentialMovingAverage {
    public var decay: Float
    /// Updates so far.
    public private(set) var updates = 0
    /// The averaged weights, by parameter name.
    public private(set) var shadow: [String: Tensor]

    /// Starts the average at the current weights. Latent diffusion used `decay` 0.9999.
    public init(_ parameters: [String: Tensor], decay: Float = 0.9999) {
        self.decay = decay
        shadow = parameters
    }

    /// Continues an average saved after `updates` updates.
    public init(shadow: [String: Tensor], updates: Int, decay: Float) {
        self.decay = decay
        self.updates = updates
        self.shadow = shadow
    }

    /// Moves the average towards `parameters`.
    public mutating func update(_ parameters: [String: Tensor]) {
        updates += 1
        let d = min(decay, Float(1 + updates) / Float(10 + updates))
        for (name, theta) in parameters {
            guard let average = shadow[name] else { continue }
            shadow[name] = Reference.zip(average, theta) { $0 - (1 - d) * ($0 - $1) }
        }
    }
}
