/* CPU backend benchmark. Prints JSON lines (and appends them to --out FILE):
 *   peak_fma / read_bw   this machine's fp32 FMA peak and read bandwidth, 1..N threads,
 *                        measured here the way /work/shared/tools/cpu-peak.c does it
 *   compile              JIT compile time (IR generation + O3 + machine code) per kernel
 *   prefill              GFLOP/s, FA3 convention 2*b*h_q*s_q*avg_sk*(d_qk+d_v), avg_sk the
 *                        mean number of visible keys (causal: (s+1)/2), for attnc, an
 *                        unfused baseline (Q K^T, softmax, P V as three loop nests) and
 *                        ggml's CPU flash attention (when --ggml DIR names a build of ggml)
 *   prefill_modifier     the same for a causal prefill (seq 2048) with a score modifier:
 *                        Gemma-2's softcap and BLOOM's ALiBi; and with RoPE on Q and K
 *   short                the same for 1 to 100 query positions against 4096 keys (GQA, MHA),
 *                        through a prefill and a `phase decode` kernel
 *   decode               GB/s of K and V read (b*h_kv*s_k*(d_qk+d_v)*bytes) at 32k keys,
 *                        K/V token-major (a KV cache) and head-major, for attnc and ggml;
 *                        for attnc also f32 with RoPE rotating K on load
 * Usage: cpu_bench [--ggml DIR] [--quick] [--threads N] [--out FILE] [--note TEXT]
 *                  [--only compile|prefill|target|modifier|short|decode]  (the machine rows always run;
 *                  target: only the prefill shape, d 128, seq 4096, causal, and ggml's)
 * The ggml library (libggml-base.so, libggml-cpu.so) is loaded with dlopen from DIR; it
 * is built outside this repository from ggml's public source, never part of it. */
#include <dirent.h>
#include <dlfcn.h>
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
#include "codegen/llvm/cpu_backend.h"
#include "codegen/llvm/cpu_kernel.h"
#include "codegen/llvm/cpu_runtime.h"
#include "frontend/frontend.h"
#include "ir/signature.h"
#include "runtime/tensor_access.h"
#include "runtime/threadpool.h"

#include "bench/bench_machine.h"

static double g_peak[65], g_bw[65];

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

/* The first kernel of a one-kernel spec, JIT-compiled; NULL (message printed) on error.
 * The caller frees the kernel, then the spec. */
static cpu_compiled *spec_jit(spec *s, const char *text, ir_kernel **k) {
    if (!spec_compile(s, text)) return NULL;
    *k = s->m->kernels[0];
    char err[512];
    cpu_compiled *ck = cpu_compile(*k, NULL, err, sizeof err);
    if (!ck) fprintf(stderr, "%s\n", err);
    return ck;
}

static void spec_free(spec *s) {
    diag_free(&s->d);
    arena_free(&s->a);
    free(s->src);
}

/* Contiguous launch tensors with random data (bf16 when the kernel is). */
typedef struct bufs {
    int n;
    attnc_tensor t[SIG_MAX_TENSORS];
} bufs;

static uint64_t g_rng = 88172645463325252ull;
static float frand(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((double)(g_rng >> 11) * 0x1.0p-52 * 2 - 1);
}

static void bufs_make(bufs *b, const ir_kernel *k, int64_t batch, int64_t sq, int64_t sk) {
    sig_tensor sig[SIG_MAX_TENSORS];
    b->n = ir_signature(k, batch, sq, sk, sig);
    for (int i = 0; i < b->n; i++) {
        attnc_tensor *t = &b->t[i];
        memset(t, 0, sizeof *t);
        t->name = sig[i].name;
        t->dtype = sig[i].dtype;
        t->ndim = sig[i].ndim;
        memcpy(t->shape, sig[i].shape, sizeof t->shape);
        int64_t n = tensor_count(t);
        size_t es = (size_t)attnc_dtype_size(t->dtype);
        t->data = aligned_alloc(64, ((size_t)n * es + 63) / 64 * 64);
        if (t->dtype == ATTNC_F32) for (int64_t e = 0; e < n; e++) ((float *)t->data)[e] = frand();
        else if (t->dtype == ATTNC_BF16) for (int64_t e = 0; e < n; e++) ((uint16_t *)t->data)[e] = attnc_double_to_bf16(frand());
        else memset(t->data, 0, (size_t)n * es);
    }
}

