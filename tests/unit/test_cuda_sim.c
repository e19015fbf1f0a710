/* Whole-grid CPU simulation of the emitted CUDA kernels against the float64 interpreter
 * (cuda-kernels.md §7 d-h): the exact source NVRTC compiles, with its primitives modelled
 * per lane (tests/cuda/sim_prims.h: NaN-poisoned shared memory, cp.async groups, barrier
 * hazards, bounds, convergence, bank conflicts). The case grid covers head dims 64..576,
 * d_qk != d_v, both pipeline schedules, causal / window / document / prefix masks, Sq > Sk,
 * Sk = 0, split-KV 1..8 with empty splits, GQA packing g = 4 and 16, MLA, every RoPE form,
 * f16, fp32 SIMT, and the recurrences. Mutation cases then break the emitted source on
 * purpose (bf16 pack order, a barrier, the quad reduction, the -inf guard, zero fill,
 * wait_group) and require the simulator to notice. Needs a host C compiler, no GPU. */
#include "check.h"
#include "tests/cuda/sim_harness.h"

typedef struct sim_case {
    const char *name;
    const char *spec;          /* spec text, or NULL to take `kernel` from `file` */
    const char *file;          /* examples/NAME.attn */
    const char *kernel;
    int kv_heads, group;       /* > 0: shrink the head counts (keeping the spec otherwise) */
    const char *arch, *plan;   /* plan: override string for cuda_plan_override, or NULL */
    int64_t batch, sq, sk;
    int splits;
    double atol, rtol;         /* for o (and state_out) */
    double lse_tol;
    int expect_kind;           /* CUDA_KIND_* the plan must pick */
    int flags;                 /* SIM_* run flags (a strided o view) */
} sim_case;

#define BF16_TOL 2e-2, 2e-2, 2e-2
#define F32_TOL 2e-5, 2e-5, 2e-5

