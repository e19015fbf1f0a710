/* Start-up cost of a host program that JIT-compiles 10 softmax kernels of the example
 * specs (examples/NAME.attn) on the cpu target through the C API (include/attnc/attnc.h)
 * with the on-disk kernel cache (issue 7: a second start should cost <= 50 ms of attnc
 * time in total).
 *
 *   cold: this process, an empty cache directory: context, spec, kernel_get for each kernel
 *         (IR generation, O3, machine code, storing the object);
 *   warm: this program re-executed (--phase warm) with the cache the cold run filled, --warm
 *         N times: a fresh process each time, so nothing in memory is reused; every kernel is
 *         linked from its stored object.
 * "attnc time" is the wall time from before attnc_context_create to after the last
 * attnc_kernel_get (LLVM's start-up, host detection, parsing, keys, cache reads, linking).
 * Each kernel is then launched once (batch 1, 16 rows, inputs from its signature) and
 * checked against the "ref" target, outside the timed region, so a warm start that loads
 * broken code cannot look fast.
 *
 * JSON lines on stdout, appended to --out FILE:
 *   machine   date, CPU model, cores, attnc version, --note
 *   kernel    phase, run, kernel, spec, spec_ms (attnc_compile_file), get_ms (kernel_get), max_err
 *   start     phase, run, context_ms, total_ms (attnc time), kernels, all_ok
 *   summary   cold_ms, warm_ms (each run), warm_median_ms, target_ms, met, cache_target (the
 *             cpu target label the entries record: LLVM's CPU name, triple, feature hash)
 * Usage: api_start_bench [--warm N] [--out FILE] [--note TEXT] [--keep] */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "attnc/attnc.h"
#include "runtime/kernel_cache.h"

#include "bench/bench_emit.h"

#ifndef ATTNC_SOURCE_DIR
#define ATTNC_SOURCE_DIR "."
#endif

enum { N_KERNELS = 10, MAX_WARM = 20, TARGET_MS = 50 };

static const struct {
    const char *file, *kernel;
} KERNELS[N_KERNELS] = {
    { "phi2.attn", "phi2" },
    { "mistral_7b.attn", "mistral_7b" },
    { "gpt_neox_20b.attn", "gpt_neox_20b" },
    { "llama3_8b.attn", "llama3_8b" },
    { "llama3_8b.attn", "llama3_8b_decode" },
    { "gemma2_9b.attn", "gemma2_9b_local" },
    { "gemma2_9b.attn", "gemma2_9b_global" },
    { "qwen2_vl_7b.attn", "qwen2_vl_7b" },
    { "alibi.attn", "bloom_alibi" },
    { "doc_mask.attn", "packed_docs" },
};

static double now_ms(void) { return now() * 1e3; }

