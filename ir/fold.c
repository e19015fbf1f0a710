/* Constant folding of IR expressions: operations over constants are evaluated with the
 * interpreter's semantics (IEEE double; ints as exact integral doubles, floor division,
 * remainder with the divisor's sign), and algebraic identities are applied only where they
 * hold for every value, including -0, inf and nan. Nodes are never modified in place (they
 * may be shared); a changed subtree is rebuilt. */
#include <math.h>
#include <stdint.h>
#include "ir/ir.h"

/* Ints fold only while every value stays exactly representable (|v| <= 2^53). */
#define EXACT_INT_LIMIT 9007199254740992.0

static bool is_const(const ir_expr *e) { return e->op == IR_CONST; }

/* A constant with exactly this value, -0 distinguished from +0. */
static bool is_exactly(const ir_expr *e, double v) {
    return e->op == IR_CONST && e->value == v && signbit(e->value) == signbit(v);
}

static ir_expr *make_const(arena *a, const ir_expr *like, ir_type t, double v) {
    ir_expr *c = ir_const(a, t, v);
    c->loc = like->loc;
    return c;
}

static bool int_ok(double v) { return isfinite(v) && v == floor(v) && fabs(v) <= EXACT_INT_LIMIT; }

static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b, r = a % b;
    return (r != 0 && ((r < 0) != (b < 0))) ? q - 1 : q;
}

static int64_t floor_mod(int64_t a, int64_t b) {
    int64_t r = a % b;
    return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}

/* min/max: a nan operand or a -0/+0 pair is left to run time, whose semantics decide. */
static bool fold_minmax(bool is_min, double x, double y, double *out) {
    if (isnan(x) || isnan(y)) return false;
    if (x == y && signbit(x) != signbit(y)) return false;
    *out = is_min ? (x < y ? x : y) : (x > y ? x : y);
    return true;
}

/* Evaluates e, whose operands are all constants. False: leave it for run time. */
static bool eval_const(const ir_expr *e, double *out) {
    double x = e->n_args > 0 ? e->args[0]->value : 0, y = e->n_args > 1 ? e->args[1]->value : 0;
    double r;
    switch (e->op) {
    case IR_NEG: r = -x; break;
    case IR_NOT: r = x == 0; break;
    case IR_EXP: r = exp(x); break;
    case IR_LOG: r = log(x); break;
    case IR_TANH: r = tanh(x); break;
    case IR_SQRT: r = sqrt(x); break;
    case IR_ABS: r = fabs(x); break;
    case IR_FLOOR: r = floor(x); break;
    case IR_TO_FLOAT: r = x; break;
    case IR_ADD: r = x + y; break;
    case IR_SUB: r = x - y; break;
    case IR_MUL: r = x * y; break;
    case IR_DIV: r = x / y; break;
    case IR_IDIV: case IR_MOD:
        if (!int_ok(x) || !int_ok(y) || y == 0) return false;
        r = (double)(e->op == IR_IDIV ? floor_div((int64_t)x, (int64_t)y) : floor_mod((int64_t)x, (int64_t)y));
        break;
    case IR_POW:
        /* 2^n for integral n is a power of two exactly (the alibi slopes); pow gives the same */
        if (x == 2 && y == floor(y) && y >= -1074 && y <= 1023) r = ldexp(1.0, (int)y);
        else r = pow(x, y);
        break;
    case IR_MIN: if (!fold_minmax(true, x, y, &r)) return false; break;
    case IR_MAX: if (!fold_minmax(false, x, y, &r)) return false; break;
    case IR_LT: r = x < y; break;
    case IR_LE: r = x <= y; break;
    case IR_GT: r = x > y; break;
    case IR_GE: r = x >= y; break;
    case IR_EQ: r = x == y; break;
    case IR_NE: r = x != y; break;
    case IR_AND: r = x != 0 && y != 0; break;
    case IR_OR: r = x != 0 || y != 0; break;
    case IR_SELECT: r = x != 0 ? y : e->args[2]->value; break;
    default: return false;
    }
    if (e->type == IR_T_INT && !int_ok(r)) return false;
    *out = r;
    return true;
}

/* Identities that hold for every operand value. Returns the replacement or NULL. */
static ir_expr *simplify(arena *a, ir_expr *e) {
    ir_expr *x = e->n_args > 0 ? e->args[0] : NULL, *y = e->n_args > 1 ? e->args[1] : NULL;
    bool is_int = e->type == IR_T_INT;
    switch (e->op) {
    case IR_AND:
        if (is_const(x)) return x->value != 0 ? y : x;
        if (is_const(y)) return y->value != 0 ? x : y;
        return NULL;
    case IR_OR:
        if (is_const(x)) return x->value != 0 ? x : y;
        if (is_const(y)) return y->value != 0 ? y : x;
        return NULL;
    case IR_NOT:
        if (x->op == IR_NOT) return x->args[0];
        return NULL;
    case IR_NEG:
        if (x->op == IR_NEG) return x->args[0];
        return NULL;
    case IR_SELECT:
        if (is_const(x)) return x->value != 0 ? y : e->args[2];
        if (y == e->args[2]) return y;
        return NULL;
    case IR_MUL:   /* x*1 is x for every float (nan, inf, -0 included); x*0 only for ints */
        if (is_exactly(y, 1)) return x;
        if (is_exactly(x, 1)) return y;
        if (is_int && (is_exactly(x, 0) || is_exactly(y, 0))) return make_const(a, e, IR_T_INT, 0);
        return NULL;
    case IR_ADD:   /* float: only -0 is neutral (-0 + +0 = +0) */
        if (is_int ? is_exactly(y, 0) : is_exactly(y, -0.0)) return x;
        if (is_int ? is_exactly(x, 0) : is_exactly(x, -0.0)) return y;
        return NULL;
    case IR_SUB:   /* x - (+0) is x for every float, including -0 */
        if (is_exactly(y, 0)) return x;
        return NULL;
    case IR_DIV:
        if (is_exactly(y, 1)) return x;
        return NULL;
    case IR_IDIV:
        if (is_exactly(y, 1)) return x;
        return NULL;
    case IR_POW:   /* pow(x, 1) == x for every x */
        if (is_exactly(y, 1)) return x;
        return NULL;
    default:
        return NULL;
    }
}

ir_expr *ir_fold(arena *a, ir_expr *e) {
    if (!e || e->n_args <= 0 || e->n_args > 4) return e;
    ir_expr *args[4];
    bool changed = false, all_const = true;
    for (int i = 0; i < e->n_args; i++) {
        if (!e->args[i]) return e;   /* malformed; the verifier reports it */
        args[i] = ir_fold(a, e->args[i]);
        changed |= args[i] != e->args[i];
        all_const &= args[i]->op == IR_CONST;
    }
    ir_expr *cur = e;
    if (changed) {
        cur = arena_alloc(a, sizeof *cur);
        *cur = *e;
        for (int i = 0; i < e->n_args; i++) cur->args[i] = args[i];
    }
    if (e->op == IR_INPUT) return cur;
    double v;
    if (all_const && eval_const(cur, &v)) return make_const(a, e, e->type, v);
    ir_expr *s = simplify(a, cur);
    return s ? s : cur;
}