static const sim_case cases[] = {
    {"d64 causal gqa, Sk % Bc != 0", "kernel t {\n heads q = 4, kv = 2\n dims 64\n dtype bf16\n mask causal\n}", 0, 0, 0, 0,
     "sm_80", NULL, 2, 150, 150, 1, BF16_TOL, CUDA_KIND_MMA, 0},
    {"d64 causal, strided o view (staged epilogue)", "kernel t {\n heads q = 4, kv = 2\n dims 64\n dtype bf16\n mask causal\n}",
     0, 0, 0, 0, "sm_80", NULL, 1, 70, 90, 1, BF16_TOL, CUDA_KIND_MMA, SIM_O_SPREAD},
    {"d64 causal, strided o view, direct epilogue", "kernel t {\n heads q = 4, kv = 2\n dims 64\n dtype bf16\n mask causal\n}",
     0, 0, 0, 0, "sm_80", "stageo=0", 1, 70, 90, 1, BF16_TOL, CUDA_KIND_MMA, SIM_O_SPREAD},
    {"d128 no mask, FA2 one-stage schedule", "kernel t {\n heads q = 2, kv = 2\n dims 128\n dtype bf16\n}", 0, 0, 0, 0,
     "sm_80", "stages=1", 1, 77, 333, 1, BF16_TOL, CUDA_KIND_MMA, 0},
    {"d128 causal, Sq > Sk (empty rows)", "kernel t {\n heads q = 2, kv = 1\n dims 128\n dtype bf16\n mask causal\n}", 0, 0,
     0, 0, "sm_90a", NULL, 1, 300, 150, 1, BF16_TOL, CUDA_KIND_MMA, 0},
    {"d96 sliding window", "kernel t {\n heads q = 2, kv = 2\n dims 96\n dtype bf16\n mask sliding_window(40)\n}", 0, 0, 0,
     0, "sm_80", NULL, 1, 200, 200, 1, BF16_TOL, CUDA_KIND_MMA, 0},
    {"d80 partial interleaved rope, q in smem",
     "kernel t {\n heads q = 2, kv = 1\n dims 80\n dtype bf16\n rope interleaved, dims = [16, 48), base = 100\n mask causal\n}",
     0, 0, 0, 0, "sm_80", "qregs=0,bc=32", 1, 100, 100, 1, BF16_TOL, CUDA_KIND_MMA, 0},
    {"gemma2 d256 softcap window", NULL, "gemma2_9b", "gemma2_9b_local", 1, 2, "sm_80", NULL, 1, 70, 100, 1, BF16_TOL,
     CUDA_KIND_MMA, 0},
    {"deepseek prefill d192/128 yarn", NULL, "deepseek_v2", "deepseek_v2_prefill", 1, 1, "sm_80", NULL, 1, 70, 100, 1,
     BF16_TOL, CUDA_KIND_MMA, 0},
    {"f16 alibi + softcap",
     "kernel t {\n heads q = 4, kv = 4\n dims 64\n dtype f16\n score softcap(score + alibi_slope(head) * (kv_idx - q_idx), 20)\n mask causal\n}",
     0, 0, 0, 0, "sm_80", NULL, 1, 90, 90, 1, BF16_TOL, CUDA_KIND_MMA, 0},
    {"document mask from an input",
     "kernel t {\n heads q = 2, kv = 1\n dims 64\n dtype bf16\n inputs doc[token]: i32\n mask causal && doc[q_idx] == doc[kv_idx]\n}",
     0, 0, 0, 0, "sm_80", NULL, 2, 130, 130, 1, BF16_TOL, CUDA_KIND_MMA, 0},
    {"prefix-LM mask (interval trimming)",
     "kernel t {\n heads q = 2, kv = 2\n dims 64\n dtype bf16\n mask kv_idx < 40 || causal\n}", 0, 0, 0, 0, "sm_80",
     "bc=32", 1, 150, 150, 1, BF16_TOL, CUDA_KIND_MMA, 0},
    {"Sk = 0", "kernel t {\n heads q = 2, kv = 1\n dims 64\n dtype bf16\n mask causal\n}", 0, 0, 0, 0, "sm_80", NULL, 1,
     5, 0, 1, BF16_TOL, CUDA_KIND_MMA, 0},
    {"Sq = Sk = 1", "kernel t {\n heads q = 2, kv = 1\n dims 64\n dtype bf16\n mask causal\n}", 0, 0, 0, 0, "sm_80", NULL,
     1, 1, 1, 1, BF16_TOL, CUDA_KIND_MMA, 0},
    {"llama3 prefill, rope llama3 scaling", NULL, "llama3_8b", "llama3_8b", 1, 2, "sm_80", NULL, 1, 70, 133, 1, BF16_TOL,
     CUDA_KIND_MMA, 0},
    {"llama3 decode g=4, one split", NULL, "llama3_8b", "llama3_8b_decode", 2, 4, "sm_80", NULL, 1, 1, 300, 1, BF16_TOL,
     CUDA_KIND_MMA, 0},
    {"llama3 decode g=4, 3 splits", NULL, "llama3_8b", "llama3_8b_decode", 2, 4, "sm_90a", NULL, 2, 1, 300, 3, BF16_TOL,
     CUDA_KIND_MMA, 0},
    {"llama3 decode 3 splits, direct epilogue", NULL, "llama3_8b", "llama3_8b_decode", 1, 4, "sm_80", "stageo=0", 1, 1, 300,
     3, BF16_TOL, CUDA_KIND_MMA, 0},
    {"MLA decode, strided o view", NULL, "deepseek_v2", "deepseek_v2_decode", 1, 8, "sm_90a", NULL, 1, 1, 90, 1, BF16_TOL,
     CUDA_KIND_MMA, SIM_O_SPREAD},
    {"llama3 decode, 8 splits (some empty)", NULL, "llama3_8b", "llama3_8b_decode", 1, 4, "sm_80", NULL, 1, 1, 300, 8,
     BF16_TOL, CUDA_KIND_MMA, 0},
    /* more splits than lanes: the merge's lanes fold splits 32.. into the warp reduction */
    {"llama3 decode, 35 splits (merge folds > 32)", NULL, "llama3_8b", "llama3_8b_decode", 1, 4, "sm_90a", NULL, 1, 1, 4400,
     35, BF16_TOL, CUDA_KIND_MMA, 0},
    {"decode g=16, Sq=2 (MTP) causal",
     "kernel t {\n heads q = 16, kv = 1\n dims 128\n dtype bf16\n mask causal\n phase decode\n}", 0, 0, 0, 0, "sm_80", NULL, 1,
     2, 97, 2, BF16_TOL, CUDA_KIND_MMA, 0},
    {"MLA decode 576/512, g=16", NULL, "deepseek_v2", "deepseek_v2_decode", 1, 16, "sm_90a", NULL, 1, 1, 150, 1, BF16_TOL,
     CUDA_KIND_MMA, 0},
    {"MLA decode, 4 splits", NULL, "deepseek_v2", "deepseek_v2_decode", 1, 8, "sm_90a", NULL, 2, 1, 150, 4, BF16_TOL,
     CUDA_KIND_MMA, 0},
    {"MLA decode, one-stage V-in-K schedule", NULL, "deepseek_v2", "deepseek_v2_decode", 1, 16, "sm_80", "stages=1", 1, 1,
     150, 1, BF16_TOL, CUDA_KIND_MMA, 0},
    {"M-RoPE sections with positions", NULL, "qwen2_vl_7b", "qwen2_vl_7b", 1, 2, "sm_80", NULL, 1, 50, 90, 1, BF16_TOL,
     CUDA_KIND_MMA, 0},
    {"dynamic NTK (frequencies at launch)",
     "kernel t {\n heads q = 2, kv = 1\n dims 64\n dtype bf16\n rope half, scaling = dynamic_ntk(factor = 4, original = 64)\n mask causal\n}",
     0, 0, 0, 0, "sm_80", NULL, 1, 120, 200, 1, BF16_TOL, CUDA_KIND_MMA, 0},
    {"fp32 SIMT: phi2 partial rope", NULL, "phi2", "phi2", 2, 1, "sm_80", NULL, 1, 40, 60, 1, F32_TOL, CUDA_KIND_SIMT, 0},
    {"fp32 SIMT: document mask + rope", NULL, "doc_mask", "packed_docs", 1, 2, "sm_80", NULL, 1, 45, 45, 1, F32_TOL,
     CUDA_KIND_SIMT, 0},
    {"fp32 SIMT decode, 3 splits",
     "kernel t {\n heads q = 4, kv = 2\n dims 64\n dtype f32\n mask causal\n phase decode\n}", 0, 0, 0, 0, "sm_80", NULL, 1, 2,
     100, 3, F32_TOL, CUDA_KIND_SIMT, 0},
    {"fp32 SIMT decode, 40 splits (some empty)",
     "kernel t {\n heads q = 4, kv = 2\n dims 64\n dtype f32\n mask causal\n phase decode\n}", 0, 0, 0, 0, "sm_80", NULL, 1, 1,
     700, 40, F32_TOL, CUDA_KIND_SIMT, 0},
    {"ReRoPE (SIMT)", "kernel t {\n heads q = 2, kv = 2\n dims 64\n dtype bf16\n rope half, rerope(window = 16)\n mask causal\n}",
     0, 0, 0, 0, "sm_80", NULL, 1, 60, 60, 1, BF16_TOL, CUDA_KIND_SIMT, 0},
    {"Leaky ReRoPE (SIMT, f32)",
     "kernel t {\n heads q = 2, kv = 2\n dims 64\n dtype f32\n rope half, rerope(window = 16, leak = 4)\n mask causal\n}", 0, 0,
     0, 0, "sm_80", NULL, 1, 60, 60, 1, F32_TOL, CUDA_KIND_SIMT, 0},
    {"GLA recurrence", NULL, "gla", "gla", 2, 0, "sm_80", NULL, 2, 37, 37, 1, 1e-4, 1e-5, 0, CUDA_KIND_RECUR, 0},
    {"linear attention, elu feature, normalize", NULL, "linear_elu", "linear_elu", 2, 0, "sm_80", NULL, 1, 37, 37, 1, 1e-4,
     1e-5, 0, CUDA_KIND_RECUR, 0},
    /* the random inputs here include dt < 0, decays up to e^2.7 per token and states of 1e5:
       outside the chunkwise bf16 forms' envelope (bf16 scores and state copy), so this case
       holds the f32 step form to elementwise tolerances; test_cuda_recur checks the
       tensor-core chunk form with model-range inputs */
    {"Mamba2 (bf16) recurrence, step form", NULL, "mamba2_2_7b", "mamba2_2_7b", 2, 0, "sm_80", "form=step", 1, 29, 29, 1,
     1e-2, 2e-2, 0, CUDA_KIND_RECUR, 0},
    {"RetNet recurrence", NULL, "retnet", "retnet", 2, 0, "sm_80", NULL, 1, 37, 37, 1, 1e-4, 1e-5, 0, CUDA_KIND_RECUR, 0},
};

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

