/* The "cuda" engine: a kernel is compiled (or read from the context's cache) and loaded
 * once, at lookup; launches take device pointers on a stream, or host tensors (copied to
 * the device and back, synchronously). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "codegen/cuda/cuda_kernel.h"
#include "codegen/cuda/cuda_launch.h"
#include "ir/signature.h"
#include "runtime/cuda_driver.h"
#include "runtime/engine.h"

typedef struct cuda_state {
    char arch[16];
    char target[24];               /* "cuda:" arch, for messages */
    int device;
    char *cache_dir;               /* NULL: no cache */
} cuda_state;

struct engine_kernel {
    cuda_kernel h;
};

static bool cuda_open(const engine_config *cfg, void **state, char *resolved, size_t resolved_len, attnc_error *err) {
    *state = NULL;
    char msg[sizeof err->message];
    cuda_driver drv;
    if (!cuda_driver_open(&drv, msg, sizeof msg)) {
        api_fail(err, ATTNC_ERR_TARGET_UNAVAILABLE, "target 'cuda' is unavailable: %s", msg);
        return false;
    }
    if (!cuda_driver_open_device(&drv, cfg->device, msg, sizeof msg)) {
        cuda_driver_close(&drv);
        api_fail(err, ATTNC_ERR_TARGET_UNAVAILABLE, "target 'cuda' is unavailable: %s", msg);
        return false;
    }
    cuda_state *s = calloc(1, sizeof *s);
    bool ok = s && cuda_pick_arch(cfg->arch, drv.cc_major, drv.cc_minor, s->arch, sizeof s->arch, msg, sizeof msg);
    cuda_driver_close(&drv);
    if (!s) {
        api_fail(err, ATTNC_ERR_OUT_OF_MEMORY, "out of memory opening target 'cuda'");
        return false;
    }
    if (!ok) {
        free(s);
        api_fail(err, ATTNC_ERR_TARGET_UNAVAILABLE, "target 'cuda': %s", msg);
        return false;
    }
    s->device = cfg->device;
    s->cache_dir = strdup(cfg->cache_dir ? cfg->cache_dir : "");
    if (!s->cache_dir) {
        free(s);
        api_fail(err, ATTNC_ERR_OUT_OF_MEMORY, "out of memory opening target 'cuda'");
        return false;
    }
    snprintf(s->target, sizeof s->target, "cuda:%s", s->arch);
    snprintf(resolved, resolved_len, "%s", s->target);
    *state = s;
    return true;
}

static void cuda_close(void *state) {
    cuda_state *s = state;
    if (s) free(s->cache_dir);
    free(s);
}

static engine_kernel *cuda_compile(void *state, const ir_kernel *k, attnc_error *err) {
    cuda_state *s = state;
    engine_kernel *ek = calloc(1, sizeof *ek);
    if (!ek) {
        api_fail(err, ATTNC_ERR_OUT_OF_MEMORY, "out of memory for kernel '%s'", k->name);
        return NULL;
    }
    char msg[sizeof err->message];
    /* cache_dir "" (the engine_config's NULL) turns the cache off */
    if (!cuda_kernel_load(&ek->h, k, s->arch, s->device, s->cache_dir, msg, sizeof msg)) {
        api_fail_backend(err, ATTNC_ERR_COMPILE, s->target, k->name, msg);
        free(ek);
        return NULL;
    }
    return ek;
}

static bool cuda_launch(void *state, engine_kernel *ek, int64_t batch, int64_t seq_q, int64_t seq_k,
                        attnc_tensor *tensors, int n, const engine_launch *opts, attnc_error *err) {
    cuda_state *s = state;
    char msg[sizeof err->message];
    bool ok;
    if (opts->device_pointers) {
        /* on the device attnc converts nothing: every view has the kernel's dtype */
        sig_tensor sig[SIG_MAX_TENSORS];
        int ns = ir_signature(ek->h.k, batch, seq_q, seq_k, sig);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < ns; j++)
                if (!strcmp(tensors[i].name, sig[j].name) && tensors[i].dtype != sig[j].dtype) {
                    api_fail(err, ATTNC_ERR_DTYPE, "tensor '%s': device pointers must have the kernel's dtype %s (got %s); "
                             "attnc converts dtypes only for host tensors", sig[j].name, attnc_dtype_name(sig[j].dtype),
                             attnc_dtype_name(tensors[i].dtype));
                    return false;
                }
        ok = cuda_kernel_launch(&ek->h, batch, seq_q, seq_k, tensors, n, opts->stream, NULL, msg, sizeof msg);
    } else if (opts->stream) {
        api_fail(err, ATTNC_ERR_UNSUPPORTED, "kernel '%s': a stream needs device pointers (launch option "
                 "device_pointers = 1); host tensors are copied and run synchronously", ek->h.k->name);
        return false;
    } else {
        ok = cuda_kernel_run_host(&ek->h, batch, seq_q, seq_k, tensors, n, NULL, msg, sizeof msg);
    }
    if (ok) return true;
    api_fail_backend(err, ATTNC_ERR_LAUNCH, s->target, ek->h.k->name, msg);
    return false;
}

static void cuda_release(void *state, engine_kernel *ek) {
    (void)state;
    cuda_kernel_unload(&ek->h);
    free(ek);
}

/* Split-KV partials for the split count a launch of these lengths picks on this device;
 * 0 for prefill. Taken from the stream-ordered pool at launch, returned in stream order. */
static int64_t cuda_workspace(void *state, engine_kernel *ek, int64_t batch, int64_t seq_q, int64_t seq_k) {
    (void)state;
    const cuda_kernel *h = &ek->h;
    int splits = cuda_plan_num_splits(&h->plan, h->k, batch, seq_q, seq_k, h->drv.sm_count);
    return (int64_t)cuda_workspace_bytes(h->k, &h->plan, batch, seq_q, splits);
}

static const engine_ops cuda_ops = { "cuda", cuda_open, cuda_close, cuda_compile, cuda_launch, cuda_release,
                                     cuda_workspace };

const engine_ops *engine_cuda_ops(void) { return &cuda_ops; }
