/* RoPE planning. Without arguments: properties every scaling must have (which pairs a
 * scaling leaves alone, which it divides by the factor, monotonicity, the YaRN factor,
 * M-RoPE axes, dynamic NTK's dependence on seq_k). With --dump: the plans of the model
 * configurations below as text, which tests/ref/rope_reference.py recomputes independently
 * with numpy (ctest ir.rope_vs_numpy). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "ir/ir.h"

typedef struct rope_case {
    const char *name;
    ir_rope rope;
    int64_t seq_k[6];   /* dynamic NTK: lengths to evaluate (0 ends) */
} rope_case;

static const rope_case CASES[] = {
    {"llama31", {.layout = IR_ROPE_HALF, .dim_lo = 0, .dim_hi = 128, .base = 500000, .scaling = IR_SCALE_LLAMA3,
                 .factor = 8, .original = 8192, .low_freq_factor = 1, .high_freq_factor = 4}, {0}},
    {"llama32", {.layout = IR_ROPE_HALF, .dim_lo = 0, .dim_hi = 64, .base = 500000, .scaling = IR_SCALE_LLAMA3,
                 .factor = 32, .original = 8192, .low_freq_factor = 1, .high_freq_factor = 4}, {0}},
    {"deepseek_v2_yarn", {.layout = IR_ROPE_INTERLEAVED, .dim_lo = 128, .dim_hi = 192, .base = 10000,
                          .scaling = IR_SCALE_YARN, .factor = 40, .original = 4096, .beta_fast = 32,
                          .beta_slow = 1, .mscale = 0.707}, {0}},
    {"yarn_defaults", {.layout = IR_ROPE_HALF, .dim_lo = 0, .dim_hi = 128, .base = 1000000,
                       .scaling = IR_SCALE_YARN, .factor = 4, .original = 32768}, {0}},
    {"ntk", {.layout = IR_ROPE_HALF, .dim_lo = 0, .dim_hi = 128, .base = 10000, .scaling = IR_SCALE_NTK,
             .factor = 4}, {0}},
    {"linear", {.layout = IR_ROPE_HALF, .dim_lo = 0, .dim_hi = 128, .base = 10000, .scaling = IR_SCALE_LINEAR,
                .factor = 4}, {0}},
    {"dynamic_ntk", {.layout = IR_ROPE_HALF, .dim_lo = 0, .dim_hi = 128, .base = 10000,
                     .scaling = IR_SCALE_DYNAMIC_NTK, .factor = 2, .original = 2048},
     {1024, 2048, 2049, 4096, 10000, 65536}},
    {"mrope_qwen2vl", {.layout = IR_ROPE_HALF, .dim_lo = 0, .dim_hi = 128, .base = 1000000, .n_sections = 3,
                       .sections = {16, 24, 24}, .explicit_positions = true}, {0}},
    {"neox_partial", {.layout = IR_ROPE_HALF, .dim_lo = 0, .dim_hi = 24, .base = 10000}, {0}},
    {"phi2_partial_dynamic", {.layout = IR_ROPE_HALF, .dim_lo = 0, .dim_hi = 32, .base = 10000,
                              .scaling = IR_SCALE_DYNAMIC_NTK, .factor = 4, .original = 2048},
     {100, 2048, 3000, 8192, 0}},
};
enum { N_CASES = sizeof CASES / sizeof CASES[0] };

static const char *scaling_name(ir_rope_scaling s) {
    static const char *const names[] = {"none", "linear", "ntk", "dynamic_ntk", "yarn", "llama3"};
    return names[s];
}

static ir_rope planned(arena *a, const ir_rope *r) {
    ir_rope p = *r;
    ir_rope_plan(&p, a);
    return p;
}

static int dump(void) {
    arena a;
    arena_init(&a);
    for (int c = 0; c < N_CASES; c++) {
        ir_rope r = planned(&a, &CASES[c].rope);
        printf("case %s\n", CASES[c].name);
        printf("layout %s\ndim_lo %d\ndim_hi %d\n", r.layout == IR_ROPE_HALF ? "half" : "interleaved", r.dim_lo, r.dim_hi);
        printf("base %.17g\nscaling %s\nfactor %.17g\noriginal %.17g\n", r.base, scaling_name(r.scaling), r.factor,
               r.original);
        printf("low %.17g\nhigh %.17g\nbeta_fast %.17g\nbeta_slow %.17g\nmscale %.17g\n", r.low_freq_factor,
               r.high_freq_factor, r.beta_fast, r.beta_slow, r.mscale);
        printf("sections");
        for (int i = 0; i < r.n_sections; i++) printf(" %d", r.sections[i]);
        printf("\nattn_factor %.17g\ninv_freq", r.attn_factor);
        for (int j = 0; j < r.n_pairs; j++) printf(" %.17g", r.inv_freq[j]);
        printf("\npair_axis");
        for (int j = 0; j < r.n_pairs; j++) printf(" %d", r.pair_axis[j]);
        printf("\n");
        double *buf = calloc((size_t)r.n_pairs, sizeof *buf);
        for (int s = 0; s < 6 && CASES[c].seq_k[s] > 0; s++) {
            ir_rope_inv_freq_at(&r, CASES[c].seq_k[s], buf);
            printf("at %lld", (long long)CASES[c].seq_k[s]);
            for (int j = 0; j < r.n_pairs; j++) printf(" %.17g", buf[j]);
            printf("\n");
        }
        free(buf);
        printf("end\n");
    }
    arena_free(&a);
    return 0;
}

