/* A persistent pthread pool for CPU kernels: workers sleep on a condition variable,
 * a run hands out items one at a time through an atomic counter (dynamic scheduling,
 * so items of unequal cost balance), and the calling thread works too. Plain pthreads,
 * no LLVM: generated objects may link it without the rest of attnc. */
#ifndef ATTNC_THREADPOOL_H
#define ATTNC_THREADPOOL_H
#include <stddef.h>
#include <stdint.h>

typedef struct attnc_pool attnc_pool;

/* Processes items [begin, end) on behalf of thread `thread` (0 .. size-1). */
typedef void (*attnc_pool_fn)(void *ctx, int64_t begin, int64_t end, int thread);

/* n_threads counts the caller: 1 means no worker threads. Returns NULL when n_threads < 1
 * or a thread cannot be started. Workers run with denormals flushed (MXCSR FTZ|DAZ). */
attnc_pool *attnc_pool_create(int n_threads);
void attnc_pool_destroy(attnc_pool *p);
int attnc_pool_size(const attnc_pool *p);
/* Runs fn over items [0, n_items) and returns when all are done. The caller's FP mode
 * is set to FTZ|DAZ for the run and restored afterwards. One run at a time per pool
 * (concurrent callers are serialised). */
void attnc_pool_run(attnc_pool *p, int64_t n_items, attnc_pool_fn fn, void *ctx);
/* The number of online CPUs (at least 1). */
int attnc_cpu_count(void);
/* Calls fn on each of n jobs (an array of job_size-byte records) at once: job 0 on the
 * calling thread, the others on threads of their own, started and joined here (a thread
 * that cannot be started runs its job on the caller afterwards). For a few long jobs such
 * as concurrent compiles, where a persistent pool buys nothing. */
void attnc_run_concurrently(void (*fn)(void *job), void *jobs, size_t job_size, int n);

#endif
