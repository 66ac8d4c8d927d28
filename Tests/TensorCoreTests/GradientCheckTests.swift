import Foundation
import Testing
import TensorCore

// Every plain backward against central finite differences of its forward.
//
// For a layer y = f(x) and fixed random weights w, the loss L(x) = Σ_i w_i · y_i has the gradient
// dL/dx = backward(dy = w). Numerically, dL/dx_j ≈ (L(x + h·e_j) − L(x − h·e_j)) / 2h, with L summed
// in Double. Tolerance: the forward is Float32, so L carries a rounding error of about 1e-7·|L|
// (|L| ≲ 10 here), which the division by 2h = 6e-3 turns into ~2e-4; the truncation error h²·L'''/6
// is ~1e-5. Agreement to 1e-3 of max(1, |gradient|) is therefore expected, while a wrong factor,
// sign, index or missing term is off by 1e-1 or more.

/// `Σ_i a_i · b_i` in Double.
func dot(_ a: Tensor, _ b: Tensor) -> Double {
    zip(a.scalars, b.scalars).reduce(0) { $0 + Double($1.0) * Double($1.1) }
}

/// Central differences of `L(x) = Σ_i w_i · f(x)_i` with respect to every element of `x`.
func numericalGradient(at x: Tensor, weights w: Tensor, step h: Float = 3e-3, _ f: (Tensor) -> Tensor) -> Tensor {
    var gradient = [Float](repeating: 0, count: x.count)
    for j in 0..<x.count {
        var plus = x, minus = x
        plus.scalars[j] += h
        minus.scalars[j] -= h
        // The step actually taken, after rounding x ± h to Float32.
        let taken = Double(plus.scalars[j]) - Double(minus.scalars[j])
        gradient[j] = Float((dot(f(plus), w) - dot(f(minus), w)) / taken)
    }
    return Tensor(shape: x.shape, scalars: gradient)
}

/// The analytic gradient agrees with the numerical one to 1e-3 of max(1, |gradient|).
func expectGradient(_ analytic: Tensor, _ numeric: Tensor, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(analytic.shape == numeric.shape, "\(what): shapes", sourceLocation: sourceLocation)
    let worst = zip(analytic.scalars, numeric.scalars).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
    #expect(worst < 1e-3, "\(what): worst relative difference \(worst)", sourceLocation: sourceLocation)
    // A gradient of all zeros would agree with a flat function only: make sure this one is not flat.
    #expect(numeric.scalars.contains { abs($0) > 1e-2 }, "\(what): the check needs a gradient that is not zero",
            sourceLocation: sourceLocation)
}

@Suite("Plain backward passes against finite differences")
struct GradientCheckTests {
    @Test("linear: dx, dW and db")
    func linear() {
        let x = randomTensor([2, 3, 5], seed: 1), w = randomTensor([4, 5], seed: 2), b = randomTensor([4], seed: 3)
        let dy = randomTensor([2, 3, 4], seed: 4)
        let grads = Reference.linearBackward(dy, x: x, weight: w)
        expectGradient(grads.dx, numericalGradient(at: x, weights: dy) { Reference.linear($0, weight: w, bias: b) }, "dx")
        expectGradient(grads.dWeight, numericalGradient(at: w, weights: dy) { Reference.linear(x, weight: $0, bias: b) }, "dW")
        expectGradient(grads.dBias, numericalGradient(at: b, weights: dy) { Reference.linear(x, weight: w, bias: $0) }, "db")
    }

    @Test("matmul: da and db, b shared by the batch")
    func matmul() {
        let a = randomTensor([2, 3, 4], seed: 5), b = randomTensor([4, 6], seed: 6), dy = randomTensor([2, 3, 6], seed: 7)
        let grads = Reference.matmulBackward(dy, a: a, b: b)
        expectGradient(grads.da, numericalGradient(at: a, weights: dy) { Reference.matmul($0, b) }, "da")
        expectGradient(grads.db, numericalGradient(at: b, weights: dy) { Reference.matmul(a, $0) }, "db")
    }