/* The kernel of a case, heads shrunk so the grid stays small. */
static ir_kernel *case_kernel(const sim_case *c, arena *a) {
    char err[4096];
    char *text = NULL;
    if (!c->spec) {
        char path[512];
        snprintf(path, sizeof path, "%s/examples/%s.attn", ATTNC_SOURCE_DIR, c->file);
        text = read_text(path);
        CHECK_MSG(text != NULL, "cannot read %s", path);
        if (!text) return NULL;
    }
    ir_module *m = sim_compile_spec(c->spec ? c->spec : text, a, err, sizeof err);
    free(text);
    CHECK_MSG(m != NULL, "%s: %s", c->name, err);
    if (!m) return NULL;
    ir_kernel *k = c->kernel ? ir_module_find(m, c->kernel) : m->kernels[0];
    CHECK_MSG(k != NULL, "%s: no kernel %s", c->name, c->kernel);
    if (!k) return NULL;
    if (c->kv_heads > 0) {
        if (k->family == IR_RECURRENCE) {
            if (k->groups == k->heads_q) k->groups = c->kv_heads;
            k->heads_q = k->heads_kv = c->kv_heads;
        } else {
            int g = c->group > 0 ? c->group : k->heads_q / k->heads_kv;
            k->heads_kv = c->kv_heads;
            k->heads_q = c->kv_heads * g;
        }
    }
    return k;
}

