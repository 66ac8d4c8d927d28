import TensorCore

/// One weight tensor of a network, kept the way the checkpoint stores it.
///
/// Float32 weights are copied into memory once. 16-bit weights (float16, bfloat16) stay in the
/// memory-mapped checkpoint at half the size and are widened to Float32 each time their layer
/// runs, into a temporary that is freed right after. A 2 GB fp16 checkpoint therefore costs about
/// 2 GB, not 4, and the operating system can page the file back in on demand. Widening runs at
/// memory speed (a few GB/s per core), small next to the layer's arithmetic.
public struct Parameter: Sendable {
    enum Storage: Sendable {
        case resident(Tensor)
        case mapped(TensorRecord)
    }

    let storage: Storage
    /// The shape layers see (may differ from the stored one by a reshape, e.g. (C, C, 1, 1) → (C, C)).
    public let shape: [Int]

    /// A parameter already in memory.
    public init(_ tensor: Tensor) {
        storage = .resident(tensor)
        shape = tensor.shape
    }

    init(_ record: TensorRecord) {
        switch record.type {
        case .float16, .bfloat16: storage = .mapped(record)
        case .float32, .int64: storage = .resident(record.tensor())
        }
        shape = record.shape
    }

    private init(storage: Storage, shape: [Int]) {
        self.storage = storage
        self.shape = shape
    }

    /// Whether the numbers live in the checkpoint file as 16-bit values.
    public var isMapped: Bool {
        if case .mapped = storage { return true }
        return false
    }

    /// The weight as Float32 (widened now if it is stored in 16 bits).
    public var value: Tensor {
        switch storage {
        case .resident(let tensor): return shape == tensor.shape ? tensor : tensor.reshaped(shape)
        case .mapped(let record):
            return Profiler.measure("weight widening") { record.tensor(shape: shape) }
        }
    }

    /// The same numbers seen with another shape of the same size.
    public func reshaped(_ newShape: [Int]) -> Parameter {
        precondition(newShape.reduce(1, *) == shape.reduce(1, *), "cannot reshape \(shape) to \(newShape)")
        return Parameter(storage: storage, shape: newShape)
    }

    /// Selected rows of a matrix parameter, widened alone: an embedding lookup of 77 tokens reads
    /// 77 rows of CLIP's 49,408, not the whole table.
    public func rows(_ indices: [Int]) -> [Float] {
        precondition(shape.count == 2, "rows(_:) needs a matrix, shape is \(shape)")
        let width = shape[1]
        var out = [Float]()
        out.reserveCapacity(indices.count * width)
        switch storage {
        case .resident(let tensor):
            for i in indices { out.append(contentsOf: tensor.scalars[(i * width)..<((i + 1) * width)]) }
        case .mapped(let record):
            for i in indices { out.append(contentsOf: record.floats(elements: (i * width)..<((i + 1) * width))) }
        }
        return out
    }
}
