import Testing
import TensorCore

// Every fast kernel against its plain twin, on shapes chosen to hit the fast code's edges: lengths
// that are not multiples of the 8-lane vectors or the 6x16 register tile, single elements, and
// sizes big enough to be shared out to several cores. (The GEMM, convolution and attention have
// suites of their own: GEMMTests, ConvolutionTests, AttentionTests.)

/// A tensor of `shape` filled with reproducible numbers in [−scale, scale).
func randomTensor(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
    Tensor(shape: shape, scalars: randomScalars(shape.reduce(1, *), seed: seed).map { $0 * scale })
}

@Suite("Fast kernels agree with their plain twins")
struct ReferenceTwinTests {
    @Test("matmul and linear: K-term sums in another order", arguments: [[1, 1, 1], [3, 7, 5], [2, 13, 77, 19], [130, 40, 70]])
    func matrixProducts(shape: [Int]) {
        // shape = leading dims..., M, K and N last: x (..., M, K) · (K, N); weights (N, K).
        let n = shape.last!, k = shape[shape.count - 2]
        let x = randomTensor(Array(shape.dropLast()), seed: 1)
        let b = randomTensor([k, n], seed: 2)
        let w = randomTensor([n, k], seed: 3)
        let bias = randomTensor([n], seed: 4)
        // A K-term sum of products of numbers in [−1, 1] is about √K in size; float32 reordering
        // moves it by a few ulps of that, so 1e-5·√K, as for the GEMM.
        let tolerance = 1e-5 * Float(k).squareRoot()
        #expect(Fast.matmul(x, b).maxAbsDifference(Reference.matmul(x, b)) < tolerance)
        #expect(Fast.linear(x, weight: w, bias: bias).maxAbsDifference(Reference.linear(x, weight: w, bias: bias)) < tolerance)
        #expect(Fast.linear(x, weight: w, bias: nil).maxAbsDifference(Reference.linear(x, weight: w, bias: nil)) < tolerance)
        let half = HalfTensor(rounding: w, to: .float16)
        #expect(Fast.linear(x, weight: half, bias: bias)
                    .maxAbsDifference(Reference.linear(x, weight: half.widened(), bias: bias)) < tolerance)
    }

    @Test("group norm, with and without the SiLU", arguments: [([1, 2, 1, 1], 1), ([2, 6, 5, 7], 3), ([1, 32, 9, 13], 32),
                                                              ([2, 64, 24, 24], 4)])
    func groupNorm(shape: [Int], groups: Int) {
        let x = randomTensor(shape, seed: 5, scale: 3).map { $0 + 1 }    // mean 1, not 0
        let gamma = randomTensor([shape[1]], seed: 6, scale: 2), beta = randomTensor([shape[1]], seed: 7)
        // Outputs are about γ·N(0, 1) + β, |y| ≲ 8. The fast statistics sum eight lanes in Float
        // per block of 1024 and the blocks in Double; the plain ones sum in Double. That moves
        // the mean and 1/σ by ~1e-7 relative, the outputs by ~1e-6: tolerance 1e-5.
        for silu in [false, true] {
            let fast = Fast.groupNorm(x, groups: groups, weight: gamma, bias: beta, eps: 1e-5, silu: silu)
            let plain = Reference.groupNorm(x, groups: groups, weight: gamma, bias: beta, eps: 1e-5, silu: silu)
            #expect(fast.maxAbsDifference(plain) < 1e-5, "silu: \(silu)")
        }
        let noAffine = Fast.groupNorm(x, groups: groups, weight: nil, bias: nil, eps: 1e-6, silu: false)
        #expect(noAffine.maxAbsDifference(Reference.groupNorm(x, groups: groups, weight: nil, bias: nil, eps: 1e-6)) < 1e-5)
    }

    @Test("layer norm", arguments: [[1, 1], [3, 7], [2, 77, 40], [1, 9, 768]])
    func layerNorm(shape: [Int]) {
        let d = shape.last!
        let x = randomTensor(shape, seed: 8, scale: 4)
        let gamma = randomTensor([d], seed: 9), beta = randomTensor([d], seed: 10)
        // The same statistics argument as for group norm; |y| ≲ 2 here.
        let fast = Fast.layerNorm(x, weight: gamma, bias: beta, eps: 1e-5)
        #expect(fast.maxAbsDifference(Reference.layerNorm(x, weight: gamma, bias: beta, eps: 1e-5)) < 1e-5)
    }

    @Test("softmax, including a fully masked row", arguments: [1, 7, 8, 77, 1000])
    func softmax(width: Int) {
        var scalars = randomScalars(3 * width, seed: UInt64(width)).map { $0 * 20 }
        for i in 0..<width { scalars[width + i] = -.infinity }          // row 1: every key masked
        if width > 1 { scalars[2 * width] = -.infinity }                 // row 2: one key masked
        let x = Tensor(shape: [3, width], scalars: scalars)
        // Probabilities are in [0, 1]; the vector exp is within 1 ulp of expf, the sums differ in
        // order: 1e-6 absolute.
        let fast = Fast.softmax(x), plain = Reference.softmax(x)
        #expect(fast.maxAbsDifference(plain) < 1e-6)
        #expect(plain.scalars[width..<(2 * width)].allSatisfy { $0 == 0 })
    }

    @Test("SiLU, GELU, ReLU, quick GELU and GEGLU on 1, 7, 8 and 1001 elements", arguments: [1, 7, 8, 1001])
    func activations(count: Int) {
        let x = randomTensor([count], seed: 11, scale: 10)
        // The vector exp is within 1 ulp of libm's expf and the vector erf within 1.5e-7 of erf:
        // 2e-6 relative to max(1, |x|) (see VectorActivationTests).
        let tolerance: Float = 2e-5
        #expect(Fast.silu(x).maxAbsDifference(Reference.map(x, silu)) < tolerance)
        #expect(Fast.gelu(x).maxAbsDifference(Reference.map(x, gelu)) < tolerance)
        #expect(Fast.relu(x) == Reference.map(x, relu))
        #expect(Fast.quickGELU(x).maxAbsDifference(Reference.map(x, quickGELU)) < tolerance)
        let pairs = randomTensor([3, 2 * count], seed: 12, scale: 4)
        #expect(Fast.geglu(pairs).maxAbsDifference(Reference.geglu(pairs)) < 4e-6 * 4)
    }

    @Test("nearest upsampling: doubling and odd sizes copy the same pixels",
          arguments: [(3, 5, 6, 10), (1, 1, 2, 2), (6, 5, 12, 10), (3, 3, 6, 5), (2, 2, 3, 3), (4, 4, 7, 9)])
    func upsample(sizes: (Int, Int, Int, Int)) {
        let (h, w, outH, outW) = sizes
        let x = randomTensor([2, 3, h, w], seed: 13)
        #expect(Fast.upsampleNearest(x, height: outH, width: outW) == Reference.upsampleNearest(x, height: outH, width: outW))
    }

    @Test("embedding lookup from a Float32 and a 16-bit table")
    func embedding() {
        let table = randomTensor([50, 6], seed: 14)
        let ids = [[0, 49, 7, 7], [3, 1, 0, 2]]
        #expect(Fast.embedding(ids, table: table) == Reference.embedding(ids, table: table))
        let half = HalfTensor(rounding: table, to: .bfloat16)
        #expect(Fast.embedding(ids, table: half) == Reference.embedding(ids, table: half.widened()))
    }

    @Test("elementwise arithmetic gives identical numbers", arguments: [1, 7, 8, 9, 100_003])
    func elementwise(count: Int) {
        let a = randomTensor([count], seed: 15), b = randomTensor([count], seed: 16)
        // One IEEE operation per element on both sides: identical, except that α·a + β·b may be
        // contracted into a fused multiply-add on one side (one rounding less): 1 ulp of 2.
        #expect(Fast.weightedSum(a, 0.3, b, -1.7).maxAbsDifference(Reference.weightedSum(a, 0.3, b, -1.7)) <= 2.4e-7)
        #expect(Fast.map(a) { $0 * $0 } == Reference.map(a) { $0 * $0 })
        #expect(Fast.zip(a, b, -) == Reference.zip(a, b, -))
        var sum = a
        Fast.add(b, into: &sum)
        #expect(sum == Reference.zip(a, b, +))
    }

    @Test("a value per channel or per (sample, channel) added to every pixel", arguments: [[2, 3, 5, 7], [1, 1, 1, 1], [3, 4, 1, 9]])
    func channelwise(shape: [Int]) {
        let x = randomTensor(shape, seed: 17)
        let perChannel = randomTensor([shape[1]], seed: 18)
        let perSample = randomTensor([shape[0], shape[1]], seed: 19)
        #expect(Fast.addChannelwise(x, perChannel) == Reference.addChannelwise(x, perChannel))
        #expect(Fast.addChannelwise(x, perSample) == Reference.addChannelwise(x, perSample))
    }
}

