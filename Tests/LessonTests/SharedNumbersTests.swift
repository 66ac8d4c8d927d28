import Foundation
import FrameExport
import LessonKit
import Testing
import TensorCore

/// The helpers every lesson uses to measure and print numbers.
@Suite("LessonKit: summaries, differences and number formats")
struct SharedNumbersTests {
    @Test("a summary of 1, 2, 3, 4: mean 2.5, population standard deviation √1.25")
    func summary() {
        let stats = TensorSummary(Tensor(shape: [2, 2], scalars: [4, 1, 3, 2]))
        #expect(stats.count == 4)
        #expect(stats.mean == 2.5)
        // ((1.5² + 0.5²) · 2) / 4 = 1.25
        #expect(abs(stats.standardDeviation - Float(1.25).squareRoot()) < 1e-6)
        #expect(stats.min == 1 && stats.max == 4)
    }

    @Test("root-mean-square difference: √(Σ d² / n)")
    func rootMeanSquare() {
        let a = Tensor(shape: [4], scalars: [0, 0, 0, 0]), b = Tensor(shape: [4], scalars: [1, -1, 3, -3])
        // (1 + 1 + 9 + 9) / 4 = 5
        #expect(abs(Difference.rootMeanSquare(a, b) - Float(5).squareRoot()) < 1e-6)
        #expect(Difference.rootMeanSquare(b, a) == Difference.rootMeanSquare(a, b))
        #expect(Difference.rootMeanSquare(b, b) == 0)
    }

    @Test("thousands separators and shapes")
    func grouping() {
        #expect(Format.grouped(786_432) == "786,432")   // 3 x 512 x 512
        #expect(Format.grouped(999) == "999")
        #expect(Format.grouped(1000) == "1,000")
        #expect(Format.grouped(0) == "0")
        #expect(Format.grouped(-1_234_567) == "-1,234,567")
        #expect(Format.shape([1, 4, 64, 64]) == "(1, 4, 64, 64)")
    }

    @Test("bytes in powers of 1000 with three significant digits")
    func bytes() {
        #expect(Format.bytes(999) == "999 bytes")
        #expect(Format.bytes(3 * 512 * 512 * 4) == "3.15 MB")   // 3,145,728 bytes
        #expect(Format.bytes(65_536) == "65.5 kB")               // 4 x 64 x 64 x 4 bytes
        #expect(Format.bytes(2.5e12) == "2.50 TB")
        #expect(Format.bytes(123e9) == "123 GB")
    }

    @Test("FLOP counts in the largest fitting unit")
    func flops() {
        #expect(Format.flops(gflop: 999.94) == "999.9 GFLOP")
        #expect(Format.flops(gflop: 1606.5) == "1.61 TFLOP")
        #expect(Format.flops(gflop: 2.5e6) == "2.5 PFLOP")
    }

    @Test("table columns: padded on the right, or aligned right")
    func columns() {
        #expect("ab".padded(to: 4) == "ab  ")
        #expect("abcd".padded(to: 4) == "abcd ")
        #expect("ab".rightAligned(to: 4) == "  ab")
        #expect("abcde".rightAligned(to: 4) == "abcde")
    }

    @Test("small pictures are enlarged by a whole factor to reach the side asked for")
    func enlarged() {
        #expect(RGBImage.zoom(width: 48, height: 48, toAtLeast: 144) == 3)
        #expect(RGBImage.zoom(width: 100, height: 70, toAtLeast: 256) == 2)
        #expect(RGBImage.zoom(width: 512, height: 512, toAtLeast: 256) == 1)
        let image = RGBImage(width: 16, height: 8, color: RGBColor(hex: 0x123456)).enlarged(toAtLeast: 64)
        #expect(image.width == 64 && image.height == 32)
    }
}
