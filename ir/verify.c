/* The IR verifier: structural invariants every pass and backend may assume (operand counts
 * and types, which variables each expression slot may read, input indexing, shapes, RoPE
 * ranges). A failure is a compiler bug, not a user error, so messages start "internal:". */
#include <math.h>
#include "ir/ir.h"

/* Deeper than this is a cycle or runaway construction; specs nest far less. */
enum { VERIFY_MAX_DEPTH = 2000 };

typedef enum slot {
    SLOT_SCALE, SLOT_SCORE, SLOT_MASK, SLOT_DECAY, SLOT_LOG_DECAY, SLOT_FEATURE, SLOT_V_SCALE, SLOT_SKIP
} slot;

static const char *slot_name(slot s) {
    static const char *const names[] = {"scale", "score", "mask", "decay", "log_decay", "feature",
                                        "v_scale", "skip"};
    return names[s];
}

typedef struct verifier {
    const ir_kernel *k;
    diag_sink *d;
    slot slot;
    bool ok;
} verifier;

static const char *type_name(ir_type t) {
    return t == IR_T_BOOL ? "bool" : t == IR_T_INT ? "int" : t == IR_T_FLOAT ? "float" : "?";
}

/* FAIL reports at an expression's location, FAILK at the kernel's. */
#define FAIL(v, e, ...) do { diag_error((v)->d, (e)->loc, __VA_ARGS__); (v)->ok = false; } while (0)
#define FAILK(v, ...) do { diag_error((v)->d, (v)->k->loc, __VA_ARGS__); (v)->ok = false; } while (0)

/* Which index variables an expression slot may read. */
static bool var_allowed(slot s, ir_var var) {
    switch (s) {
    case SLOT_SCALE: return false;
    case SLOT_SCORE: return var != IR_VAR_X;
    case SLOT_MASK: return var != IR_VAR_X && var != IR_VAR_SCORE;
    case SLOT_FEATURE: return var == IR_VAR_X;
    default:   /* recurrence expressions: no positions, no score, no feature argument */
        return var == IR_VAR_HEAD || var == IR_VAR_BATCH || var == IR_VAR_SEQ_Q || var == IR_VAR_SEQ_K;
    }
}

static bool inputs_allowed(slot s) { return s != SLOT_SCALE && s != SLOT_FEATURE; }

static bool is_num(ir_type t) { return t == IR_T_INT || t == IR_T_FLOAT; }

static void verify_expr(verifier *v, const ir_expr *e, int depth);

static bool arity(verifier *v, const ir_expr *e, int n) {
    if (e->n_args == n) return true;
    FAIL(v, e, "internal: %s: '%s' has %d operands; expected %d", slot_name(v->slot), ir_op_name(e->op),
         e->n_args, n);
    return false;
}

static void want_type(verifier *v, const ir_expr *e, const char *what, ir_type got, ir_type want) {
    if (got != want)
        FAIL(v, e, "internal: %s: %s of '%s' is %s; expected %s", slot_name(v->slot), what, ir_op_name(e->op),
             type_name(got), type_name(want));
}

static void verify_input(verifier *v, const ir_expr *e, int depth) {
    const ir_kernel *k = v->k;
    if (!inputs_allowed(v->slot)) {
        FAIL(v, e, "internal: %s may not read inputs", slot_name(v->slot));
        return;
    }
    if (e->input < 0 || e->input >= k->n_inputs || !k->inputs) {
        FAIL(v, e, "internal: %s reads input #%d; the kernel has %d inputs", slot_name(v->slot), e->input,
             k->n_inputs);
        return;
    }
    const ir_input *in = &k->inputs[e->input];
    ir_type t = in->scalar == IR_S_I32 ? IR_T_INT : IR_T_FLOAT;
    if (e->type != t)
        FAIL(v, e, "internal: read of input '%s' has type %s; expected %s", in->name ? in->name : "?",
             type_name(e->type), type_name(t));
    int want = k->family == IR_SOFTMAX ? in->n_axes : 0;
    if (e->n_args != want) {
        FAIL(v, e, "internal: input '%s' read with %d indices; expected %d", in->name ? in->name : "?",
             e->n_args, want);
        return;
    }
    for (int i = 0; i < e->n_args; i++) {
        verify_expr(v, e->args[i], depth + 1);
        if (e->args[i] && e->args[i]->type != IR_T_INT)
            FAIL(v, e, "internal: index %d of input '%s' is %s; expected int", i, in->name ? in->name : "?",
                 type_name(e->args[i]->type));
    }
}