/* ---------------------------------------------------------------- checking a kernel */

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint16_t to_bf16(float f) {      /* round to nearest even; finite inputs */
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

static uint16_t to_f16(float f) {       /* |f| < 1 here; round to nearest */
    uint16_t sign = f < 0 ? 0x8000 : 0;
    float a = fabsf(f);
    if (a < 0x1p-24f) return sign;
    int e;
    frexpf(a, &e);
    if (e < -13) return (uint16_t)(sign | (uint16_t)lrintf(ldexpf(a, 24)));
    long m = lrintf(ldexpf(a, 11 - e));
    if (m == 2048) { m = 1024; e++; }
    return (uint16_t)(sign | (uint16_t)((e + 14) << 10) | (uint16_t)(m - 1024));
}

/* Inputs made from the signature: floats uniform in [-0.5, 0.5) in the input's dtype;
 * int32 inputs (positions, document ids) from the index along dimension 1 (the sequence):
 * the index itself for "positions", else index / 5 (documents of 5 tokens). */
static void *make_input(const attnc_tensor_info *s, int64_t cnt, uint64_t *seed) {
    int es = s->dtype == ATTNC_F32 || s->dtype == ATTNC_I32 ? 4 : 2;
    unsigned char *x = malloc((size_t)(cnt > 0 ? cnt : 1) * (size_t)es);
    if (!x) return NULL;
    int64_t inner = 1;
    for (int d = 2; d < s->ndim; d++) inner *= s->shape[d];
    for (int64_t e = 0; e < cnt; e++) {
        float f = (float)((double)(rng_next(seed) >> 11) * 0x1.0p-53 - 0.5);
        switch (s->dtype) {
        case ATTNC_F32: ((float *)x)[e] = f; break;
        case ATTNC_BF16: ((uint16_t *)x)[e] = to_bf16(f); break;
        case ATTNC_F16: ((uint16_t *)x)[e] = to_f16(f); break;
        case ATTNC_I32: {
            int64_t pos = s->ndim > 1 ? (e / inner) % s->shape[1] : e;
            ((int32_t *)x)[e] = (int32_t)(strcmp(s->name, "positions") == 0 ? pos : pos / 5);
            break;
        }
        default: free(x); return NULL;
        }
    }
    return x;
}

static int64_t count_of(const attnc_tensor_info *t) {
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

/* Launches k once on inputs made from its signature and compares with the ref kernel of
 * the same name (outputs as f64 views on both). Returns the largest difference, or -1
 * when something fails (with a message in why). */
static double check_kernel(attnc_kernel *k, attnc_kernel *ref, char *why, size_t whylen) {
    const int64_t batch = 1, seq = 16;
    attnc_tensor_info info[16];
    int n = 0;
    attnc_error err;
    if (attnc_kernel_signature(k, batch, seq, seq, info, 16, &n, &err) != ATTNC_OK || n > 16) {
        snprintf(why, whylen, "signature: %s", err.message);
        return -1;
    }
    attnc_tensor tk[16], tr[16];
    void *mem[32] = { 0 };
    int nt = 0, nm = 0;
    double worst = -1;
    uint64_t seed = 42;
    for (int i = 0; i < n; i++) {
        const attnc_tensor_info *s = &info[i];
        if (s->optional) continue;
        int64_t cnt = count_of(s);
        attnc_tensor t;
        memset(&t, 0, sizeof t);
        t.name = s->name;
        t.ndim = s->ndim;
        for (int d = 0; d < s->ndim; d++) t.shape[d] = s->shape[d];
        if (s->role == ATTNC_ROLE_OUTPUT) {
            t.dtype = ATTNC_F64;
            tk[nt] = t;
            tr[nt] = t;
            tk[nt].data = mem[nm++] = calloc((size_t)(cnt > 0 ? cnt : 1), sizeof(double));
            tr[nt].data = mem[nm++] = calloc((size_t)(cnt > 0 ? cnt : 1), sizeof(double));
        } else {
            t.dtype = s->dtype;
            t.data = mem[nm++] = make_input(s, cnt, &seed);
            tk[nt] = t;
            tr[nt] = t;
        }
        if (!tk[nt].data || !tr[nt].data) {
            snprintf(why, whylen, "out of memory");
            goto done;
        }
        nt++;
    }
    if (attnc_launch(k, batch, seq, seq, tk, nt, NULL, &err) != ATTNC_OK ||
        attnc_launch(ref, batch, seq, seq, tr, nt, NULL, &err) != ATTNC_OK) {
        snprintf(why, whylen, "launch: %s", err.message);
        goto done;
    }
    worst = 0;
    for (int i = 0; i < nt; i++) {
        if (tk[i].dtype != ATTNC_F64) continue;
        int64_t cnt = 1;
        for (int d = 0; d < tk[i].ndim; d++) cnt *= tk[i].shape[d];
        const double *a = tk[i].data, *b = tr[i].data;
        for (int64_t e = 0; e < cnt; e++) {
            double diff = fabs(a[e] - b[e]);
            worst = isnan(diff) ? INFINITY : fmax(worst, diff);
        }
    }
done:
    for (int i = 0; i < nm; i++) free(mem[i]);
    return worst;
}

/* ---------------------------------------------------------------- one start */

/* Creates a context on cache_dir, compiles the 10 kernels (timed), checks them against ref
 * (untimed), emits the rows; returns the attnc time in ms, or -1 on failure. */
static double one_start(const char *phase, int run, const char *cache_dir) {
    attnc_options o;
    attnc_options_init(&o);
    o.target = "cpu";
    o.cache_dir = cache_dir;
    attnc_context *ctx = NULL;
    attnc_program *progs[N_KERNELS] = { 0 };
    attnc_kernel *ks[N_KERNELS] = { 0 };
    double spec_ms[N_KERNELS], get_ms[N_KERNELS];
    attnc_error err;
    char path[1024];

    double t0 = now_ms();
    if (attnc_context_create(&o, &ctx, &err) != ATTNC_OK) {
        emit("{\"bench\": \"start\", \"phase\": \"%s\", \"run\": %d, \"error\": \"context: %s\"}", phase, run, err.message);
        return -1;
    }
    double context_ms = now_ms() - t0;
    bool ok = true;
    for (int i = 0; i < N_KERNELS && ok; i++) {
        snprintf(path, sizeof path, "%s/examples/%s", ATTNC_SOURCE_DIR, KERNELS[i].file);
        double t1 = now_ms();
        ok = attnc_compile_file(ctx, path, &progs[i], &err) == ATTNC_OK;
        double t2 = now_ms();
        ok = ok && attnc_kernel_get(progs[i], KERNELS[i].kernel, &ks[i], &err) == ATTNC_OK;
        spec_ms[i] = t2 - t1;
        get_ms[i] = now_ms() - t2;
        if (!ok) emit("{\"bench\": \"kernel\", \"phase\": \"%s\", \"run\": %d, \"kernel\": \"%s\", \"error\": \"%s\"}", phase,
                      run, KERNELS[i].kernel, err.message);
    }
    double total_ms = now_ms() - t0;

    /* untimed: every kernel against the reference interpreter */
    attnc_context *ref = NULL;
    o.target = "ref";
    o.cache_dir = "";
    bool all_ok = ok && attnc_context_create(&o, &ref, &err) == ATTNC_OK;
    for (int i = 0; i < N_KERNELS && ok; i++) {
        attnc_program *rp = NULL;
        attnc_kernel *rk = NULL;
        char why[1200] = "";
        double max_err = -1;
        snprintf(path, sizeof path, "%s/examples/%s", ATTNC_SOURCE_DIR, KERNELS[i].file);
        if (ref && attnc_compile_file(ref, path, &rp, &err) == ATTNC_OK &&
            attnc_kernel_get(rp, KERNELS[i].kernel, &rk, &err) == ATTNC_OK)
            max_err = check_kernel(ks[i], rk, why, sizeof why);
        else
            snprintf(why, sizeof why, "ref: %s", err.message);
        attnc_program_destroy(rp);
        bool good = max_err >= 0 && max_err < 2e-2;   /* bf16/f16 kernels round their outputs */
        all_ok &= good;
        emit("{\"bench\": \"kernel\", \"phase\": \"%s\", \"run\": %d, \"kernel\": \"%s\", \"spec\": \"examples/%s\", "
             "\"spec_ms\": %.3f, \"get_ms\": %.3f, \"max_err\": %.3g%s%s%s}",
             phase, run, KERNELS[i].kernel, KERNELS[i].file, spec_ms[i], get_ms[i], max_err, why[0] ? ", \"error\": \"" : "",
             why, why[0] ? "\"" : "");
    }
    attnc_context_destroy(ref);
    emit("{\"bench\": \"start\", \"phase\": \"%s\", \"run\": %d, \"kernels\": %d, \"context_ms\": %.3f, \"total_ms\": %.3f, "
         "\"all_ok\": %s}",
         phase, run, N_KERNELS, context_ms, total_ms, all_ok ? "true" : "false");
    for (int i = 0; i < N_KERNELS; i++) attnc_program_destroy(progs[i]);
    attnc_context_destroy(ctx);
    return ok && all_ok ? total_ms : -1;
}

/* ---------------------------------------------------------------- driver */

static void machine_row(const char *note) {
    char model[256] = "?";
    FILE *ci = fopen("/proc/cpuinfo", "r");
    if (ci) {
        char line[512];
        while (fgets(line, sizeof line, ci))
            if (!strncmp(line, "model name", 10)) {
                const char *p = strchr(line, ':');
                if (p) snprintf(model, sizeof model, "%s", p + 2);
                model[strcspn(model, "\n")] = 0;
                break;
            }
        fclose(ci);
    }
    char date[64];
    time_t t = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    emit("{\"bench\": \"machine\", \"date\": \"%s\", \"cpu\": \"%s\", \"cores\": %ld, \"attnc\": \"%s\", \"note\": \"%s\"}",
         date, model, sysconf(_SC_NPROCESSORS_ONLN), attnc_version(), note);
}

/* The target label the cache's entries record. */
static void cache_label(const char *cache_dir, char *label, size_t len) {
    snprintf(label, len, "?");
    kernel_cache c;
    kernel_cache_entry_info *v = NULL;
    int n = 0;
    char err[1200];
    if (kernel_cache_open(&c, cache_dir, err, sizeof err) && kernel_cache_list(&c, &v, &n, err, sizeof err) && n > 0)
        snprintf(label, len, "%s", v[0].target);
    free(v);
}

/* Runs this program again for a warm start; relays its rows and returns its total. */
static double warm_child(const char *exe, const char *cache_dir, int run) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "'%s' --phase warm --run %d --cache-dir '%s'", exe, run, cache_dir);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    double total = -1;
    char line[4096];
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = 0;
        emit("%s", line);
        const char *m = strstr(line, "\"bench\": \"start\"");
        const char *tt = strstr(line, "\"total_ms\": ");
        if (m && tt && strstr(line, "\"all_ok\": true")) total = atof(tt + strlen("\"total_ms\": "));
    }
    return pclose(p) == 0 ? total : -1;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    const char *phase = NULL, *cache_dir = NULL, *out = NULL, *note = "";
    int warm = 3, run = 1;
    bool keep = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--phase") && i + 1 < argc) phase = argv[++i];
        else if (!strcmp(argv[i], "--cache-dir") && i + 1 < argc) cache_dir = argv[++i];
        else if (!strcmp(argv[i], "--run") && i + 1 < argc) run = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warm") && i + 1 < argc) warm = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--note") && i + 1 < argc) note = argv[++i];
        else if (!strcmp(argv[i], "--keep")) keep = true;
        else {
            fprintf(stderr, "usage: api_start_bench [--warm N] [--out FILE] [--note TEXT] [--keep]\n");
            return 2;
        }
    }
    if (phase) return one_start(phase, run, cache_dir) >= 0 ? 0 : 1;   /* a child: one start */
    if (warm < 1) warm = 1;
    if (warm > MAX_WARM) warm = MAX_WARM;
    if (out && !(g_out = fopen(out, "a"))) {
        fprintf(stderr, "cannot append to %s\n", out);
        return 2;
    }
    static char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) {
        fprintf(stderr, "cannot find this program's path\n");
        return 2;
    }
    exe[len] = 0;
    char dir[] = "/tmp/attnc-api-start-XXXXXX";
    if (!mkdtemp(dir)) {
        fprintf(stderr, "cannot create a cache directory\n");
        return 2;
    }
    machine_row(note);
    double cold = one_start("cold", 1, dir);
    char label[KERNEL_CACHE_LABEL_MAX];
    cache_label(dir, label, sizeof label);
    double warm_ms[MAX_WARM], sorted[MAX_WARM];
    bool all = cold >= 0;
    for (int r = 0; r < warm; r++) {
        warm_ms[r] = warm_child(exe, dir, r + 1);
        sorted[r] = warm_ms[r];
        all &= warm_ms[r] >= 0;
    }
    qsort(sorted, (size_t)warm, sizeof sorted[0], cmp_double);
    double median = sorted[warm / 2];
    char list[512] = "";
    for (int r = 0; r < warm; r++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%.2f", r ? ", " : "", warm_ms[r]);
    emit("{\"bench\": \"summary\", \"kernels\": %d, \"cold_ms\": %.1f, \"warm_ms\": [%s], \"warm_median_ms\": %.2f, "
         "\"target_ms\": %d, \"met\": %s, \"cache_target\": \"%s\"}",
         N_KERNELS, cold, list, median, TARGET_MS, all && median <= TARGET_MS ? "true" : "false", label);
    if (!keep) {
        char cmd[200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    } else {
        fprintf(stderr, "cache kept in %s\n", dir);
    }
    if (g_out) fclose(g_out);
    return all ? 0 : 1;
}
