/* Shared by the tests/unit/test_cpu_*.c programs: compiling specs, random launch
 * tensors for any softmax kernel's signature, and the comparison of a CPU run with the
 * float64 interpreter.
 *
 * Tolerances (documented in the test files): the error of a row o[b, s, h, :] is
 * max |o - ref| / max |ref| over that row (relative to the row's largest value, since
 * o is a convex combination of V rows); lse must be within tol_lse * max(1, |lse|);
 * a fully masked row must be exactly 0 with lse = -inf. */
#ifndef ATTNC_TEST_CPU_HARNESS_H
#define ATTNC_TEST_CPU_HARNESS_H
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "frontend/frontend.h"
#include "ir/interp.h"
#include "ir/ir.h"
#include "ir/signature.h"
#include "runtime/tensor_access.h"
#include "codegen/llvm/cpu_backend.h"
#include "codegen/llvm/cpu_runtime.h"

typedef struct spec_file {
    arena a;
    diag_sink d;
    char *src;
    ir_module *m;
} spec_file;

/* Reads and compiles a spec (examples/NAME or literal text when path is NULL), runs the
 * pass pipeline. Returns false (and prints diagnostics) on error. */
static bool spec_load(spec_file *sf, const char *path, const char *text) {
    memset(sf, 0, sizeof *sf);
    arena_init(&sf->a);
    size_t len = 0;
    if (path) {
        char full[1024];
        snprintf(full, sizeof full, "%s/%s", ATTNC_SOURCE_DIR, path);
        FILE *f = fopen(full, "rb");
        if (!f) {
            fprintf(stderr, "cannot open %s\n", full);
            return false;
        }
        fseek(f, 0, SEEK_END);
        len = (size_t)ftell(f);
        fseek(f, 0, SEEK_SET);
        sf->src = malloc(len + 1);
        len = fread(sf->src, 1, len, f);
        sf->src[len] = 0;
        fclose(f);
    } else {
        len = strlen(text);
        sf->src = malloc(len + 1);
        memcpy(sf->src, text, len + 1);
    }
    diag_init(&sf->d, path ? path : "<test>", sf->src, len);
    sf->m = frontend_compile(sf->src, len, &sf->a, &sf->d);
    bool ok = sf->d.n_errors == 0 && ir_run_pipeline(sf->m, &sf->d, NULL, NULL);
    if (!ok) diag_print(&sf->d, stderr);
    return ok;
}

static void spec_free(spec_file *sf) {
    diag_free(&sf->d);
    arena_free(&sf->a);
    free(sf->src);
}

static uint64_t harness_rng = 0x9e3779b97f4a7c15ull;
static double harness_urand(void) {   /* uniform in [-1, 1) */
    harness_rng ^= harness_rng << 13;
    harness_rng ^= harness_rng >> 7;
    harness_rng ^= harness_rng << 17;
    return (double)(harness_rng >> 11) * 0x1.0p-52 - 1.0;
}

/* Launch tensors of one case; outputs exist twice: the CPU's (kernel dtype / f32) and the
 * interpreter's (f64). */
typedef struct launch_case {
    const ir_kernel *k;
    int64_t batch, seq_q, seq_k;
    int n;
    attnc_tensor t[SIG_MAX_TENSORS];
    attnc_tensor ref[SIG_MAX_TENSORS];
    void *mem[2 * SIG_MAX_TENSORS];
    int n_mem;
    int o, lse;          /* indices of the outputs */
} launch_case;

static void *case_alloc(launch_case *lc, size_t bytes) {
    void *p = calloc(bytes ? bytes : 1, 1);
    lc->mem[lc->n_mem++] = p;
    return p;
}

/* Random inputs: q in [-2, 2), k and v in [-1, 1), i32 inputs as sorted segment ids
 * (documents of random lengths), f32 inputs in [-1, 1), positions as increasing ids
 * with random steps (each axis its own). */
