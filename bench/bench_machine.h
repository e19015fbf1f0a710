/* What every CPU benchmark shares: JSON-line output (stdout and --out FILE), a monotonic
 * clock, and this machine's fp32 FMA peak and read bandwidth measured in the same run the
 * way /work/shared/tools/cpu-peak.c does it, so a ratio to peak is never taken against a
 * figure from another run. Header-only: each benchmark is one executable. */
#ifndef ATTNC_BENCH_MACHINE_H
#define ATTNC_BENCH_MACHINE_H
#include <immintrin.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench/bench_emit.h"

#if defined(__AVX512F__)
typedef __m512 vec;
#define LANES 16
#define VSET1 _mm512_set1_ps
#define VFMA _mm512_fmadd_ps
#define VADD _mm512_add_ps
#define VLOAD _mm512_loadu_ps
static float vfirst(vec v) { return _mm512_reduce_add_ps(v); }
#elif defined(__AVX2__) && defined(__FMA__)
typedef __m256 vec;
#define LANES 8
#define VSET1 _mm256_set1_ps
#define VFMA _mm256_fmadd_ps
#define VADD _mm256_add_ps
#define VLOAD _mm256_loadu_ps
static float vfirst(vec v) { return _mm256_cvtss_f32(v); }
#else
#define NO_PEAK 1
#endif

static volatile float g_sink;

#ifndef NO_PEAK
/* Twelve independent accumulators as named variables (an array would be spilled). */
#define ACC(i) vec a##i = VSET1((float)(i));
#define STEP(i) a##i = VFMA(a##i, b, c);
static void *fma_worker(void *arg) {
    long n = *(long *)arg;
    vec b = VSET1(1.0000001f), c = VSET1(1e-7f);
    ACC(0) ACC(1) ACC(2) ACC(3) ACC(4) ACC(5) ACC(6) ACC(7) ACC(8) ACC(9) ACC(10) ACC(11)
    for (long i = 0; i < n; i++) {
        STEP(0) STEP(1) STEP(2) STEP(3) STEP(4) STEP(5) STEP(6) STEP(7) STEP(8) STEP(9) STEP(10) STEP(11)
        __asm__ volatile("");
    }
    vec s = VADD(VADD(VADD(a0, a1), VADD(a2, a3)), VADD(VADD(a4, a5), VADD(a6, a7)));
    g_sink = vfirst(VADD(s, VADD(VADD(a8, a9), VADD(a10, a11))));
    return NULL;
}

typedef struct span { const float *p; long n; int passes; } span;
static void *read_worker(void *arg) {
    span *sp = arg;
    vec s0 = VSET1(0), s1 = s0, s2 = s0, s3 = s0;
    for (int r = 0; r < sp->passes; r++)
        for (long i = 0; i + 4 * LANES <= sp->n; i += 4 * LANES) {
            s0 = VADD(s0, VLOAD(sp->p + i));
            s1 = VADD(s1, VLOAD(sp->p + i + LANES));
            s2 = VADD(s2, VLOAD(sp->p + i + 2 * LANES));
            s3 = VADD(s3, VLOAD(sp->p + i + 3 * LANES));
        }
    g_sink = vfirst(VADD(VADD(s0, s1), VADD(s2, s3)));
    return NULL;
}
#endif

#ifndef NO_PEAK
/* GB/s of th threads each streaming its part of buf[0..n) `passes` times, once. */
static double read_bw_once(float *buf, long n, int th, int passes) {
    pthread_t t[64];
    span sp[64];
    double t0 = now();
    for (int i = 0; i < th; i++) {
        sp[i] = (span){ buf + i * (n / th), n / th, passes };
        pthread_create(&t[i], NULL, read_worker, &sp[i]);
    }
    for (int i = 0; i < th; i++) pthread_join(t[i], NULL);
    return (double)passes * (double)(n / th * th) * sizeof(float) / (now() - t0) / 1e9;
}
#endif

typedef struct machine_probe {
    int max_threads;                /* rows for 1 .. max_threads (at most 64) */
    long fma_iters;                 /* loop trips per thread (12 vector FMAs each) */
    long read_bytes;                /* buffer streamed by the read probe */
    int read_passes;                /* times each thread streams its part */
    bool note_in_peak;              /* add g_note to the peak_fma rows */
} machine_probe;

/* Emits peak_fma and read_bw rows; peak[th] (GFLOP/s) and bw[th] (GB/s) for th threads. */
static void measure_machine(const machine_probe *mp, double *peak, double *bw) {
#ifdef NO_PEAK
    (void)mp; (void)peak; (void)bw;
    emit("{\"bench\": \"peak_fma\", \"skipped\": \"built without AVX2+FMA or AVX-512\"}");
#else
    long iters = mp->fma_iters;
    long n = mp->read_bytes / (long)sizeof(float);
    float *buf = aligned_alloc(64, (size_t)n * sizeof(float));
    if (!buf) { emit("{\"bench\": \"peak_fma\", \"skipped\": \"out of memory\"}"); return; }
    for (long i = 0; i < n; i++) buf[i] = 1.0f;
    int max_th = mp->max_threads < 64 ? mp->max_threads : 64;
    for (int th = 1; th <= max_th; th++) {
        pthread_t t[64];
        double best = 0;
        for (int rep = 0; rep < 2; rep++) {
            double t0 = now();
            for (int i = 0; i < th; i++) pthread_create(&t[i], NULL, fma_worker, &iters);
            for (int i = 0; i < th; i++) pthread_join(t[i], NULL);
            double g = th * (double)iters * 12 * LANES * 2 / (now() - t0) / 1e9;
            if (g > best) best = g;
        }
        peak[th] = best;
        if (mp->note_in_peak)
            emit("{\"bench\": \"peak_fma\", \"threads\": %d, \"gflops\": %.1f, \"lanes\": %d, \"note\": \"%s\"}", th,
                 best, LANES, g_note);
        else
            emit("{\"bench\": \"peak_fma\", \"threads\": %d, \"gflops\": %.1f, \"lanes\": %d}", th, best, LANES);
        best = 0;
        for (int rep = 0; rep < 2; rep++) {
            double g = read_bw_once(buf, n, th, mp->read_passes);
            if (g > best) best = g;
        }
        bw[th] = best;
        emit("{\"bench\": \"read_bw\", \"threads\": %d, \"gbps\": %.1f}", th, best);
    }
    free(buf);
#endif
}

#endif
