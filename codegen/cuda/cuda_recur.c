/* Recurrence kernels (linear attention / SSM) for the CUDA backend: a simple, correct SIMT
 * form. Placeholder until written. */
#include <stdio.h>
#include "codegen/cuda/cuda_emit.h"

bool cuda_emit_recurrence(FILE *out, const ir_kernel *k, const cuda_plan *p, char *err, size_t errlen);

bool cuda_emit_recurrence(FILE *out, const ir_kernel *k, const cuda_plan *p, char *err, size_t errlen) {
    (void)out; (void)p;
    snprintf(err, errlen, "kernel '%s': recurrences are not supported by the CUDA backend yet", k->name);
    return false;
}
