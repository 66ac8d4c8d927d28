import _CAllocator

/// The tensor core's one setting of the C allocator: keep freed activation buffers for reuse
/// (see `allocator_tuning.c` for the why). Applied once, at the first tensor's creation.
enum Allocator {
    static let keepsFreedMemory: Bool = allocator_keep_freed_memory() == 1
}
