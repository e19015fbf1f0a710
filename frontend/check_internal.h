/* Private interface of the checker, shared by its files: check.c (kernels and the softmax
 * clauses), check_expr.c (expressions and built-ins), check_values.c (constant arguments),
 * check_rope.c and check_recurrence.c. */
#ifndef ATTNC_CHECK_INTERNAL_H
#define ATTNC_CHECK_INTERNAL_H
#include <stdbool.h>
#include "frontend/frontend.h"

enum { FAM_SOFTMAX = 1, FAM_RECURRENCE = 2, FAM_BOTH = 3 };

typedef enum clause_id {
    CL_HEADS, CL_DIMS, CL_DTYPE, CL_PHASE, CL_INPUTS,
    CL_SCALE, CL_LATENT, CL_ROPE, CL_SCORE, CL_MASK,                     /* softmax only */
    CL_DECAY, CL_FEATURE, CL_NORMALIZE, CL_UPDATE, CL_OUTPUT, CL_CHUNK,  /* recurrence only */
    CL_COUNT
} clause_id;

/* Where an expression stands decides which names it may read. */
typedef enum expr_where {
    EX_CONST,       /* a constant argument (heads, dims, scale, rope parameters, ...) */
    EX_SCORE,       /* softmax `score`: score, index variables, inputs */
    EX_MASK,        /* softmax `mask`: index variables, inputs */
    EX_DECAY,       /* recurrence `decay`: head, inputs */
    EX_FEATURE,     /* recurrence `feature`: x only */
    EX_VSCALE,      /* the E of `outer(k, E * v)`: head, token/head inputs */
    EX_SKIP,        /* the D of `q @ S + D * v`: head, head/v inputs */
} expr_where;

/* Per-kernel checking state. */
typedef struct kcheck {
    arena *a;
    diag_sink *d;
    const ast_kernel *ast;
    ir_kernel *k;
    int family;                         /* FAM_SOFTMAX or FAM_RECURRENCE */
    const ast_clause *clause[CL_COUNT]; /* first occurrence of each clause */
    bool shape_ok;                      /* heads and head dims are known and valid */
    bool dims_ok;                       /* head dims (d_qk, d_v) are known and valid */
    bool decay_has_v;                   /* the decay reads an input with a v axis */
    bool incomplete;                    /* a required clause is missing (after a syntax error,
                                           unreported): the kernel is not added */
    const char *what;                   /* EX_CONST: what the constant is, for messages */
    const char *poisoned[16];           /* inputs whose declaration had errors: uses stay silent */
    int n_poisoned;
    int depth;                          /* expression nesting, bounded against stack overflow */
} kcheck;

/* ---- check_expr.c */

/* Lowers an expression to IR, checking names and types for the place `w`; `what` names
 * the value in messages ("the scale", "q heads"). Returns NULL after reporting errors. */
ir_expr *lower_expr(kcheck *kc, const ast_node *n, expr_where w, const char *what);
/* "a boolean", "an integer", "a float". */
const char *type_phrase(ir_type t);
/* The source text of loc quoted ('q_idx - kv_idx') when short and on one line, else
 * `fallback`. Writes into buf. */
const char *quote_src(const kcheck *kc, src_loc loc, const char *fallback, char *buf, size_t n);
bool is_reserved_name(const char *name);

/* ---- check_values.c */

typedef enum ce_result { CE_CONST, CE_VARIABLE, CE_ERROR } ce_result;
/* Evaluates e when it is constant; reports constant subexpressions without a real value
 * (1 / 0, sqrt(-1), overflow) anywhere inside e, constant or not. */
ce_result const_eval(kcheck *kc, const ir_expr *e, double *out);
/* A constant integer argument in [lo, hi]; false after reporting. */
bool const_int(kcheck *kc, const ast_node *n, const char *what, long lo, long hi, int *out);
/* A constant real argument (ints allowed), finite; false after reporting. */
bool const_real(kcheck *kc, const ast_node *n, const char *what, double *out);
/* did-you-mean: diag_closest, plus a swap of two neighbouring letters. */
const char *closest_name(const char *name, const char *const *candidates, int n);
/* Formats a number as the spec would write it: 128, 0.5, 1e+06. */
const char *fmt_num(double v, char *buf, size_t n);

/* Named / positional argument binding for clauses and calls. */
typedef struct param {
    const char *name;
    bool required;
    bool positional;   /* may be given by position (in this order) */
    bool named;        /* may be given as name = value */
} param;
/* Binds args to params: out[i] receives the value node of param i or NULL. `owner`
 * names the clause or call in messages, `usage` is an example that would be right.
 * Reports unknown, repeated, misplaced and missing arguments; false if any. */
bool bind_args(kcheck *kc, const char *owner, src_loc owner_loc, const char *usage,
               ast_node *const *args, int n_args, const param *ps, int n_ps, const ast_node **out);

/* ---- check_rope.c */
void check_rope(kcheck *kc, const ast_clause *cl);

/* ---- check_recurrence.c */
void check_recurrence_heads(kcheck *kc, const ast_clause *cl);
void check_recurrence_dims(kcheck *kc, const ast_clause *cl);
void check_recurrence_body(kcheck *kc);   /* decay, feature, normalize, update, output, chunk */

/* ---- check.c */
/* The single expression argument of a clause; reports a missing or extra argument. */
const ast_node *single_arg(kcheck *kc, const ast_clause *cl, const char *usage);
/* Suggests a divisor of n close to m ("such as 8"). */
int nearest_divisor(int n, int m);

#endif
