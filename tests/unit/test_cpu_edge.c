/* The CPU backend on the cases the examples do not reach: fully masked rows, windows
 * longer than the sequence, GQA ratios from 1 to 130, d_qk != d_v and odd dims, strided
 * and non-contiguous views, thread counts and forced split-KV merges, the RoPE scalings
 * and layouts, every expression operator in masks and score modifiers, input tensors,
 * f64 and absent outputs, and launch validation (null and misaligned pointers, wrong
 * shapes, recurrences) that must fail with a message, not a crash.
 * Tolerances as in test_cpu_examples.c: fp32 1e-5 of the row's largest |o|. */
#if ATTNC_HAVE_LLVM
#include "cpu_harness.h"

static int n_cases;

/* Runs one case with all given thread counts (0 = cpu_run) and checks against the
 * interpreter. The launch tensors may be adjusted by `tweak` (strides) first. */
typedef void (*tweak_fn)(launch_case *lc);

static void check_case(const char *what, ir_kernel *k, int64_t b, int64_t sq, int64_t sk, const int *threads,
                       int n_threads, tweak_fn tweak, double tol) {
    launch_case lc;
    case_make(&lc, k, b, sq, sk);
    if (tweak) tweak(&lc);
    bool ref_ok = case_run_ref(&lc);
    CHECK_MSG(ref_ok, "%s: interpreter failed", what);
    cpu_compiled *ck = NULL;
    char err[512] = "";
    for (int t = 0; ref_ok && t < n_threads; t++) {
        bool ok;
        if (threads[t] == 0) {
            ok = cpu_run(k, b, sq, sk, lc.t, lc.n, err, sizeof err);
        } else {
            if (!ck) ck = cpu_compile(k, NULL, err, sizeof err);
            ok = ck && cpu_launch(ck, k, threads[t], b, sq, sk, lc.t, lc.n, err, sizeof err);
        }
        CHECK_MSG(ok, "%s: launch failed: %s", what, err);
        if (!ok) break;
        double lse_err, e = case_compare(&lc, &lse_err);
        n_cases++;
        CHECK_MSG(e <= tol && lse_err <= 1e-5, "%s (batch %lld, seq_q %lld, seq_k %lld, %d threads): o error %.3g, lse error %.3g",
                  what, (long long)b, (long long)sq, (long long)sk, threads[t], e, lse_err);
        /* Clear the outputs so the next thread count is checked on its own. */
        memset(lc.t[lc.o].data, 0xff, (size_t)tensor_count(&lc.t[lc.o]) * (size_t)attnc_dtype_size(lc.t[lc.o].dtype));
        memset(lc.t[lc.lse].data, 0xff, (size_t)tensor_count(&lc.t[lc.lse]) * 4);
    }
    cpu_compiled_free(ck);
    case_free(&lc);
}

static const int DEFAULT_THREADS[] = { 0 };
static const int MANY_THREADS[] = { 1, 2, 3, 8 };

/* The module's paths depend on the spec's phase (a prefill kernel has no packed decode
 * path, a decode kernel with packing no wide panels), so every case runs in both: phase
 * 0 is the spec as written, phase 1 the same kernel declared `phase decode`. Loads the
 * one-kernel spec in that phase; false when there is nothing to run (the spec already
 * names a phase, or it does not compile, which fails the test). */
enum { N_PHASES = 2 };
static const char *const PHASE_LABEL[N_PHASES] = { "", " [as phase decode]" };

static bool spec_load_phase(spec_file *sf, const char *spec, int phase) {
    char buf[1024];
    const char *text = spec, *close = strrchr(spec, '}');
    if (phase == 1) {
        if (strstr(spec, "phase") || !close || (size_t)(close - spec) + 16 > sizeof buf) return false;
        snprintf(buf, sizeof buf, "%.*s\n phase decode }", (int)(close - spec), spec);
        text = buf;
    }
    bool ok = spec_load(sf, NULL, text);
    CHECK_MSG(ok, "%s: spec does not compile", text);
    if (!ok) spec_free(sf);
    return ok;
}