static void verify_expr(verifier *v, const ir_expr *e, int depth) {
    if (!e) {
        FAILK(v, "internal: %s: missing operand", slot_name(v->slot));
        return;
    }
    if (depth > VERIFY_MAX_DEPTH) {
        FAIL(v, e, "internal: %s: expression nested deeper than %d (cycle?)", slot_name(v->slot), VERIFY_MAX_DEPTH);
        return;
    }
    if (e->type != IR_T_BOOL && e->type != IR_T_INT && e->type != IR_T_FLOAT) {
        FAIL(v, e, "internal: %s: node has invalid type %d", slot_name(v->slot), (int)e->type);
        return;
    }
    if (e->n_args < 0 || e->n_args > 4) {
        FAIL(v, e, "internal: %s: node has %d operands; at most 4", slot_name(v->slot), e->n_args);
        return;
    }
    if (e->op == IR_INPUT) { verify_input(v, e, depth); return; }
    for (int i = 0; i < e->n_args; i++) verify_expr(v, e->args[i], depth + 1);
    for (int i = 0; i < e->n_args; i++)
        if (!e->args[i]) return;
    const ir_expr *x = e->n_args > 0 ? e->args[0] : NULL, *y = e->n_args > 1 ? e->args[1] : NULL;

    switch (e->op) {
    case IR_CONST:
        if (!arity(v, e, 0)) return;
        if (e->type == IR_T_BOOL && e->value != 0 && e->value != 1)
            FAIL(v, e, "internal: bool constant %g; expected 0 or 1", e->value);
        if (e->type == IR_T_INT && (!isfinite(e->value) || e->value != floor(e->value)))
            FAIL(v, e, "internal: int constant %g is not integral", e->value);
        return;
    case IR_VAR:
        if (!arity(v, e, 0)) return;
        if (e->var < 0 || e->var >= IR_VAR_COUNT) {
            FAIL(v, e, "internal: variable #%d out of range", (int)e->var);
            return;
        }
        if (e->type != ((e->var == IR_VAR_SCORE || e->var == IR_VAR_X) ? IR_T_FLOAT : IR_T_INT))
            FAIL(v, e, "internal: variable '%s' has type %s", ir_var_name(e->var), type_name(e->type));
        if (!var_allowed(v->slot, e->var))
            FAIL(v, e, "internal: '%s' may not appear in %s", ir_var_name(e->var), slot_name(v->slot));
        return;
    case IR_NEG: case IR_ABS:
        if (!arity(v, e, 1)) return;
        if (!is_num(x->type)) FAIL(v, e, "internal: operand of '%s' is %s; expected a number", ir_op_name(e->op), type_name(x->type));
        want_type(v, e, "result", e->type, x->type);
        return;
    case IR_NOT:
        if (!arity(v, e, 1)) return;
        want_type(v, e, "operand", x->type, IR_T_BOOL);
        want_type(v, e, "result", e->type, IR_T_BOOL);
        return;
    case IR_EXP: case IR_LOG: case IR_TANH: case IR_SQRT: case IR_FLOOR:
        if (!arity(v, e, 1)) return;
        want_type(v, e, "operand", x->type, IR_T_FLOAT);
        want_type(v, e, "result", e->type, IR_T_FLOAT);
        return;
    case IR_TO_FLOAT:
        if (!arity(v, e, 1)) return;
        want_type(v, e, "operand", x->type, IR_T_INT);
        want_type(v, e, "result", e->type, IR_T_FLOAT);
        return;
    case IR_ADD: case IR_SUB: case IR_MUL: case IR_MIN: case IR_MAX:
        if (!arity(v, e, 2)) return;
        if (!is_num(x->type) || x->type != y->type)
            FAIL(v, e, "internal: operands of '%s' are %s and %s; expected two ints or two floats",
                 ir_op_name(e->op), type_name(x->type), type_name(y->type));
        want_type(v, e, "result", e->type, x->type);
        return;
    case IR_DIV: case IR_POW:
        if (!arity(v, e, 2)) return;
        want_type(v, e, "left operand", x->type, IR_T_FLOAT);
        want_type(v, e, "right operand", y->type, IR_T_FLOAT);
        want_type(v, e, "result", e->type, IR_T_FLOAT);
        return;
    case IR_IDIV: case IR_MOD:
        if (!arity(v, e, 2)) return;
        want_type(v, e, "left operand", x->type, IR_T_INT);
        want_type(v, e, "right operand", y->type, IR_T_INT);
        want_type(v, e, "result", e->type, IR_T_INT);
        return;
    case IR_LT: case IR_LE: case IR_GT: case IR_GE:
        if (!arity(v, e, 2)) return;
        if (!is_num(x->type) || x->type != y->type)
            FAIL(v, e, "internal: operands of '%s' are %s and %s; expected two ints or two floats",
                 ir_op_name(e->op), type_name(x->type), type_name(y->type));
        want_type(v, e, "result", e->type, IR_T_BOOL);
        return;
    case IR_EQ: case IR_NE:
        if (!arity(v, e, 2)) return;
        if (x->type != y->type)
            FAIL(v, e, "internal: operands of '%s' are %s and %s; expected equal types", ir_op_name(e->op),
                 type_name(x->type), type_name(y->type));
        want_type(v, e, "result", e->type, IR_T_BOOL);
        return;
    case IR_AND: case IR_OR:
        if (!arity(v, e, 2)) return;
        want_type(v, e, "left operand", x->type, IR_T_BOOL);
        want_type(v, e, "right operand", y->type, IR_T_BOOL);
        want_type(v, e, "result", e->type, IR_T_BOOL);
        return;
    case IR_SELECT:
        if (!arity(v, e, 3)) return;
        want_type(v, e, "condition", x->type, IR_T_BOOL);
        if (y->type != e->args[2]->type)
            FAIL(v, e, "internal: branches of 'select' are %s and %s; expected equal types", type_name(y->type),
                 type_name(e->args[2]->type));
        want_type(v, e, "result", e->type, y->type);
        return;
    default:
        FAIL(v, e, "internal: %s: unknown operation #%d", slot_name(v->slot), (int)e->op);
        return;
    }
}