/* ---------------------------------------------------------------- properties */

static const rope_case *find(const char *name) {
    for (int c = 0; c < N_CASES; c++)
        if (strcmp(CASES[c].name, name) == 0) return &CASES[c];
    return NULL;
}

static double unscaled(const ir_rope *r, int j) {
    int d = r->dim_hi - r->dim_lo;
    return pow(r->base, -2.0 * j / d);
}

static void test_default_and_linear(arena *a) {
    ir_rope base = planned(a, &find("neox_partial")->rope);
    CHECK(base.planned && base.n_pairs == 12 && base.attn_factor == 1);
    for (int j = 0; j < base.n_pairs; j++) CHECK_NEAR(base.inv_freq[j], unscaled(&base, j), 1e-14);
    CHECK(base.inv_freq[0] == 1);
    ir_rope lin = planned(a, &find("linear")->rope);
    for (int j = 0; j < lin.n_pairs; j++) CHECK_NEAR(lin.inv_freq[j] * 4, unscaled(&lin, j), 1e-14);
    ir_rope ntk = planned(a, &find("ntk")->rope);
    /* NTK keeps the highest frequency and divides the lowest by about the factor */
    CHECK(ntk.inv_freq[0] == 1);
    CHECK_NEAR(ntk.inv_freq[63] * 4, unscaled(&ntk, 63), 0.05);
    for (int j = 1; j < ntk.n_pairs; j++) CHECK(ntk.inv_freq[j] < unscaled(&ntk, j) && ntk.inv_freq[j] < ntk.inv_freq[j - 1]);
}

static void test_llama3(arena *a) {
    const ir_rope *cfg = &find("llama31")->rope;
    ir_rope r = planned(a, cfg);
    int kept = 0, divided = 0, smoothed = 0;
    for (int j = 0; j < r.n_pairs; j++) {
        double f = unscaled(&r, j), wavelen = 2 * M_PI / f;
        if (wavelen < cfg->original / cfg->high_freq_factor) {
            CHECK_NEAR(r.inv_freq[j], f, 1e-14);
            kept++;
        } else if (wavelen > cfg->original / cfg->low_freq_factor) {
            CHECK_NEAR(r.inv_freq[j], f / cfg->factor, 1e-14);
            divided++;
        } else {
            CHECK(r.inv_freq[j] > f / cfg->factor && r.inv_freq[j] < f);
            smoothed++;
        }
        if (j) CHECK(r.inv_freq[j] < r.inv_freq[j - 1]);
    }
    CHECK(kept > 0 && divided > 0 && smoothed > 0);
    CHECK(r.attn_factor == 1);
}

static void test_yarn(arena *a) {
    const ir_rope *cfg = &find("deepseek_v2_yarn")->rope;
    ir_rope r = planned(a, cfg);
    CHECK(r.n_pairs == 32);
    double t = 0.1 * 0.707 * log(40.0) + 1;
    CHECK_NEAR(r.attn_factor, t * t, 1e-15);
    /* fast-rotating pairs stay, slow ones are interpolated by the factor, the ramp between */
    CHECK_NEAR(r.inv_freq[0], 1, 1e-15);
    CHECK_NEAR(r.inv_freq[31] * 40, unscaled(&r, 31), 1e-14);
    int kept = 0, divided = 0;
    for (int j = 0; j < r.n_pairs; j++) {
        double f = unscaled(&r, j);
        CHECK(r.inv_freq[j] <= f * (1 + 1e-15) && r.inv_freq[j] >= f / 40 * (1 - 1e-15));
        kept += fabs(r.inv_freq[j] / f - 1) < 1e-14;
        divided += fabs(r.inv_freq[j] * 40 / f - 1) < 1e-14;
        if (j) CHECK(r.inv_freq[j] < r.inv_freq[j - 1]);
    }
    CHECK(kept > 0 && divided > 0 && kept + divided < r.n_pairs);
    /* unset beta / mscale mean HF's defaults 32 / 1 / 1 */
    ir_rope def = planned(a, &find("yarn_defaults")->rope);
    ir_rope expl = find("yarn_defaults")->rope;
    expl.beta_fast = 32;
    expl.beta_slow = 1;
    expl.mscale = 1;
    ir_rope_plan(&expl, a);
    for (int j = 0; j < def.n_pairs; j++) CHECK(def.inv_freq[j] == expl.inv_freq[j]);
    CHECK(def.attn_factor == expl.attn_factor);
    t = 0.1 * log(4.0) + 1;
    CHECK_NEAR(def.attn_factor, t * t, 1e-15);
    /* factor <= 1: no temperature */
    ir_rope one = find("yarn_defaults")->rope;
    one.factor = 1;
    ir_rope_plan(&one, a);
    CHECK(one.attn_factor == 1);
}

