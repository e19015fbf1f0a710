/* Construction and queries of IR expressions; the one place that knows operand typing. */
#include <string.h>
#include "ir/ir.h"

static ir_expr *new_expr(arena *a, ir_op op, ir_type t) {
    ir_expr *e = arena_alloc(a, sizeof *e);
    e->op = op;
    e->type = t;
    return e;
}

ir_expr *ir_const(arena *a, ir_type t, double v) {
    ir_expr *e = new_expr(a, IR_CONST, t);
    e->value = v;
    return e;
}

ir_expr *ir_var_ref(arena *a, ir_var v) {
    ir_expr *e = new_expr(a, IR_VAR, (v == IR_VAR_SCORE || v == IR_VAR_X) ? IR_T_FLOAT : IR_T_INT);
    e->var = v;
    return e;
}

static ir_expr *to_float(arena *a, ir_expr *x) {
    if (x->type == IR_T_FLOAT) return x;
    if (x->op == IR_CONST) return ir_const(a, IR_T_FLOAT, x->value);
    ir_expr *e = new_expr(a, IR_TO_FLOAT, IR_T_FLOAT);
    e->n_args = 1;
    e->args[0] = x;
    e->loc = x->loc;
    return e;
}

ir_expr *ir_unary(arena *a, ir_op op, ir_expr *x) {
    ir_type t;
    switch (op) {
    case IR_NOT: t = IR_T_BOOL; break;
    case IR_NEG: case IR_ABS: t = x->type == IR_T_INT ? IR_T_INT : IR_T_FLOAT; break;
    case IR_TO_FLOAT: return to_float(a, x);
    case IR_FLOOR: x = to_float(a, x); t = IR_T_FLOAT; break;
    default: x = to_float(a, x); t = IR_T_FLOAT; break;   /* exp, log, tanh, sqrt */
    }
    ir_expr *e = new_expr(a, op, t);
    e->n_args = 1;
    e->args[0] = x;
    e->loc = x->loc;
    return e;
}

ir_expr *ir_binary(arena *a, ir_op op, ir_expr *x, ir_expr *y) {
    ir_type t;
    switch (op) {
    case IR_AND: case IR_OR: t = IR_T_BOOL; break;
    case IR_LT: case IR_LE: case IR_GT: case IR_GE: case IR_EQ: case IR_NE:
        if (x->type != y->type && x->type != IR_T_BOOL && y->type != IR_T_BOOL) {
            x = to_float(a, x);
            y = to_float(a, y);
        }
        t = IR_T_BOOL;
        break;
    case IR_DIV: case IR_POW:
        x = to_float(a, x);
        y = to_float(a, y);
        t = IR_T_FLOAT;
        break;
    case IR_IDIV: case IR_MOD:
        t = IR_T_INT;       /* the checker only builds these on ints */
        break;
    default:                /* add sub mul min max */
        if (x->type == IR_T_INT && y->type == IR_T_INT) t = IR_T_INT;
        else { x = to_float(a, x); y = to_float(a, y); t = IR_T_FLOAT; }
        break;
    }
    ir_expr *e = new_expr(a, op, t);
    e->n_args = 2;
    e->args[0] = x;
    e->args[1] = y;
    e->loc = x->loc;
    return e;
}

ir_expr *ir_select(arena *a, ir_expr *c, ir_expr *t, ir_expr *f) {
    if (t->type != f->type && t->type != IR_T_BOOL && f->type != IR_T_BOOL) {
        t = to_float(a, t);
        f = to_float(a, f);
    }
    ir_expr *e = new_expr(a, IR_SELECT, t->type);
    e->n_args = 3;
    e->args[0] = c;
    e->args[1] = t;
    e->args[2] = f;
    e->loc = c->loc;
    return e;
}

ir_expr *ir_input_ref(arena *a, const ir_kernel *k, int input, ir_expr **idx, int n_idx) {
    ir_expr *e = new_expr(a, IR_INPUT, k->inputs[input].scalar == IR_S_I32 ? IR_T_INT : IR_T_FLOAT);
    e->input = input;
    e->n_args = n_idx > 4 ? 4 : n_idx;
    for (int i = 0; i < e->n_args; i++) e->args[i] = idx[i];
    return e;
}

bool ir_expr_uses_var(const ir_expr *e, ir_var v) {
    if (!e) return false;
    if (e->op == IR_VAR && e->var == v) return true;
    for (int i = 0; i < e->n_args; i++)
        if (ir_expr_uses_var(e->args[i], v)) return true;
    return false;
}

bool ir_expr_uses_input(const ir_expr *e) {
    if (!e) return false;
    if (e->op == IR_INPUT) return true;
    for (int i = 0; i < e->n_args; i++)
        if (ir_expr_uses_input(e->args[i])) return true;
    return false;
}

const char *ir_op_name(ir_op op) {
    static const char *const names[IR_OP_COUNT] = {
        [IR_CONST] = "const", [IR_VAR] = "var", [IR_INPUT] = "input",
        [IR_NEG] = "neg", [IR_NOT] = "not", [IR_EXP] = "exp", [IR_LOG] = "log", [IR_TANH] = "tanh",
        [IR_SQRT] = "sqrt", [IR_ABS] = "abs", [IR_FLOOR] = "floor", [IR_TO_FLOAT] = "float",
        [IR_ADD] = "add", [IR_SUB] = "sub", [IR_MUL] = "mul", [IR_DIV] = "div", [IR_IDIV] = "idiv",
        [IR_MOD] = "mod", [IR_POW] = "pow", [IR_MIN] = "min", [IR_MAX] = "max",
        [IR_LT] = "lt", [IR_LE] = "le", [IR_GT] = "gt", [IR_GE] = "ge", [IR_EQ] = "eq", [IR_NE] = "ne",
        [IR_AND] = "and", [IR_OR] = "or", [IR_SELECT] = "select",
    };
    return (op >= 0 && op < IR_OP_COUNT && names[op]) ? names[op] : "?";
}

const char *ir_var_name(ir_var v) {
    static const char *const names[IR_VAR_COUNT] = {
        [IR_VAR_Q_IDX] = "q_idx", [IR_VAR_KV_IDX] = "kv_idx", [IR_VAR_HEAD] = "head",
        [IR_VAR_BATCH] = "batch", [IR_VAR_SCORE] = "score", [IR_VAR_SEQ_Q] = "seq_q",
        [IR_VAR_SEQ_K] = "seq_k", [IR_VAR_X] = "x",
    };
    return (v >= 0 && v < IR_VAR_COUNT) ? names[v] : "?";
}

ir_kernel *ir_module_find(const ir_module *m, const char *name) {
    for (int i = 0; i < m->n_kernels; i++)
        if (strcmp(m->kernels[i]->name, name) == 0) return m->kernels[i];
    return NULL;
}

int ir_rope_pair_dim0(const ir_rope *r, int j) {
    return r->layout == IR_ROPE_INTERLEAVED ? r->dim_lo + 2 * j : r->dim_lo + j;
}

int ir_rope_pair_dim1(const ir_rope *r, int j) {
    return r->layout == IR_ROPE_INTERLEAVED ? r->dim_lo + 2 * j + 1 : r->dim_lo + j + (r->dim_hi - r->dim_lo) / 2;
}
