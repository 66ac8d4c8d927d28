import Foundation

// The backward passes of group and layer normalisation, fast: the twins of the `Backward`
// sections of Reference+GroupNorm.swift and Reference+LayerNorm.swift. With x̂ = (x − μ)·r over one
// normalised set of m numbers and dx̂ = dz·γ:
//
//     dx = r · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ · x̂))        dγ += dz · x̂,  dβ += dz
//
// Each set is one piece of work for a core, in two passes: the first finds dz (through the SiLU if
// it was fused), parks it in dx, and sums what the formula's means need; the second turns dz into
// dx. The dγ and dβ sums are kept per piece of work and added up at the end, in a fixed order, so
// the result does not depend on which core finished first.

extension Fast {
    /// `Reference.groupNormBackward`, one (sample, group) per piece of work.
    public static func groupNormBackward(_ dy: Tensor, x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float,
                                         silu: Bool) -> (dx: Tensor, dWeight: Tensor, dBias: Tensor) {
        Profiler.measure("group norm backward") {
            let batch = x.shape[0], channels = x.shape[1]
            let pixels = x.count / (batch * channels), perGroup = channels / groups
            let gamma = weight?.scalars, beta = bias?.scalars
            // Per (sample, channel) sums of dz·x̂ and dz, added over the samples at the end.
            var partialGamma = [Float](repeating: 0, count: batch * channels), partialBeta = partialGamma
            var dx = Tensor(shape: x.shape, unsafeUninitialized: { _ in })
            x.withUnsafePointer { xs in dy.withUnsafePointer { gs in dx.withUnsafeMutablePointer { dxs in
            partialGamma.withUnsafeMutableBufferPointer { pg in partialBeta.withUnsafeMutableBufferPointer { pb in
                let xs = SendablePointer(UnsafeMutablePointer(mutating: xs)), gs = SendablePointer(UnsafeMutablePointer(mutating: gs))
                let dxs = SendablePointer(dxs), pg = SendablePointer(pg.baseAddress!), pb = SendablePointer(pb.baseAddress!)
                Parallel.forEach(batch * groups) { task in
                    let n = task / groups, firstChannel = task % groups * perGroup
                    let start = (n * channels + firstChannel) * pixels, m = perGroup * pixels
                    let (mean, r) = statistics(xs.pointer + start, count: m, eps: eps)
                    // dz = dy, or with the fused SiLU dy · silu'(z), z = γ·x̂ + β (folded into one
                    // multiply-add per channel as in the forward), for the whole group at once.
                    let dzGroup = dxs.pointer + start, dyGroup = gs.pointer + start
                    if silu {
                        for c in firstChannel..<(firstChannel + perGroup) {
                            let offset = (n * channels + c) * pixels
                            let x = xs.pointer + offset, dz = dxs.pointer + offset
                            let a = r * (gamma?[c] ?? 1), b = (beta?[c] ?? 0) - mean * a
                            for i in 0..<pixels { dz[i] = x[i] * a + b }
                        }
                        Activation.siluDerivative.apply(dzGroup, into: dzGroup, count: m)
                        for i in 0..<m { dzGroup[i] *= dyGroup[i] }
                    } else {
                        dzGroup.update(from: dyGroup, count: m)
                    }
                    var sumD = 0.0, sumDX = 0.0
                    for c in firstChannel..<(firstChannel + perGroup) {
                        let offset = (n * channels + c) * pixels
                        let x = xs.pointer + offset, dz = dxs.pointer + offset
                        let scale = gamma?[c] ?? 1
                        let (dBeta, dGamma) = sumsOfGradient(dz, x: x, mean: mean, r: r, count: pixels)
                        pg.pointer[n * channels + c] = dGamma
                        pb.pointer[n * channels + c] = dBeta
                        sumD += Double(dBeta * scale)
                        sumDX += Double(dGamma * scale)
                    }
                    let meanD = Float(sumD / Double(m)), meanDX = Float(sumDX / Double(m))
                    for c in firstChannel..<(firstChannel + perGroup) {
                        let offset = (n * channels + c) * pixels, scale = gamma?[c] ?? 1
                        let x = xs.pointer + offset, dz = dxs.pointer + offset
                        // dx = r·(dz·γ − mean(dx̂)) − (x − μ)·r²·mean(dx̂·x̂)
                        let a = r * scale, b = r * meanD, c2 = r * r * meanDX
                        for i in 0..<pixels { dz[i] = dz[i] * a - b - (x[i] - mean) * c2 }
                    }
                }
            }}}}}
            let dWeight = (0..<channels).map { c in (0..<batch).reduce(0) { $0 + partialGamma[$1 * channels + c] } }
            let dBias = (0..<channels).map { c in (0..<batch).reduce(0) { $0 + partialBeta[$1 * channels + c] } }
            return (dx, Tensor(shape: [channels], scalars: dWeight), Tensor(shape: [channels], scalars: dBias))
        }
    }

