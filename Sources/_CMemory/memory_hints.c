#include "memory_hints.h"

// memory_keep_freed_blocks
//
// A denoising step allocates and frees hundreds of activation tensors of a few to a few dozen
// megabytes. By default glibc serves each large block with a fresh mmap and returns it with
// munmap when freed, so every new tensor starts as untouched pages that the kernel must fault in
// and zero one 4 KB page at a time: seconds of system time per step at 512x512.
// Raising the mmap threshold to its maximum (32 MB) and never trimming the heap makes freed
// blocks go back to malloc's free lists, where the next tensor of that size picks them up.
// The peak memory does not change; memory is simply not returned between steps.

#if defined(__GLIBC__)
#include <malloc.h>

int memory_keep_freed_blocks(void) {
    int mmapThreshold = mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    int trimThreshold = mallopt(M_TRIM_THRESHOLD, 1 << 30);
    return mmapThreshold && trimThreshold;
}
#else
int memory_keep_freed_blocks(void) { return 0; }
#endif

// memory_advise_huge_pages
//
// The processor translates every address through a page table, and caches the translations in a
// small table (a few thousand entries: 8 MB of memory in 4 KB pages). A matrix product sweeps
// tens of megabytes with large strides, so with 4 KB pages it keeps missing that table. A 2 MB
// "huge" page needs one entry where 4 KB pages need 512, and one page fault instead of 512.
// Many Linux systems give huge pages only to memory that asks for them (transparent huge pages in
// "madvise" mode); a tensor's buffer asks here, before it is first written. Only whole 2 MB pages
// inside the buffer are advised, so no memory outside it is ever touched.

#if defined(__linux__)
#include <stdint.h>
#include <sys/mman.h>

void memory_advise_huge_pages(void *start, size_t bytes) {
    const uintptr_t huge = (uintptr_t)2 << 20;
    uintptr_t first = ((uintptr_t)start + huge - 1) & ~(huge - 1);
    uintptr_t end = ((uintptr_t)start + bytes) & ~(huge - 1);
    if (end > first) madvise((void *)first, end - first, MADV_HUGEPAGE);
}
#else
void memory_advise_huge_pages(void *start, size_t bytes) { (void)start; (void)bytes; }
#endif
