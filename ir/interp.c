/* The float64 reference interpreter: the kernel contract of architecture.md computed
 * literally, for tests to compare every backend with.
 *
 * Cost: softmax attention O(batch · heads_q · seq_q · seq_k · (d_qk + d_v)) time (ReRoPE
 * adds sin/cos per (query, key, pair)), O(seq_k · (d_qk + d_v)) doubles of scratch;
 * recurrences O(batch · heads · seq · d_qk · d_v) time, O(d_qk · d_v) scratch. Expressions
 * (mask, score, decay, feature) are walked as trees at every point they are needed.
 *
 * Choices an oracle has to make, made the simple way:
 * - every value is widened to double on load (bf16: bits << 16; f16 decoded by hand) and
 *   rounded once, to nearest even, when an output is stored in a narrower dtype;
 * - the scale is k->scale_value wherever the backends apply it (scale_in_q only says
 *   where; the pipeline already folded RoPE's attn_factor into it);
 * - a row whose mask is false everywhere (or whose scores are all -inf) gives o = 0 and
 *   lse = -inf; NaN from the data itself is propagated, not hidden;
 * - an input read out of range, or an integer division by zero, in a spec expression is
 *   an error of the run (reported with the place), not a value.
 * - normalize: the normaliser z starts from norm_in (else 0) and ends in norm_out, so a
 *   decode step continues a prefill exactly. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ir/interp.h"
#include "ir/signature.h"
#include "runtime/tensor_access.h"

/* ---------------------------------------------------------------- expressions */

/* Why an evaluation failed; the first failure wins. */
typedef struct eval_status {
    bool failed;
    char what[160];
} eval_status;

static void eval_fail(eval_status *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void eval_fail(eval_status *st, const char *fmt, ...) {
    if (st->failed) return;
    st->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->what, sizeof st->what, fmt, ap);
    va_end(ap);
}

static double eval(const ir_expr *e, const interp_env *env, eval_status *st);

/* Index value of an argument: integral by typing, rounded defensively. */
static bool eval_index(const ir_expr *e, const interp_env *env, eval_status *st, int64_t *out) {
    double v = eval(e, env, st);
    if (st->failed) return false;
    if (!isfinite(v) || fabs(v) > 9.0e15) {
        eval_fail(st, "an input index is not a finite integer (%g)", v);
        return false;
    }
    *out = (int64_t)llround(v);
    return true;
}

static double read_input(const ir_expr *e, const interp_env *env, eval_status *st) {
    const ir_kernel *k = env->kernel;
    if (!k || !env->inputs || e->input < 0 || e->input >= k->n_inputs) {
        eval_fail(st, "input #%d is not available to this evaluation", e->input);
        return NAN;
    }
    const ir_input *in = &k->inputs[e->input];
    const attnc_tensor *t = &env->inputs[e->input];
    if (e->n_args != 0 && e->n_args != in->n_axes) {
        eval_fail(st, "input '%s' is read with %d indices but declares %d axes", in->name, e->n_args, in->n_axes);
        return NAN;
    }
    int64_t idx[ATTNC_MAX_DIMS];
    int nd = 0;
    for (int a = 0; a < in->n_axes; a++) {
        int64_t i;
        if (e->n_args) {
            if (!eval_index(e->args[a], env, st, &i)) return NAN;
        } else {
            switch (in->axes[a]) {
            case IR_AXIS_TOKEN: i = env->token; break;
            case IR_AXIS_HEAD: i = env->head; break;
            case IR_AXIS_K: i = env->k_idx; break;
            default: i = env->v_idx; break;
            }
        }
        if (in->axes[a] == IR_AXIS_TOKEN) {
            if (nd >= t->ndim) break;
            idx[nd++] = env->batch;      /* a token axis brings the batch dimension with it */
        }
        if (nd >= t->ndim || nd >= ATTNC_MAX_DIMS) {
            eval_fail(st, "input '%s' has fewer dimensions than its declaration", in->name);
            return NAN;
        }
        if (i < 0 || i >= t->shape[nd]) {
            eval_fail(st, "reads %s[...] at index %lld of axis %d, outside [0, %lld)", in->name,
                      (long long)i, a, (long long)t->shape[nd]);
            return NAN;
        }
        idx[nd++] = i;
    }
    if (nd != t->ndim || (nd > 0 && (idx[0] < 0 || idx[0] >= t->shape[0]))) {
        eval_fail(st, "input '%s' does not match its declaration", in->name);
        return NAN;
    }
    return tensor_load(t, tensor_offset(t, idx));
}