/* Compiles a one-kernel spec (in both phases) and runs the shapes. */
static void spec_cases(const char *what, const char *spec, const int64_t (*shapes)[3], int n_shapes,
                       const int *threads, int n_threads, tweak_fn tweak) {
    for (int ph = 0; ph < N_PHASES; ph++) {
        spec_file sf;
        if (!spec_load_phase(&sf, spec, ph)) continue;
        char label[512];
        snprintf(label, sizeof label, "%s%s", what, PHASE_LABEL[ph]);
        for (int i = 0; i < n_shapes; i++)
            check_case(label, sf.m->kernels[0], shapes[i][0], shapes[i][1], shapes[i][2], threads, n_threads, tweak,
                       1e-5);
        spec_free(&sf);
    }
}

#define N(a) ((int)(sizeof(a) / sizeof *(a)))

static void test_masked_rows(void) {
    /* Nothing visible anywhere; causal rows before the first key (seq_q > seq_k); one
     * head masked entirely; rows masked by an input. */
    static const int64_t sh[][3] = { { 1, 5, 5 }, { 2, 40, 17 }, { 1, 1, 300 }, { 1, 130, 100 } };
    spec_cases("nothing visible", "kernel t { heads q = 4, kv = 2\n dims 32\n mask kv_idx > q_idx + 100000 }", sh, N(sh),
               DEFAULT_THREADS, 1, NULL);
    spec_cases("causal, seq_q > seq_k", "kernel t { heads q = 4, kv = 2\n dims 32\n mask causal }", sh, N(sh),
               DEFAULT_THREADS, 1, NULL);
    spec_cases("one head masked", "kernel t { heads q = 4, kv = 1\n dims 32\n mask head != 1 && causal }", sh, N(sh),
               DEFAULT_THREADS, 1, NULL);
    static const int64_t sh2[][3] = { { 1, 5, 5 }, { 2, 17, 40 }, { 1, 1, 300 }, { 1, 100, 130 } };
    spec_cases("rows masked by input", "kernel t { heads q = 2, kv = 1\n dims 16\n inputs keep[token]: i32\n"
               " mask keep[q_idx] % 3 != 0 && causal }", sh2, N(sh2), DEFAULT_THREADS, 1, NULL);

    /* A fully masked row must be exactly zero with lse = -inf, not just close. */
    spec_file sf;
    if (spec_load(&sf, NULL, "kernel t { heads q = 2, kv = 1\n dims 16\n mask causal }")) {
        launch_case lc;
        case_make(&lc, sf.m->kernels[0], 1, 30, 10);
        char err[256];
        CHECK(cpu_run(sf.m->kernels[0], 1, 30, 10, lc.t, lc.n, err, sizeof err));
        const float *o = lc.t[lc.o].data, *lse = lc.t[lc.lse].data;
        bool zero = true;
        for (int r = 0; r < 20; r++)                  /* rows 0..19 have q_idx < 0 */
            for (int e = 0; e < 2 * 16; e++) zero = zero && o[r * 32 + e] == 0.0f;
        CHECK(zero);
        CHECK(isinf(lse[0]) && lse[0] < 0 && isinf(lse[39]) && lse[39] < 0);
        CHECK(isfinite(lse[40]));                     /* row 20 sees key 0 */
        case_free(&lc);
    }
    spec_free(&sf);
}

static void test_windows(void) {
    static const int64_t sh[][3] = { { 1, 300, 300 }, { 1, 1, 300 }, { 2, 65, 200 } };
    spec_cases("window > seq", "kernel t { heads q = 2, kv = 1\n dims 64\n mask sliding_window(5000) }", sh, N(sh),
               DEFAULT_THREADS, 1, NULL);
    spec_cases("window 1", "kernel t { heads q = 2, kv = 1\n dims 64\n mask sliding_window(1) }", sh, N(sh),
               DEFAULT_THREADS, 1, NULL);
    spec_cases("window 50", "kernel t { heads q = 2, kv = 1\n dims 64\n mask sliding_window(50) }", sh, N(sh),
               DEFAULT_THREADS, 1, NULL);
    spec_cases("bidirectional band", "kernel t { heads q = 2, kv = 1\n dims 64\n mask abs(q_idx - kv_idx) <= 20 }",
               sh, N(sh), DEFAULT_THREADS, 1, NULL);
    spec_cases("prefix + causal", "kernel t { heads q = 2, kv = 1\n dims 64\n mask kv_idx < 100 || causal }", sh, N(sh),
               DEFAULT_THREADS, 1, NULL);
}