static void run_case(const sim_case *c) {
    arena a;
    arena_init(&a);
    char err[8192];
    ir_kernel *k = case_kernel(c, &a);
    if (!k) {
        arena_free(&a);
        return;
    }
    sim_module m;
    bool built = sim_build_ex(k, c->arch, c->plan, NULL, NULL, &m, err, sizeof err);
    CHECK_MSG(built, "%s: %s", c->name, err);
    if (!built) {
        sim_free(&m);
        arena_free(&a);
        return;
    }
    CHECK_MSG(m.plan.kind == (cuda_kernel_kind)c->expect_kind, "%s: plan kind %d, expected %d", c->name, m.plan.kind,
              c->expect_kind);
    bool rec = k->family == IR_RECURRENCE;
    sim_case_data d;
    sim_case_make(&d, k, c->batch, c->sq, c->sk, true, 11);
    sim_result r;
    bool ran = sim_run_ex(&m, k, c->batch, c->sq, c->sk, d.t, d.n, c->splits, c->flags, &r, err, sizeof err);
    CHECK_MSG(ran, "%s: %s", c->name, err);
    CHECK_MSG(r.errors == 0, "%s: the simulator found %lld errors:\n%s", c->name, r.errors, r.report);
    if (m.plan.kind == CUDA_KIND_MMA) {
        CHECK_MSG(r.stats[5] == 0, "%s: %lld ldmatrix phases with bank conflicts", c->name, r.stats[5]);
        if (c->sk > 0) CHECK_MSG(r.stats[1] > 0 && r.stats[0] > 0, "%s: no mma/ldmatrix executed", c->name);
    }
    bool interp_ok = interp_run(k, c->batch, c->sq, c->sk, d.ref, d.n, err, sizeof err);
    CHECK_MSG(interp_ok, "%s: interpreter: %s", c->name, err);
    if (ran && interp_ok) {
        sim_cmp o = sim_compare(&d, "o", c->atol, c->rtol);
        CHECK_MSG(o.nan_count == 0 && o.mismatches == 0, "%s: o differs from the interpreter: %lld mismatches, %lld NaN/inf "
                  "disagreements, max |diff| %.3g (max |ref| %.3g) at element %lld", c->name, o.mismatches, o.nan_count,
                  o.max_abs, o.max_ref, (long long)o.worst);
        if (rec) {
            sim_cmp s = sim_compare(&d, "state_out", c->atol, c->rtol);
            CHECK_MSG(s.nan_count == 0 && s.mismatches == 0, "%s: state_out differs: %lld mismatches, max |diff| %.3g",
                      c->name, s.mismatches, s.max_abs);
        } else {
            sim_cmp l = sim_compare(&d, "lse", c->lse_tol, 1e-3);
            CHECK_MSG(l.nan_count == 0 && l.mismatches == 0, "%s: lse differs: %lld mismatches, %lld NaN/inf disagreements, "
                      "max |diff| %.3g at %lld", c->name, l.mismatches, l.nan_count, l.max_abs, (long long)l.worst);
        }
        printf("  %-44s kind %d  ldsm %6lld mma %6lld cp.async %7lld bars %4lld  max|do| %.2g\n", c->name, m.plan.kind,
               r.stats[0], r.stats[1], r.stats[2], r.stats[3], o.max_abs);
    }
    sim_case_free(&d);
    sim_free(&m);
    arena_free(&a);
}

