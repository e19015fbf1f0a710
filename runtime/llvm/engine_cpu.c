/* The "cpu" engine (attnc_llvm only): compile once at attnc_kernel_get, launch many times.
 *
 * compile: cpu_compile_cached (codegen/llvm/cpu_runtime.h) through the context's on-disk
 *          kernel cache when it has one, so a later start of the program links the stored
 *          object instead of generating code again; the handle owns the JIT'd kernel.
 * launch:  cpu_launch with the context's `threads` (0 = $ATTNC_CPU_THREADS or every CPU,
 *          read at each launch). Launches of one handle may overlap: each borrows its own
 *          workspace from the handle's spares (one launch at a time reuses one, allocating
 *          nothing beyond temporaries for f64 output views).
 * Thread pools are the CPU backend's, shared by size across contexts. */
#include <stdio.h>
#include <stdlib.h>
#include "codegen/llvm/cpu_runtime.h"
#include "runtime/engine.h"
#include "runtime/kernel_cache.h"

typedef struct cpu_state {
    kernel_cache cache;
    bool has_cache;
    int threads;                   /* 0: resolved per launch */
} cpu_state;

struct engine_kernel {
    const ir_kernel *k;
    cpu_compiled *ck;
};

static bool cpu_open(const engine_config *cfg, void **state, char *resolved, size_t resolved_len, attnc_error *err) {
    (void)resolved; (void)resolved_len;
    cpu_state *s = calloc(1, sizeof *s);
    if (!s) {
        api_fail(err, ATTNC_ERR_OUT_OF_MEMORY, "out of memory creating the cpu engine");
        return false;
    }
    s->threads = cfg->threads;
    if (cfg->cache_dir) {
        char msg[1200];
        if (!kernel_cache_open(&s->cache, cfg->cache_dir, msg, sizeof msg)) {
            api_fail(err, ATTNC_ERR_IO, "%s; pass another cache_dir, or \"\" for no cache", msg);
            free(s);
            return false;
        }
        s->has_cache = true;
    }
    *state = s;
    return true;
}

static void cpu_close(void *state) { free(state); }

static engine_kernel *cpu_compile_kernel(void *state, const ir_kernel *k, attnc_error *err) {
    cpu_state *s = state;
    char msg[sizeof err->message];
    cpu_compiled *ck = cpu_compile_cached(k, s->has_cache ? &s->cache : NULL, NULL, msg, sizeof msg);
    if (!ck) {
        api_fail_backend(err, ATTNC_ERR_COMPILE, "cpu", k->name, msg);
        return NULL;
    }
    engine_kernel *ek = malloc(sizeof *ek);
    if (!ek) {
        cpu_compiled_free(ck);
        api_fail(err, ATTNC_ERR_OUT_OF_MEMORY, "out of memory for kernel '%s'", k->name);
        return NULL;
    }
    ek->k = k;
    ek->ck = ck;
    return ek;
}

static bool cpu_launch_kernel(void *state, engine_kernel *ek, int64_t batch, int64_t seq_q, int64_t seq_k,
                              attnc_tensor *tensors, int n, const engine_launch *opts, attnc_error *err) {
    cpu_state *s = state;
    (void)opts;
    char msg[sizeof err->message];
    if (cpu_launch(ek->ck, ek->k, s->threads, batch, seq_q, seq_k, tensors, n, msg, sizeof msg)) return true;
    api_fail_backend(err, ATTNC_ERR_LAUNCH, "cpu", ek->k->name, msg);
    return false;
}

static void cpu_release(void *state, engine_kernel *ek) {
    (void)state;
    if (!ek) return;
    cpu_compiled_free(ek->ck);
    free(ek);
}

static int64_t cpu_workspace(void *state, engine_kernel *ek, int64_t batch, int64_t seq_q, int64_t seq_k) {
    const cpu_state *s = state;
    return cpu_workspace_bytes(ek->ck, ek->k, s->threads, batch, seq_q, seq_k);
}

static const engine_ops cpu_ops = { "cpu", cpu_open, cpu_close, cpu_compile_kernel, cpu_launch_kernel, cpu_release,
                                    cpu_workspace };

const engine_ops *engine_cpu_ops(void) { return &cpu_ops; }
