/* Mask analysis: tile classification (ir_mask_classify) and band detection
 * (ir_mask_find_band), checked exhaustively against an independent point evaluator over
 * many random rectangles. Claims of ALL_TRUE / ALL_FALSE must never be wrong; band masks
 * must be classified exactly. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "ir/ir.h"
#include "ir/mask.h"

/* ---------------------------------------------------------------- an independent evaluator */

typedef struct point {
    int64_t q, kv, head, batch, seq_q, seq_k;
} point;

/* Input values: doc[t] = floor(t / 5) (documents of 5 tokens), bias[h] = h / 2 - 1. */
static double read_input(int input, const double *idx) {
    if (input == 0) return floor(idx[0] / 5);
    return idx[0] / 2 - 1;
}

static int64_t floor_div_i64(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* Evaluates like the interpreter: doubles, ints exact, int division by zero gives nan. */
static double eval_at(const ir_expr *e, const point *p) {
    double x = 0, y = 0;
    if (e->op != IR_CONST && e->op != IR_VAR && e->op != IR_INPUT && e->op != IR_SELECT && e->op != IR_AND &&
        e->op != IR_OR) {
        x = eval_at(e->args[0], p);
        if (e->n_args > 1) y = eval_at(e->args[1], p);
    }
    switch (e->op) {
    case IR_CONST: return e->value;
    case IR_VAR:
        switch (e->var) {
        case IR_VAR_Q_IDX: return (double)p->q;
        case IR_VAR_KV_IDX: return (double)p->kv;
        case IR_VAR_HEAD: return (double)p->head;
        case IR_VAR_BATCH: return (double)p->batch;
        case IR_VAR_SEQ_Q: return (double)p->seq_q;
        case IR_VAR_SEQ_K: return (double)p->seq_k;
        default: return NAN;
        }
    case IR_INPUT: {
        double idx[4] = {0};
        for (int i = 0; i < e->n_args; i++) idx[i] = eval_at(e->args[i], p);
        return read_input(e->input, idx);
    }
    case IR_NEG: return -x;
    case IR_NOT: return x == 0;
    case IR_EXP: return exp(x);
    case IR_LOG: return log(x);
    case IR_TANH: return tanh(x);
    case IR_SQRT: return sqrt(x);
    case IR_ABS: return fabs(x);
    case IR_FLOOR: return floor(x);
    case IR_TO_FLOAT: return x;
    case IR_ADD: return x + y;
    case IR_SUB: return x - y;
    case IR_MUL: return x * y;
    case IR_DIV: return x / y;
    case IR_IDIV:
        if (y == 0) return NAN;
        return (double)floor_div_i64((int64_t)x, (int64_t)y);
    case IR_MOD:
        if (y == 0) return NAN;
        return x - y * (double)floor_div_i64((int64_t)x, (int64_t)y);
    case IR_POW: return pow(x, y);
    case IR_MIN: return x < y ? x : y;
    case IR_MAX: return x > y ? x : y;
    case IR_LT: return x < y;
    case IR_LE: return x <= y;
    case IR_GT: return x > y;
    case IR_GE: return x >= y;
    case IR_EQ: return x == y;
    case IR_NE: return x != y;
    case IR_AND: return eval_at(e->args[0], p) != 0 && eval_at(e->args[1], p) != 0;
    case IR_OR: return eval_at(e->args[0], p) != 0 || eval_at(e->args[1], p) != 0;
    case IR_SELECT: return eval_at(e->args[0], p) != 0 ? eval_at(e->args[1], p) : eval_at(e->args[2], p);
    default: return NAN;
    }
}

/* ---------------------------------------------------------------- masks */

typedef enum expect { BAND, EXACT, SOUND } expect;   /* BAND: exact band, exact tiles; EXACT: exact tiles */

typedef struct builder {
    arena *a;
    ir_kernel *k;
} builder;

static ir_expr *Q(builder *b) { return ir_var_ref(b->a, IR_VAR_Q_IDX); }
static ir_expr *KV(builder *b) { return ir_var_ref(b->a, IR_VAR_KV_IDX); }
static ir_expr *H(builder *b) { return ir_var_ref(b->a, IR_VAR_HEAD); }
static ir_expr *I(builder *b, double v) { return ir_const(b->a, IR_T_INT, v); }
static ir_expr *F(builder *b, double v) { return ir_const(b->a, IR_T_FLOAT, v); }
static ir_expr *B2(builder *b, ir_op op, ir_expr *x, ir_expr *y) { return ir_binary(b->a, op, x, y); }
static ir_expr *U(builder *b, ir_op op, ir_expr *x) { return ir_unary(b->a, op, x); }
static ir_expr *D(builder *b) { return B2(b, IR_SUB, Q(b), KV(b)); }
static ir_expr *CAUSAL(builder *b) { return B2(b, IR_LE, KV(b), Q(b)); }
static ir_expr *DOC(builder *b, ir_expr *t) { return ir_input_ref(b->a, b->k, 0, &t, 1); }

typedef struct mask_case {
    const char *name;
    ir_expr *mask;
    expect expect;
} mask_case;

enum { MAX_CASES = 64 };

static int build_cases(builder *b, mask_case *c) {
    int n = 0;
#define ADD(nm, ex, e) (c[n++] = (mask_case){nm, e, ex})
    ADD("causal", BAND, CAUSAL(b));
    ADD("window 8", BAND, B2(b, IR_AND, CAUSAL(b), B2(b, IR_LT, D(b), I(b, 8))));
    ADD("kv > q - 5", BAND, B2(b, IR_AND, B2(b, IR_GE, Q(b), KV(b)), B2(b, IR_GT, KV(b), B2(b, IR_SUB, Q(b), I(b, 5)))));
    ADD("offset window [3,10]", BAND, B2(b, IR_AND, B2(b, IR_GE, D(b), I(b, 3)), B2(b, IR_LE, D(b), I(b, 10))));
    ADD("anti-causal", BAND, B2(b, IR_GT, KV(b), Q(b)));
    ADD("not causal", BAND, U(b, IR_NOT, CAUSAL(b)));
    ADD("touching or", BAND, B2(b, IR_OR, B2(b, IR_LT, D(b), I(b, 0)),
                                B2(b, IR_AND, B2(b, IR_GE, D(b), I(b, 0)), B2(b, IR_LT, D(b), I(b, 4)))));
    ADD("select band", BAND, ir_select(b->a, B2(b, IR_LT, D(b), I(b, 5)), CAUSAL(b), ir_const(b->a, IR_T_BOOL, 0)));
    ADD("2q - 2kv <= 7", BAND, B2(b, IR_LE, B2(b, IR_SUB, B2(b, IR_MUL, I(b, 2), Q(b)), B2(b, IR_MUL, KV(b), I(b, 2))), I(b, 7)));
    ADD("3d > -7", BAND, B2(b, IR_GT, B2(b, IR_MUL, I(b, 3), D(b)), I(b, -7)));
    ADD("-d >= -6", BAND, B2(b, IR_GE, U(b, IR_NEG, D(b)), I(b, -6)));
    ADD("float d < 6", BAND, B2(b, IR_LT, U(b, IR_TO_FLOAT, D(b)), F(b, 6)));
    ADD("q + 3 == kv + 5", BAND, B2(b, IR_EQ, B2(b, IR_ADD, Q(b), I(b, 3)), B2(b, IR_ADD, KV(b), I(b, 5))));
    ADD("2d == 3 (never)", BAND, B2(b, IR_EQ, B2(b, IR_MUL, I(b, 2), D(b)), I(b, 3)));
    ADD("d > 5 && d < 3 (never)", BAND, B2(b, IR_AND, B2(b, IR_GT, D(b), I(b, 5)), B2(b, IR_LT, D(b), I(b, 3))));
    ADD("bool eq of bands", BAND, B2(b, IR_EQ, CAUSAL(b), B2(b, IR_LT, D(b), I(b, 9))));
    ADD("true", BAND, ir_const(b->a, IR_T_BOOL, 1));
    ADD("false", BAND, ir_const(b->a, IR_T_BOOL, 0));
    ADD("kv <= q - head", EXACT, B2(b, IR_LE, KV(b), B2(b, IR_SUB, Q(b), H(b))));
    ADD("kv < seq_k - 3", EXACT, B2(b, IR_LT, KV(b), B2(b, IR_SUB, ir_var_ref(b->a, IR_VAR_SEQ_K), I(b, 3))));
    ADD("abs(d) <= 3", EXACT, B2(b, IR_LE, U(b, IR_ABS, D(b)), I(b, 3)));
    ADD("q < kv + seq_k - seq_q", EXACT, B2(b, IR_LT, Q(b), B2(b, IR_SUB, B2(b, IR_ADD, KV(b), ir_var_ref(b->a, IR_VAR_SEQ_K)),
                                                      ir_var_ref(b->a, IR_VAR_SEQ_Q))));
    ADD("or disjoint points", SOUND, B2(b, IR_OR, B2(b, IR_EQ, D(b), I(b, 0)), B2(b, IR_EQ, D(b), I(b, 10))));
    ADD("head window", SOUND, B2(b, IR_AND, CAUSAL(b), B2(b, IR_LT, D(b), B2(b, IR_MUL, I(b, 4), B2(b, IR_ADD, H(b), I(b, 1))))));
    ADD("head 0 or causal", SOUND, B2(b, IR_OR, B2(b, IR_EQ, H(b), I(b, 0)), CAUSAL(b)));
    ADD("document", SOUND, B2(b, IR_AND, CAUSAL(b), B2(b, IR_EQ, DOC(b, Q(b)), DOC(b, KV(b)))));
    ADD("document only", SOUND, B2(b, IR_EQ, DOC(b, Q(b)), DOC(b, KV(b))));
    ADD("chunked causal", SOUND, B2(b, IR_AND, CAUSAL(b), B2(b, IR_EQ, B2(b, IR_IDIV, Q(b), I(b, 4)), B2(b, IR_IDIV, KV(b), I(b, 4)))));
    ADD("strided or causal", SOUND, B2(b, IR_OR, B2(b, IR_EQ, B2(b, IR_MOD, KV(b), I(b, 3)), I(b, 0)), CAUSAL(b)));
    ADD("prefix lm", SOUND, B2(b, IR_OR, B2(b, IR_LT, KV(b), I(b, 6)), CAUSAL(b)));
    ADD("exp decay > 0.01", SOUND, B2(b, IR_GT, U(b, IR_EXP, U(b, IR_TO_FLOAT, B2(b, IR_SUB, KV(b), Q(b)))), F(b, 0.01)));
    ADD("min(q,10) >= kv", SOUND, B2(b, IR_GE, B2(b, IR_MIN, Q(b), I(b, 10)), KV(b)));
    ADD("max(q-3,kv) == kv", SOUND, B2(b, IR_EQ, B2(b, IR_MAX, B2(b, IR_SUB, Q(b), I(b, 3)), KV(b)), KV(b)));
    ADD("batch 1 and causal", SOUND, B2(b, IR_AND, B2(b, IR_EQ, ir_var_ref(b->a, IR_VAR_BATCH), I(b, 1)), CAUSAL(b)));
    ADD("log(d+1) < 1.5", SOUND, B2(b, IR_LT, U(b, IR_LOG, U(b, IR_TO_FLOAT, B2(b, IR_ADD, D(b), I(b, 1)))), F(b, 1.5)));
    ADD("sqrt(d) <= 2", SOUND, B2(b, IR_LE, U(b, IR_SQRT, U(b, IR_TO_FLOAT, D(b))), F(b, 2)));
    ADD("q / (kv+1) > 0.5", SOUND, B2(b, IR_GT, B2(b, IR_DIV, Q(b), B2(b, IR_ADD, KV(b), I(b, 1))), F(b, 0.5)));
    ADD("q // (head+1) >= kv", SOUND, B2(b, IR_GE, B2(b, IR_IDIV, Q(b), B2(b, IR_ADD, H(b), I(b, 1))), KV(b)));
    ADD("d % 5 == 0", SOUND, B2(b, IR_EQ, B2(b, IR_MOD, D(b), I(b, 5)), I(b, 0)));
    ADD("d % -4 > -2", SOUND, B2(b, IR_GT, B2(b, IR_MOD, D(b), I(b, -4)), I(b, -2)));
    ADD("q // (kv - 5) > 0", SOUND, B2(b, IR_GT, B2(b, IR_IDIV, Q(b), B2(b, IR_SUB, KV(b), I(b, 5))), I(b, 0)));
    ADD("not two-sided", SOUND, U(b, IR_NOT, B2(b, IR_AND, B2(b, IR_GE, D(b), I(b, 2)), B2(b, IR_LE, D(b), I(b, 5)))));
    ADD("select float", SOUND, B2(b, IR_GE, ir_select(b->a, B2(b, IR_LT, H(b), I(b, 2)), U(b, IR_TO_FLOAT, D(b)), F(b, 100)), F(b, 0)));
    ADD("causal == head<2", SOUND, B2(b, IR_EQ, CAUSAL(b), B2(b, IR_LT, H(b), I(b, 2))));
    ADD("tanh(d) > 0.5", SOUND, B2(b, IR_GT, U(b, IR_TANH, U(b, IR_TO_FLOAT, D(b))), F(b, 0.5)));
    ADD("2^(kv-q) > 0.1", SOUND, B2(b, IR_GT, B2(b, IR_POW, F(b, 2), U(b, IR_TO_FLOAT, B2(b, IR_SUB, KV(b), Q(b)))), F(b, 0.1)));
    ADD("d^2 < 10", SOUND, B2(b, IR_LT, B2(b, IR_POW, U(b, IR_TO_FLOAT, D(b)), F(b, 2)), F(b, 10)));
    ADD("d^0.5 > 1.5", SOUND, B2(b, IR_GT, B2(b, IR_POW, U(b, IR_TO_FLOAT, D(b)), F(b, 0.5)), F(b, 1.5)));
    ADD("bias[head] * d < 3", SOUND, B2(b, IR_LT, B2(b, IR_MUL, ir_input_ref(b->a, b->k, 1, (ir_expr *[]){H(b)}, 1),
                                                       U(b, IR_TO_FLOAT, D(b))), F(b, 3)));
    ADD("q*kv < 200", SOUND, B2(b, IR_LT, B2(b, IR_MUL, Q(b), KV(b)), I(b, 200)));
    ADD("floor(d/2.0) != 1", SOUND, B2(b, IR_NE, U(b, IR_FLOOR, B2(b, IR_DIV, D(b), F(b, 2))), F(b, 1)));
    ADD("band or head", SOUND, B2(b, IR_OR, B2(b, IR_AND, CAUSAL(b), B2(b, IR_LT, D(b), I(b, 3))), B2(b, IR_GT, H(b), I(b, 2))));
#undef ADD
    return n;
}

/* ---------------------------------------------------------------- the exhaustive check */

typedef struct rng { uint64_t s; } rng;
static int64_t uniform(rng *r, int64_t lo, int64_t hi) {
    r->s ^= r->s << 13; r->s ^= r->s >> 7; r->s ^= r->s << 17;
    return lo + (int64_t)(r->s % (uint64_t)(hi - lo + 1));
}

static ir_rect random_rect(rng *g) {
    ir_rect r;
    r.q_lo = uniform(g, -8, 60);
    r.q_hi = r.q_lo + uniform(g, 0, uniform(g, 0, 3) == 0 ? 40 : 15);
    r.kv_lo = uniform(g, 0, 60);
    r.kv_hi = r.kv_lo + uniform(g, 0, uniform(g, 0, 3) == 0 ? 40 : 15);
    r.head_lo = uniform(g, 0, 3);
    r.head_hi = r.head_lo + uniform(g, 0, 2);
    r.batch_lo = uniform(g, 0, 2);
    r.batch_hi = r.batch_lo + uniform(g, 0, 1);
    r.seq_q = uniform(g, 1, 80);
    r.seq_k = uniform(g, 1, 110);
    return r;
}

typedef struct stats { int rects, exact_answers, precise_answers; } stats;

static void check_mask(const mask_case *c, rng *g, int n_rects, stats *st) {
    ir_mask_band band = ir_mask_find_band(c->mask);
    bool band_exact_expected = c->expect == BAND;
    CHECK_MSG(!band_exact_expected || band.band_exact || !band.has_band, "%s: band not exact", c->name);
    int wrong_class = 0, imprecise = 0, band_unsound = 0, band_inexact = 0;
    for (int i = 0; i < n_rects; i++) {
        ir_rect r = random_rect(g);
        ir_mask_class cls = ir_mask_classify(c->mask, &r);
        bool any_true = false, any_false = false;
        point p = {.seq_q = r.seq_q, .seq_k = r.seq_k};
        for (p.q = r.q_lo; p.q <= r.q_hi; p.q++)
            for (p.kv = r.kv_lo; p.kv <= r.kv_hi; p.kv++)
                for (p.head = r.head_lo; p.head <= r.head_hi; p.head++)
                    for (p.batch = r.batch_lo; p.batch <= r.batch_hi; p.batch++) {
                        bool m = eval_at(c->mask, &p) != 0;
                        if (m) any_true = true;
                        else any_false = true;
                        int64_t d = p.q - p.kv;
                        bool in_band = d >= band.band_lo && d <= band.band_hi;
                        if (band.has_band && m && !in_band) band_unsound++;
                        if (band.band_exact && m != in_band) band_inexact++;
                    }
        ir_mask_class truth = any_true && any_false ? IR_MASK_MIXED : any_true ? IR_MASK_ALL_TRUE : IR_MASK_ALL_FALSE;
        if ((cls == IR_MASK_ALL_TRUE && any_false) || (cls == IR_MASK_ALL_FALSE && any_true)) wrong_class++;
        if (cls != truth) imprecise++;
        else if (truth != IR_MASK_MIXED) st->precise_answers++;
        if (truth != IR_MASK_MIXED) st->exact_answers++;
        st->rects++;
    }
    CHECK_MSG(wrong_class == 0, "%s: %d unsound classifications", c->name, wrong_class);
    CHECK_MSG(band_unsound == 0, "%s: band [%lld, %lld] misses %d true points", c->name, (long long)band.band_lo,
              (long long)band.band_hi, band_unsound);
    CHECK_MSG(band_inexact == 0, "%s: band claimed exact differs at %d points", c->name, band_inexact);
    if (c->expect != SOUND) CHECK_MSG(imprecise == 0, "%s: %d of %d tiles classified imprecisely", c->name, imprecise, n_rects);
}

static void test_exhaustive(void) {
    arena a;
    arena_init(&a);
    ir_kernel k = {0};
    ir_input inputs[2] = {{.name = "doc", .n_axes = 1, .axes = {IR_AXIS_TOKEN}, .scalar = IR_S_I32},
                          {.name = "bias", .n_axes = 1, .axes = {IR_AXIS_HEAD}, .scalar = IR_S_F32}};
    k.inputs = inputs;
    k.n_inputs = 2;
    k.family = IR_SOFTMAX;
    builder b = {&a, &k};
    mask_case cases[MAX_CASES];
    int n = build_cases(&b, cases);
    CHECK(n <= MAX_CASES);
    rng g = {0x9E3779B97F4A7C15ull};
    stats st = {0};
    for (int i = 0; i < n; i++) {
        check_mask(&cases[i], &g, 1000, &st);
        /* the same masks after folding classify the same way (the pipeline folds first) */
        mask_case folded = cases[i];
        folded.mask = ir_fold(&a, cases[i].mask);
        check_mask(&folded, &g, 200, &st);
    }
    printf("test_mask: %d masks, %d tiles, %d of %d pure tiles recognised\n", n, st.rects, st.precise_answers,
           st.exact_answers);
    arena_free(&a);
}

/* ---------------------------------------------------------------- specific cases */

static ir_rect tile(int64_t q_lo, int64_t q_hi, int64_t kv_lo, int64_t kv_hi) {
    return (ir_rect){q_lo, q_hi, kv_lo, kv_hi, 0, 7, 0, 1, 64, 64};
}

/* A kernel with one int input "doc" along tokens, for DOC(). */
static builder doc_builder(arena *a, ir_kernel *k, ir_input *doc) {
    arena_init(a);
    *doc = (ir_input){.name = "doc", .n_axes = 1, .axes = {IR_AXIS_TOKEN}, .scalar = IR_S_I32};
    *k = (ir_kernel){0};
    k->inputs = doc;
    k->n_inputs = 1;
    return (builder){a, k};
}

static void test_specific(void) {
    arena a;
    ir_kernel k;
    ir_input doc_input;
    builder b = doc_builder(&a, &k, &doc_input);
    ir_rect past = tile(16, 31, 0, 15), future = tile(0, 15, 16, 31), diag = tile(16, 31, 16, 31);
    CHECK(ir_mask_classify(NULL, &diag) == IR_MASK_ALL_TRUE);
    ir_expr *causal = CAUSAL(&b);
    CHECK(ir_mask_classify(causal, &past) == IR_MASK_ALL_TRUE);
    CHECK(ir_mask_classify(causal, &future) == IR_MASK_ALL_FALSE);
    CHECK(ir_mask_classify(causal, &diag) == IR_MASK_MIXED);
    /* the last key of the tile is exactly the first query: still full */
    ir_rect edge = tile(15, 30, 0, 15);
    CHECK(ir_mask_classify(causal, &edge) == IR_MASK_ALL_TRUE);
    /* window 16 over 16-blocks: the block two back is fully outside */
    ir_expr *win = B2(&b, IR_AND, CAUSAL(&b), B2(&b, IR_LT, D(&b), I(&b, 16)));
    ir_rect two_back = tile(32, 47, 0, 15), one_back = tile(32, 47, 16, 31);
    CHECK(ir_mask_classify(win, &two_back) == IR_MASK_ALL_FALSE);
    CHECK(ir_mask_classify(win, &one_back) == IR_MASK_MIXED);
    /* an input read leaves a tile mixed unless the rest decides it */
    ir_expr *doc = B2(&b, IR_AND, CAUSAL(&b), B2(&b, IR_EQ, DOC(&b, Q(&b)), DOC(&b, KV(&b))));
    CHECK(ir_mask_classify(doc, &future) == IR_MASK_ALL_FALSE);
    CHECK(ir_mask_classify(doc, &past) == IR_MASK_MIXED);
    /* empty rectangles hold no points */
    ir_rect empty = tile(5, 4, 0, 3);
    CHECK(ir_mask_classify(causal, &empty) == IR_MASK_ALL_FALSE);
    /* huge coordinates do not overflow into wrong answers */
    ir_rect huge = tile(INT64_MAX - 10, INT64_MAX, INT64_MIN, INT64_MIN + 10);
    CHECK(ir_mask_classify(causal, &huge) != IR_MASK_ALL_FALSE);
    /* bands */
    ir_mask_band bd = ir_mask_find_band(win);
    CHECK(bd.has_band && bd.band_exact && bd.band_lo == 0 && bd.band_hi == 15);
    bd = ir_mask_find_band(doc);
    CHECK(bd.has_band && !bd.band_exact && bd.band_lo == 0 && bd.band_hi == INT64_MAX);
    bd = ir_mask_find_band(B2(&b, IR_OR, causal, B2(&b, IR_EQ, H(&b), I(&b, 0))));
    CHECK(!bd.has_band);
    bd = ir_mask_find_band(NULL);
    CHECK(!bd.has_band && !bd.band_exact);
    bd = ir_mask_find_band(U(&b, IR_NOT, win));   /* two rays: no band */
    CHECK(!bd.has_band);
    bd = ir_mask_find_band(B2(&b, IR_OR, B2(&b, IR_EQ, D(&b), I(&b, 0)), B2(&b, IR_EQ, D(&b), I(&b, 10))));
    CHECK(bd.has_band && !bd.band_exact && bd.band_lo == 0 && bd.band_hi == 10);
    arena_free(&a);
}

/* Bounds over every launch: q_idx in [-L, L-1] (bottom-right aligned), kv_idx in [0, L-1]. */
static void test_int_bounds(void) {
    arena a;
    ir_kernel k;
    ir_input doc_input;
    builder b = doc_builder(&a, &k, &doc_input);
    const int64_t L = IR_MAX_LENGTH;
    int64_t lo = 0, hi = 0;
    CHECK(ir_expr_int_bounds(B2(&b, IR_SUB, KV(&b), Q(&b)), 8, &lo, &hi) && lo == -(L - 1) && hi == 2 * L - 1);
    CHECK(ir_expr_int_bounds(B2(&b, IR_MUL, H(&b), I(&b, 2)), 8, &lo, &hi) && lo == 0 && hi == 14);
    CHECK(ir_expr_int_bounds(B2(&b, IR_MOD, KV(&b), I(&b, 3)), 8, &lo, &hi) && lo == 0 && hi == 2);
    CHECK(!ir_expr_int_bounds(DOC(&b, Q(&b)), 8, &lo, &hi));                       /* an input */
    ir_expr *cube = B2(&b, IR_MUL, B2(&b, IR_MUL, Q(&b), Q(&b)), Q(&b));           /* beyond 2^52 */
    CHECK(!ir_expr_int_bounds(cube, 8, &lo, &hi));
    CHECK(!ir_expr_int_bounds(B2(&b, IR_LT, Q(&b), KV(&b)), 8, &lo, &hi));         /* not an int */
    arena_free(&a);
}

int main(void) {
    test_specific();
    test_int_bounds();
    test_exhaustive();
    return check_status("test_mask");
}
