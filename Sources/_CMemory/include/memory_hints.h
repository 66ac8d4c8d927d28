#ifndef MEMORY_HINTS_H
#define MEMORY_HINTS_H

// Three hints about memory that Swift has no words for. None of them changes a result; each only
// changes how fast memory is handed out or reached. See memory_hints.c for why each one exists.

#include <stddef.h>

/// Asks the C allocator to keep freed memory for reuse instead of handing it back to the
/// operating system. Returns 1 if the allocator took the settings, 0 where there is nothing to tune.
int memory_keep_freed_blocks(void);

/// Asks the kernel to back the whole 2 MB pages inside `[start, start + bytes)` with huge pages
/// when they are first touched. Does nothing where the system has no such advice.
void memory_advise_huge_pages(void *start, size_t bytes);

/// Starts loading the cache line that holds `address` into the nearest cache, for writing,
/// without waiting for it: the matrix-multiply kernel asks for its output block this way before
/// it starts the long sum whose result goes there.
static inline void memory_prefetch_for_writing(const void *address) {
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(address, 1, 3);
#else
    (void)address;
#endif
}

#endif