@Suite("Fast backward passes agree with their plain twins")
struct BackwardTwinTests {
    @Test("linear backward: dx = dy·W and dW = dyᵀ·x on the GEMM, db in Double", arguments: [[1, 1, 1], [2, 3, 5, 4], [130, 40, 70]])
    func linear(shape: [Int]) {
        // shape = leading dims..., D_in, D_out.
        let dOut = shape.last!, dIn = shape[shape.count - 2]
        let x = randomTensor(Array(shape.dropLast()), seed: 1), w = randomTensor([dOut, dIn], seed: 2)
        var dyShape = Array(shape.dropLast())
        dyShape[dyShape.count - 1] = dOut
        let dy = randomTensor(dyShape, seed: 3)
        let fast = Fast.linearBackward(dy, x: x, weight: w), plain = Reference.linearBackward(dy, x: x, weight: w)
        // Sums of D_out (dx) or of all tokens (dW, db) products in another order: 1e-5·√terms.
        let tokens = Float(x.count / dIn)
        #expect(fast.dx.maxAbsDifference(plain.dx) < 1e-5 * Float(dOut).squareRoot())
        #expect(fast.dWeight.maxAbsDifference(plain.dWeight) < 1e-5 * tokens.squareRoot())
        #expect(fast.dBias.maxAbsDifference(plain.dBias) < 1e-5 * tokens.squareRoot())
    }