    @Test("conv2d: dx, dW, db with stride and padding", arguments: [(3, 1, 1), (3, 2, 1), (1, 1, 0), (3, 2, 0)])
    func conv2d(kernel: Int, stride: Int, padding: Int) {
        let x = randomTensor([2, 3, 6, 5], seed: 8), w = randomTensor([4, 3, kernel, kernel], seed: 9)
        let b = randomTensor([4], seed: 10)
        let y = Reference.conv2d(x, weight: w, bias: b, stride: stride, padding: padding)
        let dy = randomTensor(y.shape, seed: 11)
        let grads = Reference.conv2dBackward(dy, x: x, weight: w, stride: stride, padding: padding)
        let label = "\(kernel)x\(kernel) s\(stride) p\(padding)"
        expectGradient(grads.dx, numericalGradient(at: x, weights: dy) {
            Reference.conv2d($0, weight: w, bias: b, stride: stride, padding: padding) }, "dx \(label)")
        expectGradient(grads.dWeight, numericalGradient(at: w, weights: dy) {
            Reference.conv2d(x, weight: $0, bias: b, stride: stride, padding: padding) }, "dW \(label)")
        expectGradient(grads.dBias, numericalGradient(at: b, weights: dy) {
            Reference.conv2d(x, weight: w, bias: $0, stride: stride, padding: padding) }, "db \(label)")
    }

    @Test("group norm, with and without the SiLU: dx, dγ, dβ", arguments: [false, true])
    func groupNorm(silu: Bool) {
        let x = randomTensor([2, 4, 3, 3], seed: 12, scale: 2), gamma = randomTensor([4], seed: 13), beta = randomTensor([4], seed: 14)
        let dy = randomTensor(x.shape, seed: 15)
        let norm = { (x: Tensor, gamma: Tensor, beta: Tensor) in
            Reference.groupNorm(x, groups: 2, weight: gamma, bias: beta, eps: 1e-5, silu: silu)
        }
        let grads = Reference.groupNormBackward(dy, x: x, groups: 2, weight: gamma, bias: beta, eps: 1e-5, silu: silu)
        expectGradient(grads.dx, numericalGradient(at: x, weights: dy) { norm($0, gamma, beta) }, "dx")
        expectGradient(grads.dWeight, numericalGradient(at: gamma, weights: dy) { norm(x, $0, beta) }, "dγ")
        expectGradient(grads.dBias, numericalGradient(at: beta, weights: dy) { norm(x, gamma, $0) }, "dβ")
    }

    @Test("layer norm: dx, dγ, dβ")
    func layerNorm() {
        let x = randomTensor([2, 3, 6], seed: 16, scale: 2), gamma = randomTensor([6], seed: 17), beta = randomTensor([6], seed: 18)
        let dy = randomTensor(x.shape, seed: 19)
        let grads = Reference.layerNormBackward(dy, x: x, weight: gamma, eps: 1e-5)
        expectGradient(grads.dx, numericalGradient(at: x, weights: dy) { Reference.layerNorm($0, weight: gamma, bias: beta, eps: 1e-5) }, "dx")
        expectGradient(grads.dWeight, numericalGradient(at: gamma, weights: dy) { Reference.layerNorm(x, weight: $0, bias: beta, eps: 1e-5) }, "dγ")
        expectGradient(grads.dBias, numericalGradient(at: beta, weights: dy) { Reference.layerNorm(x, weight: gamma, bias: $0, eps: 1e-5) }, "dβ")
    }

    @Test("softmax over rows")
    func softmax() {
        let x = randomTensor([3, 7], seed: 20, scale: 3), dy = randomTensor([3, 7], seed: 21)
        let grads = Reference.softmaxBackward(dy, output: Reference.softmax(x))
        expectGradient(grads, numericalGradient(at: x, weights: dy) { Reference.softmax($0) }, "dz")
    }

    @Test("attention: cross-attention (T ≠ S) and causal self-attention, dq, dk, dv", arguments: [false, true])
    func attention(causal: Bool) {
        let q = randomTensor([2, 4, 6], seed: 22, scale: 2)
        let k = randomTensor([2, causal ? 4 : 5, 6], seed: 23, scale: 2), v = randomTensor([2, causal ? 4 : 5, 8], seed: 24)
        let mask = causal ? causalMask(4) : nil
        let dy = randomTensor([2, 4, 8], seed: 25)
        let attend = { (q: Tensor, k: Tensor, v: Tensor) in
            Reference.scaledDotProductAttention(query: q, key: k, value: v, heads: 2, mask: mask)
        }
        let grads = Reference.scaledDotProductAttentionBackward(dy, query: q, key: k, value: v, heads: 2, mask: mask)
        expectGradient(grads.dQuery, numericalGradient(at: q, weights: dy) { attend($0, k, v) }, "dq")
        expectGradient(grads.dKey, numericalGradient(at: k, weights: dy) { attend(q, $0, v) }, "dk")
        expectGradient(grads.dValue, numericalGradient(at: v, weights: dy) { attend(q, k, $0) }, "dv")
    }

