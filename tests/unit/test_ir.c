/* IR printer, verifier, constant folding and the pass pipeline, on kernels built by hand. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "ir/ir.h"

/* ---------------------------------------------------------------- helpers */

static ir_expr *ci(arena *a, double v) { return ir_const(a, IR_T_INT, v); }
static ir_expr *cf(arena *a, double v) { return ir_const(a, IR_T_FLOAT, v); }
static ir_expr *cb(arena *a, bool v) { return ir_const(a, IR_T_BOOL, v); }
static ir_expr *var(arena *a, ir_var v) { return ir_var_ref(a, v); }
static ir_expr *bin(arena *a, ir_op op, ir_expr *x, ir_expr *y) { return ir_binary(a, op, x, y); }
static ir_expr *causal(arena *a) { return bin(a, IR_LE, var(a, IR_VAR_KV_IDX), var(a, IR_VAR_Q_IDX)); }

static char *print_to_string(const ir_kernel *k, const ir_expr *e) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (e) ir_print_expr(f, k, e);
    else ir_print_kernel(f, k);
    fclose(f);
    return buf;
}

static bool expr_prints_as(const ir_kernel *k, const ir_expr *e, const char *want) {
    char *s = print_to_string(k, e);
    bool ok = strcmp(s, want) == 0;
    if (!ok) fprintf(stderr, "  printed '%s', expected '%s'\n", s, want);
    free(s);
    return ok;
}

static ir_module *new_module(arena *a, int n) {
    ir_module *m = arena_alloc(a, sizeof *m);
    m->arena = a;
    m->kernels = arena_calloc(a, (size_t)n, sizeof *m->kernels);
    m->n_kernels = n;
    return m;
}

/* Llama-3-8B-like: GQA 32/8, d 128, llama3 rope, causal, one i32 token input. */
static ir_kernel *llama_kernel(arena *a) {
    ir_kernel *k = arena_alloc(a, sizeof *k);
    k->name = "llama";
    k->family = IR_SOFTMAX;
    k->dtype = IR_BF16;
    k->heads_q = 32;
    k->heads_kv = 8;
    k->d_qk = k->d_v = 128;
    k->scale = bin(a, IR_DIV, cf(a, 1), ir_unary(a, IR_SQRT, ci(a, 128)));
    k->rope = (ir_rope){.layout = IR_ROPE_HALF, .dim_lo = 0, .dim_hi = 128, .base = 500000,
                        .scaling = IR_SCALE_LLAMA3, .factor = 8, .original = 8192,
                        .low_freq_factor = 1, .high_freq_factor = 4};
    k->mask = causal(a);
    k->n_inputs = 1;
    k->inputs = arena_calloc(a, 1, sizeof *k->inputs);
    k->inputs[0] = (ir_input){.name = "doc", .n_axes = 1, .axes = {IR_AXIS_TOKEN}, .scalar = IR_S_I32};
    k->chunk = 64;
    return k;
}

/* Mamba2-like recurrence: decay exp(dt * A), v_scale dt, skip D. */
static ir_kernel *mamba_kernel(arena *a) {
    ir_kernel *k = arena_alloc(a, sizeof *k);
    k->name = "mamba";
    k->family = IR_RECURRENCE;
    k->heads_q = k->heads_kv = 80;
    k->groups = 1;
    k->d_qk = 128;
    k->d_v = 64;
    k->n_inputs = 3;
    k->inputs = arena_calloc(a, 3, sizeof *k->inputs);
    k->inputs[0] = (ir_input){.name = "dt", .n_axes = 2, .axes = {IR_AXIS_TOKEN, IR_AXIS_HEAD}};
    k->inputs[1] = (ir_input){.name = "A", .n_axes = 1, .axes = {IR_AXIS_HEAD}};
    k->inputs[2] = (ir_input){.name = "D", .n_axes = 1, .axes = {IR_AXIS_HEAD}};
    ir_expr *dt = ir_input_ref(a, k, 0, NULL, 0), *A = ir_input_ref(a, k, 1, NULL, 0);
    k->decay = ir_unary(a, IR_EXP, bin(a, IR_MUL, dt, A));
    k->v_scale = ir_input_ref(a, k, 0, NULL, 0);
    k->skip = ir_input_ref(a, k, 2, NULL, 0);
    k->chunk = 256;
    return k;
}

static bool verify_quiet(const ir_kernel *k, int *n_errors, bool *internal) {
    diag_sink d;
    diag_init(&d, "<test>", NULL, 0);
    bool ok = ir_verify_kernel(k, &d);
    *n_errors = d.n_errors;
    *internal = d.n_records > 0;
    for (int i = 0; i < d.n_records; i++)
        if (strncmp(d.records[i].message, "internal: ", 10) != 0) *internal = false;
    diag_free(&d);
    return ok;
}

/* ---------------------------------------------------------------- printer */

static void test_print_numbers(void) {
    arena a;
    arena_init(&a);
    CHECK(expr_prints_as(NULL, ci(&a, 5), "5"));
    CHECK(expr_prints_as(NULL, ci(&a, -12), "-12"));
    CHECK(expr_prints_as(NULL, cf(&a, 5), "5.0"));
    CHECK(expr_prints_as(NULL, cf(&a, -0.0), "-0.0"));
    CHECK(expr_prints_as(NULL, cf(&a, 0.5), "0.5"));
    CHECK(expr_prints_as(NULL, cf(&a, INFINITY), "inf"));
    CHECK(expr_prints_as(NULL, cf(&a, -INFINITY), "-inf"));
    CHECK(expr_prints_as(NULL, cf(&a, NAN), "nan"));
    CHECK(expr_prints_as(NULL, cb(&a, true), "true"));
    CHECK(expr_prints_as(NULL, cb(&a, false), "false"));
    /* every float reads back bit-exactly: random bit patterns, and typical scales */
    uint64_t s = 88172645463325252ull;
    int bad = 0;
    for (int i = 0; i < 20000; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        double v;
        uint64_t bits = s;
        memcpy(&v, &bits, sizeof v);
        if (i % 3 == 0) v = 1.0 / sqrt((double)(i + 1));
        if (!isfinite(v)) continue;
        char *p = print_to_string(NULL, cf(&a, v));
        double back = strtod(p, NULL);
        if (memcmp(&back, &v, sizeof v) != 0 || !strpbrk(p, ".e")) bad++;
        free(p);
    }
    CHECK_MSG(bad == 0, "%d floats did not round-trip", bad);
    arena_free(&a);
}

