/* The "cpu" engine (attnc_llvm only).
 *
 * ADAPTER, to be replaced: it sits on the CPU backend's one-shot cpu_run (cpu_backend.h),
 * which JIT-compiles on first use into a process-wide cache keyed by the printed IR and
 * then launches on host memory. Until the backend offers a compile-once handle as part of
 * its interface (a cpu_compile returning the JIT'd kernel and a cpu_launch taking a
 * thread count), this engine:
 *   - compiles at lookup by launching once on zeroed tensors of batch 1 and length 1, so
 *     an unsupported kernel or a JIT failure is reported by attnc_kernel_get, and later
 *     launches find the code in cpu_run's cache;
 *   - runs every launch with cpu_run's thread count ($ATTNC_CPU_THREADS or every CPU):
 *     the context's `threads` option is not honoured yet;
 *   - keeps no on-disk cache (cpu_run has none). */
#include <stdio.h>
#include <stdlib.h>
#include "codegen/llvm/cpu_backend.h"
#include "ir/signature.h"
#include "runtime/engine.h"
#include "runtime/tensor_access.h"

struct engine_kernel {
    const ir_kernel *k;
};

static bool cpu_open(const engine_config *cfg, void **state, char *resolved, size_t resolved_len, attnc_error *err) {
    (void)cfg; (void)resolved; (void)resolved_len; (void)err;
    *state = NULL;
    return true;
}

static void cpu_close(void *state) { (void)state; }

/* One launch on the smallest non-empty problem: the JIT compiles on the way. */
static bool warm_up(const ir_kernel *k, char *msg, size_t msglen) {
    sig_tensor sig[SIG_MAX_TENSORS];
    attnc_tensor views[SIG_MAX_TENSORS];
    int n_sig = ir_signature(k, 1, 1, 1, sig), n = 0;
    bool ok = true;
    for (int i = 0; i < n_sig && ok; i++) {
        if (sig[i].optional) continue;
        attnc_tensor *t = &views[n];
        *t = (attnc_tensor){ .name = sig[i].name, .dtype = sig[i].dtype, .ndim = sig[i].ndim };
        for (int d = 0; d < sig[i].ndim; d++) t->shape[d] = sig[i].shape[d];
        int64_t count = tensor_count(t);
        t->data = count > 0 ? calloc((size_t)count, (size_t)attnc_dtype_size(t->dtype)) : NULL;
        if (!t->data) {
            snprintf(msg, msglen, "out of memory warming up kernel '%s'", k->name);
            ok = false;
            break;
        }
        n++;
    }
    if (ok) ok = cpu_run(k, 1, 1, 1, views, n, msg, msglen);
    for (int i = 0; i < n; i++) free(views[i].data);
    return ok;
}

static engine_kernel *cpu_compile(void *state, const ir_kernel *k, attnc_error *err) {
    (void)state;
    char msg[sizeof err->message];
    if (!warm_up(k, msg, sizeof msg)) {
        api_fail_backend(err, ATTNC_ERR_COMPILE, "cpu", k->name, msg);
        return NULL;
    }
    engine_kernel *ek = malloc(sizeof *ek);
    if (!ek) {
        api_fail(err, ATTNC_ERR_OUT_OF_MEMORY, "out of memory for kernel '%s'", k->name);
        return NULL;
    }
    ek->k = k;
    return ek;
}

static bool cpu_launch(void *state, engine_kernel *ek, int64_t batch, int64_t seq_q, int64_t seq_k,
                       attnc_tensor *tensors, int n, const engine_launch *opts, attnc_error *err) {
    (void)state; (void)opts;
    char msg[sizeof err->message];
    if (cpu_run(ek->k, batch, seq_q, seq_k, tensors, n, msg, sizeof msg)) return true;
    api_fail_backend(err, ATTNC_ERR_LAUNCH, "cpu", ek->k->name, msg);
    return false;
}

static void cpu_release(void *state, engine_kernel *ek) {
    (void)state;
    free(ek);
}

static const engine_ops cpu_ops = { "cpu", cpu_open, cpu_close, cpu_compile, cpu_launch, cpu_release };

const engine_ops *engine_cpu_ops(void) { return &cpu_ops; }
