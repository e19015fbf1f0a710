/* Recurrence kernels on the CPU (codegen/llvm/cpu_recur*.c). Prints JSON lines (and
 * appends them to --out FILE):
 *   peak_fma / read_bw  this machine's fp32 FMA peak and read bandwidth at 1..2 threads,
 *                       measured in this run as /work/shared/tools/cpu-peak.c does
 *   recur_prefill       length 8192: the chunkwise form and the sequential scan (the
 *                       interpreter's order of operations, compiled by the same backend),
 *                       tokens/s, GB/s of tensors read and written (inputs, o, state_out), and for the chunkwise
 *                       form its FLOP count and % of the FMA peak. FLOPs per token:
 *                       (C + 1) d_k per set of scores (one per group of heads sharing q and
 *                       k; one per head with a decay per key dim) plus, per head,
 *                       (C + 1) d_v' + 4 d_k d_v' for chunk C, d_v' = d_v (+1 with
 *                       normalize): the causal halves of Q K^T and P V plus the chunk-state
 *                       products Q S and K^T V (masks, exps and padding not counted). The
 *                       scan's FLOPs, 5 d_k d_v' per token and head, for comparison
 *   recur_speedup       chunkwise tokens/s over scan tokens/s, and over the literal form
 *                       (the interpreter's loop nests as scalar IR through the same O3: its
 *                       output sums are dependent chains O3 may not reorder)
 *   recur_decode        one token per sequence, state_in -> state_out in place: tokens/s
 *                       and GB/s (state read + written, plus q, k, v, o), at a batch whose
 *                       states stay in L3 (read_bw is DRAM's, so % above 100 there) and at
 *                       8x that batch
 * Usage: cpu_recur_bench [--quick] [--out FILE] [--note TEXT] */
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "codegen/llvm/cpu_recur.h"
#include "frontend/frontend.h"
#include "ir/signature.h"
#include "runtime/tensor_access.h"

#include "bench/bench_machine.h"

static double g_peak[3], g_bw[3];

/* ---------------------------------------------------------------- kernels */

typedef struct spec {
    arena a;
    diag_sink d;
    char *src;
    ir_module *m;
} spec;

static bool spec_compile(spec *s, const char *text) {
    memset(s, 0, sizeof *s);
    arena_init(&s->a);
    s->src = strdup(text);
    diag_init(&s->d, "<bench>", s->src, strlen(s->src));
    s->m = frontend_compile(s->src, strlen(s->src), &s->a, &s->d);
    bool ok = s->d.n_errors == 0 && ir_run_pipeline(s->m, &s->d, NULL, NULL);
    if (!ok) diag_print(&s->d, stderr);
    return ok;
}

static void spec_free(spec *s) {
    diag_free(&s->d);
    arena_free(&s->a);
    free(s->src);
}

static uint64_t g_rng = 88172645463325252ull;
static double urand(double lo, double hi) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return lo + (hi - lo) * ((double)(g_rng >> 11) * 0x1.0p-53);
}

/* Contiguous launch tensors: inputs random (decays in (0, 1)), outputs zeroed; state_in
 * and state_out share one buffer (in-place update), norm_in / norm_out likewise. */
typedef struct bufs {
    int n;
    attnc_tensor t[SIG_MAX_TENSORS];
    int64_t bytes;            /* of every tensor the launch reads or writes once */
    int64_t state_bytes;      /* of state_in, state_out, norm_in, norm_out (in place: one buffer) */
} bufs;

static void bufs_make(bufs *b, const ir_kernel *k, int64_t batch, int64_t seq, bool with_state_in) {
    sig_tensor sig[SIG_MAX_TENSORS];
    int n = ir_signature(k, batch, seq, seq, sig);
    memset(b, 0, sizeof *b);
    void *state = NULL, *norm = NULL;
    for (int i = 0; i < n; i++) {
        bool is_in_state = !strcmp(sig[i].name, "state_in") || !strcmp(sig[i].name, "norm_in");
        if (is_in_state && !with_state_in) continue;
        attnc_tensor *t = &b->t[b->n++];
        t->name = sig[i].name;
        t->dtype = sig[i].dtype;
        t->ndim = sig[i].ndim;
        memcpy(t->shape, sig[i].shape, sizeof t->shape);
        int64_t count = tensor_count(t), bytes = count * attnc_dtype_size(t->dtype);
        bool is_state = !strncmp(t->name, "state", 5), is_norm = !strncmp(t->name, "norm", 4);
        void **shared = is_state ? &state : is_norm ? &norm : NULL;
        if (shared && *shared) {
            t->data = *shared;
        } else {
            t->data = aligned_alloc(64, (size_t)((bytes + 63) / 64 * 64 + 64));
            memset(t->data, 0, (size_t)bytes);
            if (shared) *shared = t->data;
        }
        if (is_state || is_norm) b->state_bytes += bytes;
        else b->bytes += bytes;
        if (sig[i].role == SIG_OUT || is_in_state) continue;
        double lo = -1, hi = 1;
        if (!strcmp(t->name, "dt")) lo = 0.01, hi = 0.2;
        if (!strcmp(t->name, "g")) lo = -4, hi = 4;
        for (int64_t e = 0; e < count; e++) tensor_store(t, e, urand(lo, hi));
    }
}