static void test_print_exprs(void) {
    arena a;
    arena_init(&a);
    ir_kernel *k = llama_kernel(&a);
    CHECK(expr_prints_as(k, causal(&a), "(le kv_idx q_idx)"));
    ir_expr *d = bin(&a, IR_SUB, var(&a, IR_VAR_Q_IDX), var(&a, IR_VAR_KV_IDX));
    CHECK(expr_prints_as(k, bin(&a, IR_LT, d, ci(&a, 4096)), "(lt (sub q_idx kv_idx) 4096)"));
    /* int + float promotes through an explicit conversion */
    CHECK(expr_prints_as(k, bin(&a, IR_ADD, var(&a, IR_VAR_SCORE), var(&a, IR_VAR_HEAD)), "(add score (float head))"));
    ir_expr *idx[1] = {var(&a, IR_VAR_KV_IDX)};
    ir_expr *doc = ir_input_ref(&a, k, 0, idx, 1);
    CHECK(expr_prints_as(k, doc, "doc[kv_idx]"));
    CHECK(expr_prints_as(k, ir_select(&a, causal(&a), cf(&a, 1), cf(&a, 2.5)), "(select (le kv_idx q_idx) 1.0 2.5)"));
    CHECK(expr_prints_as(k, ir_unary(&a, IR_NOT, cb(&a, true)), "(not true)"));
    ir_kernel *r = mamba_kernel(&a);
    CHECK(expr_prints_as(r, r->decay, "(exp (mul dt[] A[]))"));
    arena_free(&a);
}

/* Index of the line starting with prefix (after indentation), or -1. */
static int line_index(const char *text, const char *prefix) {
    int line = 0;
    const char *p = text;
    size_t n = strlen(prefix);
    while (*p) {
        const char *q = p;
        while (*q == ' ') q++;
        if (strncmp(q, prefix, n) == 0) return line;
        p = strchr(p, '\n');
        if (!p) break;
        p++;
        line++;
    }
    return -1;
}

static bool has_line(const char *text, const char *line) {
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == 0)) return true;
    return false;
}

static void test_print_kernel(void) {
    arena a;
    arena_init(&a);
    ir_module *m = new_module(&a, 1);
    ir_kernel *k = m->kernels[0] = llama_kernel(&a);
    char *before = print_to_string(k, NULL);
    CHECK(strncmp(before, "kernel llama softmax phase=prefill dtype=bf16\n", 46) == 0);
    CHECK(has_line(before, "  heads q=32 kv=8"));
    CHECK(has_line(before, "  dims qk=128 v=128"));
    CHECK(has_line(before, "  scale (div 1.0 (sqrt 128.0)) value=0.0"));
    CHECK(has_line(before, "  rope half dims=[0,128) base=500000.0"));
    CHECK(has_line(before, "    scaling llama3 factor=8.0 low=1.0 high=4.0 original=8192.0"));
    CHECK(has_line(before, "  score identity"));
    CHECK(has_line(before, "  mask (le kv_idx q_idx)"));
    CHECK(has_line(before, "  input doc[token]: i32"));
    CHECK(line_index(before, "band") < 0);
    CHECK(line_index(before, "plan ") < 0);

    diag_sink d;
    diag_init(&d, "<test>", NULL, 0);
    CHECK(ir_run_pipeline(m, &d, NULL, NULL));
    diag_free(&d);
    char *after = print_to_string(k, NULL);
    char *again = print_to_string(k, NULL);
    CHECK(strcmp(after, again) == 0);
    /* fixed field order */
    const char *order[] = {"kernel ", "heads ", "dims ", "scale ", "rope ", "scaling ", "positions ", "plan ",
                           "inv_freq[0]", "inv_freq[60]", "pair_axis ", "score ", "mask ", "band ", "input "};
    int prev = -1;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        int at = line_index(after, order[i]);
        CHECK_MSG(at > prev, "field '%s' at line %d, previous at %d", order[i], at, prev);
        prev = at;
    }
    CHECK(has_line(after, "  band lo=0 hi=inf exact"));
    CHECK(has_line(after, "    pair_axis 0*64"));
    CHECK(has_line(after, "    plan pairs=64 attn_factor=1.0"));
    /* the scale line carries the exact folded value and the fold-scale decision */
    const char *sl = strstr(after, "  scale ");
    CHECK(sl != NULL);
    if (sl) {
        const char *val = strstr(sl, "value=");
        CHECK(val != NULL && val < strchr(sl, '\n'));
        if (val) CHECK(strtod(val + 6, NULL) == 1.0 / sqrt(128.0));
        CHECK(strstr(sl, " in_q\n") == strchr(sl, '\n') - 5);
    }
    /* inv_freq lines hold the planned table to 9 digits */
    const char *f0 = strstr(after, "inv_freq[0] ");
    CHECK(f0 != NULL);
    if (f0) {
        char *end;
        double v0 = strtod(f0 + 12, &end), v1 = strtod(end, NULL);
        CHECK_NEAR(v0, k->rope.inv_freq[0], 1e-9);
        CHECK_NEAR(v1, k->rope.inv_freq[1], 1e-9);
    }
    free(before);
    free(after);
    free(again);
    arena_free(&a);
}

