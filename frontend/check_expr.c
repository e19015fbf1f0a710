/* Expressions: name resolution for the place an expression stands (score, mask, decay,
 * ...), bool/int/float typing with messages that say what would be right, and lowering to
 * IR with the built-ins expanded (causal, sliding_window, alibi_slope, softcap, sigmoid,
 * softplus, relu, elu). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "frontend/check_internal.h"

enum { MAX_DEPTH = 200 };

typedef enum fn_id {
    FN_EXP, FN_LOG, FN_TANH, FN_SQRT, FN_ABS, FN_FLOOR, FN_SIGMOID, FN_SOFTPLUS, FN_RELU, FN_ELU,
    FN_MIN, FN_MAX, FN_SELECT, FN_SOFTCAP, FN_ALIBI, FN_WINDOW,
} fn_id;

static const struct { const char *name; fn_id id; int arity; } functions[] = {
    {"exp", FN_EXP, 1}, {"log", FN_LOG, 1}, {"tanh", FN_TANH, 1}, {"sqrt", FN_SQRT, 1},
    {"abs", FN_ABS, 1}, {"floor", FN_FLOOR, 1}, {"sigmoid", FN_SIGMOID, 1},
    {"softplus", FN_SOFTPLUS, 1}, {"relu", FN_RELU, 1}, {"elu", FN_ELU, 1},
    {"min", FN_MIN, 2}, {"max", FN_MAX, 2}, {"select", FN_SELECT, 3}, {"softcap", FN_SOFTCAP, 2},
    {"alibi_slope", FN_ALIBI, 1}, {"sliding_window", FN_WINDOW, 1},
};
enum { N_FUNCTIONS = sizeof functions / sizeof functions[0] };

static const struct { const char *name; ir_var var; } variables[] = {
    {"q_idx", IR_VAR_Q_IDX}, {"kv_idx", IR_VAR_KV_IDX}, {"head", IR_VAR_HEAD}, {"batch", IR_VAR_BATCH},
    {"seq_q", IR_VAR_SEQ_Q}, {"seq_k", IR_VAR_SEQ_K}, {"score", IR_VAR_SCORE}, {"x", IR_VAR_X},
};
enum { N_VARIABLES = sizeof variables / sizeof variables[0] };

/* Tensors and words of the fixed recurrence forms: names, but not values an expression reads. */
static const char *const structural[] = {
    "q", "k", "v", "o", "lse", "S", "decay", "outer", "positions", "state_in", "state_out",
};
enum { N_STRUCTURAL = sizeof structural / sizeof structural[0] };

static int find_function(const char *name) {
    for (int i = 0; i < N_FUNCTIONS; i++)
        if (strcmp(functions[i].name, name) == 0) return i;
    return -1;
}

static int find_variable(const char *name) {
    for (int i = 0; i < N_VARIABLES; i++)
        if (strcmp(variables[i].name, name) == 0) return i;
    return -1;
}

static bool is_structural(const char *name) {
    for (int i = 0; i < N_STRUCTURAL; i++)
        if (strcmp(structural[i], name) == 0) return true;
    return false;
}

bool is_reserved_name(const char *name) {
    return find_function(name) >= 0 || find_variable(name) >= 0 || is_structural(name) ||
           strcmp(name, "causal") == 0 || strcmp(name, "true") == 0 || strcmp(name, "false") == 0 ||
           strcmp(name, "kernel") == 0;
}

static int find_input(const kcheck *kc, const char *name) {
    for (int i = 0; i < kc->k->n_inputs; i++)
        if (strcmp(kc->k->inputs[i].name, name) == 0) return i;
    return -1;
}

/* A name whose input declaration was wrong: its uses would only repeat that error. */
static bool is_poisoned(const kcheck *kc, const char *name) {
    for (int i = 0; i < kc->n_poisoned; i++)
        if (strcmp(kc->poisoned[i], name) == 0) return true;
    return false;
}

const char *type_phrase(ir_type t) {
    return t == IR_T_BOOL ? "a boolean" : t == IR_T_INT ? "an integer" : "a float";
}

/* The raw source text at loc when it is short and on one line; NULL otherwise. */
static const char *src_text(const kcheck *kc, src_loc loc, char *buf, size_t n) {
    const diag_sink *d = kc->d;
    if (!d->src || loc.line < 1 || loc.end_line != loc.line || loc.col < 1 || loc.end_col < loc.col) return NULL;
    size_t width = (size_t)(loc.end_col - loc.col + 1);
    if (width > 48 || width + 1 > n) return NULL;
    const char *p = d->src, *end = d->src + d->src_len;
    for (int l = 1; l < loc.line; l++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) return NULL;
        p = nl + 1;
    }
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t len = (size_t)((nl ? nl : end) - p);
    if ((size_t)(loc.col - 1) + width > len) return NULL;
    memcpy(buf, p + loc.col - 1, width);
    buf[width] = 0;
    return buf;
}

