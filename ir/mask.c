/* Mask analysis: the band a mask implies on q_idx - kv_idx (for loop bounds) and the
 * classification of a q-tile x kv-tile rectangle as all-true, all-false or mixed (so a
 * backend skips empty tiles and runs full ones without per-element tests).
 *
 * Soundness is with respect to the interpreter's semantics: ints are exact integral doubles,
 * floats IEEE doubles. Intervals of monotone, correctly rounded operations (+ - * / sqrt,
 * floor, comparisons) are evaluated at their endpoints with the same rounding, which bounds
 * every rounded result exactly; libm functions (exp, log, tanh, pow) are widened by a few
 * ulps. Inputs are unknown values. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include "ir/mask.h"

/* ================================================================ band detection */

/* Mask implies lo <= d <= hi (d = q_idx - kv_idx; INT64_MIN / INT64_MAX: open); exact: the
 * mask is equivalent to it. empty: the mask is never true (which is exact by itself). */
typedef struct band {
    bool empty, exact;
    int64_t lo, hi;
} band;

static const band NO_INFO = {false, false, INT64_MIN, INT64_MAX};
static const band ALWAYS = {false, true, INT64_MIN, INT64_MAX};
static const band NEVER = {true, true, 1, 0};

/* cq·q_idx + ckv·kv_idx + c with small integer coefficients, so the value is an exactly
 * representable integer in int and float arithmetic alike (positions < 2^31). */
typedef struct linear {
    int64_t cq, ckv, c;
} linear;

#define LINEAR_MAX_COEF ((int64_t)1 << 10)
#define LINEAR_MAX_CONST ((int64_t)1 << 40)

static bool linear_in_range(const linear *l) {
    return llabs(l->cq) <= LINEAR_MAX_COEF && llabs(l->ckv) <= LINEAR_MAX_COEF && llabs(l->c) <= LINEAR_MAX_CONST;
}

static bool linear_form(const ir_expr *e, linear *out) {
    if (!e || (e->type != IR_T_INT && e->type != IR_T_FLOAT)) return false;
    linear a, b;
    switch (e->op) {
    case IR_CONST:
        if (!(fabs(e->value) <= (double)LINEAR_MAX_CONST) || e->value != floor(e->value)) return false;
        *out = (linear){0, 0, (int64_t)e->value};
        return true;
    case IR_VAR:
        if (e->var == IR_VAR_Q_IDX) { *out = (linear){1, 0, 0}; return true; }
        if (e->var == IR_VAR_KV_IDX) { *out = (linear){0, 1, 0}; return true; }
        return false;
    case IR_TO_FLOAT:
        return linear_form(e->args[0], out);
    case IR_NEG:
        if (!linear_form(e->args[0], &a)) return false;
        *out = (linear){-a.cq, -a.ckv, -a.c};
        return true;
    case IR_ADD: case IR_SUB: {
        if (!linear_form(e->args[0], &a) || !linear_form(e->args[1], &b)) return false;
        int64_t s = e->op == IR_ADD ? 1 : -1;
        *out = (linear){a.cq + s * b.cq, a.ckv + s * b.ckv, a.c + s * b.c};
        return linear_in_range(out);
    }
    case IR_MUL: {
        if (!linear_form(e->args[0], &a) || !linear_form(e->args[1], &b)) return false;
        if (a.cq == 0 && a.ckv == 0) { linear t = a; a = b; b = t; }
        if (b.cq != 0 || b.ckv != 0) return false;   /* product of two variables */
        double m = fabs((double)b.c) * (double)(llabs(a.cq) + llabs(a.ckv) + llabs(a.c));
        if (m > (double)LINEAR_MAX_CONST) return false;
        *out = (linear){a.cq * b.c, a.ckv * b.c, a.c * b.c};
        return linear_in_range(out);
    }
    default:
        return false;
    }
}

static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b, r = a % b;
    return (r != 0 && ((r < 0) != (b < 0))) ? q - 1 : q;
}
static int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

static band range(int64_t lo, int64_t hi) { return (band){false, true, lo, hi}; }

