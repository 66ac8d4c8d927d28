#ifndef WORKERS_H
#define WORKERS_H

// A pool of worker threads for TensorCore's parallel loops (Parallel.swift). See workers.c.

/// The body of a parallel loop: called once for every index, with the caller's context.
typedef void (*workers_body)(void *context, long index);

/// Runs `body(context, i)` for every `i` in `[0, count)` on the calling thread and `helpers`
/// worker threads (started on first use; later calls use those first started), and returns when
/// every index is done. Returns 0, having run nothing, when the pool is busy with another
/// caller's loop or cannot start its threads: the caller then runs the loop some other way.
/// A loop started from inside a loop's body runs on the thread that started it.
int workers_run(long count, int helpers, void *context, workers_body body);

#endif