const char *quote_src(const kcheck *kc, src_loc loc, const char *fallback, char *buf, size_t n) {
    char raw[64];
    const char *t = src_text(kc, loc, raw, sizeof raw);
    if (!t || strlen(t) + 3 > n) return fallback;
    snprintf(buf, n, "'%s'", t);
    return buf;
}

static ir_expr *at(ir_expr *e, src_loc loc) {
    e->loc = loc;
    return e;
}

static bool softmax_place(expr_where w) { return w == EX_SCORE || w == EX_MASK; }
static bool recurrence_place(expr_where w) {
    return w == EX_DECAY || w == EX_FEATURE || w == EX_VSCALE || w == EX_SKIP;
}
static bool inputs_allowed(expr_where w) { return w != EX_CONST && w != EX_FEATURE; }

static bool var_allowed(ir_var v, expr_where w) {
    switch (w) {
    case EX_SCORE: return v != IR_VAR_X;
    case EX_MASK: return v != IR_VAR_X && v != IR_VAR_SCORE;
    case EX_DECAY: case EX_VSCALE: case EX_SKIP: return v == IR_VAR_HEAD;
    case EX_FEATURE: return v == IR_VAR_X;
    case EX_CONST: return false;
    }
    return false;
}

static const char *place_name(expr_where w) {
    switch (w) {
    case EX_SCORE: return "the score";
    case EX_MASK: return "a mask";
    case EX_DECAY: return "the decay";
    case EX_FEATURE: return "the feature map";
    case EX_VSCALE: return "the value scale";
    case EX_SKIP: return "the skip term";
    case EX_CONST: return "a constant";
    }
    return "this expression";
}

/* Names an expression at w may read, for did-you-mean. */
static int valid_names(const kcheck *kc, expr_where w, const char **out, int cap) {
    int n = 0;
    for (int i = 0; i < N_VARIABLES && n < cap; i++)
        if (var_allowed(variables[i].var, w)) out[n++] = variables[i].name;
    if (softmax_place(w) && n < cap) out[n++] = "causal";
    if (n + 2 <= cap) { out[n++] = "true"; out[n++] = "false"; }
    if (inputs_allowed(w))
        for (int i = 0; i < kc->k->n_inputs && n < cap; i++) out[n++] = kc->k->inputs[i].name;
    return n;
}

static bool function_allowed(fn_id f, expr_where w) {
    if (f == FN_WINDOW) return softmax_place(w);
    return true;
}

static ir_expr *lower(kcheck *kc, const ast_node *n, expr_where w);

/* ---------------------------------------------------------------- names */

static void misplaced_variable(kcheck *kc, const ast_node *n, const char *name, ir_var v, expr_where w) {
    if (w == EX_CONST) {
        diag_error(kc->d, n->loc, "'%s' is a run-time value; %s must be a constant", name, kc->what);
    } else if (v == IR_VAR_SCORE && w == EX_MASK) {
        diag_error(kc->d, n->loc,
                   "a mask cannot read 'score' (it decides which keys take part before scores exist); "
                   "change scores in the 'score' clause");
    } else if (v == IR_VAR_SCORE) {
        diag_error(kc->d, n->loc, "'score' exists only inside a softmax kernel's 'score' clause");
    } else if (v == IR_VAR_X) {
        diag_error(kc->d, n->loc,
                   "'x' exists only inside the 'feature' clause, where it is the element the feature map is applied to");
    } else if (w == EX_FEATURE) {
        diag_error(kc->d, n->loc, "a feature map is a function of 'x' alone; '%s' cannot appear in it", name);
    } else {
        diag_error(kc->d, n->loc,
                   "'%s' is an index of softmax attention; in a recurrence, %s may read only 'head' and inputs "
                   "(inputs are read at the current token)", name, place_name(w));
    }
}

static void describe_axes(const ir_input *in, char *buf, size_t n) {
    static const char *const axis_names[] = {"token", "head", "k", "v"};
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < in->n_axes; i++) {
        int w = snprintf(buf + used, n - used, "%s%s", i ? ", " : "", axis_names[in->axes[i]]);
        if (w < 0 || (size_t)w >= n - used) break;
        used += (size_t)w;
    }
}

static bool has_axis(const ir_input *in, ir_axis ax) {
    for (int i = 0; i < in->n_axes; i++)
        if (in->axes[i] == ax) return true;
    return false;
}