    @Test("conv2d backward: im2col, two GEMMs and col2im, in bands", arguments: [
        [1, 1, 1, 1, 3, 1, 1], [2, 3, 7, 5, 3, 1, 1], [1, 4, 9, 6, 3, 2, 1], [2, 5, 6, 6, 1, 1, 0], [1, 3, 11, 8, 3, 2, 0],
        [1, 8, 100, 100, 3, 1, 1],      // more than one band of output rows
        [3, 4, 9, 7, 3, 2, 1], [4, 5, 5, 6, 3, 1, 2],    // small images side by side, borders written out
        [5, 4, 4, 4, 3, 1, 1], [3, 6, 2, 2, 3, 1, 1],    // dx's convolution packs whole rows of padded images
        [32, 16, 8, 8, 3, 1, 1],        // dWᵀ over 2048 pixels: the depth shared out to the cores
    ])
    func conv2d(c: [Int]) {
        let (batch, inChannels, height, width, kernel, stride, padding) = (c[0], c[1], c[2], c[3], c[4], c[5], c[6])
        let outChannels = 6
        let x = randomTensor([batch, inChannels, height, width], seed: 4), w = randomTensor([outChannels, inChannels, kernel, kernel], seed: 5)
        let y = Reference.conv2d(x, weight: w, bias: nil, stride: stride, padding: padding)
        let dy = randomTensor(y.shape, seed: 6)
        let fast = Fast.conv2dBackward(dy, x: x, weight: w, stride: stride, padding: padding)
        let plain = Reference.conv2dBackward(dy, x: x, weight: w, stride: stride, padding: padding)
        // dx sums K·k² products, dW and db all the output pixels of all images: 1e-5·√terms.
        let pixels = Float(batch * y.shape[2] * y.shape[3])
        #expect(fast.dx.maxAbsDifference(plain.dx) < 1e-5 * Float(outChannels * kernel * kernel).squareRoot())
        #expect(fast.dWeight.maxAbsDifference(plain.dWeight) < 1e-5 * pixels.squareRoot())
        #expect(fast.dBias.maxAbsDifference(plain.dBias) < 1e-5 * pixels.squareRoot())
    }
}