/* K and V re-strided head-major ([batch][heads][seq][d] in memory, the same bytes) in
 * place of the signature's token-major [batch][seq][heads][d]. */
static void bufs_head_major(bufs *b) {
    for (int i = 0; i < b->n; i++) {
        attnc_tensor *t = &b->t[i];
        if (strcmp(t->name, "k") && strcmp(t->name, "v")) continue;
        int64_t s = t->shape[1], h = t->shape[2], d = t->shape[3];
        t->strides[0] = h * s * d;
        t->strides[1] = d;
        t->strides[2] = s * d;
        t->strides[3] = 1;
    }
}

static void bufs_free(bufs *b) {
    for (int i = 0; i < b->n; i++) free(b->t[i].data);
}

/* Timed launches: the best of at least MIN_REPS after a warm-up, more while the time
 * budget lasts (at most 20). */
enum { MIN_REPS = 5 };

static double time_launch(cpu_compiled *ck, const ir_kernel *k, int th, int64_t batch, int64_t sq, int64_t sk, bufs *b,
                          double budget_s) {
    char err[512];
    if (!cpu_launch(ck, k, th, batch, sq, sk, b->t, b->n, err, sizeof err)) {   /* warm-up: workspace, caches */
        fprintf(stderr, "launch failed: %s\n", err);
        return -1;
    }
    double best = 1e30, start = now();
    for (int rep = 0; rep < 20; rep++) {
        double t0 = now();
        cpu_launch(ck, k, th, batch, sq, sk, b->t, b->n, err, sizeof err);
        double t = now() - t0;
        if (t < best) best = t;
        if (rep >= MIN_REPS - 1 && now() - start > budget_s) break;
    }
    return best;
}

/* One launch shape (batch 1) on 1..max_threads threads in turn: the best time of each in t[th]. */
static void time_threads(cpu_compiled *ck, const ir_kernel *k, int max_threads, int64_t sq, int64_t sk, double budget_s,
                         double *t) {
    bufs b;
    bufs_make(&b, k, 1, sq, sk);
    for (int th = 1; th <= max_threads; th++) t[th] = time_launch(ck, k, th, 1, sq, sk, &b, budget_s);
    bufs_free(&b);
}

/* ---------------------------------------------------------------- unfused baseline */

typedef struct base_job {
    const float *q, *k, *v;
    float *o;
    int h, s, d;
    bool causal;
    int next_head;
    pthread_mutex_t lock;
} base_job;

/* One head: S = scale Q K^T (dot products), row softmax, O = P V; written as plain
 * loop nests that the compiler vectorises (the unfused three-kernel structure, with S
 * materialised in memory). */
static void base_head(base_job *j, int hh, float *S) {
    int s = j->s, d = j->d;
    float scale = 1.0f / sqrtf((float)d);
    const float *q = j->q + (size_t)hh * s * d, *k = j->k + (size_t)hh * s * d, *v = j->v + (size_t)hh * s * d;
    float *o = j->o + (size_t)hh * s * d;
    for (int i = 0; i < s; i++) {
        int n = j->causal ? i + 1 : s;
        for (int t = 0; t < n; t++) {
            float acc = 0;
            for (int e = 0; e < d; e++) acc += q[(size_t)i * d + e] * k[(size_t)t * d + e];
            S[(size_t)i * s + t] = acc * scale;
        }
    }
    for (int i = 0; i < s; i++) {
        int n = j->causal ? i + 1 : s;
        float *row = S + (size_t)i * s, m = -INFINITY, l = 0;
        for (int t = 0; t < n; t++) m = fmaxf(m, row[t]);
        for (int t = 0; t < n; t++) l += row[t] = expf(row[t] - m);
        for (int t = 0; t < n; t++) row[t] /= l;
    }
    for (int i = 0; i < s; i++) {
        int n = j->causal ? i + 1 : s;
        float *out = o + (size_t)i * d;
        for (int e = 0; e < d; e++) out[e] = 0;
        for (int t = 0; t < n; t++) {
            float p = S[(size_t)i * s + t];
            for (int e = 0; e < d; e++) out[e] += p * v[(size_t)t * d + e];
        }
    }
}