static void verify_slot(verifier *v, slot s, const ir_expr *e, ir_type want) {
    if (!e) return;
    v->slot = s;
    verify_expr(v, e, 0);
    if (e->type != want)
        FAIL(v, e, "internal: %s expression is %s; expected %s", slot_name(s), type_name(e->type), type_name(want));
}

static void verify_rope(verifier *v) {
    const ir_kernel *k = v->k;
    const ir_rope *r = &k->rope;
    if (r->layout == IR_ROPE_NONE) return;
    if (r->layout != IR_ROPE_HALF && r->layout != IR_ROPE_INTERLEAVED) {
        FAILK(v, "internal: rope layout #%d out of range", (int)r->layout);
        return;
    }
    if (k->family != IR_SOFTMAX) FAILK(v, "internal: rope in a recurrence kernel");
    int width = r->dim_hi - r->dim_lo;
    if (r->dim_lo < 0 || r->dim_hi > k->d_qk || width <= 0 || width % 2 != 0) {
        FAILK(v, "internal: rope dims [%d, %d) must be a non-empty even range inside [0, %d)",
             r->dim_lo, r->dim_hi, k->d_qk);
        return;
    }
    int pairs = width / 2;
    if (!(r->base > 0) || !isfinite(r->base)) FAILK(v, "internal: rope base %g must be positive", r->base);
    if (r->scaling < IR_SCALE_NONE || r->scaling > IR_SCALE_LLAMA3)
        FAILK(v, "internal: rope scaling #%d out of range", (int)r->scaling);
    if (r->scaling != IR_SCALE_NONE && (!(r->factor > 0) || !isfinite(r->factor)))
        FAILK(v, "internal: rope scaling factor %g must be positive", r->factor);
    bool needs_original = r->scaling == IR_SCALE_DYNAMIC_NTK || r->scaling == IR_SCALE_YARN ||
                          r->scaling == IR_SCALE_LLAMA3;
    if (needs_original && (!(r->original > 0) || !isfinite(r->original)))
        FAILK(v, "internal: rope original context %g must be positive", r->original);
    if (r->scaling == IR_SCALE_LLAMA3 && (!(r->low_freq_factor > 0) || !(r->high_freq_factor > r->low_freq_factor)))
        FAILK(v, "internal: llama3 rope needs 0 < low (%g) < high (%g)", r->low_freq_factor, r->high_freq_factor);
    /* 0 stands for HF's defaults (32, 1, 1) */
    if (r->scaling == IR_SCALE_YARN && (!(r->beta_fast >= 0) || !(r->beta_slow >= 0) || !isfinite(r->beta_fast) ||
                                        !isfinite(r->beta_slow) || !isfinite(r->mscale)))
        FAILK(v, "internal: yarn beta_fast %g, beta_slow %g must be >= 0, mscale %g finite", r->beta_fast,
              r->beta_slow, r->mscale);
    if ((r->scaling == IR_SCALE_NTK || r->scaling == IR_SCALE_DYNAMIC_NTK) && width <= 2)
        FAILK(v, "internal: ntk scaling needs more than 2 rotary dims");
    if (r->n_sections < 0 || r->n_sections > 4) {
        FAILK(v, "internal: %d rope sections; at most 4", r->n_sections);
    } else if (r->n_sections > 0) {
        int sum = 0;
        for (int i = 0; i < r->n_sections; i++) {
            if (r->sections[i] <= 0) FAILK(v, "internal: rope section %d is %d; expected > 0", i, r->sections[i]);
            sum += r->sections[i];
        }
        if (sum != pairs) FAILK(v, "internal: rope sections add up to %d; expected %d pairs", sum, pairs);
        if (r->n_sections > 1 && !r->explicit_positions)
            FAILK(v, "internal: multi-axis rope without explicit positions");
    }
    if (r->rerope_window < 0 || !(r->rerope_leak >= 0) || (r->rerope_leak > 0 && r->rerope_window == 0))
        FAILK(v, "internal: rerope window %d / leak %g invalid", r->rerope_window, r->rerope_leak);
    if (r->planned) {
        if (r->n_pairs != pairs || !r->inv_freq || !r->pair_axis) {
            FAILK(v, "internal: rope plan has %d pairs; expected %d", r->n_pairs, pairs);
            return;
        }
        int axes = r->n_sections > 1 ? r->n_sections : 1;
        for (int j = 0; j < pairs; j++) {
            if (r->pair_axis[j] < 0 || r->pair_axis[j] >= axes) {
                FAILK(v, "internal: rope pair %d on axis %d; expected < %d", j, r->pair_axis[j], axes);
                break;
            }
            if (!isfinite(r->inv_freq[j])) {
                FAILK(v, "internal: rope inv_freq[%d] is %g", j, r->inv_freq[j]);
                break;
            }
        }
        if (!(r->attn_factor > 0) || !isfinite(r->attn_factor))
            FAILK(v, "internal: rope attn_factor %g must be positive", r->attn_factor);
    }
}

