import Testing
import TensorCore

/// 16-bit weights are widened while the GEMM packs them. Widening is exact and packing only moves
/// numbers, so every result here must be bit-for-bit the result of the same call on the widened
/// Float32 tensor: the tolerance is zero.
@Suite("16-bit weights: widened inside the GEMM, the same numbers as widened first")
struct HalfPrecisionTests {
    static let formats: [HalfTensor.Format] = [.float16, .bfloat16]

    /// A tensor of random numbers in [-1, 1), rounded to `format`.
    static func halves(_ shape: [Int], _ format: HalfTensor.Format, seed: UInt64) -> HalfTensor {
        HalfTensor(rounding: Tensor(shape: shape, scalars: randomScalars(shape.reduce(1, *), seed: seed)), to: format)
    }

    @Test("rounding keeps the nearest 16-bit value, and widening gives it back exactly")
    func roundTrip() {
        let x = Tensor(shape: [2, 3], scalars: [1, 0.1, -2, 65504, 1e-8, 3.140625])
        let half = HalfTensor(rounding: x, to: .float16).widened()
        // 0.1 lies between the halves 0.0999755859375 and 0.10003662109375; the first is nearer.
        #expect(half.scalars == [1, 0.0999755859375, -2, 65504, 0, 3.140625])
        let brain = HalfTensor(rounding: x, to: .bfloat16).widened()
        // bfloat16 keeps 8 significant bits: 0.1 → 0.10009765625, 65504 → 65536.
        #expect(brain.scalars == [1, 0.10009765625, -2, 65536, 1.0011717677116394e-08, 3.140625])
        #expect(half.shape == [2, 3])
    }

    @Test("a slice of elements and a reshape read the same bytes", arguments: formats)
    func slicesAndReshapes(format: HalfTensor.Format) {
        let w = Self.halves([5, 7], format, seed: 3)
        let all = w.widened().scalars
        #expect(w.widened(elements: 7..<21) == Array(all[7..<21]))
        let flat = w.reshaped([35])
        #expect(flat.shape == [35] && flat.widened().scalars == all)
    }

    @Test("numbers that do not start on a 2-byte boundary are read correctly", arguments: formats)
    func unalignedBytes(format: HalfTensor.Format) {
        let expected = Self.halves([37], format, seed: 5).widened()
        var bytes = [UInt8](repeating: 0, count: 1 + 2 * 37)
        bytes.withUnsafeMutableBytes { raw in
            for (i, value) in expected.scalars.enumerated() {
                let bits = format == .float16 ? Float16(value).bitPattern : floatToBFloat16Bits(value)
                raw.storeBytes(of: bits, toByteOffset: 1 + 2 * i, as: UInt16.self)
            }
            let shifted = HalfTensor(shape: [37], format: format, bytes: UnsafeRawPointer(raw.baseAddress! + 1), owner: nil)
            #expect(shifted.widened() == expected)
            #expect(shifted.widened(elements: 3..<20) == Array(expected.scalars[3..<20]))
        }
    }

    @Test("GEMM with a 16-bit A: serial, row bands, column bands, several depth slices",
          arguments: [(7, 13, 11), (97, 53, 300), (900, 40, 300), (40, 2000, 700), (150, 40, 513)])
    func halfLeftOperand(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        for format in Self.formats {
            let a = Self.halves([m, k], format, seed: UInt64(m + k))
            let b = randomScalars(k * n, seed: UInt64(n))
            let fast = product(m: m, n: n) { c in
                b.withUnsafeBufferPointer { pb in
                    gemm(m: m, n: n, k: k, a: .rowMajor(a.bytes, format: format, rowLength: k),
                         b: .rowMajor(pb.baseAddress!, rowLength: n), c: c, ldc: n)
                }
            }
            let widened = product(m: m, n: n) { c in
                a.widened().withUnsafePointer { pa in
                    b.withUnsafeBufferPointer { pb in
                        gemm(m: m, n: n, k: k, a: .rowMajor(pa, rowLength: k), b: .rowMajor(pb.baseAddress!, rowLength: n),
                             c: c, ldc: n)
                    }
                }
            }
            #expect(fast == widened, "\(format) \(shape)")
        }
    }

    @Test("GEMM with a 16-bit B, transposed as a linear weight or row-major",
          arguments: [(7, 13, 11), (900, 40, 300), (40, 2000, 700), (300, 301, 29)])
    func halfRightOperand(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        for format in Self.formats {
            let a = randomScalars(m * k, seed: UInt64(m))
            for transposed in [true, false] {
                // Transposed: B's numbers are stored as (n, k), a linear layer's (D_out, D_in).
                let b = Self.halves(transposed ? [n, k] : [k, n], format, seed: UInt64(n + k))
                let operand = transposed ? HalfMatrixOperand.transposed(b.bytes, format: format, rowLength: k)
                                         : .rowMajor(b.bytes, format: format, rowLength: n)
                let fast = product(m: m, n: n) { c in
                    a.withUnsafeBufferPointer { pa in
                        gemm(m: m, n: n, k: k, a: .rowMajor(pa.baseAddress!, rowLength: k), b: operand, c: c, ldc: n)
                    }
                }
                let widened = product(m: m, n: n) { c in
                    a.withUnsafeBufferPointer { pa in
                        b.widened().withUnsafePointer { pb in
                            gemm(m: m, n: n, k: k, a: .rowMajor(pa.baseAddress!, rowLength: k),
                                 b: transposed ? .transposed(pb, rowLength: k) : .rowMajor(pb, rowLength: n), c: c, ldc: n)
                        }
                    }
                }
                #expect(fast == widened, "\(format) \(shape) transposed: \(transposed)")
            }
        }
    }

    @Test("linear and conv2d layers with 16-bit weights", arguments: formats)
    func layers(format: HalfTensor.Format) {
        let x = Tensor(shape: [2, 9, 40], scalars: randomScalars(2 * 9 * 40, seed: 1))
        let w = Self.halves([70, 40], format, seed: 2)
        let b = Tensor(shape: [70], scalars: randomScalars(70, seed: 3))
        #expect(x.linear(weight: w, bias: b) == x.linear(weight: w.widened(), bias: b))

        let image = Tensor(shape: [2, 5, 17, 23], scalars: randomScalars(2 * 5 * 17 * 23, seed: 4))
        for (kernel, stride, padding) in [(3, 1, 1), (3, 2, 1), (1, 1, 0)] {
            let kernelWeights = Self.halves([11, 5, kernel, kernel], format, seed: UInt64(kernel * 10 + stride))
            let bias = Tensor(shape: [11], scalars: randomScalars(11, seed: 6))
            #expect(image.conv2d(weight: kernelWeights, bias: bias, stride: stride, padding: padding)
                    == image.conv2d(weight: kernelWeights.widened(), bias: bias, stride: stride, padding: padding),
                    "\(kernel)x\(kernel), stride \(stride)")
        }
    }

    /// `C (m, n)` as `body` writes it.
    private func product(m: Int, n: Int, _ body: (UnsafeMutablePointer<Float>) -> Void) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        c.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
        return c
    }
}