static void *base_worker(void *arg) {
    base_job *j = arg;
    float *S = malloc(sizeof(float) * (size_t)j->s * j->s);
    for (;;) {
        pthread_mutex_lock(&j->lock);
        int hh = j->next_head++;
        pthread_mutex_unlock(&j->lock);
        if (hh >= j->h) break;
        base_head(j, hh, S);
    }
    free(S);
    return NULL;
}

static double time_baseline(int h, int s, int d, bool causal, int th) {
    size_t n = (size_t)h * s * d;
    float *q = malloc(n * 4), *k = malloc(n * 4), *v = malloc(n * 4), *o = malloc(n * 4);
    for (size_t i = 0; i < n; i++) { q[i] = frand(); k[i] = frand(); v[i] = frand(); }
    base_job j = { q, k, v, o, h, s, d, causal, 0, PTHREAD_MUTEX_INITIALIZER };
    double t0 = now();
    pthread_t t[64];
    for (int i = 0; i < th; i++) pthread_create(&t[i], NULL, base_worker, &j);
    for (int i = 0; i < th; i++) pthread_join(t[i], NULL);
    double dt = now() - t0;
    free(q); free(k); free(v); free(o);
    return dt;
}

/* ---------------------------------------------------------------- ggml */

typedef struct ggml_api {
    void *base, *cpu;
    void *(*init)(size_t mem_size, void *mem_buffer, bool no_alloc);   /* by-value struct, see below */
    void *(*new_tensor_4d)(void *ctx, int type, int64_t, int64_t, int64_t, int64_t);
    void *(*flash_attn_ext)(void *ctx, void *q, void *k, void *v, void *mask, float scale, float max_bias, float softcap);
    void *(*permute)(void *ctx, void *t, int ax0, int ax1, int ax2, int ax3);
    void *(*new_graph)(void *ctx);
    void (*build_forward_expand)(void *graph, void *tensor);
    int (*graph_compute_with_ctx)(void *ctx, void *graph, int n_threads);
    void *(*get_data)(void *tensor);
    void (*free_ctx)(void *ctx);
    void (*cpu_init)(void);
} ggml_api;

/* ggml_init takes struct ggml_init_params { size_t mem_size; void *mem_buffer; bool no_alloc; }
 * by value; on x86-64 SysV a 24-byte struct is passed in memory, exactly like this. */
typedef struct ggml_init_params_abi { size_t mem_size; void *mem_buffer; bool no_alloc; } ggml_init_params_abi;

static bool ggml_load(ggml_api *g, const char *dir, char *why, size_t whylen) {
    memset(g, 0, sizeof *g);
    char path[1024];
    snprintf(path, sizeof path, "%s/libggml-base.so", dir);
    g->base = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    snprintf(path, sizeof path, "%s/libggml-cpu.so", dir);
    g->cpu = g->base ? dlopen(path, RTLD_NOW | RTLD_GLOBAL) : NULL;
    if (!g->cpu) {
        snprintf(why, whylen, "cannot load ggml from %s: %s", dir, dlerror());
        return false;
    }
#define SYM(field, lib, name) do { *(void **)&g->field = dlsym(g->lib, name); \
    if (!g->field) { snprintf(why, whylen, "ggml lacks %s", name); return false; } } while (0)
    SYM(init, base, "ggml_init");
    SYM(new_tensor_4d, base, "ggml_new_tensor_4d");
    SYM(flash_attn_ext, base, "ggml_flash_attn_ext");
    SYM(permute, base, "ggml_permute");
    SYM(new_graph, base, "ggml_new_graph");
    SYM(build_forward_expand, base, "ggml_build_forward_expand");
    SYM(graph_compute_with_ctx, cpu, "ggml_graph_compute_with_ctx");
    SYM(get_data, base, "ggml_get_data");
    SYM(free_ctx, base, "ggml_free");
    *(void **)&g->cpu_init = dlsym(g->cpu, "ggml_cpu_init");