static void test_print_recurrence(void) {
    arena a;
    arena_init(&a);
    ir_module *m = new_module(&a, 1);
    ir_kernel *k = m->kernels[0] = mamba_kernel(&a);
    diag_sink d;
    diag_init(&d, "<test>", NULL, 0);
    CHECK(ir_run_pipeline(m, &d, NULL, NULL));
    CHECK(d.n_errors == 0);
    diag_free(&d);
    char *s = print_to_string(k, NULL);
    CHECK(strncmp(s, "kernel mamba recurrence phase=prefill dtype=f32\n", 48) == 0);
    CHECK(has_line(s, "  heads q=80 groups=1"));
    CHECK(has_line(s, "  dims qk=128 v=64"));
    CHECK(has_line(s, "  decay (exp (mul dt[] A[])) kind=token_head"));
    CHECK(has_line(s, "  log_decay (mul dt[] A[])"));
    CHECK(has_line(s, "  feature identity"));
    CHECK(has_line(s, "  normalize no"));
    CHECK(has_line(s, "  v_scale dt[]"));
    CHECK(has_line(s, "  skip D[]"));
    CHECK(has_line(s, "  chunk 256"));
    CHECK(has_line(s, "  input dt[token, head]: f32"));
    CHECK(line_index(s, "scale ") < 0 && line_index(s, "mask ") < 0 && line_index(s, "rope ") < 0);
    const char *order[] = {"heads ", "dims ", "input dt", "input D", "decay ", "log_decay ", "feature ", "normalize ",
                           "v_scale ", "skip ", "chunk "};
    int prev = 0;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        int at = line_index(s, order[i]);
        CHECK_MSG(at > prev, "field '%s' at line %d, previous at %d", order[i], at, prev);
        prev = at;
    }
    free(s);
    arena_free(&a);
}

/* ---------------------------------------------------------------- verifier */

typedef void (*mutation)(arena *a, ir_kernel *k);

static ir_expr *raw(arena *a, ir_op op, ir_type t, int n, ir_expr *x, ir_expr *y, ir_expr *z) {
    ir_expr *e = arena_alloc(a, sizeof *e);
    e->op = op;
    e->type = t;
    e->n_args = n;
    e->args[0] = x;
    e->args[1] = y;
    e->args[2] = z;
    return e;
}

static void m_mask_int(arena *a, ir_kernel *k) { k->mask = var(a, IR_VAR_Q_IDX); }
static void m_and_on_int(arena *a, ir_kernel *k) {
    k->mask = raw(a, IR_AND, IR_T_BOOL, 2, var(a, IR_VAR_Q_IDX), causal(a), NULL);
}
static void m_idiv_float(arena *a, ir_kernel *k) {
    k->mask = bin(a, IR_EQ, raw(a, IR_IDIV, IR_T_INT, 2, cf(a, 1), cf(a, 2), NULL), ci(a, 0));
}
static void m_mod_result_float(arena *a, ir_kernel *k) {
    k->mask = raw(a, IR_EQ, IR_T_BOOL, 2, raw(a, IR_MOD, IR_T_FLOAT, 2, ci(a, 1), ci(a, 2), NULL), cf(a, 0), NULL);
}
static void m_select_cond_int(arena *a, ir_kernel *k) {
    k->score_mod = raw(a, IR_SELECT, IR_T_FLOAT, 3, var(a, IR_VAR_HEAD), var(a, IR_VAR_SCORE), cf(a, 0));
}
static void m_select_branches(arena *a, ir_kernel *k) {
    k->score_mod = raw(a, IR_SELECT, IR_T_FLOAT, 3, causal(a), var(a, IR_VAR_SCORE), ci(a, 0));
}
static void m_add_mixed(arena *a, ir_kernel *k) {
    k->score_mod = raw(a, IR_ADD, IR_T_FLOAT, 2, var(a, IR_VAR_SCORE), var(a, IR_VAR_HEAD), NULL);
}
static void m_score_in_mask(arena *a, ir_kernel *k) { k->mask = bin(a, IR_LT, var(a, IR_VAR_SCORE), cf(a, 0)); }
static void m_x_in_score(arena *a, ir_kernel *k) { k->score_mod = var(a, IR_VAR_X); }
static void m_score_bool(arena *a, ir_kernel *k) { k->score_mod = causal(a); }
static void m_wrong_arity(arena *a, ir_kernel *k) {
    k->mask = raw(a, IR_LE, IR_T_BOOL, 1, var(a, IR_VAR_KV_IDX), NULL, NULL);
}
static void m_null_operand(arena *a, ir_kernel *k) {
    k->mask = raw(a, IR_LE, IR_T_BOOL, 2, var(a, IR_VAR_KV_IDX), NULL, NULL);
}
static void m_bool_const(arena *a, ir_kernel *k) { k->mask = cb(a, true); k->mask->value = 2; }
static void m_int_const(arena *a, ir_kernel *k) {
    k->mask = bin(a, IR_LT, var(a, IR_VAR_Q_IDX), ci(a, 0));
    k->mask->args[1]->value = 0.5;
}
static void m_input_range(arena *a, ir_kernel *k) {
    ir_expr *idx[1] = {var(a, IR_VAR_KV_IDX)};
    ir_expr *e = ir_input_ref(a, k, 0, idx, 1);
    e->input = 3;
    k->mask = bin(a, IR_EQ, e, ci(a, 0));
}
static void m_input_args(arena *a, ir_kernel *k) {
    k->mask = bin(a, IR_EQ, ir_input_ref(a, k, 0, NULL, 0), ci(a, 0));
}
static void m_input_index_float(arena *a, ir_kernel *k) {
    ir_expr *idx[1] = {cf(a, 1)};
    k->mask = bin(a, IR_EQ, ir_input_ref(a, k, 0, idx, 1), ci(a, 0));
}
static void m_input_in_scale(arena *a, ir_kernel *k) {
    ir_expr *idx[1] = {ci(a, 0)};
    k->scale = ir_unary(a, IR_TO_FLOAT, ir_input_ref(a, k, 0, idx, 1));
}
static void m_var_in_scale(arena *a, ir_kernel *k) { k->scale = ir_unary(a, IR_TO_FLOAT, var(a, IR_VAR_HEAD)); }
static void m_no_scale(arena *a, ir_kernel *k) { (void)a; k->scale = NULL; }
static void m_softmax_input_k_axis(arena *a, ir_kernel *k) { (void)a; k->inputs[0].axes[0] = IR_AXIS_K; }
static void m_heads(arena *a, ir_kernel *k) { (void)a; k->heads_kv = 7; }
static void m_heads_zero(arena *a, ir_kernel *k) { (void)a; k->heads_kv = 0; }
static void m_dims(arena *a, ir_kernel *k) { (void)a; k->d_qk = 0; }
static void m_rope_odd(arena *a, ir_kernel *k) { (void)a; k->rope.dim_hi = 127; }
static void m_rope_outside(arena *a, ir_kernel *k) { (void)a; k->rope.dim_lo = 64; k->rope.dim_hi = 192; }
static void m_rope_sections(arena *a, ir_kernel *k) {
    (void)a;
    k->rope.n_sections = 3;
    k->rope.sections[0] = 16; k->rope.sections[1] = 24; k->rope.sections[2] = 20;
    k->rope.explicit_positions = true;
}
static void m_rope_sections_no_positions(arena *a, ir_kernel *k) {
    (void)a;
    k->rope.n_sections = 3;
    k->rope.sections[0] = 16; k->rope.sections[1] = 24; k->rope.sections[2] = 24;
}
static void m_rope_llama_params(arena *a, ir_kernel *k) { (void)a; k->rope.high_freq_factor = 1; }
static void m_rope_base(arena *a, ir_kernel *k) { (void)a; k->rope.base = 0; }
static void m_latent(arena *a, ir_kernel *k) { (void)a; k->latent_rank = 64; k->latent_rope = 64; }
static void m_recurrence_field(arena *a, ir_kernel *k) { k->decay = cf(a, 1); }
static void m_cycle(arena *a, ir_kernel *k) {
    ir_expr *e = raw(a, IR_NOT, IR_T_BOOL, 1, NULL, NULL, NULL);
    e->args[0] = e;
    k->mask = e;
}

