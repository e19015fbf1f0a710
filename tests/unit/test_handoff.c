/* State hand-off in the interpreter: a recurrence over 2n tokens equals n tokens followed
 * by n more that start from the first run's state (and normaliser, for normalised kernels).
 * Checked for every recurrence example. */
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "frontend/frontend.h"
#include "ir/interp.h"
#include "ir/signature.h"

static double rnd(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) / 9007199254740992.0;
}

static void *fill_f32(int64_t n, double lo, double hi, uint64_t *s) {
    float *p = malloc((size_t)n * sizeof *p);
    for (int64_t i = 0; i < n; i++) p[i] = (float)(lo + (hi - lo) * rnd(s));
    return p;
}

static int64_t count(const sig_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

/* Views of the tokens [t0, t0 + len) of a [batch, seq, ...] tensor of full length seq. */
static attnc_tensor slice(const sig_tensor *full, void *data, int64_t t0, int64_t len, int64_t seq) {
    attnc_tensor v = { .name = full->name, .dtype = full->dtype, .ndim = full->ndim, .data = data };
    int64_t stride = 1;
    for (int i = full->ndim - 1; i >= 0; i--) {
        v.shape[i] = full->shape[i];
        v.strides[i] = stride;
        stride *= full->shape[i];
    }
    if (full->ndim >= 2 && full->shape[1] == seq) {   /* token axis */
        v.shape[1] = len;
        v.data = (char *)data + (size_t)(t0 * v.strides[1]) * (size_t)attnc_dtype_size(full->dtype);
    }
    return v;
}

static void run_example(const char *file, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/examples/%s", ATTNC_SOURCE_DIR, file);
    FILE *f = fopen(path, "rb");
    CHECK_MSG(f != NULL, "cannot open %s", path);
    if (!f) return;
    static char src[8192];
    size_t len = fread(src, 1, sizeof src - 1, f);
    fclose(f);
    src[len] = 0;
    arena a;
    arena_init(&a);
    diag_sink d;
    diag_init(&d, path, src, len);
    ir_module *m = frontend_compile(src, len, &a, &d);
    ir_run_pipeline(m, &d, NULL, NULL);
    CHECK(d.n_errors == 0);
    ir_kernel *k = ir_module_find(m, name);
    CHECK(k != NULL);
    if (!k || k->dtype != IR_F32 || d.n_errors) { diag_free(&d); arena_free(&a); return; }

    const int64_t B = 2, N = 9, T = 2 * N;
    uint64_t seed = 7;
    sig_tensor sig[SIG_MAX_TENSORS];
    int n = ir_signature(k, B, T, T, sig);
    void *data[SIG_MAX_TENSORS] = { 0 };
    attnc_tensor whole[SIG_MAX_TENSORS], first[SIG_MAX_TENSORS], second[SIG_MAX_TENSORS];
    int nw = 0, n1 = 0, n2 = 0;
    float *mid_state = NULL, *mid_norm = NULL;
    for (int i = 0; i < n; i++) {
        const sig_tensor *t = &sig[i];
        int64_t c = count(t);
        bool is = strcmp(t->name, "state_in") == 0 || strcmp(t->name, "norm_in") == 0;
        if (t->role == SIG_IN && !is)
            data[i] = fill_f32(c, strcmp(t->name, "q") && strcmp(t->name, "k") && strcmp(t->name, "v") ? 0.01 : -1,
                               strcmp(t->name, "q") && strcmp(t->name, "k") && strcmp(t->name, "v") ? 0.1 : 1, &seed);
        else if (!is)
            data[i] = calloc((size_t)c, sizeof(float));
        if (data[i]) whole[nw++] = slice(t, data[i], 0, T, T);
        if (strcmp(t->name, "state_out") == 0 || strcmp(t->name, "norm_out") == 0) continue;
        if (is) {   /* the second half starts from the first half's outputs */
            float *mid = calloc((size_t)c, sizeof(float));
            if (strcmp(t->name, "state_in") == 0) mid_state = mid; else mid_norm = mid;
            attnc_tensor out = slice(t, mid, 0, T, T);
            out.name = strcmp(t->name, "state_in") == 0 ? "state_out" : "norm_out";
            first[n1++] = out;
            second[n2++] = slice(t, mid, 0, T, T);
            continue;
        }
        first[n1++] = slice(t, data[i], 0, N, T);
        second[n2++] = slice(t, data[i], N, N, T);
    }
    char err[512] = "";
    /* Reference: one run over all tokens, o into a separate buffer. */
    float *o_whole = NULL;
    for (int i = 0; i < nw; i++)
        if (strcmp(whole[i].name, "o") == 0) {
            o_whole = calloc((size_t)(B * T * whole[i].shape[2] * whole[i].shape[3]), sizeof(float));
            whole[i].data = o_whole;
        }
    CHECK_MSG(interp_run(k, B, T, T, whole, nw, err, sizeof err), "%s", err);
    CHECK_MSG(interp_run(k, B, N, N, first, n1, err, sizeof err), "%s", err);
    CHECK_MSG(interp_run(k, B, N, N, second, n2, err, sizeof err), "%s", err);
    for (int i = 0; i < n; i++)
        if (strcmp(sig[i].name, "o") == 0) {
            const float *o_split = data[i];
            double worst = 0;
            for (int64_t e = 0; e < count(&sig[i]); e++) {
                double diff = fabs((double)o_split[e] - (double)o_whole[e]) / (1.0 + fabs((double)o_whole[e]));
                if (diff > worst) worst = diff;
            }
            CHECK_MSG(worst < 1e-6, "%s: split run differs from one run by %g", name, worst);
        }
    CHECK(mid_state != NULL);
    CHECK(!k->normalize || mid_norm != NULL);
    for (int i = 0; i < n; i++) free(data[i]);
    free(o_whole); free(mid_state); free(mid_norm);
    diag_free(&d);
    arena_free(&a);
}

int main(void) {
    run_example("linear_elu.attn", "linear_elu");
    run_example("retnet.attn", "retnet");
    run_example("gla.attn", "gla");
    return check_status("test_handoff");
}