static void case_make(launch_case *lc, const ir_kernel *k, int64_t batch, int64_t seq_q, int64_t seq_k) {
    memset(lc, 0, sizeof *lc);
    lc->k = k;
    lc->batch = batch;
    lc->seq_q = seq_q;
    lc->seq_k = seq_k;
    sig_tensor sig[SIG_MAX_TENSORS];
    lc->n = ir_signature(k, batch, seq_q, seq_k, sig);
    for (int i = 0; i < lc->n; i++) {
        attnc_tensor *t = &lc->t[i];
        t->name = sig[i].name;
        t->dtype = sig[i].dtype;
        t->ndim = sig[i].ndim;
        memcpy(t->shape, sig[i].shape, sizeof t->shape);
        int64_t count = tensor_count(t);
        t->data = case_alloc(lc, (size_t)count * (size_t)attnc_dtype_size(t->dtype));
        lc->ref[i] = *t;
        if (sig[i].role == SIG_OUT) {
            lc->ref[i].dtype = ATTNC_F64;
            lc->ref[i].data = case_alloc(lc, (size_t)count * 8);
            if (!strcmp(t->name, "o")) lc->o = i;
            else lc->lse = i;
            continue;
        }
        bool is_q = !strcmp(t->name, "q");
        if (!strcmp(t->name, "positions")) {
            int32_t *p = t->data;
            int64_t axes = t->shape[2];
            for (int64_t b = 0; b < batch; b++)
                for (int64_t a = 0; a < axes; a++) {
                    int32_t cur = (int32_t)(a * 3);
                    for (int64_t s = 0; s < seq_k; s++) {
                        p[(b * seq_k + s) * axes + a] = cur;
                        cur += (int32_t)((harness_urand() + 1.0) * 1.5);
                    }
                }
            continue;
        }
        if (t->dtype == ATTNC_I32) {
            /* Token-axis ids form segments; other i32 inputs small ints. */
            int32_t *p = t->data;
            int32_t seg = 0, left = 0;
            for (int64_t e = 0; e < count; e++) {
                if (left-- <= 0) {
                    seg++;
                    left = (int32_t)((harness_urand() + 1.0) * 12);
                }
                p[e] = seg;
            }
            continue;
        }
        for (int64_t e = 0; e < count; e++) tensor_store(t, e, (is_q ? 2.0 : 1.0) * harness_urand());
    }
}

static void case_free(launch_case *lc) {
    for (int i = 0; i < lc->n_mem; i++) free(lc->mem[i]);
    lc->n_mem = 0;
}

static bool case_run_ref(launch_case *lc) {
    char err[512];
    bool ok = interp_run(lc->k, lc->batch, lc->seq_q, lc->seq_k, lc->ref, lc->n, err, sizeof err);
    if (!ok) fprintf(stderr, "interpreter: %s\n", err);
    return ok;
}

/* Worst row error and lse error of the CPU outputs against the reference. Returns the
 * worst row error; *lse_err the worst lse error (inf when -inf does not match). */
static double case_compare(const launch_case *lc, double *lse_err) {
    const attnc_tensor *o = &lc->t[lc->o], *ro = &lc->ref[lc->o];
    const attnc_tensor *l = &lc->t[lc->lse], *rl = &lc->ref[lc->lse];
    int64_t B = o->shape[0], S = o->shape[1], H = o->shape[2], D = o->shape[3];
    double worst = 0, worst_lse = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < S; s++)
            for (int64_t h = 0; h < H; h++) {
                double mx = 0, err = 0;
                for (int64_t d = 0; d < D; d++) {
                    int64_t idx[4] = { b, s, h, d };
                    double r = tensor_load(ro, tensor_offset(ro, idx));
                    if (fabs(r) > mx) mx = fabs(r);
                }
                for (int64_t d = 0; d < D; d++) {
                    int64_t idx[4] = { b, s, h, d };
                    double e = fabs(tensor_load(o, tensor_offset(o, idx)) - tensor_load(ro, tensor_offset(ro, idx)));
                    if (isnan(e)) e = INFINITY;
                    if (e > err) err = e;
                }
                double rel = mx > 0 ? err / mx : (err > 0 ? INFINITY : 0);
                if (rel > worst) worst = rel;
                int64_t li[4] = { b, s, h, 0 };
                double lr = tensor_load(rl, tensor_offset(rl, li)), lc_ = tensor_load(l, tensor_offset(l, li));
                double le;
                if (isinf(lr) || isinf(lc_)) le = (lr == lc_) ? 0 : INFINITY;
                else le = fabs(lr - lc_) / (fabs(lr) > 1 ? fabs(lr) : 1);
                if (isnan(le)) le = INFINITY;
                if (le > worst_lse) worst_lse = le;
            }
    *lse_err = worst_lse;
    return worst;
}

#endif