static void r_q_idx_in_decay(arena *a, ir_kernel *k) { k->decay = ir_unary(a, IR_TO_FLOAT, var(a, IR_VAR_Q_IDX)); }
static void r_score_in_vscale(arena *a, ir_kernel *k) { k->v_scale = var(a, IR_VAR_SCORE); }
static void r_head_in_feature(arena *a, ir_kernel *k) { k->feature = ir_unary(a, IR_TO_FLOAT, var(a, IR_VAR_HEAD)); }
static void r_input_with_index(arena *a, ir_kernel *k) {
    ir_expr *idx[2] = {var(a, IR_VAR_HEAD), var(a, IR_VAR_HEAD)};
    k->skip = ir_input_ref(a, k, 2, idx, 2);
}
static void r_chunk(arena *a, ir_kernel *k) { (void)a; k->chunk = 17; }
static void r_chunk_big(arena *a, ir_kernel *k) { (void)a; k->chunk = 2048; }
static void r_groups(arena *a, ir_kernel *k) { (void)a; k->groups = 3; }
static void r_heads_kv(arena *a, ir_kernel *k) { (void)a; k->heads_kv = 1; }
static void r_mask(arena *a, ir_kernel *k) { k->mask = causal(a); }
static void r_rope(arena *a, ir_kernel *k) {
    (void)a;
    k->rope.layout = IR_ROPE_HALF;
    k->rope.dim_hi = 64;
    k->rope.base = 10000;
}
static void r_decay_bool(arena *a, ir_kernel *k) { k->decay = cb(a, true); }