/* The band of `x op y` when x - y is linear in d = q_idx - kv_idx. */
static band compare_band(ir_op op, const ir_expr *x, const ir_expr *y) {
    linear a, b;
    if (!linear_form(x, &a) || !linear_form(y, &b)) return NO_INFO;
    int64_t k = a.cq - b.cq, c = a.c - b.c;      /* x - y = k·q_idx + (a.ckv - b.ckv)·kv_idx + c */
    if (a.ckv - b.ckv != -k) return NO_INFO;     /* not a function of d alone */
    if (k == 0) {                                /* constant comparison */
        bool t = op == IR_LT ? c < 0 : op == IR_LE ? c <= 0 : op == IR_GT ? c > 0 : op == IR_GE ? c >= 0
               : op == IR_EQ ? c == 0 : c != 0;
        return t ? ALWAYS : NEVER;
    }
    if (k < 0) {                                 /* k·d + c op 0  <=>  (-k)·d - c op' 0 */
        k = -k;
        c = -c;
        op = op == IR_LT ? IR_GT : op == IR_GT ? IR_LT : op == IR_LE ? IR_GE : op == IR_GE ? IR_LE : op;
    }
    int64_t n = -c;                              /* k·d op n, k > 0, d an integer */
    switch (op) {
    case IR_LT: return range(INT64_MIN, ceil_div(n, k) - 1);
    case IR_LE: return range(INT64_MIN, floor_div(n, k));
    case IR_GT: return range(floor_div(n, k) + 1, INT64_MAX);
    case IR_GE: return range(ceil_div(n, k), INT64_MAX);
    case IR_EQ: return n % k == 0 ? range(n / k, n / k) : NEVER;
    case IR_NE: return n % k == 0 ? NO_INFO : ALWAYS;
    default: return NO_INFO;
    }
}

static band band_and(band a, band b) {
    if (a.empty) return a;
    if (b.empty) return b;
    int64_t lo = a.lo > b.lo ? a.lo : b.lo, hi = a.hi < b.hi ? a.hi : b.hi;
    if (lo > hi) return NEVER;                   /* implies an empty range: never true */
    return (band){false, a.exact && b.exact, lo, hi};
}

/* x <= y + 1 without overflow. */
static bool le_succ(int64_t x, int64_t y) { return y == INT64_MAX || x <= y + 1; }

static band band_or(band a, band b) {
    if (a.empty) return b;
    if (b.empty) return a;
    bool touching = le_succ(a.lo, b.hi) && le_succ(b.lo, a.hi);
    return (band){false, a.exact && b.exact && touching, a.lo < b.lo ? a.lo : b.lo, a.hi > b.hi ? a.hi : b.hi};
}

static band band_not(band a) {
    if (a.empty) return ALWAYS;
    if (!a.exact) return NO_INFO;
    if (a.lo == INT64_MIN && a.hi == INT64_MAX) return NEVER;
    if (a.lo == INT64_MIN) return range(a.hi + 1, INT64_MAX);
    if (a.hi == INT64_MAX) return range(INT64_MIN, a.lo - 1);
    return NO_INFO;                              /* two rays: no single band */
}

static band band_of(const ir_expr *e) {
    if (!e || e->type != IR_T_BOOL) return NO_INFO;
    switch (e->op) {
    case IR_CONST: return e->value != 0 ? ALWAYS : NEVER;
    case IR_AND: return band_and(band_of(e->args[0]), band_of(e->args[1]));
    case IR_OR: return band_or(band_of(e->args[0]), band_of(e->args[1]));
    case IR_NOT: return band_not(band_of(e->args[0]));
    case IR_SELECT: {   /* (c && a) || (!c && b) */
        band c = band_of(e->args[0]);
        return band_or(band_and(c, band_of(e->args[1])), band_and(band_not(c), band_of(e->args[2])));
    }
    case IR_EQ: case IR_NE:
        if (e->args[0]->type == IR_T_BOOL) {   /* (a && b) || (!a && !b), negated for ne */
            band a = band_of(e->args[0]), b = band_of(e->args[1]);
            if (e->op == IR_EQ) return band_or(band_and(a, b), band_and(band_not(a), band_not(b)));
            return band_or(band_and(a, band_not(b)), band_and(band_not(a), b));
        }
        return compare_band(e->op, e->args[0], e->args[1]);
    case IR_LT: case IR_LE: case IR_GT: case IR_GE:
        return compare_band(e->op, e->args[0], e->args[1]);
    default:
        return NO_INFO;
    }
}