extension BackwardTwinTests {
    @Test("attention backward: five products per (sample, head) in blocks of queries, causal mask included", arguments: [
        [1, 5, 7, 1, 3, 3, 0],          // one head of one sample: the products run on all cores
        [2, 13, 13, 4, 8, 8, 1],        // the text encoder's causal self-attention
        [3, 17, 77, 2, 5, 6, 0],        // cross-attention: 77 keys, values of another width
        [1, 200, 2048, 1, 4, 4, 0],     // more queries than one block holds: dK and dV add up over blocks
    ])
    func attention(c: [Int]) {
        let (batch, t, s, heads, d, dv, causal) = (c[0], c[1], c[2], c[3], c[4], c[5], c[6] == 1)
        let q = randomTensor([batch, t, heads * d], seed: 7, scale: 2), k = randomTensor([batch, s, heads * d], seed: 8, scale: 2)
        let v = randomTensor([batch, s, heads * dv], seed: 9), dy = randomTensor([batch, t, heads * dv], seed: 10)
        let mask = causal ? Tensor(shape: [t, s]) { m in for i in 0..<t { for j in 0..<s where j > i { m[i * s + j] = -.infinity } } } : nil
        let fast = Fast.scaledDotProductAttentionBackward(dy, query: q, key: k, value: v, heads: heads, mask: mask)
        let plain = Reference.scaledDotProductAttentionBackward(dy, query: q, key: k, value: v, heads: heads, mask: mask)
        // Each gradient sums up to S (dQ, dP) or T (dK, dV) products of numbers about 1 in size,
        // in another order and through another exp: 1e-5·√terms, as for the other products.
        let terms = Float(max(t, s)).squareRoot()
        #expect(fast.dQuery.maxAbsDifference(plain.dQuery) < 1e-5 * terms)
        #expect(fast.dKey.maxAbsDifference(plain.dKey) < 1e-5 * terms)
        #expect(fast.dValue.maxAbsDifference(plain.dValue) < 1e-5 * terms)
    }
}

extension BackwardTwinTests {
    @Test("group norm backward: one (sample, group) per task, SiLU fused or not, dγ and dβ added up in a fixed order", arguments: [
        [1, 4, 1, 1, 0, 1],             // one pixel per channel
        [2, 8, 5, 3, 1, 1],             // SiLU fused, scale and shift
        [3, 12, 7, 7, 0, 0],            // no affine weights
        [2, 64, 16, 16, 1, 1],          // 32 groups of 2 channels, as in the UNet
    ])
    func groupNorm(c: [Int]) {
        let (batch, channels, height, width, silu, affine) = (c[0], c[1], c[2], c[3], c[4] == 1, c[5] == 1)
        let groups = channels >= 32 ? 32 : channels / 4 == 0 ? 1 : channels / 4
        let x = randomTensor([batch, channels, height, width], seed: 11, scale: 3), dy = randomTensor(x.shape, seed: 12)
        let gamma = affine ? randomTensor([channels], seed: 13) : nil, beta = affine ? randomTensor([channels], seed: 14) : nil
        let fast = Fast.groupNormBackward(dy, x: x, groups: groups, weight: gamma, bias: beta, eps: 1e-5, silu: silu)
        let plain = Reference.groupNormBackward(dy, x: x, groups: groups, weight: gamma, bias: beta, eps: 1e-5, silu: silu)
        // dx takes two means over a group's elements; dγ, dβ sum over every sample's pixels:
        // 1e-5·√terms of numbers about 1 (x̂ is unit-sized), as for the products.
        let groupTerms = Float(channels / groups * height * width), channelTerms = Float(batch * height * width)
        #expect(fast.dx.maxAbsDifference(plain.dx) < 1e-5 * groupTerms.squareRoot())
        #expect(fast.dWeight.maxAbsDifference(plain.dWeight) < 1e-5 * channelTerms.squareRoot())
        #expect(fast.dBias.maxAbsDifference(plain.dBias) < 1e-5 * channelTerms.squareRoot())
    }

    @Test("layer norm backward: blocks of tokens, dγ and dβ added up in a fixed order", arguments: [[1, 1, 3], [2, 77, 64], [5, 300, 40]])
    func layerNorm(shape: [Int]) {
        let x = randomTensor(shape, seed: 15, scale: 2), dy = randomTensor(shape, seed: 16), gamma = randomTensor([shape[2]], seed: 17)
        let fast = Fast.layerNormBackward(dy, x: x, weight: gamma, eps: 1e-5)
        let plain = Reference.layerNormBackward(dy, x: x, weight: gamma, eps: 1e-5)
        let width = Float(shape[2]), tokens = Float(shape[0] * shape[1])
        #expect(fast.dx.maxAbsDifference(plain.dx) < 1e-5 * width.squareRoot())
        #expect(fast.dWeight.maxAbsDifference(plain.dWeight) < 1e-5 * tokens.squareRoot())
        #expect(fast.dBias.maxAbsDifference(plain.dBias) < 1e-5 * tokens.squareRoot())
    }

