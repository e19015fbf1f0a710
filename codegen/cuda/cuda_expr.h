/* IR expression DAGs -> CUDA C device functions (the one expression emitter of the CUDA
 * backend). Emits straight-line SSA code: one const local per DAG node, so shared
 * subexpressions are computed once and the text stays linear in the DAG size. */
#ifndef ATTNC_CUDA_EXPR_H
#define ATTNC_CUDA_EXPR_H
#include <stdbool.h>
#include <stdio.h>
#include "ir/ir.h"

/* The C names of the index variables inside an emitted function. */
typedef struct cuda_expr_names {
    const char *var[IR_VAR_COUNT];      /* NULL: the variable must not occur */
    const char *args;                   /* expression of type `const attnc_args *` */
    const char *implicit[4];            /* recurrence inputs read without indices: the current
                                           index per ir_axis (token, head, k, v) */
} cuda_expr_names;

/* Emits `ATTNC_DEVICE <type> fn_name(params) { ...; return e; }`. params is the parameter
 * list text; names says how each variable is spelled. Input reads are bounds-checked
 * (an index outside the tensor reads 0). */
void cuda_emit_expr_function(FILE *out, const ir_kernel *k, const ir_expr *e, const char *fn_name,
                             const char *params, const cuda_expr_names *names);

/* Emits `ATTNC_DEVICE int fn_name(i64 q_lo, i64 q_hi, i64 kv_lo, i64 kv_hi, i64 h_lo, i64 h_hi,
 * i64 batch, i64 seq_q, i64 seq_k)`: a sound interval evaluation of the boolean mask over
 * that rectangle, returning 0 (false everywhere), 1 (true everywhere) or 2 (mixed or
 * unknown). Mirrors ir_mask_classify so tiles can be skipped or run unmasked on the device. */
void cuda_emit_mask_class_function(FILE *out, const ir_kernel *k, const ir_expr *mask, const char *fn_name);

/* A float literal that both nvcc and a C compiler read back exactly (inf/nan included). */
void cuda_format_float(char *buf, size_t len, double v);

#endif
