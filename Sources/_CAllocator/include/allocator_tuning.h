#ifndef ALLOCATOR_TUNING_H
#define ALLOCATOR_TUNING_H

/// Asks the C allocator to keep freed memory for reuse instead of handing it back to the
/// operating system. Returns 1 if the allocator took the settings, 0 where there is nothing to tune.
int allocator_keep_freed_memory(void);

#endif