static void test_shapes(void) {
    /* (1, 1, 700): one query position, the packed decode panels (pack = lanes / g). */
    static const int64_t sh[][3] = { { 1, 1, 1 }, { 1, 19, 19 }, { 2, 97, 130 }, { 1, 2, 700 }, { 1, 1, 700 } };
    const char *specs[] = {
        "kernel t { heads q = 2, kv = 2\n dims 64\n mask causal }",
        "kernel t { heads q = 4, kv = 2\n dims qk = 24, v = 40\n mask sliding_window(300) }",
        "kernel t { heads q = 2, kv = 1\n latent rank = 32, rope = 8\n scale 0.1\n mask causal }",
        "kernel t { heads q = 1, kv = 1\n dims 8\n mask causal }",
        "kernel t { heads q = 3, kv = 1\n dims qk = 40, v = 24\n mask causal }",
        "kernel t { heads q = 6, kv = 2\n dims qk = 96, v = 64 }",
        "kernel t { heads q = 8, kv = 1\n dims 33\n mask causal }",
        "kernel t { heads q = 16, kv = 1\n dims 64\n mask causal }",
        "kernel t { heads q = 48, kv = 2\n dims 16\n mask causal }",
        "kernel t { heads q = 130, kv = 1\n dims qk = 20, v = 12\n mask causal }",
        "kernel t { heads q = 2, kv = 2\n dims qk = 256, v = 8\n mask causal }",
    };
    for (int i = 0; i < N(specs); i++) spec_cases(specs[i], specs[i], sh, N(sh), DEFAULT_THREADS, 1, NULL);
}

static void test_threads_and_splits(void) {
    /* Decode with one sequence: split-KV merges (more splits with more threads). */
    static const int64_t sh[][3] = { { 1, 1, 5000 }, { 1, 3, 2000 }, { 2, 1, 777 }, { 1, 200, 200 } };
    spec_cases("decode splits", "kernel t { heads q = 4, kv = 1\n dims 64\n mask causal }", sh, N(sh), MANY_THREADS,
               N(MANY_THREADS), NULL);
    spec_cases("decode splits, window", "kernel t { heads q = 4, kv = 2\n dims 32\n mask sliding_window(1500) }", sh,
               N(sh), MANY_THREADS, N(MANY_THREADS), NULL);
    spec_cases("MLA decode splits", "kernel t { heads q = 16, kv = 1\n latent rank = 64, rope = 16\n scale 0.1\n"
               " rope interleaved, base = 10000\n mask causal\n phase decode }", sh, 2, MANY_THREADS, N(MANY_THREADS), NULL);
}

/* q as a [b, h, s, d] buffer viewed as [b, s, h, d]; k with inner stride 2 inside a
 * twice-as-wide buffer; o with padded rows. */
static void strided_views(launch_case *lc) {
    for (int i = 0; i < lc->n; i++) {
        attnc_tensor *t = &lc->t[i];
        int64_t *s = t->shape;
        if (!strcmp(t->name, "q")) {
            int64_t B = s[0], S = s[1], H = s[2], D = s[3];
            float *buf = case_alloc(lc, (size_t)(B * S * H * D) * 4);
            t->strides[3] = 1; t->strides[1] = D; t->strides[2] = S * D; t->strides[0] = H * S * D;
            for (int64_t e = 0; e < B * S * H * D; e++) buf[e] = (float)(2.0 * harness_urand());
            t->data = buf;
        } else if (!strcmp(t->name, "k") || !strcmp(t->name, "o")) {
            int64_t B = s[0], S = s[1], H = s[2], D = s[3];
            int64_t inner = !strcmp(t->name, "k") ? 2 : 1, row = D * inner + 3;
            float *buf = case_alloc(lc, (size_t)(B * S * H * row) * 4);
            t->strides[3] = inner; t->strides[2] = row; t->strides[1] = H * row; t->strides[0] = S * H * row;
            for (int64_t e = 0; e < B * S * H * row; e++) buf[e] = (float)harness_urand();
            t->data = buf;
        } else if (!strcmp(t->name, "lse")) {
            int64_t B = s[0], S = s[1], H = s[2];
            float *buf = case_alloc(lc, (size_t)(B * S * H * 2) * 4);
            t->strides[2] = 2; t->strides[1] = 2 * H; t->strides[0] = 2 * H * S;
            t->data = buf;
        } else {
            continue;
        }
        /* The interpreter reads the same views. */
        if (lc->ref[i].dtype != ATTNC_F64) lc->ref[i] = *t;
    }
}