static void test_verify(void) {
    static const struct { const char *name; mutation fn; } softmax_cases[] = {
        {"mask int", m_mask_int}, {"and on int", m_and_on_int}, {"idiv on floats", m_idiv_float},
        {"mod typed float", m_mod_result_float}, {"select cond int", m_select_cond_int},
        {"select branch types", m_select_branches}, {"add int+float", m_add_mixed},
        {"score in mask", m_score_in_mask}, {"x in score", m_x_in_score}, {"score bool", m_score_bool},
        {"arity", m_wrong_arity}, {"null operand", m_null_operand}, {"bool const 2", m_bool_const},
        {"int const 0.5", m_int_const}, {"input out of range", m_input_range}, {"input arg count", m_input_args},
        {"input index float", m_input_index_float}, {"input in scale", m_input_in_scale},
        {"var in scale", m_var_in_scale}, {"no scale", m_no_scale}, {"k axis in softmax", m_softmax_input_k_axis},
        {"heads 32/7", m_heads}, {"heads kv 0", m_heads_zero}, {"d_qk 0", m_dims}, {"rope odd", m_rope_odd},
        {"rope outside", m_rope_outside}, {"sections sum", m_rope_sections},
        {"sections without positions", m_rope_sections_no_positions}, {"llama3 high<=low", m_rope_llama_params},
        {"rope base 0", m_rope_base}, {"latent dims", m_latent}, {"decay in softmax", m_recurrence_field},
        {"cycle", m_cycle},
    };
    static const struct { const char *name; mutation fn; } rec_cases[] = {
        {"q_idx in decay", r_q_idx_in_decay}, {"score in v_scale", r_score_in_vscale},
        {"head in feature", r_head_in_feature}, {"recurrence input indexed", r_input_with_index},
        {"chunk 17", r_chunk}, {"chunk 2048", r_chunk_big}, {"groups 3", r_groups}, {"heads_kv", r_heads_kv},
        {"mask in recurrence", r_mask}, {"rope in recurrence", r_rope}, {"decay bool", r_decay_bool},
    };
    arena a;
    arena_init(&a);
    int n;
    bool internal;
    CHECK(verify_quiet(llama_kernel(&a), &n, &internal) && n == 0);
    CHECK(verify_quiet(mamba_kernel(&a), &n, &internal) && n == 0);
    for (size_t i = 0; i < sizeof softmax_cases / sizeof softmax_cases[0]; i++) {
        ir_kernel *k = llama_kernel(&a);
        softmax_cases[i].fn(&a, k);
        bool ok = verify_quiet(k, &n, &internal);
        CHECK_MSG(!ok && n > 0 && internal, "softmax mutation '%s': ok=%d errors=%d", softmax_cases[i].name, ok, n);
    }
    for (size_t i = 0; i < sizeof rec_cases / sizeof rec_cases[0]; i++) {
        ir_kernel *k = mamba_kernel(&a);
        rec_cases[i].fn(&a, k);
        bool ok = verify_quiet(k, &n, &internal);
        CHECK_MSG(!ok && n > 0 && internal, "recurrence mutation '%s': ok=%d errors=%d", rec_cases[i].name, ok, n);
    }
    /* legal variations stay legal */
    ir_kernel *k = llama_kernel(&a);
    ir_expr *idx[1] = {var(&a, IR_VAR_Q_IDX)}, *idx2[1] = {var(&a, IR_VAR_KV_IDX)};
    k->mask = bin(&a, IR_AND, causal(&a), bin(&a, IR_EQ, ir_input_ref(&a, k, 0, idx, 1), ir_input_ref(&a, k, 0, idx2, 1)));
    k->score_mod = bin(&a, IR_MUL, cf(&a, 50),
                       ir_unary(&a, IR_TANH, bin(&a, IR_DIV, var(&a, IR_VAR_SCORE), cf(&a, 50))));
    CHECK(verify_quiet(k, &n, &internal) && n == 0);
    k = llama_kernel(&a);
    k->rope.n_sections = 3;
    k->rope.sections[0] = 16; k->rope.sections[1] = 24; k->rope.sections[2] = 24;
    k->rope.explicit_positions = true;
    k->latent_rank = 0;
    CHECK(verify_quiet(k, &n, &internal) && n == 0);
    k = llama_kernel(&a);   /* MLA absorbed: qk = 512 + 64, v = first 512 dims of k */
    k->d_qk = 576; k->d_v = 512; k->latent_rank = 512; k->latent_rope = 64; k->v_in_k = true;
    k->heads_kv = 1;
    k->rope.dim_lo = 512; k->rope.dim_hi = 576;
    CHECK(verify_quiet(k, &n, &internal) && n == 0);
    arena_free(&a);
}

/* ---------------------------------------------------------------- folding */

static int64_t ref_floor_div(int64_t a, int64_t b) { return (int64_t)floor((double)a / (double)b); }

static void test_fold_arith(void) {
    arena a;
    arena_init(&a);
    ir_expr *s = ir_fold(&a, bin(&a, IR_DIV, cf(&a, 1), ir_unary(&a, IR_SQRT, ci(&a, 128))));
    CHECK(s->op == IR_CONST && s->type == IR_T_FLOAT && s->value == 1.0 / sqrt(128.0));
    /* floor division and remainder with the divisor's sign, against double floor */
    int bad = 0;
    for (int x = -23; x <= 23; x++)
        for (int y = -7; y <= 7; y++) {
            ir_expr *q = ir_fold(&a, bin(&a, IR_IDIV, ci(&a, x), ci(&a, y)));
            ir_expr *r = ir_fold(&a, bin(&a, IR_MOD, ci(&a, x), ci(&a, y)));
            if (y == 0) {   /* left for run time, which reports it */
                if (q->op == IR_CONST || r->op == IR_CONST) bad++;
                continue;
            }
            int64_t fq = ref_floor_div(x, y), fr = x - y * fq;
            if (q->op != IR_CONST || q->type != IR_T_INT || q->value != (double)fq) bad++;
            if (r->op != IR_CONST || r->value != (double)fr || (fr != 0 && (fr < 0) != (y < 0))) bad++;
        }
    CHECK_MSG(bad == 0, "%d idiv/mod folds wrong", bad);
    /* alibi slope with a constant head: 2^(-8 (h+1) / 32) */
    for (int h = 0; h < 32; h++) {
        ir_expr *ex = bin(&a, IR_DIV, bin(&a, IR_MUL, ci(&a, -8), bin(&a, IR_ADD, ci(&a, h), ci(&a, 1))), ci(&a, 32));
        ir_expr *e = ir_fold(&a, bin(&a, IR_POW, ci(&a, 2), ex));
        CHECK(e->op == IR_CONST && e->value == pow(2.0, -8.0 * (h + 1) / 32.0));
    }
    ir_expr *p = ir_fold(&a, bin(&a, IR_POW, cf(&a, 2), cf(&a, -5)));
    CHECK(p->op == IR_CONST && p->value == 1.0 / 32);
    /* ints that would leave the exact range stay unfolded */
    ir_expr *big = ir_fold(&a, bin(&a, IR_MUL, ci(&a, 9007199254740992.0), ci(&a, 3)));
    CHECK(big->op == IR_MUL);
    /* transcendental and comparison folds agree with libm / IEEE */
    ir_expr *ex = ir_fold(&a, ir_unary(&a, IR_EXP, cf(&a, 0.75)));
    CHECK(ex->op == IR_CONST && ex->value == exp(0.75));
    ir_expr *cmp = ir_fold(&a, bin(&a, IR_LT, ci(&a, 3), ci(&a, 4)));
    CHECK(cmp->op == IR_CONST && cmp->type == IR_T_BOOL && cmp->value == 1);
    ir_expr *nan_lt = ir_fold(&a, bin(&a, IR_LT, cf(&a, NAN), cf(&a, 1)));
    CHECK(nan_lt->op == IR_CONST && nan_lt->value == 0);
    ir_expr *nan_ne = ir_fold(&a, bin(&a, IR_NE, cf(&a, NAN), cf(&a, NAN)));
    CHECK(nan_ne->op == IR_CONST && nan_ne->value == 1);
    ir_expr *mn = ir_fold(&a, bin(&a, IR_MIN, cf(&a, NAN), cf(&a, 1)));
    CHECK(mn->op == IR_MIN);
    ir_expr *mx = ir_fold(&a, bin(&a, IR_MAX, ci(&a, -3), ci(&a, 2)));
    CHECK(mx->op == IR_CONST && mx->value == 2 && mx->type == IR_T_INT);
    ir_expr *neg = ir_fold(&a, ir_unary(&a, IR_NEG, cf(&a, 0)));
    CHECK(neg->op == IR_CONST && neg->value == 0 && signbit(neg->value));
    ir_expr *tf = ir_fold(&a, ir_unary(&a, IR_FLOOR, ir_unary(&a, IR_TO_FLOAT, bin(&a, IR_ADD, ci(&a, 2), ci(&a, 3)))));
    CHECK(tf->op == IR_CONST && tf->type == IR_T_FLOAT && tf->value == 5);
    arena_free(&a);
}

