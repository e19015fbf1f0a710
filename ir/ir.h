/* The attention IR: a kernel descriptor (family, phase, heads, dims, dtypes, RoPE plan,
 * recurrence form) plus small typed expression DAGs for the parts a spec writes as
 * formulas (score modifier, mask predicate, decay, feature map, value scale, skip).
 * Everything a spec fixes is a constant here; batch and sequence lengths stay run-time.
 * The frontend builds it, passes (ir/passes.c) refine it, the interpreter (ir/interp.c)
 * gives it meaning, and the backends only emit it. */
#ifndef ATTNC_IR_H
#define ATTNC_IR_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "util/arena.h"
#include "util/diag.h"

/* ---------------------------------------------------------------- expressions */

typedef enum ir_type { IR_T_BOOL, IR_T_INT, IR_T_FLOAT } ir_type;

typedef enum ir_op {
    IR_CONST,                 /* value (bool: 0/1; int: integral double) */
    IR_VAR,                   /* var */
    IR_INPUT,                 /* declared input `input`; args = index expressions (see below) */
    /* unary */
    IR_NEG, IR_NOT, IR_EXP, IR_LOG, IR_TANH, IR_SQRT, IR_ABS, IR_FLOOR, IR_TO_FLOAT,
    /* binary */
    IR_ADD, IR_SUB, IR_MUL, IR_DIV /* real division */, IR_IDIV /* floor division, ints */,
    IR_MOD /* ints, result has the sign of the divisor */, IR_POW, IR_MIN, IR_MAX,
    IR_LT, IR_LE, IR_GT, IR_GE, IR_EQ, IR_NE, IR_AND, IR_OR,
    /* ternary */
    IR_SELECT,                /* args[0] ? args[1] : args[2] */
    IR_OP_COUNT
} ir_op;

typedef enum ir_var {
    IR_VAR_Q_IDX,             /* query position in the key sequence (bottom-right aligned) */
    IR_VAR_KV_IDX,            /* key position */
    IR_VAR_HEAD,              /* query head (softmax) or head (recurrence) */
    IR_VAR_BATCH,
    IR_VAR_SCORE,             /* the scaled score q·k·scale, inside `score` expressions */
    IR_VAR_SEQ_Q, IR_VAR_SEQ_K,
    IR_VAR_X,                 /* the argument of a feature map */
    IR_VAR_COUNT
} ir_var;

typedef struct ir_expr ir_expr;
struct ir_expr {
    ir_op op;
    ir_type type;
    double value;             /* IR_CONST */
    ir_var var;               /* IR_VAR */
    int input;                /* IR_INPUT: index into ir_kernel.inputs */
    int n_args;
    ir_expr *args[4];         /* operands; IR_INPUT: one index per declared axis (softmax
                                 family), or none (recurrence: the current token/head/k/v) */
    src_loc loc;              /* where the spec wrote it (0 for synthesised nodes) */
};

/* ---------------------------------------------------------------- inputs */

typedef enum ir_axis { IR_AXIS_TOKEN, IR_AXIS_HEAD, IR_AXIS_K, IR_AXIS_V } ir_axis;
typedef enum ir_scalar { IR_S_F32, IR_S_I32 } ir_scalar;

/* A declared extra input. Run-time shape: a TOKEN axis contributes [batch, seq] (softmax:
 * seq_k, so index it by q_idx or kv_idx; recurrence: seq), HEAD contributes [heads_q]
 * (recurrence: heads), K [d_qk], V [d_v], in declaration order. */
typedef struct ir_input {
    const char *name;
    int n_axes;
    ir_axis axes[4];
    ir_scalar scalar;
    src_loc loc;
} ir_input;

/* ---------------------------------------------------------------- RoPE */

typedef enum ir_rope_layout { IR_ROPE_NONE, IR_ROPE_HALF, IR_ROPE_INTERLEAVED } ir_rope_layout;
typedef enum ir_rope_scaling {
    IR_SCALE_NONE, IR_SCALE_LINEAR, IR_SCALE_NTK, IR_SCALE_DYNAMIC_NTK, IR_SCALE_YARN, IR_SCALE_LLAMA3
} ir_rope_scaling;

