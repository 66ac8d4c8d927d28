import Foundation
import Testing
import TensorCore

@Suite("Tensor operations against hand-computed values")
struct OperationTests {
    @Test("activation functions at x = 1 and x = -2")
    func activations() {
        // SiLU(1) = 1/(1+e^-1); GELU(1) = Φ(1); tanh-GELU and quick-GELU from their formulas.
        #expect(abs(silu(1) - 0.7310586) < 1e-6)
        #expect(abs(silu(-2) - (-0.2384058)) < 1e-6)
        #expect(abs(gelu(1) - 0.8413447) < 1e-6)
        #expect(abs(gelu(-2) - (-0.0455003)) < 1e-6)
        #expect(abs(geluTanh(1) - 0.8411920) < 1e-6)
        #expect(abs(quickGELU(1) - 0.8457958) < 1e-6)
    }

    @Test("softmax of [1, 2, 3] and of a row with a masked entry")
    func softmax() {
        let p = Tensor(shape: [2, 3], scalars: [1, 2, 3, 0, 0, -.infinity]).softmax()
        // e^k / (e + e² + e³) = 0.0900306, 0.2447285, 0.6652410
        #expect(abs(p[0, 0] - 0.0900306) < 1e-6)
        #expect(abs(p[0, 1] - 0.2447285) < 1e-6)
        #expect(abs(p[0, 2] - 0.6652410) < 1e-6)
        #expect(p[1, 0] == 0.5 && p[1, 1] == 0.5 && p[1, 2] == 0)
    }

