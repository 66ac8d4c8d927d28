import Foundation
import Testing
import TensorCore

/// Every variant of the innermost loops this machine can run, with the AVX-512 variant's own code
/// compiled for AVX2 (`avx512-on-avx2`) so that its tile shape and edges are checked on any CPU
/// with AVX2. The real AVX-512 variant is tested only where the CPU has it (see `onAVX512`).
let runnableVariants: [(name: String, kernels: CPUKernels)] = {
    var variants = InstructionSet.allCases.filter(\.isSupported).map { ($0.rawValue, CPUKernels.compiled($0)!) }
    if InstructionSet.avx2.isSupported, let emulated = CPUKernels.avx512OnAVX2 { variants.append(("avx512-on-avx2", emulated)) }
    return variants
}()

/// The variants that fuse multiply-adds: they must agree to the bit.
let fusedVariants = runnableVariants.filter { $0.name != "baseline" || !isX86 }
let isX86: Bool = {
    #if arch(x86_64)
    return true
    #else
    return false
    #endif
}()

/// The result of one GEMM on `kernel` (operands from `randomScalars`, C starting as other random numbers).
func gemmResult(m: Int, n: Int, k: Int, bias: BiasKind, accumulate: Bool, kernel: CPUKernels) -> [Float] {
    let a = randomScalars(m * k, seed: 11), b = randomScalars(k * n, seed: 12), biasValues = randomScalars(max(m, n), seed: 13)
    var c = randomScalars(m * n, seed: 14)
    a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in biasValues.withUnsafeBufferPointer { pbias in
        c.withUnsafeMutableBufferPointer { pc in
            let gemmBias: GEMMBias = switch bias {
            case .none: .none
            case .perRow: .perRow(pbias.baseAddress!)
            case .perColumn: .perColumn(pbias.baseAddress!)
            }
            gemm(m: m, n: n, k: k, a: .rowMajor(pa.baseAddress!, rowLength: k), b: .rowMajor(pb.baseAddress!, rowLength: n),
                 c: pc.baseAddress!, ldc: n, accumulate: accumulate, bias: gemmBias, kernel: kernel)
        }
    }}}
    return c
}

@Suite("Instruction sets: every variant of the innermost loops against the plain kernels")
struct InstructionSetTests {
    @Test("this machine runs the baseline and, on x86-64 with AVX2, the AVX2 variant; `best` is one it runs")
    func detection() {
        #expect(InstructionSet.baseline.isSupported)
        #expect(InstructionSet.best.isSupported)
        #expect(InstructionSet.allCases.firstIndex(of: InstructionSet.best)! ==
                InstructionSet.allCases.firstIndex(where: \.isSupported)!)
        #if arch(x86_64)
        // AVX-512 implies AVX2 on every CPU that has it; the detection must agree.
        if InstructionSet.avx512.isSupported { #expect(InstructionSet.avx2.isSupported) }
        #else
        #expect(!InstructionSet.avx2.isSupported && !InstructionSet.avx512.isSupported)
        #endif
    }

    @Test("SD_CPU: unset or empty means the best; names are case-insensitive; others are refused by name")
    func environment() throws {
        #expect(try InstructionSet.fromEnvironment([:]) == nil)
        #expect(try InstructionSet.fromEnvironment(["SD_CPU": ""]) == nil)
        #expect(try InstructionSet.fromEnvironment(["SD_CPU": "BASELINE"]) == .baseline)
        #expect(throws: InstructionSetError.unknown("sse9")) { try InstructionSet.fromEnvironment(["SD_CPU": "sse9"]) }
        let message = "\(InstructionSetError.unknown("sse9"))"
        #expect(message.contains("'sse9'") && message.contains("avx512, avx2 or baseline") && message.contains("baseline"))
        for set in InstructionSet.allCases {
            if set.isSupported {
                #expect(try InstructionSet.fromEnvironment(["SD_CPU": set.rawValue]) == set)
            } else {
                #expect(throws: InstructionSetError.unsupported(set)) { try InstructionSet.fromEnvironment(["SD_CPU": set.rawValue]) }
                #expect("\(InstructionSetError.unsupported(set))".contains("cannot run \(set.rawValue)"))
            }
        }
    }

