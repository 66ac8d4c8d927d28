import Foundation

/// AdamW (Loshchilov & Hutter, 2019), the optimiser Stable Diffusion was trained with: Adam's
/// step, scaled per parameter by running averages of the gradient and of its square, with the
/// weight decay applied to the weights directly ("decoupled") instead of added to the gradient.
///
/// For every number θ of every parameter, with its gradient g, at step t = 1, 2, ...:
///
///     θ ← θ · (1 − lr·λ)                              decoupled weight decay
///     m ← β₁·m + (1 − β₁)·g                           running mean of the gradient
///     v ← β₂·v + (1 − β₂)·g²                          running mean of its square
///     θ ← θ − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
///
/// The divisions by `1 − βᵗ` undo the averages' start at zero ("bias correction"); the formula
/// is written in the order PyTorch's `torch.optim.AdamW` computes it, so both give the same
/// numbers. Parameters are Float32 "master weights", whatever precision a checkpoint stores.
///
/// ```swift
/// var optimiser = AdamW(learningRate: 1e-4, weightDecay: 1e-2)
/// var parameters = ["w": Tensor(shape: [2], scalars: [1, -1])]
/// optimiser.step(&parameters, gradients: ["w": Tensor(shape: [2], scalars: [0.5, -0.5])])
/// print(parameters["w"]!.scalars)   // [0.99989, -0.99989]: each moved lr against its gradient's sign, less decay
/// ```
public struct AdamW {
    public var learningRate: Float
    public var beta1: Float, beta2: Float
    public var epsilon: Float
    public var weightDecay: Float
    /// Steps taken so far (t of the formula after the next step is `steps + 1`).
    public private(set) var steps = 0
    /// The running means m and v, per parameter name.
    public private(set) var firstMoments: [String: [Float]] = [:]
    public private(set) var secondMoments: [String: [Float]] = [:]

    /// PyTorch's defaults: β₁ = 0.9, β₂ = 0.999, ε = 1e-8, λ = 0.01.
    public init(learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 1e-2) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    /// The same optimiser, after checking the settings a command line or a file may get wrong:
    /// a learning rate that is not positive, betas outside [0, 1), a negative ε or decay.
    public init(validating learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
                weightDecay: Float = 1e-2) throws {
        guard learningRate > 0, learningRate.isFinite else {
            throw TrainingError.setting("learning rate", value: "\(learningRate)", mustBe: "a positive number")
        }
        for (name, beta) in [("β₁", beta1), ("β₂", beta2)] where !(0..<1).contains(beta) {
            throw TrainingError.setting("AdamW \(name)", value: "\(beta)", mustBe: "in [0, 1)")
        }
        for (name, value) in [("ε", epsilon), ("weight decay", weightDecay)] where !(value >= 0 && value.isFinite) {
            throw TrainingError.setting("AdamW \(name)", value: "\(value)", mustBe: "0 or more")
        }
        self.init(learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon, weightDecay: weightDecay)
    }

    /// Continues from a saved state (see `ParameterUpdate.restore`).
    mutating func restore(steps: Int, firstMoments: [String: [Float]], secondMoments: [String: [Float]]) {
        self.steps = steps
        self.firstMoments = firstMoments
        self.secondMoments = secondMoments
    }

    /// One step: updates every parameter that has a gradient (parameters without one are left
    /// alone, as PyTorch skips parameters whose `.grad` is None).
    /// With `gradientScale`, every gradient is first multiplied by it (gradient clipping's factor).
    public mutating func step(_ parameters: inout [String: Tensor], gradients: [String: Tensor], gradientScale: Float = 1) {
        steps += 1
        let t = Float(steps)
        let correction1 = 1 - powf(beta1, t), correction2 = 1 - powf(beta2, t)
        let stepSize = learningRate / correction1
        let correction2Root = correction2.squareRoot()
        for (name, gradient) in gradients {
            // Taken out of their dictionaries while they change, so they are changed in place, not copied.
            guard var theta = parameters.removeValue(forKey: name) else { continue }
            precondition(theta.shape == gradient.shape, "AdamW: gradient \(gradient.shape) for parameter '\(name)' \(theta.shape)")
            var m = firstMoments.removeValue(forKey: name) ?? [Float](repeating: 0, count: theta.count)
            var v = secondMoments.removeValue(forKey: name) ?? [Float](repeating: 0, count: theta.count)
            let decay = 1 - learningRate * weightDecay
            let (beta1, beta2, epsilon) = (beta1, beta2, epsilon)
            theta.withUnsafeMutablePointer { theta in gradient.withUnsafePointer { g in
            m.withUnsafeMutableBufferPointer { m in v.withUnsafeMutableBufferPointer { v in
                let (theta, g) = (SendablePointer(theta), SendablePointer(UnsafeMutablePointer(mutating: g)))
                let (m, v) = (SendablePointer(m.baseAddress!), SendablePointer(v.baseAddress!))
                // Every number is updated on its own: the cores take blocks of them, eight at a time.
                Parallel.forEachChunk(of: gradient.count, minimumChunk: 32_768) { range in
                    var i = range.lowerBound
                    while i < range.upperBound {
                        let lanes = min(8, range.upperBound - i)
                        var (th, mi, vi, gi) = lanes == 8
                            ? (eight(theta.pointer, i), eight(m.pointer, i), eight(v.pointer, i), eight(g.pointer, i))
                            : (SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>())
                        for l in 0..<lanes where lanes < 8 {
                            (th[l], mi[l], vi[l], gi[l]) = (theta.pointer[i + l], m.pointer[i + l], v.pointer[i + l], g.pointer[i + l])
                        }
                        gi *= gradientScale
                        th *= decay
                        mi = beta1 * mi + (1 - beta1) * gi
                        vi = beta2 * vi + (1 - beta2) * gi * gi
                        let denominator = vi.squareRoot() / correction2Root + epsilon
                        th -= stepSize * mi / denominator
                        if lanes == 8 {
                            store(th, theta.pointer, i)
                            store(mi, m.pointer, i)
                            store(vi, v.pointer, i)
                        } else {
                            for l in 0..<lanes { (theta.pointer[i + l], m.pointer[i + l], v.pointer[i + l]) = (th[l], mi[l], vi[l]) }
                        }
                        i += lanes
                    }
                }
            }}}}
            parameters[name] = theta
            firstMoments[name] = m
            secondMoments[name] = v
        }
    }
}
