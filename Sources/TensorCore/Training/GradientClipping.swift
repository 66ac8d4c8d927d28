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
    let norm = gradientNorm(gradients)
    let factor = clippingFactor(norm: norm, maxNorm: maxNorm)
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

/// `maxNorm / (‖g‖ + 10⁻⁶)` where that is below 1, else 1: what clipping multiplies every gradient
/// by. A training step hands it to `AdamW.step(_:gradients:gradientScale:)` instead of scaling the
/// gradients first, which saves a pass over them (and a copy of any that are shared).
public func clippingFactor(norm: Float, maxNorm: Float) -> Float {
    min(1, maxNorm / (norm + 1e-6))
}

/// `‖g‖ = √(Σ g²)` over every number of every gradient, summed in Double. The numbers are taken in
/// blocks of 65536, blocks shared out to the cores and their sums added in a fixed order (tensors
/// by name, blocks in order), so the same gradients always give the same length on any machine.
public func gradientNorm(_ gradients: [String: Tensor]) -> Float {
    let block = 1 << 16
    var total = 0.0
    for name in gradients.keys.sorted() {
        let gradient = gradients[name]!, count = gradient.count
        let blocks = (count + block - 1) / block
        var sums = [Double](repeating: 0, count: blocks)
        gradient.withUnsafePointer { g in sums.withUnsafeMutableBufferPointer { sums in
            let source = SendablePointer(UnsafeMutablePointer(mutating: g)), target = SendablePointer(sums.baseAddress!)
            Parallel.forEachChunk(of: blocks, minimumChunk: 1) { range in
                for b in range {
                    // Four running sums, so that the additions do not wait on each other.
                    var lanes = SIMD4<Double>()
                    var i = b * block
                    let end = min(count, i + block)
                    while i + 4 <= end {
                        let v = SIMD4<Double>(Double(source.pointer[i]), Double(source.pointer[i + 1]),
                                              Double(source.pointer[i + 2]), Double(source.pointer[i + 3]))
                        lanes += v * v
                        i += 4
                    }
                    while i < end { lanes[0] += Double(source.pointer[i]) * Double(source.pointer[i]); i += 1 }
                    target.pointer[b] = lanes.sum()
                }
            }
        }}
        total = sums.reduce(total, +)
    }
    return Float(total.squareRoot())
}