static void test_fold_identities(void) {
    arena a;
    arena_init(&a);
    ir_expr *sc = var(&a, IR_VAR_SCORE), *q = var(&a, IR_VAR_Q_IDX), *m = causal(&a);
    CHECK(ir_fold(&a, bin(&a, IR_MUL, sc, cf(&a, 1))) == sc);
    CHECK(ir_fold(&a, bin(&a, IR_MUL, cf(&a, 1), sc)) == sc);
    CHECK(ir_fold(&a, bin(&a, IR_MUL, sc, cf(&a, 0)))->op == IR_MUL);     /* inf * 0 is nan */
    ir_expr *qz = ir_fold(&a, bin(&a, IR_MUL, q, ci(&a, 0)));
    CHECK(qz->op == IR_CONST && qz->value == 0 && qz->type == IR_T_INT);
    CHECK(ir_fold(&a, bin(&a, IR_ADD, q, ci(&a, 0))) == q);
    CHECK(ir_fold(&a, bin(&a, IR_ADD, ci(&a, 0), q)) == q);
    CHECK(ir_fold(&a, bin(&a, IR_ADD, sc, cf(&a, 0)))->op == IR_ADD);     /* -0 + 0 = +0 */
    CHECK(ir_fold(&a, bin(&a, IR_ADD, sc, cf(&a, -0.0))) == sc);
    CHECK(ir_fold(&a, bin(&a, IR_SUB, sc, cf(&a, 0))) == sc);
    CHECK(ir_fold(&a, bin(&a, IR_SUB, sc, cf(&a, -0.0)))->op == IR_SUB);
    CHECK(ir_fold(&a, bin(&a, IR_DIV, sc, cf(&a, 1))) == sc);
    CHECK(ir_fold(&a, bin(&a, IR_AND, cb(&a, true), m)) == m);
    CHECK(ir_fold(&a, bin(&a, IR_AND, m, cb(&a, true))) == m);
    ir_expr *f = ir_fold(&a, bin(&a, IR_AND, m, cb(&a, false)));
    CHECK(f->op == IR_CONST && f->value == 0);
    CHECK(ir_fold(&a, bin(&a, IR_OR, cb(&a, false), m)) == m);
    ir_expr *t = ir_fold(&a, bin(&a, IR_OR, m, cb(&a, true)));
    CHECK(t->op == IR_CONST && t->value == 1);
    ir_expr *x = var(&a, IR_VAR_SCORE), *y = cf(&a, 2);
    CHECK(ir_fold(&a, ir_select(&a, cb(&a, true), x, y)) == x);
    CHECK(ir_fold(&a, ir_select(&a, cb(&a, false), x, y)) == y);
    /* a condition that folds to a constant selects too */
    CHECK(ir_fold(&a, ir_select(&a, bin(&a, IR_LT, ci(&a, 1), ci(&a, 2)), x, y)) == x);
    CHECK(ir_fold(&a, ir_unary(&a, IR_NOT, ir_unary(&a, IR_NOT, m))) == m);
    ir_expr *nt = ir_fold(&a, ir_unary(&a, IR_NOT, bin(&a, IR_LT, ci(&a, 1), ci(&a, 2))));
    CHECK(nt->op == IR_CONST && nt->value == 0);
    arena_free(&a);
}