/* K and V head-major: [b, h, s, d] buffers holding the same values, viewed as [b, s, h, d]
 * (decode then gives each kv head its own work item). The interpreter keeps reading the
 * contiguous originals. */
static void head_major_kv(launch_case *lc) {
    for (int i = 0; i < lc->n; i++) {
        attnc_tensor *t = &lc->t[i];
        if (strcmp(t->name, "k") && strcmp(t->name, "v")) continue;
        int64_t B = t->shape[0], S = t->shape[1], H = t->shape[2], D = t->shape[3];
        size_t es = (size_t)attnc_dtype_size(t->dtype);
        char *buf = case_alloc(lc, (size_t)(B * S * H * D) * es);
        const char *src = t->data;
        for (int64_t b = 0; b < B; b++)
            for (int64_t s = 0; s < S; s++)
                for (int64_t h = 0; h < H; h++)
                    memcpy(buf + (size_t)(((b * H + h) * S + s) * D) * es, src + (size_t)(((b * S + s) * H + h) * D) * es,
                           (size_t)D * es);
        t->strides[3] = 1; t->strides[2] = S * D; t->strides[1] = D; t->strides[0] = H * S * D;
        t->data = buf;
    }
}

static void test_head_major_kv(void) {
    static const int64_t sh[][3] = { { 1, 1, 5000 }, { 2, 1, 777 }, { 1, 1, 65 }, { 1, 33, 100 } };
    const char *specs[] = {
        "kernel t { heads q = 8, kv = 2\n dims 64\n mask causal }",
        "kernel t { heads q = 8, kv = 2\n dims 64\n dtype bf16\n mask causal }",
        "kernel t { heads q = 8, kv = 2\n dims 32\n rope half\n mask causal }",
        "kernel t { heads q = 16, kv = 2\n dims qk = 40, v = 24\n mask sliding_window(300) }",
    };
    for (int i = 0; i < N_PHASES * N(specs); i++) {
        spec_file sf;
        if (!spec_load_phase(&sf, specs[i / N_PHASES], i % N_PHASES)) continue;
        char label[512];
        snprintf(label, sizeof label, "%s%s", specs[i / N_PHASES], PHASE_LABEL[i % N_PHASES]);
        /* bf16 outputs are rounded to bf16: 2e-2, as for the other bf16 cases. */
        double tol = sf.m->kernels[0]->dtype == IR_BF16 ? 2e-2 : 1e-5;
        for (int s = 0; s < N(sh); s++)
            check_case(label, sf.m->kernels[0], sh[s][0], sh[s][1], sh[s][2], MANY_THREADS, N(MANY_THREADS),
                       head_major_kv, tol);
        spec_free(&sf);
    }
}

static void test_strides(void) {
    static const int64_t sh[][3] = { { 2, 17, 33 }, { 1, 1, 300 }, { 1, 100, 100 } };
    spec_cases("strided views", "kernel t { heads q = 4, kv = 2\n dims qk = 24, v = 16\n mask causal }", sh, N(sh),
               DEFAULT_THREADS, 1, strided_views);
    spec_cases("strided views, rope", "kernel t { heads q = 4, kv = 2\n dims 24\n rope half, dims = [4, 20)\n mask causal }",
               sh, N(sh), DEFAULT_THREADS, 1, strided_views);
}

static void test_rope(void) {
    static const int64_t sh[][3] = { { 1, 17, 17 }, { 2, 33, 200 }, { 1, 1, 300 } };
    const char *specs[] = {
        "kernel t { heads q = 4, kv = 2\n dims 32\n rope half, scaling = linear(factor = 2)\n mask causal }",
        "kernel t { heads q = 4, kv = 2\n dims 32\n rope interleaved, scaling = ntk(factor = 4)\n mask causal }",
        "kernel t { heads q = 4, kv = 2\n dims 32\n rope half, scaling = dynamic_ntk(factor = 4, original = 64)\n mask causal }",
        "kernel t { heads q = 4, kv = 2\n dims 32\n rope interleaved, dims = [8, 24), positions\n mask causal }",
        "kernel t { heads q = 4, kv = 2\n dims 48\n rope half, sections = [4, 8, 12]\n mask causal }",
        "kernel t { heads q = 2, kv = 1\n dims 32\n rope half, positions, rerope(window = 7)\n mask causal }",
        "kernel t { heads q = 2, kv = 1\n dims 32\n rope interleaved, rerope(window = 20, leak = 4)\n mask causal }",
        "kernel t { heads q = 2, kv = 1\n dims 32\n rope half, scaling = yarn(factor = 8, original = 32)\n mask causal }",
    };
    for (int i = 0; i < N(specs); i++) spec_cases(specs[i], specs[i], sh, N(sh), DEFAULT_THREADS, 1, NULL);
}