static void verify_inputs(verifier *v) {
    const ir_kernel *k = v->k;
    if (k->n_inputs < 0 || (k->n_inputs > 0 && !k->inputs)) {
        FAILK(v, "internal: %d inputs without a table", k->n_inputs);
        return;
    }
    for (int i = 0; i < k->n_inputs; i++) {
        const ir_input *in = &k->inputs[i];
        if (!in->name) FAILK(v, "internal: input #%d has no name", i);
        if (in->scalar != IR_S_F32 && in->scalar != IR_S_I32)
            FAILK(v, "internal: input #%d has scalar type #%d", i, (int)in->scalar);
        if (in->n_axes < 0 || in->n_axes > 4) {
            FAILK(v, "internal: input #%d has %d axes; at most 4", i, in->n_axes);
            continue;
        }
        for (int a = 0; a < in->n_axes; a++) {
            ir_axis ax = in->axes[a];
            bool ok = ax == IR_AXIS_TOKEN || ax == IR_AXIS_HEAD ||
                      (k->family == IR_RECURRENCE && (ax == IR_AXIS_K || ax == IR_AXIS_V));
            if (!ok) FAILK(v, "internal: input '%s' axis %d (#%d) not allowed in this family",
                          in->name ? in->name : "?", a, (int)ax);
        }
    }
}