static void bufs_free(bufs *b) {
    for (int i = 0; i < b->n; i++) {
        bool dup = false;
        for (int j = 0; j < i; j++) dup |= b->t[j].data == b->t[i].data;
        if (!dup) free(b->t[i].data);
    }
}

/* Best wall time of repeated launches (at least 3, about min_s in total). */
static double time_launch(cpu_recur_compiled *ck, const ir_kernel *k, int threads, int form, int64_t batch, int64_t seq,
                          bufs *b, double min_s, bool *ok) {
    char err[512];
    *ok = cpu_recur_launch(ck, k, threads, form, batch, seq, b->t, b->n, err, sizeof err);   /* warm-up */
    if (!*ok) {
        fprintf(stderr, "launch failed: %s\n", err);
        return 0;
    }
    double best = 1e30, total = 0;
    for (int rep = 0; rep < 100 && (rep < 3 || total < min_s); rep++) {
        double t0 = now();
        cpu_recur_launch(ck, k, threads, form, batch, seq, b->t, b->n, err, sizeof err);
        double dt = now() - t0;
        total += dt;
        if (dt < best) best = dt;
    }
    return best;
}

static const char *dtype_name(ir_dtype d) { return d == IR_BF16 ? "bf16" : d == IR_F16 ? "f16" : "f32"; }

static void bench_kernel(const char *label, ir_kernel *k, int64_t seq, int64_t decode_batch, bool quick) {
    char err[512];
    double ms_compile = 0;
    cpu_recur_compiled *ck = cpu_recur_compile(k, &ms_compile, err, sizeof err);
    if (!ck) {
        emit("{\"bench\": \"recur_prefill\", \"kernel\": \"%s\", \"error\": \"%s\"}", label, err);
        return;
    }
    cpu_target tgt;
    cpu_target_host(&tgt, err, sizeof err);
    cpu_recur_info info = cpu_recur_describe(k, &tgt);
    emit("{\"bench\": \"recur_compile\", \"kernel\": \"%s\", \"ms\": %.0f, \"lanes\": %d, \"tile\": \"%dx%d\", "
         "\"chunk\": %d, \"sub_block\": %d}",
         label, ms_compile, info.lanes, info.tile_rows, info.tile_vecs, info.chunk, info.sub_block);
    int H = k->heads_q, G = k->groups, N = k->d_qk, P = k->d_v, P1 = P + (k->normalize ? 1 : 0), C = k->chunk;
    /* Executed FLOPs of the chunkwise form: the scores once per group of heads sharing q
     * and k (per head with a decay per key dim, where they differ), the rest per head. */
    int score_sets = k->decay_kind == IR_DECAY_KEY_VECTOR ? H : G;
    double flops = ((double)(C + 1) * N * score_sets + ((double)(C + 1) * P1 + 4.0 * N * P1) * H) * (double)seq;
    bufs b;
    bufs_make(&b, k, 1, seq, false);
    for (int th = 1; th <= 2; th++) {
        bool ok1, ok2, ok3;
        double tc = time_launch(ck, k, th, CPU_RECUR_CHUNK, 1, seq, &b, quick ? 0.3 : 1.5, &ok1);
        double ts = time_launch(ck, k, th, CPU_RECUR_SCAN, 1, seq, &b, quick ? 0.3 : 1.5, &ok2);
        double tl = time_launch(ck, k, th, CPU_RECUR_LITERAL, 1, seq, &b, quick ? 0.3 : 1.5, &ok3);
        if (!ok1 || !ok2 || !ok3) continue;
        double gbytes = (double)(b.bytes + b.state_bytes) / 1e9;
        double pct = g_peak[th] > 0 ? 100.0 * flops / tc / 1e9 / g_peak[th] : 0;
        emit("{\"bench\": \"recur_prefill\", \"kernel\": \"%s\", \"dtype\": \"%s\", \"form\": \"chunk\", \"threads\": %d, "
             "\"seq\": %lld, \"heads\": %d, \"d_k\": %d, \"d_v\": %d, \"chunk\": %d, \"ms\": %.2f, \"tokens_per_s\": %.0f, "
             "\"gbps\": %.2f, \"gflop\": %.3f, \"gflops\": %.1f, \"pct_peak\": %.1f}",
             label, dtype_name(k->dtype), th, (long long)seq, H, N, P, C, tc * 1e3, (double)seq / tc, gbytes / tc,
             flops / 1e9, flops / tc / 1e9, pct);
        double sflops = 5.0 * N * P1 * H * (double)seq;
        emit("{\"bench\": \"recur_prefill\", \"kernel\": \"%s\", \"dtype\": \"%s\", \"form\": \"scan\", \"threads\": %d, "
             "\"seq\": %lld, \"ms\": %.2f, \"tokens_per_s\": %.0f, \"gbps\": %.2f, \"scan_gflops\": %.1f, "
             "\"scan_pct_peak\": %.1f}",
             label, dtype_name(k->dtype), th, (long long)seq, ts * 1e3, (double)seq / ts, gbytes / ts, sflops / ts / 1e9,
             g_peak[th] > 0 ? 100.0 * sflops / ts / 1e9 / g_peak[th] : 0);
        emit("{\"bench\": \"recur_prefill\", \"kernel\": \"%s\", \"dtype\": \"%s\", \"form\": \"literal\", \"threads\": %d, "
             "\"seq\": %lld, \"ms\": %.2f, \"tokens_per_s\": %.0f, \"gbps\": %.2f}",
             label, dtype_name(k->dtype), th, (long long)seq, tl * 1e3, (double)seq / tl, gbytes / tl);
        emit("{\"bench\": \"recur_speedup\", \"kernel\": \"%s\", \"threads\": %d, \"chunk_over_scan\": %.2f, "
             "\"chunk_over_literal\": %.2f, \"target\": 10, \"pct_peak\": %.1f, \"pct_target\": 40}",
             label, th, ts / tc, tl / tc, pct);
    }
    bufs_free(&b);
    /* Decode: one token for decode_batch sequences (states in L3) and 8x as many (states
     * from DRAM), state updated in place. */
    for (int big = 0; big < 2; big++) {
        int64_t db = big ? 8 * decode_batch : decode_batch;
        bufs d;
        bufs_make(&d, k, db, 1, true);
        for (int th = 1; th <= 2; th++) {
            bool ok;
            double t = time_launch(ck, k, th, CPU_RECUR_AUTO, db, 1, &d, quick ? 0.2 : 0.8, &ok);
            if (!ok) continue;
            /* state_bytes counts state_in and state_out: the state read once, written once. */
            double gbytes = (double)(d.bytes + d.state_bytes) / 1e9;
            emit("{\"bench\": \"recur_decode\", \"kernel\": \"%s\", \"dtype\": \"%s\", \"threads\": %d, \"batch\": %lld, "
                 "\"state_mb\": %.1f, \"us\": %.1f, \"tokens_per_s\": %.0f, \"gbps\": %.2f, \"pct_read_bw\": %.0f}",
                 label, dtype_name(k->dtype), th, (long long)db, d.state_bytes / 2e6, t * 1e6, db / t,
                 gbytes / t, g_bw[th] > 0 ? 100.0 * gbytes / t / g_bw[th] : 0);
        }
        bufs_free(&d);
    }
    cpu_recur_free(ck);
}