/* A bare input name in a recurrence: read at the current token/head/k/v. */
static ir_expr *recurrence_input(kcheck *kc, const ast_node *n, int idx, expr_where w) {
    const ir_input *in = &kc->k->inputs[idx];
    char axes[64];
    describe_axes(in, axes, sizeof axes);
    if (w == EX_VSCALE && (has_axis(in, IR_AXIS_K) || has_axis(in, IR_AXIS_V))) {
        diag_error(kc->d, n->loc,
                   "input '%s' has axes [%s], but the value scale E is one number per token and head; "
                   "it may read inputs with token and head axes only", in->name, axes);
        return NULL;
    }
    if (w == EX_SKIP && (has_axis(in, IR_AXIS_TOKEN) || has_axis(in, IR_AXIS_K))) {
        diag_error(kc->d, n->loc,
                   "input '%s' has axes [%s], but the skip D is per head (or head and v); declare it e.g. '%s[head]'",
                   in->name, axes, in->name);
        return NULL;
    }
    return at(ir_input_ref(kc->a, kc->k, idx, NULL, 0), n->loc);
}

static ir_expr *lower_name(kcheck *kc, const ast_node *n, expr_where w) {
    const char *name = n->name ? n->name : "";
    if (strcmp(name, "true") == 0 || strcmp(name, "false") == 0)
        return at(ir_const(kc->a, IR_T_BOOL, name[0] == 't'), n->loc);
    if (strcmp(name, "causal") == 0) {
        if (!softmax_place(w)) {
            if (w == EX_CONST)
                diag_error(kc->d, n->loc, "'causal' is a run-time condition; %s must be a constant", kc->what);
            else
                diag_error(kc->d, n->loc,
                           "'causal' is a softmax-attention mask; a recurrence is causal by construction");
            return NULL;
        }
        ir_expr *q = at(ir_var_ref(kc->a, IR_VAR_Q_IDX), n->loc);
        ir_expr *kv = at(ir_var_ref(kc->a, IR_VAR_KV_IDX), n->loc);
        return at(ir_binary(kc->a, IR_LE, kv, q), n->loc);
    }
    if (is_poisoned(kc, name)) return NULL;
    int v = find_variable(name);
    if (v >= 0) {
        if (!var_allowed(variables[v].var, w)) {
            misplaced_variable(kc, n, name, variables[v].var, w);
            return NULL;
        }
        return at(ir_var_ref(kc->a, variables[v].var), n->loc);
    }
    int in = find_input(kc, name);
    if (in >= 0) {
        const ir_input *inp = &kc->k->inputs[in];
        if (w == EX_CONST) {
            diag_error(kc->d, n->loc, "input '%s' is read at run time; %s must be a constant", name, kc->what);
            return NULL;
        }
        if (w == EX_FEATURE) {
            diag_error(kc->d, n->loc, "a feature map is a function of 'x' alone; input '%s' cannot appear in it",
                       name);
            return NULL;
        }
        if (recurrence_place(w)) return recurrence_input(kc, n, in, w);
        if (has_axis(inp, IR_AXIS_TOKEN))
            diag_error(kc->d, n->loc,
                       "input '%s' has a token axis; say which token: '%s[q_idx]' for the query's or '%s[kv_idx]' for the key's",
                       name, name, name);
        else {
            char axes[64];
            describe_axes(inp, axes, sizeof axes);
            diag_error(kc->d, n->loc, "input '%s' has axes [%s]; index it, e.g. '%s[head]'", name, axes, name);
        }
        return NULL;
    }
    if (find_function(name) >= 0) {
        diag_error(kc->d, n->loc, "'%s' is a function; call it, e.g. '%s(...)'", name, name);
        return NULL;
    }
    if (is_structural(name)) {
        if (strcmp(name, "positions") == 0)
            diag_error(kc->d, n->loc, "'positions' is the RoPE position input; expressions cannot read it");
        else
            diag_error(kc->d, n->loc,
                       "'%s' is a tensor of the kernel, not a value an expression can read; it appears only in "
                       "the fixed forms of 'update' and 'output'", name);
        return NULL;
    }
    const char *cands[64];
    int nc = valid_names(kc, w, cands, 64);
    const char *close = closest_name(name, cands, nc);
    if (close)
        diag_error(kc->d, n->loc, "unknown name '%s'; did you mean '%s'?", name, close);
    else if (w == EX_CONST)
        diag_error(kc->d, n->loc, "unknown name '%s'; %s must be a constant such as 64", name, kc->what);
    else if (recurrence_place(w) && w != EX_FEATURE)
        diag_error(kc->d, n->loc, "unknown name '%s'; declare it as an input, e.g. 'inputs %s[token, head]'", name,
                   name);
    else if (w == EX_FEATURE)
        diag_error(kc->d, n->loc, "unknown name '%s'; a feature map reads only 'x'", name);
    else
        diag_error(kc->d, n->loc, "unknown name '%s'; declare it as an input, e.g. 'inputs %s[token]'", name, name);
    return NULL;
}

/* ---------------------------------------------------------------- operators */