/* ---------------------------------------------------------------- mutations */

typedef struct mutation {
    const char *name;
    const char *spec;
    const char *plan;
    const char *find, *repl;
    int64_t sq, sk;
    bool expect_sim_error;     /* else: a numeric difference from the interpreter */
} mutation;

static const char *causal64 = "kernel t {\n heads q = 2, kv = 1\n dims 64\n dtype bf16\n mask causal\n}";

static const mutation mutations[] = {
    {"bf16x2 pack order swapped", NULL, NULL, "return cvt_rn_bf16x2(hi, lo);", "return cvt_rn_bf16x2(lo, hi);", 40, 40, false},
    {"barrier after cp.async.wait removed", NULL, NULL, "        bar_sync();   /* tile n landed", "        /* gone */ /*", 40,
     140, true},
    {"quad max reduces across rows (xor 4)", NULL, NULL, "mx[r] = fmaxf(mx[r], shfl_xor(mx[r], 2));",
     "mx[r] = fmaxf(mx[r], shfl_xor(mx[r], 4));", 40, 40, false},
    {"-inf guard removed", NULL, NULL, "msub[r] = mx[r] == -ATTNC_INF ? 0.f : mx[r];", "msub[r] = mx[r];", 100, 40, false},
    {"tail rows not zero-filled", NULL, NULL,
     "cp_async16(d0 + (u32)smem_tile_offset(dr, dc, BC, D), ok ? src0 + (i64)dr * A->k_st[1] + dc : base, ok ? 16 : 0);",
     "if (ok) cp_async16(d0 + (u32)smem_tile_offset(dr, dc, BC, D), src0 + (i64)dr * A->k_st[1] + dc, 16);", 40, 40, true},
    {"affine K loader drops the row step", NULL, NULL, "ok ? src0 + (i64)dr * A->k_st[1] + dc : base",
     "ok ? src0 + dc : base", 40, 100, false},
    {"staged epilogue: copy-out before the barrier", NULL, NULL,
     "        if (wc == 0 && (lane & 3) == 0) sts_f32(sL + (u32)(4 * rl), lse[r]);\n    }\n    bar_sync();\n",
     "        if (wc == 0 && (lane & 3) == 0) sts_f32(sL + (u32)(4 * rl), lse[r]);\n    }\n", 40, 40, true},
    {"wait_group 1 where 0 is needed", NULL, NULL, "        cp_async_wait0();\n        bar_sync();   /* tile n landed",
     "        cp_async_wait1();\n        bar_sync();   /* tile n landed", 40, 140, true},
    {"one-stage: K prefetch before the barrier (WAR)", NULL, "stages=1",
     "        cp_async_wait0();\n        bar_sync();   /* V[n] landed; everyone is done reading K[n] */\n"
     "        if (n > n_lo) { load_k_tile",
     "        cp_async_wait0();\n        if (n > n_lo) { load_k_tile", 40, 140, true},
};

