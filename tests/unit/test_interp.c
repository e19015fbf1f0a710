/* The reference interpreter against brute-force expectations on hand-built kernels:
 * closed forms where the inputs make them exact (uniform attention, constant values),
 * direct O(n²) formulas otherwise, and the algebraic identities the contract implies
 * (RoPE depends on relative position only; ReRoPE without clipping is RoPE; a prefill
 * split in two with the state handed over equals the whole prefill). Also the launch
 * signature's messages and the dtype conversions. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "ir/interp.h"
#include "ir/signature.h"
#include "runtime/tensor_access.h"

/* ---------------------------------------------------------------- helpers */

static uint64_t rng_state = 0x12345678u;   /* test-local generator; tests run serially */
static double urand(void) {                  /* uniform in [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * 0x1.0p-52 - 1.0;
}

static attnc_tensor view(const char *name, attnc_dtype dt, void *data, int ndim, int64_t d0, int64_t d1,
                         int64_t d2, int64_t d3) {
    attnc_tensor t = { .name = name, .dtype = dt, .ndim = ndim, .data = data };
    int64_t s[4] = { d0, d1, d2, d3 };
    for (int i = 0; i < ndim; i++) t.shape[i] = s[i];
    return t;
}

static float *frand(int64_t n) {
    float *p = malloc(sizeof(float) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) p[i] = (float)urand();
    return p;
}

static double *dzeros(int64_t n) { return calloc((size_t)(n ? n : 1), sizeof(double)); }

static ir_kernel softmax_kernel(int hq, int hkv, int dqk, int dv) {
    ir_kernel k;
    memset(&k, 0, sizeof k);
    k.name = "test";
    k.family = IR_SOFTMAX;
    k.dtype = IR_F32;
    k.heads_q = hq;
    k.heads_kv = hkv;
    k.groups = hkv;
    k.d_qk = dqk;
    k.d_v = dv;
    k.scale_value = 1.0 / sqrt((double)dqk);
    k.chunk = 64;
    return k;
}

static ir_kernel recurrence_kernel(int heads, int groups, int dk, int dv) {
    ir_kernel k;
    memset(&k, 0, sizeof k);
    k.name = "rec";
    k.family = IR_RECURRENCE;
    k.dtype = IR_F32;
    k.heads_q = k.heads_kv = heads;
    k.groups = groups;
    k.d_qk = dk;
    k.d_v = dv;
    k.chunk = 64;
    return k;
}

static ir_expr *var(arena *a, ir_var v) { return ir_var_ref(a, v); }
static ir_expr *num(arena *a, double v) { return ir_const(a, IR_T_FLOAT, v); }
static ir_expr *inum(arena *a, double v) { return ir_const(a, IR_T_INT, v); }
static ir_expr *causal(arena *a) { return ir_binary(a, IR_LE, var(a, IR_VAR_KV_IDX), var(a, IR_VAR_Q_IDX)); }

/* Plans RoPE by hand (the plan-rope pass's job): default frequencies base^(-2j/d). */
static void plan_rope(ir_kernel *k, arena *a, ir_rope_layout layout, int lo, int hi, double base) {
    ir_rope *r = &k->rope;
    r->layout = layout;
    r->dim_lo = lo;
    r->dim_hi = hi;
    r->base = base;
    r->n_pairs = (hi - lo) / 2;
    r->inv_freq = arena_calloc(a, (size_t)r->n_pairs, sizeof(double));
    r->pair_axis = arena_calloc(a, (size_t)r->n_pairs, sizeof(int));
    for (int j = 0; j < r->n_pairs; j++) r->inv_freq[j] = pow(base, -2.0 * j / (hi - lo));
    r->attn_factor = 1;
    r->planned = true;
}

/* Plain softmax of given scores over visible keys, against given value rows. */
static void naive_softmax(const double *s, const bool *vis, int64_t n, const double *vrows, int dv,
                          double *o, double *lse) {
    double l = 0;
    for (int d = 0; d < dv; d++) o[d] = 0;
    for (int64_t i = 0; i < n; i++)
        if (vis[i]) {
            double p = exp(s[i]);            /* small scores in tests: no max shift needed */
            l += p;
            for (int d = 0; d < dv; d++) o[d] += p * vrows[i * dv + d];
        }
    if (l == 0) { *lse = -INFINITY; return; }
    for (int d = 0; d < dv; d++) o[d] /= l;
    *lse = log(l);
}

static double max_abs_diff(const double *a, const double *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        if (a[i] == b[i]) continue;           /* equal infinities */
        double d = fabs(a[i] - b[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}

typedef struct sm_run {           /* one softmax run with f32 inputs, f64 outputs */
    int64_t b, sq, sk;
    float *q, *k, *v;
    int32_t *pos;
    double *o, *lse;
} sm_run;

static void sm_alloc(sm_run *r, const ir_kernel *k, int64_t b, int64_t sq, int64_t sk) {
    r->b = b; r->sq = sq; r->sk = sk;
    r->q = frand(b * sq * k->heads_q * k->d_qk);
    r->k = frand(b * sk * k->heads_kv * k->d_qk);
    r->v = frand(b * sk * k->heads_kv * k->d_v);
    r->pos = NULL;
    r->o = dzeros(b * sq * k->heads_q * k->d_v);
    r->lse = dzeros(b * sq * k->heads_q);
}

static void sm_free(sm_run *r) {
    free(r->q); free(r->k); free(r->v); free(r->pos); free(r->o); free(r->lse);
}

static bool sm_exec(const ir_kernel *k, sm_run *r, char *err, size_t errlen) {
    attnc_tensor ts[8];
    int n = 0;
    ts[n++] = view("q", ATTNC_F32, r->q, 4, r->b, r->sq, k->heads_q, k->d_qk);
    ts[n++] = view("k", ATTNC_F32, r->k, 4, r->b, r->sk, k->heads_kv, k->d_qk);
    if (!k->v_in_k) ts[n++] = view("v", ATTNC_F32, r->v, 4, r->b, r->sk, k->heads_kv, k->d_v);
    if (r->pos) ts[n++] = view("positions", ATTNC_I32, r->pos, 3, r->b, r->sk, k->rope.n_sections > 1 ? k->rope.n_sections : 1, 0);
    ts[n++] = view("o", ATTNC_F64, r->o, 4, r->b, r->sq, k->heads_q, k->d_v);
    ts[n++] = view("lse", ATTNC_F64, r->lse, 3, r->b, r->sq, k->heads_q, 0);
    return interp_run(k, r->b, r->sq, r->sk, ts, n, err, errlen);
}

/* Brute force for plain kernels (no RoPE): score = scale·q·k (+ALiBi when alibi), mask by
 * a callback of (q_idx, kv_idx). */
typedef bool (*mask_fn)(int64_t q_idx, int64_t kv_idx);
static bool mask_causal(int64_t q, int64_t i) { return i <= q; }
static bool mask_all(int64_t q, int64_t i) { (void)q; (void)i; return true; }
static bool mask_strict(int64_t q, int64_t i) { return i < q; }

static void brute_softmax(const ir_kernel *k, const sm_run *r, mask_fn mask, double softcap, bool alibi,
                          double *o, double *lse) {
    int group = k->heads_q / k->heads_kv;
    double *s = dzeros(r->sk), *vr = dzeros(r->sk * k->d_v);
    bool *vis = calloc((size_t)r->sk + 1, 1);
    for (int64_t b = 0; b < r->b; b++)
        for (int h = 0; h < k->heads_q; h++) {
            int g = h / group;
            for (int64_t i = 0; i < r->sk; i++)
                for (int d = 0; d < k->d_v; d++)
                    vr[i * k->d_v + d] = k->v_in_k ? r->k[((b * r->sk + i) * k->heads_kv + g) * k->d_qk + d]
                                                   : r->v[((b * r->sk + i) * k->heads_kv + g) * k->d_v + d];
            for (int64_t t = 0; t < r->sq; t++) {
                int64_t qi = t + r->sk - r->sq;
                for (int64_t i = 0; i < r->sk; i++) {
                    double dot = 0;
                    for (int d = 0; d < k->d_qk; d++)
                        dot += (double)r->q[((b * r->sq + t) * k->heads_q + h) * k->d_qk + d] *
                               (double)r->k[((b * r->sk + i) * k->heads_kv + g) * k->d_qk + d];
                    double sc = k->scale_value * dot;
                    if (softcap > 0) sc = softcap * tanh(sc / softcap);
                    if (alibi) sc += pow(2.0, -8.0 * (h + 1) / k->heads_q) * (double)(i - qi);
                    s[i] = sc;
                    vis[i] = mask(qi, i);
                }
                naive_softmax(s, vis, r->sk, vr, k->d_v, o + ((b * r->sq + t) * k->heads_q + h) * k->d_v,
                              lse + (b * r->sq + t) * k->heads_q + h);
            }
        }
    free(s); free(vr); free(vis);
}

/* ---------------------------------------------------------------- softmax tests */

static void test_mha_causal(void) {
    arena a;
    arena_init(&a);
    ir_kernel k = softmax_kernel(2, 2, 4, 3);
    k.mask = causal(&a);
    sm_run r;
    sm_alloc(&r, &k, 2, 5, 5);
    char err[256];
    CHECK_MSG(sm_exec(&k, &r, err, sizeof err), "%s", err);
    double *o = dzeros(2 * 5 * 2 * 3), *lse = dzeros(2 * 5 * 2);
    brute_softmax(&k, &r, mask_causal, 0, false, o, lse);
    CHECK(max_abs_diff(o, r.o, 2 * 5 * 2 * 3) < 1e-13);
    CHECK(max_abs_diff(lse, r.lse, 2 * 5 * 2) < 1e-13);
    /* row 0 sees only key 0: o is exactly v[0] of its head, lse is its score */
    for (int h = 0; h < 2; h++)
        for (int d = 0; d < 3; d++) CHECK(r.o[h * 3 + d] == (double)r.v[h * 3 + d]);
    free(o); free(lse);
    sm_free(&r);
    arena_free(&a);
}

/* q = 0: every visible score is 0, so o is the mean of the visible values and lse is
 * log(count) — exact expectations independent of any softmax implementation. */
static void test_uniform_attention(void) {
    arena a;
    arena_init(&a);
    ir_kernel k = softmax_kernel(3, 1, 8, 2);
    k.mask = causal(&a);
    sm_run r;
    sm_alloc(&r, &k, 1, 6, 6);
    memset(r.q, 0, sizeof(float) * 6 * 3 * 8);
    char err[256];
    CHECK_MSG(sm_exec(&k, &r, err, sizeof err), "%s", err);
    for (int t = 0; t < 6; t++)
        for (int h = 0; h < 3; h++) {
            CHECK_NEAR(r.lse[t * 3 + h], log(t + 1.0), 1e-14);
            for (int d = 0; d < 2; d++) {
                double mean = 0;
                for (int i = 0; i <= t; i++) mean += r.v[i * 2 + d];
                CHECK_NEAR(r.o[(t * 3 + h) * 2 + d], mean / (t + 1), 1e-14);
            }
        }
    sm_free(&r);
    arena_free(&a);
}

/* GQA: query head h reads kv head h / (heads_q / heads_kv). Constant values per kv head
 * make the output name the head it read. */
static void test_gqa_mapping(void) {
    ir_kernel k = softmax_kernel(8, 2, 4, 3);
    sm_run r;
    sm_alloc(&r, &k, 2, 3, 7);
    for (int64_t b = 0; b < 2; b++)
        for (int64_t i = 0; i < 7; i++)
            for (int g = 0; g < 2; g++)
                for (int d = 0; d < 3; d++) r.v[((b * 7 + i) * 2 + g) * 3 + d] = (float)(10 * g + d + 1);
    char err[256];
    CHECK_MSG(sm_exec(&k, &r, err, sizeof err), "%s", err);
    for (int64_t b = 0; b < 2; b++)
        for (int t = 0; t < 3; t++)
            for (int h = 0; h < 8; h++)
                for (int d = 0; d < 3; d++)
                    CHECK_NEAR(r.o[((b * 3 + t) * 8 + h) * 3 + d], 10 * (h / 4) + d + 1, 1e-13);
    /* and with random values, against the brute force */
    sm_free(&r);
    sm_alloc(&r, &k, 2, 3, 7);
    CHECK_MSG(sm_exec(&k, &r, err, sizeof err), "%s", err);
    double *o = dzeros(2 * 3 * 8 * 3), *lse = dzeros(2 * 3 * 8);
    brute_softmax(&k, &r, mask_all, 0, false, o, lse);
    CHECK(max_abs_diff(o, r.o, 2 * 3 * 8 * 3) < 1e-13);
    CHECK(max_abs_diff(lse, r.lse, 2 * 3 * 8) < 1e-13);
    free(o); free(lse);
    sm_free(&r);
}

static void test_fully_masked_rows(void) {
    arena a;
    arena_init(&a);
    ir_kernel k = softmax_kernel(2, 1, 4, 4);
    k.mask = ir_binary(&a, IR_LT, var(&a, IR_VAR_KV_IDX), var(&a, IR_VAR_Q_IDX));   /* row 0 sees nothing */
    sm_run r;
    sm_alloc(&r, &k, 1, 4, 4);
    char err[256];
    CHECK_MSG(sm_exec(&k, &r, err, sizeof err), "%s", err);
    for (int h = 0; h < 2; h++) {
        CHECK(r.lse[h] == -INFINITY);
        for (int d = 0; d < 4; d++) CHECK(r.o[h * 4 + d] == 0.0 && !signbit(r.o[h * 4 + d]));
    }
    double *o = dzeros(4 * 2 * 4), *lse = dzeros(4 * 2);
    brute_softmax(&k, &r, mask_strict, 0, false, o, lse);
    CHECK(max_abs_diff(o, r.o, 32) < 1e-13);
    CHECK(max_abs_diff(lse, r.lse, 8) < 1e-13);
    /* a mask false everywhere: every row zero, lse -inf, nothing NaN */
    k.mask = ir_const(&a, IR_T_BOOL, 0);
    CHECK_MSG(sm_exec(&k, &r, err, sizeof err), "%s", err);
    for (int i = 0; i < 32; i++) CHECK(r.o[i] == 0.0);
    for (int i = 0; i < 8; i++) CHECK(r.lse[i] == -INFINITY);
    /* a score modifier sending every score to -inf behaves the same */
    k.mask = NULL;
    k.score_mod = num(&a, -INFINITY);
    CHECK_MSG(sm_exec(&k, &r, err, sizeof err), "%s", err);
    for (int i = 0; i < 32; i++) CHECK(r.o[i] == 0.0);
    for (int i = 0; i < 8; i++) CHECK(r.lse[i] == -INFINITY);
    free(o); free(lse);
    sm_free(&r);
    arena_free(&a);
}

/* Bottom-right alignment: row r has q_idx = r + seq_k - seq_q. */
static void test_alignment(void) {
    arena a;
    arena_init(&a);
    ir_kernel k = softmax_kernel(1, 1, 4, 2);
    k.mask = causal(&a);
    char err[256];
    /* seq_q > seq_k: the first rows sit before every key (fully masked), row 2 sees key 0 */
    sm_run r;
    sm_alloc(&r, &k, 1, 5, 3);
    CHECK_MSG(sm_exec(&k, &r, err, sizeof err), "%s", err);
    CHECK(r.lse[0] == -INFINITY && r.lse[1] == -INFINITY);
    CHECK(r.o[0] == 0 && r.o[1] == 0 && r.o[2] == 0 && r.o[3] == 0);
    CHECK(r.o[4] == (double)r.v[0] && r.o[5] == (double)r.v[1]);
    double *o = dzeros(10), *lse = dzeros(5);
    brute_softmax(&k, &r, mask_causal, 0, false, o, lse);
    CHECK(max_abs_diff(o, r.o, 10) < 1e-13);
    CHECK(max_abs_diff(lse, r.lse, 5) < 1e-13);
    sm_free(&r);
    /* decode: one query at the end sees every key; q = 0 makes it the mean */
    sm_alloc(&r, &k, 1, 1, 6);
    r.q[0] = r.q[1] = r.q[2] = r.q[3] = 0;
    CHECK_MSG(sm_exec(&k, &r, err, sizeof err), "%s", err);
    double mean0 = 0;
    for (int i = 0; i < 6; i++) mean0 += r.v[i * 2];
    CHECK_NEAR(r.o[0], mean0 / 6, 1e-14);
    CHECK_NEAR(r.lse[0], log(6.0), 1e-14);
    /* q_idx as a variable: a mask q_idx == 5 keeps the decode row, drops nothing else */
    k.mask = ir_binary(&a, IR_EQ, var(&a, IR_VAR_Q_IDX), inum(&a, 5));
    CHECK_MSG(sm_exec(&k, &r, err, sizeof err), "%s", err);
    CHECK_NEAR(r.lse[0], log(6.0), 1e-14);
    free(o); free(lse);
    sm_free(&r);
    arena_free(&a);
}

/* Score modifiers: Gemma's softcap and ALiBi, written as IR like the frontend lowers them. */
static void test_score_mods(void) {
    arena a;
    arena_init(&a);
    ir_kernel k = softmax_kernel(4, 2, 8, 5);
    k.scale_value = 3.0;    /* large scores so the cap matters */
    k.mask = causal(&a);
    ir_expr *s = var(&a, IR_VAR_SCORE);
    k.score_mod = ir_binary(&a, IR_MUL, num(&a, 2.0), ir_unary(&a, IR_TANH, ir_binary(&a, IR_DIV, s, num(&a, 2.0))));
    sm_run r;
    sm_alloc(&r, &k, 1, 7, 7);
    char err[256];
    CHECK_MSG(sm_exec(&k, &r, err, sizeof err), "%s", err);
    double *o = dzeros(7 * 4 * 5), *lse = dzeros(7 * 4);
    brute_softmax(&k, &r, mask_causal, 2.0, false, o, lse);
    CHECK(max_abs_diff(o, r.o, 140) < 1e-13);
    CHECK(max_abs_diff(lse, r.lse, 28) < 1e-13);
    /* ALiBi: score + 2^(-8 (head + 1) / heads_q) * (kv_idx - q_idx) */
    k.scale_value = 1 / sqrt(8.0);
    ir_expr *slope = ir_binary(&a, IR_POW, num(&a, 2.0),
                               ir_binary(&a, IR_DIV, ir_binary(&a, IR_MUL, inum(&a, -8),
                                                               ir_binary(&a, IR_ADD, var(&a, IR_VAR_HEAD), inum(&a, 1))),
                                         inum(&a, 4)));
    k.score_mod = ir_binary(&a, IR_ADD, s,
                            ir_binary(&a, IR_MUL, slope, ir_binary(&a, IR_SUB, var(&a, IR_VAR_KV_IDX), var(&a, IR_VAR_Q_IDX))));
    CHECK_MSG(sm_exec(&k, &r, err, sizeof err), "%s", err);
    brute_softmax(&k, &r, mask_causal, 0, true, o, lse);
    CHECK(max_abs_diff(o, r.o, 140) < 1e-13);
    CHECK(max_abs_diff(lse, r.lse, 28) < 1e-13);
    free(o); free(lse);
    sm_free(&r);
    arena_free(&a);
}

/* Document masks read an i32 input; an out-of-range read is an error of the run. */
static void test_input_mask(void) {
    arena a;
    arena_init(&a);
    ir_kernel k = softmax_kernel(2, 2, 4, 3);
    ir_input doc = { .name = "doc", .n_axes = 1, .axes = { IR_AXIS_TOKEN }, .scalar = IR_S_I32 };
    k.inputs = &doc;
    k.n_inputs = 1;
    ir_expr *iq[1] = { var(&a, IR_VAR_Q_IDX) }, *ik[1] = { var(&a, IR_VAR_KV_IDX) };
    k.mask = ir_binary(&a, IR_AND, causal(&a),
                       ir_binary(&a, IR_EQ, ir_input_ref(&a, &k, 0, iq, 1), ir_input_ref(&a, &k, 0, ik, 1)));
    int32_t ids[2 * 6] = { 0, 0, 1, 1, 1, 2, 5, 5, 5, 5, 6, 6 };
    sm_run r;
    sm_alloc(&r, &k, 2, 6, 6);
    attnc_tensor ts[6] = {
        view("q", ATTNC_F32, r.q, 4, 2, 6, 2, 4), view("k", ATTNC_F32, r.k, 4, 2, 6, 2, 4),
        view("v", ATTNC_F32, r.v, 4, 2, 6, 2, 3), view("doc", ATTNC_I32, ids, 2, 2, 6, 0, 0),
        view("o", ATTNC_F64, r.o, 4, 2, 6, 2, 3), view("lse", ATTNC_F64, r.lse, 3, 2, 6, 2, 0),
    };
    char err[256];
    CHECK_MSG(interp_run(&k, 2, 6, 6, ts, 6, err, sizeof err), "%s", err);
    /* brute force with the same document rule */
    double s[6], vr[18], o[3], lse;
    bool vis[6];
    for (int b = 0; b < 2; b++)
        for (int h = 0; h < 2; h++)
            for (int t = 0; t < 6; t++) {
                for (int i = 0; i < 6; i++) {
                    double dot = 0;
                    for (int d = 0; d < 4; d++) dot += (double)r.q[((b * 6 + t) * 2 + h) * 4 + d] * r.k[((b * 6 + i) * 2 + h) * 4 + d];
                    s[i] = dot / 2;
                    vis[i] = i <= t && ids[b * 6 + i] == ids[b * 6 + t];
                    for (int d = 0; d < 3; d++) vr[i * 3 + d] = r.v[((b * 6 + i) * 2 + h) * 3 + d];
                }
                naive_softmax(s, vis, 6, vr, 3, o, &lse);
                CHECK_NEAR(r.lse[(b * 6 + t) * 2 + h], lse, 1e-13);
                for (int d = 0; d < 3; d++) CHECK_NEAR(r.o[((b * 6 + t) * 2 + h) * 3 + d], o[d], 1e-13);
            }
    /* doc[kv_idx + 1] runs past the end */
    ir_expr *past[1] = { ir_binary(&a, IR_ADD, var(&a, IR_VAR_KV_IDX), inum(&a, 1)) };
    k.mask = ir_binary(&a, IR_EQ, ir_input_ref(&a, &k, 0, past, 1), ir_input_ref(&a, &k, 0, iq, 1));
    CHECK(!interp_run(&k, 2, 6, 6, ts, 6, err, sizeof err));
    CHECK_MSG(strstr(err, "doc") && strstr(err, "out") && strstr(err, "kv_idx 5"), "%s", err);
    /* the same read guarded on the left of && is fine (lazy, like the emitted C) */
    k.mask = ir_binary(&a, IR_AND, ir_binary(&a, IR_LT, var(&a, IR_VAR_KV_IDX), inum(&a, 5)),
                       ir_binary(&a, IR_EQ, ir_input_ref(&a, &k, 0, past, 1), ir_input_ref(&a, &k, 0, iq, 1)));
    CHECK_MSG(interp_run(&k, 2, 6, 6, ts, 6, err, sizeof err), "%s", err);
    sm_free(&r);
    arena_free(&a);
}

/* RoPE: the score depends on relative position only, so shifting every position by the
 * same amount changes nothing; a two-dim case checks the rotation's sign convention. */
static void test_rope_relative(void) {
    arena a;
    arena_init(&a);
    for (int layout = 0; layout < 2; layout++) {
        ir_kernel k = softmax_kernel(2, 1, 10, 3);
        plan_rope(&k, &a, layout ? IR_ROPE_INTERLEAVED : IR_ROPE_HALF, 2, 10, 100.0);
        k.rope.explicit_positions = true;
        k.mask = causal(&a);
        sm_run r1, r2;
        sm_alloc(&r1, &k, 1, 4, 9);
        sm_alloc(&r2, &k, 1, 4, 9);
        memcpy(r2.q, r1.q, sizeof(float) * 4 * 2 * 10);
        memcpy(r2.k, r1.k, sizeof(float) * 9 * 10);
        memcpy(r2.v, r1.v, sizeof(float) * 9 * 3);
        r1.pos = malloc(sizeof(int32_t) * 9);
        r2.pos = malloc(sizeof(int32_t) * 9);
        for (int i = 0; i < 9; i++) { r1.pos[i] = 3 * i + (i % 2); r2.pos[i] = r1.pos[i] + 1000; }
        char err[256];
        CHECK_MSG(sm_exec(&k, &r1, err, sizeof err), "%s", err);
        CHECK_MSG(sm_exec(&k, &r2, err, sizeof err), "%s", err);
        CHECK(max_abs_diff(r1.o, r2.o, 4 * 2 * 3) < 1e-11);
        CHECK(max_abs_diff(r1.lse, r2.lse, 8) < 1e-11);
        /* and RoPE does change the result (a broken rotation by 0 would pass the above) */
        ir_kernel plain = k;
        plain.rope.layout = IR_ROPE_NONE;
        plain.rope.explicit_positions = false;
        free(r2.pos);
        r2.pos = NULL;
        CHECK_MSG(sm_exec(&plain, &r2, err, sizeof err), "%s", err);
        CHECK(max_abs_diff(r1.o, r2.o, 4 * 2 * 3) > 1e-6);
        sm_free(&r1);
        sm_free(&r2);
    }
    /* d = 2, one pair of frequency f: q = (1, 0) at t, k = (1, 0) at i gives
     * cos((t - i) f); q = (0, 1) gives -sin((t - i) f) (R(t)ᵀR(i) = R(i - t)). */
    ir_kernel k = softmax_kernel(1, 1, 2, 1);
    plan_rope(&k, &a, IR_ROPE_HALF, 0, 2, 10000.0);
    k.rope.inv_freq[0] = 0.3;
    k.rope.explicit_positions = true;
    k.scale_value = 1.0;
    k.mask = ir_binary(&a, IR_EQ, var(&a, IR_VAR_KV_IDX), inum(&a, 0));  /* only key 0 */
    float q[2] = { 1, 0 }, kk[4] = { 1, 0, 5, 5 }, v[2] = { 1, 2 };
    int32_t pos[2] = { 4, 11 };
    double o, lse;
    attnc_tensor ts[6] = {
        view("q", ATTNC_F32, q, 4, 1, 1, 1, 2), view("k", ATTNC_F32, kk, 4, 1, 2, 1, 2),
        view("v", ATTNC_F32, v, 4, 1, 2, 1, 1), view("positions", ATTNC_I32, pos, 3, 1, 2, 1, 0),
        view("o", ATTNC_F64, &o, 4, 1, 1, 1, 1), view("lse", ATTNC_F64, &lse, 3, 1, 1, 1, 0),
    };
    char err[256];
    CHECK_MSG(interp_run(&k, 1, 1, 2, ts, 6, err, sizeof err), "%s", err);
    CHECK_NEAR(lse, cos(7 * 0.3), 1e-15);     /* query is row q_idx 1: position 11; key 0: 4 */
    q[0] = 0; q[1] = 1;
    CHECK_MSG(interp_run(&k, 1, 1, 2, ts, 6, err, sizeof err), "%s", err);
    CHECK_NEAR(lse, -sin(7 * 0.3), 1e-15);
    /* without explicit positions q_idx / kv_idx drive it: t = 1, i = 0 */
    k.rope.explicit_positions = false;
    CHECK_MSG(interp_run(&k, 1, 1, 2, ts, 5, err, sizeof err) == false, "positions is not part of this signature");
    ts[3] = ts[5];
    CHECK_MSG(interp_run(&k, 1, 1, 2, ts, 5, err, sizeof err), "%s", err);
    CHECK_NEAR(lse, -sin(0.3), 1e-15);
    arena_free(&a);
}

/* Multi-axis RoPE (M-RoPE): each pair follows its section's axis. Shifting one axis for
 * every token changes nothing; moving one token on one axis changes the result. */
static void test_rope_sections(void) {
    arena a;
    arena_init(&a);
    ir_kernel k = softmax_kernel(2, 2, 12, 4);
    plan_rope(&k, &a, IR_ROPE_HALF, 0, 12, 50.0);
    k.rope.n_sections = 3;
    k.rope.sections[0] = 1; k.rope.sections[1] = 2; k.rope.sections[2] = 3;
    int axis_of[6] = { 0, 1, 1, 2, 2, 2 };
    for (int j = 0; j < 6; j++) k.rope.pair_axis[j] = axis_of[j];
    k.rope.explicit_positions = true;
    k.mask = causal(&a);
    sm_run r1, r2;
    sm_alloc(&r1, &k, 1, 5, 5);
    sm_alloc(&r2, &k, 1, 5, 5);
    memcpy(r2.q, r1.q, sizeof(float) * 5 * 2 * 12);
    memcpy(r2.k, r1.k, sizeof(float) * 5 * 2 * 12);
    memcpy(r2.v, r1.v, sizeof(float) * 5 * 2 * 4);
    r1.pos = malloc(sizeof(int32_t) * 15);
    r2.pos = malloc(sizeof(int32_t) * 15);
    for (int i = 0; i < 5; i++)
        for (int ax = 0; ax < 3; ax++) {
            r1.pos[i * 3 + ax] = i * (ax + 1) + ax;
            r2.pos[i * 3 + ax] = r1.pos[i * 3 + ax] + (ax == 1 ? 77 : 0);
        }
    char err[256];
    CHECK_MSG(sm_exec(&k, &r1, err, sizeof err), "%s", err);
    CHECK_MSG(sm_exec(&k, &r2, err, sizeof err), "%s", err);
    CHECK(max_abs_diff(r1.o, r2.o, 5 * 2 * 4) < 1e-11);
    r2.pos[2 * 3 + 2] += 3;    /* token 2, axis 2 */
    CHECK_MSG(sm_exec(&k, &r2, err, sizeof err), "%s", err);
    CHECK(max_abs_diff(r1.o, r2.o, 5 * 2 * 4) > 1e-6);
    /* the first rows (before token 2) cannot see token 2 (causal): unchanged */
    CHECK(max_abs_diff(r1.o, r2.o, 2 * 2 * 4) < 1e-11);
    sm_free(&r1);
    sm_free(&r2);
    arena_free(&a);
}

/* ReRoPE: without clipping (window beyond every distance) it is RoPE, leaky or not;
 * with clipping, the brute force rotates q by the clipped relative position. */
static void test_rerope(void) {
    arena a;
    arena_init(&a);
    ir_kernel k = softmax_kernel(2, 1, 8, 3);
    plan_rope(&k, &a, IR_ROPE_HALF, 0, 8, 10.0);
    k.mask = causal(&a);
    sm_run base, re;
    sm_alloc(&base, &k, 1, 6, 9);
    sm_alloc(&re, &k, 1, 6, 9);
    memcpy(re.q, base.q, sizeof(float) * 6 * 2 * 8);
    memcpy(re.k, base.k, sizeof(float) * 9 * 8);
    memcpy(re.v, base.v, sizeof(float) * 9 * 3);
    char err[256];
    CHECK_MSG(sm_exec(&k, &base, err, sizeof err), "%s", err);
    ir_kernel rk = k;
    rk.rope.rerope_window = 100;
    CHECK_MSG(sm_exec(&rk, &re, err, sizeof err), "%s", err);
    CHECK(max_abs_diff(base.o, re.o, 6 * 2 * 3) < 1e-12);
    CHECK(max_abs_diff(base.lse, re.lse, 12) < 1e-12);
    /* window 1: rel = min(t - i, 1); against a brute force that rotates q by rel */
    rk.rope.rerope_window = 1;
    CHECK_MSG(sm_exec(&rk, &re, err, sizeof err), "%s", err);
    double s[9], vr[27], o[3], lse;
    bool vis[9];
    for (int h = 0; h < 2; h++)
        for (int t = 0; t < 6; t++) {
            int qi = t + 3;
            for (int i = 0; i < 9; i++) {
                double rel = qi - i < 1 ? qi - i : 1, qr[8], dot = 0;
                for (int d = 0; d < 8; d++) qr[d] = re.q[(t * 2 + h) * 8 + d];
                for (int j = 0; j < 4; j++) {
                    double ang = rel * pow(10.0, -2.0 * j / 8), x0 = qr[j], x1 = qr[j + 4];
                    qr[j] = x0 * cos(ang) - x1 * sin(ang);
                    qr[j + 4] = x0 * sin(ang) + x1 * cos(ang);
                }
                for (int d = 0; d < 8; d++) dot += qr[d] * re.k[i * 8 + d];
                s[i] = dot / sqrt(8.0);
                vis[i] = i <= qi;
                for (int d = 0; d < 3; d++) vr[i * 3 + d] = re.v[i * 3 + d];
            }
            naive_softmax(s, vis, 9, vr, 3, o, &lse);
            CHECK_NEAR(re.lse[t * 2 + h], lse, 1e-12);
            for (int d = 0; d < 3; d++) CHECK_NEAR(re.o[(t * 2 + h) * 3 + d], o[d], 1e-12);
        }
    /* leaky: beyond the window rel = w + (d - w) / L */
    rk.rope.rerope_leak = 4;
    CHECK_MSG(sm_exec(&rk, &re, err, sizeof err), "%s", err);
    for (int h = 0; h < 2; h++)
        for (int t = 0; t < 6; t++) {
            int qi = t + 3;
            for (int i = 0; i < 9; i++) {
                double d0 = qi - i, rel = d0 <= 1 ? d0 : 1 + (d0 - 1) / 4, qr[8], dot = 0;
                for (int d = 0; d < 8; d++) qr[d] = re.q[(t * 2 + h) * 8 + d];
                for (int j = 0; j < 4; j++) {
                    double ang = rel * pow(10.0, -2.0 * j / 8), x0 = qr[j], x1 = qr[j + 4];
                    qr[j] = x0 * cos(ang) - x1 * sin(ang);
                    qr[j + 4] = x0 * sin(ang) + x1 * cos(ang);
                }
                for (int d = 0; d < 8; d++) dot += qr[d] * re.k[i * 8 + d];
                s[i] = dot / sqrt(8.0);
                vis[i] = i <= qi;
                for (int d = 0; d < 3; d++) vr[i * 3 + d] = re.v[i * 3 + d];
            }
            naive_softmax(s, vis, 9, vr, 3, o, &lse);
            CHECK_NEAR(re.lse[t * 2 + h], lse, 1e-12);
        }
    /* leak with an unreachable window is plain RoPE again */
    rk.rope.rerope_window = 1000;
    CHECK_MSG(sm_exec(&rk, &re, err, sizeof err), "%s", err);
    CHECK_MSG(sm_exec(&k, &base, err, sizeof err), "%s", err);
    CHECK(max_abs_diff(base.o, re.o, 36) < 1e-12);
    sm_free(&base);
    sm_free(&re);
    arena_free(&a);
}

/* MLA absorbed form: V is the first d_v dims of the K row; RoPE on the rest. */
static void test_mla(void) {
    arena a;
    arena_init(&a);
    ir_kernel k = softmax_kernel(4, 1, 6, 4);
    k.v_in_k = true;
    k.latent_rank = 4;
    k.latent_rope = 2;
    k.mask = causal(&a);
    sm_run r;
    sm_alloc(&r, &k, 2, 3, 5);
    char err[256];
    CHECK_MSG(sm_exec(&k, &r, err, sizeof err), "%s", err);
    double *o = dzeros(2 * 3 * 4 * 4), *lse = dzeros(2 * 3 * 4);
    brute_softmax(&k, &r, mask_causal, 0, false, o, lse);
    CHECK(max_abs_diff(o, r.o, 96) < 1e-13);
    CHECK(max_abs_diff(lse, r.lse, 24) < 1e-13);
    /* RoPE on dims [4, 6) leaves V (dims [0, 4)) unrotated: with k's rope dims 0 the
     * rope part of every score is 0, so the result equals the no-rope run. */
    plan_rope(&k, &a, IR_ROPE_INTERLEAVED, 4, 6, 10000.0);
    for (int i = 0; i < 2 * 5; i++) r.k[i * 6 + 4] = r.k[i * 6 + 5] = 0;
    ir_kernel plain = k;
    plain.rope.layout = IR_ROPE_NONE;
    double *o2 = dzeros(96);
    CHECK_MSG(sm_exec(&k, &r, err, sizeof err), "%s", err);
    memcpy(o2, r.o, sizeof(double) * 96);
    CHECK_MSG(sm_exec(&plain, &r, err, sizeof err), "%s", err);
    CHECK(max_abs_diff(o2, r.o, 96) < 1e-13);
    free(o); free(o2); free(lse);
    sm_free(&r);
    arena_free(&a);
}

/* bf16 and f16 kernels on values exact in those formats give the f32 kernel's result. */
static void test_low_precision_inputs(void) {
    ir_kernel k = softmax_kernel(2, 2, 4, 4);
    sm_run r;
    sm_alloc(&r, &k, 1, 3, 3);
    int64_t nq = 3 * 2 * 4;
    /* round to 8 significant bits: exact in bf16 (and, at this range, in f16) */
    for (int64_t i = 0; i < nq; i++) {
        r.q[i] = (float)(round(r.q[i] * 128) / 128);
        r.k[i] = (float)(round(r.k[i] * 128) / 128);
        r.v[i] = (float)(round(r.v[i] * 128) / 128);
    }
    char err[256];
    CHECK_MSG(sm_exec(&k, &r, err, sizeof err), "%s", err);
    for (int which = 0; which < 2; which++) {
        attnc_dtype dt = which ? ATTNC_F16 : ATTNC_BF16;
        ir_kernel lk = k;
        lk.dtype = which ? IR_F16 : IR_BF16;
        uint16_t q16[24], k16[24], v16[24];
        for (int i = 0; i < 24; i++) {
            q16[i] = which ? attnc_double_to_f16(r.q[i]) : attnc_double_to_bf16(r.q[i]);
            k16[i] = which ? attnc_double_to_f16(r.k[i]) : attnc_double_to_bf16(r.k[i]);
            v16[i] = which ? attnc_double_to_f16(r.v[i]) : attnc_double_to_bf16(r.v[i]);
        }
        double o[24], lse[6];
        uint16_t o16[24];
        attnc_tensor ts[5] = {
            view("q", dt, q16, 4, 1, 3, 2, 4), view("k", dt, k16, 4, 1, 3, 2, 4), view("v", dt, v16, 4, 1, 3, 2, 4),
            view("o", ATTNC_F64, o, 4, 1, 3, 2, 4), view("lse", ATTNC_F64, lse, 3, 1, 3, 2, 0),
        };
        CHECK_MSG(interp_run(&lk, 1, 3, 3, ts, 5, err, sizeof err), "%s", err);
        CHECK(max_abs_diff(o, r.o, 24) == 0);
        CHECK(max_abs_diff(lse, r.lse, 6) == 0);
        /* an output in the kernel dtype is the f64 result rounded once */
        ts[3] = view("o", dt, o16, 4, 1, 3, 2, 4);
        CHECK_MSG(interp_run(&lk, 1, 3, 3, ts, 5, err, sizeof err), "%s", err);
        for (int i = 0; i < 24; i++)
            CHECK(o16[i] == (which ? attnc_double_to_f16(r.o[i]) : attnc_double_to_bf16(r.o[i])));
        /* f32 data for a bf16 kernel is refused with both spellings in the message */
        ts[0] = view("q", ATTNC_F32, r.q, 4, 1, 3, 2, 4);
        CHECK(!interp_run(&lk, 1, 3, 3, ts, 5, err, sizeof err));
        CHECK_MSG(strstr(err, "tensor 'q': expected") && strstr(err, which ? "f16 (float16)" : "bf16 (uint16 bit patterns)") &&
                  strstr(err, "got f32 (float32)"), "%s", err);
    }
    sm_free(&r);
}

static void test_conversions(void) {
    /* exact on representable values, both directions */
    const double exact[] = { 0.0, 1.0, -2.5, 0.15625, 65504.0, 6.103515625e-05 /* 2^-14 */,
                             5.9604644775390625e-08 /* 2^-24, smallest f16 subnormal */, -3.0517578125e-05 };
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
        CHECK(attnc_f16_to_double(attnc_double_to_f16(exact[i])) == exact[i]);
        if (fabs(exact[i]) >= 1e-30) CHECK(attnc_bf16_to_double(attnc_double_to_bf16(exact[i])) == exact[i] || fabs(exact[i]) == 65504.0);
    }
    CHECK(attnc_double_to_f16(1.0) == 0x3c00);
    CHECK(attnc_double_to_f16(-2.0) == 0xc000);
    CHECK(attnc_double_to_f16(65504.0) == 0x7bff);
    CHECK(attnc_double_to_f16(5.9604644775390625e-08) == 0x0001);
    CHECK(attnc_double_to_f16(INFINITY) == 0x7c00);
    CHECK(attnc_double_to_f16(-INFINITY) == 0xfc00);
    CHECK((attnc_double_to_f16(NAN) & 0x7c00) == 0x7c00 && (attnc_double_to_f16(NAN) & 0x3ff) != 0);
    CHECK(isnan(attnc_f16_to_double(0x7e00)));
    CHECK(attnc_f16_to_double(0x7c00) == INFINITY);
    CHECK(attnc_f16_to_double(0x0200) == ldexp(1.0, -15));   /* subnormal */
    CHECK(attnc_f16_to_double(0x8000) == 0 && signbit(attnc_f16_to_double(0x8000)));
    /* rounding: nearest, ties to even; overflow to inf; underflow to zero */
    CHECK(attnc_double_to_f16(1.0 + ldexp(1.0, -11)) == 0x3c00);        /* tie -> even (down) */
    CHECK(attnc_double_to_f16(1.0 + 3 * ldexp(1.0, -11)) == 0x3c02);    /* tie -> even (up) */
    CHECK(attnc_double_to_f16(1.0 + ldexp(1.0, -11) + ldexp(1.0, -20)) == 0x3c01);
    CHECK(attnc_double_to_f16(65520.0) == 0x7c00);                       /* halfway to 2^16 */
    CHECK(attnc_double_to_f16(65519.0) == 0x7bff);
    CHECK(attnc_double_to_f16(ldexp(1.0, -26)) == 0x0000);              /* below half the smallest */
    CHECK(attnc_double_to_f16(ldexp(3.0, -26)) == 0x0001);
    CHECK(attnc_double_to_bf16(1.0) == 0x3f80);
    CHECK(attnc_double_to_bf16(-1.0) == 0xbf80);
    CHECK(attnc_double_to_bf16(1.0 + ldexp(1.0, -8)) == 0x3f80);        /* tie -> even */
    CHECK(attnc_double_to_bf16(1.0 + 3 * ldexp(1.0, -8)) == 0x3f82);
    CHECK(attnc_double_to_bf16(1.0 + ldexp(1.0, -8) + ldexp(1.0, -30)) == 0x3f81);  /* no double rounding */
    CHECK(attnc_double_to_bf16(1e39) == 0x7f80);
    CHECK(attnc_bf16_to_double(0x4049) == 3.140625);
    CHECK(attnc_bf16_to_double(0x0001) == ldexp(1.0, -133));            /* bf16 subnormal */
    CHECK(attnc_double_to_bf16(ldexp(1.0, -133)) == 0x0001);
    CHECK((attnc_double_to_bf16(NAN) & 0x7f80) == 0x7f80 && (attnc_double_to_bf16(NAN) & 0x7f) != 0);
    CHECK(attnc_double_to_f32(1.0 + ldexp(1.0, -24)) == 1.0f);
    CHECK(attnc_double_to_f32(1e39) == INFINITY);
    /* every f16 bit pattern round-trips (NaNs stay NaN) */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        double v = attnc_f16_to_double((uint16_t)h);
        if (isnan(v)) { bad += !isnan(attnc_f16_to_double(attnc_double_to_f16(v))); continue; }
        bad += attnc_double_to_f16(v) != h;
        double vb = attnc_bf16_to_double((uint16_t)h);
        if (!isnan(vb)) bad += attnc_double_to_bf16(vb) != h;
    }
    CHECK_MSG(bad == 0, "%d bit patterns do not round-trip", bad);
}

/* ---------------------------------------------------------------- recurrences */

typedef struct rec_run {
    int64_t b, s;
    float *q, *k, *v;
    double *o, *state;
} rec_run;

static void rec_alloc(rec_run *r, const ir_kernel *k, int64_t b, int64_t s) {
    r->b = b; r->s = s;
    r->q = frand(b * s * k->groups * k->d_qk);
    r->k = frand(b * s * k->groups * k->d_qk);
    r->v = frand(b * s * k->heads_q * k->d_v);
    r->o = dzeros(b * s * k->heads_q * k->d_v);
    r->state = dzeros(b * k->heads_q * k->d_qk * k->d_v);
}

static void rec_free(rec_run *r) { free(r->q); free(r->k); free(r->v); free(r->o); free(r->state); }

static bool rec_exec(const ir_kernel *k, rec_run *r, attnc_tensor *extra, int n_extra, char *err, size_t errlen) {
    attnc_tensor ts[12];
    int n = 0;
    ts[n++] = view("q", ATTNC_F32, r->q, 4, r->b, r->s, k->groups, k->d_qk);
    ts[n++] = view("k", ATTNC_F32, r->k, 4, r->b, r->s, k->groups, k->d_qk);
    ts[n++] = view("v", ATTNC_F32, r->v, 4, r->b, r->s, k->heads_q, k->d_v);
    for (int i = 0; i < n_extra; i++) ts[n++] = extra[i];
    ts[n++] = view("o", ATTNC_F64, r->o, 4, r->b, r->s, k->heads_q, k->d_v);
    ts[n++] = view("state_out", ATTNC_F64, r->state, 4, r->b, k->heads_q, k->d_qk, k->d_v);
    return interp_run(k, r->b, r->s, r->s, ts, n, err, errlen);
}

/* Direct quadratic form: o_t = Σ_{i<=t} Σ_a q_t[a] k_i[a] · decay(i→t)[a] · w_i · v_i,
 * normalised by Σ_{i<=t} Σ_a q_t[a] k_i[a] decay when norm. decay_fn gives the factor
 * Π_{r=i+1..t} Λ_r[a]. */
typedef double (*cum_decay_fn)(int64_t b, int h, int64_t i, int64_t t, int a, void *ctx);

static void brute_recurrence(const ir_kernel *k, const rec_run *r, cum_decay_fn decay, void *ctx,
                             double (*phi)(double), bool norm, const double *vscale /* [b,s,h] or NULL */,
                             const double *skip /* [h] or NULL */, double *o) {
    int per = k->heads_q / k->groups;
    for (int64_t b = 0; b < r->b; b++)
        for (int h = 0; h < k->heads_q; h++) {
            int g = h / per;
            for (int64_t t = 0; t < r->s; t++)
                for (int e = 0; e < k->d_v; e++) {
                    double num_ = 0, den = 0;
                    for (int64_t i = 0; i <= t; i++) {
                        double w = vscale ? vscale[(b * r->s + i) * k->heads_q + h] : 1;
                        double vi = r->v[((b * r->s + i) * k->heads_q + h) * k->d_v + e];
                        for (int a = 0; a < k->d_qk; a++) {
                            double qa = phi(r->q[((b * r->s + t) * k->groups + g) * k->d_qk + a]);
                            double ka = phi(r->k[((b * r->s + i) * k->groups + g) * k->d_qk + a]);
                            double c = qa * ka * (decay ? decay(b, h, i, t, a, ctx) : 1.0);
                            num_ += c * w * vi;
                            den += c;
                        }
                    }
                    double out = norm ? num_ / den : num_;
                    if (skip) out += skip[h] * r->v[((b * r->s + t) * k->heads_q + h) * k->d_v + e];
                    o[((b * r->s + t) * k->heads_q + h) * k->d_v + e] = out;
                }
        }
}

static double phi_id(double x) { return x; }
static double phi_sq1(double x) { return x * x + 1; }

static void test_linear_attention(void) {
    ir_kernel k = recurrence_kernel(2, 2, 3, 4);
    rec_run r;
    rec_alloc(&r, &k, 2, 7);
    char err[256];
    CHECK_MSG(rec_exec(&k, &r, NULL, 0, err, sizeof err), "%s", err);
    double *o = dzeros(2 * 7 * 2 * 4);
    brute_recurrence(&k, &r, NULL, NULL, phi_id, false, NULL, NULL, o);
    CHECK(max_abs_diff(o, r.o, 112) < 1e-12);
    /* the final state is Σ_t k_tᵀ v_t */
    for (int h = 0; h < 2; h++)
        for (int a = 0; a < 3; a++)
            for (int e = 0; e < 4; e++) {
                double s = 0;
                for (int t = 0; t < 7; t++) s += (double)r.k[((1 * 7 + t) * 2 + h) * 3 + a] * r.v[((1 * 7 + t) * 2 + h) * 4 + e];
                CHECK_NEAR(r.state[((1 * 2 + h) * 3 + a) * 4 + e], s, 1e-13);
            }
    free(o);
    rec_free(&r);
}

static double cum_head_decay(int64_t b, int h, int64_t i, int64_t t, int a, void *ctx) {
    (void)b; (void)a; (void)ctx;
    return pow(1 - pow(2.0, -1.0 - h), (double)(t - i));
}

/* RetNet-like: decay 1 - 2^(-1 - head) (a per-head constant), with groups and a feature
 * map, normalised. */
static void test_head_decay_groups_feature(void) {
    arena a;
    arena_init(&a);
    ir_kernel k = recurrence_kernel(4, 2, 3, 2);
    k.decay = ir_binary(&a, IR_SUB, num(&a, 1),
                        ir_binary(&a, IR_POW, num(&a, 2), ir_binary(&a, IR_SUB, inum(&a, -1), var(&a, IR_VAR_HEAD))));
    k.decay_kind = IR_DECAY_HEAD;
    rec_run r;
    rec_alloc(&r, &k, 1, 6);
    char err[256];
    CHECK_MSG(rec_exec(&k, &r, NULL, 0, err, sizeof err), "%s", err);
    double *o = dzeros(6 * 4 * 2);
    brute_recurrence(&k, &r, cum_head_decay, NULL, phi_id, false, NULL, NULL, o);
    CHECK(max_abs_diff(o, r.o, 48) < 1e-12);
    /* feature x^2 + 1 with normalize */
    ir_expr *x = var(&a, IR_VAR_X);
    k.feature = ir_binary(&a, IR_ADD, ir_binary(&a, IR_MUL, x, x), num(&a, 1));
    k.normalize = true;
    CHECK_MSG(rec_exec(&k, &r, NULL, 0, err, sizeof err), "%s", err);
    brute_recurrence(&k, &r, cum_head_decay, NULL, phi_sq1, true, NULL, NULL, o);
    CHECK(max_abs_diff(o, r.o, 48) < 1e-12);
    free(o);
    rec_free(&r);
    arena_free(&a);
}

typedef struct mamba_ctx { const float *dt, *A; int heads; int64_t s; } mamba_ctx;
static double cum_mamba(int64_t b, int h, int64_t i, int64_t t, int a, void *ctx) {
    (void)a;
    const mamba_ctx *m = ctx;
    double l = 1;
    for (int64_t u = i + 1; u <= t; u++) l *= exp(-m->dt[(b * m->s + u) * m->heads + h] * exp(m->A[h]));
    return l;
}

/* Mamba2-like: decay exp(-dt · exp(A_log)) per token and head, value scale dt, skip D. */
static void test_mamba2_form(void) {
    arena a;
    arena_init(&a);
    ir_kernel k = recurrence_kernel(3, 1, 4, 2);
    ir_input ins[3] = {
        { .name = "dt", .n_axes = 2, .axes = { IR_AXIS_TOKEN, IR_AXIS_HEAD }, .scalar = IR_S_F32 },
        { .name = "A_log", .n_axes = 1, .axes = { IR_AXIS_HEAD }, .scalar = IR_S_F32 },
        { .name = "D", .n_axes = 1, .axes = { IR_AXIS_HEAD }, .scalar = IR_S_F32 },
    };
    k.inputs = ins;
    k.n_inputs = 3;
    ir_expr *dt = ir_input_ref(&a, &k, 0, NULL, 0), *al = ir_input_ref(&a, &k, 1, NULL, 0);
    k.decay = ir_unary(&a, IR_EXP, ir_binary(&a, IR_MUL, ir_unary(&a, IR_NEG, dt), ir_unary(&a, IR_EXP, al)));
    k.decay_kind = IR_DECAY_TOKEN_HEAD;
    k.v_scale = ir_input_ref(&a, &k, 0, NULL, 0);
    k.skip = ir_input_ref(&a, &k, 2, NULL, 0);
    rec_run r;
    rec_alloc(&r, &k, 2, 5);
    float dtv[2 * 5 * 3], A[3] = { 0.1f, -0.5f, 0.7f }, D[3] = { 0.5f, -1.0f, 2.0f };
    for (int i = 0; i < 30; i++) dtv[i] = (float)(0.05 + 0.2 * (urand() + 1));
    attnc_tensor extra[3] = {
        view("dt", ATTNC_F32, dtv, 3, 2, 5, 3, 0), view("A_log", ATTNC_F32, A, 1, 3, 0, 0, 0),
        view("D", ATTNC_F32, D, 1, 3, 0, 0, 0),
    };
    char err[256];
    CHECK_MSG(rec_exec(&k, &r, extra, 3, err, sizeof err), "%s", err);
    double vs[30], skip[3] = { D[0], D[1], D[2] }, *o = dzeros(2 * 5 * 3 * 2);
    for (int i = 0; i < 30; i++) vs[i] = dtv[i];
    mamba_ctx ctx = { dtv, A, 3, 5 };
    brute_recurrence(&k, &r, cum_mamba, &ctx, phi_id, false, vs, skip, o);
    CHECK(max_abs_diff(o, r.o, 60) < 1e-12);
    /* a missing input is reported by name with its expected shape */
    CHECK(!rec_exec(&k, &r, extra, 2, err, sizeof err));
    CHECK_MSG(strstr(err, "missing tensor 'D'") && strstr(err, "[3] (heads)"), "%s", err);
    free(o);
    rec_free(&r);
    arena_free(&a);
}

typedef struct gla_ctx { const float *g; int heads, dk; int64_t s; } gla_ctx;
static double gla_alpha(double g) { return 1 / (1 + exp(-g)); }
static double cum_gla(int64_t b, int h, int64_t i, int64_t t, int a, void *ctx) {
    const gla_ctx *m = ctx;
    double l = 1;
    for (int64_t u = i + 1; u <= t; u++) l *= gla_alpha(m->g[((b * m->s + u) * m->heads + h) * m->dk + a]);
    return l;
}

/* GLA: a decay vector over d_k read from an input with a k axis. */
static void test_vector_decay(void) {
    arena a;
    arena_init(&a);
    ir_kernel k = recurrence_kernel(2, 2, 3, 2);
    ir_input g = { .name = "g", .n_axes = 3, .axes = { IR_AXIS_TOKEN, IR_AXIS_HEAD, IR_AXIS_K }, .scalar = IR_S_F32 };
    k.inputs = &g;
    k.n_inputs = 1;
    ir_expr *gv = ir_input_ref(&a, &k, 0, NULL, 0);
    k.decay = ir_binary(&a, IR_DIV, num(&a, 1), ir_binary(&a, IR_ADD, num(&a, 1), ir_unary(&a, IR_EXP, ir_unary(&a, IR_NEG, gv))));
    k.decay_kind = IR_DECAY_KEY_VECTOR;
    rec_run r;
    rec_alloc(&r, &k, 1, 6);
    float *gd = frand(6 * 2 * 3);
    attnc_tensor extra[1] = { view("g", ATTNC_F32, gd, 4, 1, 6, 2, 3) };
    char err[256];
    CHECK_MSG(rec_exec(&k, &r, extra, 1, err, sizeof err), "%s", err);
    double *o = dzeros(6 * 2 * 2);
    gla_ctx ctx = { gd, 2, 3, 6 };
    brute_recurrence(&k, &r, cum_gla, &ctx, phi_id, false, NULL, NULL, o);
    CHECK(max_abs_diff(o, r.o, 24) < 1e-12);
    /* normalised too: z decays per key dim */
    k.normalize = true;
    CHECK_MSG(rec_exec(&k, &r, extra, 1, err, sizeof err), "%s", err);
    brute_recurrence(&k, &r, cum_gla, &ctx, phi_id, true, NULL, NULL, o);
    CHECK(max_abs_diff(o, r.o, 24) < 1e-10);
    free(o); free(gd);
    rec_free(&r);
    arena_free(&a);
}

/* Prefill of 2n tokens equals prefill of n, then n more starting from its final state. */
static void test_state_handoff(void) {
    arena a;
    arena_init(&a);
    ir_kernel k = recurrence_kernel(2, 1, 3, 4);
    k.decay = ir_binary(&a, IR_SUB, num(&a, 0.9), ir_binary(&a, IR_MUL, num(&a, 0.1), ir_unary(&a, IR_TO_FLOAT, var(&a, IR_VAR_HEAD))));
    k.decay_kind = IR_DECAY_HEAD;
    const int64_t n = 5;
    rec_run whole, first, second;
    rec_alloc(&whole, &k, 2, 2 * n);
    rec_alloc(&first, &k, 2, n);
    rec_alloc(&second, &k, 2, n);
    for (int64_t b = 0; b < 2; b++)
        for (int64_t t = 0; t < 2 * n; t++) {
            rec_run *dst = t < n ? &first : &second;
            int64_t u = t < n ? t : t - n;
            memcpy(dst->q + (b * n + u) * 3, whole.q + (b * 2 * n + t) * 3, 3 * sizeof(float));
            memcpy(dst->k + (b * n + u) * 3, whole.k + (b * 2 * n + t) * 3, 3 * sizeof(float));
            memcpy(dst->v + (b * n + u) * 8, whole.v + (b * 2 * n + t) * 8, 8 * sizeof(float));
        }
    char err[256];
    CHECK_MSG(rec_exec(&k, &whole, NULL, 0, err, sizeof err), "%s", err);
    CHECK_MSG(rec_exec(&k, &first, NULL, 0, err, sizeof err), "%s", err);
    float state_in[2 * 2 * 3 * 4];
    for (int i = 0; i < 48; i++) state_in[i] = (float)first.state[i];
    /* state_in is f32: compare with a tolerance that covers its rounding */
    attnc_tensor extra[1] = { view("state_in", ATTNC_F32, state_in, 4, 2, 2, 3, 4) };
    CHECK_MSG(rec_exec(&k, &second, extra, 1, err, sizeof err), "%s", err);
    double md = 0;
    for (int64_t b = 0; b < 2; b++)
        for (int64_t u = 0; u < n; u++)
            for (int i = 0; i < 8; i++) {
                double d = fabs(second.o[(b * n + u) * 8 + i] - whole.o[(b * 2 * n + n + u) * 8 + i]);
                if (d > md) md = d;
            }
    CHECK_MSG(md < 1e-6, "max diff %g", md);
    CHECK(max_abs_diff(second.state, whole.state, 48) < 1e-6);
    /* and the first half alone is the first half of the whole */
    for (int64_t b = 0; b < 2; b++) CHECK(max_abs_diff(first.o + b * n * 8, whole.o + b * 2 * n * 8, n * 8) < 1e-13);
    /* with an f64 state_in (not allowed: inputs keep their dtype) the check says so */
    attnc_tensor bad[1] = { view("state_in", ATTNC_F64, first.state, 4, 2, 2, 3, 4) };
    CHECK(!rec_exec(&k, &second, bad, 1, err, sizeof err));
    CHECK_MSG(strstr(err, "state_in") && strstr(err, "expected f32"), "%s", err);
    rec_free(&whole); rec_free(&first); rec_free(&second);
    arena_free(&a);
}

/* ---------------------------------------------------------------- signature */

static void test_signature(void) {
    ir_kernel k = softmax_kernel(32, 8, 128, 128);
    k.dtype = IR_BF16;
    sig_tensor sig[SIG_MAX_TENSORS];
    int n = ir_signature(&k, 2, 1, 17, sig);
    CHECK(n == 5);
    const char *order[] = { "q", "k", "v", "o", "lse" };
    for (int i = 0; i < 5 && i < n; i++) CHECK(strcmp(sig[i].name, order[i]) == 0);
    CHECK(sig[1].ndim == 4 && sig[1].shape[0] == 2 && sig[1].shape[1] == 17 && sig[1].shape[2] == 8 && sig[1].shape[3] == 128);
    CHECK(sig[0].shape[1] == 1 && sig[4].ndim == 3 && sig[4].dtype == ATTNC_F32 && sig[4].optional);
    CHECK(sig[0].dtype == ATTNC_BF16 && sig[3].role == SIG_OUT);
    uint16_t dummy[8];
    attnc_tensor ts[4] = {
        view("q", ATTNC_BF16, dummy, 4, 2, 1, 32, 128), view("k", ATTNC_BF16, dummy, 4, 2, 17, 8, 64),
        view("v", ATTNC_BF16, dummy, 4, 2, 17, 8, 128), view("o", ATTNC_F64, dummy, 4, 2, 1, 32, 128),
    };
    char err[256];
    CHECK(!sig_check(sig, n, ts, 4, err, sizeof err));
    CHECK_MSG(strcmp(err, "tensor 'k': expected shape [2, 17, 8, 128] (batch, seq_k, heads_kv, d_qk), got [2, 17, 8, 64]") == 0, "%s", err);
    ts[1].shape[3] = 128;
    CHECK_MSG(sig_check(sig, n, ts, 4, err, sizeof err), "%s", err);
    ts[3].dtype = ATTNC_F16;
    CHECK(!sig_check(sig, n, ts, 4, err, sizeof err));
    CHECK_MSG(strstr(err, "tensor 'o': expected bf16 (uint16 bit patterns) or f64 (float64), got f16"), "%s", err);
    ts[3].dtype = ATTNC_BF16;
    ts[2].name = "vv";
    CHECK(!sig_check(sig, n, ts, 4, err, sizeof err));
    CHECK_MSG(strstr(err, "unknown tensor 'vv'; did you mean 'v'?"), "%s", err);
    ts[2].name = "v";
    CHECK(!sig_check(sig, n, ts, 3, err, sizeof err));
    CHECK_MSG(strstr(err, "missing tensor 'o'") && strstr(err, "[2, 1, 32, 128] (batch, seq_q, heads_q, d_v)"), "%s", err);
    ts[1].name = "q";
    CHECK(!sig_check(sig, n, ts, 4, err, sizeof err));
    CHECK_MSG(strstr(err, "given twice"), "%s", err);
    ts[1].name = "k";
    ts[0].data = NULL;
    CHECK(!sig_check(sig, n, ts, 4, err, sizeof err));
    CHECK_MSG(strstr(err, "no data"), "%s", err);

    /* MLA without v, explicit multi-axis positions, declared inputs, a recurrence */
    ir_kernel m = softmax_kernel(16, 1, 576, 512);
    m.v_in_k = true;
    m.rope.layout = IR_ROPE_HALF;
    m.rope.explicit_positions = true;
    m.rope.n_sections = 3;
    ir_input ins[2] = {
        { .name = "doc", .n_axes = 1, .axes = { IR_AXIS_TOKEN }, .scalar = IR_S_I32 },
        { .name = "bias", .n_axes = 1, .axes = { IR_AXIS_HEAD }, .scalar = IR_S_F32 },
    };
    m.inputs = ins;
    m.n_inputs = 2;
    n = ir_signature(&m, 1, 4, 9, sig);
    const char *morder[] = { "q", "k", "positions", "doc", "bias", "o", "lse" };
    CHECK(n == 7);
    for (int i = 0; i < 7 && i < n; i++) CHECK(strcmp(sig[i].name, morder[i]) == 0);
    CHECK(sig[2].ndim == 3 && sig[2].shape[2] == 3 && sig[2].dtype == ATTNC_I32);
    CHECK(sig[3].ndim == 2 && sig[3].shape[1] == 9 && sig[3].dtype == ATTNC_I32);
    CHECK(sig[4].ndim == 1 && sig[4].shape[0] == 16 && sig[4].dtype == ATTNC_F32);

    ir_kernel r = recurrence_kernel(80, 1, 128, 64);
    ir_input rin[2] = {
        { .name = "dt", .n_axes = 2, .axes = { IR_AXIS_TOKEN, IR_AXIS_HEAD }, .scalar = IR_S_F32 },
        { .name = "g", .n_axes = 3, .axes = { IR_AXIS_TOKEN, IR_AXIS_HEAD, IR_AXIS_K }, .scalar = IR_S_F32 },
    };
    r.inputs = rin;
    r.n_inputs = 2;
    n = ir_signature(&r, 2, 33, 33, sig);
    const char *rorder[] = { "q", "k", "v", "dt", "g", "state_in", "o", "state_out" };
    CHECK(n == 8);
    for (int i = 0; i < 8 && i < n; i++) CHECK(strcmp(sig[i].name, rorder[i]) == 0);
    CHECK(sig[0].shape[2] == 1 && sig[2].shape[2] == 80 && sig[2].shape[3] == 64);
    CHECK(sig[3].ndim == 3 && sig[3].shape[1] == 33 && sig[3].shape[2] == 80);
    CHECK(sig[4].ndim == 4 && sig[4].shape[3] == 128);
    CHECK(sig[5].optional && sig[5].role == SIG_IN && sig[7].optional && sig[7].shape[2] == 128 && sig[7].shape[3] == 64);
    CHECK(strcmp(sig[0].dim_names[2], "groups") == 0 && strcmp(sig[0].dim_names[1], "seq") == 0);
    /* an input that would need 5 dimensions is reported, not truncated */
    rin[1].n_axes = 4;
    rin[1].axes[3] = IR_AXIS_V;
    n = ir_signature(&r, 2, 33, 33, sig);
    CHECK(!sig_check(sig, n, NULL, 0, err, sizeof err));
    CHECK_MSG(strstr(err, "'g' would need 5 dimensions"), "%s", err);
}

/* interp_eval: integer floor semantics, laziness, out-of-range reads give NaN. */
static void test_eval(void) {
    arena a;
    arena_init(&a);
    interp_env env;
    memset(&env, 0, sizeof env);
    ir_expr *m7 = inum(&a, -7), *p2 = inum(&a, 2);
    CHECK(interp_eval(ir_binary(&a, IR_IDIV, m7, p2), &env) == -4);
    CHECK(interp_eval(ir_binary(&a, IR_MOD, m7, p2), &env) == 1);
    CHECK(interp_eval(ir_binary(&a, IR_MOD, inum(&a, 7), inum(&a, -2)), &env) == -1);
    CHECK(isnan(interp_eval(ir_binary(&a, IR_IDIV, m7, inum(&a, 0)), &env)));
    CHECK(interp_eval(ir_select(&a, ir_const(&a, IR_T_BOOL, 0), num(&a, 1), num(&a, 2)), &env) == 2);
    CHECK(interp_eval(ir_binary(&a, IR_POW, num(&a, 2), num(&a, -3)), &env) == 0.125);
    env.var[IR_VAR_Q_IDX] = 5;
    env.var[IR_VAR_KV_IDX] = 2;
    CHECK(interp_eval(ir_binary(&a, IR_GE, ir_binary(&a, IR_SUB, var(&a, IR_VAR_Q_IDX), var(&a, IR_VAR_KV_IDX)), inum(&a, 3)), &env) == 1);
    ir_kernel k = softmax_kernel(1, 1, 2, 2);
    ir_input in = { .name = "w", .n_axes = 1, .axes = { IR_AXIS_HEAD }, .scalar = IR_S_F32 };
    k.inputs = &in;
    k.n_inputs = 1;
    float w[3] = { 1.5f, 2.5f, 3.5f };
    attnc_tensor tw = view("w", ATTNC_F32, w, 1, 3, 0, 0, 0);
    env.kernel = &k;
    env.inputs = &tw;
    ir_expr *idx[1] = { var(&a, IR_VAR_Q_IDX) };
    ir_expr *rd = ir_input_ref(&a, &k, 0, idx, 1);
    CHECK(isnan(interp_eval(rd, &env)));           /* w[5] of 3 */
    env.var[IR_VAR_Q_IDX] = 2;
    CHECK(interp_eval(rd, &env) == 3.5);
    /* false && <bad read> never reads */
    env.var[IR_VAR_Q_IDX] = 9;
    CHECK(interp_eval(ir_binary(&a, IR_AND, ir_const(&a, IR_T_BOOL, 0), ir_binary(&a, IR_GT, rd, num(&a, 0))), &env) == 0);
    arena_free(&a);
}

static void test_bad_runs(void) {
    arena a;
    arena_init(&a);
    ir_kernel k = softmax_kernel(2, 1, 4, 4);
    k.rope.layout = IR_ROPE_HALF;
    k.rope.dim_lo = 0;
    k.rope.dim_hi = 4;
    sm_run r;
    sm_alloc(&r, &k, 1, 2, 2);
    char err[256];
    CHECK(!sm_exec(&k, &r, err, sizeof err));
    CHECK_MSG(strstr(err, "not planned"), "%s", err);
    ir_kernel rk = recurrence_kernel(2, 1, 2, 2);
    attnc_tensor none[1];
    CHECK(!interp_run(&rk, 1, 2, 3, none, 0, err, sizeof err));
    CHECK_MSG(strstr(err, "recurrence"), "%s", err);
    CHECK(!interp_run(NULL, 1, 2, 3, none, 0, err, sizeof err));
    CHECK(!interp_run(&k, -1, 2, 3, none, 0, err, sizeof err));
    sm_free(&r);
    arena_free(&a);
}

int main(void) {
    test_mha_causal();
    test_uniform_attention();
    test_gqa_mapping();
    test_fully_masked_rows();
    test_alignment();
    test_score_mods();
    test_input_mask();
    test_rope_relative();
    test_rope_sections();
    test_rerope();
    test_mla();
    test_low_precision_inputs();
    test_conversions();
    test_linear_attention();
    test_head_decay_groups_feature();
    test_mamba2_form();
    test_vector_decay();
    test_state_handoff();
    test_signature();
    test_eval();
    test_bad_runs();
    return check_status("test_interp");
}