static double eval(const ir_expr *e, const interp_env *env, eval_status *st) {
    if (st->failed) return NAN;
    const ir_expr *const *a = (const ir_expr *const *)e->args;
    double x, y;
    switch (e->op) {
    case IR_CONST: return e->value;
    case IR_VAR: return (e->var >= 0 && e->var < IR_VAR_COUNT) ? env->var[e->var] : NAN;
    case IR_INPUT: return read_input(e, env, st);
    /* && || and select evaluate lazily, as the C the backends emit does: a guard on the
     * left may protect a read on the right. */
    case IR_AND: return eval(a[0], env, st) != 0 ? (double)(eval(a[1], env, st) != 0) : 0.0;
    case IR_OR: return eval(a[0], env, st) != 0 ? 1.0 : (double)(eval(a[1], env, st) != 0);
    case IR_SELECT: return eval(a[0], env, st) != 0 ? eval(a[1], env, st) : eval(a[2], env, st);
    default: break;
    }
    x = e->n_args > 0 ? eval(a[0], env, st) : NAN;
    y = e->n_args > 1 ? eval(a[1], env, st) : NAN;
    if (st->failed) return NAN;
    switch (e->op) {
    case IR_NEG: return -x;
    case IR_NOT: return x == 0 ? 1.0 : 0.0;
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
    case IR_IDIV: case IR_MOD: {
        if (y == 0) { eval_fail(st, "integer %s by zero", e->op == IR_IDIV ? "division" : "remainder"); return NAN; }
        int64_t p = (int64_t)x, q = (int64_t)y, quo = p / q, rem = p % q;
        if (rem != 0 && ((rem < 0) != (q < 0))) { quo -= 1; rem += q; }   /* floor semantics */
        return e->op == IR_IDIV ? (double)quo : (double)rem;
    }
    case IR_POW: return pow(x, y);
    case IR_MIN: return x < y ? x : y;
    case IR_MAX: return x > y ? x : y;
    case IR_LT: return x < y;
    case IR_LE: return x <= y;
    case IR_GT: return x > y;
    case IR_GE: return x >= y;
    case IR_EQ: return x == y;
    case IR_NE: return x != y;
    default:
        eval_fail(st, "cannot evaluate operator '%s'", ir_op_name(e->op));
        return NAN;
    }
}

double interp_eval(const ir_expr *e, const interp_env *env) {
    eval_status st = { 0 };
    double v = eval(e, env, &st);
    return st.failed ? NAN : v;
}

/* Whether e reads an input that has the given axis (decides where the decay varies). */
static bool reads_axis(const ir_expr *e, const ir_kernel *k, ir_axis axis) {
    if (!e) return false;
    if (e->op == IR_INPUT && e->input >= 0 && e->input < k->n_inputs) {
        const ir_input *in = &k->inputs[e->input];
        for (int i = 0; i < in->n_axes; i++)
            if (in->axes[i] == axis) return true;
    }
    for (int i = 0; i < e->n_args; i++)
        if (reads_axis(e->args[i], k, axis)) return true;
    return false;
}

/* ---------------------------------------------------------------- run plumbing */

typedef struct run_ctx {
    const ir_kernel *k;
    int64_t batch, seq_q, seq_k;
    const attnc_tensor *q, *kk, *v, *positions, *state_in, *norm_in;
    attnc_tensor o, lse, state_out, norm_out;   /* copies (the interpreter writes through them) */
    bool has_lse, has_state_out, has_norm_out;
    attnc_tensor *inputs;                /* declared inputs, declaration order */
    char *err;
    size_t errlen;
} run_ctx;

