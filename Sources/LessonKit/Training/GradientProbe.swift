import StableDiffusion
import TensorCore

/// Backpropagation next to the slow way. For a few weights of a UNet, the gradient that one
/// backward pass computes for all of them at once, and the slope measured by nudging that one
/// weight up and down and running the network again:
///
///     ∂loss/∂w ≈ (loss(w + h) − loss(w − h)) / 2h          (central difference, error ∝ h²)
///
/// In each tensor the weight with the largest gradient is probed, so the slope stands well above
/// Float32's rounding of the loss (about 10⁻⁷ of it, divided by 2h).
///
/// ```swift
/// let probe = try GradientProbe(parameters: weights, configuration: config, batch: batch,
///                               keys: ["conv_in.weight", "conv_out.bias"])
/// for row in probe.rows { print(row.key, row.backprop, row.nudged) }
/// ```
public struct GradientProbe: Sendable {
    /// A training batch with everything random fixed: the same question for every loss below.
    public struct Batch: Sendable {
        public var latents: Tensor, context: Tensor, timesteps: [Int], noise: Tensor
        public init(latents: Tensor, context: Tensor, timesteps: [Int], noise: Tensor) {
            (self.latents, self.context, self.timesteps, self.noise) = (latents, context, timesteps, noise)
        }
    }

    public struct Row: Sendable {
        public let key: String
        /// The probed number's position in its tensor, and its value.
        public let index: Int, weight: Float
        /// The gradient from backpropagation, and the slope measured by nudging.
        public let backprop: Float, nudged: Float
    }

    /// The loss at the unchanged weights.
    public let loss: Float
    public let rows: [Row]
    /// How many numbers one backward pass found a gradient for.
    public let parameterCount: Int
    /// The nudge h.
    public let nudge: Float

    public init(parameters: [String: Tensor], configuration: UNetConfiguration, batch: Batch, keys: [String],
                nudge h: Float = 1e-2) throws {
        func lossAndGradients(_ weights: [String: Tensor]) throws -> (Float, Gradients) {
            let trainer = try UNetTrainer(parameters: weights, configuration: configuration, optimiser: AdamW(learningRate: 1e-4))   // never steps
            return try trainer.lossAndGradients(latents: batch.latents, context: batch.context, timesteps: batch.timesteps,
                                                noise: batch.noise)
        }
        let (loss, gradients) = try lossAndGradients(parameters)
        rows = try keys.map { key in
            guard let tensor = parameters[key], let gradient = gradients.tensors[key] else {
                throw LessonError("the UNet has no weight '\(key)'")
            }
            let index = gradient.scalars.indices.max { abs(gradient.scalars[$0]) < abs(gradient.scalars[$1]) }!
            func loss(nudgedBy delta: Float) throws -> Float {
                var scalars = tensor.scalars
                scalars[index] += delta
                var nudged = parameters
                nudged[key] = Tensor(shape: tensor.shape, scalars: scalars)
                return try lossAndGradients(nudged).0
            }
            let slope = (try loss(nudgedBy: h) - loss(nudgedBy: -h)) / (2 * h)
            return Row(key: key, index: index, weight: tensor.scalars[index], backprop: gradient.scalars[index], nudged: slope)
        }
        self.loss = loss
        self.parameterCount = parameters.values.reduce(0) { $0 + $1.count }
        self.nudge = h
    }
}