/* Mamba2 with 8 heads instead of 80 (to keep the run short), its own chunk of 256 and
 * the common 64; GLA as in examples/gla.attn. */
static const char *MAMBA2 =
    "kernel mamba2_like : recurrence {\n"
    "    heads 8, groups = 1\n    dims k = 128, v = 64\n    dtype bf16\n"
    "    inputs dt[token, head], A_log[head], D[head]\n    decay exp(-dt * exp(A_log))\n"
    "    update S = decay * S + outer(k, dt * v)\n    output q @ S + D * v\n    chunk 256\n}\n";
static const char *GLA =
    "kernel gla : recurrence {\n"
    "    heads 4\n    dims k = 64, v = 128\n    dtype f32\n    inputs g[token, head, k]\n"
    "    decay exp(-softplus(-g) / 16)\n}\n";

int main(int argc, char **argv) {
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = true;
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) g_out = fopen(argv[++i], "a");
        else if (!strcmp(argv[i], "--note") && i + 1 < argc) g_note = argv[++i];
        else {
            fprintf(stderr, "usage: cpu_recur_bench [--quick] [--out FILE] [--note TEXT]\n");
            return 2;
        }
    }
    measure_machine(&(machine_probe){ 2, quick ? 30000000 : 150000000, 1L << 27, 2, true }, g_peak, g_bw);
    int64_t seq = 8192;
    spec m;
    if (spec_compile(&m, MAMBA2)) {
        ir_kernel *k = m.m->kernels[0];
        bench_kernel("mamba2_h8_c256", k, seq, 32, quick);
        k->chunk = 64;
        bench_kernel("mamba2_h8_c64", k, seq, 32, quick);
        k->dtype = IR_F32;
        bench_kernel("mamba2_h8_c64_f32", k, seq, 32, quick);
        spec_free(&m);
    }
    spec gl;
    if (spec_compile(&gl, GLA)) {
        bench_kernel("gla", gl.m->kernels[0], seq, 32, quick);
        spec_free(&gl);
    }
    if (g_out) fclose(g_out);
    return 0;
}