static void test_dynamic(arena *a) {
    const rope_case *c = find("dynamic_ntk");
    ir_rope r = planned(a, &c->rope);
    double buf[64], prev[64];
    for (int j = 0; j < r.n_pairs; j++) CHECK_NEAR(r.inv_freq[j], unscaled(&r, j), 1e-14);
    ir_rope_inv_freq_at(&r, 1024, buf);
    CHECK(memcmp(buf, r.inv_freq, sizeof buf) == 0);
    ir_rope_inv_freq_at(&r, 2048, buf);
    CHECK(memcmp(buf, r.inv_freq, sizeof buf) == 0);
    memcpy(prev, r.inv_freq, sizeof prev);
    int64_t lens[] = {2049, 4096, 10000, 65536};
    for (int i = 0; i < 4; i++) {   /* the base grows with seq_k: every lower frequency shrinks */
        ir_rope_inv_freq_at(&r, lens[i], buf);
        CHECK(buf[0] == 1);
        for (int j = 1; j < 64; j++) CHECK(buf[j] < prev[j]);
        memcpy(prev, buf, sizeof prev);
    }
    /* at 2 x original with factor 2: base' = base * 3^(d/(d-2)) */
    ir_rope_inv_freq_at(&r, 4096, buf);
    double b = 10000 * pow(3.0, 128.0 / 126.0);
    for (int j = 0; j < 64; j++) CHECK_NEAR(buf[j], pow(b, -2.0 * j / 128), 1e-13);
    /* other scalings ignore seq_k; an unplanned rope is planned on the fly */
    ir_rope lin = planned(a, &find("linear")->rope);
    ir_rope_inv_freq_at(&lin, 100000, buf);
    CHECK(memcmp(buf, lin.inv_freq, sizeof buf) == 0);
    ir_rope raw = find("linear")->rope;
    ir_rope_inv_freq_at(&raw, 7, buf);
    CHECK(memcmp(buf, lin.inv_freq, sizeof buf) == 0);
}

static void test_sections(arena *a) {
    ir_rope r = planned(a, &find("mrope_qwen2vl")->rope);
    int count[3] = {0};
    for (int j = 0; j < r.n_pairs; j++) {
        CHECK(r.pair_axis[j] >= 0 && r.pair_axis[j] < 3);
        if (r.pair_axis[j] >= 0 && r.pair_axis[j] < 3) count[r.pair_axis[j]]++;
        if (j) CHECK(r.pair_axis[j] >= r.pair_axis[j - 1]);
    }
    CHECK(count[0] == 16 && count[1] == 24 && count[2] == 24);
    CHECK(r.pair_axis[15] == 0 && r.pair_axis[16] == 1 && r.pair_axis[39] == 1 && r.pair_axis[40] == 2);
    ir_rope one = planned(a, &find("llama31")->rope);
    for (int j = 0; j < one.n_pairs; j++) CHECK(one.pair_axis[j] == 0);
    /* RoPE-2D: two axes of 32 pairs each */
    ir_rope two = find("llama31")->rope;
    two.n_sections = 2;
    two.sections[0] = two.sections[1] = 32;
    ir_rope_plan(&two, a);
    CHECK(two.pair_axis[31] == 0 && two.pair_axis[32] == 1 && two.pair_axis[63] == 1);
}

static void test_pair_dims(void) {
    ir_rope half = {.layout = IR_ROPE_HALF, .dim_lo = 128, .dim_hi = 192};
    ir_rope inter = {.layout = IR_ROPE_INTERLEAVED, .dim_lo = 128, .dim_hi = 192};
    CHECK(ir_rope_pair_dim0(&half, 0) == 128 && ir_rope_pair_dim1(&half, 0) == 160);
    CHECK(ir_rope_pair_dim0(&half, 31) == 159 && ir_rope_pair_dim1(&half, 31) == 191);
    CHECK(ir_rope_pair_dim0(&inter, 0) == 128 && ir_rope_pair_dim1(&inter, 0) == 129);
    CHECK(ir_rope_pair_dim0(&inter, 31) == 190 && ir_rope_pair_dim1(&inter, 31) == 191);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--dump") == 0) return dump();
    arena a;
    arena_init(&a);
    test_default_and_linear(&a);
    test_llama3(&a);
    test_yarn(&a);
    test_dynamic(&a);
    test_sections(&a);
    test_pair_dims();
    arena_free(&a);
    return check_status("test_rope");
}