static void test_fold_sharing(void) {
    arena a;
    arena_init(&a);
    /* shared = (add 1 2), used by two parents; folding one parent must not change it */
    ir_expr *shared = bin(&a, IR_ADD, ci(&a, 1), ci(&a, 2));
    ir_expr *p1 = bin(&a, IR_LT, var(&a, IR_VAR_Q_IDX), shared);
    ir_expr *p2 = bin(&a, IR_GT, var(&a, IR_VAR_KV_IDX), shared);
    ir_expr *f1 = ir_fold(&a, p1);
    CHECK(f1 != p1 && f1->op == IR_LT && f1->args[1]->op == IR_CONST && f1->args[1]->value == 3);
    CHECK(p1->args[1] == shared && shared->op == IR_ADD && shared->args[0]->value == 1);
    CHECK(p2->args[1] == shared);
    CHECK(expr_prints_as(NULL, p2, "(gt kv_idx (add 1 2))"));
    /* nothing to fold: the same node comes back; folding is idempotent */
    ir_expr *m = causal(&a);
    CHECK(ir_fold(&a, m) == m);
    CHECK(ir_fold(&a, f1) == f1);
    arena_free(&a);
}

/* ---------------------------------------------------------------- pipeline */

static void test_pass_list(void) {
    int n = 0;
    const ir_pass *p = ir_pass_list(&n);
    const char *want[] = {"verify", "fold-constants", "plan-rope", "fold-scale", "analyze-mask", "classify-decay", "verify"};
    CHECK(n == 7);
    for (int i = 0; i < n && i < 7; i++) {
        CHECK(strcmp(p[i].name, want[i]) == 0);
        CHECK(p[i].summary && p[i].summary[0] && p[i].run);
    }
}

static ir_kernel *yarn_kernel(arena *a) {
    ir_kernel *k = llama_kernel(a);
    k->name = "deepseek";
    k->heads_q = k->heads_kv = 128;
    k->d_qk = 192;
    k->scale = bin(a, IR_DIV, cf(a, 1), ir_unary(a, IR_SQRT, ci(a, 192)));
    k->rope = (ir_rope){.layout = IR_ROPE_INTERLEAVED, .dim_lo = 128, .dim_hi = 192, .base = 10000,
                        .scaling = IR_SCALE_YARN, .factor = 40, .original = 4096, .beta_fast = 32,
                        .beta_slow = 1, .mscale = 0.707};
    return k;
}

static void test_pipeline_scale(void) {
    arena a;
    arena_init(&a);
    ir_module *m = new_module(&a, 2);
    ir_kernel *y = m->kernels[0] = yarn_kernel(&a);
    ir_kernel *l = m->kernels[1] = llama_kernel(&a);
    diag_sink d;
    diag_init(&d, "<test>", NULL, 0);
    CHECK(ir_run_pipeline(m, &d, NULL, NULL));
    double t = 0.1 * 0.707 * log(40.0) + 1;
    CHECK(y->rope.planned && y->scale_in_q);
    CHECK_NEAR(y->rope.attn_factor, t * t, 1e-15);
    CHECK(y->scale_value == y->scale->value * y->rope.attn_factor);
    CHECK(y->scale->op == IR_CONST && y->scale->value == 1.0 / sqrt(192.0));
    CHECK(l->scale_value == 1.0 / sqrt(128.0));
    /* a second run applies the factor no second time */
    double before = y->scale_value;
    double *table = y->rope.inv_freq;
    CHECK(ir_run_pipeline(m, &d, NULL, NULL));
    CHECK(y->scale_value == before && y->rope.inv_freq == table);
    CHECK(d.n_errors == 0);
    diag_free(&d);
    arena_free(&a);
}

static ir_mask_band band_of_mask(arena *a, ir_expr *mask) {
    ir_module *m = new_module(a, 1);
    ir_kernel *k = m->kernels[0] = llama_kernel(a);
    k->mask = mask;
    diag_sink d;
    diag_init(&d, "<test>", NULL, 0);
    bool ok = ir_run_pipeline(m, &d, NULL, NULL);
    CHECK(ok && d.n_errors == 0);
    diag_free(&d);
    return k->band;
}

static void test_pipeline_band(void) {
    arena a;
    arena_init(&a);
    ir_expr *q = var(&a, IR_VAR_Q_IDX), *kv = var(&a, IR_VAR_KV_IDX);
    ir_expr *d = bin(&a, IR_SUB, q, kv);
    ir_mask_band b = band_of_mask(&a, causal(&a));
    CHECK(b.has_band && b.band_exact && b.band_lo == 0 && b.band_hi == INT64_MAX);
    b = band_of_mask(&a, bin(&a, IR_AND, causal(&a), bin(&a, IR_LT, d, ci(&a, 4096))));
    CHECK(b.has_band && b.band_exact && b.band_lo == 0 && b.band_hi == 4095);
    /* kv_idx > q_idx - W, written with the window folded from constants */
    b = band_of_mask(&a, bin(&a, IR_AND, bin(&a, IR_GE, q, kv),
                             bin(&a, IR_GT, kv, bin(&a, IR_SUB, q, bin(&a, IR_MUL, ci(&a, 2), ci(&a, 64))))));
    CHECK(b.has_band && b.band_exact && b.band_lo == 0 && b.band_hi == 127);
    ir_expr *idx[1] = {q}, *idx2[1] = {kv};
    ir_kernel *lk = llama_kernel(&a);
    ir_expr *same_doc = bin(&a, IR_EQ, ir_input_ref(&a, lk, 0, idx, 1), ir_input_ref(&a, lk, 0, idx2, 1));
    b = band_of_mask(&a, bin(&a, IR_AND, causal(&a), same_doc));
    CHECK(b.has_band && !b.band_exact && b.band_lo == 0 && b.band_hi == INT64_MAX);
    b = band_of_mask(&a, bin(&a, IR_LE, kv, bin(&a, IR_SUB, q, var(&a, IR_VAR_HEAD))));
    CHECK(!b.has_band && !b.band_exact);
    b = band_of_mask(&a, NULL);
    CHECK(!b.has_band);
    b = band_of_mask(&a, bin(&a, IR_AND, bin(&a, IR_GT, d, ci(&a, 5)), bin(&a, IR_LT, d, ci(&a, 3))));
    CHECK(b.has_band && b.band_exact && b.band_lo > b.band_hi);
    arena_free(&a);
}

