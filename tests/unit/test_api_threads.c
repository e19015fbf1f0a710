/* The cpu engine's threads option and overlapping launches of one handle (issue 7):
 *   - threads = 1 runs on the caller (no worker thread appears), threads = 3 starts a pool
 *     of 2 workers, threads = 0 follows $ATTNC_CPU_THREADS (read at launch): observed in
 *     the process's thread count, and every setting agrees with the "ref" target;
 *   - 4 threads launching the same handles at once (one-thread and three-thread contexts,
 *     a prefill and a split-KV decode kernel, each thread its own inputs) give bit for bit
 *     what one launch at a time gives.
 * Uses the public API only. Exits 77 (skipped) where the build has no cpu target. */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "attnc/attnc.h"
#include "check.h"

static const char SPEC[] =
    "kernel prefill {\n"
    "    heads q = 8, kv = 2\n"
    "    dims  64\n"
    "    rope  half\n"
    "    mask  causal\n"
    "}\n"
    "kernel decode {\n"
    "    heads q = 8, kv = 1\n"
    "    dims  64\n"
    "}\n";

enum { N_KERNELS = 2, THREADS = 4, ROUNDS = 5 };
enum { HQ = 8, D = 64 };

typedef struct shape {
    const char *kernel;
    int64_t batch, seq_q, seq_k, hkv;
} shape;

static const shape SHAPES[N_KERNELS] = {
    { "prefill", 2, 37, 37, 2 },
    { "decode", 1, 1, 300, 1 },       /* one query row, many keys: split across threads */
};

