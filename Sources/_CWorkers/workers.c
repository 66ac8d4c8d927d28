// Worker threads that stay awake for a moment after a parallel loop.
//
// A training step of a small network is thousands of short parallel loops (a matrix product
// of a fraction of a millisecond, a normalisation, an optimiser pass), with a little serial work
// between them. A thread pool that puts its threads to sleep as soon as a loop ends pays a
// wake-up (several microseconds, more on a virtual machine) at the start of nearly every loop,
// while the calling core already works alone. These workers instead spin for up to
// `SPIN_NANOSECONDS` watching for the next loop, and only then sleep on a condition variable;
// OpenMP runtimes do the same.
//
// One loop runs at a time. Its caller publishes it under `lock` (body, context, count, a fresh
// `generation`), then takes indices like any worker. Workers join a loop under `lock` too, and
// only while it is open; the caller closes it once every index is done, then waits until every
// worker that joined has left, so the loop's fields are never read after the caller returns.

#include "workers.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#define SPIN_NANOSECONDS 50000L
#define MAX_HELPERS 255

static pthread_mutex_t busy = PTHREAD_MUTEX_INITIALIZER;   // one caller's loop at a time
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;   // publishing, joining, sleeping
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;

static int started = 0;                  // helpers started (under `busy`)
static atomic_long generation = 0;       // bumped when a loop is published
static int sleepers = 0;                 // helpers waiting on `wake` (under `lock`)
static int open_loop = 0;                // whether helpers may still join (under `lock`)
static atomic_int joined = 0;            // helpers inside the current loop

static workers_body loop_body;           // the current loop (written under `lock` while no helper is inside)
static void *loop_context;
static long loop_count;
static atomic_long next_index;
static atomic_long done_count;

static _Thread_local int inside_loop = 0;

static long now_nanoseconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

static inline void pause_briefly(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

// Takes indices until none are left.
static void take_indices(void) {
    long i;
    while ((i = atomic_fetch_add_explicit(&next_index, 1, memory_order_relaxed)) < loop_count) {
        loop_body(loop_context, i);
        atomic_fetch_add_explicit(&done_count, 1, memory_order_release);
    }
}

static void *helper(void *unused) {
    (void)unused;
    inside_loop = 1;   // a loop started from a body runs inline
    long seen = atomic_load_explicit(&generation, memory_order_acquire);
    for (;;) {
        long start = now_nanoseconds();
        for (int spins = 0; atomic_load_explicit(&generation, memory_order_acquire) == seen; spins++) {
            pause_briefly();
            if ((spins & 255) == 255 && now_nanoseconds() - start > SPIN_NANOSECONDS) break;
        }
        pthread_mutex_lock(&lock);
        while (atomic_load_explicit(&generation, memory_order_relaxed) == seen) {
            sleepers++;
            pthread_cond_wait(&wake, &lock);
            sleepers--;
        }
        seen = atomic_load_explicit(&generation, memory_order_relaxed);
        int join = open_loop;
        if (join) atomic_fetch_add_explicit(&joined, 1, memory_order_relaxed);
        pthread_mutex_unlock(&lock);
        if (join) {
            take_indices();
            atomic_fetch_sub_explicit(&joined, 1, memory_order_release);
        }
    }
    return NULL;
}

int workers_run(long count, int helpers, void *context, workers_body body) {
    if (inside_loop) {
        for (long i = 0; i < count; i++) body(context, i);
        return 1;
    }
    if (count <= 0) return 1;
    if (pthread_mutex_trylock(&busy) != 0) return 0;
    if (helpers > MAX_HELPERS) helpers = MAX_HELPERS;
    while (started < helpers) {
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attributes, helper, NULL);
        pthread_attr_destroy(&attributes);
        if (failed) break;
        started++;
    }
    if (started == 0) {
        pthread_mutex_unlock(&busy);
        return 0;
    }

    pthread_mutex_lock(&lock);
    loop_body = body;
    loop_context = context;
    loop_count = count;
    atomic_store_explicit(&next_index, 0, memory_order_relaxed);
    atomic_store_explicit(&done_count, 0, memory_order_relaxed);
    open_loop = 1;
    atomic_fetch_add_explicit(&generation, 1, memory_order_release);
    if (sleepers > 0) pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&lock);

    inside_loop = 1;
    take_indices();
    inside_loop = 0;
    while (atomic_load_explicit(&done_count, memory_order_acquire) < count) pause_briefly();

    pthread_mutex_lock(&lock);
    open_loop = 0;
    pthread_mutex_unlock(&lock);
    while (atomic_load_explicit(&joined, memory_order_acquire) > 0) pause_briefly();
    pthread_mutex_unlock(&busy);
    return 1;
}