static void test_expressions(void) {
    static const int64_t sh[][3] = { { 1, 21, 21 }, { 2, 70, 150 }, { 1, 1, 200 } };
    const char *specs[] = {
        "kernel t { heads q = 4, kv = 2\n dims 16\n"
        " score score * 0.5 + log(1 + abs(score)) - sqrt(abs(score)) + floor(score * 3) / 3\n mask causal }",
        "kernel t { heads q = 4, kv = 2\n dims 16\n score sigmoid(score) * 2 + softplus(score) - relu(score) + elu(score)\n }",
        "kernel t { heads q = 4, kv = 2\n dims 16\n score exp(score / 4) + tanh(score * 3) + min(score, 1) + max(score, -1) }",
        "kernel t { heads q = 4, kv = 2\n dims 16\n score score + (q_idx - kv_idx) // 3 * 0.01 + ((kv_idx - 7) % 5) * 0.1\n"
        " mask (q_idx - kv_idx) % 4 != 1 && kv_idx <= q_idx }",
        "kernel t { heads q = 4, kv = 2\n dims 16\n score select(kv_idx % 2 == 0, score, -score) + 2 ^ (head * 0.5) - 1.5 ^ 2\n"
        " mask !(kv_idx > q_idx) || head == 3 }",
        "kernel t { heads q = 4, kv = 2\n dims 16\n inputs bias[head], doc[token]: i32, w[token, head]\n"
        " score score + bias[head] + w[kv_idx, head] * 0.5\n mask doc[q_idx] == doc[kv_idx] && causal }",
        "kernel t { heads q = 4, kv = 2\n dims 16\n score softcap(score, 2) + seq_k * 0.001 - seq_q * 0.002 + batch * 0.3\n"
        " mask kv_idx >= seq_k - 50 || causal }",
        "kernel t { heads q = 4, kv = 2\n dims 16\n score score + alibi_slope(head) * (kv_idx - q_idx)\n mask causal }",
    };
    for (int i = 0; i < N(specs); i++) spec_cases(specs[i], specs[i], sh, N(sh), DEFAULT_THREADS, 1, NULL);
}

static void test_dtypes_and_outputs(void) {
    static const int64_t sh[][3] = { { 1, 9, 9 }, { 1, 70, 150 }, { 1, 1, 300 } };
    spec_file sf;
    if (spec_load(&sf, NULL, "kernel t { heads q = 4, kv = 2\n dims 32\n dtype bf16\n mask causal }\n"
                             "kernel u { heads q = 4, kv = 2\n dims 32\n dtype f16\n mask causal }")) {
        for (int i = 0; i < 2; i++)
            for (int s = 0; s < N(sh); s++)
                check_case(i ? "f16" : "bf16", sf.m->kernels[i], sh[s][0], sh[s][1], sh[s][2], DEFAULT_THREADS, 1, NULL, 2e-2);
    }
    spec_free(&sf);

    if (spec_load(&sf, NULL, "kernel t { heads q = 2, kv = 1\n dims 16\n mask causal }")) {
        ir_kernel *k = sf.m->kernels[0];
        char err[512];
        /* f64 outputs (as the interpreter takes them) give the same values; lse may be
         * left out or have no data. */
        launch_case lc;
        case_make(&lc, k, 1, 20, 20);
        CHECK(case_run_ref(&lc));
        attnc_tensor t[SIG_MAX_TENSORS];
        memcpy(t, lc.t, sizeof t);
        t[lc.o] = lc.ref[lc.o];
        t[lc.o].data = case_alloc(&lc, (size_t)tensor_count(&t[lc.o]) * 8);
        t[lc.lse] = lc.ref[lc.lse];
        t[lc.lse].data = case_alloc(&lc, (size_t)tensor_count(&t[lc.lse]) * 8);
        CHECK(cpu_run(k, 1, 20, 20, t, lc.n, err, sizeof err));
        double worst = 0;
        for (int64_t e = 0; e < tensor_count(&t[lc.o]); e++) {
            double d = fabs(((double *)t[lc.o].data)[e] - ((double *)lc.ref[lc.o].data)[e]);
            if (d > worst) worst = d;
        }
        CHECK_MSG(worst < 1e-5, "f64 output view differs by %g", worst);
        CHECK(cpu_run(k, 1, 20, 20, lc.t, lc.n - 1, err, sizeof err));   /* no lse */
        double lse_err;
        CHECK(case_compare(&lc, &lse_err) < 1e-5);
        case_free(&lc);
    }
    spec_free(&sf);
}

