/* The CUDA recurrence kernels (codegen/cuda/cuda_recur*.c) run in the CPU simulator
 * (tests/cuda/sim_prims.h: every thread of the emitted source, NaN-poisoned shared memory,
 * barrier hazards, bounds, convergence) against the float64 interpreter:
 *   - every recurrence example (Mamba2, RetNet, GLA, linear attention elu+1, S4D) on lengths
 *     1, 63, 64, 65 and 1000 (chunks 64 and 256 do not divide 1000), with state_in/norm_in,
 *     comparing o, state_out and norm_out;
 *   - variants that reach every form: bf16 RetNet / linear attention / GLA (tensor cores, and
 *     the SIMT fallback for a per-key-dim decay), f32 Mamba2 (SIMT), f16, several v slices,
 *     groups, the chunk kernel forced onto lengths 1 and 2, a decode-phase kernel on 3 tokens;
 *   - prefill then decode steps (in place: state_out is state_in's memory) equals one
 *     prefill, and in place equals out of place bit for bit;
 *   - mutations of the emitted source (causal test, decay, a barrier) must be caught.
 * Inputs are drawn in the ranges the models use (dt > 0, A = -exp(A_log) < 0), so decays
 * lie in (0, 1] as the chunkwise log-space forms assume. Errors are measured relative to
 * each output vector's RMS: |x - y| / (|y| + rms(row)), bf16 2e-2, f32 2e-4. No GPU needed;
 * the same comparisons on hardware are test_cuda_gpu's. */
#include <time.h>
#include "check.h"
#include "tests/cuda/recur_check.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

/* A recurrence kernel from an example file or spec text, heads shrunk to `heads` (q/k groups
 * follow: per-head groups stay per head, shared groups stay shared). */
static ir_kernel *load_kernel(const char *file, const char *spec, const char *name, int heads, int groups, arena *a) {
    char err[4096];
    char *text = NULL;
    if (file) {
        char path[600];
        snprintf(path, sizeof path, "%s/examples/%s.attn", ATTNC_SOURCE_DIR, file);
        text = read_text(path);
        CHECK_MSG(text != NULL, "cannot read %s", path);
        if (!text) return NULL;
    }
    ir_module *m = sim_compile_spec(file ? text : spec, a, err, sizeof err);
    free(text);
    CHECK_MSG(m != NULL, "%s: %s", name, err);
    if (!m) return NULL;
    ir_kernel *k = ir_module_find(m, name);
    CHECK_MSG(k != NULL, "no kernel %s", name);
    if (!k) return NULL;
    if (heads > 0) {
        if (groups > 0) k->groups = groups;
        else if (k->groups == k->heads_q) k->groups = heads;
        k->heads_q = k->heads_kv = heads;
    }
    return k;
}

/* Checks the outputs of a run (o, state_out, norm_out) against the interpreter's. */
static void check_outputs(const char *what, const ir_kernel *k, sim_case_data *d, double *worst) {
    const char *outs[] = {"o", "state_out", "norm_out"};
    for (int i = 0; i < 3; i++) {
        attnc_tensor *x = find_view(d->t, d->n, outs[i]), *y = find_view(d->ref, d->n, outs[i]);
        if (!x && !y) continue;
        rel_err r = compare_views(x, y);
        CHECK_MSG(r.bad_nan == 0 && r.err <= recur_tol(k), "%s: %s: max error %.3g of rms %.3g (tolerance %.1g), %lld NaN/inf "
                  "disagreements", what, outs[i], r.err, r.rms, recur_tol(k), r.bad_nan);
        if (r.err > *worst) *worst = r.err;
    }
}

/* One simulated run + interpreter run + comparison. */
static void run_length(const char *label, ir_kernel *k, const sim_module *m, int64_t batch, int64_t len, uint64_t seed) {
    char err[8192], what[256];
    snprintf(what, sizeof what, "%s, batch %lld, length %lld", label, (long long)batch, (long long)len);
    sim_case_data d;
    sim_case_make(&d, k, batch, len, len, true, seed);
    realistic_inputs(&d, seed);
    sim_result r;
    double t0 = now_s();
    bool ran = sim_run(m, k, batch, len, len, d.t, d.n, 1, &r, err, sizeof err);
    double t1 = now_s();
    CHECK_MSG(ran, "%s: %s", what, err);
    CHECK_MSG(r.errors == 0, "%s: the simulator found %lld errors:\n%s", what, r.errors, r.report);
    bool ok = interp_run(k, batch, len, len, d.ref, d.n, err, sizeof err);
    CHECK_MSG(ok, "%s: interpreter: %s", what, err);
    double worst = 0;
    if (ran && ok) check_outputs(what, k, &d, &worst);
    printf("  %-48s %-6s %7.2fs  mma %6lld bars %6lld  max err %.2g\n", what, cuda_plan_entry(&m->plan, len) == m->plan.step_name ? "step" : "chunk",
           t1 - t0, r.stats[1], r.stats[3], worst);
    sim_case_free(&d);
}