static const char *op_text(ast_op op) {
    switch (op) {
    case OP_ADD: return "+"; case OP_SUB: return "-"; case OP_MUL: return "*"; case OP_DIV: return "/";
    case OP_IDIV: return "//"; case OP_MOD: return "%"; case OP_POW: return "^"; case OP_MATMUL: return "@";
    case OP_LT: return "<"; case OP_LE: return "<="; case OP_GT: return ">"; case OP_GE: return ">=";
    case OP_EQ: return "=="; case OP_NE: return "!="; case OP_AND: return "&&"; case OP_OR: return "||";
    case OP_NEG: return "-"; case OP_NOT: return "!"; case OP_PLUS: return "+";
    }
    return "?";
}

/* "compare it, e.g. 'x > 0'" using the operand's own text when available. */
static const char *compare_hint(const kcheck *kc, src_loc loc, char *buf, size_t n) {
    char raw[64];
    const char *t = src_text(kc, loc, raw, sizeof raw);
    if (t) snprintf(buf, n, "compare it, e.g. '%s > 0'", t);
    else snprintf(buf, n, "compare it with a number, e.g. 'x > 0'");
    return buf;
}

/* Checks one operand's kind; reports and returns false when wrong. */
static bool need_number(kcheck *kc, const ast_node *n, const ir_expr *e, const char *opname) {
    if (e->type != IR_T_BOOL) return true;
    char q[96];
    diag_error(kc->d, n->loc, "'%s' needs numbers, but %s is a boolean", opname,
               quote_src(kc, n->loc, "this operand", q, sizeof q));
    return false;
}

static bool need_bool(kcheck *kc, const ast_node *n, const ir_expr *e, const char *opname) {
    if (e->type == IR_T_BOOL) return true;
    char q[96], hint[128];
    diag_error(kc->d, n->loc, "'%s' needs booleans, but %s is %s; %s", opname,
               quote_src(kc, n->loc, "this operand", q, sizeof q), type_phrase(e->type),
               compare_hint(kc, n->loc, hint, sizeof hint));
    return false;
}

static bool need_int(kcheck *kc, const ast_node *n, const ir_expr *e, ast_op op) {
    if (e->type == IR_T_INT) return true;
    char q[96];
    const char *quoted = quote_src(kc, n->loc, "this operand", q, sizeof q);
    if (op == OP_IDIV)
        diag_error(kc->d, n->loc, "'//' is integer division, but %s is %s; use '/' for real division", quoted,
                   type_phrase(e->type));
    else
        diag_error(kc->d, n->loc,
                   "'%%' is the remainder of integers, but %s is %s; use integer operands such as q_idx or head",
                   quoted, type_phrase(e->type));
    return false;
}

/* Both branches of a select must be numbers or both booleans. */
static bool same_kind(kcheck *kc, const ast_node *site, const ast_node *a, const ir_expr *x,
                      const ast_node *b, const ir_expr *y, const char *what) {
    if ((x->type == IR_T_BOOL) == (y->type == IR_T_BOOL)) return true;
    char qa[96], qb[96];
    diag_error(kc->d, site->loc, "%s must be both numbers or both booleans, but %s is %s and %s is %s", what,
               quote_src(kc, a->loc, "the first", qa, sizeof qa), type_phrase(x->type),
               quote_src(kc, b->loc, "the second", qb, sizeof qb), type_phrase(y->type));
    return false;
}

static ir_op binary_op(ast_op op) {
    switch (op) {
    case OP_ADD: return IR_ADD; case OP_SUB: return IR_SUB; case OP_MUL: return IR_MUL;
    case OP_DIV: return IR_DIV; case OP_IDIV: return IR_IDIV; case OP_MOD: return IR_MOD;
    case OP_POW: return IR_POW; case OP_LT: return IR_LT; case OP_LE: return IR_LE;
    case OP_GT: return IR_GT; case OP_GE: return IR_GE; case OP_EQ: return IR_EQ; case OP_NE: return IR_NE;
    case OP_AND: return IR_AND; case OP_OR: return IR_OR;
    default: return IR_OP_COUNT;
    }
}