    /// `Reference.layerNormBackward`, blocks of tokens shared out to the cores.
    public static func layerNormBackward(_ dy: Tensor, x: Tensor, weight: Tensor?, eps: Float)
        -> (dx: Tensor, dWeight: Tensor, dBias: Tensor) {
        Profiler.measure("layer norm backward") {
            let width = x.shape[x.rank - 1], tokens = x.count / width
            let gamma = weight?.scalars
            let blocks = min(tokens, Parallel.threadCount * 4)
            // Per block of tokens, sums of dy·x̂ and dy for every feature, added up at the end.
            var partialGamma = [Float](repeating: 0, count: blocks * width), partialBeta = partialGamma
            var dx = Tensor(shape: x.shape, unsafeUninitialized: { _ in })
            x.withUnsafePointer { xs in dy.withUnsafePointer { gs in dx.withUnsafeMutablePointer { dxs in
            partialGamma.withUnsafeMutableBufferPointer { pg in partialBeta.withUnsafeMutableBufferPointer { pb in
                let xs = SendablePointer(UnsafeMutablePointer(mutating: xs)), gs = SendablePointer(UnsafeMutablePointer(mutating: gs))
                let dxs = SendablePointer(dxs), pg = SendablePointer(pg.baseAddress!), pb = SendablePointer(pb.baseAddress!)
                Parallel.forEach(blocks) { block in
                    let dGamma = pg.pointer + block * width, dBeta = pb.pointer + block * width
                    for t in GEMMTiling.share(block, of: blocks, total: tokens, unit: 1) {
                        let row = xs.pointer + t * width, g = gs.pointer + t * width, out = dxs.pointer + t * width
                        let (mean, r) = statistics(row, count: width, eps: eps)
                        var sumD: Float = 0, sumDX: Float = 0
                        for i in 0..<width {
                            let xHat = (row[i] - mean) * r, dHat = g[i] * (gamma?[i] ?? 1)
                            dGamma[i] += g[i] * xHat
                            dBeta[i] += g[i]
                            sumD += dHat
                            sumDX += dHat * xHat
                        }
                        let meanD = sumD / Float(width), meanDX = sumDX / Float(width)
                        for i in 0..<width {
                            let xHat = (row[i] - mean) * r
                            out[i] = r * (g[i] * (gamma?[i] ?? 1) - meanD - xHat * meanDX)
                        }
                    }
                }
            }}}}}
            let dWeight = (0..<width).map { i in (0..<blocks).reduce(0) { $0 + partialGamma[$1 * width + i] } }
            let dBias = (0..<width).map { i in (0..<blocks).reduce(0) { $0 + partialBeta[$1 * width + i] } }
            return (dx, Tensor(shape: [width], scalars: dWeight), Tensor(shape: [width], scalars: dBias))
        }
    }
}

/// Mean and `r = 1/√(σ² + ε)` of `count` numbers (σ² the biased variance, as PyTorch's norms),
/// two passes so that a large mean does not swallow a small spread; sums eight lanes wide in
/// Float over blocks of 1024 numbers, the blocks added up in Double.
private func statistics(_ x: UnsafePointer<Float>, count: Int, eps: Float) -> (mean: Float, r: Float) {
    let mean = blockSums(count, vector: { eight(x, $0) }, scalar: { x[$0] }) / Double(count)
    let center = Float(mean)
    let squares = blockSums(count, vector: { i in let d = eight(x, i) - center; return d * d },
                            scalar: { i in let d = x[i] - center; return d * d })
    return (center, Float(1 / (squares / Double(count) + Double(eps)).squareRoot()))
}

/// `Σ dz` and `Σ dz·x̂` with `x̂ = (x − mean)·r`, summed as in `statistics`.
@inline(__always)
private func sumsOfGradient(_ dz: UnsafePointer<Float>, x: UnsafePointer<Float>, mean: Float, r: Float, count: Int)
    -> (Float, Float) {
    let sum = blockSums(count, vector: { eight(dz, $0) }, scalar: { dz[$0] })
    let sumTimesHat = blockSums(count, vector: { i in eight(dz, i) * ((eight(x, i) - mean) * r) },
                                scalar: { i in dz[i] * ((x[i] - mean) * r) })
    return (Float(sum), Float(sumTimesHat))
}