typedef struct ir_rope {
    ir_rope_layout layout;
    int dim_lo, dim_hi;            /* rotary dims [lo, hi) of the qk head dim; pairs = (hi-lo)/2 */
    double base;                   /* default 10000 */
    ir_rope_scaling scaling;
    double factor;                 /* linear, ntk, dynamic_ntk, yarn, llama3 */
    double original;               /* original context: dynamic_ntk, yarn, llama3 */
    double low_freq_factor, high_freq_factor;   /* llama3 (low, high) */
    double beta_fast, beta_slow, mscale;        /* yarn (defaults 32, 1, 1) */
    int n_sections;                /* 0 or 1: one axis; >1: multi-axis (M-RoPE, RoPE-2D) */
    int sections[4];               /* pairs per axis, summing to the pair count */
    bool explicit_positions;       /* positions come from the `positions` input, shape
                                      [batch, seq_k, max(1, n_sections)] int32; otherwise
                                      q_idx / kv_idx on every axis */
    int rerope_window;             /* > 0: ReRoPE, relative position clipped at the window */
    double rerope_leak;            /* > 0: Leaky ReRoPE, beyond the window rel = w + (t-i-w)/leak */
    /* Filled by the plan-rope pass. */
    bool planned;
    int n_pairs;
    double *inv_freq;              /* [n_pairs] angle per position unit (static part of the plan) */
    int *pair_axis;                /* [n_pairs] which position axis drives pair j */
    double attn_factor;            /* multiplies the softmax scale (YaRN's temperature, squared) */
} ir_rope;

/* Pair j of a planned RoPE rotates dims (pair_dim0, pair_dim1): half layout (lo+j, lo+j+P),
 * interleaved (lo+2j, lo+2j+1). */
int ir_rope_pair_dim0(const ir_rope *r, int j);
int ir_rope_pair_dim1(const ir_rope *r, int j);
/* Frequencies for a run with key length seq_k (dynamic NTK depends on it; every other
 * scaling returns the static plan). out has n_pairs entries. */
void ir_rope_inv_freq_at(const ir_rope *r, int64_t seq_k, double *out);
/* Fills inv_freq/pair_axis/attn_factor from the scaling parameters (the plan-rope pass). */
void ir_rope_plan(ir_rope *r, arena *a);

/* ---------------------------------------------------------------- value bounds (interval.c) */

/* The largest batch or sequence length a launch accepts (attnc_launch, cpu_launch and the
 * CPU objects' entry reject longer ones), so positions and shape products stay far inside
 * int64, and code generators may rely on it. */
#define IR_MAX_LENGTH INT64_C(0x7fffffff)

/* Bounds of the int expression e over every launch (lengths <= IR_MAX_LENGTH, query heads
 * below `heads`): false when none are known (e reads an input, or may exceed 2^52). */
bool ir_expr_int_bounds(const ir_expr *e, int heads, int64_t *lo, int64_t *hi);

/* ---------------------------------------------------------------- mask analysis */

typedef enum ir_mask_class { IR_MASK_ALL_FALSE, IR_MASK_ALL_TRUE, IR_MASK_MIXED } ir_mask_class;

/* Closed ranges of the index variables over a q-tile x kv-tile rectangle. */
typedef struct ir_rect {
    int64_t q_lo, q_hi;            /* q_idx range (absolute, bottom-right aligned) */
    int64_t kv_lo, kv_hi;
    int64_t head_lo, head_hi;
    int64_t batch_lo, batch_hi;
    int64_t seq_q, seq_k;          /* the run's lengths */
} ir_rect;

/* Sound interval analysis: ALL_TRUE / ALL_FALSE only when that holds for every point of
 * the rectangle; MIXED otherwise (including whenever an input is read). A kernel without
 * a mask is ALL_TRUE everywhere. */
ir_mask_class ir_mask_classify(const ir_expr *mask, const ir_rect *r);

/* Band form found by the analyze-mask pass: when has_band, mask implies
 * band_lo <= q_idx - kv_idx <= band_hi (INT64_MIN / INT64_MAX for open ends); when also
 * band_exact, the mask is exactly that band, so a backend can derive loop bounds and
 * needs no per-element test beyond the band. */
typedef struct ir_mask_band {
    bool has_band, band_exact;
    int64_t band_lo, band_hi;
} ir_mask_band;

/* ---------------------------------------------------------------- kernels */

typedef enum ir_family { IR_SOFTMAX, IR_RECURRENCE } ir_family;
typedef enum ir_phase { IR_PREFILL, IR_DECODE } ir_phase;
typedef enum ir_dtype { IR_F32, IR_F16, IR_BF16 } ir_dtype;

typedef enum ir_decay_kind {
    IR_DECAY_NONE,            /* Λ = 1 (linear attention) */
    IR_DECAY_HEAD,            /* a constant per head (RetNet) */
    IR_DECAY_TOKEN_HEAD,      /* a scalar per token and head (Mamba2 / SSD) */
    IR_DECAY_KEY_VECTOR,      /* a vector over d_k per token and head (GLA) */
    IR_DECAY_STATE,           /* per state element (d_k x d_v) per token and head (Mamba-1, S4D) */
} ir_decay_kind;

