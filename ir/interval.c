/* Interval analysis: an abstract value (a range and whether nan is possible, or which
 * truth values are possible) for every expression, given ranges of the index variables.
 *
 * Soundness is with respect to the interpreter's semantics: ints are exact integral doubles,
 * floats IEEE doubles. Intervals of monotone, correctly rounded operations (+ - * / sqrt,
 * floor, comparisons) are evaluated at their endpoints with the same rounding, which bounds
 * every rounded result exactly; libm functions (exp, log, tanh, pow) are widened by a few
 * ulps. Inputs are unknown values. */
#include <math.h>
#include <stdint.h>
#include "ir/interval.h"

int64_t ir_floor_div(int64_t a, int64_t b) {
    int64_t q = a / b, r = a % b;
    return (r != 0 && ((r < 0) != (b < 0))) ? q - 1 : q;
}

/* An abstract value. Numbers: every non-nan value lies in [lo, hi] (lo > hi: there is
 * none), nan says whether nan is possible. Bools: which truth values are possible. */
typedef struct aval {
    double lo, hi;
    bool nan;
    bool can_true, can_false;
} aval;

/* Int intervals stay within ±2^52, so sums of two bounds are exact doubles. */
#define INT_LIMIT 4503599627370496.0

static aval num(double lo, double hi, bool nan) { return (aval){lo, hi, nan, false, false}; }
static aval tri(bool t, bool f) { return (aval){0, 0, false, t, f}; }
static aval unknown(ir_type t) {
    if (t == IR_T_BOOL) return tri(true, true);
    return num(-INFINITY, INFINITY, t == IR_T_FLOAT);
}
static aval nan_only(void) { return num(INFINITY, -INFINITY, true); }
static bool is_empty(aval a) { return !(a.lo <= a.hi); }
static bool has_inf(aval a) { return isinf(a.lo) || isinf(a.hi); }
static double min2(double a, double b) { return a < b ? a : b; }
static double max2(double a, double b) { return a > b ? a : b; }
static double min4(double a, double b, double c, double d) { return min2(min2(a, b), min2(c, d)); }
static double max4(double a, double b, double c, double d) { return max2(max2(a, b), max2(c, d)); }

/* An int result: beyond ±2^52 it is no longer tracked. */
static aval int_result(aval r) {
    if (!is_empty(r) && (r.lo < -INT_LIMIT || r.hi > INT_LIMIT)) { r.lo = -INFINITY; r.hi = INFINITY; }
    return r;
}

static aval join(aval a, aval b) {
    return (aval){min2(a.lo, b.lo), max2(a.hi, b.hi), a.nan || b.nan, a.can_true || b.can_true,
                  a.can_false || b.can_false};
}

/* A few ulps outward: libm's exp/log/tanh/pow are within one ulp, not correctly rounded. */
static aval widen(aval a) {
    for (int i = 0; i < 4; i++) {
        a.lo = nextafter(a.lo, -INFINITY);
        a.hi = nextafter(a.hi, INFINITY);
    }
    return a;
}

static aval eval(const ir_expr *e, const ir_box *b);

static aval var_value(ir_var v, const ir_box *b) {
    switch (v) {
    case IR_VAR_Q_IDX: case IR_VAR_KV_IDX: case IR_VAR_HEAD: case IR_VAR_BATCH: case IR_VAR_SEQ_Q: case IR_VAR_SEQ_K:
        return int_result(num((double)b->lo[v], (double)b->hi[v], false));
    default: return unknown(IR_T_FLOAT);
    }
}

static aval compare(ir_op op, aval x, aval y, ir_type operand) {
    bool nan = x.nan || y.nan;
    if (operand == IR_T_BOOL) {   /* eq / ne of truth values */
        bool eq_t = (x.can_true && y.can_true) || (x.can_false && y.can_false);
        bool eq_f = (x.can_true && y.can_false) || (x.can_false && y.can_true);
        return op == IR_EQ ? tri(eq_t, eq_f) : tri(eq_f, eq_t);
    }
    bool both = !is_empty(x) && !is_empty(y);
    bool t, f;
    switch (op) {
    case IR_LT: t = both && x.lo < y.hi; f = both && x.hi >= y.lo; break;
    case IR_LE: t = both && x.lo <= y.hi; f = both && x.hi > y.lo; break;
    case IR_GT: t = both && x.hi > y.lo; f = both && x.lo <= y.hi; break;
    case IR_GE: t = both && x.hi >= y.lo; f = both && x.lo < y.hi; break;
    case IR_EQ: case IR_NE: {
        bool overlap = both && x.lo <= y.hi && y.lo <= x.hi;
        bool same_point = both && x.lo == x.hi && y.lo == y.hi && x.lo == y.lo;
        t = overlap;
        f = both && !same_point;
        if (op == IR_NE) { bool s = t; t = f; f = s; if (nan) t = true; return tri(t, f); }
        break;
    }
    default: t = f = true; break;
    }
    if (nan) f = true;   /* every ordered comparison with nan is false */
    return tri(t, f);
}