    @Test("GEMM on every variant agrees with the reference: awkward shapes, biases, accumulation, shared packing",
          arguments: [(1, 1, 1), (2, 3, 5), (13, 1, 600), (15, 33, 17), (29, 47, 321), (97, 53, 300), (150, 40, 513),
                      (1, 301, 29), (900, 40, 300), (40, 2000, 300), (700, 900, 200)])
    func gemmAgainstReference(shape: (Int, Int, Int)) {
        for variant in runnableVariants {
            for bias in BiasKind.allCases {
                let accumulate = bias == .perColumn
                let error = gemmDiscrepancy(m: shape.0, n: shape.1, k: shape.2, accumulate: accumulate, bias: bias,
                                            kernel: variant.kernels)
                #expect(error < gemmTolerance, "\(variant.name), \(bias)")
            }
            #expect(gemmDiscrepancy(m: shape.0, n: shape.1, k: shape.2, transposeA: true, transposeB: true,
                                    kernel: variant.kernels) < gemmTolerance, "\(variant.name), transposed")
        }
    }

    @Test("variants with fused multiply-add give bit-identical products, whatever their register tiles",
          arguments: [(7, 13, 11), (29, 47, 321), (97, 53, 300), (900, 40, 300), (40, 2000, 700), (333, 444, 555)])
    func fusedVariantsAgreeExactly(shape: (Int, Int, Int)) {
        guard let first = fusedVariants.first else { return }
        for bias in BiasKind.allCases {
            let expected = gemmResult(m: shape.0, n: shape.1, k: shape.2, bias: bias, accumulate: bias == .perRow,
                                      kernel: first.kernels)
            for variant in fusedVariants.dropFirst() {
                let result = gemmResult(m: shape.0, n: shape.1, k: shape.2, bias: bias, accumulate: bias == .perRow,
                                        kernel: variant.kernels)
                #expect(result.map(\.bitPattern) == expected.map(\.bitPattern), "\(variant.name) vs \(first.name), \(bias)")
            }
        }
    }

    @Test("the vector exp is within 1 ulp of expf on every variant, 0 below -87.34, for any count")
    func exponential() {
        // A sweep over the whole useful range plus the edges, in a count that leaves a tail.
        var inputs: [Float] = stride(from: -90.0, through: 90.0, by: 0.00731).map { Float($0) }
        inputs += [0, -0, 1e-30, -1e-30, 88.37, 88.3762626647949, -87.3365447504, -87.33, -88, -1000, 1000]
        for variant in runnableVariants {
            var values = inputs
            values.withUnsafeMutableBufferPointer { variant.kernels.exp($0.baseAddress!, $0.count) }
            var worst: Float = 0
            for (x, y) in zip(inputs, values) {
                if x < -87.3365447504 {
                    #expect(y == 0, "\(variant.name): e^\(x)")
                } else {
                    let exact = Foundation.expf(min(x, 88.3762626647949))
                    worst = max(worst, abs(y - exact) / exact.ulp)
                }
            }
            #expect(worst <= 1, "\(variant.name): \(worst) ulp")
            // The tail of an array goes through the same formula as whole vectors.
            for count in 1...17 {
                var head = Array(inputs[1000..<(1000 + count)])
                head.withUnsafeMutableBufferPointer { variant.kernels.exp($0.baseAddress!, $0.count) }
                #expect(head.map(\.bitPattern) == values[1000..<(1000 + count)].map(\.bitPattern), "\(variant.name), \(count)")
            }
        }
        let results = fusedVariants.map { variant -> [UInt32] in
            var values = inputs
            values.withUnsafeMutableBufferPointer { variant.kernels.exp($0.baseAddress!, $0.count) }
            return values.map(\.bitPattern)
        }
        #expect(results.allSatisfy { $0 == results.first }, "fused variants agree to the bit")
    }

    @Test("activations and their derivatives on every variant against the scalar definitions")
    func activations() {
        // -12...12 covers where the functions bend; beyond it they are x or 0 to float precision.
        let inputs: [Float] = stride(from: -12.0, through: 12.0, by: 0.0037).map { Float($0) } + [0, -0]
        // (kind, definition): one exp or erf (each within ~1e-7 of the scalar one) and a few
        // roundings, so 2e-6 of max(1, |f|) bounds the difference.
        let cases: [(Int32, (Float) -> Float, String)] = [
            (0, silu, "silu"), (1, quickGELU, "quick gelu"), (2, gelu, "gelu"),
            (3, siluDerivative, "silu′"), (4, quickGELUDerivative, "quick gelu′"), (5, geluDerivative, "gelu′"),
        ]
        for variant in runnableVariants {
            for (kind, definition, name) in cases {
                var values = [Float](repeating: 0, count: inputs.count)
                inputs.withUnsafeBufferPointer { x in values.withUnsafeMutableBufferPointer { y in
                    variant.kernels.activation(kind, x.baseAddress!, y.baseAddress!, x.count)
                }}
                let worst = zip(inputs, values).map { x, y in abs(y - definition(x)) / max(1, abs(definition(x))) }.max()!
                #expect(worst < 2e-6, "\(variant.name) \(name): \(worst)")
            }
        }
        for (kind, _, name) in cases {
            let results = fusedVariants.map { variant -> [UInt32] in
                var values = inputs
                values.withUnsafeMutableBufferPointer { variant.kernels.activation(kind, $0.baseAddress!, $0.baseAddress!, $0.count) }
                return values.map(\.bitPattern)
            }
            #expect(results.allSatisfy { $0 == results.first }, "\(name): fused variants agree to the bit")
        }
    }

    @Test("half precision widens exactly on every variant: all 65,536 bit patterns, any alignment")
    func halfPrecision() {
        let patterns = (0...UInt16.max).map { $0 }
        // One byte of offset: the source may start at any address.
        var bytes = [UInt8](repeating: 0, count: 1 + 2 * patterns.count)
        for (i, bits) in patterns.enumerated() {
            bytes[1 + 2 * i] = UInt8(bits & 0xFF)
            bytes[2 + 2 * i] = UInt8(bits >> 8)
        }
        for variant in runnableVariants {
            var widened = [Float](repeating: 0, count: patterns.count)
            bytes.withUnsafeBytes { source in widened.withUnsafeMutableBufferPointer { out in
                variant.kernels.widenHalf(source.baseAddress! + 1, out.baseAddress!, patterns.count)
            }}
            var mismatches = 0
            for (bits, value) in zip(patterns, widened) {
                let expected = float16BitsToFloat(bits)
                if expected.isNaN ? !value.isNaN : value.bitPattern != expected.bitPattern { mismatches += 1 }
            }
            #expect(mismatches == 0, "\(variant.name)")
        }
    }

    @Test("the register tiles: 6x16 for AVX2, 14x32 for AVX-512 (and its AVX2 build), 16 columns or more for all")
    func tiles() {
        #expect(CPUKernels.compiled(.baseline)!.tileColumns == 16)
        #if arch(x86_64)
        #expect(CPUKernels.compiled(.avx2).map { ($0.tileRows, $0.tileColumns, $0.vectorWidth) }! == (6, 16, 8))
        #expect(CPUKernels.compiled(.avx512).map { ($0.tileRows, $0.tileColumns, $0.vectorWidth) }! == (14, 32, 16))
        #expect(CPUKernels.avx512OnAVX2.map { ($0.tileRows, $0.tileColumns) }! == (14, 32))
        #endif
    }

    /// Runs only where the CPU has AVX-512; elsewhere Swift Testing reports it as skipped.
    @Test("on an AVX-512 CPU: the real AVX-512 variant gives exactly the products of its AVX2 build",
          .enabled(if: InstructionSet.avx512.isSupported, "this CPU has no AVX-512"))
    func onAVX512() {
        let real = CPUKernels.compiled(.avx512)!, emulated = CPUKernels.avx512OnAVX2!
        for shape in [(29, 47, 321), (900, 40, 300), (333, 444, 555)] {
            let a = gemmResult(m: shape.0, n: shape.1, k: shape.2, bias: .perColumn, accumulate: true, kernel: real)
            let b = gemmResult(m: shape.0, n: shape.1, k: shape.2, bias: .perColumn, accumulate: true, kernel: emulated)
            #expect(a.map(\.bitPattern) == b.map(\.bitPattern))
        }
    }
}