static void run_mutation(const mutation *mu) {
    arena a;
    arena_init(&a);
    char err[8192];
    ir_module *mod = sim_compile_spec(mu->spec ? mu->spec : causal64, &a, err, sizeof err);
    CHECK_MSG(mod != NULL, "%s", err);
    if (!mod) {
        arena_free(&a);
        return;
    }
    ir_kernel *k = mod->kernels[0];
    sim_module m;
    bool built = sim_build_ex(k, "sm_80", mu->plan, mu->find, mu->repl, &m, err, sizeof err);
    CHECK_MSG(built, "mutation '%s': %s", mu->name, err);
    if (built) {
        sim_case_data d;
        sim_case_make(&d, k, 1, mu->sq, mu->sk, true, 5);
        sim_result r;
        bool ran = sim_run(&m, k, 1, mu->sq, mu->sk, d.t, d.n, 1, &r, err, sizeof err);
        CHECK(ran);
        bool caught_sim = r.errors > 0;
        bool caught_num = false;
        if (interp_run(k, 1, mu->sq, mu->sk, d.ref, d.n, err, sizeof err)) {
            sim_cmp o = sim_compare(&d, "o", 2e-2, 2e-2), l = sim_compare(&d, "lse", 2e-2, 1e-3);
            caught_num = o.mismatches || o.nan_count || l.mismatches || l.nan_count;
        }
        if (mu->expect_sim_error)
            CHECK_MSG(caught_sim, "mutation '%s' was not reported by the simulator", mu->name);
        else
            CHECK_MSG(caught_num || caught_sim, "mutation '%s' went unnoticed", mu->name);
        printf("  mutation %-46s caught: %s\n", mu->name, caught_sim ? "simulator check" : caught_num ? "wrong numbers" : "NO");
        sim_case_free(&d);
    }
    sim_free(&m);
    arena_free(&a);
}

/* ---------------------------------------------------------------- tile classification */

/* The emitted device-side interval classifier must be sound: whenever it calls a tile all
 * true or all false, the mask evaluated at every point of the tile agrees. Also compared
 * with the IR's own analysis (ir_mask_classify), which it may not contradict. */
