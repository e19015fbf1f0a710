/* Mask analysis: the band a mask implies on q_idx - kv_idx (for loop bounds) and the
 * classification of a q-tile x kv-tile rectangle as all-true, all-false or mixed (so a
 * backend skips empty tiles and runs full ones without per-element tests): the band
 * where it is exact, else the interval analysis of ir/interval.c over the rectangle. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include "ir/interval.h"
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

static int64_t ceil_div(int64_t a, int64_t b) { return -ir_floor_div(-a, b); }

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
    case IR_LE: return range(INT64_MIN, ir_floor_div(n, k));
    case IR_GT: return range(ir_floor_div(n, k) + 1, INT64_MAX);
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
    ir_box box = ir_box_of_rect(r);
    bool can_true, can_false;
    ir_interval_truth(mask, &box, &can_true, &can_false);
    if (can_true && !can_false) return IR_MASK_ALL_TRUE;
    if (can_false && !can_true) return IR_MASK_ALL_FALSE;
    return IR_MASK_MIXED;
}
