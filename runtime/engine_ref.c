/* The "ref" engine: the float64 interpreter behind the engine interface. Nothing to
 * compile; a launch is interp_run, which is reentrant, so handles need no lock. */
#include <stdlib.h>
#include "ir/interp.h"
#include "runtime/engine.h"

struct engine_kernel {
    const ir_kernel *k;
};

static bool ref_open(const engine_config *cfg, void **state, char *resolved, size_t resolved_len, attnc_error *err) {
    (void)cfg; (void)resolved; (void)resolved_len; (void)err;
    *state = NULL;
    return true;
}

static void ref_close(void *state) { (void)state; }

static engine_kernel *ref_compile(void *state, const ir_kernel *k, attnc_error *err) {
    (void)state;
    engine_kernel *ek = malloc(sizeof *ek);
    if (!ek) {
        api_fail(err, ATTNC_ERR_OUT_OF_MEMORY, "out of memory for kernel '%s'", k->name);
        return NULL;
    }
    ek->k = k;
    return ek;
}

static bool ref_launch(void *state, engine_kernel *ek, int64_t batch, int64_t seq_q, int64_t seq_k,
                       attnc_tensor *tensors, int n, const engine_launch *opts, attnc_error *err) {
    (void)state; (void)opts;
    char msg[sizeof err->message];
    if (interp_run(ek->k, batch, seq_q, seq_k, tensors, n, msg, sizeof msg)) return true;
    api_fail_backend(err, ATTNC_ERR_LAUNCH, "ref", ek->k->name, msg);
    return false;
}

static void ref_release(void *state, engine_kernel *ek) {
    (void)state;
    free(ek);
}

/* The interpreter allocates its own float64 temporaries; they are not a launch's workspace. */
static int64_t ref_workspace(void *state, engine_kernel *ek, int64_t batch, int64_t seq_q, int64_t seq_k) {
    (void)state; (void)ek; (void)batch; (void)seq_q; (void)seq_k;
    return 0;
}

static const engine_ops ref_ops = { "ref", ref_open, ref_close, ref_compile, ref_launch, ref_release, ref_workspace };

const engine_ops *engine_ref_ops(void) { return &ref_ops; }