ir_mask_band ir_mask_find_band(const ir_expr *mask) {
    ir_mask_band r = {false, false, INT64_MIN, INT64_MAX};
    if (!mask) return r;
    band b = band_of(mask);
    if (b.empty) return (ir_mask_band){true, true, 1, 0};
    if (b.lo == INT64_MIN && b.hi == INT64_MAX) return r;
    return (ir_mask_band){true, b.exact, b.lo, b.hi};
}

/* ================================================================ interval analysis */

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

static aval eval(const ir_expr *e, const ir_rect *r);

static aval var_value(ir_var v, const ir_rect *r) {
    int64_t lo, hi;
    switch (v) {
    case IR_VAR_Q_IDX: lo = r->q_lo; hi = r->q_hi; break;
    case IR_VAR_KV_IDX: lo = r->kv_lo; hi = r->kv_hi; break;
    case IR_VAR_HEAD: lo = r->head_lo; hi = r->head_hi; break;
    case IR_VAR_BATCH: lo = r->batch_lo; hi = r->batch_hi; break;
    case IR_VAR_SEQ_Q: lo = hi = r->seq_q; break;
    case IR_VAR_SEQ_K: lo = hi = r->seq_k; break;
    default: return unknown(IR_T_FLOAT);
    }
    return int_result(num((double)lo, (double)hi, false));
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
        double a = (double)floor_div(xl, yl), b = (double)floor_div(xl, yh);
        double c = (double)floor_div(xh, yl), d = (double)floor_div(xh, yh);
        r = num(min4(a, b, c, d), max4(a, b, c, d), nan);
        break;
    }
    case IR_MOD: {   /* result has the divisor's sign, |result| < |divisor| */
        if (y.lo <= 0 && y.hi >= 0) return num(-INFINITY, INFINITY, true);
        int64_t xl = (int64_t)x.lo, xh = (int64_t)x.hi;
        if (y.lo == y.hi) {
            int64_t m = (int64_t)y.lo;
            if (floor_div(xl, m) == floor_div(xh, m))   /* one period: x - m·q, increasing */
                return num((double)(xl - m * floor_div(xl, m)), (double)(xh - m * floor_div(xh, m)), nan);
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

static aval eval(const ir_expr *e, const ir_rect *r) {
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

ir_mask_class ir_mask_classify(const ir_expr *mask, const ir_rect *r) {
    if (!mask) return IR_MASK_ALL_TRUE;
    if (r->q_lo > r->q_hi || r->kv_lo > r->kv_hi || r->head_lo > r->head_hi || r->batch_lo > r->batch_hi)
        return IR_MASK_ALL_FALSE;   /* no points: nothing to compute */

    /* The band first: it is exact where interval arithmetic is not (q_idx - kv_idx takes
     * every integer between its bounds over a rectangle). */
    int64_t d_lo, d_hi;
    band b = band_of(mask);
    if (!__builtin_sub_overflow(r->q_lo, r->kv_hi, &d_lo) && !__builtin_sub_overflow(r->q_hi, r->kv_lo, &d_hi)) {
        if (b.empty || d_hi < b.lo || d_lo > b.hi) return IR_MASK_ALL_FALSE;
        if (b.exact) return (d_lo >= b.lo && d_hi <= b.hi) ? IR_MASK_ALL_TRUE : IR_MASK_MIXED;
    }
    aval v = eval(mask, r);
    if (v.can_true && !v.can_false) return IR_MASK_ALL_TRUE;
    if (v.can_false && !v.can_true) return IR_MASK_ALL_FALSE;
    return IR_MASK_MIXED;
}