    @Test("SiLU, GELU, quick GELU and GEGLU")
    func activations() {
        let x = randomTensor([3, 8], seed: 26, scale: 4), dy = randomTensor([3, 8], seed: 27)
        let cases: [(String, (Float) -> Float, (Float) -> Float)] = [
            ("silu", silu, siluDerivative), ("gelu", gelu, geluDerivative), ("quick gelu", quickGELU, quickGELUDerivative),
        ]
        for (name, f, derivative) in cases {
            expectGradient(Reference.mapBackward(dy, x: x, derivative: derivative),
                           numericalGradient(at: x, weights: dy) { Reference.map($0, f) }, name)
        }
        let halves = randomTensor([3, 4], seed: 28)
        expectGradient(Reference.gegluBackward(halves, x: x),
                       numericalGradient(at: x, weights: halves) { Reference.geglu($0) }, "geglu")
    }

    @Test("nearest upsampling: doubling and an odd size", arguments: [(6, 8), (5, 7)])
    func upsample(outHeight: Int, outWidth: Int) {
        let x = randomTensor([2, 2, 3, 4], seed: 29), dy = randomTensor([2, 2, outHeight, outWidth], seed: 30)
        expectGradient(Reference.upsampleNearestBackward(dy, inputShape: x.shape),
                       numericalGradient(at: x, weights: dy) { Reference.upsampleNearest($0, height: outHeight, width: outWidth) },
                       "dx \(outHeight)x\(outWidth)")
    }

    @Test("embedding: a repeated id collects both gradients; unused rows get none")
    func embedding() {
        let table = randomTensor([6, 3], seed: 31), ids = [[1, 4, 1], [0, 2, 5]], dy = randomTensor([2, 3, 3], seed: 32)
        let grads = Reference.embeddingBackward(dy, ids: ids, tableShape: table.shape)
        expectGradient(grads, numericalGradient(at: table, weights: dy) { Reference.embedding(ids, table: $0) }, "dTable")
        #expect(grads.scalars[9..<12].allSatisfy { $0 == 0 })     // id 3 is never looked up
    }

    @Test("a value per channel, or per (sample, channel)", arguments: [[4], [2, 4]])
    func channelwise(valuesShape: [Int]) {
        let x = randomTensor([2, 4, 3, 2], seed: 33), values = randomTensor(valuesShape, seed: 34), dy = randomTensor(x.shape, seed: 35)
        expectGradient(Reference.addChannelwiseBackward(dy, valuesShape: valuesShape),
                       numericalGradient(at: values, weights: dy) { Reference.addChannelwise(x, $0) }, "dv")
    }

    @Test("losses: mean squared error, mean absolute error and the VAE's Gaussian KL")
    func losses() {
        let a = randomTensor([2, 3, 4], seed: 36), b = randomTensor([2, 3, 4], seed: 37)
        let one = Tensor(shape: [1], scalars: [1])
        let loss = { (value: Float) in Tensor(shape: [1], scalars: [value]) }
        // Scaled up so that each gradient element (1/m of a difference) is well above zero.
        let m = Float(a.count)
        expectGradient(Reference.meanSquaredError(a, b).gradient * m,
                       numericalGradient(at: a, weights: one) { loss(Reference.meanSquaredError($0, b).loss) } * m, "mse")
        // |a − c| has a kink where a = c: keep every pair at least 0.1 apart, well beyond the step.
        let c = Reference.zip(a, b) { $0 + ($1 >= 0 ? 0.1 + $1 : -0.1 + $1) }
        expectGradient(Reference.meanAbsoluteError(a, c).gradient * m,
                       numericalGradient(at: a, weights: one) { loss(Reference.meanAbsoluteError($0, c).loss) } * m, "l1")
        let kl = Reference.gaussianKL(mean: a, logvar: b)
        expectGradient(kl.dMean, numericalGradient(at: a, weights: one) { loss(Reference.gaussianKL(mean: $0, logvar: b).loss) }, "kl dμ")
        expectGradient(kl.dLogvar, numericalGradient(at: b, weights: one) { loss(Reference.gaussianKL(mean: a, logvar: $0).loss) }, "kl dlogvar")
        // KL of N(0, 1) from itself is 0; of N(1, 1) it is ½ per number.
        #expect(Reference.gaussianKL(mean: Tensor.zeros([1, 4]), logvar: Tensor.zeros([1, 4])).loss == 0)
        #expect(Reference.gaussianKL(mean: Tensor(repeating: 1, shape: [1, 4]), logvar: Tensor.zeros([1, 4])).loss == 2)
    }
}
