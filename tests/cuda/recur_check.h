/* Helpers of the recurrence tests (test_cuda_recur in the simulator, test_cuda_gpu on a
 * GPU): model-range inputs, the row-relative error measure, and token-range views for
 * prefill-then-decode runs. Header-only (static functions). */
#ifndef ATTNC_RECUR_CHECK_H
#define ATTNC_RECUR_CHECK_H
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "tests/cuda/sim_harness.h"

/* Model-like input ranges by name; anything else keeps sim_case_make's U(-1, 1). The state
 * and normaliser hand-offs start from moderate values; z_in > 0 as a real prefix would give
 * with a positive feature map. */
static inline void realistic_inputs(sim_case_data *d, uint64_t seed) {
    uint64_t s = seed * 7919 + 17;
    for (int i = 0; i < d->n; i++) {
        attnc_tensor *t = &d->t[i];
        double lo = 0, hi = 0;
        if (!strcmp(t->name, "dt")) lo = 0.01, hi = 0.2;
        else if (!strcmp(t->name, "A_log")) lo = -1.0, hi = 1.5;
        else if (!strcmp(t->name, "log_dt")) lo = -6.9, hi = -2.3;   /* dt in [0.001, 0.1] as S4D */
        else if (!strcmp(t->name, "state_in")) lo = -0.5, hi = 0.5;
        else if (!strcmp(t->name, "norm_in")) lo = 0.5, hi = 2.0;
        else continue;
        int64_t n = tensor_count(t);
        for (int64_t e = 0; e < n; e++) tensor_store(t, e, lo + (hi - lo) * sim_rng_uniform(&s));
    }
}

static inline attnc_tensor *find_view(attnc_tensor *ts, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (ts[i].name && !strcmp(ts[i].name, name)) return &ts[i];
    return NULL;
}

/* max |x - y| / (|y| + rms(row of y)) of kernel-dtype view x against f64 view y, a row
 * being the last dimension (an output vector over d_v, a state row): the relative error of
 * each vector, whatever its magnitude next to the others. NaN/inf disagreements counted. */
typedef struct rel_err {
    double err, rms;
    long long bad_nan, n;
} rel_err;

static inline rel_err compare_views(const attnc_tensor *x, const attnc_tensor *y) {
    rel_err r = {0, 0, 0, 0};
    if (!x || !y) {
        r.bad_nan = -1;
        return r;
    }
    int64_t n = tensor_count(y), idx[4] = {0}, sx[4], sy[4];
    tensor_strides(x, sx);
    tensor_strides(y, sy);
    int64_t w = y->shape[y->ndim - 1];
    double all = 0;
    r.n = n;
    for (int64_t e0 = 0; e0 < n; e0 += w) {
        double ss = 0;
        int64_t save[4];
        memcpy(save, idx, sizeof idx);
        for (int pass = 0; pass < 2; pass++) {
            memcpy(idx, save, sizeof idx);
            double rms = pass ? sqrt(ss / (double)w) : 0;
            for (int64_t e = 0; e < w; e++) {
                int64_t a = 0, b = 0;
                for (int d = 0; d < y->ndim; d++) a += idx[d] * sx[d], b += idx[d] * sy[d];
                double vx = tensor_load(x, a), vy = tensor_load(y, b);
                if (!pass) {
                    if (isfinite(vy)) ss += vy * vy;
                } else if (isnan(vx) || isnan(vy) || isinf(vx) != isinf(vy)) {
                    r.bad_nan++;
                } else {
                    double q = fabs(vx - vy) / (fabs(vy) + rms + 1e-30);
                    if (q > r.err) r.err = q;
                }
                for (int d = y->ndim - 1; d >= 0; d--) {
                    if (++idx[d] < y->shape[d]) break;
                    idx[d] = 0;
                }
            }
        }
        all += ss;
    }
    r.rms = n ? sqrt(all / (double)n) : 0;
    return r;
}

/* Tolerance of the row-relative error: bf16/f16 outputs and operands, or f32. */
static inline double recur_tol(const ir_kernel *k) { return k->dtype == IR_F32 ? 2e-4 : 2e-2; }

/* Which dimension of a signature tensor is the sequence, or -1. */
static inline int seq_dim(const ir_kernel *k, const char *name) {
    if (!strcmp(name, "q") || !strcmp(name, "k") || !strcmp(name, "v") || !strcmp(name, "o")) return 1;
    for (int i = 0; i < k->n_inputs; i++) {
        if (strcmp(k->inputs[i].name, name) != 0) continue;
        int d = 0;
        for (int a = 0; a < k->inputs[i].n_axes; a++) {
            if (k->inputs[i].axes[a] == IR_AXIS_TOKEN) return d + 1;
            d++;
        }
    }
    return -1;
}

/* The views of tokens [t0, t0 + len) of a full-length case, with the state hand-off views
 * replaced: state_in/norm_in from `sin`/`zin`, state_out/norm_out into `sout`/`zout`. */
static inline int token_views(const ir_kernel *k, sim_case_data *full, int64_t t0, int64_t len, float *sin, float *zin,
                              float *sout, float *zout, attnc_tensor *out) {
    int n = 0;
    for (int i = 0; i < full->n; i++) {
        attnc_tensor v = full->t[i];
        int sd = seq_dim(k, v.name);
        if (sd >= 0) {
            int64_t st[4];
            tensor_strides(&full->t[i], st);
            memcpy(v.strides, st, sizeof st);
            v.shape[sd] = len;
            v.data = (char *)v.data + (size_t)(t0 * st[sd]) * (size_t)attnc_dtype_size(v.dtype);
        } else if (!strcmp(v.name, "state_in")) v.data = sin;
        else if (!strcmp(v.name, "norm_in")) v.data = zin;
        else if (!strcmp(v.name, "state_out")) v.data = sout;
        else if (!strcmp(v.name, "norm_out")) v.data = zout;
        out[n++] = v;
    }
    return n;
}

#endif