static ir_expr *lower_binary(kcheck *kc, const ast_node *n, expr_where w) {
    if (n->op == OP_MATMUL) {
        diag_error(kc->d, n->loc,
                   "'@' is the matrix product of a recurrence's 'output q @ S'; it has no meaning inside an expression");
        return NULL;
    }
    ir_op op = binary_op(n->op);
    if (op == IR_OP_COUNT || !n->a || !n->b) {
        diag_error(kc->d, n->loc, "'%s' is not a binary operator", op_text(n->op));
        return NULL;
    }
    ir_expr *x = lower(kc, n->a, w), *y = lower(kc, n->b, w);
    if (!x || !y) return NULL;
    const char *name = op_text(n->op);
    bool ok = true;
    switch (n->op) {
    case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_POW:
    case OP_LT: case OP_LE: case OP_GT: case OP_GE:
        ok = need_number(kc, n->a, x, name);
        ok = need_number(kc, n->b, y, name) && ok;
        break;
    case OP_IDIV: case OP_MOD:
        ok = need_int(kc, n->a, x, n->op);
        ok = need_int(kc, n->b, y, n->op) && ok;
        break;
    case OP_EQ: case OP_NE:
        if ((x->type == IR_T_BOOL) != (y->type == IR_T_BOOL)) {
            char qa[96], qb[96];
            diag_error(kc->d, n->loc, "'%s' compares two numbers or two booleans, but %s is %s and %s is %s", name,
                       quote_src(kc, n->a->loc, "the left side", qa, sizeof qa), type_phrase(x->type),
                       quote_src(kc, n->b->loc, "the right side", qb, sizeof qb), type_phrase(y->type));
            ok = false;
        }
        break;
    case OP_AND: case OP_OR:
        ok = need_bool(kc, n->a, x, name);
        ok = need_bool(kc, n->b, y, name) && ok;
        break;
    default:
        break;
    }
    if (!ok) return NULL;
    return at(ir_binary(kc->a, op, x, y), n->loc);
}

static ir_expr *lower_unary(kcheck *kc, const ast_node *n, expr_where w) {
    if (!n->a) {
        diag_error(kc->d, n->loc, "unary '%s' needs an operand", op_text(n->op));
        return NULL;
    }
    ir_expr *x = lower(kc, n->a, w);
    if (!x) return NULL;
    char q[96], hint[128];
    switch (n->op) {
    case OP_NEG: case OP_PLUS:
        if (x->type == IR_T_BOOL) {
            diag_error(kc->d, n->loc, "unary '%s' needs a number, but %s is a boolean%s", op_text(n->op),
                       quote_src(kc, n->a->loc, "its operand", q, sizeof q),
                       n->op == OP_NEG ? "; use '!' to negate a condition" : "");
            return NULL;
        }
        return n->op == OP_PLUS ? x : at(ir_unary(kc->a, IR_NEG, x), n->loc);
    case OP_NOT:
        if (x->type != IR_T_BOOL) {
            diag_error(kc->d, n->loc, "'!' needs a boolean, but %s is %s; %s",
                       quote_src(kc, n->a->loc, "its operand", q, sizeof q), type_phrase(x->type),
                       compare_hint(kc, n->a->loc, hint, sizeof hint));
            return NULL;
        }
        return at(ir_unary(kc->a, IR_NOT, x), n->loc);
    default:
        diag_error(kc->d, n->loc, "'%s' is not a unary operator", op_text(n->op));
        return NULL;
    }
}

static ir_expr *lower_select(kcheck *kc, const ast_node *site, const ast_node *c, const ast_node *t,
                             const ast_node *f, expr_where w, const char *what) {
    ir_expr *ce = lower(kc, c, w), *te = lower(kc, t, w), *fe = lower(kc, f, w);
    if (!ce || !te || !fe) return NULL;
    bool ok = true;
    if (ce->type != IR_T_BOOL) {
        char q[96], hint[128];
        diag_error(kc->d, c->loc, "the condition of %s must be a boolean, but %s is %s; %s", what,
                   quote_src(kc, c->loc, "it", q, sizeof q), type_phrase(ce->type),
                   compare_hint(kc, c->loc, hint, sizeof hint));
        ok = false;
    }
    char both[64];
    snprintf(both, sizeof both, "the two branches of %s", what);
    ok = same_kind(kc, site, t, te, f, fe, both) && ok;
    if (!ok) return NULL;
    return at(ir_select(kc->a, ce, te, fe), site->loc);
}

/* ---------------------------------------------------------------- calls and indexing */

static ir_expr *fconst(kcheck *kc, double v, src_loc loc) { return at(ir_const(kc->a, IR_T_FLOAT, v), loc); }