bool ir_verify_kernel(const ir_kernel *k, diag_sink *d) {
    verifier v = {.k = k, .d = d, .ok = true};
    if (!k->name) FAILK(&v, "internal: kernel without a name");
    const char *name = k->name ? k->name : "?";
    if (k->family != IR_SOFTMAX && k->family != IR_RECURRENCE) {
        FAILK(&v, "internal: kernel '%s' has family #%d", name, (int)k->family);
        return false;
    }
    if (k->phase != IR_PREFILL && k->phase != IR_DECODE) FAILK(&v, "internal: kernel '%s' has phase #%d", name, (int)k->phase);
    if (k->dtype != IR_F32 && k->dtype != IR_F16 && k->dtype != IR_BF16)
        FAILK(&v, "internal: kernel '%s' has dtype #%d", name, (int)k->dtype);
    if (k->d_qk <= 0 || k->d_v <= 0)
        FAILK(&v, "internal: kernel '%s' dims qk=%d v=%d must be positive", name, k->d_qk, k->d_v);
    verify_inputs(&v);

    if (k->family == IR_SOFTMAX) {
        if (k->heads_q <= 0 || k->heads_kv <= 0 || k->heads_q % k->heads_kv != 0)
            FAILK(&v, "internal: kernel '%s' heads q=%d kv=%d: kv must be positive and divide q", name,
                 k->heads_q, k->heads_kv);
        if (k->latent_rank < 0 || k->latent_rope < 0)
            FAILK(&v, "internal: kernel '%s' latent rank=%d rope=%d negative", name, k->latent_rank, k->latent_rope);
        if (k->latent_rank > 0 && (k->d_qk != k->latent_rank + k->latent_rope || !k->v_in_k || k->d_v != k->latent_rank))
            FAILK(&v, "internal: kernel '%s' latent rank=%d rope=%d needs qk=%d, v=%d and v_in_k", name,
                 k->latent_rank, k->latent_rope, k->latent_rank + k->latent_rope, k->latent_rank);
        if (k->v_in_k && k->d_v > k->d_qk)
            FAILK(&v, "internal: kernel '%s' has v inside k but v=%d > qk=%d", name, k->d_v, k->d_qk);
        if (!k->scale) FAILK(&v, "internal: softmax kernel '%s' has no scale", name);
        verify_slot(&v, SLOT_SCALE, k->scale, IR_T_FLOAT);
        verify_rope(&v);
        verify_slot(&v, SLOT_SCORE, k->score_mod, IR_T_FLOAT);
        verify_slot(&v, SLOT_MASK, k->mask, IR_T_BOOL);
        if (k->band.band_exact && !k->band.has_band)
            FAILK(&v, "internal: kernel '%s' band marked exact without a band", name);
        if (k->decay || k->log_decay || k->feature || k->v_scale || k->skip || k->normalize)
            FAILK(&v, "internal: softmax kernel '%s' has recurrence fields", name);
    } else {
        if (k->heads_q <= 0 || k->groups <= 0 || k->heads_q % k->groups != 0)
            FAILK(&v, "internal: recurrence '%s' heads=%d groups=%d: groups must be positive and divide heads",
                 name, k->heads_q, k->groups);
        if (k->heads_kv != k->heads_q)
            FAILK(&v, "internal: recurrence '%s' has heads_kv=%d; expected heads_q=%d", name, k->heads_kv, k->heads_q);
        if (k->chunk < 16 || k->chunk > 1024 || k->chunk % 16 != 0)
            FAILK(&v, "internal: recurrence '%s' chunk %d; expected a multiple of 16 in [16, 1024]", name, k->chunk);
        if (k->score_mod || k->mask || k->rope.layout != IR_ROPE_NONE || k->latent_rank || k->v_in_k)
            FAILK(&v, "internal: recurrence '%s' has softmax fields", name);
        if (k->scale) verify_slot(&v, SLOT_SCALE, k->scale, IR_T_FLOAT);
        if (k->decay_kind < IR_DECAY_NONE || k->decay_kind > IR_DECAY_STATE)
            FAILK(&v, "internal: recurrence '%s' decay kind #%d", name, (int)k->decay_kind);
        verify_slot(&v, SLOT_DECAY, k->decay, IR_T_FLOAT);
        verify_slot(&v, SLOT_LOG_DECAY, k->log_decay, IR_T_FLOAT);
        verify_slot(&v, SLOT_FEATURE, k->feature, IR_T_FLOAT);
        verify_slot(&v, SLOT_V_SCALE, k->v_scale, IR_T_FLOAT);
        verify_slot(&v, SLOT_SKIP, k->skip, IR_T_FLOAT);
    }
    return v.ok;
}
