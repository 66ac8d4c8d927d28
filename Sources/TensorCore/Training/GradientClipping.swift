/// Scales all gradients together so that their joint length is at most `maxNorm`, as
/// `torch.nn.utils.clip_grad_norm_` does:
///
///     ‖g‖ = √(Σ over every number of every gradient of g²)
///     g  ← g · maxNorm / (‖g‖ + 10⁻⁶)          only if that factor is below 1
///
/// One unlucky batch then cannot throw the weights far, and the direction of the step is kept.
///
/// - Returns: the length `‖g‖` before clipping (training logs it: a sudden jump means trouble).
@discardableResult
public func clipGradientNorm(_ gradients: inout [String: Tensor], maxNorm: Float) -> Float {
    var sumOfSquares = 0.0
    for gradient in gradients.values {
        gradient.withUnsafePointer { g in for i in 0..<gradient.count { sumOfSquares += Double(g[i]) * Double(g[i]) } }
    }
    let norm = Float(sumOfSquares.squareRoot())
    let factor = maxNorm / (norm + 1e-6)
    if factor < 1 {
        for name in Array(gradients.keys) {
            // Out of the dictionary while it is scaled, so that it is scaled in place, not copied.
            var gradient = gradients.removeValue(forKey: name)!
            let count = gradient.count
            gradient.withUnsafeMutablePointer { g in for i in 0..<count { g[i] *= factor } }
            gradients[name] = gradient
        }
    }
    return norm
}
