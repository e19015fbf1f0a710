/* Persistent pthread pool (see threadpool.h). Workers wait for a new generation number,
 * claim items with an atomic counter, and report back; the caller claims items too. */
#include "runtime/threadpool.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define POOL_HAVE_MXCSR 1
#endif

struct attnc_pool {
    int n_threads;                  /* including the caller */
    pthread_t *workers;             /* n_threads - 1 */
    pthread_mutex_t lock;           /* guards generation, fn, ctx, n_items, busy, stop */
    pthread_cond_t wake;            /* new generation or stop */
    pthread_cond_t done;            /* a worker finished its part of a run */
    pthread_mutex_t run_lock;       /* serialises attnc_pool_run callers */
    uint64_t generation;
    attnc_pool_fn fn;
    void *ctx;
    int64_t n_items;
    atomic_int_fast64_t next;       /* next unclaimed item */
    int busy;                       /* workers still in the current run */
    bool stop;
};

typedef struct worker_arg { attnc_pool *pool; int index; } worker_arg;

/* FTZ (bit 15) and DAZ (bit 6): kernels never need denormals, and they are slow. */
static unsigned set_flush_denormals(void) {
#ifdef POOL_HAVE_MXCSR
    unsigned old = _mm_getcsr();
    _mm_setcsr(old | 0x8040u);
    return old;
#else
    return 0;
#endif
}

static void restore_fp_mode(unsigned old) {
#ifdef POOL_HAVE_MXCSR
    _mm_setcsr(old);
#else
    (void)old;
#endif
}

static void work(attnc_pool *p, attnc_pool_fn fn, void *ctx, int64_t n, int thread) {
    for (;;) {
        int64_t i = atomic_fetch_add(&p->next, 1);
        if (i >= n) break;
        fn(ctx, i, i + 1, thread);
    }
}

static void *worker_main(void *arg) {
    worker_arg wa = *(worker_arg *)arg;
    free(arg);
    attnc_pool *p = wa.pool;
    set_flush_denormals();
    uint64_t seen = 0;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->stop && p->generation == seen) pthread_cond_wait(&p->wake, &p->lock);
        if (p->stop) break;
        seen = p->generation;
        attnc_pool_fn fn = p->fn;
        void *ctx = p->ctx;
        int64_t n = p->n_items;
        pthread_mutex_unlock(&p->lock);
        work(p, fn, ctx, n, wa.index);
        pthread_mutex_lock(&p->lock);
        if (--p->busy == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

attnc_pool *attnc_pool_create(int n_threads) {
    if (n_threads < 1) return NULL;
    attnc_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = n_threads;
    pthread_mutex_init(&p->lock, NULL);
    pthread_mutex_init(&p->run_lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->next, 0);
    p->workers = calloc((size_t)n_threads, sizeof *p->workers);
    if (!p->workers) { attnc_pool_destroy(p); return NULL; }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa) { p->n_threads = i; attnc_pool_destroy(p); return NULL; }
        wa->pool = p;
        wa->index = i;
        if (pthread_create(&p->workers[i - 1], NULL, worker_main, wa) != 0) {
            free(wa);
            p->n_threads = i;   /* only join the ones that started */
            attnc_pool_destroy(p);
            return NULL;
        }
    }
    return p;
}

void attnc_pool_destroy(attnc_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->workers[i - 1], NULL);
    free(p->workers);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->run_lock);
    free(p);
}

int attnc_pool_size(const attnc_pool *p) { return p ? p->n_threads : 0; }

void attnc_pool_run(attnc_pool *p, int64_t n_items, attnc_pool_fn fn, void *ctx) {
    if (n_items <= 0) return;
    pthread_mutex_lock(&p->run_lock);
    unsigned old_mode = set_flush_denormals();
    if (p->n_threads == 1 || n_items == 1) {
        fn(ctx, 0, n_items, 0);
        restore_fp_mode(old_mode);
        pthread_mutex_unlock(&p->run_lock);
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->fn = fn;
    p->ctx = ctx;
    p->n_items = n_items;
    atomic_store(&p->next, 0);
    p->busy = p->n_threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    work(p, fn, ctx, n_items, 0);
    pthread_mutex_lock(&p->lock);
    while (p->busy > 0) pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
    restore_fp_mode(old_mode);
    pthread_mutex_unlock(&p->run_lock);
}

int attnc_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

typedef struct solo_arg {
    void (*fn)(void *job);
    void *job;
} solo_arg;

static void *solo_main(void *arg) {
    solo_arg *a = arg;
    a->fn(a->job);
    return NULL;
}

enum { MAX_SOLO = 64 };

void attnc_run_concurrently(void (*fn)(void *job), void *jobs, size_t job_size, int n) {
    pthread_t th[MAX_SOLO];
    solo_arg args[MAX_SOLO];
    bool started[MAX_SOLO] = {false};
    char *base = jobs;
    for (int i = 1; i < n && i < MAX_SOLO; i++) {
        args[i] = (solo_arg){ fn, base + (size_t)i * job_size };
        started[i] = pthread_create(&th[i], NULL, solo_main, &args[i]) == 0;
    }
    if (n > 0) fn(base);
    for (int i = 1; i < n; i++) {
        if (i < MAX_SOLO && started[i]) pthread_join(th[i], NULL);
        else fn(base + (size_t)i * job_size);
    }
}