#undef SYM
    if (g->cpu_init) g->cpu_init();
    return true;
}

enum { GGML_F32 = 0, GGML_F16 = 1 };

/* ggml's flash attention on f32 q and k/v of kv_type (hq query heads over h kv heads,
 * one sequence), causal via an f16 mask of 0 / -inf. K and V are head-major ([h][sk][d],
 * ggml's contiguous tensor) or, with token_major, [sk][h][d] viewed through a permute:
 * the layout of a KV cache, and of llama.cpp's. Returns the best time of a few runs. */
static double time_ggml(ggml_api *g, int hq, int h, int sq, int sk, int d, bool causal, int th, int kv_type,
                        bool token_major) {
    size_t kvb = kv_type == GGML_F16 ? 2 : 4;
    size_t need = (size_t)hq * sq * d * 4 * 2 + (size_t)h * sk * d * kvb * 2 + (size_t)sk * sq * 2 + ((size_t)256 << 20);
    ggml_init_params_abi p = { need, NULL, false };
    void *(*init)(ggml_init_params_abi) = (void *(*)(ggml_init_params_abi))(void *)g->init;
    void *ctx = init(p);
    if (!ctx) return -1;
    void *q = g->new_tensor_4d(ctx, GGML_F32, d, sq, hq, 1);
    void *k = token_major ? g->new_tensor_4d(ctx, kv_type, d, h, sk, 1) : g->new_tensor_4d(ctx, kv_type, d, sk, h, 1);
    void *v = token_major ? g->new_tensor_4d(ctx, kv_type, d, h, sk, 1) : g->new_tensor_4d(ctx, kv_type, d, sk, h, 1);
    void *mask = causal ? g->new_tensor_4d(ctx, GGML_F16, sk, sq, 1, 1) : NULL;
    float *qd = g->get_data(q);
    for (size_t i = 0; i < (size_t)hq * sq * d; i++) qd[i] = frand();
    for (int which = 0; which < 2; which++) {
        void *data = g->get_data(which ? v : k);
        for (size_t i = 0; i < (size_t)h * sk * d; i++) {
            if (kv_type == GGML_F16) ((uint16_t *)data)[i] = attnc_double_to_f16(frand());
            else ((float *)data)[i] = frand();
        }
    }
    if (mask) {
        uint16_t *md = g->get_data(mask);
        for (int i = 0; i < sq; i++)
            for (int t = 0; t < sk; t++) md[(size_t)i * sk + t] = t <= i + (sk - sq) ? 0 : 0xFC00;
    }
    void *kview = token_major ? g->permute(ctx, k, 0, 2, 1, 3) : k, *vview = token_major ? g->permute(ctx, v, 0, 2, 1, 3) : v;
    void *out = g->flash_attn_ext(ctx, q, kview, vview, mask, 1.0f / sqrtf((float)d), 0.0f, 0.0f);
    void *graph = g->new_graph(ctx);
    g->build_forward_expand(graph, out);
    /* Warmed up and timed as attnc's launches are (time_launch), so neither side gets
     * more chances at a quiet moment of a shared machine. */
    double best = g->graph_compute_with_ctx(ctx, graph, th) != 0 ? -1 : 1e30, start = now();
    for (int rep = 0; rep < 20 && best > 0; rep++) {
        double t0 = now();
        if (g->graph_compute_with_ctx(ctx, graph, th) != 0) { best = -1; break; }
        double t = now() - t0;
        if (t < best) best = t;
        if (rep >= MIN_REPS - 1 && now() - start > 3.0) break;
    }
    g->free_ctx(ctx);
    return best;
}

/* ---------------------------------------------------------------- main */