/* bf16 outputs are the fp32 result rounded to nearest (even): within half a bf16 ulp of
 * the interpreter's value, plus the fp32 kernel's own error. Truncating instead puts about
 * half the elements beyond that. Rows of 1 to 150 positions: whole vector groups of rows
 * (written a vector at a time) and the scalar tail. */
static void test_bf16_rounding(void) {
    spec_file sf;
    if (!spec_load(&sf, NULL, "kernel t { heads q = 4, kv = 2\n dims 32\n dtype bf16\n mask causal }")) return;
    static const int64_t sq[] = { 1, 13, 150 };
    char err[512];
    for (int i = 0; i < N(sq); i++) {
        launch_case lc;
        case_make(&lc, sf.m->kernels[0], 1, sq[i], sq[i]);
        CHECK(case_run_ref(&lc));
        CHECK(cpu_run(sf.m->kernels[0], 1, sq[i], sq[i], lc.t, lc.n, err, sizeof err));
        const attnc_tensor *o = &lc.t[lc.o], *ro = &lc.ref[lc.o];
        int64_t n = tensor_count(o), beyond = 0;
        double worst = 0;
        for (int64_t e = 0; e < n; e++) {
            double r = tensor_load(ro, e), x = tensor_load(o, e);
            double half_ulp = r == 0 ? 0 : ldexp(1.0, ilogb(r) - 8);
            double over = fabs(x - r) - half_ulp - 1e-6 * fabs(r) - 1e-7;
            if (over > 0) beyond++;
            if (over > worst) worst = over;
        }
        n_cases++;
        CHECK_MSG(beyond == 0, "bf16 rounding, seq %lld: %lld of %lld outputs beyond half an ulp (worst by %.3g)",
                  (long long)sq[i], (long long)beyond, (long long)n, worst);
        case_free(&lc);
    }
    spec_free(&sf);
}

/* The generator at another vector width: 4-lane SSE code without FMA (runs on any x86-64
 * host), on kernels that use every skeleton variant (wide, narrow, packed panels). */
static void test_sse_target(void) {
    cpu_target host, sse;
    char err[512];
    if (!cpu_target_host(&host, err, sizeof err) || !host.x86) return;
    CHECK(cpu_target_init(&sse, NULL, "x86-64", "+sse2,+sse3,+ssse3", err, sizeof err));
    static const int64_t sh[][3] = { { 1, 1, 300 }, { 2, 37, 37 }, { 1, 1, 5 } };
    const char *specs[] = {
        "kernel t { heads q = 4, kv = 2\n dims 24\n rope half\n mask causal }",
        "kernel t { heads q = 1, kv = 1\n dims 20\n score softcap(score, 3)\n mask sliding_window(40) }",
        "kernel t { heads q = 8, kv = 1\n latent rank = 16, rope = 8\n scale 0.3\n rope interleaved\n mask causal }",
    };
    for (int i = 0; i < N_PHASES * N(specs); i++) {
        spec_file sf;
        if (!spec_load_phase(&sf, specs[i / N_PHASES], i % N_PHASES)) continue;
        ir_kernel *k = sf.m->kernels[0];
        cpu_compiled *ck = cpu_compile_for(k, &sse, NULL, err, sizeof err);
        CHECK_MSG(ck != NULL, "SSE compile: %s", err);
        for (int s = 0; ck && s < N(sh); s++) {
            launch_case lc;
            case_make(&lc, k, sh[s][0], sh[s][1], sh[s][2]);
            CHECK(case_run_ref(&lc));
            CHECK_MSG(cpu_launch(ck, k, 2, sh[s][0], sh[s][1], sh[s][2], lc.t, lc.n, err, sizeof err), "%s", err);
            double lse_err, e = case_compare(&lc, &lse_err);
            n_cases++;
            CHECK_MSG(e <= 1e-5 && lse_err <= 1e-5, "SSE %s%s shape %d: o error %.3g, lse error %.3g", specs[i / N_PHASES],
                      PHASE_LABEL[i % N_PHASES], s, e, lse_err);
            case_free(&lc);
        }
        cpu_compiled_free(ck);
        spec_free(&sf);
    }
}

