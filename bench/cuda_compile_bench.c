/* Compile latency of the CUDA backend, as JSON lines (one per kernel and arch):
 *   cold: spec text -> IR (frontend + passes) -> CUDA C -> NVRTC CUBIN, empty cache;
 *   hit:  the same kernel again through the on-disk cache (emit + key + verified load),
 *         plus cuModuleLoadData when a GPU is present.
 * Usage: cuda_compile_bench [--arch sm_80] [--repeat N] [--cold-repeat N] [--one-program] [SPEC.attn ...]
 *        (default: examples/). cold_ms is the best of --cold-repeat compiles (3), cold_first_ms
 *        the first. Entry points compile as concurrent programs, as the JIT does; --one-program
 *        compiles the module as one program (as `attnc build` does), for an A/B in one build.
 * Targets (issue 4): cold <= 500 ms per kernel, cache hit <= 5 ms. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "codegen/cuda/cuda_compile.h"
#include "frontend/frontend.h"
#include "runtime/cuda_driver.h"

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static ir_module *compile_text(const char *src, arena *a) {
    diag_sink d;
    diag_init(&d, "<bench>", src, strlen(src));
    ir_module *m = frontend_compile(src, strlen(src), a, &d);
    if (d.n_errors == 0) ir_run_pipeline(m, &d, NULL, NULL);
    if (d.n_errors) diag_print(&d, stderr);
    bool ok = d.n_errors == 0;
    diag_free(&d);
    return ok ? m : NULL;
}

typedef struct bench_ctx {
    nvrtc_lib lib;
    kernel_cache cold_cache, warm_cache;
    cuda_driver drv;
    bool have_gpu;
    int repeat;
    int cold_repeat;
    bool split;                /* one NVRTC program per entry point (the JIT's way) */
} bench_ctx;

static void bench_file(bench_ctx *b, const char *path, const char **archs, int n_archs) {
    char *text = read_text(path);
    if (!text) {
        fprintf(stderr, "cannot read %s\n", path);
        return;
    }
    for (int ai = 0; ai < n_archs; ai++) {
        arena a;
        arena_init(&a);
        double t0 = now_ms();
        ir_module *m = compile_text(text, &a);
        double frontend_ms = now_ms() - t0;
        for (int i = 0; m && i < m->n_kernels; i++) {
            const ir_kernel *k = m->kernels[i];
            char err[16384];
            cuda_compiled c;
            /* cold: nothing cached (a fresh directory per run) */
            double t1 = now_ms();
            bool ok = cuda_compile_kernel(k, archs[ai], &b->cold_cache, &b->lib, b->split, &c, err, sizeof err);
            double cold_ms = now_ms() - t1 + frontend_ms / m->n_kernels;
            if (!ok) {
                printf("{\"bench\": \"cuda_compile\", \"kernel\": \"%s\", \"arch\": \"%s\", \"error\": \"compile failed\"}\n",
                       k->name, archs[ai]);
                continue;
            }
            size_t cubin = c.image_size;
            int kind = c.plan.kind;
            const void *part[CUDA_MAX_PARTS];
            size_t part_size[CUDA_MAX_PARTS];
            int programs = cuda_image_parts(c.image, c.image_size, part, part_size);
            cuda_compiled_free(&c);
            /* cold again, without the cache: best of N, since one timing on a shared 2-core
               machine varies by a third between runs */
            double cold_first_ms = cold_ms;
            for (int r = 1; r < b->cold_repeat; r++) {
                double t = now_ms();
                if (!cuda_compile_kernel(k, archs[ai], NULL, &b->lib, b->split, &c, err, sizeof err)) break;
                double ms = now_ms() - t + frontend_ms / m->n_kernels;
                cuda_compiled_free(&c);
                if (ms < cold_ms) cold_ms = ms;
            }
            /* hit: best of N (the first one also pays for the page cache) */
            double hit_ms = 1e30, load_ms = -1;
            for (int r = 0; r < b->repeat; r++) {
                double t2 = now_ms();
                ok = cuda_compile_kernel(k, archs[ai], &b->cold_cache, NULL, b->split, &c, err, sizeof err);
                double ms = now_ms() - t2;
                if (ok && ms < hit_ms) hit_ms = ms;
                if (ok && b->have_gpu) {
                    const void *part[CUDA_MAX_PARTS];
                    size_t part_size[CUDA_MAX_PARTS];
                    int np = cuda_image_parts(c.image, c.image_size, part, part_size), loaded = 0;
                    void *mod[CUDA_MAX_PARTS] = {NULL};
                    double t3 = now_ms();
                    while (loaded < np && b->drv.module_load_data(&mod[loaded], part[loaded]) == 0) loaded++;
                    double lm = now_ms() - t3;
                    if (np > 0 && loaded == np && (load_ms < 0 || lm < load_ms)) load_ms = lm;
                    for (int i = 0; i < loaded; i++) b->drv.module_unload(mod[i]);
                }
                if (ok) cuda_compiled_free(&c);
            }
            char load[32];
            if (load_ms < 0) snprintf(load, sizeof load, "null");
            else snprintf(load, sizeof load, "%.3f", load_ms);
            printf("{\"bench\": \"cuda_compile\", \"kernel\": \"%s\", \"arch\": \"%s\", \"kind\": \"%s\", "
                   "\"programs\": %d, \"cold_ms\": %.1f, \"cold_first_ms\": %.1f, \"cold_runs\": %d, \"frontend_ms\": %.2f, \"cache_hit_ms\": %.3f, \"module_load_ms\": %s, "
                   "\"cubin_bytes\": %zu, \"cold_target_met\": %s, \"hit_target_met\": %s}\n",
                   k->name, archs[ai], kind == CUDA_KIND_MMA ? "mma" : kind == CUDA_KIND_SIMT ? "simt" : "recurrence",
                   programs, cold_ms, cold_first_ms, b->cold_repeat, frontend_ms / m->n_kernels, hit_ms, load, cubin, cold_ms <= 500 ? "true" : "false",
                   hit_ms + (load_ms > 0 ? load_ms : 0) <= 5 ? "true" : "false");
            fflush(stdout);
        }
        arena_free(&a);
    }
    free(text);
}

