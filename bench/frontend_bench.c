/* Frontend cost: parse + check + IR pipeline on generated files of N kernels, and on a
 * single model spec. Prints JSON lines: wall ms, ms per kernel, arena bytes and bytes
 * per source byte (memory should grow linearly with the file). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "frontend/frontend.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A mix of the language: GQA, rope with scaling, masks, score mods, recurrences. */
static char *generate(int n, size_t *len) {
    size_t cap = (size_t)n * 400 + 64, used = 0;
    char *s = malloc(cap);
    for (int i = 0; i < n; i++) {
        int kind = i % 4;
        int w;
        if (kind == 0)
            w = snprintf(s + used, cap - used,
                         "kernel k%d {\n  heads q = 32, kv = 8\n  dims qk = 128, v = 128\n  dtype bf16\n"
                         "  rope half, base = 500000,\n    scaling = llama3(factor = 8, low = 1, high = 4, original = 8192)\n"
                         "  mask causal\n}\n", i);
        else if (kind == 1)
            w = snprintf(s + used, cap - used,
                         "kernel k%d {\n  heads q = 16, kv = 8\n  dims qk = 256, v = 256\n  scale 1 / sqrt(256)\n"
                         "  rope half\n  score softcap(score, 50)\n  mask causal && q_idx - kv_idx < %d\n}\n", i, 1024 + i);
        else if (kind == 2)
            w = snprintf(s + used, cap - used,
                         "kernel k%d {\n  heads q = 128, kv = 1\n  latent rank = 512, rope = 64\n  scale 1 / sqrt(192)\n"
                         "  rope interleaved, scaling = yarn(factor = 40, original = 4096, mscale = 0.707)\n"
                         "  phase decode\n}\n", i);
        else
            w = snprintf(s + used, cap - used,
                         "kernel k%d : recurrence {\n  heads 80, groups = 1\n  dims k = 128, v = 64\n"
                         "  inputs dt[token, head], A_log[head], D[head]\n  decay exp(-dt * exp(A_log))\n"
                         "  update S = decay * S + outer(k, dt * v)\n  output q @ S + D * v\n}\n", i);
        used += (size_t)w;
    }
    *len = used;
    return s;
}

static int run(const char *label, const char *src, size_t len, int kernels, int reps) {
    double best = 1e30;
    size_t bytes = 0;
    for (int r = 0; r < reps; r++) {
        arena a;
        arena_init(&a);
        diag_sink d;
        diag_init(&d, label, src, len);
        double t0 = now_ms();
        ir_module *m = frontend_compile(src, len, &a, &d);
        if (d.n_errors == 0) ir_run_pipeline(m, &d, NULL, NULL);
        double t = now_ms() - t0;
        if (d.n_errors) { diag_print(&d, stderr); return 1; }
        if (m->n_kernels != kernels) { fprintf(stderr, "expected %d kernels, got %d\n", kernels, m->n_kernels); return 1; }
        if (t < best) best = t;
        bytes = a.bytes_used;
        diag_free(&d);
        arena_free(&a);
    }
    printf("{\"bench\":\"frontend\",\"input\":\"%s\",\"kernels\":%d,\"source_bytes\":%zu,\"ms\":%.3f,"
           "\"ms_per_kernel\":%.5f,\"arena_bytes\":%zu,\"arena_bytes_per_source_byte\":%.2f}\n",
           label, kernels, len, best, best / kernels, bytes, (double)bytes / (double)len);
    return 0;
}

int main(int argc, char **argv) {
    int status = 0;
    int sizes[] = {1000, 10000, 20000};
    for (int i = 0; i < 3; i++) {
        size_t len;
        char *src = generate(sizes[i], &len);
        char label[32];
        snprintf(label, sizeof label, "generated-%d", sizes[i]);
        status |= run(label, src, len, sizes[i], 3);
        free(src);
    }
    /* One real model spec, best of many runs. */
    const char *path = argc > 1 ? argv[1] : "examples/llama3_8b.attn";
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "cannot open %s\n", path); return 1; }
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    arena a;
    arena_init(&a);
    diag_sink d;
    diag_init(&d, path, buf, n);
    ir_module *m = frontend_compile(buf, n, &a, &d);
    int k = d.n_errors ? 0 : m->n_kernels;
    diag_free(&d);
    arena_free(&a);
    status |= run(path, buf, n, k, 200);
    return status;
}