typedef struct rec_case {
    const char *label;
    const char *file, *spec, *kernel;
    int heads, groups;
    const char *plan;              /* cuda_plan_override string or NULL */
    int form;                      /* cuda_recur_form the (possibly overridden) plan must have */
    int64_t batch;
    int lengths[6];                /* 0-terminated */
} rec_case;

#define ALL_LENGTHS {1, 63, 64, 65, 1000, 0}

static const rec_case cases[] = {
    /* the examples, at their own dtype */
    {"mamba2 (bf16, tensor cores, chunk 256, groups 1)", "mamba2_2_7b", NULL, "mamba2_2_7b", 2, 1, NULL, CUDA_RECUR_CHUNK_MMA, 1,
     ALL_LENGTHS},
    {"retnet (f32, head decay)", "retnet", NULL, "retnet", 2, 0, NULL, CUDA_RECUR_CHUNK, 1, ALL_LENGTHS},
    {"gla (f32, key-dim decay)", "gla", NULL, "gla", 1, 0, NULL, CUDA_RECUR_CHUNK, 1, ALL_LENGTHS},
    {"linear_elu (f32, normalize)", "linear_elu", NULL, "linear_elu", 2, 0, NULL, CUDA_RECUR_CHUNK, 1, ALL_LENGTHS},
    {"s4d (f32, per-element decay: scan)", "s4d", NULL, "s4d", 2, 0, NULL, CUDA_RECUR_STEP, 2, ALL_LENGTHS},
    /* every form and decay kind on the other path */
    {"retnet bf16 (tensor cores, 2 v slices)", NULL,
     "kernel r : recurrence {\n heads 2\n dims k = 64, v = 128\n dtype bf16\n decay 1 - 2 ^ (-5 - head)\n}", "r", 0, 0, NULL,
     CUDA_RECUR_CHUNK_MMA, 1, {1, 65, 300, 0}},
    {"linear elu f16 normalize (tensor cores)", NULL,
     "kernel l : recurrence {\n heads 2\n dims k = 32, v = 48\n dtype f16\n feature elu(x) + 1\n normalize\n chunk 128\n}",
     "l", 0, 0, NULL, CUDA_RECUR_CHUNK_MMA, 2, {1, 63, 200, 0}},
    {"gla bf16 chunk 32 (key-dim decay, tensor cores)", NULL,
     "kernel g : recurrence {\n heads 2\n dims k = 32, v = 64\n dtype bf16\n inputs g[token, head, k]\n"
     " decay exp(-softplus(-g) / 16)\n chunk 32\n}", "g", 0, 0, NULL, CUDA_RECUR_CHUNK_MMA, 1, {1, 65, 150, 0}},
    {"gla bf16 chunk 128, d_k 72 (key-dim decay, tensor cores)", NULL,
     "kernel g : recurrence {\n heads 1\n dims k = 72, v = 32\n dtype bf16\n inputs g[token, head, k]\n"
     " decay exp(-softplus(-g) / 16)\n chunk 128\n}", "g", 0, 0, NULL, CUDA_RECUR_CHUNK_MMA, 1, {127, 128, 129, 300, 0}},
    {"gla bf16 through SIMT (bf16 IO)", NULL,
     "kernel g : recurrence {\n heads 2\n dims k = 32, v = 64\n dtype bf16\n inputs g[token, head, k]\n"
     " decay exp(-softplus(-g) / 16)\n chunk 32\n}", "g", 0, 0, "form=chunk", CUDA_RECUR_CHUNK, 1, {1, 65, 150, 0}},
    {"gla f16 normalize, strong gates (tensor cores)", NULL,
     "kernel g : recurrence {\n heads 2\n dims k = 16, v = 16\n dtype f16\n inputs g[token, head, k]\n"
     " decay exp(-softplus(-4 * g))\n feature elu(x) + 1\n normalize\n}", "g", 0, 0, NULL, CUDA_RECUR_CHUNK_MMA, 1,
     {64, 200, 0}},
    {"mamba2 f32 (SIMT, rb 32, 4 heads in 2 groups)", NULL,
     "kernel m : recurrence {\n heads 4, groups = 2\n dims k = 32, v = 40\n dtype f32\n inputs dt[token, head], A_log[head], D[head]\n"
     " decay exp(-dt * exp(A_log))\n update S = decay * S + outer(k, dt * v)\n output q @ S + D * v\n chunk 80\n}",
     "m", 0, 0, "rb=32,dvc=16", CUDA_RECUR_CHUNK, 1, {1, 79, 80, 81, 250, 0}},
    {"mamba2 bf16, d_k 40 (padded to 48), chunk 48", NULL,
     "kernel m : recurrence {\n heads 2, groups = 1\n dims k = 40, v = 24\n dtype bf16\n inputs dt[token, head], A_log[head], D[head]\n"
     " decay exp(-dt * exp(A_log))\n update S = decay * S + outer(k, dt * v)\n output q @ S + D * v\n chunk 48\n}",
     "m", 0, 0, NULL, CUDA_RECUR_CHUNK_MMA, 2, {47, 48, 49, 130, 0}},
    {"chunk kernel forced onto lengths 1 and 2 (SIMT)", "retnet", NULL, "retnet", 1, 0, "rstep=0", CUDA_RECUR_CHUNK, 1,
     {1, 2, 0}},
    {"chunk kernel forced onto lengths 1 and 2 (tensor cores)", "mamba2_2_7b", NULL, "mamba2_2_7b", 1, 1, "rstep=0",
     CUDA_RECUR_CHUNK_MMA, 1, {1, 2, 0}},
    {"retnet through the step form (scan)", "retnet", NULL, "retnet", 1, 0, "form=step", CUDA_RECUR_STEP, 1, {1, 70, 0}},
    {"decode-phase GLA kernel, 3 tokens per launch", NULL,
     "kernel g : recurrence {\n heads 2\n dims k = 64, v = 32\n dtype f32\n inputs g[token, head, k]\n"
     " decay exp(-softplus(-g) / 16)\n feature relu(x)\n phase decode\n}", "g", 0, 0, NULL, CUDA_RECUR_STEP, 2, {1, 3, 0}},
};

