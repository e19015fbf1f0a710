/* Ahead-of-time use of CPU kernels: links the objects `cpu_build` wrote for
 * tests/cpu/aot_kernels.attn (no LLVM, no attnc library: only libc, libm, pthreads),
 * runs each kernel serially through its driver and with two threads through the phase
 * protocol of the generated header, and compares with a naive implementation written
 * here from the definitions (RoPE, dynamic NTK, softcap, windows, MLA's V = K prefix).
 * Exit status 0 when everything matches. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "aot_dynamic.h"
#include "aot_gqa.h"
#include "aot_mla.h"
#include "aot_window.h"

static int failures;
#define EXPECT(cond, ...) do { if (!(cond)) { failures++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

static uint64_t rng = 12345;
static double urand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) * 0x1.0p-52 * 2.0 - 1.0;
}

static uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
static float from_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---------------------------------------------------------------- naive reference */

typedef struct ref_cfg {
    int hq, hkv, dq, dv;
    double scale;
    int rope;                  /* 0 none, 1 half, 2 interleaved */
    int rlo, rhi;
    double base, dyn_factor, dyn_original;   /* dyn_factor 0: static frequencies */
    double softcap;            /* 0: none */
    int window;                /* 0: causal only */
    int v_in_k;
} ref_cfg;

static void rotate(const ref_cfg *c, int64_t sk, double pos, double *x) {
    int d = c->rhi - c->rlo, P = d / 2;
    double base = c->base;
    if (c->dyn_factor > 0 && (double)sk > c->dyn_original)
        base *= pow(c->dyn_factor * (double)sk / c->dyn_original - (c->dyn_factor - 1), (double)d / (d - 2));
    for (int j = 0; j < P; j++) {
        double ang = pos / pow(base, 2.0 * j / d);
        int d0 = c->rope == 1 ? c->rlo + j : c->rlo + 2 * j, d1 = c->rope == 1 ? d0 + P : d0 + 1;
        double a = x[d0], b = x[d1];
        x[d0] = a * cos(ang) - b * sin(ang);
        x[d1] = a * sin(ang) + b * cos(ang);
    }
}

/* q [B][SQ][hq][dq], k [B][SK][hkv][dq], v [B][SK][hkv][dv] (unused with v_in_k). */
static void reference(const ref_cfg *c, int B, int SQ, int SK, const float *q, const float *k, const float *v,
                      double *o, double *lse) {
    int g = c->hq / c->hkv;
    double qr[1024], kr[1024], *s = malloc(sizeof(double) * (size_t)(SK ? SK : 1));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < c->hq; h++)
            for (int r = 0; r < SQ; r++) {
                int qi = r + SK - SQ, kh = h / g;
                for (int d = 0; d < c->dq; d++) qr[d] = q[(((size_t)b * SQ + r) * c->hq + h) * c->dq + d];
                if (c->rope) rotate(c, SK, qi, qr);
                double m = -INFINITY;
                for (int i = 0; i < SK; i++) {
                    bool vis = i <= qi && (!c->window || qi - i < c->window);
                    s[i] = -INFINITY;
                    if (!vis) continue;
                    for (int d = 0; d < c->dq; d++) kr[d] = k[(((size_t)b * SK + i) * c->hkv + kh) * c->dq + d];
                    if (c->rope) rotate(c, SK, i, kr);
                    double dot = 0;
                    for (int d = 0; d < c->dq; d++) dot += qr[d] * kr[d];
                    s[i] = c->scale * dot;
                    if (c->softcap > 0) s[i] = c->softcap * tanh(s[i] / c->softcap);
                    if (s[i] > m) m = s[i];
                }
                double l = 0, *out = o + (((size_t)b * SQ + r) * c->hq + h) * c->dv;
                for (int e = 0; e < c->dv; e++) out[e] = 0;
                for (int i = 0; m > -INFINITY && i < SK; i++) {
                    if (s[i] == -INFINITY) continue;
                    double p = exp(s[i] - m);
                    l += p;
                    for (int e = 0; e < c->dv; e++) {
                        double ve = c->v_in_k ? k[(((size_t)b * SK + i) * c->hkv + kh) * c->dq + e]
                                              : v[(((size_t)b * SK + i) * c->hkv + kh) * c->dv + e];
                        out[e] += p * ve;
                    }
                }
                for (int e = 0; l > 0 && e < c->dv; e++) out[e] /= l;
                lse[((size_t)b * SQ + r) * c->hq + h] = l > 0 ? m + log(l) : -INFINITY;
            }
    free(s);
}