static double flops_prefill(int b, int h, int64_t sq, int64_t sk, int dqk, int dv, bool causal) {
    /* Visible keys per query, averaged: bottom-right causal row r sees r + sk - sq + 1. */
    double avg = causal ? (double)(sk - sq) + (sq + 1) / 2.0 : (double)sk;
    return 2.0 * b * h * (double)sq * avg * (dqk + dv);
}

int main(int argc, char **argv) {
    const char *ggml_dir = NULL, *out_path = NULL, *only = NULL;
    bool quick = false;
    int max_threads = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--ggml") && i + 1 < argc) ggml_dir = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out_path = argv[++i];
        else if (!strcmp(argv[i], "--note") && i + 1 < argc) g_note = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) max_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) quick = true;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else {
            fprintf(stderr, "usage: cpu_bench [--ggml DIR] [--quick] [--threads N] [--out FILE] [--note TEXT] "
                            "[--only compile|prefill|target|modifier|short|decode]\n");
            return 2;
        }
    }
    if (max_threads < 1) max_threads = 1;
    if (max_threads > 64) max_threads = 64;
    if (out_path) g_out = fopen(out_path, "a");
    char err[512];
    cpu_target host;
    if (!cpu_target_host(&host, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    time_t tnow = time(NULL);
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&tnow));
    char model[256] = "?";
    FILE *ci = fopen("/proc/cpuinfo", "r");
    if (ci) {
        char line[512];
        while (fgets(line, sizeof line, ci))
            if (!strncmp(line, "model name", 10)) {
                char *c = strchr(line, ':');
                if (c) {
                    snprintf(model, sizeof model, "%s", c + 2);
                    model[strcspn(model, "\n")] = 0;
                }
                break;
            }
        fclose(ci);
    }
    cpu_tiles tl = cpu_tiles_for(&host);
    emit("{\"bench\": \"machine\", \"date\": \"%s\", \"cpu\": \"%s\", \"llvm_cpu\": \"%s\", \"lanes\": %d, \"avx512\": %s, "
         "\"cpus\": %d, \"s_tile\": \"%dx%d\", \"block_keys\": %d, \"rows_per_item\": %d, \"note\": \"%s\"}",
         date, model, host.cpu, host.lanes, host.avx512 ? "true" : "false", attnc_cpu_count(), tl.s_keys_wide,
         tl.s_vecs_wide * tl.lanes, tl.block_keys, tl.rows_target, g_note);

    measure_machine(&(machine_probe){ max_threads, quick ? 50000000 : 200000000, 1L << 28, 4, false }, g_peak, g_bw);

    /* JIT compile time of every example kernel. */
    char exdir[1024];
    snprintf(exdir, sizeof exdir, "%s/examples", ATTNC_SOURCE_DIR);
    DIR *dd = only && strcmp(only, "compile") ? NULL : opendir(exdir);
    while (dd) {
        struct dirent *e = readdir(dd);
        if (!e) break;
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".attn")) continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", exdir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        char *text = calloc(1, 1 << 16);
        size_t n = fread(text, 1, (1 << 16) - 1, f);
        fclose(f);
        text[n] = 0;
        spec s;
        if (spec_compile(&s, text)) {
            for (int i = 0; i < s.m->n_kernels; i++) {
                ir_kernel *k = s.m->kernels[i];
                if (k->family != IR_SOFTMAX) continue;
                double ms = 0;
                cpu_compiled *ck = cpu_compile(k, &ms, err, sizeof err);
                if (ck) emit("{\"bench\": \"compile\", \"kernel\": \"%s\", \"ms\": %.1f}", k->name, ms);
                else emit("{\"bench\": \"compile\", \"kernel\": \"%s\", \"error\": \"%s\"}", k->name, err);
                cpu_compiled_free(ck);
            }
        }
        spec_free(&s);
        free(text);
    }
    if (dd) closedir(dd);

    ggml_api gg;
    char why[512] = "no --ggml DIR given (build ggml's CPU library outside the repository and pass its lib directory)";
    bool have_ggml = ggml_dir && ggml_load(&gg, ggml_dir, why, sizeof why);
    if (!have_ggml) emit("{\"bench\": \"ggml\", \"skipped\": \"%s\"}", why);

    /* Prefill: b = 1, h = 8 (MHA), f32. */
    int dims[2] = { 64, 128 };
    int seqs[5] = { 512, 1024, 2048, 4096, 8192 };
    bool target_only = only && !strcmp(only, "target");
    int n_seqs = target_only ? 5 : only && strcmp(only, "prefill") ? 0 : quick ? 3 : 5;
    for (int di = 0; di < 2; di++)
        for (int causal = 1; causal >= 0; causal--) {
            int d = dims[di], h = 8;
            if (target_only && !(d == 128 && causal)) continue;
            char text[256];
            snprintf(text, sizeof text, "kernel prefill { heads q = %d, kv = %d\n dims %d\n%s }", h, h, d,
                     causal ? " mask causal\n" : "");
            spec s;
            ir_kernel *k = NULL;
            cpu_compiled *ck = spec_jit(&s, text, &k);
            if (!ck) return 1;
            for (int si = 0; si < n_seqs; si++) {
                int S = seqs[si];
                if (target_only && S != 4096) continue;
                bufs b;
                bufs_make(&b, k, 1, S, S);
                double fl = flops_prefill(1, h, S, S, d, d, causal);
                for (int th = 1; th <= max_threads; th++) {
                    double t = time_launch(ck, k, th, 1, S, S, &b, quick ? 1.0 : 3.0);
                    double gf = fl / t / 1e9;
                    emit("{\"bench\": \"prefill\", \"impl\": \"attnc\", \"d\": %d, \"heads\": %d, \"seq\": %d, \"causal\": %s, "
                         "\"threads\": %d, \"ms\": %.2f, \"gflops\": %.1f, \"pct_peak\": %.1f}",
                         d, h, S, causal ? "true" : "false", th, t * 1e3, gf, g_peak[th] > 0 ? 100 * gf / g_peak[th] : 0);
                    bool target_shape = d == 128 && S == 4096 && causal;
                    if (have_ggml && (target_shape || S <= 2048)) {
                        double tg = time_ggml(&gg, h, h, S, S, d, causal, th, GGML_F32, false);
                        emit("{\"bench\": \"prefill\", \"impl\": \"ggml\", \"kv\": \"f32\", \"d\": %d, \"heads\": %d, \"seq\": %d, "
                             "\"causal\": %s, \"threads\": %d, \"ms\": %.2f, \"gflops\": %.1f, \"attnc_speedup\": %.2f}",
                             d, h, S, causal ? "true" : "false", th, tg * 1e3, fl / tg / 1e9, tg / t);
                    }
                    if (!target_only && d == 128 && causal && S <= (quick ? 1024 : 4096) && (S == 4096 || S == 1024)) {
                        double tb = time_baseline(h, S, d, causal, th);
                        emit("{\"bench\": \"prefill\", \"impl\": \"unfused\", \"d\": %d, \"heads\": %d, \"seq\": %d, "
                             "\"causal\": true, \"threads\": %d, \"ms\": %.2f, \"gflops\": %.1f, \"attnc_speedup\": %.2f}",
                             d, h, S, th, tb * 1e3, fl / tb / 1e9, tb / t);
                    }
                }
                bufs_free(&b);
            }
            cpu_compiled_free(ck);
            spec_free(&s);
        }

    /* Prefill with a score modifier, the shape of the plain causal rows above at seq 2048,
     * so the modifier's cost shows: Gemma-2's logit softcap (tanh on every score),
     * BLOOM's ALiBi (a per-head slope, 2^(-8(h+1)/H), times the distance), and RoPE
     * (Llama's, rotating Q and K on load; the score unchanged). */
    if (!only || !strcmp(only, "prefill") || !strcmp(only, "modifier")) {
        const char *mods[3] = { "softcap(score, 50)", "score + alibi_slope(head) * (kv_idx - q_idx)", "score" };
        for (int mi = 0; mi < 3; mi++) {
            const char *mod = mods[mi];
            bool rope = mi == 2;
            int d = 128, h = 8, S = 2048;
            char text[256];
            snprintf(text, sizeof text, "kernel prefill_mod { heads q = %d, kv = %d\n dims %d\n score %s\n%s mask causal }",
                     h, h, d, mod, rope ? " rope half, base = 500000\n" : "");
            spec s;
            ir_kernel *k = NULL;
            cpu_compiled *ck = spec_jit(&s, text, &k);
            if (!ck) return 1;
            double fl = flops_prefill(1, h, S, S, d, d, true), tt[65];
            time_threads(ck, k, max_threads, S, S, quick ? 1.0 : 3.0, tt);
            for (int th = 1; th <= max_threads; th++) {
                double t = tt[th], gf = fl / t / 1e9;
                emit("{\"bench\": \"prefill_modifier\", \"impl\": \"attnc\", \"score\": \"%s\", \"rope\": %s, \"d\": %d, "
                     "\"heads\": %d, \"seq\": %d, \"causal\": true, \"threads\": %d, \"ms\": %.2f, \"gflops\": %.1f, "
                     "\"pct_peak\": %.1f}",
                     mod, rope ? "true" : "false", d, h, S, th, t * 1e3, gf, g_peak[th] > 0 ? 100 * gf / g_peak[th] : 0);
            }
            cpu_compiled_free(ck);
            spec_free(&s);
        }
    }

    /* Short launches: a few query positions against 4096 keys (chunked prefill, speculative
     * verification), Llama-3-8B's GQA (32 q over 8 kv heads) and MHA (8 heads), d 128,
     * causal, through a prefill kernel (rows of an item fill few vectors here) and a
     * `phase decode` one, which is built for them. */
    if (!only || !strcmp(only, "short")) {
        const int hq[2] = { 32, 8 }, hkv[2] = { 8, 8 }, sqs[5] = { 1, 2, 5, 17, 100 };
        const char *phases[2] = { "prefill", "decode" };
        for (int gi = 0; gi < 2; gi++)
            for (int ph = 0; ph < 2; ph++) {
                char text[256];
                snprintf(text, sizeof text, "kernel short { heads q = %d, kv = %d\n dims 128\n mask causal\n phase %s }",
                         hq[gi], hkv[gi], phases[ph]);
                spec s;
                ir_kernel *k = NULL;
                cpu_compiled *ck = spec_jit(&s, text, &k);
                if (!ck) return 1;
                for (int si = 0; si < 5; si++) {
                    int64_t SQ = sqs[si], SK = 4096;
                    double fl = flops_prefill(1, hq[gi], SQ, SK, 128, 128, true), tt[65];
                    time_threads(ck, k, max_threads, SQ, SK, quick ? 0.5 : 1.5, tt);
                    for (int th = 1; th <= max_threads; th++) {
                        double t = tt[th];
                        emit("{\"bench\": \"short\", \"impl\": \"attnc\", \"phase\": \"%s\", \"heads_q\": %d, "
                             "\"heads_kv\": %d, \"d\": 128, \"seq_q\": %lld, \"seq_k\": %lld, \"causal\": true, \"threads\": %d, "
                             "\"ms\": %.3f, \"gflops\": %.1f}",
                             phases[ph], hq[gi], hkv[gi], (long long)SQ, (long long)SK, th, t * 1e3, fl / t / 1e9);
                    }
                }
                cpu_compiled_free(ck);
                spec_free(&s);
            }
    }

    /* Decode: one token against 32k keys, Llama-3-8B shapes (32 q heads, 8 kv heads, d 128),
     * K and V in two layouts: token-major [seq][heads][d] (a KV cache's, attnc's default)
     * and head-major [heads][seq][d] (ggml's contiguous tensor). ggml runs both too, so
     * each ratio compares one layout. */
    const char *dtypes[2] = { "f32", "bf16" }, *layouts[2] = { "token_major", "head_major" };
    bool decode = !only || !strcmp(only, "decode");
    /* Read probe for the decode rows: as many bytes as fp32 K and V. */
    long probe_n = decode ? 8L * 32768 * 256 : 0;
    float *probe = decode ? aligned_alloc(64, (size_t)probe_n * sizeof(float)) : NULL;
    if (decode && !probe) return 1;
    for (long i = 0; i < probe_n; i++) probe[i] = 1.0f;
    /* Cases: f32, bf16, and f32 with RoPE applied to K on load (token-major only). */
    for (int dc = 0; decode && dc < 3; dc++) {
        int dt = dc == 1;
        bool rope = dc == 2;
        char text[256];
        snprintf(text, sizeof text, "kernel decode { heads q = 32, kv = 8\n dims 128\n dtype %s\n%s mask causal\n phase decode }",
                 dtypes[dt], rope ? " rope half\n" : "");
        spec s;
        ir_kernel *k = NULL;
        cpu_compiled *ck = spec_jit(&s, text, &k);
        if (!ck) return 1;
        int64_t SK = 32768;
        bufs b;
        bufs_make(&b, k, 1, 1, SK);
        double bytes = 1.0 * 8 * SK * (128 + 128) * (dt ? 2 : 4);
        for (int lay = 0; lay < (rope ? 1 : 2); lay++) {
            if (lay) bufs_head_major(&b);
            for (int th = 1; th <= max_threads; th++) {
                /* Memory bandwidth on a shared machine drifts by tens of percent within a
                 * minute, so the kernel and the read probe take turns, best of each. */
                double t = 1e30, bw = 0;
                for (int round = 0; round < (quick ? 2 : 6); round++) {
                    double tr = time_launch(ck, k, th, 1, 1, SK, &b, 0.3);
                    if (tr > 0 && tr < t) t = tr;
#ifndef NO_PEAK
                    double g = read_bw_once(probe, probe_n, th, 1);
                    if (g > bw) bw = g;
#endif
                }
                double gb = bytes / t / 1e9;
                emit("{\"bench\": \"decode\", \"impl\": \"attnc\", \"dtype\": \"%s\", \"rope\": %s, \"layout\": \"%s\", "
                     "\"heads_q\": 32, \"heads_kv\": 8, \"d\": 128, \"seq_k\": %lld, \"threads\": %d, \"ms\": %.3f, "
                     "\"gbps\": %.1f, \"read_bw_interleaved\": %.1f, \"pct_read_bw\": %.1f}",
                     dtypes[dt], rope ? "true" : "false", layouts[lay], (long long)SK, th, t * 1e3, gb, bw,
                     bw > 0 ? 100 * gb / bw : 0);
            }
        }
        bufs_free(&b);
        cpu_compiled_free(ck);
        spec_free(&s);
    }
    if (have_ggml && decode) {
        /* ggml decode: the same work (32 q heads over 8 kv heads; ggml runs each q head on
         * its own, reading its kv head's K/V again) and, as a bandwidth reference, MHA 8
         * heads (the same bytes, a quarter of the FLOPs), f16 and f32 K/V. */
        static const int q_heads[2] = { 32, 8 };
        for (int kvt = 0; kvt < 2; kvt++)
            for (int qi = 0; qi < 2; qi++)
                for (int lay = 0; lay < 2; lay++)
                    for (int th = 1; th <= max_threads; th++) {
                        int hq = q_heads[qi];
                        double t = time_ggml(&gg, hq, 8, 1, 32768, 128, false, th, kvt ? GGML_F16 : GGML_F32, lay == 0);
                        double bytes = 8.0 * 32768 * 256 * (kvt ? 2 : 4);
                        emit("{\"bench\": \"decode\", \"impl\": \"ggml\", \"kv\": \"%s\", \"layout\": \"%s\", "
                             "\"heads_q\": %d, \"heads_kv\": 8, \"d\": 128, \"seq_k\": 32768, \"threads\": %d, \"ms\": %.3f, "
                             "\"gbps\": %.1f}",
                             kvt ? "f16" : "f32", layouts[lay], hq, th, t * 1e3, bytes / t / 1e9);
                    }
    }
    free(probe);
    if (g_out) fclose(g_out);
    return 0;
}
