// Weights kept in 16 bits.
//
// Checkpoints are usually shared in float16 (or bfloat16): half the download, half the memory.
// A `HalfTensor` keeps those numbers as they are, usually inside the memory-mapped file, and the
// layers hand it to the matrix multiplication as it is: the GEMM widens the numbers to Float32
// while it copies them into its packed panels (GEMM+HalfPrecision.swift), which it does anyway.
// So a 16-bit weight is read once per use, at 2 bytes a number, and never exists in Float32 in full.

/// A read-only tensor of 16-bit floating-point numbers: a shape, a format and the bytes.
///
/// ```swift
/// let w = HalfTensor(rounding: Tensor(shape: [2, 2], scalars: [1, 0.1, -2, 3]), to: .float16)
/// print(w.widened().scalars)      // [1.0, 0.099975586, -2.0, 3.0]: 0.1 has no exact half
/// let y = x.linear(weight: w, bias: nil)   // the same numbers as x.linear(weight: w.widened(), ...)
/// ```
public struct HalfTensor: @unchecked Sendable {
    /// The two 16-bit formats checkpoints use (see HalfPrecision.swift for their bit layouts).
    public enum Format: Sendable {
        case float16, bfloat16
    }

    public let shape: [Int]
    public let format: Format
    /// The numbers, `shape.reduce(1, *)` of them, 2 bytes each in row-major order. Need not be
    /// 2-byte aligned (a checkpoint's header decides where its data starts).
    public let bytes: UnsafeRawPointer
    /// What keeps `bytes` alive: the mapped file they lie in, or the buffer `init(rounding:to:)` made.
    private let owner: AnyObject?

    /// Wraps 16-bit numbers that `owner` keeps alive (for example a memory-mapped checkpoint).
    public init(shape: [Int], format: Format, bytes: UnsafeRawPointer, owner: AnyObject?) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
        self.shape = shape
        self.format = format
        self.bytes = bytes
        self.owner = owner
    }

    /// Rounds every number of `tensor` to the nearest 16-bit value, in a buffer of its own.
    /// (On all cores: merging a LoRA rounds most of a UNet's weights back to 16 bits.)
    public init(rounding tensor: Tensor, to format: Format) {
        let buffer = HalfBuffer(count: tensor.count)
        tensor.withUnsafePointer { source in
            let source = SendablePointer(UnsafeMutablePointer(mutating: source))
            let target = SendableHalfPointer(buffer.storage)
            Parallel.forEachChunk(of: tensor.count, minimumChunk: 1 << 16) { chunk in
                for i in chunk {
                    let value = source.pointer[i]
                    target.pointer[i] = format == .float16 ? Float16(value).bitPattern : floatToBFloat16Bits(value)
                }
            }
        }
        self.init(shape: tensor.shape, format: format, bytes: UnsafeRawPointer(buffer.storage), owner: buffer)
    }

    public var count: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }

    /// The same numbers seen with another shape of the same size (nothing is copied).
    public func reshaped(_ newShape: [Int]) -> HalfTensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        return HalfTensor(shape: newShape, format: format, bytes: bytes, owner: owner)
    }

    /// All the numbers as a Float32 tensor (exact: every 16-bit value is a Float32 value).
    public func widened() -> Tensor {
        withBytes { bytes in
            Tensor(shape: shape, unsafeUninitialized: { out in
                let target = SendablePointer(out.baseAddress!)
                Parallel.forEachChunk(of: count, minimumChunk: 1 << 18) { chunk in
                    widenHalves(bytes + 2 * chunk.lowerBound, format: format, count: chunk.count,
                                into: target.pointer + chunk.lowerBound)
                }
            })
        }
    }

    /// Elements `range` (in row-major order) widened to Float32: an embedding lookup widens only
    /// the rows it needs.
    public func widened(elements range: Range<Int>) -> [Float] {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "elements \(range) outside \(count)")
        return withBytes { bytes in
            [Float](unsafeUninitializedCapacity: range.count) { out, initialized in
                widenHalves(bytes + 2 * range.lowerBound, format: format, count: range.count, into: out.baseAddress!)
                initialized = range.count
            }
        }
    }

    /// Lets `body` use the bytes while they are certain to stay alive.
    func withBytes<Result>(_ body: (UnsafeRawPointer) -> Result) -> Result {
        withExtendedLifetime(owner) { body(bytes) }
    }
}

/// Memory for 16-bit numbers that a `HalfTensor` made itself, freed with the last copy of it.
/// The rounding loop's destination, shared by the threads (each writes its own chunk).
private struct SendableHalfPointer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<UInt16>
    init(_ pointer: UnsafeMutablePointer<UInt16>) { self.pointer = pointer }
}

private final class HalfBuffer {
    let storage: UnsafeMutablePointer<UInt16>
    init(count: Int) { storage = .allocate(capacity: max(1, count)) }
    deinit { storage.deallocate() }
}

/// Widens `count` consecutive 16-bit numbers at `source` (any alignment) into `destination`.
func widenHalves(_ source: UnsafeRawPointer, format: HalfTensor.Format, count: Int,
                 into destination: UnsafeMutablePointer<Float>) {
    switch format {
    case .float16: widenFloat16(source, count: count, into: destination)
    case .bfloat16: widenBFloat16(source, count: count, into: destination)
    }
}