    @Test("layer norm of [1, 2, 3, 4] with γ and β")
    func layerNorm() {
        // mean 2.5, variance 1.25: (x − 2.5)/√1.25 = ±0.4472136, ±1.3416408
        let x = Tensor(shape: [1, 4], scalars: [1, 2, 3, 4])
        let y = x.layerNorm(weight: Tensor(shape: [4], scalars: [1, 1, 2, 2]),
                            bias: Tensor(shape: [4], scalars: [0, 0, 0, 1]), eps: 0)
        let expected: [Float] = [-1.3416408, -0.4472136, 2 * 0.4472136, 2 * 1.3416408 + 1]
        for i in 0..<4 { #expect(abs(y.scalars[i] - expected[i]) < 1e-5) }
    }

    @Test("group norm normalises each (sample, group) over channels and pixels")
    func groupNorm() {
        // Two groups of two channels, one pixel each: group 0 = [0, 2] → [−1, 1]; group 1 = [5, 5] → [0, 0].
        let x = Tensor(shape: [1, 4, 1, 1], scalars: [0, 2, 5, 5])
        let y = x.groupNorm(groups: 2, weight: Tensor(shape: [4], scalars: [1, 3, 1, 1]),
                            bias: Tensor(shape: [4], scalars: [0, 0, 0.5, 0]), eps: 1e-10)
        let expected: [Float] = [-1, 3, 0.5, 0]
        for i in 0..<4 { #expect(abs(y.scalars[i] - expected[i]) < 1e-6) }
        // With many pixels: the output of each group has mean 0 and standard deviation 1.
        let big = Tensor(shape: [2, 6, 5, 5], scalars: randomScalars(300, seed: 5).map { $0 * 3 + 1 })
        let normed = big.groupNorm(groups: 3, weight: nil, bias: nil, eps: 1e-6)
        let firstGroup = Tensor(shape: [50], scalars: Array(normed.scalars[0..<50]))
        #expect(abs(firstGroup.mean) < 1e-5)
        #expect(abs(firstGroup.standardDeviation - 1) < 1e-4)
    }

    @Test("nearest 2x upsampling copies each pixel into a 2x2 block")
    func upsample() {
        let x = Tensor(shape: [1, 1, 2, 2], scalars: [1, 2, 3, 4])
        #expect(x.upsampledNearest2x().scalars == [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4])
    }

    @Test("permute, concatenate, split and slice move numbers to the right places")
    func shapes() {
        let x = Tensor(shape: [2, 3], scalars: [0, 1, 2, 3, 4, 5])
        #expect(x.transposed.scalars == [0, 3, 1, 4, 2, 5])
        let cube = Tensor(shape: [2, 3, 4], scalars: (0..<24).map(Float.init))
        let p = cube.permuted([2, 0, 1])
        #expect(p.shape == [4, 2, 3])
        #expect(p[3, 1, 2] == cube[1, 2, 3])
        let joined = Tensor.concatenate([x, Tensor(shape: [2, 1], scalars: [9, 9])], axis: 1)
        #expect(joined.scalars == [0, 1, 2, 9, 3, 4, 5, 9])
        let halves = Tensor(shape: [1, 4], scalars: [1, 2, 3, 4]).split(2, axis: 1)
        #expect(halves[0].scalars == [1, 2] && halves[1].scalars == [3, 4])
        #expect(x.slice(1..<2).scalars == [3, 4, 5])
        #expect(x.reshaped([3, -1]).shape == [3, 2])
    }

    @Test("elementwise arithmetic and per-channel bias")
    func elementwise() {
        let a = Tensor(shape: [1, 2, 1, 2], scalars: [1, 2, 3, 4])
        #expect((a + a).scalars == [2, 4, 6, 8])
        #expect((a * 0.5).scalars == [0.5, 1, 1.5, 2])
        #expect(a.scaled(2, plus: a, times: -1).scalars == a.scalars)
        #expect(a.addingChannelwise(Tensor(shape: [2], scalars: [10, 20])).scalars == [11, 12, 23, 24])
    }

    @Test("IEEE half and bfloat16 decode to the right floats")
    func halfPrecision() {
        #expect(float16BitsToFloat(0x3C00) == 1)
        #expect(float16BitsToFloat(0xC000) == -2)
        #expect(float16BitsToFloat(0x7BFF) == 65504)                       // largest finite half
        #expect(float16BitsToFloat(0x0001) == Float(sign: .plus, exponent: -24, significand: 1)) // smallest subnormal
        #expect(float16BitsToFloat(0x7C00) == .infinity)
        #expect(float16BitsToFloat(0x7E00).isNaN)
        #expect(float16BitsToFloat(0x8000) == 0 && float16BitsToFloat(0x8000).sign == .minus)
        #expect(bfloat16BitsToFloat(0x3F80) == 1)
        #expect(bfloat16BitsToFloat(0xC0A0) == -5)
        #expect(floatToBFloat16Bits(1) == 0x3F80)
        // The bulk path (hardware conversion where available) agrees with the bit decoder for
        // every one of the 65,536 half values.
        let all = (0...UInt16.max).map { $0 }
        var wide = [Float](repeating: 0, count: all.count)
        all.withUnsafeBufferPointer { src in
            wide.withUnsafeMutableBufferPointer { widenFloat16(src.baseAddress!, count: all.count, into: $0.baseAddress!) }
        }
        for (i, bits) in all.enumerated() {
            let expected = float16BitsToFloat(bits)
            #expect(expected.isNaN ? wide[i].isNaN : wide[i] == expected, "half 0x\(String(bits, radix: 16))")
        }
    }
}

@Suite("Vector exponential and softmax")
struct ExponentialTests {
    @Test("exp of eight lanes agrees with libm's expf within 2 ulp over the whole float range")
    func matchesLibm() {
        // Every 1/1000 from -87 to 88, plus the edges: the polynomial's accuracy is the same
        // on every interval [n·ln2 − ln2/2, n·ln2 + ln2/2], so this samples each many times.
        var worst: Float = 0
        var x: Float = -87
        while x < 88 {
            let lanes = SIMD8<Float>((0..<8).map { x + Float($0) * 1e-4 })
            let fast = exp(lanes)
            for lane in 0..<8 {
                let want = expf(lanes[lane])
                worst = max(worst, abs(fast[lane] - want) / want)
            }
            x += 0.001
        }
        #expect(worst < 2 * Float.ulpOfOne)
    }

    @Test("exp saturates instead of producing infinities, and masked scores give exactly 0")
    func edges() {
        let e = exp(SIMD8<Float>(-.infinity, -200, -87.5, 0, 1, 88, 100, .infinity))
        #expect(e[0] == 0 && e[1] == 0 && e[2] == 0)
        #expect(e[3] == 1 && abs(e[4] - 2.7182817) < 1e-6)
        #expect(e[5].isFinite && e[6].isFinite && e[7].isFinite && e[7] > 1e38)
    }

    @Test("softmax with a scale: e^(s·z) normalised, over rows that are not multiples of 8 long",
          arguments: [1, 7, 8, 77, 4096])
    func scaledSoftmax(width: Int) {
        var row = randomScalars(width, seed: UInt64(width)).map { $0 * 30 }
        let scale: Float = 0.158
        let top = Double(row.max()!) * Double(scale)
        let weights = row.map { Foundation.exp(Double($0) * Double(scale) - top) }
        let total = weights.reduce(0, +)
        row.withUnsafeMutableBufferPointer { softmaxRow($0.baseAddress!, count: width, scale: scale) }
        for i in 0..<width { #expect(abs(Double(row[i]) - weights[i] / total) < 1e-6) }
    }

    @Test("column softmax: 16 columns side by side, each e^(s·(z − max)) with its sum; a masked column is 0",
          arguments: [1, 6, 77, 1000])
    func columnSoftmax(length: Int) {
        var block = randomScalars(length * 16, seed: UInt64(length)).map { $0 * 30 }
        for j in 0..<length { block[j * 16 + 5] = -.infinity }   // column 5: every key masked out
        let original = block
        let scale: Float = 0.158
        let sums = block.withUnsafeMutableBufferPointer { softmaxColumns($0.baseAddress!, count: length, scale: scale) }
        for column in 0..<16 {
            let z = (0..<length).map { Double(original[$0 * 16 + column]) * Double(scale) }
            if column == 5 {
                #expect(sums[column] == 0 && (0..<length).allSatisfy { block[$0 * 16 + column] == 0 })
                continue
            }
            let top = z.max()!
            let weights = z.map { Foundation.exp($0 - top) }
            // Same tolerance reasoning as the row softmax: each e^x is within 2 ulp, and the
            // largest is exactly 1, so 1e-6 absolute per value and relative on the sum.
            for j in 0..<length { #expect(abs(Double(block[j * 16 + column]) - weights[j]) < 1e-6) }
            #expect(abs(Double(sums[column]) - weights.reduce(0, +)) < 1e-6 * Double(length))
        }
    }
}

@Suite("Vector activations agree with their scalar definitions")
struct VectorActivationTests {
    /// -12...12 in steps of 1/64, plus a tail that is not a multiple of 8 (1537 values).
    let inputs = Tensor(shape: [1537], scalars: (0..<1537).map { Float($0 - 768) / 64 })

    // Tolerances: SiLU and quick GELU differ from libm only by the vector exp's 1 ulp, so 2e-6
    // relative to max(1, |x|). GELU's vector erf is within 1.5e-7 of the true erf, which becomes
    // at most 0.5·|x|·1.5e-7 ≈ 1e-6 at |x| = 12.
    @Test("SiLU, exact GELU and quick GELU, element by element")
    func activations() {
        let cases: [(Tensor, (Float) -> Float)] = [(Fast.silu(inputs), silu), (Fast.gelu(inputs), gelu),
                                                   (Fast.quickGELU(inputs), quickGELU)]
        for (vector, scalar) in cases {
            for (x, y) in zip(inputs.scalars, vector.scalars) {
                #expect(abs(y - scalar(x)) <= 2e-6 * max(1, abs(x)), "at x = \(x)")
            }
        }
    }

    @Test("GEGLU in one pass equals splitting, GELU on the gate, and multiplying", arguments: [8, 13, 40])
    func geglu(half: Int) {
        let x = Tensor(shape: [2, 3, 2 * half], scalars: randomScalars(12 * half, seed: 5).map { $0 * 4 })
        let parts = x.split(2, axis: 2)
        let expected = parts[0].zipMap(parts[1]) { h, g in h * gelu(g) }
        let fused = Fast.geglu(x)
        #expect(fused.shape == [2, 3, half])
        #expect(fused.maxAbsDifference(expected) < 4e-6)
    }
}
