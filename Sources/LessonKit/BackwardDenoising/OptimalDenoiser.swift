import Foundation
import TensorCore

/// The best possible denoiser for a finite set of examples, written down instead of trained.
///
/// If the data are exactly the points `x⁽¹⁾ … x⁽ᴺ⁾` (pictures, or 2-D points), a noisy
/// `x_t = √ᾱ_t · x₀ + √(1 − ᾱ_t) · ε` came from example `i` with probability proportional to the
/// Gaussian density of the noise it would take:
///
///     w_i ∝ exp( −‖x_t − √ᾱ_t · x⁽ⁱ⁾‖² / (2 (1 − ᾱ_t)) )          (a softmax over i)
///
/// The estimate with the smallest squared error, the posterior mean, is the weighted average
///
///     x̂₀ = E[x₀ | x_t] = Σ_i w_i · x⁽ⁱ⁾
///
/// and the noise it implies is `ε̂ = (x_t − √ᾱ_t · x̂₀) / √(1 − ᾱ_t)`. Stable Diffusion's UNet is
/// trained to output exactly this ε̂ (for a data set too big to write down), so the samplers can
/// use one as well as the other.
public struct OptimalDenoiser {
    /// The examples, one per row: (N, D).
    public let examples: [[Float]]

    /// A denoiser for these examples (at least one, all of the same length D).
    public init(examples: [[Float]]) {
        precondition(!examples.isEmpty, "the denoiser needs at least one example")
        self.examples = examples
    }

    /// Rows of an (N, D) tensor as examples.
    public init(matrix: Tensor) {
        let n = matrix.shape[0], d = matrix.count / n
        self.init(examples: (0..<n).map { Array(matrix.scalars[$0 * d ..< ($0 + 1) * d]) })
    }

    /// The softmax weights w_i over the examples in `subset` (all when nil), for one noisy point.
    public func weights(_ x: ArraySlice<Float>, alphaBar: Float, subset: [Int]? = nil) -> [Double] {
        let indices = subset ?? Array(examples.indices)
        let signal = Double(alphaBar).squareRoot(), variance = max(1 - Double(alphaBar), 1e-12)
        let logits = indices.map { i -> Double in
            var distance = 0.0                                   // ‖x_t − √ᾱ x⁽ⁱ⁾‖²
            for (a, b) in zip(x, examples[i]) {
                let d = Double(a) - signal * Double(b)
                distance += d * d
            }
            return -distance / (2 * variance)
        }
        let largest = logits.max()!                              // subtract the max: exp never overflows
        let exps = logits.map { exp($0 - largest) }
        let total = exps.reduce(0, +)
        var all = [Double](repeating: 0, count: examples.count)
        for (k, i) in indices.enumerated() { all[i] = exps[k] / total }
        return all
    }

    /// x̂₀ = Σ_i w_i x⁽ⁱ⁾ for one noisy point.
    public func cleanEstimate(weights: [Double]) -> [Float] {
        var x0 = [Double](repeating: 0, count: examples[0].count)
        for (i, w) in weights.enumerated() where w > 0 {
            for j in x0.indices { x0[j] += w * Double(examples[i][j]) }
        }
        return x0.map { Float($0) }
    }

    /// The noise prediction ε̂ for a batch of noisy points `x` (M, D), as the UNet would give it,
    /// plus x̂₀ and the weights of every point.
    public func predictNoise(_ x: Tensor, alphaBar: Float, subset: [Int]? = nil)
        -> (noise: Tensor, clean: Tensor, weights: [[Double]]) {
        let d = examples[0].count, m = x.count / d
        var noise = [Float](), clean = [Float](), allWeights: [[Double]] = []
        noise.reserveCapacity(x.count)
        clean.reserveCapacity(x.count)
        let a = alphaBar.squareRoot(), b = (1 - alphaBar).squareRoot()
        for row in 0..<m {
            let xt = x.scalars[row * d ..< (row + 1) * d]
            let w = weights(xt, alphaBar: alphaBar, subset: subset)
            let x0 = cleanEstimate(weights: w)
            clean += x0
            noise += zip(xt, x0).map { ($0 - a * $1) / b }        // ε̂ = (x_t − √ᾱ x̂₀) / √(1 − ᾱ)
            allWeights.append(w)
        }
        return (Tensor(shape: x.shape, scalars: noise), Tensor(shape: x.shape, scalars: clean), allWeights)
    }
}
