import Foundation
import Testing
import TensorCore

/// Winograd's F(4x4, 3x3) against the plain convolution loops.
@Suite("Winograd convolution: the plain loops' numbers with 4x fewer multiplications")
struct WinogradTests {
    /// The largest difference from `Reference.conv2d`, relative to the size of the terms summed,
    /// `√(9·C_in)` for inputs and weights in [-1, 1].
    static func discrepancy(_ shape: [Int], outChannels: Int, bias: Bool = true) -> Float {
        let x = randomTensor(shape, seed: 21), w = randomTensor([outChannels, shape[1], 3, 3], seed: 22)
        let b = bias ? randomTensor([outChannels], seed: 23) : nil
        let g = Conv2DGeometry(input: shape, weight: w.shape, stride: 1, padding: 1)
        let fast = w.withUnsafePointer { Fast.winogradConv2d(x, g, weight: $0, bias: b) }
        let plain = Reference.conv2d(x, weight: w, bias: b, stride: 1, padding: 1)
        #expect(fast.shape == plain.shape)
        return fast.maxAbsDifference(plain) / Float(9 * shape[1]).squareRoot()
    }

    // The transforms scale numbers by up to 8·8 (inputs) and 1/24 (kernels) before they cancel, so
    // the result carries about 50x the rounding of a direct float sum: up to 8e-6 of the terms'
    // size measured here (direct sums: 1e-7). 2e-5 leaves a margin and still fails for any wrong
    // coefficient, which is off by 0.1 or more.
    @Test("awkward sizes: edges that cut tiles, one channel, more tiles than a chunk, a batch",
          arguments: [[1, 1, 4, 4], [1, 3, 5, 7], [1, 8, 9, 13], [2, 16, 32, 32], [1, 4, 1, 1], [3, 5, 17, 6],
                      [1, 64, 48, 40]])
    func againstPlainLoops(shape: [Int]) {
        #expect(Self.discrepancy(shape, outChannels: 7) < 2e-5)
    }

    @Test("without a bias, and with more output than input channels")
    func withoutBias() {
        #expect(Self.discrepancy([1, 3, 12, 12], outChannels: 33, bias: false) < 2e-5)
    }

    @Test("used for 3x3, stride 1, padding 1 on enough pixels; never in training forwards")
    func whenItApplies() {
        func geometry(_ input: [Int], kernel: Int = 3, stride: Int = 1, padding: Int = 1) -> Conv2DGeometry {
            Conv2DGeometry(input: input, weight: [4, input[1], kernel, kernel], stride: stride, padding: padding)
        }
        #expect(Winograd.applies(to: geometry([1, 4, 32, 32]), batch: 1))
        #expect(!Winograd.applies(to: geometry([1, 4, 16, 16]), batch: 1))     // 256 pixels: too few
        #expect(Winograd.applies(to: geometry([4, 4, 16, 16]), batch: 4))
        #expect(!Winograd.applies(to: geometry([1, 4, 64, 64], stride: 2), batch: 1))
        #expect(!Winograd.applies(to: geometry([1, 4, 64, 64], padding: 0), batch: 1))
        #expect(!Winograd.applies(to: geometry([1, 4, 64, 64], kernel: 1, padding: 0), batch: 1))
        Winograd.withoutIt { #expect(!Winograd.applies(to: geometry([1, 4, 32, 32]), batch: 1)) }
    }

    @Test("the whole operation: x.conv2d on the fast kernels takes this path and gives the plain loops' numbers")
    func throughTheOperation() {
        let x = randomTensor([1, 16, 40, 40], seed: 31), w = randomTensor([24, 16, 3, 3], seed: 32), b = randomTensor([24], seed: 33)
        let fast = x.conv2d(weight: w, bias: b, padding: 1)
        let direct = Winograd.withoutIt { x.conv2d(weight: w, bias: b, padding: 1) }
        let plain = Kernels.using(.reference) { x.conv2d(weight: w, bias: b, padding: 1) }
        #expect(fast.maxAbsDifference(plain) < 2e-5 * 12)
        #expect(direct.maxAbsDifference(plain) < 1e-5 * 12)
        #expect(fast.maxAbsDifference(direct) > 0, "Winograd's rounding differs from the direct sum's")
        // A 16-bit kernel is widened first: the same numbers as the widened Float32 kernel.
        let half = HalfTensor(rounding: w, to: .float16)
        #expect(x.conv2d(weight: half, bias: b, padding: 1).maxAbsDifference(x.conv2d(weight: half.widened(), bias: b, padding: 1)) == 0)
    }
}