static void run_case(const rec_case *c) {
    arena a;
    arena_init(&a);
    char err[8192];
    ir_kernel *k = load_kernel(c->file, c->spec, c->kernel, c->heads, c->groups, &a);
    if (!k) {
        arena_free(&a);
        return;
    }
    sim_module m;
    bool built = sim_build_ex(k, "sm_80", c->plan, NULL, NULL, &m, err, sizeof err);
    CHECK_MSG(built, "%s: %s", c->label, err);
    if (built) {
        CHECK_MSG(m.plan.kind == CUDA_KIND_RECUR && (int)m.plan.recur_form == c->form, "%s: plan form %d, expected %d (%s)",
                  c->label, m.plan.recur_form, c->form, m.plan.recur_note);
        for (int i = 0; i < 6 && c->lengths[i]; i++) run_length(c->label, k, &m, c->batch, c->lengths[i], 100 + (uint64_t)i);
    }
    sim_free(&m);
    arena_free(&a);
}

/* ---------------------------------------------------------------- prefill, then decode */

static void test_prefill_then_decode(const char *file, const char *kernel, int heads, int groups, int64_t prefill,
                                     int steps) {
    arena a;
    arena_init(&a);
    char err[8192], what[200];
    snprintf(what, sizeof what, "%s: prefill %lld + %d decode steps", kernel, (long long)prefill, steps);
    ir_kernel *k = load_kernel(file, NULL, kernel, heads, groups, &a);
    sim_module m;
    bool built = k && sim_build(k, "sm_80", &m, err, sizeof err);
    CHECK_MSG(built, "%s: %s", what, err);
    if (!built) {
        if (k) sim_free(&m);
        arena_free(&a);
        return;
    }
    const int64_t batch = 2, total = prefill + steps;
    sim_case_data d;
    sim_case_make(&d, k, batch, total, total, true, 77);
    realistic_inputs(&d, 77);
    bool ok = interp_run(k, batch, total, total, d.ref, d.n, err, sizeof err);
    CHECK_MSG(ok, "%s: interpreter: %s", what, err);
    size_t ns = (size_t)(batch * k->heads_q * k->d_qk * k->d_v), nz = (size_t)(batch * k->heads_q * k->d_qk);
    float *st = calloc(ns, 4), *st2 = calloc(ns, 4), *z = calloc(nz, 4), *z2 = calloc(nz, 4);
    attnc_tensor *sin0 = find_view(d.t, d.n, "state_in"), *zin0 = find_view(d.t, d.n, "norm_in");
    attnc_tensor v[SIG_MAX_TENSORS];
    sim_result r;
    /* prefill: the chunk kernel writes the state into st (and z) */
    int nv = token_views(k, &d, 0, prefill, sin0->data, zin0 ? zin0->data : NULL, st, z, v);
    bool ran = sim_run(&m, k, batch, prefill, prefill, v, nv, 1, &r, err, sizeof err);
    CHECK_MSG(ran && r.errors == 0, "%s: prefill: %s%s", what, err, r.report);
    CHECK(m.plan.recur_form == CUDA_RECUR_STEP || !cuda_plan_uses_step(&m.plan, prefill));
    for (int s = 0; ran && s < steps; s++) {
        int64_t t = prefill + s;
        if (s == 0) {
            /* out of place first, from a copy: must match the in-place step bit for bit */
            memcpy(st2, st, ns * 4);
            if (z) memcpy(z2, z, nz * 4);
            float *oz = calloc(nz, 4), *os = calloc(ns, 4);
            nv = token_views(k, &d, t, 1, st2, z2, os, oz, v);
            ran = sim_run(&m, k, batch, 1, 1, v, nv, 1, &r, err, sizeof err) && r.errors == 0;
            CHECK_MSG(ran, "%s: out-of-place step: %s%s", what, err, r.report);
            nv = token_views(k, &d, t, 1, st, z, st, z, v);
            ran = sim_run_ex(&m, k, batch, 1, 1, v, nv, 1, SIM_STATE_IN_PLACE, &r, err, sizeof err) && r.errors == 0;
            CHECK_MSG(ran, "%s: in-place step: %s%s", what, err, r.report);
            CHECK_MSG(memcmp(os, st, ns * 4) == 0 && (!k->normalize || memcmp(oz, z, nz * 4) == 0),
                      "%s: the in-place step differs from the out-of-place one", what);
            free(os);
            free(oz);
        } else {
            nv = token_views(k, &d, t, 1, st, z, st, z, v);
            ran = sim_run_ex(&m, k, batch, 1, 1, v, nv, 1, SIM_STATE_IN_PLACE, &r, err, sizeof err) && r.errors == 0;
            CHECK_MSG(ran, "%s: in-place step %d: %s%s", what, s, err, r.report);
        }
        CHECK(cuda_plan_uses_step(&m.plan, 1));
    }
    if (ran && ok) {
        /* o of all tokens (prefill rows and decode rows), the final state and z vs one run */
        double worst = 0;
        rel_err e = compare_views(find_view(d.t, d.n, "o"), find_view(d.ref, d.n, "o"));
        CHECK_MSG(e.bad_nan == 0 && e.err <= recur_tol(k), "%s: o: %.3g", what, e.err);
        worst = e.err;
        attnc_tensor sv = *find_view(d.t, d.n, "state_out");
        sv.data = st;
        e = compare_views(&sv, find_view(d.ref, d.n, "state_out"));
        CHECK_MSG(e.bad_nan == 0 && e.err <= recur_tol(k), "%s: state: %.3g", what, e.err);
        if (e.err > worst) worst = e.err;
        if (k->normalize) {
            attnc_tensor zv = *find_view(d.t, d.n, "norm_out");
            zv.data = z;
            e = compare_views(&zv, find_view(d.ref, d.n, "norm_out"));
            CHECK_MSG(e.bad_nan == 0 && e.err <= recur_tol(k), "%s: z: %.3g", what, e.err);
            if (e.err > worst) worst = e.err;
        }
        printf("  %-48s equals one prefill of %lld: max err %.2g\n", what, (long long)total, worst);
    }
    free(st);
    free(st2);
    free(z);
    free(z2);
    sim_case_free(&d);
    sim_free(&m);
    arena_free(&a);
}

