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
    // Four running sums in Double, so that the additions do not wait on each other; the order is
    // fixed (tensors by name), so the same gradients always give the same length.
    var sums = SIMD4<Double>()
    for name in gradients.keys.sorted() {
        let gradient = gradients[name]!, count = gradient.count
        gradient.withUnsafePointer { g in
            var i = 0
            while i + 4 <= count {
                let v = SIMD4<Double>(Double(g[i]), Double(g[i + 1]), Double(g[i + 2]), Double(g[i + 3]))
                sums += v * v
                i += 4
            }
            while i < count { sums[0] += Double(g[i]) * Double(g[i]); i += 1 }
        }
    }
    let norm = Float(sums.sum().squareRoot())
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
