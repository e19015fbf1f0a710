/* The launch signature of a kernel: every tensor it reads or writes, with dtype and shape
 * for given run-time lengths. One place, used by the CLI to check .npy inputs, by the
 * interpreter and by every backend's launch validation. */
#ifndef ATTNC_SIGNATURE_H
#define ATTNC_SIGNATURE_H
#include <stdbool.h>
#include "ir/ir.h"
#include "attnc/tensor.h"

typedef enum sig_role { SIG_IN, SIG_OUT } sig_role;

typedef struct sig_tensor {
    const char *name;
    sig_role role;
    bool optional;                  /* lse, state_in, state_out (softmax lse is optional) */
    attnc_dtype dtype;              /* q/k/v/o: the kernel dtype; lse/state: f32; inputs: f32/i32 */
    int ndim;
    int64_t shape[ATTNC_MAX_DIMS];
    /* --- addition (interpreter/signature owner): the name of each dimension, e.g.
     * "batch", "seq_k", "heads_kv", "d_qk", for messages that say what a shape means. */
    const char *dim_names[ATTNC_MAX_DIMS];
} sig_tensor;

enum { SIG_MAX_TENSORS = 24 };

/* Lists the tensors in a fixed order: q, k, [v], [positions], declared inputs..., [state_in],
 * o, [lse | state_out]. Softmax: seq_q rows against seq_k keys (decode: seq_q is usually 1).
 * Recurrence: seq_q == seq_k == seq. Returns the count. */
int ir_signature(const ir_kernel *k, int64_t batch, int64_t seq_q, int64_t seq_k, sig_tensor *out);

/* Finds a tensor by name in a list of views; NULL if absent. */
const attnc_tensor *sig_find(const attnc_tensor *ts, int n, const char *name);

/* Checks views against the signature: every required tensor present, dtype and shape
 * equal, no unknown names. Outputs (o, lse, state_out) are also accepted as ATTNC_F64
 * views (the interpreter writes any float dtype; a backend rejects f64 itself). On
 * failure writes "tensor 'k': expected shape [2, 17, 8, 128] (batch, seq_k, heads_kv,
 * d_qk), got [2, 17, 8, 64]" style text to err and returns false. */
bool sig_check(const sig_tensor *sig, int n_sig, const attnc_tensor *ts, int n, char *err, size_t errlen);

/* Element size in bytes. */
int attnc_dtype_size(attnc_dtype t);
const char *attnc_dtype_name(attnc_dtype t);

#endif