static void test_pipeline_decay(void) {
    arena a;
    arena_init(&a);
    ir_module *m = new_module(&a, 5);
    ir_kernel *mamba = m->kernels[0] = mamba_kernel(&a);
    ir_kernel *lin = m->kernels[1] = mamba_kernel(&a);
    lin->name = "linear";
    lin->decay = NULL;
    lin->feature = bin(&a, IR_ADD, ir_unary(&a, IR_EXP, var(&a, IR_VAR_X)), cf(&a, 1));
    ir_kernel *retnet = m->kernels[2] = mamba_kernel(&a);
    retnet->name = "retnet";   /* 1 - 2^(-5 - head) */
    retnet->decay = bin(&a, IR_SUB, cf(&a, 1), bin(&a, IR_POW, cf(&a, 2),
                        bin(&a, IR_SUB, ci(&a, -5), var(&a, IR_VAR_HEAD))));
    ir_kernel *gla = m->kernels[3] = mamba_kernel(&a);
    gla->name = "gla";
    gla->inputs[1].axes[1] = IR_AXIS_K;    /* A[head, k] */
    gla->inputs[1].axes[0] = IR_AXIS_HEAD;
    gla->inputs[1].n_axes = 2;
    ir_kernel *s4 = m->kernels[4] = mamba_kernel(&a);
    s4->name = "s4d";
    s4->inputs[1].axes[1] = IR_AXIS_K;
    s4->inputs[1].axes[2] = IR_AXIS_V;
    s4->inputs[1].n_axes = 3;
    diag_sink d;
    diag_init(&d, "<test>", NULL, 0);
    CHECK(ir_run_pipeline(m, &d, NULL, NULL));
    CHECK(d.n_errors == 0);
    diag_free(&d);
    CHECK(mamba->decay_kind == IR_DECAY_TOKEN_HEAD);
    CHECK(mamba->log_decay == mamba->decay->args[0] && mamba->log_decay->op == IR_MUL);
    CHECK(lin->decay_kind == IR_DECAY_NONE && lin->log_decay == NULL);
    CHECK(retnet->decay_kind == IR_DECAY_HEAD && retnet->log_decay == NULL);
    CHECK(gla->decay_kind == IR_DECAY_KEY_VECTOR);
    CHECK(s4->decay_kind == IR_DECAY_STATE);
    CHECK(!mamba->scale_in_q);
    arena_free(&a);
}

static int count(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p++) n++;
    return n;
}

static void test_pipeline_dump(void) {
    arena a;
    arena_init(&a);
    ir_module *m = new_module(&a, 2);
    m->kernels[0] = llama_kernel(&a);
    m->kernels[1] = mamba_kernel(&a);
    diag_sink d;
    diag_init(&d, "<test>", NULL, 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(ir_run_pipeline(m, &d, "plan-rope", f));
    fclose(f);
    CHECK(strncmp(buf, "# after plan-rope\nkernel llama softmax", 38) == 0);
    CHECK(count(buf, "# after ") == 1 && count(buf, "\nkernel mamba recurrence") == 1);
    /* after plan-rope, before fold-scale: planned, not yet in q */
    CHECK(strstr(buf, "plan pairs=64") && !strstr(buf, " in_q"));
    free(buf);

    ir_module *m2 = new_module(&a, 1);
    m2->kernels[0] = llama_kernel(&a);
    f = open_memstream(&buf, &len);
    CHECK(ir_run_pipeline(m2, &d, "all", f));
    fclose(f);
    const char *want[] = {"# after verify\n", "# after fold-constants\n", "# after plan-rope\n", "# after fold-scale\n",
                          "# after analyze-mask\n", "# after classify-decay\n", "# after verify\n"};
    const char *p = buf;
    for (int i = 0; i < 7; i++) {
        const char *at = strstr(p, want[i]);
        CHECK_MSG(at != NULL, "missing %s", want[i]);
        if (at) p = at + 1;
    }
    CHECK(count(buf, "# after ") == 7);
    CHECK(d.n_errors == 0);
    free(buf);

    f = open_memstream(&buf, &len);
    CHECK(!ir_run_pipeline(m2, &d, "fold-everything", f));
    fclose(f);
    CHECK(d.n_errors == 1 && strstr(d.records[0].message, "fold-everything"));
    CHECK(len == 0);
    free(buf);
    diag_free(&d);
    arena_free(&a);
}

static void test_pipeline_errors(void) {
    arena a;
    arena_init(&a);
    ir_module *m = new_module(&a, 2);
    m->kernels[0] = llama_kernel(&a);
    m->kernels[0]->heads_kv = 5;
    m->kernels[1] = llama_kernel(&a);
    m->kernels[1]->d_v = -1;
    diag_sink d;
    diag_init(&d, "<test>", NULL, 0);
    CHECK(!ir_run_pipeline(m, &d, NULL, NULL));
    CHECK(d.n_errors == 2);   /* both kernels reported by the first verify */
    CHECK(!m->kernels[0]->rope.planned && m->kernels[0]->scale_value == 0);
    diag_free(&d);
    arena_free(&a);
}

int main(void) {
    test_print_numbers();
    test_print_exprs();
    test_print_kernel();
    test_print_recurrence();
    test_verify();
    test_fold_arith();
    test_fold_identities();
    test_fold_sharing();
    test_pass_list();
    test_pipeline_scale();
    test_pipeline_band();
    test_pipeline_decay();
    test_pipeline_dump();
    test_pipeline_errors();
    return check_status("test_ir");
}