static ir_expr *expand_builtin(kcheck *kc, fn_id f, ir_expr **x, src_loc loc) {
    arena *a = kc->a;
    ir_expr *xf = (f <= FN_ELU) ? ir_unary(a, IR_TO_FLOAT, x[0]) : NULL;
    switch (f) {
    case FN_EXP: return at(ir_unary(a, IR_EXP, xf), loc);
    case FN_LOG: return at(ir_unary(a, IR_LOG, xf), loc);
    case FN_TANH: return at(ir_unary(a, IR_TANH, xf), loc);
    case FN_SQRT: return at(ir_unary(a, IR_SQRT, xf), loc);
    case FN_ABS: return at(ir_unary(a, IR_ABS, xf), loc);
    case FN_FLOOR: return at(ir_unary(a, IR_FLOOR, xf), loc);
    case FN_SIGMOID: {          /* 1 / (1 + exp(-x)) */
        ir_expr *e = at(ir_unary(a, IR_EXP, at(ir_unary(a, IR_NEG, xf), loc)), loc);
        return at(ir_binary(a, IR_DIV, fconst(kc, 1, loc), at(ir_binary(a, IR_ADD, fconst(kc, 1, loc), e), loc)), loc);
    }
    case FN_SOFTPLUS: {         /* log(1 + exp(x)) */
        ir_expr *e = at(ir_unary(a, IR_EXP, xf), loc);
        return at(ir_unary(a, IR_LOG, at(ir_binary(a, IR_ADD, fconst(kc, 1, loc), e), loc)), loc);
    }
    case FN_RELU: return at(ir_binary(a, IR_MAX, xf, fconst(kc, 0, loc)), loc);
    case FN_ELU: {              /* x > 0 ? x : exp(x) - 1 */
        ir_expr *pos = at(ir_binary(a, IR_GT, xf, fconst(kc, 0, loc)), loc);
        ir_expr *neg = at(ir_binary(a, IR_SUB, at(ir_unary(a, IR_EXP, xf), loc), fconst(kc, 1, loc)), loc);
        return at(ir_select(a, pos, xf, neg), loc);
    }
    case FN_MIN: return at(ir_binary(a, IR_MIN, x[0], x[1]), loc);
    case FN_MAX: return at(ir_binary(a, IR_MAX, x[0], x[1]), loc);
    case FN_SELECT: return at(ir_select(a, x[0], x[1], x[2]), loc);
    case FN_SOFTCAP: {          /* c * tanh(x / c) */
        ir_expr *t = at(ir_unary(a, IR_TANH, at(ir_binary(a, IR_DIV, x[0], x[1]), loc)), loc);
        return at(ir_binary(a, IR_MUL, x[1], t), loc);
    }
    case FN_ALIBI: {            /* 2 ^ (-8 * (h + 1) / heads_q) */
        ir_expr *h1 = at(ir_binary(a, IR_ADD, x[0], at(ir_const(a, IR_T_INT, 1), loc)), loc);
        ir_expr *num = at(ir_binary(a, IR_MUL, at(ir_const(a, IR_T_INT, -8), loc), h1), loc);
        ir_expr *ex = at(ir_binary(a, IR_DIV, num, at(ir_const(a, IR_T_INT, kc->k->heads_q), loc)), loc);
        return at(ir_binary(a, IR_POW, fconst(kc, 2, loc), ex), loc);
    }
    case FN_WINDOW: {           /* causal && q_idx - kv_idx < W */
        ir_expr *q = at(ir_var_ref(a, IR_VAR_Q_IDX), loc), *kv = at(ir_var_ref(a, IR_VAR_KV_IDX), loc);
        ir_expr *causal = at(ir_binary(a, IR_LE, kv, q), loc);
        ir_expr *dist = at(ir_binary(a, IR_SUB, q, kv), loc);
        return at(ir_binary(a, IR_AND, causal, at(ir_binary(a, IR_LT, dist, x[0]), loc)), loc);
    }
    }
    return NULL;
}

static void not_a_function(kcheck *kc, const ast_node *n, expr_where w) {
    const char *name = n->name ? n->name : "";
    if (find_input(kc, name) >= 0) {
        if (recurrence_place(w))
            diag_error(kc->d, n->name_loc, "'%s' is an input, not a function; write '%s' (a recurrence reads it at "
                       "the current token)", name, name);
        else
            diag_error(kc->d, n->name_loc, "'%s' is an input, not a function; index it with brackets, e.g. '%s[kv_idx]'",
                       name, name);
    } else if (find_variable(name) >= 0 || strcmp(name, "causal") == 0 || strcmp(name, "true") == 0 ||
               strcmp(name, "false") == 0) {
        diag_error(kc->d, n->name_loc, "'%s' is a value, not a function; write '%s' without parentheses", name, name);
    } else if (strcmp(name, "outer") == 0) {
        diag_error(kc->d, n->name_loc, "'outer' appears only in a recurrence's 'update S = decay * S + outer(k, v)'");
    } else {
        const char *cands[N_FUNCTIONS];
        int nc = 0;
        for (int i = 0; i < N_FUNCTIONS; i++)
            if (function_allowed(functions[i].id, w)) cands[nc++] = functions[i].name;
        const char *close = closest_name(name, cands, nc);
        if (close)
            diag_error(kc->d, n->name_loc, "unknown function '%s'; did you mean '%s'?", name, close);
        else
            diag_error(kc->d, n->name_loc,
                       "unknown function '%s'; the built-ins are exp, log, tanh, sqrt, abs, floor, sigmoid, softplus, "
                       "relu, elu, min, max, select, softcap, alibi_slope%s", name,
                       softmax_place(w) ? " and sliding_window" : "");
    }
}

