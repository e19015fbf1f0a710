/* The "cuda" engine.
 *
 * ADAPTER, to be replaced: the CUDA backend exposes only the one-shot cuda_run (compile
 * through the cache, copy host tensors in, launch, copy out, per call). Until it offers
 * compile-once entry points (a cuda_compile returning a loaded module handle and a
 * cuda_launch taking device pointers, a stream and a device), this engine:
 *   - checks at context creation that libcuda, a device and the requested arch work here;
 *   - "compiles" by emitting the CUDA C once (cuda_emit_source), so a kernel the backend
 *     cannot plan fails at lookup; NVRTC runs (or the cache answers) at the first launch;
 *   - launches host tensors with cuda_run, which picks the device itself
 *     ($ATTNC_CUDA_DEVICE or 0, so only that device is accepted) and uses the default
 *     cache directory, not the context's;
 *   - refuses device pointers and streams with ATTNC_ERR_UNSUPPORTED. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "codegen/cuda/cuda_backend.h"
#include "codegen/cuda/cuda_launch.h"
#include "runtime/cuda_driver.h"
#include "runtime/engine.h"

typedef struct cuda_state {
    char arch[16];
    char target[24];               /* "cuda:" arch, for messages */
} cuda_state;

struct engine_kernel {
    const ir_kernel *k;
};

static bool cuda_open(const engine_config *cfg, void **state, char *resolved, size_t resolved_len, attnc_error *err) {
    *state = NULL;
    const char *env = getenv("ATTNC_CUDA_DEVICE");
    int default_device = env && *env ? atoi(env) : 0;
    if (cfg->device >= 0 && cfg->device != default_device) {
        api_fail(err, ATTNC_ERR_UNSUPPORTED, "device %d: this attnc launches CUDA kernels on device %d only "
                 "($ATTNC_CUDA_DEVICE or 0); set ATTNC_CUDA_DEVICE=%d or pass device -1", cfg->device, default_device,
                 cfg->device);
        return false;
    }
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
    snprintf(s->target, sizeof s->target, "cuda:%s", s->arch);
    snprintf(resolved, resolved_len, "%s", s->target);
    *state = s;
    return true;
}

static void cuda_close(void *state) { free(state); }

static engine_kernel *cuda_compile(void *state, const ir_kernel *k, attnc_error *err) {
    cuda_state *s = state;
    char msg[sizeof err->message];
    FILE *sink = fopen("/dev/null", "w");
    if (!sink) {
        api_fail(err, ATTNC_ERR_INTERNAL, "cannot open /dev/null to check kernel '%s'", k->name);
        return NULL;
    }
    bool ok = cuda_emit_source(k, s->arch, sink, msg, sizeof msg);
    fclose(sink);
    if (!ok) {
        api_fail_backend(err, ATTNC_ERR_COMPILE, s->target, k->name, msg);
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

static bool cuda_launch(void *state, engine_kernel *ek, int64_t batch, int64_t seq_q, int64_t seq_k,
                        attnc_tensor *tensors, int n, const engine_launch *opts, attnc_error *err) {
    cuda_state *s = state;
    if (opts->device_pointers || opts->stream) {
        api_fail(err, ATTNC_ERR_UNSUPPORTED, "kernel '%s': %s are not supported yet by this attnc's CUDA path; pass host "
                 "tensors and NULL launch options (attnc copies them to the device and back)", ek->k->name,
                 opts->device_pointers ? "device pointers" : "streams");
        return false;
    }
    char msg[sizeof err->message];
    if (cuda_run(ek->k, s->arch, batch, seq_q, seq_k, tensors, n, msg, sizeof msg)) return true;
    api_fail_backend(err, ATTNC_ERR_LAUNCH, s->target, ek->k->name, msg);
    return false;
}

static void cuda_release(void *state, engine_kernel *ek) {
    (void)state;
    free(ek);
}

static const engine_ops cuda_ops = { "cuda", cuda_open, cuda_close, cuda_compile, cuda_launch, cuda_release };

const engine_ops *engine_cuda_ops(void) { return &cuda_ops; }