/* ---------------------------------------------------------------- mutations */

typedef struct rec_mutation {
    const char *label;
    const char *file, *kernel, *plan;   /* file NULL: kernel is spec text of a kernel named g */
    const char *find, *repl;
    int64_t len;
    bool sim_error;                /* must be reported by the simulator (else: wrong numbers) */
} rec_mutation;

static const rec_mutation mutations[] = {
    {"MMA: causal test dropped", "mamba2_2_7b", "mamba2_2_7b", NULL, "const bool keep = key <= t && t < tend;",
     "const bool keep = t < tend;", 70, false},
    {"MMA: intra decay dropped", "mamba2_2_7b", "mamba2_2_7b", NULL, "acc_s[nt][i] * ex2(rec_seg(sB, t0, t, key, lh))",
     "acc_s[nt][i]", 70, false},
    {"MMA: barrier before the K/V stage removed", "mamba2_2_7b", "mamba2_2_7b", NULL,
     "                bar_sync();   /* every warp is done with the previous K and V */", "", 70, true},
    {"MMA, key-dim decay: bridge factor dropped", NULL,
     "kernel g : recurrence {\n heads 1\n dims k = 32, v = 32\n dtype bf16\n inputs g[token, head, k]\n"
     " decay exp(-softplus(-g) / 4)\n}", NULL,
     "                            rec_bridge_a(qa, sB, t0, s_w, r_i, ks, lane);\n", "\n", 150, false},
    {"SIMT: state decay to the chunk end dropped", "retnet", "retnet", NULL, " * ex2(bl - rec_cb(sB, t0, t, lh))", "", 100,
     false},
    {"SIMT: key-dim decay sign flipped", "gla", "gla", NULL, "ex2(bq[ii] - bk[jj])", "ex2(bk[jj] - bq[ii])", 40, false},
    {"step: staging barrier removed", "s4d", "s4d", NULL, "        bar_sync();   /* the token is staged */", "", 5, true},
};