static aval arith(const ir_expr *e, aval x, aval y) {
    bool is_int = e->type == IR_T_INT;
    bool nan = x.nan || y.nan;
    if (is_empty(x) || is_empty(y)) return nan_only();
    if (has_inf(x) || has_inf(y)) {   /* inf - inf, 0 * inf: give up on the bounds */
        aval u = unknown(e->type);
        u.nan = u.nan || nan;
        return u;
    }
    aval r;
    switch (e->op) {
    case IR_ADD: r = num(x.lo + y.lo, x.hi + y.hi, nan); break;
    case IR_SUB: r = num(x.lo - y.hi, x.hi - y.lo, nan); break;
    case IR_MUL: {
        double a = x.lo * y.lo, b = x.lo * y.hi, c = x.hi * y.lo, d = x.hi * y.hi;
        r = num(min4(a, b, c, d), max4(a, b, c, d), nan);
        break;
    }
    case IR_DIV: {
        if (y.lo <= 0 && y.hi >= 0) return unknown(IR_T_FLOAT);
        double a = x.lo / y.lo, b = x.lo / y.hi, c = x.hi / y.lo, d = x.hi / y.hi;
        r = num(min4(a, b, c, d), max4(a, b, c, d), nan);
        break;
    }
    case IR_IDIV: {   /* floor is monotone, so floor(x/y) is extreme at the corners */
        if (y.lo <= 0 && y.hi >= 0) return num(-INFINITY, INFINITY, true);
        int64_t xl = (int64_t)x.lo, xh = (int64_t)x.hi, yl = (int64_t)y.lo, yh = (int64_t)y.hi;
        double a = (double)ir_floor_div(xl, yl), b = (double)ir_floor_div(xl, yh);
        double c = (double)ir_floor_div(xh, yl), d = (double)ir_floor_div(xh, yh);
        r = num(min4(a, b, c, d), max4(a, b, c, d), nan);
        break;
    }
    case IR_MOD: {   /* result has the divisor's sign, |result| < |divisor| */
        if (y.lo <= 0 && y.hi >= 0) return num(-INFINITY, INFINITY, true);
        int64_t xl = (int64_t)x.lo, xh = (int64_t)x.hi;
        if (y.lo == y.hi) {
            int64_t m = (int64_t)y.lo;
            if (ir_floor_div(xl, m) == ir_floor_div(xh, m))   /* one period: x - m·q, increasing */
                return num((double)(xl - m * ir_floor_div(xl, m)), (double)(xh - m * ir_floor_div(xh, m)), nan);
        }
        if (y.lo > 0) r = (x.lo >= 0 && x.hi < y.lo) ? num(x.lo, x.hi, nan) : num(0, y.hi - 1, nan);
        else r = (x.hi <= 0 && x.lo > y.hi) ? num(x.lo, x.hi, nan) : num(y.lo + 1, 0, nan);
        break;
    }
    case IR_POW: {   /* exp(y·ln x) for x > 0: monotone in each argument, extreme at corners */
        if (!(x.lo > 0)) return unknown(IR_T_FLOAT);
        double a = pow(x.lo, y.lo), b = pow(x.lo, y.hi), c = pow(x.hi, y.lo), d = pow(x.hi, y.hi);
        r = widen(num(min4(a, b, c, d), max4(a, b, c, d), nan));
        if (r.lo < 0) r.lo = 0;
        break;
    }
    default: return unknown(e->type);
    }
    return is_int ? int_result(r) : r;
}

static aval unary(const ir_expr *e, aval x) {
    if (is_empty(x)) return nan_only();
    aval r;
    switch (e->op) {
    case IR_NEG: r = num(-x.hi, -x.lo, x.nan); break;
    case IR_ABS:
        if (x.lo >= 0) r = num(x.lo, x.hi, x.nan);
        else if (x.hi <= 0) r = num(-x.hi, -x.lo, x.nan);
        else r = num(0, max2(-x.lo, x.hi), x.nan);
        break;
    case IR_FLOOR: r = num(floor(x.lo), floor(x.hi), x.nan); break;
    case IR_TO_FLOAT: r = num(x.lo, x.hi, x.nan); break;
    case IR_SQRT:
        if (x.hi < 0) return nan_only();
        r = num(sqrt(max2(x.lo, 0)), sqrt(x.hi), x.nan || x.lo < 0);
        break;
    case IR_EXP:
        r = widen(num(exp(x.lo), exp(x.hi), x.nan));
        if (r.lo < 0) r.lo = 0;
        break;
    case IR_LOG:
        if (x.hi < 0) return nan_only();
        r = num(x.lo <= 0 ? -INFINITY : log(x.lo), log(x.hi), x.nan || x.lo < 0);
        r = widen(r);
        break;
    case IR_TANH:
        r = widen(num(tanh(x.lo), tanh(x.hi), x.nan));
        r.lo = max2(r.lo, -1);
        r.hi = min2(r.hi, 1);
        break;
    default: return unknown(e->type);
    }
    return e->type == IR_T_INT ? int_result(r) : r;
}