static void test_mask_classifier(void) {
    static const char *masks[] = {
        "causal", "sliding_window(7)", "kv_idx < 13 || causal", "causal && q_idx - kv_idx >= 3",
        "kv_idx % 4 == 1 || kv_idx > q_idx + 5", "head < 2 && causal", "kv_idx // 8 == q_idx // 8",
        "abs(q_idx - kv_idx) <= 4", "max(kv_idx, 3) <= min(q_idx, 20)", "select(head == 1, causal, kv_idx >= 10)",
        "!(kv_idx > q_idx) && kv_idx * 2 >= q_idx - 9", "q_idx - kv_idx < seq_k - 40",
    };
    uint64_t rng = 99;
    for (size_t mi = 0; mi < sizeof masks / sizeof masks[0]; mi++) {
        char spec[512], err[4096];
        snprintf(spec, sizeof spec, "kernel t {\n heads q = 4, kv = 4\n dims 64\n dtype bf16\n mask %s\n}", masks[mi]);
        arena a;
        arena_init(&a);
        ir_module *mod = sim_compile_spec(spec, &a, err, sizeof err);
        CHECK_MSG(mod != NULL, "%s: %s", masks[mi], err);
        if (!mod) {
            arena_free(&a);
            continue;
        }
        ir_kernel *k = mod->kernels[0];
        sim_module m;
        bool built = sim_build(k, "sm_80", &m, err, sizeof err);
        CHECK_MSG(built, "%s", err);
        int (*cls)(const long long *) = NULL;
        void *sym = built ? dlsym(m.handle, "attnc_sim_mask_class") : NULL;
        if (sym) memcpy(&cls, &sym, sizeof sym);
        CHECK(cls != NULL);
        int unsound = 0, decided = 0, disagree = 0, trials = 0;
        for (int t = 0; cls && t < 400; t++) {
            long long seq_k = 20 + (long long)(sim_rng_next(&rng) % 60), seq_q = 1 + (long long)(sim_rng_next(&rng) % seq_k);
            long long qlo = (long long)(sim_rng_next(&rng) % seq_q) + seq_k - seq_q, qhi = qlo + (long long)(sim_rng_next(&rng) % 16);
            long long kvlo = (long long)(sim_rng_next(&rng) % seq_k), kvhi = kvlo + (long long)(sim_rng_next(&rng) % 16);
            long long hlo = (long long)(sim_rng_next(&rng) % 4), hhi = hlo + (long long)(sim_rng_next(&rng) % 2);
            if (qhi >= seq_k) qhi = seq_k - 1;
            if (kvhi >= seq_k) kvhi = seq_k - 1;
            if (hhi > 3) hhi = 3;
            long long r[9] = {qlo, qhi, kvlo, kvhi, hlo, hhi, 0, seq_q, seq_k};
            int c = cls(r);
            int any_true = 0, any_false = 0;
            interp_env env = {{0}, k, NULL, 0, 0, 0, 0, 0};
            env.var[IR_VAR_SEQ_Q] = (double)seq_q;
            env.var[IR_VAR_SEQ_K] = (double)seq_k;
            for (long long q = qlo; q <= qhi; q++)
                for (long long kv = kvlo; kv <= kvhi; kv++)
                    for (long long h = hlo; h <= hhi; h++) {
                        env.var[IR_VAR_Q_IDX] = (double)q;
                        env.var[IR_VAR_KV_IDX] = (double)kv;
                        env.var[IR_VAR_HEAD] = (double)h;
                        if (interp_eval(k->mask, &env) != 0) any_true = 1;
                        else any_false = 1;
                    }
            trials++;
            if (c != 2) decided++;
            if ((c == 1 && any_false) || (c == 0 && any_true) || c < 0 || c > 2) unsound++;
            ir_rect rect = {qlo, qhi, kvlo, kvhi, hlo, hhi, 0, 0, seq_q, seq_k};
            ir_mask_class ir = ir_mask_classify(k->mask, &rect);
            if ((ir == IR_MASK_ALL_TRUE && c == 0) || (ir == IR_MASK_ALL_FALSE && c == 1)) disagree++;
        }
        CHECK_MSG(unsound == 0, "mask '%s': the emitted tile classifier is wrong on %d of %d tiles", masks[mi], unsound, trials);
        CHECK_MSG(disagree == 0, "mask '%s': the emitted classifier contradicts ir_mask_classify on %d tiles", masks[mi], disagree);
        printf("  tile classifier %-44s decided %3d of %d tiles\n", masks[mi], decided, trials);
        sim_free(&m);
        arena_free(&a);
    }
}

int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : NULL;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (!only || strstr(cases[i].name, only)) run_case(&cases[i]);
    for (size_t i = 0; i < sizeof mutations / sizeof mutations[0]; i++)
        if (!only || strstr(mutations[i].name, only)) run_mutation(&mutations[i]);
    if (!only || strstr("tile classifier", only)) test_mask_classifier();
    return check_status("test_cuda_sim");
}
