import Foundation

// Group normalisation and layer normalisation, fast: the twins of Reference+GroupNorm.swift and
// Reference+LayerNorm.swift.
//
// Both compute, over some set of numbers, `y = (x − mean) / √(var + ε) · γ + β`; they differ in the
// set. Here each set is one piece of work for a core, its sums are taken eight lanes at a time,
// and normalisation and the affine map are folded into one multiply-add per element.

extension Fast {
    /// `Reference.groupNorm`, one (sample, group) per piece of work; with `silu`, the SiLU is
    /// applied in the same pass (one pass over a 100 MB activation is cheaper than two).
    public static func groupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float, silu: Bool) -> Tensor {
        Profiler.measure("group norm") { x.groupNormalized(groups: groups, weight: weight, bias: bias, eps: eps, silu: silu) }
    }

    /// `Reference.layerNorm`, tokens shared out to the cores.
    public static func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) -> Tensor {
        Profiler.measure("layer norm") { x.layerNormalized(weight: weight, bias: bias, eps: eps) }
    }
}

extension Tensor {
    func groupNormalized(groups: Int, weight: Tensor?, bias: Tensor?, eps: Float, silu: Bool) -> Tensor {
        let batch = shape[0], channels = shape[1]
        precondition(channels % groups == 0, "groupNorm: \(channels) channels do not split into \(groups) groups")
        let inner = count / (batch * channels)           // pixels per channel
        let perGroup = channels / groups
        let groupSize = perGroup * inner
        let gamma = weight?.scalars, beta = bias?.scalars
        return withUnsafePointer { x in
            let src = SendablePointer(UnsafeMutablePointer(mutating: x))
            return Tensor(shape: shape, unsafeUninitialized: { y in
                let dst = SendablePointer(y.baseAddress!)
                Parallel.forEach(batch * groups) { task in
                    let n = task / groups, group = task % groups
                    let start = (n * channels + group * perGroup) * inner
                    let (mean, invStd) = meanAndInverseStd(src.pointer + start, count: groupSize, eps: eps)
                    for c in 0..<perGroup {
                        let channel = group * perGroup + c
                        // Fold normalisation and affine into one multiply-add per element.
                        let scale = invStd * (gamma?[channel] ?? 1)
                        let shift = (beta?[channel] ?? 0) - mean * scale
                        let (from, to) = (src.pointer + start + c * inner, dst.pointer + start + c * inner)
                        for i in 0..<inner { to[i] = from[i] * scale + shift }
                    }
                    // The SiLU on the group just written, while it is still in the cache (one call
                    // for all its channels: a 2x2 latent's channel is only four numbers).
                    if silu { Activation.silu.apply(dst.pointer + start, into: dst.pointer + start, count: groupSize) }
                }
            })
        }
    }

    func layerNormalized(weight: Tensor?, bias: Tensor?, eps: Float) -> Tensor {
        let width = shape[rank - 1]
        let rows = count / width
        let gamma = weight?.scalars, beta = bias?.scalars
        return withUnsafePointer { x in
            let src = SendablePointer(UnsafeMutablePointer(mutating: x))
            return Tensor(shape: shape, unsafeUninitialized: { y in
                let dst = SendablePointer(y.baseAddress!)
                Parallel.forEachChunk(of: rows, minimumChunk: 16) { range in
                    for row in range {
                        let from = src.pointer + row * width, to = dst.pointer + row * width
                        let (mean, invStd) = meanAndInverseStd(from, count: width, eps: eps)
                        for i in 0..<width {
                            to[i] = (from[i] - mean) * invStd * (gamma?[i] ?? 1) + (beta?[i] ?? 0)
                        }
                    }
                }
            })
        }
    }
}

/// Mean and `1/√(var + ε)` of `count` numbers (biased variance, as PyTorch's norms use).
///
/// Sums of x and x² run eight lanes wide in Float over blocks of 1024 numbers (128 per lane, few
/// enough to lose nothing that matters), and the block sums add up in Double: a 64x64x10 group
/// summed in Float alone would lose digits.
@inline(__always)
func meanAndInverseStd(_ x: UnsafePointer<Float>, count: Int, eps: Float) -> (Float, Float) {
    var sum = 0.0, sumSquares = 0.0
    let raw = UnsafeRawPointer(x)
    let vectorEnd = count & ~7
    for blockStart in stride(from: 0, to: vectorEnd, by: 1024) {
        var s = SIMD8<Float>(), s2 = SIMD8<Float>()
        for i in stride(from: blockStart, to: min(vectorEnd, blockStart + 1024), by: 8) {
            let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            s += v
            s2 += v * v
        }
        sum += Double(s.sum())
        sumSquares += Double(s2.sum())
    }
    for i in vectorEnd..<count {
        let v = Double(x[i])
        sum += v
        sumSquares += v * v
    }
    let mean = sum / Double(count)
    let variance = max(0, sumSquares / Double(count) - mean * mean)
    return (Float(mean), Float(1 / (variance + Double(eps)).squareRoot()))
}
