import Testing
import TensorCore

@Suite("Conv2D: im2col + GEMM agrees with the definition")
struct ConvolutionTests {
    struct Case: Sendable, CustomStringConvertible {
        var batch, inChannels, outChannels, size, kernel, stride, padding: Int
        var description: String { "N\(batch) C\(inChannels)→\(outChannels) \(size)² k\(kernel) s\(stride) p\(padding)" }
    }

    @Test("Fast.conv2d matches Reference.conv2d", arguments: [
        Case(batch: 1, inChannels: 1, outChannels: 1, size: 1, kernel: 1, stride: 1, padding: 0),
        Case(batch: 2, inChannels: 3, outChannels: 5, size: 7, kernel: 3, stride: 1, padding: 1),   // UNet/VAE 3x3
        Case(batch: 1, inChannels: 4, outChannels: 6, size: 9, kernel: 3, stride: 2, padding: 1),   // UNet downsample
        Case(batch: 1, inChannels: 7, outChannels: 3, size: 5, kernel: 1, stride: 1, padding: 0),   // 1x1 shortcut
        Case(batch: 1, inChannels: 2, outChannels: 17, size: 6, kernel: 3, stride: 2, padding: 0),  // VAE downsample
        Case(batch: 1, inChannels: 3, outChannels: 2, size: 5, kernel: 5, stride: 1, padding: 2),
        // Padding wider than the image: some kernel columns see only padding in every row.
        Case(batch: 1, inChannels: 2, outChannels: 3, size: 2, kernel: 5, stride: 1, padding: 3),
        // Large enough for the GEMM's packed, multi-tile path (2 images, 48 channels, 24x24).
        Case(batch: 2, inChannels: 48, outChannels: 40, size: 24, kernel: 3, stride: 1, padding: 1),
        // Many output channels on a small image: C is cut into row bands, so the image patches are
        // packed in full before the tiles start; 6x6 outputs wrap inside every 16-pixel panel.
        Case(batch: 1, inChannels: 8, outChannels: 200, size: 6, kernel: 3, stride: 1, padding: 1),
        Case(batch: 1, inChannels: 8, outChannels: 200, size: 11, kernel: 3, stride: 2, padding: 1),
        // Several small images side by side in one product, their borders written out first.
        Case(batch: 4, inChannels: 5, outChannels: 7, size: 8, kernel: 3, stride: 1, padding: 1),
        Case(batch: 3, inChannels: 4, outChannels: 6, size: 9, kernel: 3, stride: 2, padding: 1),
        // Their patches packed straight from the padded images, a panel of whole output rows: 4
        // rows of 4, 4 images of 2x2 (the last panel only three), 16 images of 1x1, one row of 16.
        Case(batch: 3, inChannels: 6, outChannels: 5, size: 4, kernel: 3, stride: 1, padding: 1),
        Case(batch: 3, inChannels: 6, outChannels: 5, size: 2, kernel: 3, stride: 1, padding: 1),
        Case(batch: 17, inChannels: 4, outChannels: 3, size: 1, kernel: 3, stride: 1, padding: 1),
        Case(batch: 2, inChannels: 4, outChannels: 3, size: 16, kernel: 1, stride: 1, padding: 0),
        // 100 rows of 100 pixels: more than one band of output rows.
        Case(batch: 1, inChannels: 3, outChannels: 8, size: 100, kernel: 3, stride: 1, padding: 1),
    ])
    func matchesReference(c: Case) {
        let x = Tensor(shape: [c.batch, c.inChannels, c.size, c.size],
                       scalars: randomScalars(c.batch * c.inChannels * c.size * c.size, seed: 1))
        let w = Tensor(shape: [c.outChannels, c.inChannels, c.kernel, c.kernel],
                       scalars: randomScalars(c.outChannels * c.inChannels * c.kernel * c.kernel, seed: 2))
        let b = Tensor(shape: [c.outChannels], scalars: randomScalars(c.outChannels, seed: 3))
        // The direct convolution (im2col + GEMM); Winograd's path has its own tests.
        let fast = Winograd.withoutIt { Fast.conv2d(x, weight: w, bias: b, stride: c.stride, padding: c.padding) }
        let slow = Reference.conv2d(x, weight: w, bias: b, stride: c.stride, padding: c.padding)
        #expect(fast.shape == slow.shape)
        // Each output sums C_in·k² products in a different order; as for the GEMM, allow 1e-5
        // times the square root of that count (the typical size of such a sum).
        let terms = Float(c.inChannels * c.kernel * c.kernel)
        #expect(fast.maxAbsDifference(slow) < 1e-5 * terms.squareRoot())
        // What the operation runs by default (Winograd's where it applies) is held to Winograd's bound.
        let operation = Fast.conv2d(x, weight: w, bias: b, stride: c.stride, padding: c.padding)
        #expect(operation.maxAbsDifference(slow) < 2e-5 * terms.squareRoot())
    }

    @Test("a 3x3 box filter with zero padding, computed by hand")
    func boxFilter() {
        // Summing a 3x3 window of ones over a 3x3 ones image: corners see 4, edges 6, centre 9.
        let x = Tensor(repeating: 1, shape: [1, 1, 3, 3])
        let w = Tensor(repeating: 1, shape: [1, 1, 3, 3])
        let y = x.conv2d(weight: w, bias: nil, padding: 1)
        #expect(y.scalars == [4, 6, 4, 6, 9, 6, 4, 6, 4])
    }

    @Test("output size: ⌊(H + 2p − k) / s⌋ + 1")
    func outputSize() {
        let x = Tensor.zeros([1, 2, 64, 64])
        #expect(x.conv2d(weight: .zeros([3, 2, 3, 3]), bias: nil, stride: 2, padding: 1).shape == [1, 3, 32, 32])
        #expect(x.conv2d(weight: .zeros([3, 2, 3, 3]), bias: nil, stride: 1, padding: 0).shape == [1, 3, 62, 62])
    }
}