typedef struct ir_kernel {
    const char *name;
    src_loc loc;
    ir_family family;
    ir_phase phase;
    ir_dtype dtype;                /* of q, k, v, o; accumulation is always f32 (f64 in the interpreter) */

    /* Shape. Softmax: q [b, s_q, heads_q, d_qk], k [b, s_k, heads_kv, d_qk],
     * v [b, s_k, heads_kv, d_v] (absent when v_in_k), o [b, s_q, heads_q, d_v],
     * lse [b, s_q, heads_q] (natural log). Query head h reads kv head h / (heads_q/heads_kv).
     * Recurrence: q, k [b, s, groups, d_qk], v, o [b, s, heads_q, d_v], heads_kv = heads_q,
     * head h reads group h / (heads_q/groups); state [b, heads_q, d_qk, d_v]. */
    int heads_q, heads_kv, groups;
    int d_qk, d_v;

    /* MLA: K rows are [latent (rank) ; rope part], V is the first latent_rank dims of K. */
    int latent_rank, latent_rope;
    bool v_in_k;

    ir_expr *scale;                /* float expression, constant after folding */
    double scale_value;            /* set by fold-constants: the softmax scale (times rope attn_factor after plan-rope) */
    bool scale_in_q;               /* set by fold-scale: backends multiply q by scale_value on load;
                                      `score` then already includes it */
    ir_rope rope;                  /* layout NONE when absent */
    ir_expr *score_mod;            /* float over score, q_idx, kv_idx, head, batch, inputs; NULL = identity */
    ir_expr *mask;                 /* bool; NULL = all true */
    ir_mask_band band;             /* set by analyze-mask */

    ir_input *inputs;
    int n_inputs;

    /* Recurrence: S_t = Λ_t ⊙ S_{t-1} + φ(k_t)ᵀ (v_scale_t · v_t);
     * o_t = φ(q_t) S_t [/ (φ(q_t)·z_t)] + skip ⊙ v_t, with z_t = Λ_t z_{t-1} + φ(k_t). */
    ir_expr *decay;                /* float, NULL = 1; inputs read at the current indices */
    ir_decay_kind decay_kind;
    ir_expr *log_decay;            /* set by a pass when decay = exp(x): x (for chunked forms) */
    ir_expr *feature;              /* float over IR_VAR_X, applied to q and k; NULL = identity */
    bool normalize;
    ir_expr *v_scale;              /* float per token and head (Mamba2's dt); NULL = 1 */
    ir_expr *skip;                 /* float per head (or head and v); NULL = no skip */
    int chunk;                     /* chunk length for chunkwise prefill; default 64 */
} ir_kernel;

typedef struct ir_module {
    arena *arena;                  /* owns every kernel and expression */
    ir_kernel **kernels;
    int n_kernels;
} ir_module;

/* ---------------------------------------------------------------- construction helpers */

ir_expr *ir_const(arena *a, ir_type t, double v);
ir_expr *ir_var_ref(arena *a, ir_var v);          /* typed: SCORE/X float, others int */
ir_expr *ir_unary(arena *a, ir_op op, ir_expr *x);    /* result type from op and operand */
ir_expr *ir_binary(arena *a, ir_op op, ir_expr *x, ir_expr *y);   /* int+float promotes via IR_TO_FLOAT */
ir_expr *ir_select(arena *a, ir_expr *c, ir_expr *t, ir_expr *f);
ir_expr *ir_input_ref(arena *a, const ir_kernel *k, int input, ir_expr **idx, int n_idx);
bool ir_expr_uses_var(const ir_expr *e, ir_var v);
bool ir_expr_uses_input(const ir_expr *e);         /* any IR_INPUT inside */
const char *ir_op_name(ir_op op);
const char *ir_var_name(ir_var v);
ir_kernel *ir_module_find(const ir_module *m, const char *name);

/* ---------------------------------------------------------------- printer, verifier, passes */

/* Stable text form; golden tests compare it. */
void ir_print_module(FILE *out, const ir_module *m);
void ir_print_kernel(FILE *out, const ir_kernel *k);
void ir_print_expr(FILE *out, const ir_kernel *k, const ir_expr *e);

/* Structural checks (types, arity, dims); internal errors go to d. */
bool ir_verify_kernel(const ir_kernel *k, diag_sink *d);

typedef bool (*ir_pass_fn)(ir_module *m, ir_kernel *k, diag_sink *d);
typedef struct ir_pass {
    const char *name;              /* e.g. "fold-constants" */
    const char *summary;
    ir_pass_fn run;
} ir_pass;

/* The pipeline, in order: verify, fold-constants, plan-rope, fold-scale, analyze-mask,
 * classify-decay, verify. */
const ir_pass *ir_pass_list(int *n);
/* Runs every pass on every kernel. When dump_after names a pass (or is "all"), prints the
 * module to dump after it. Returns false if any pass reported an error. */
bool ir_run_pipeline(ir_module *m, diag_sink *d, const char *dump_after, FILE *dump);

/* Constant folding of one expression (also used by the frontend on shapes). */
ir_expr *ir_fold(arena *a, ir_expr *e);

#endif