    @Test("activation backward: dy · f′(x) element by element, GEGLU's two halves")
    func activations() {
        let x = randomTensor([3, 37, 130], seed: 18, scale: 3), dy = randomTensor(x.shape, seed: 19)
        // One product per element through another exp and erf (both within a few ulps of the
        // scalar ones): a derivative of size about 1 may differ by 1e-6·|dy|.
        let pairs: [((Tensor, Tensor) -> Tensor, (Float) -> Float)] = [
            (Fast.siluBackward, siluDerivative), (Fast.geluBackward, geluDerivative), (Fast.quickGELUBackward, quickGELUDerivative),
        ]
        for (fast, derivative) in pairs {
            #expect(fast(dy, x).maxAbsDifference(Reference.mapBackward(dy, x: x, derivative: derivative)) < 1e-5)
        }
        let halves = Tensor(shape: [3, 37, 65], scalars: Array(dy.scalars.prefix(3 * 37 * 65)))
        let fast = Fast.gegluBackward(halves, x: x), plain = Reference.gegluBackward(halves, x: x)
        #expect(fast.maxAbsDifference(plain) < 1e-5)
    }

    @Test("permutes that are batches of transposes move the same numbers as the plain walk",
          arguments: [[2, 3, 5, 7], [1, 64, 8, 8], [3, 17, 33, 1], [1, 1, 1, 1]])
    func transposes(shape: [Int]) {
        let x = randomTensor(shape, seed: 22)
        // (N, C, H·W) → (N, H·W, C), as the transformers turn a feature map into tokens, and back.
        let tokens = x.reshaped([shape[0], shape[1], shape[2] * shape[3]])
        let fast = tokens.permuted([0, 2, 1]), plain = tokens.permutedCopy([0, 2, 1])
        #expect(fast.shape == plain.shape && fast.scalars == plain.scalars)
        #expect(fast.permuted([0, 2, 1]).scalars == tokens.scalars)
        let matrix = x.reshaped([shape[0] * shape[1], shape[2] * shape[3]])
        #expect(matrix.transposed.scalars == matrix.permutedCopy([1, 0]).scalars)
    }

    @Test("upsampling backward: each pixel collects its copies' gradients, doubling and odd sizes",
          arguments: [([2, 3, 4, 5], 8, 10), ([1, 2, 3, 3], 7, 5), ([3, 4, 1, 1], 2, 2)])
    func upsample(shape: [Int], height: Int, width: Int) {
        let dy = randomTensor([shape[0], shape[1], height, width], seed: 20)
        let fast = Fast.upsampleNearestBackward(dy, inputShape: shape)
        let plain = Reference.upsampleNearestBackward(dy, inputShape: shape)
        // The same few terms in the same order: identical.
        #expect(fast.shape == shape && fast.scalars == plain.scalars)
    }

    @Test("per-channel add backward: sums of channel planes, per channel or per (sample, channel)",
          arguments: [[2, 3, 5, 7], [1, 1, 1, 1], [3, 4, 64, 64]])
    func addChannelwise(shape: [Int]) {
        let dy = randomTensor(shape, seed: 21)
        for valuesShape in [[shape[1]], [shape[0], shape[1]]] {
            let fast = Fast.addChannelwiseBackward(dy, valuesShape: valuesShape)
            let plain = Reference.addChannelwiseBackward(dy, valuesShape: valuesShape)
            // The plain version adds its n = N·H·W terms (|term| ≤ 1) one by one in Float, each
            // addition rounding by up to 2⁻²⁴ of a partial sum: up to about n·6e-8 apart.
            let terms = Float(shape[0] * shape[2] * shape[3])
            #expect(fast.shape == valuesShape && fast.maxAbsDifference(plain) < 1e-7 * terms)
        }
    }
}