/* Worst row-relative error of o (float or bf16 bits) and lse against the reference. */
static void compare(const char *what, const ref_cfg *c, int B, int SQ, const void *o, int bf16, const float *lse,
                    const double *ro, const double *rl, double tol) {
    double worst = 0, worst_lse = 0;
    for (int row = 0; row < B * SQ * c->hq; row++) {
        double mx = 0, err = 0;
        for (int e = 0; e < c->dv; e++) {
            size_t i = (size_t)row * c->dv + e;
            double got = bf16 ? from_bf16(((const uint16_t *)o)[i]) : ((const float *)o)[i];
            if (fabs(ro[i]) > mx) mx = fabs(ro[i]);
            double d = fabs(got - ro[i]);
            if (!(d <= err)) err = d;   /* NaN counts as infinite */
        }
        double rel = mx > 0 ? err / mx : err;
        if (!(rel <= worst)) worst = rel;
        double le = (isinf(rl[row]) || isinf(lse[row])) ? (rl[row] == lse[row] ? 0 : INFINITY)
                                                         : fabs(lse[row] - rl[row]) / fmax(1.0, fabs(rl[row]));
        if (!(le <= worst_lse)) worst_lse = le;
    }
    EXPECT(worst <= tol && worst_lse <= 1e-5, "%s: o error %.3g (tol %.1g), lse error %.3g", what, worst, tol, worst_lse);
    printf("%-28s o error %.3g, lse error %.3g\n", what, worst, worst_lse);
}

/* ---------------------------------------------------------------- threaded launches */

typedef void (*run_items_fn)(const void *, int32_t, int64_t, int64_t, int32_t);
typedef struct phase_job {
    run_items_fn run;
    const void *args;
    int32_t phase;
    int64_t n;
    atomic_llong next;
} phase_job;
typedef struct worker { phase_job *job; int32_t thread; } worker;

static void *worker_main(void *p) {
    worker *w = p;
    for (;;) {
        long long i = atomic_fetch_add(&w->job->next, 1);
        if (i >= w->job->n) break;
        w->job->run(w->job->args, w->job->phase, i, i + 1, w->thread);
    }
    return NULL;
}

/* The header's protocol: phases in order, items of a phase on threads 0..n-1. */
static void run_threaded(run_items_fn run, int64_t (*num_items)(const void *, int32_t), const void *args, int n_threads) {
    for (int32_t phase = 0; phase < 3; phase++) {
        phase_job job = { run, args, phase, num_items(args, phase), 0 };
        pthread_t t[8];
        worker w[8];
        for (int i = 0; i < n_threads; i++) {
            w[i].job = &job;
            w[i].thread = i;
            pthread_create(&t[i], NULL, worker_main, &w[i]);
        }
        for (int i = 0; i < n_threads; i++) pthread_join(t[i], NULL);
    }
}

static float *frand(size_t n, double amp) {
    float *p = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = (float)(amp * urand());
    return p;
}

