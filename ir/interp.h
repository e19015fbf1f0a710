/* The float64 reference interpreter: the oracle for every backend test. It computes the
 * kernel contract of architecture.md literally, with no tiling and no approximation:
 * softmax attention costs O(batch · heads_q · seq_q · seq_k · (d_qk + d_v)), recurrences
 * O(batch · heads · seq · d_qk · d_v). Inputs of any dtype are widened to double; outputs
 * are written in the views' dtype (use ATTNC_F64 views for exact comparisons). */
#ifndef ATTNC_INTERP_H
#define ATTNC_INTERP_H
#include <stdbool.h>
#include "ir/ir.h"
#include "attnc/tensor.h"

/* tensors: inputs and outputs by signature name (ir/signature.h); o is required, lse /
 * state_out are written when present, state_in is read when present (else zeros).
 * Returns false with a message in err on a bad argument (shape, dtype, missing tensor). */
bool interp_run(const ir_kernel *k, int64_t batch, int64_t seq_q, int64_t seq_k,
                attnc_tensor *tensors, int n_tensors, char *err, size_t errlen);

/* Evaluates an expression at a point (also used by tests and by the mask analysis tests). */
typedef struct interp_env {
    double var[IR_VAR_COUNT];
    const ir_kernel *kernel;
    const attnc_tensor *inputs;     /* views of kernel->inputs, same order */
    int64_t batch, token, head, k_idx, v_idx;  /* current indices for implicit input reads */
} interp_env;
double interp_eval(const ir_expr *e, const interp_env *env);

#endif