static void run_mutation(const rec_mutation *mu) {
    arena a;
    arena_init(&a);
    char err[8192];
    ir_kernel *k = mu->file ? load_kernel(mu->file, NULL, mu->kernel, 1, 0, &a) : load_kernel(NULL, mu->kernel, "g", 1, 0, &a);
    sim_module m;
    bool built = k && sim_build_ex(k, "sm_80", mu->plan, mu->find, mu->repl, &m, err, sizeof err);
    CHECK_MSG(built, "mutation '%s': %s", mu->label, err);
    if (built) {
        sim_case_data d;
        sim_case_make(&d, k, 1, mu->len, mu->len, true, 9);
        realistic_inputs(&d, 9);
        sim_result r;
        bool ran = sim_run(&m, k, 1, mu->len, mu->len, d.t, d.n, 1, &r, err, sizeof err);
        CHECK(ran);
        bool caught_sim = r.errors > 0, caught_num = false;
        if (interp_run(k, 1, mu->len, mu->len, d.ref, d.n, err, sizeof err)) {
            const char *outs[] = {"o", "state_out"};
            for (int i = 0; i < 2; i++) {
                rel_err e = compare_views(find_view(d.t, d.n, outs[i]), find_view(d.ref, d.n, outs[i]));
                if (e.bad_nan || e.err > recur_tol(k)) caught_num = true;
            }
        }
        if (mu->sim_error) CHECK_MSG(caught_sim, "mutation '%s' was not reported by the simulator", mu->label);
        else CHECK_MSG(caught_num || caught_sim, "mutation '%s' went unnoticed", mu->label);
        printf("  mutation %-46s caught: %s\n", mu->label, caught_sim ? "simulator check" : caught_num ? "wrong numbers" : "NO");
        sim_case_free(&d);
        sim_free(&m);
    }
    arena_free(&a);
}

int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : NULL;
    double t0 = now_s();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (!only || strstr(cases[i].label, only)) run_case(&cases[i]);
    if (!only || strstr("length 0", only)) {
        /* no tokens: o is empty and the state passes through (step and chunk kernels) */
        const char *plans[] = {NULL, "rstep=0"};
        for (int i = 0; i < 2; i++) {
            arena a;
            arena_init(&a);
            char err[4096];
            ir_kernel *k = load_kernel("linear_elu", NULL, "linear_elu", 2, 0, &a);
            sim_module m;
            bool built = k && sim_build_ex(k, "sm_80", plans[i], NULL, NULL, &m, err, sizeof err);
            CHECK_MSG(built, "length 0: %s", err);
            if (built) run_length(i ? "length 0, chunk kernel" : "length 0, step kernel", k, &m, 2, 0, 5);
            if (k) sim_free(&m);
            arena_free(&a);
        }
    }
    if (!only || strstr("prefill then decode", only)) {
        test_prefill_then_decode("mamba2_2_7b", "mamba2_2_7b", 2, 1, 65, 3);
        test_prefill_then_decode("linear_elu", "linear_elu", 2, 0, 100, 2);
        test_prefill_then_decode("gla", "gla", 1, 0, 64, 2);
        test_prefill_then_decode("retnet", "retnet", 1, 0, 63, 2);
        test_prefill_then_decode("s4d", "s4d", 2, 0, 20, 2);
    }
    for (size_t i = 0; i < sizeof mutations / sizeof mutations[0]; i++)
        if (!only || strstr(mutations[i].label, only)) run_mutation(&mutations[i]);
    printf("total %.1fs\n", now_s() - t0);
    return check_status("test_cuda_recur");
}
