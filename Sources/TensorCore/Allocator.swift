import _CMemory

/// The tensor core's two requests to the memory system (see `memory_hints.c` for the why).
enum Allocator {
    /// Keep freed activation buffers for reuse. Applied once, at the first tensor's creation.
    static let keepsFreedMemory: Bool = memory_keep_freed_blocks() == 1

    /// Buffers of at least 2²⁰ floats (4 MB) ask for huge pages: they hold at least one whole 2 MB page.
    static let hugePageThreshold = 1 << 20

    /// Asks for huge pages under a fresh, not yet written buffer.
    static func adviseHugePages(_ buffer: UnsafeMutableBufferPointer<Float>) {
        if buffer.count >= hugePageThreshold, let base = buffer.baseAddress {
            memory_advise_huge_pages(base, buffer.count * MemoryLayout<Float>.stride)
        }
    }
}
