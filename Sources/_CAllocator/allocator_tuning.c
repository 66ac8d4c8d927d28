// Why this exists: a denoising step allocates and frees hundreds of activation tensors of a few
// to a few dozen megabytes. By default glibc serves each large block with a fresh mmap and returns
// it with munmap when freed, so every new tensor starts as untouched pages that the kernel must
// fault in and zero one 4 KB page at a time: seconds of system time per step at 512x512.
// Raising the mmap threshold to its maximum (32 MB) and never trimming the heap makes freed
// blocks go back to malloc's free lists, where the next tensor of that size picks them up.
// The peak memory does not change; memory is simply not returned between steps.

#include "allocator_tuning.h"

#if defined(__GLIBC__)
#include <malloc.h>

int allocator_keep_freed_memory(void) {
    int mmapThreshold = mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    int trimThreshold = mallopt(M_TRIM_THRESHOLD, 1 << 30);
    return mmapThreshold && trimThreshold;
}
#else
int allocator_keep_freed_memory(void) { return 0; }
#endif