static ir_expr *lower_call(kcheck *kc, const ast_node *n, expr_where w) {
    const char *name = n->name ? n->name : "";
    int fi = find_function(name);
    if (fi < 0) {
        if (is_poisoned(kc, name)) return NULL;
        not_a_function(kc, n, w);
        return NULL;
    }
    fn_id f = functions[fi].id;
    int arity = functions[fi].arity;
    int n_items = n->items ? n->n_items : 0;
    for (int i = 0; i < n_items; i++)
        if (n->items[i] && n->items[i]->kind == AST_NAMED) {
            diag_error(kc->d, n->items[i]->name_loc, "%s takes its arguments by position; drop '%s ='", name,
                       n->items[i]->name ? n->items[i]->name : "");
            return NULL;
        }
    if (n_items != arity) {
        diag_error(kc->d, n->loc, "%s takes %d argument%s, got %d", name, arity, arity == 1 ? "" : "s", n_items);
        return NULL;
    }
    if (!function_allowed(f, w)) {
        if (w == EX_CONST)
            diag_error(kc->d, n->loc, "'sliding_window(...)' is a run-time mask; %s must be a constant", kc->what);
        else
            diag_error(kc->d, n->name_loc,
                       "sliding_window is a softmax-attention mask; a recurrence has no mask (it is causal by construction)");
        return NULL;
    }
    if (f == FN_WINDOW) {
        int W;
        const char *saved = kc->what;
        bool ok = const_int(kc, n->items[0], "the window of sliding_window", 1, 2147483647L, &W);
        kc->what = saved;
        if (!ok) return NULL;
        ir_expr *we = at(ir_const(kc->a, IR_T_INT, W), n->items[0]->loc);
        return expand_builtin(kc, f, &we, n->loc);
    }
    ir_expr *x[3] = {NULL, NULL, NULL};
    bool ok = true;
    for (int i = 0; i < arity; i++) {
        x[i] = n->items[i] ? lower(kc, n->items[i], w) : NULL;
        if (!x[i]) ok = false;
    }
    if (!ok) return NULL;
    if (f == FN_SELECT) {
        ir_expr *c = x[0];
        if (c->type != IR_T_BOOL) {
            char q[96], hint[128];
            diag_error(kc->d, n->items[0]->loc, "the condition of select must be a boolean, but %s is %s; %s",
                       quote_src(kc, n->items[0]->loc, "it", q, sizeof q), type_phrase(c->type),
                       compare_hint(kc, n->items[0]->loc, hint, sizeof hint));
            ok = false;
        }
        ok = same_kind(kc, n, n->items[1], x[1], n->items[2], x[2], "the two branches of select") && ok;
        if (!ok) return NULL;
        return expand_builtin(kc, f, x, n->loc);
    }
    for (int i = 0; i < arity; i++) {
        if (x[i]->type != IR_T_BOOL) continue;
        char q[96];
        diag_error(kc->d, n->items[i]->loc, "%s needs a number, but %s is a boolean%s", name,
                   quote_src(kc, n->items[i]->loc, "its argument", q, sizeof q),
                   (f == FN_MIN || f == FN_MAX) ? "; combine conditions with '&&' or '||'" : "");
        ok = false;
    }
    if (!ok) return NULL;
    if (f == FN_ALIBI) {
        if (x[0]->type != IR_T_INT) {
            char q[96];
            diag_error(kc->d, n->items[0]->loc, "alibi_slope takes a head index, an integer such as 'head', but %s is %s",
                       quote_src(kc, n->items[0]->loc, "its argument", q, sizeof q), type_phrase(x[0]->type));
            return NULL;
        }
        if (kc->k->heads_q <= 0) return NULL;   /* the heads clause already has an error */
    }
    return expand_builtin(kc, f, x, n->loc);
}