/* Buffers for one launch of one kernel. */
typedef struct bufs {
    float *q, *k, *v, *o, *lse;
    size_t nq, nk, nl;
} bufs;

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void fill(float *x, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) x[i] = (float)((double)(rng_next(&seed) >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

static void bufs_init(bufs *b, const shape *s, uint64_t seed) {
    b->nq = (size_t)(s->batch * s->seq_q * HQ * D);
    b->nk = (size_t)(s->batch * s->seq_k * s->hkv * D);
    b->nl = (size_t)(s->batch * s->seq_q * HQ);
    b->q = malloc(b->nq * sizeof(float));
    b->k = malloc(b->nk * sizeof(float));
    b->v = malloc(b->nk * sizeof(float));
    b->o = calloc(b->nq, sizeof(float));
    b->lse = calloc(b->nl, sizeof(float));
    if (!b->q || !b->k || !b->v || !b->o || !b->lse) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    fill(b->q, b->nq, seed);
    fill(b->k, b->nk, seed + 1);
    fill(b->v, b->nk, seed + 2);
}

static void bufs_free(bufs *b) {
    free(b->q);
    free(b->k);
    free(b->v);
    free(b->o);
    free(b->lse);
}

static attnc_tensor view(const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3, void *data) {
    attnc_tensor t;
    memset(&t, 0, sizeof t);
    t.name = name;
    t.dtype = ATTNC_F32;
    t.ndim = ndim;
    t.shape[0] = d0;
    t.shape[1] = d1;
    t.shape[2] = d2;
    t.shape[3] = d3;
    t.data = data;
    return t;
}

static bool launch(attnc_kernel *k, const shape *s, bufs *b, attnc_error *err) {
    attnc_tensor t[5] = {
        view("q", 4, s->batch, s->seq_q, HQ, D, b->q),
        view("k", 4, s->batch, s->seq_k, s->hkv, D, b->k),
        view("v", 4, s->batch, s->seq_k, s->hkv, D, b->v),
        view("o", 4, s->batch, s->seq_q, HQ, D, b->o),
        view("lse", 3, s->batch, s->seq_q, HQ, 0, b->lse),
    };
    return attnc_launch(k, s->batch, s->seq_q, s->seq_k, t, 5, NULL, err) == ATTNC_OK;
}

static double max_diff(const bufs *a, const bufs *b) {
    double w = 0;
    for (size_t i = 0; i < a->nq; i++) w = fmax(w, fabs((double)a->o[i] - b->o[i]));
    for (size_t i = 0; i < a->nl; i++) w = fmax(w, fabs((double)a->lse[i] - b->lse[i]));
    return isnan(w) ? INFINITY : w;
}

static bool same_bits(const bufs *a, const bufs *b) {
    return memcmp(a->o, b->o, a->nq * sizeof(float)) == 0 && memcmp(a->lse, b->lse, a->nl * sizeof(float)) == 0;
}

/* Threads of this process, from /proc/self/status (-1 when it cannot be read). */
static int thread_count(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    int n = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1) break;
    fclose(f);
    return n;
}

typedef struct engine {
    attnc_context *ctx;
    attnc_program *prog;
    attnc_kernel *k[N_KERNELS];
} engine;

static bool engine_open(engine *e, const char *target, int threads) {
    memset(e, 0, sizeof *e);
    attnc_options o;
    attnc_options_init(&o);
    o.target = target;
    o.cache_dir = "";
    o.threads = threads;
    attnc_error err;
    bool ok = attnc_context_create(&o, &e->ctx, &err) == ATTNC_OK &&
              attnc_compile_string(e->ctx, SPEC, 0, NULL, &e->prog, &err) == ATTNC_OK;
    for (int i = 0; ok && i < N_KERNELS; i++) ok = attnc_kernel_get(e->prog, SHAPES[i].kernel, &e->k[i], &err) == ATTNC_OK;
    CHECK_MSG(ok, "%s with %d threads: %s", target, threads, err.message);
    return ok;
}

/* ---------------------------------------------------------------- overlapping launches */

typedef struct job {
    engine *eng;
    int id;
    bufs b[ROUNDS][N_KERNELS];
    int failures;
    char first_error[1024];
} job;

static uint64_t seed_of(int thread, int round, int kernel) { return (uint64_t)(10000 * thread + 100 * round + 10 * kernel); }

static void *job_main(void *arg) {
    job *j = arg;
    attnc_error err;
    for (int r = 0; r < ROUNDS; r++)
        for (int i = 0; i < N_KERNELS; i++)
            if (!launch(j->eng->k[i], &SHAPES[i], &j->b[r][i], &err) && !j->failures++)
                snprintf(j->first_error, sizeof j->first_error, "%s", err.message);
    return NULL;
}

static void overlapping(engine *eng, const char *what) {
    static job jobs[THREADS];
    for (int t = 0; t < THREADS; t++) {
        memset(&jobs[t], 0, sizeof jobs[t]);
        jobs[t].eng = eng;
        jobs[t].id = t;
        for (int r = 0; r < ROUNDS; r++)
            for (int i = 0; i < N_KERNELS; i++) bufs_init(&jobs[t].b[r][i], &SHAPES[i], seed_of(t, r, i));
    }
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) CHECK(pthread_create(&th[t], NULL, job_main, &jobs[t]) == 0);
    for (int t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
    /* the same launches, one at a time, on the same handles */
    attnc_error err;
    for (int t = 0; t < THREADS; t++) {
        CHECK_MSG(jobs[t].failures == 0, "%s: thread %d: %d failures, first: %s", what, t, jobs[t].failures,
                  jobs[t].first_error);
        for (int r = 0; r < ROUNDS; r++)
            for (int i = 0; i < N_KERNELS; i++) {
                bufs one;
                bufs_init(&one, &SHAPES[i], seed_of(t, r, i));
                CHECK_MSG(launch(eng->k[i], &SHAPES[i], &one, &err), "%s", err.message);
                CHECK_MSG(same_bits(&one, &jobs[t].b[r][i]), "%s: %s, thread %d round %d differs from a single launch",
                          what, SHAPES[i].kernel, t, r);
                bufs_free(&one);
                bufs_free(&jobs[t].b[r][i]);
            }
    }
}

int main(void) {
    engine ref, one, three, dflt;
    attnc_options o;
    attnc_options_init(&o);
    o.cache_dir = "";
    attnc_context *probe = NULL;
    attnc_error err;
    if (attnc_context_create(&o, &probe, &err) == ATTNC_ERR_TARGET_UNAVAILABLE) {
        printf("SKIP: the cpu target is unavailable in this build: %s\n", err.message);
        return 77;
    }
    attnc_context_destroy(probe);
    unsetenv("ATTNC_CPU_THREADS");
    if (!engine_open(&ref, "ref", 0) || !engine_open(&one, "cpu", 1) || !engine_open(&three, "cpu", 3) ||
        !engine_open(&dflt, "cpu", 0))
        return check_status("test_api_threads");

    /* The threads option: results, and the worker threads each setting starts. */
    int t0 = thread_count();
    CHECK(t0 > 0);
    for (int i = 0; i < N_KERNELS; i++) {
        const shape *s = &SHAPES[i];
        bufs want, got1, got3, got0;
        bufs_init(&want, s, 7 + (uint64_t)i);
        bufs_init(&got1, s, 7 + (uint64_t)i);
        bufs_init(&got3, s, 7 + (uint64_t)i);
        bufs_init(&got0, s, 7 + (uint64_t)i);
        CHECK_MSG(launch(ref.k[i], s, &want, &err), "%s", err.message);
        CHECK_MSG(launch(one.k[i], s, &got1, &err), "%s", err.message);
        if (i == 0) CHECK_MSG(thread_count() == t0, "threads = 1 started threads: %d -> %d", t0, thread_count());
        CHECK_MSG(launch(three.k[i], s, &got3, &err), "%s", err.message);
        if (i == 0) CHECK_MSG(thread_count() == t0 + 2, "threads = 3: %d threads, want %d", thread_count(), t0 + 2);
        setenv("ATTNC_CPU_THREADS", "5", 1);
        CHECK_MSG(launch(dflt.k[i], s, &got0, &err), "%s", err.message);
        unsetenv("ATTNC_CPU_THREADS");
        if (i == 0)
            CHECK_MSG(thread_count() == t0 + 2 + 4, "threads = 0, ATTNC_CPU_THREADS=5: %d threads, want %d",
                      thread_count(), t0 + 6);
        CHECK_MSG(max_diff(&got1, &want) < 1e-4, "%s, 1 thread vs ref: %g", s->kernel, max_diff(&got1, &want));
        CHECK_MSG(max_diff(&got3, &want) < 1e-4, "%s, 3 threads vs ref: %g", s->kernel, max_diff(&got3, &want));
        CHECK_MSG(max_diff(&got0, &want) < 1e-4, "%s, 5 threads vs ref: %g", s->kernel, max_diff(&got0, &want));
        CHECK_MSG(max_diff(&got3, &got1) < 1e-5, "%s, 3 threads vs 1: %g", s->kernel, max_diff(&got3, &got1));
        bool nonzero = false;
        for (size_t e = 0; e < got1.nq; e++) nonzero |= got1.o[e] != 0;
        CHECK(nonzero);
        bufs_free(&want);
        bufs_free(&got1);
        bufs_free(&got3);
        bufs_free(&got0);
    }
    /* no launch starts threads of its own once the pools exist */
    int t1 = thread_count();

    /* Overlapping launches of one handle. */
    overlapping(&one, "threads = 1");
    overlapping(&three, "threads = 3");
    CHECK_MSG(thread_count() == t1 + 0, "overlapping launches left %d threads, want %d", thread_count(), t1);

    attnc_context_destroy(dflt.ctx);
    attnc_context_destroy(three.ctx);
    attnc_context_destroy(one.ctx);
    attnc_context_destroy(ref.ctx);
    return check_status("test_api_threads");
}