int main(int argc, char **argv) {
    bench_ctx b;
    memset(&b, 0, sizeof b);
    b.repeat = 5;
    b.cold_repeat = 3;
    b.split = true;
    const char *archs[4] = {"sm_80", "sm_90a"};
    int n_archs = 2;
    const char *files[64];
    int n_files = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--arch") && i + 1 < argc) archs[0] = argv[++i], n_archs = 1;
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) b.repeat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--cold-repeat") && i + 1 < argc) b.cold_repeat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--one-program")) b.split = false;
        else if (n_files < 64) files[n_files++] = argv[i];
    }
    char err[2048];
    double t0 = now_ms();
    if (!nvrtc_open(&b.lib, err, sizeof err)) {
        fprintf(stderr, "cuda_compile_bench: %s\n", err);
        return 1;
    }
    printf("{\"bench\": \"nvrtc_open\", \"ms\": %.1f, \"nvrtc\": \"%d.%d\"}\n", now_ms() - t0, b.lib.major, b.lib.minor);
    char dir[] = "/tmp/attnc-bench-cache-XXXXXX";
    if (!mkdtemp(dir) || !kernel_cache_open(&b.cold_cache, dir, err, sizeof err)) {
        fprintf(stderr, "cuda_compile_bench: no cache directory: %s\n", err);
        return 1;
    }
    b.have_gpu = cuda_driver_open(&b.drv, err, sizeof err) && cuda_driver_open_device(&b.drv, -1, err, sizeof err);
    if (!b.have_gpu) printf("{\"bench\": \"note\", \"text\": \"no GPU: cache-hit time excludes cuModuleLoadData\"}\n");
    if (n_files) {
        for (int i = 0; i < n_files; i++) bench_file(&b, files[i], archs, n_archs);
    } else {
        char edir[600];
        snprintf(edir, sizeof edir, "%s/examples", ATTNC_SOURCE_DIR);
        DIR *d = opendir(edir);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            size_t n = strlen(e->d_name);
            if (n < 6 || strcmp(e->d_name + n - 5, ".attn") != 0) continue;
            char path[1200];
            snprintf(path, sizeof path, "%s/%s", edir, e->d_name);
            bench_file(&b, path, archs, n_archs);
        }
        if (d) closedir(d);
    }
    if (b.drv.handle) cuda_driver_close(&b.drv);
    nvrtc_close(&b.lib);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