/* Runs one kernel both ways (NAME is the kernel's symbol prefix). */
#define RUN_BOTH(NAME, cfg, B, SQ, SK, q, k, vptr, o, lse, tol, bf16, qdata, kdata)                              \
    do {                                                                                                         \
        NAME##_args a;                                                                                           \
        memset(&a, 0, sizeof a);                                                                                 \
        a.batch = B; a.seq_q = SQ; a.seq_k = SK; a.n_threads = 1;                                                \
        a.q.data = qdata; a.k.data = kdata; a.o.data = o; a.lse.data = lse;                                      \
        vptr;                                                                                                    \
        double *ro = malloc(sizeof(double) * (size_t)(B) * (SQ) * (cfg).hq * (cfg).dv);                         \
        double *rl = malloc(sizeof(double) * (size_t)(B) * (SQ) * (cfg).hq);                                    \
        reference(&(cfg), B, SQ, SK, q, k, vdata_f, ro, rl);                                                     \
        EXPECT(NAME(&a) == 0, #NAME ": driver failed");                                                          \
        compare(#NAME " serial", &(cfg), B, SQ, o, bf16, lse, ro, rl, tol);                                      \
        memset(o, 0xff, (size_t)(B) * (SQ) * (cfg).hq * (cfg).dv * ((bf16) ? 2 : 4));                           \
        memset(lse, 0xff, sizeof(float) * (size_t)(B) * (SQ) * (cfg).hq);                                       \
        a.n_threads = 2;                                                                                         \
        int64_t ws = NAME##_workspace_size(&a);                                                                  \
        a.workspace = aligned_alloc(64, (size_t)(ws + 63) / 64 * 64);                                            \
        a.workspace_bytes = ws;                                                                                  \
        run_threaded((run_items_fn)NAME##_run_items, (int64_t (*)(const void *, int32_t))NAME##_num_items, &a, 2); \
        compare(#NAME " two threads", &(cfg), B, SQ, o, bf16, lse, ro, rl, tol);                                 \
        free(a.workspace);                                                                                       \
        a.q.data = NULL;                                                                                         \
        a.workspace = NULL;                                                                                      \
        EXPECT(NAME(&a) == 1, #NAME ": a NULL q must give error 1");                                             \
        a.q.data = qdata;                                                                                        \
        a.seq_k = (int64_t)1 << 31;                                                                              \
        EXPECT(NAME(&a) == 2, #NAME ": seq_k 2^31 must give error 2");                                           \
        a.seq_k = SK; a.batch = -1;                                                                              \
        EXPECT(NAME(&a) == 2, #NAME ": batch -1 must give error 2");                                             \
        free(ro);                                                                                                \
        free(rl);                                                                                                \
    } while (0)

int main(void) {
    {   /* f32 GQA, RoPE, causal: prefill with seq_q < seq_k, batch 2 */
        ref_cfg c = { 4, 2, 32, 32, 1 / sqrt(32.0), 1, 0, 32, 10000, 0, 0, 0, 0, 0 };
        int B = 2, SQ = 70, SK = 101;
        float *q = frand((size_t)B * SQ * 4 * 32, 2), *k = frand((size_t)B * SK * 2 * 32, 1);
        float *v = frand((size_t)B * SK * 2 * 32, 1), *vdata_f = v;
        float *o = malloc(sizeof(float) * B * SQ * 4 * 32), *lse = malloc(sizeof(float) * B * SQ * 4);
        RUN_BOTH(attnc_aot_gqa, c, B, SQ, SK, q, k, a.v.data = v, o, lse, 1e-5, 0, q, k);
        free(q); free(k); free(v); free(o); free(lse);
    }
    {   /* bf16, window 8, softcap, d_qk != d_v, decode-like shape */
        ref_cfg c = { 2, 1, 24, 16, 1 / sqrt(24.0), 0, 0, 0, 0, 0, 0, 5, 8, 0 };
        int B = 1, SQ = 3, SK = 300;
        float *q = frand((size_t)B * SQ * 2 * 24, 2), *k = frand((size_t)B * SK * 24, 1), *v = frand((size_t)B * SK * 16, 1);
        uint16_t *qb = malloc(2 * (size_t)B * SQ * 2 * 24), *kb = malloc(2 * (size_t)B * SK * 24), *vb = malloc(2 * (size_t)B * SK * 16);
        for (int i = 0; i < B * SQ * 2 * 24; i++) q[i] = from_bf16(qb[i] = to_bf16(q[i]));
        for (int i = 0; i < B * SK * 24; i++) k[i] = from_bf16(kb[i] = to_bf16(k[i]));
        for (int i = 0; i < B * SK * 16; i++) v[i] = from_bf16(vb[i] = to_bf16(v[i]));
        float *vdata_f = v;
        uint16_t *o = malloc(2 * (size_t)B * SQ * 2 * 16);
        float *lse = malloc(sizeof(float) * B * SQ * 2);
        RUN_BOTH(attnc_aot_window, c, B, SQ, SK, q, k, a.v.data = vb, o, lse, 2e-2, 1, qb, kb);
        free(q); free(k); free(v); free(qb); free(kb); free(vb); free(o); free(lse);
    }
    {   /* MLA absorbed decode: 8 heads on one latent kv head, V = first 32 dims of K */
        ref_cfg c = { 8, 1, 40, 32, 0.2, 2, 32, 40, 10000, 0, 0, 0, 0, 1 };
        int B = 1, SQ = 1, SK = 2000;
        float *q = frand((size_t)B * SQ * 8 * 40, 2), *k = frand((size_t)B * SK * 40, 1), *vdata_f = NULL;
        float *o = malloc(sizeof(float) * B * SQ * 8 * 32), *lse = malloc(sizeof(float) * B * SQ * 8);
        RUN_BOTH(attnc_aot_mla, c, B, SQ, SK, q, k, (void)0, o, lse, 1e-5, 0, q, k);
        free(q); free(k); free(o); free(lse);
    }
    {   /* dynamic NTK: seq_k beyond the original context grows the base at launch */
        ref_cfg c = { 2, 1, 16, 16, 0.25, 1, 0, 16, 10000, 2, 16, 0, 0, 0 };
        int B = 1, SQ = 40, SK = 40;
        float *q = frand((size_t)B * SQ * 2 * 16, 2), *k = frand((size_t)B * SK * 16, 1);
        float *v = frand((size_t)B * SK * 16, 1), *vdata_f = v;
        float *o = malloc(sizeof(float) * B * SQ * 2 * 16), *lse = malloc(sizeof(float) * B * SQ * 2);
        RUN_BOTH(attnc_aot_dynamic, c, B, SQ, SK, q, k, a.v.data = v, o, lse, 1e-5, 0, q, k);
        free(q); free(k); free(v); free(o); free(lse);
    }
    printf("%s\n", failures ? "FAILED" : "all AOT kernels match the reference");
    return failures ? 1 : 0;
}