static ir_expr *lower_index(kcheck *kc, const ast_node *n, expr_where w) {
    const char *name = n->name ? n->name : "";
    int in = find_input(kc, name);
    if (in < 0) {
        if (is_poisoned(kc, name)) return NULL;
        if (is_reserved_name(name)) {
            diag_error(kc->d, n->name_loc,
                       "'%s' is not an input, so it cannot be indexed; only names declared in 'inputs' take [ ]", name);
        } else {
            const char *cands[64];
            int nc = 0;
            for (int i = 0; i < kc->k->n_inputs && nc < 64; i++) cands[nc++] = kc->k->inputs[i].name;
            const char *close = closest_name(name, cands, nc);
            if (close)
                diag_error(kc->d, n->name_loc, "unknown input '%s'; did you mean '%s'?", name, close);
            else
                diag_error(kc->d, n->name_loc, "unknown input '%s'; declare it first, e.g. 'inputs %s[token]'", name,
                           name);
        }
        return NULL;
    }
    if (w == EX_CONST) {
        diag_error(kc->d, n->loc, "input '%s' is read at run time; %s must be a constant", name, kc->what);
        return NULL;
    }
    if (w == EX_FEATURE) {
        diag_error(kc->d, n->loc, "a feature map is a function of 'x' alone; input '%s' cannot appear in it", name);
        return NULL;
    }
    if (recurrence_place(w)) {
        diag_error(kc->d, n->loc,
                   "a recurrence reads its inputs at the current token, head, k and v; write '%s' without an index",
                   name);
        return NULL;
    }
    const ir_input *inp = &kc->k->inputs[in];
    int n_items = n->items ? n->n_items : 0;
    if (n_items != inp->n_axes) {
        char axes[64];
        describe_axes(inp, axes, sizeof axes);
        diag_error(kc->d, n->loc, "input '%s' has %d ax%s [%s]; index it with %d value%s, got %d", name, inp->n_axes,
                   inp->n_axes == 1 ? "is" : "es", axes, inp->n_axes, inp->n_axes == 1 ? "" : "s", n_items);
        return NULL;
    }
    ir_expr *idx[4] = {NULL, NULL, NULL, NULL};
    bool ok = true;
    for (int i = 0; i < n_items && i < 4; i++) {
        const ast_node *it = n->items[i];
        idx[i] = it ? lower(kc, it, w) : NULL;
        if (!idx[i]) { ok = false; continue; }
        if (idx[i]->type != IR_T_INT) {
            char q[96];
            bool tok = inp->axes[i] == IR_AXIS_TOKEN;
            diag_error(kc->d, it->loc, "the %s index of '%s' must be an integer, but %s is %s; use %s", tok ? "token" : "head",
                       name, quote_src(kc, it->loc, "it", q, sizeof q), type_phrase(idx[i]->type),
                       tok ? "a position such as q_idx or kv_idx" : "a head number such as head");
            ok = false;
        }
    }
    if (!ok) return NULL;
    return at(ir_input_ref(kc->a, kc->k, in, idx, n_items), n->loc);
}

/* ---------------------------------------------------------------- dispatch */

static ir_expr *lower(kcheck *kc, const ast_node *n, expr_where w) {
    if (!n) {   /* only a malformed AST has holes; still never accept it silently */
        src_loc nowhere = {0, 0, 0, 0};
        diag_error(kc->d, nowhere, "missing expression in %s", place_name(w));
        return NULL;
    }
    if (kc->depth >= MAX_DEPTH) {
        diag_error(kc->d, n->loc, "expression nested too deeply (more than %d levels); simplify it", MAX_DEPTH);
        return NULL;
    }
    kc->depth++;
    ir_expr *e = NULL;
    switch (n->kind) {
    case AST_NUMBER:
        if (!isfinite(n->num)) {
            diag_error(kc->d, n->loc, "number out of range: the largest 64-bit float is about 1.8e308");
            break;
        }
        if (n->is_int && fabs(n->num) > 9007199254740992.0) {
            diag_error(kc->d, n->loc, "integer too large: integers are exact only up to 2^53 (9007199254740992); "
                       "write it with '.0' to make it a float");
            break;
        }
        e = at(ir_const(kc->a, n->is_int && n->num == floor(n->num) ? IR_T_INT : IR_T_FLOAT, n->num), n->loc);
        break;
    case AST_IDENT: e = lower_name(kc, n, w); break;
    case AST_UNARY: e = lower_unary(kc, n, w); break;
    case AST_BINARY: e = lower_binary(kc, n, w); break;
    case AST_TERNARY:
        if (n->a && n->b && n->c) e = lower_select(kc, n, n->a, n->b, n->c, w, "'? :'");
        else diag_error(kc->d, n->loc, "'? :' needs a condition and two values: 'c ? a : b'");
        break;
    case AST_CALL: e = lower_call(kc, n, w); break;
    case AST_INDEX: e = lower_index(kc, n, w); break;
    case AST_LIST: case AST_INTERVAL:
        diag_error(kc->d, n->loc, "a list is not a value here; lists appear only in rope arguments such as "
                   "'dims = [0, 64)' or 'sections = [16, 24, 24]'");
        break;
    case AST_NAMED:
        diag_error(kc->d, n->loc, "'%s = ...' is not an expression; to compare, write '=='",
                   n->name ? n->name : "");
        break;
    case AST_TYPED:
        diag_error(kc->d, n->loc, "a type annotation ': %s' belongs in an 'inputs' declaration, not in an expression",
                   n->name ? n->name : "");
        break;
    }
    kc->depth--;
    return e;
}

ir_expr *lower_expr(kcheck *kc, const ast_node *n, expr_where w, const char *what) {
    const char *saved = kc->what;
    int saved_depth = kc->depth;
    kc->what = what;
    ir_expr *e = lower(kc, n, w);
    kc->what = saved;
    kc->depth = saved_depth;
    if (e && w != EX_CONST) {
        double v;
        if (const_eval(kc, e, &v) == CE_ERROR) return NULL;
    }
    return e;
}