static aval eval(const ir_expr *e, const ir_box *r) {
    if (!e) return unknown(IR_T_BOOL);
    switch (e->op) {
    case IR_CONST:
        if (e->type == IR_T_BOOL) return tri(e->value != 0, e->value == 0);
        if (isnan(e->value)) return nan_only();
        return e->type == IR_T_INT ? int_result(num(e->value, e->value, false)) : num(e->value, e->value, false);
    case IR_VAR: return var_value(e->var, r);
    case IR_INPUT: return unknown(e->type);
    case IR_NOT: {
        aval x = eval(e->args[0], r);
        return tri(x.can_false, x.can_true);
    }
    case IR_AND: case IR_OR: {
        aval x = eval(e->args[0], r), y = eval(e->args[1], r);
        if (e->op == IR_AND) return tri(x.can_true && y.can_true, x.can_false || y.can_false);
        return tri(x.can_true || y.can_true, x.can_false && y.can_false);
    }
    case IR_LT: case IR_LE: case IR_GT: case IR_GE: case IR_EQ: case IR_NE:
        return compare(e->op, eval(e->args[0], r), eval(e->args[1], r), e->args[0]->type);
    case IR_SELECT: {
        aval c = eval(e->args[0], r);
        if (c.can_true && !c.can_false) return eval(e->args[1], r);
        if (c.can_false && !c.can_true) return eval(e->args[2], r);
        return join(eval(e->args[1], r), eval(e->args[2], r));
    }
    case IR_MIN: case IR_MAX: {
        aval x = eval(e->args[0], r), y = eval(e->args[1], r);
        if (x.nan || y.nan || is_empty(x) || is_empty(y)) return join(x, y);   /* one of the operands, or nan */
        if (e->op == IR_MIN) return num(min2(x.lo, y.lo), min2(x.hi, y.hi), false);
        return num(max2(x.lo, y.lo), max2(x.hi, y.hi), false);
    }
    case IR_ADD: case IR_SUB: case IR_MUL: case IR_DIV: case IR_IDIV: case IR_MOD: case IR_POW:
        return arith(e, eval(e->args[0], r), eval(e->args[1], r));
    case IR_NEG: case IR_ABS: case IR_FLOOR: case IR_TO_FLOAT: case IR_SQRT: case IR_EXP: case IR_LOG:
    case IR_TANH:
        return unary(e, eval(e->args[0], r));
    default:
        return unknown(e->type);
    }
}

ir_box ir_box_of_rect(const ir_rect *r) {
    ir_box b = {{0}, {0}};
    b.lo[IR_VAR_Q_IDX] = r->q_lo;  b.hi[IR_VAR_Q_IDX] = r->q_hi;
    b.lo[IR_VAR_KV_IDX] = r->kv_lo; b.hi[IR_VAR_KV_IDX] = r->kv_hi;
    b.lo[IR_VAR_HEAD] = r->head_lo; b.hi[IR_VAR_HEAD] = r->head_hi;
    b.lo[IR_VAR_BATCH] = r->batch_lo; b.hi[IR_VAR_BATCH] = r->batch_hi;
    b.lo[IR_VAR_SEQ_Q] = b.hi[IR_VAR_SEQ_Q] = r->seq_q;
    b.lo[IR_VAR_SEQ_K] = b.hi[IR_VAR_SEQ_K] = r->seq_k;
    return b;
}

void ir_interval_truth(const ir_expr *e, const ir_box *b, bool *can_true, bool *can_false) {
    aval v = eval(e, b);
    *can_true = v.can_true;
    *can_false = v.can_false;
}

bool ir_expr_int_bounds(const ir_expr *e, int heads, int64_t *lo, int64_t *hi) {
    if (!e || e->type != IR_T_INT || heads < 1) return false;
    const int64_t L = IR_MAX_LENGTH;
    ir_box b = {{0}, {0}};
    b.lo[IR_VAR_Q_IDX] = -L; b.hi[IR_VAR_Q_IDX] = L - 1;   /* i + seq_k - seq_q */
    b.hi[IR_VAR_KV_IDX] = L - 1;
    b.hi[IR_VAR_HEAD] = heads - 1;
    b.hi[IR_VAR_BATCH] = L - 1;
    b.hi[IR_VAR_SEQ_Q] = b.hi[IR_VAR_SEQ_K] = L;
    aval v = eval(e, &b);
    if (v.nan || is_empty(v) || has_inf(v)) return false;
    *lo = (int64_t)v.lo;
    *hi = (int64_t)v.hi;
    return true;
}
