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
        for g in gradient.scalars { sumOfSquares += Double(g) * Double(g) }
    }
    let norm = Float(sumOfSquares.squareRoot())
    let factor = maxNorm / (norm + 1e-6)
    if factor < 1 {
        for name in Array(gradients.keys) { gradients[name] = Reference.map(gradients[name]!) { $0 * factor } }
    }
    return norm
}
