import TensorCore
import Testing
import FrameExport

/// Tensor <-> image conversion must match diffusers byte for byte:
/// `round(clamp(x / 2 + 0.5, 0, 1) * 255)` with NumPy's round-half-to-even.
struct TensorConversionTests {
    /// One row of pixels whose red, green and blue planes are all `values`.
    private func bytes(for values: [Float], range: PixelRange) -> [UInt8] {
        let tensor = Tensor(shape: [3, 1, values.count], scalars: values + values + values)
        let image = RGBImage(tensor: tensor, range: range)
        return (0..<values.count).map { image[$0, 0].red }
    }

    @Test func minusOneToOneMapsLikeDiffusers() {
        // -1 -> 0, 1 -> 255, 0 -> 127.5 -> 128 (the even neighbour), -0.5 -> 63.75 -> 64,
        // 0.5 -> 191.25 -> 191, out-of-range values clamp, NaN -> 0.
        let values: [Float] = [-1, 1, 0, -0.5, 0.5, 2, -3, .nan]
        #expect(bytes(for: values, range: .minusOneToOne) == [0, 255, 128, 64, 191, 255, 0, 0])
    }

    @Test func zeroToOneMapsLikeDiffusers() {
        let values: [Float] = [0, 1, 0.5, 0.25, 1.5, -0.1]
        #expect(bytes(for: values, range: .zeroToOne) == [0, 255, 128, 64, 255, 0])
    }

    @Test func roundingIsHalfToEven() {
        // 2.5 / 255 * 255 is exactly 2.5 in Float; half-to-even gives 2 where half-up would give 3.
        let value = Float(2.5) / 255
        #expect(value * 255 == 2.5)
        #expect(RGBImage.byte(from: value, range: .zeroToOne) == 2)
    }

    @Test func planesBecomeChannels() {
        // (1, 3, 2, 2): red plane, then green, then blue; pixel (x: 1, y: 0) is element 1 of each.
        let red: [Float] = [-1, 1, -1, -1], green: [Float] = [-1, -1, 1, -1], blue: [Float] = [-1, 0, -1, 1]
        let image = RGBImage(tensor: Tensor(shape: [1, 3, 2, 2], scalars: red + green + blue))
        #expect(image.width == 2 && image.height == 2)
        #expect(image[0, 0] == RGBColor(0, 0, 0))
        #expect(image[1, 0] == RGBColor(255, 0, 128))
        #expect(image[0, 1] == RGBColor(0, 255, 0))
        #expect(image[1, 1] == RGBColor(0, 0, 255))
    }

    @Test func toTensorIsTheInverse() {
        // Every byte value survives image -> tensor -> image.
        let pixels: [UInt8] = (0..<256).flatMap { i -> [UInt8] in [UInt8(i), UInt8(255 - i), UInt8((i * 7) % 256)] }
        let image = RGBImage(width: 16, height: 16, pixels: pixels)
        let tensor = image.toTensor()
        #expect(tensor.shape == [1, 3, 16, 16])
        #expect(tensor[0, 0, 0, 0] == -1)                               // byte 0
        #expect(tensor[0, 1, 0, 0] == 1)                                // byte 255
        #expect(abs(tensor[0, 0, 3, 3] - (51.0 / 255 * 2 - 1)) < 1e-6) // pixel 51: red byte 51 -> -0.6
        #expect(RGBImage(tensor: tensor) == image)
        #expect(RGBImage(tensor: image.toTensor(range: .zeroToOne), range: .zeroToOne) == image)
    }

    @Test func batchSplitsIntoImages() {
        let first = Tensor(repeating: -1, shape: [1, 3, 2, 3]), second = Tensor(repeating: 1, shape: [1, 3, 2, 3])
        let images = RGBImage.images(fromBatch: Tensor.concatenate([first, second], axis: 0))
        #expect(images.count == 2)
        #expect(images[0] == RGBImage(width: 3, height: 2, color: .black))
        #expect(images[1] == RGBImage(width: 3, height: 2, color: .white))
    }
}
