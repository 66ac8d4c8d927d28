import _CKernels
import Foundation

/// Which of the CPU's vector instruction sets the fast kernels' innermost loops use.
///
/// The package is compiled for the platform's default target, which on x86-64 is the 2003 set
/// (SSE2: 4 floats a vector, no fused multiply-add). The few loops where almost all the arithmetic
/// happens (the GEMM's register tile, the vector `exp`, widening 16-bit weights) are compiled
/// three times in `Sources/_CKernels`, once per instruction set, and the fastest one the processor
/// has is chosen when the program starts. The same binary runs on every x86-64 CPU.
///
/// `SD_CPU` forces a variant, to compare them or to run the slow baseline on a fast machine:
///
/// ```sh
/// SD_CPU=avx2 sd-bench gemm            # the 8-float kernels even on an AVX-512 CPU
/// SD_CPU=baseline sd generate --prompt "a red circle"
/// ```
///
/// Every variant with fused multiply-add (AVX-512, AVX2, NEON) computes bit-identical numbers: each
/// output of a product is summed over the depth in the same order, one fused multiply-add at a
/// time, whatever the tile shape. The x86-64 baseline rounds each product before adding it, so its
/// results differ from the others by float rounding.
public enum InstructionSet: String, CaseIterable, Sendable {
    /// 16 floats a vector, 32 registers: a 14x32 register tile.
    case avx512
    /// AVX2 + FMA + F16C, 8 floats a vector, 16 registers: a 6x16 register tile.
    case avx2
    /// SSE2 on x86-64 (a 2x16 tile, no fused multiply-add), NEON on arm64 (6x16, fused).
    case baseline

    /// Whether this processor and its operating system can run the variant.
    public var isSupported: Bool { cpu_supports(variant) != 0 && CPUKernels.compiled(self) != nil }

    /// The fastest variant this computer can run.
    public static var best: InstructionSet { allCases.first(where: \.isSupported) ?? .baseline }

    /// The variant the fast kernels use in this process: `SD_CPU` if it names one this CPU has,
    /// else `best`. Programs check `SD_CPU` with `fromEnvironment()` when they start, so a bad
    /// value stops them with a message before any work instead of being ignored.
    public static let active: InstructionSet = (try? fromEnvironment()) ?? best

    /// `SD_CPU` from the environment: nil when unset; an error when it names no variant or one
    /// this CPU cannot run.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment)
        throws -> InstructionSet? {
        guard let text = environment["SD_CPU"], !text.isEmpty else { return nil }
        guard let chosen = InstructionSet(rawValue: text.lowercased()) else {
            throw InstructionSetError.unknown(text)
        }
        guard chosen.isSupported else { throw InstructionSetError.unsupported(chosen) }
        return chosen
    }

    /// One line for reports: `avx2 (8-float vectors, 6x16 register tile)`.
    public var summary: String {
        guard let kernels = CPUKernels.compiled(self) else { return "\(rawValue) (not in this build)" }
        return "\(rawValue) (\(kernels.vectorWidth)-float vectors, \(kernels.tileRows)x\(kernels.tileColumns) register tile)"
    }

    var variant: cpu_variant {
        switch self {
        case .avx512: return cpu_variant_avx512
        case .avx2: return cpu_variant_avx2
        case .baseline: return cpu_variant_baseline
        }
    }
}

/// An `SD_CPU` value that cannot be used.
public enum InstructionSetError: Error, CustomStringConvertible, Equatable {
    case unknown(String)
    case unsupported(InstructionSet)

    public var description: String {
        let available = InstructionSet.allCases.filter(\.isSupported).map(\.rawValue).joined(separator: ", ")
        switch self {
        case .unknown(let text):
            return "SD_CPU: '\(text)' is not an instruction set; use avx512, avx2 or baseline (this CPU can run: \(available))"
        case .unsupported(let set):
            return "SD_CPU: this CPU cannot run \(set.rawValue) instructions (it can run: \(available))"
        }
    }
}

/// One variant's kernels, as Swift sees them (see `cpu_kernel_set` in `_CKernels`). Visible to
/// the package's tests, which run every variant side by side.
package struct CPUKernels: @unchecked Sendable {
    package let name: String
    package let vectorWidth: Int
    /// Rows of the register tile, and so the width of the GEMM's packed panels of A (`mr`).
    package let tileRows: Int
    /// Columns of the full register tile: 16 or 32, one or two packed 16-column panels of B.
    package let tileColumns: Int
    let gemmTile: cpu_gemm_tile_function
    let gemmTile16: cpu_gemm_tile_function
    package let exp: @convention(c) (UnsafeMutablePointer<Float>?, Int) -> Void
    /// `(kind, x, y, count)`: `y[i] = f(x[i])` for the `cpu_activation` `kind`.
    package let activation: @convention(c) (Int32, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int) -> Void
    package let widenHalf: @convention(c) (UnsafeRawPointer?, UnsafeMutablePointer<Float>?, Int) -> Void

    init(_ set: UnsafePointer<cpu_kernel_set>) {
        let s = set.pointee
        name = String(cString: s.name)
        vectorWidth = Int(s.vector_width)
        tileRows = Int(s.tile_rows)
        tileColumns = Int(s.tile_columns)
        gemmTile = s.gemm_tile
        gemmTile16 = s.gemm_tile_16
        exp = s.exp
        activation = s.activation
        widenHalf = s.widen_half
    }

    /// The kernels `InstructionSet.active` names: what every fast operation uses.
    package static let active = compiled(InstructionSet.active)!

    /// A variant's kernels if this build has them (whether or not the CPU can run them).
    package static func compiled(_ set: InstructionSet) -> CPUKernels? {
        cpu_kernels(set.variant).map(CPUKernels.init)
    }

    /// The AVX-512 variant's code compiled for AVX2, for tests on machines without AVX-512.
    package static var avx512OnAVX2: CPUKernels? { cpu_kernels_avx512_on_avx2().map(CPUKernels.init) }
}
