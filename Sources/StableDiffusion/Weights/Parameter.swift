import TensorCore

/// One weight tensor of a network, kept the way the checkpoint stores it.
///
/// Float32 weights are copied into memory once. 16-bit weights (float16, bfloat16) stay in the
/// memory-mapped checkpoint at half the size, as a `HalfTensor`: linear and convolution layers
/// hand them to the matrix multiplication as they are, and it widens them to Float32 while it
/// packs them (see TensorCore's GEMM+HalfPrecision.swift). A 2 GB fp16 checkpoint therefore costs
/// about 2 GB, not 4, and the operating system can page the file back in on demand.
public struct Parameter: Sendable {
    /// The numbers, in the precision they were stored in.
    public enum Storage: Sendable {
        case float32(Tensor)
        case halves(HalfTensor)
    }

    private let stored: Storage
    /// The shape layers see (may differ from the stored one by a reshape, e.g. (C, C, 1, 1) → (C, C)).
    public let shape: [Int]

    /// A parameter already in memory.
    public init(_ tensor: Tensor) {
        stored = .float32(tensor)
        shape = tensor.shape
    }

    /// A parameter kept in 16 bits.
    public init(_ tensor: HalfTensor) {
        stored = .halves(tensor)
        shape = tensor.shape
    }

    init(_ record: TensorRecord) {
        if let half = record.halfTensor {
            stored = .halves(half)
        } else {
            stored = .float32(record.copiedOut())
        }
        shape = record.shape
    }

    /// The shape the checkpoint stores the numbers in (a gradient is saved back in it).
    public var storedShape: [Int] {
        switch stored {
        case .float32(let tensor): return tensor.shape
        case .halves(let tensor): return tensor.shape
        }
    }

    /// The numbers with the shape layers see: Float32 or 16-bit, as stored.
    public var storage: Storage {
        switch stored {
        case .float32(let tensor): return .float32(shape == tensor.shape ? tensor : tensor.reshaped(shape))
        case .halves(let tensor): return .halves(shape == tensor.shape ? tensor : tensor.reshaped(shape))
        }
    }

    /// The weight as Float32 (widened now if it is stored in 16 bits).
    public var value: Tensor {
        switch storage {
        case .float32(let tensor): return tensor
        case .halves(let tensor): return Profiler.measure("weight widening") { tensor.widened() }
        }
    }

    /// The same numbers seen with another shape of the same size.
    public func reshaped(_ newShape: [Int]) -> Parameter {
        precondition(newShape.reduce(1, *) == shape.reduce(1, *), "cannot reshape \(shape) to \(newShape)")
        return Parameter(stored: stored, shape: newShape)
    }

    private init(stored: Storage, shape: [Int]) {
        self.stored = stored
        self.shape = shape
    }
}