static bool fail(run_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(run_ctx *c, const char *fmt, ...) {
    if (c->err && c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    return false;
}

static double at4(const attnc_tensor *t, int64_t a, int64_t b, int64_t c, int64_t d) {
    int64_t idx[4] = { a, b, c, d };
    return tensor_load(t, tensor_offset(t, idx));
}

static void put4(attnc_tensor *t, int64_t a, int64_t b, int64_t c, int64_t d, double v) {
    int64_t idx[4] = { a, b, c, d };
    tensor_store(t, tensor_offset(t, idx), v);
}

static double at3(const attnc_tensor *t, int64_t a, int64_t b, int64_t c) {
    int64_t idx[4] = { a, b, c, 0 };
    return tensor_load(t, tensor_offset(t, idx));
}

static void put3(attnc_tensor *t, int64_t a, int64_t b, int64_t c, double v) {
    int64_t idx[4] = { a, b, c, 0 };
    tensor_store(t, tensor_offset(t, idx), v);
}

static void *alloc_doubles(size_t n) {
    return calloc(n ? n : 1, sizeof(double));
}

/* ---------------------------------------------------------------- softmax attention */

/* Rotates pairs of x in place by angle pos[pair_axis[j]] * inv_freq[j]. */
static void rope_rotate(const ir_rope *r, const double *inv_freq, const double *pos, double *x) {
    for (int j = 0; j < r->n_pairs; j++) {
        int a = r->pair_axis ? r->pair_axis[j] : 0;
        double ang = pos[a] * inv_freq[j];
        double cs = cos(ang), sn = sin(ang);
        int d0 = ir_rope_pair_dim0(r, j), d1 = ir_rope_pair_dim1(r, j);
        double x0 = x[d0], x1 = x[d1];
        x[d0] = x0 * cs - x1 * sn;
        x[d1] = x0 * sn + x1 * cs;
    }
}

/* ReRoPE's relative position: clipped at the window, or leaking beyond it. */
static double rerope_rel(const ir_rope *r, double d) {
    double w = r->rerope_window;
    if (d <= w) return d;
    return r->rerope_leak > 0 ? w + (d - w) / r->rerope_leak : w;
}

/* Position of sequence row `row` on every axis: explicit ids or the row itself. */
static void row_positions(const run_ctx *c, int64_t b, int64_t row, int n_axes, double *pos) {
    for (int a = 0; a < n_axes; a++)
        pos[a] = c->positions ? at4(c->positions, b, row, a, 0) : (double)row;
}

static bool run_softmax(run_ctx *c) {
    const ir_kernel *k = c->k;
    const ir_rope *rope = &k->rope;
    bool has_rope = rope->layout != IR_ROPE_NONE;
    bool rerope = has_rope && rope->rerope_window > 0;
    int dq = k->d_qk, dv = k->d_v, group = k->heads_q / k->heads_kv;
    int n_axes = rope->n_sections > 4 ? 4 : rope->n_sections > 1 ? rope->n_sections : 1;   /* sections[4] */
    int64_t sk = c->seq_k, sq = c->seq_q;

    if (has_rope && (!rope->planned || !rope->inv_freq || rope->n_pairs != (rope->dim_hi - rope->dim_lo) / 2))
        return fail(c, "kernel '%s': RoPE is not planned; run the IR pipeline (plan-rope) first", k->name);
    if (c->positions && sq > sk)
        return fail(c, "explicit positions need seq_q <= seq_k (queries use the last seq_q rows), got seq_q %lld > seq_k %lld",
                    (long long)sq, (long long)sk);

    double *kr = alloc_doubles((size_t)sk * dq);     /* K rows, RoPE applied (or raw for ReRoPE) */
    double *vr = alloc_doubles((size_t)sk * dv);
    double *kpos = alloc_doubles((size_t)sk * n_axes);
    double *qrow = alloc_doubles(dq), *qrot = alloc_doubles(dq), *acc = alloc_doubles(dv);
    double *score = alloc_doubles(sk), *freq = alloc_doubles(has_rope ? rope->n_pairs : 1);
    unsigned char *visible = calloc(sk ? sk : 1, 1);
    bool ok = kr && vr && kpos && qrow && qrot && acc && score && freq && visible;
    if (!ok) fail(c, "out of memory for a %lld-key run", (long long)sk);

    if (ok && has_rope) ir_rope_inv_freq_at(rope, sk, freq);   /* dynamic NTK depends on seq_k */

    interp_env env = { .kernel = k, .inputs = c->inputs };
    env.var[IR_VAR_SEQ_Q] = (double)sq;
    env.var[IR_VAR_SEQ_K] = (double)sk;
    eval_status st = { 0 };
    const char *stage = "mask";

    for (int64_t b = 0; ok && b < c->batch; b++) {
        for (int g = 0; ok && g < k->heads_kv; g++) {
            for (int64_t i = 0; i < sk; i++) {
                double *kx = kr + i * dq;
                for (int d = 0; d < dq; d++) kx[d] = at4(c->kk, b, i, g, d);
                /* MLA: V is the unrotated first d_v dims of the K row (RoPE acts on
                 * [latent_rank, d_qk), disjoint from them anyway). */
                for (int d = 0; d < dv; d++) vr[i * dv + d] = c->v ? at4(c->v, b, i, g, d) : kx[d];
                row_positions(c, b, i, n_axes, kpos + i * n_axes);
                if (has_rope && !rerope) rope_rotate(rope, freq, kpos + i * n_axes, kx);
            }
            for (int h = g * group; ok && h < (g + 1) * group; h++) {
                for (int64_t r = 0; ok && r < sq; r++) {
                    int64_t q_idx = r + sk - sq;
                    double qpos[4] = { 0 };
                    for (int d = 0; d < dq; d++) qrow[d] = at4(c->q, b, r, h, d);
                    if (has_rope) {
                        row_positions(c, b, q_idx, n_axes, qpos);
                        if (!rerope) rope_rotate(rope, freq, qpos, qrow);
                    }
                    env.batch = b;
                    env.head = h;
                    env.token = q_idx;
                    env.var[IR_VAR_BATCH] = (double)b;
                    env.var[IR_VAR_HEAD] = h;
                    env.var[IR_VAR_Q_IDX] = (double)q_idx;
                    double m = -INFINITY;
                    bool any = false;
                    for (int64_t i = 0; i < sk; i++) {
                        env.var[IR_VAR_KV_IDX] = (double)i;
                        stage = "mask";
                        visible[i] = k->mask ? eval(k->mask, &env, &st) != 0 : 1;
                        if (st.failed) break;
                        if (!visible[i]) continue;
                        const double *kx = kr + i * dq;
                        double dot = 0;
                        if (rerope) {
                            /* R(t)ᵀR(i) = R(i − t), so q_t·k_i under RoPE equals
                             * (R(t − i) q)·k: rotate q by the (clipped) relative
                             * position per axis and keep k as it is. */
                            double rel[4];
                            for (int a = 0; a < n_axes; a++) rel[a] = rerope_rel(rope, qpos[a] - kpos[i * n_axes + a]);
                            memcpy(qrot, qrow, sizeof(double) * dq);
                            rope_rotate(rope, freq, rel, qrot);
                            for (int d = 0; d < dq; d++) dot += qrot[d] * kx[d];
                        } else {
                            for (int d = 0; d < dq; d++) dot += qrow[d] * kx[d];
                        }
                        double s = k->scale_value * dot;
                        if (k->score_mod) {
                            env.var[IR_VAR_SCORE] = s;
                            stage = "score";
                            s = eval(k->score_mod, &env, &st);
                            if (st.failed) break;
                        }
                        score[i] = s;
                        any = true;
                        if (s > m) m = s;
                    }
                    if (st.failed) {
                        ok = fail(c, "kernel '%s': %s %s (batch %lld, head %d, q_idx %lld, kv_idx %lld)", k->name,
                                  stage, st.what, (long long)b, h,
                                  (long long)q_idx, (long long)env.var[IR_VAR_KV_IDX]);
                        break;
                    }
                    for (int d = 0; d < dv; d++) acc[d] = 0;
                    double lse = -INFINITY;
                    /* m == -inf: nothing visible, or every visible score is -inf. */
                    if (any && m != -INFINITY) {
                        double l = 0;
                        for (int64_t i = 0; i < sk; i++) {
                            if (!visible[i]) continue;
                            double p = exp(score[i] - m);
                            l += p;
                            for (int d = 0; d < dv; d++) acc[d] += p * vr[i * dv + d];
                        }
                        for (int d = 0; d < dv; d++) acc[d] /= l;
                        lse = m + log(l);
                    }
                    for (int d = 0; d < dv; d++) put4(&c->o, b, r, h, d, acc[d]);
                    if (c->has_lse) put4(&c->lse, b, r, h, 0, lse);
                }
            }
        }
    }
    free(kr); free(vr); free(kpos); free(qrow); free(qrot); free(acc);
    free(score); free(freq); free(visible);
    return ok;
}

/* ---------------------------------------------------------------- recurrences */

static bool run_recurrence(run_ctx *c) {
    const ir_kernel *k = c->k;
    int dk = k->d_qk, dv = k->d_v, per_group = k->heads_q / k->groups;
    int64_t seq = c->seq_q;
    bool lam_k = reads_axis(k->decay, k, IR_AXIS_K), lam_v = reads_axis(k->decay, k, IR_AXIS_V);
    bool vs_v = reads_axis(k->v_scale, k, IR_AXIS_V);
    if (k->normalize && lam_v)
        return fail(c, "kernel '%s': normalize needs a decay that does not vary along v (z has d_k entries)", k->name);

    double *S = alloc_doubles((size_t)dk * dv), *lam = alloc_doubles((size_t)dk * dv);
    double *z = alloc_doubles(dk), *fq = alloc_doubles(dk), *fk = alloc_doubles(dk);
    double *vv = alloc_doubles(dv), *vs = alloc_doubles(dv), *out = alloc_doubles(dv);
    bool ok = S && lam && z && fq && fk && vv && vs && out;
    if (!ok) fail(c, "out of memory for a %d x %d state", dk, dv);

    interp_env env = { .kernel = k, .inputs = c->inputs };
    env.var[IR_VAR_SEQ_Q] = env.var[IR_VAR_SEQ_K] = (double)seq;
    eval_status st = { 0 };
    const char *where = "";

    for (int64_t b = 0; ok && b < c->batch; b++) {
        for (int h = 0; ok && h < k->heads_q; h++) {
            int grp = h / per_group;
            for (int a = 0; a < dk; a++) {
                z[a] = c->norm_in ? at3(c->norm_in, b, h, a) : 0.0;
                for (int e = 0; e < dv; e++) S[a * dv + e] = c->state_in ? at4(c->state_in, b, h, a, e) : 0.0;
            }
            env.batch = b;
            env.head = h;
            env.var[IR_VAR_BATCH] = (double)b;
            env.var[IR_VAR_HEAD] = h;
            for (int64_t t = 0; ok && t < seq; t++) {
                env.token = t;
                env.var[IR_VAR_Q_IDX] = env.var[IR_VAR_KV_IDX] = (double)t;
                env.k_idx = env.v_idx = 0;
                /* Λ: evaluated per element only along the axes it reads. */
                where = "decay";
                for (int a = 0; a < dk; a++) {
                    for (int e = 0; e < dv; e++) {
                        double l = 1.0;
                        if (k->decay && ((a == 0 || lam_k) && (e == 0 || lam_v))) {
                            env.k_idx = a;
                            env.v_idx = e;
                            l = eval(k->decay, &env, &st);
                        } else if (k->decay) {
                            l = lam[(lam_k ? a : 0) * dv + (lam_v ? e : 0)];
                        }
                        lam[a * dv + e] = l;
                    }
                }
                if (st.failed) break;
                where = "feature map";
                for (int a = 0; a < dk; a++) {
                    fq[a] = at4(c->q, b, t, grp, a);
                    fk[a] = at4(c->kk, b, t, grp, a);
                    if (k->feature) {
                        env.var[IR_VAR_X] = fq[a];
                        fq[a] = eval(k->feature, &env, &st);
                        env.var[IR_VAR_X] = fk[a];
                        fk[a] = eval(k->feature, &env, &st);
                    }
                }
                if (st.failed) break;
                where = "value scale";
                for (int e = 0; e < dv; e++) {
                    vv[e] = at4(c->v, b, t, h, e);
                    env.v_idx = e;
                    env.k_idx = 0;
                    vs[e] = !k->v_scale ? 1.0 : (e == 0 || vs_v) ? eval(k->v_scale, &env, &st) : vs[0];
                }
                if (st.failed) break;
                for (int a = 0; a < dk; a++) {
                    for (int e = 0; e < dv; e++)
                        S[a * dv + e] = lam[a * dv + e] * S[a * dv + e] + fk[a] * (vs[e] * vv[e]);
                    z[a] = lam[a * dv] * z[a] + fk[a];
                }
                double denom = 0;
                for (int a = 0; a < dk; a++) denom += fq[a] * z[a];
                where = "skip";
                for (int e = 0; e < dv; e++) {
                    double o = 0;
                    for (int a = 0; a < dk; a++) o += fq[a] * S[a * dv + e];
                    if (k->normalize) o /= denom;
                    if (k->skip) {
                        env.v_idx = e;
                        o += eval(k->skip, &env, &st) * vv[e];
                    }
                    out[e] = o;
                }
                if (st.failed) break;
                for (int e = 0; e < dv; e++) put4(&c->o, b, t, h, e, out[e]);
            }
            if (st.failed) {
                ok = fail(c, "kernel '%s': %s %s (batch %lld, head %d, token %lld)", k->name, where, st.what,
                          (long long)b, h, (long long)env.token);
                break;
            }
            if (c->has_state_out)
                for (int a = 0; a < dk; a++)
                    for (int e = 0; e < dv; e++) put4(&c->state_out, b, h, a, e, S[a * dv + e]);
            if (c->has_norm_out)
                for (int a = 0; a < dk; a++) put3(&c->norm_out, b, h, a, z[a]);
        }
    }
    free(S); free(lam); free(z); free(fq); free(fk); free(vv); free(vs); free(out);
    return ok;
}

/* ---------------------------------------------------------------- entry */

bool interp_run(const ir_kernel *k, int64_t batch, int64_t seq_q, int64_t seq_k,
                attnc_tensor *tensors, int n_tensors, char *err, size_t errlen) {
    run_ctx c = { .k = k, .batch = batch, .seq_q = seq_q, .seq_k = seq_k, .err = err, .errlen = errlen };
    if (err && errlen) err[0] = '\0';
    if (!k) return fail(&c, "no kernel");
    if (batch < 0 || seq_q < 0 || seq_k < 0)
        return fail(&c, "batch and sequence lengths must be >= 0, got batch %lld, seq_q %lld, seq_k %lld",
                    (long long)batch, (long long)seq_q, (long long)seq_k);
    bool rec = k->family == IR_RECURRENCE;
    if (rec && seq_q != seq_k)
        return fail(&c, "kernel '%s' is a recurrence: seq_q and seq_k must be equal, got %lld and %lld", k->name,
                    (long long)seq_q, (long long)seq_k);
    int hk = rec ? k->groups : k->heads_kv;
    if (k->heads_q <= 0 || hk <= 0 || k->heads_q % hk != 0 || k->d_qk <= 0 || k->d_v <= 0)
        return fail(&c, "kernel '%s' has inconsistent heads (%d, %d) or dims (%d, %d)", k->name, k->heads_q, hk,
                    k->d_qk, k->d_v);
    if (!rec && k->v_in_k && k->d_v > k->d_qk)
        return fail(&c, "kernel '%s': V is a prefix of K but d_v %d > d_qk %d", k->name, k->d_v, k->d_qk);

    sig_tensor sig[SIG_MAX_TENSORS];
    int n_sig = ir_signature(k, batch, seq_q, seq_k, sig);
    if (!sig_check(sig, n_sig, tensors, n_tensors, err, errlen)) return false;

    const attnc_tensor *t0;
    c.q = sig_find(tensors, n_tensors, "q");
    c.kk = sig_find(tensors, n_tensors, "k");
    c.v = sig_find(tensors, n_tensors, "v");
    c.positions = sig_find(tensors, n_tensors, "positions");
    c.state_in = sig_find(tensors, n_tensors, "state_in");
    c.norm_in = sig_find(tensors, n_tensors, "norm_in");
    if ((t0 = sig_find(tensors, n_tensors, "norm_out")) != NULL) c.norm_out = *t0, c.has_norm_out = true;
    c.o = *sig_find(tensors, n_tensors, "o");
    const attnc_tensor *t;
    if ((t = sig_find(tensors, n_tensors, rec ? "state_out" : "lse")) != NULL) {
        if (rec) c.state_out = *t, c.has_state_out = true;
        else c.lse = *t, c.has_lse = true;
    }
    attnc_tensor none[1] = { { 0 } };
    c.inputs = k->n_inputs ? calloc((size_t)k->n_inputs, sizeof *c.inputs) : none;
    if (!c.inputs) return fail(&c, "out of memory");
    for (int i = 0; i < k->n_inputs; i++) c.inputs[i] = *sig_find(tensors, n_tensors, k->inputs[i].name);

    bool ok = rec ? run_recurrence(&c) : run_softmax(&c);
    if (c.inputs != none) free(c.inputs);
    return ok;
}