static void test_validation(void) {
    spec_file sf;
    if (!spec_load(&sf, NULL, "kernel t { heads q = 2, kv = 1\n dims 16\n dtype bf16\n mask causal }")) return;
    ir_kernel *k = sf.m->kernels[0];
    char err[512];
    launch_case lc;
    case_make(&lc, k, 1, 8, 8);
    void *saved = lc.t[0].data;
    lc.t[0].data = NULL;
    err[0] = 0;
    CHECK(!cpu_run(k, 1, 8, 8, lc.t, lc.n, err, sizeof err));
    CHECK_MSG(strstr(err, "'q'") && (strstr(err, "NULL") || strstr(err, "null")), "message: %s", err);
    lc.t[0].data = (char *)saved + 1;               /* bf16 elements need 2-byte alignment */
    CHECK(!cpu_run(k, 1, 8, 8, lc.t, lc.n, err, sizeof err));
    CHECK_MSG(strstr(err, "aligned"), "message: %s", err);
    lc.t[0].data = saved;
    lc.t[1].shape[3] = 15;
    CHECK(!cpu_run(k, 1, 8, 8, lc.t, lc.n, err, sizeof err));
    CHECK_MSG(strstr(err, "'k'"), "message: %s", err);
    lc.t[1].shape[3] = 16;
    CHECK(!cpu_run(k, -1, 8, 8, lc.t, lc.n, err, sizeof err));
    /* Positions are proved to fit the kernels' conversions only below 2^31. */
    CHECK(!cpu_run(k, 1, 8, IR_MAX_LENGTH + 1, lc.t, lc.n, err, sizeof err));
    CHECK_MSG(strstr(err, "2^31"), "message: %s", err);
    CHECK(cpu_run(k, 1, 8, 8, lc.t, lc.n, err, sizeof err));
    /* Zero lengths are valid: nothing to compute (seq_k = 0: every row masked). */
    launch_case z;
    case_make(&z, k, 1, 3, 0);
    CHECK(cpu_run(k, 1, 3, 0, z.t, z.n, err, sizeof err));
    CHECK(isinf(((float *)z.t[z.lse].data)[0]));
    case_free(&z);
    case_make(&z, k, 0, 3, 3);
    CHECK(cpu_run(k, 0, 3, 3, z.t, z.n, err, sizeof err));
    case_free(&z);
    case_free(&lc);
    spec_free(&sf);

    if (spec_load(&sf, NULL, "kernel r : recurrence { heads 2\n dims k = 8, v = 8 }")) {
        case_make(&lc, sf.m->kernels[0], 1, 4, 4);
        /* Recurrences run (their numerics are tested in test_cpu_recur.c); launch
         * validation applies to them as to softmax kernels. */
        CHECK_MSG(cpu_run(sf.m->kernels[0], 1, 4, 4, lc.t, lc.n, err, sizeof err), "%s", err);
        CHECK(!cpu_run(sf.m->kernels[0], -1, 4, 4, lc.t, lc.n, err, sizeof err));
        case_free(&lc);
    }
    spec_free(&sf);
}

int main(void) {
    test_masked_rows();
    test_windows();
    test_shapes();
    test_threads_and_splits();
    test_strides();
    test_head_major_kv();
    test_rope();
    test_expressions();
    test_dtypes_and_outputs();
    test_bf16_rounding();
    test_validation();
    test_sse_target();
    printf("%d cases\n", n_cases);
    return check_status("test_cpu_edge");
}
#else
#include <stdio.h>
int main(void) {
    printf("test_cpu_edge: not applicable, attnc was built without LLVM (ATTNC_LLVM=OFF)\n");
    return 0;
}
#endif
