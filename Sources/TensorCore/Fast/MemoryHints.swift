import _CMemory

// What the fast kernels ask of the memory system, through two C calls Swift has no words for
// (`Sources/_CMemory/memory_hints.c` explains each): keep freed activation buffers for reuse,
// and put big tensors on 2 MB huge pages. Neither changes a single number, only how soon it comes.

enum MemoryHints {
    /// Keep freed activation buffers in malloc's free lists instead of returning them to the
    /// system: a denoising step frees and allocates hundreds of tensors of tens of megabytes.
    static let keepsFreedMemory: Bool = memory_keep_freed_blocks() == 1

    /// Applies the malloc setting the first time a fast kernel runs (later calls cost one check).
    @inline(__always) static func applyOnce() { _ = keepsFreedMemory }

    /// Buffers of at least 2²⁰ floats (4 MB) ask for huge pages: they hold at least one whole 2 MB page.
    static let hugePageThreshold = 1 << 20

    /// Asks for huge pages under a fresh, not yet written buffer.
    static func adviseHugePages(_ buffer: UnsafeMutableBufferPointer<Float>) {
        if buffer.count >= hugePageThreshold, let base = buffer.baseAddress {
            memory_advise_huge_pages(base, buffer.count * MemoryLayout<Float>.stride)
        }
    }
}

extension Tensor {
    /// A new tensor whose every element `body` writes through a raw buffer, for kernels that
    /// produce their output in one pass: no zero-filling first, and a big buffer asks for huge
    /// pages before it is first touched.
    public init(shape: [Int], unsafeUninitialized body: (UnsafeMutableBufferPointer<Float>) -> Void) {
        let count = shape.reduce(1, *)
        self.init(shape: shape, scalars: [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            MemoryHints.adviseHugePages(buffer)
            body(buffer)
            initialized = count
        })
    }
}
