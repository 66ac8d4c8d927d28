import Foundation

// Group normalisation (UNet, VAE) and layer normalisation (CLIP, UNet transformer blocks).
//
// Both compute, over some set of numbers, `y = (x − mean) / √(var + ε) · γ + β`; they differ in the
// set. Sums are accumulated in Double: a group of 64x64x10 values summed in Float loses digits.

extension Tensor {
    /// GroupNorm (Wu & He, 2018) on `(N, C, H, W)` or any `(N, C, ...)`: channels are split into
    /// `groups` groups, and each (sample, group) is normalised over its channels and pixels.
    ///
    /// - Parameters:
    ///   - weight: γ, `(C)`; bias: β, `(C)`.
    ///   - eps: 1e-5 in the UNet, 1e-6 in the VAE.
    public func groupNorm(groups: Int, weight: Tensor?, bias: Tensor?, eps: Float) -> Tensor {
        Profiler.measure("group norm") { groupNormalized(groups: groups, weight: weight, bias: bias, eps: eps) }
    }

    func groupNormalized(groups: Int, weight: Tensor?, bias: Tensor?, eps: Float) -> Tensor {
        let batch = shape[0], channels = shape[1]
        precondition(channels % groups == 0, "groupNorm: \(channels) channels do not split into \(groups) groups")
        let inner = count / (batch * channels)           // pixels per channel
        let perGroup = channels / groups
        let groupSize = perGroup * inner
        var out = Tensor.zeros(shape)
        let gamma = weight?.scalars, beta = bias?.scalars
        withUnsafePointer { x in
            let src = SendablePointer(UnsafeMutablePointer(mutating: x))
            out.withUnsafeMutablePointer { y in
                let dst = SendablePointer(y)
                Parallel.forEach(batch * groups) { task in
                    let n = task / groups, group = task % groups
                    let start = (n * channels + group * perGroup) * inner
                    let (mean, invStd) = meanAndInverseStd(src.pointer + start, count: groupSize, eps: eps)
                    for c in 0..<perGroup {
                        let channel = group * perGroup + c
                        // Fold normalisation and affine into one multiply-add per element.
                        let scale = invStd * (gamma?[channel] ?? 1)
                        let shift = (beta?[channel] ?? 0) - mean * scale
                        let from = src.pointer + start + c * inner, to = dst.pointer + start + c * inner
                        for i in 0..<inner { to[i] = from[i] * scale + shift }
                    }
                }
            }
        }
        return out
    }

    /// LayerNorm (Ba et al., 2016) over the last dimension of `(..., D)`: every token's feature
    /// vector is normalised on its own. `weight` γ and `bias` β are `(D)`.
    public func layerNorm(weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
        Profiler.measure("layer norm") { layerNormalized(weight: weight, bias: bias, eps: eps) }
    }

    func layerNormalized(weight: Tensor?, bias: Tensor?, eps: Float) -> Tensor {
        let width = shape[rank - 1]
        let rows = count / width
        var out = Tensor.zeros(shape)
        let gamma = weight?.scalars, beta = bias?.scalars
        withUnsafePointer { x in
            let src = SendablePointer(UnsafeMutablePointer(mutating: x))
            out.withUnsafeMutablePointer { y in
                let dst = SendablePointer(y)
                Parallel.forEachChunk(of: rows, minimumChunk: 16) { range in
                    for row in range {
                        let from = src.pointer + row * width, to = dst.pointer + row * width
                        let (mean, invStd) = meanAndInverseStd(from, count: width, eps: eps)
                        for i in 0..<width {
                            to[i] = (from[i] - mean) * invStd * (gamma?[i] ?? 1) + (beta?[i] ?? 0)
                        }
                    }
                }
            }
        }
        return out
    }
}

/// Mean and `1/√(var + ε)` of `count` numbers (biased variance, as PyTorch's norms use).
@inline(__always)
func meanAndInverseStd(_ x: UnsafePointer<Float>, count: Int, eps: Float) -> (Float, Float) {
    var sum = 0.0, sumSquares = 0.0
    for i in 0..<count {
        let v = Double(x[i])
        sum += v
        sumSquares += v * v
    }
    let mean = sum / Double(count)
    let variance = max(0, sumSquares / Double(count) - mean * mean)
    return (Float(mean), Float(1 / (variance + Double(eps)).squareRoot()))
}
