/* The checker: README/dsl-sketch kernels lower to the IR fields they mean (checked by
 * value, expressions by evaluation at sample points), wrong specs give the messages they
 * should, and random ASTs never crash it nor slip an unverifiable kernel through. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "frontend/frontend.h"

/* ---------------------------------------------------------------- helpers */

typedef struct compiled {
    arena a;
    diag_sink d;
    ir_module *m;
    char *messages;        /* diag_print output */
} compiled;

static void compile(compiled *c, const char *src) {
    arena_init(&c->a);
    diag_init(&c->d, "t.attn", src, strlen(src));
    c->m = frontend_compile(src, strlen(src), &c->a, &c->d);
    diag_sort(&c->d);
    size_t len = 0;
    FILE *f = open_memstream(&c->messages, &len);
    diag_print(&c->d, f);
    fclose(f);
}

static void release(compiled *c) {
    free(c->messages);
    diag_free(&c->d);
    arena_free(&c->a);
}

/* Compiles src, expects no error, returns kernel `name` (NULL after a failed CHECK). */
static ir_kernel *good(compiled *c, const char *src, const char *name) {
    compile(c, src);
    CHECK_MSG(c->d.n_errors == 0, "unexpected errors:\n%s", c->messages);
    ir_kernel *k = ir_module_find(c->m, name);
    CHECK_MSG(k != NULL, "kernel %s missing", name);
    if (k) {
        diag_sink vd;
        diag_init(&vd, "t.attn", src, strlen(src));
        CHECK_MSG(ir_verify_kernel(k, &vd), "kernel %s does not verify", name);
        diag_free(&vd);
    }
    return k;
}

/* Expects an error whose text contains `want`. */
static void bad(const char *src, const char *want) {
    compiled c;
    compile(&c, src);
    CHECK_MSG(c.d.n_errors > 0, "no error for:\n%s", src);
    CHECK_MSG(strstr(c.messages, want) != NULL, "expected '%s' in:\n%s", want, c.messages);
    release(&c);
}

/* A small independent evaluator (no inputs), so these tests do not lean on the interpreter. */
static double ev(const ir_expr *e, const double *var) {
    double x = e->n_args > 0 ? ev(e->args[0], var) : 0, y = e->n_args > 1 ? ev(e->args[1], var) : 0;
    switch (e->op) {
    case IR_CONST: return e->value;
    case IR_VAR: return var[e->var];
    case IR_NEG: return -x;
    case IR_NOT: return !x;
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
    case IR_IDIV: return floor(x / y);
    case IR_MOD: return x - y * floor(x / y);
    case IR_POW: return pow(x, y);
    case IR_MIN: return x < y ? x : y;
    case IR_MAX: return x > y ? x : y;
    case IR_LT: return x < y;
    case IR_LE: return x <= y;
    case IR_GT: return x > y;
    case IR_GE: return x >= y;
    case IR_EQ: return x == y;
    case IR_NE: return x != y;
    case IR_AND: return x && y;
    case IR_OR: return x || y;
    case IR_SELECT: return x ? y : ev(e->args[2], var);
    default: return NAN;
    }
}

static double ev_at(const ir_expr *e, double q_idx, double kv_idx, double head, double score) {
    double var[IR_VAR_COUNT] = {0};
    var[IR_VAR_Q_IDX] = q_idx;
    var[IR_VAR_KV_IDX] = kv_idx;
    var[IR_VAR_HEAD] = head;
    var[IR_VAR_SCORE] = score;
    var[IR_VAR_X] = score;
    return ev(e, var);
}

static bool reads_input_bare(const ir_expr *e, int input) {
    if (!e) return false;
    if (e->op == IR_INPUT && e->input == input) return e->n_args == 0;
    for (int i = 0; i < e->n_args; i++)
        if (reads_input_bare(e->args[i], input)) return true;
    return false;
}

/* ---------------------------------------------------------------- softmax kernels */

static void test_llama3(void) {
    compiled c;
    ir_kernel *k = good(&c,
        "# Llama-3-8B\n"
        "kernel llama3_8b {\n"
        "    heads   q = 32, kv = 8\n"
        "    dims    qk = 128, v = 128\n"
        "    dtype   bf16\n"
        "    rope    half, base = 500000,\n"
        "            scaling = llama3(factor = 8, low = 1, high = 4, original = 8192)\n"
        "    mask    causal\n"
        "}\n", "llama3_8b");
    if (k) {
        CHECK(k->family == IR_SOFTMAX && k->phase == IR_PREFILL && k->dtype == IR_BF16);
        CHECK(k->heads_q == 32 && k->heads_kv == 8);
        CHECK(k->d_qk == 128 && k->d_v == 128 && !k->v_in_k);
        CHECK_NEAR(k->scale_value, 1 / sqrt(128.0), 1e-15);
        CHECK(k->scale && k->scale->op == IR_CONST && k->scale->type == IR_T_FLOAT);
        CHECK(k->rope.layout == IR_ROPE_HALF && k->rope.dim_lo == 0 && k->rope.dim_hi == 128);
        CHECK(k->rope.base == 500000 && k->rope.scaling == IR_SCALE_LLAMA3);
        CHECK(k->rope.factor == 8 && k->rope.low_freq_factor == 1 && k->rope.high_freq_factor == 4);
        CHECK(k->rope.original == 8192 && k->rope.n_sections == 0 && !k->rope.explicit_positions);
        CHECK(k->score_mod == NULL && k->mask && k->mask->type == IR_T_BOOL);
        CHECK(ev_at(k->mask, 5, 5, 0, 0) == 1 && ev_at(k->mask, 5, 6, 0, 0) == 0 && ev_at(k->mask, 5, 0, 0, 0) == 1);
    }
    release(&c);
}

static void test_gemma_and_defaults(void) {
    compiled c;
    ir_kernel *k = good(&c,
        "kernel gemma2_9b_local {\n"
        "    heads   q = 16, kv = 8\n"
        "    dims    qk = 256, v = 256\n"
        "    scale   1 / sqrt(256)\n"
        "    rope    half\n"
        "    score   50 * tanh(score / 50)\n"
        "    mask    causal && q_idx - kv_idx < 4096\n"
        "}\n", "gemma2_9b_local");
    if (k) {
        CHECK_NEAR(k->scale_value, 1.0 / 16, 1e-15);
        CHECK(k->rope.base == 10000 && k->rope.scaling == IR_SCALE_NONE && k->rope.dim_hi == 256);
        CHECK(k->score_mod && k->score_mod->type == IR_T_FLOAT);
        CHECK_NEAR(ev_at(k->score_mod, 0, 0, 0, 100), 50 * tanh(2.0), 1e-12);
        CHECK(ev_at(k->mask, 5000, 905, 0, 0) == 1 && ev_at(k->mask, 5000, 904, 0, 0) == 0);
    }
    release(&c);
    /* kv defaults to q; a single dims number is both; constant expressions; kv = q */
    k = good(&c, "kernel a {\n heads q = 4 * 2\n dims 32 * 2\n}\nkernel b {\n heads q = 6, kv = q\n dims qk = 64, v = 32\n}\n", "a");
    if (k) {
        CHECK(k->heads_q == 8 && k->heads_kv == 8 && k->d_qk == 64 && k->d_v == 64);
        CHECK_NEAR(k->scale_value, 0.125, 1e-15);
        CHECK(k->dtype == IR_F32 && k->rope.layout == IR_ROPE_NONE && !k->mask && !k->score_mod);
    }
    ir_kernel *b = ir_module_find(c.m, "b");
    CHECK(b && b->heads_q == 6 && b->heads_kv == 6 && b->d_v == 32);
    release(&c);
}

static void test_partial_rope_and_sections(void) {
    compiled c;
    ir_kernel *k = good(&c, "kernel neox {\n heads q = 64, kv = 64\n dims qk = 96, v = 96\n rope half, dims = [0, 24)\n mask causal\n}\n", "neox");
    if (k) CHECK(k->rope.dim_lo == 0 && k->rope.dim_hi == 24 && k->rope.layout == IR_ROPE_HALF);
    release(&c);
    k = good(&c, "kernel qwen {\n heads q = 28, kv = 4\n dims 128\n rope half, base = 1000000, sections = [16, 24, 24]\n}\n", "qwen");
    if (k) {
        CHECK(k->rope.n_sections == 3 && k->rope.sections[0] == 16 && k->rope.sections[1] == 24 && k->rope.sections[2] == 24);
        CHECK(k->rope.explicit_positions && k->rope.base == 1e6);
    }
    release(&c);
    k = good(&c, "kernel gptj {\n heads q = 16\n dims 256\n rope interleaved, dims = [0, 64), positions\n}\n", "gptj");
    if (k) CHECK(k->rope.layout == IR_ROPE_INTERLEAVED && k->rope.explicit_positions && k->rope.dim_hi == 64);
    release(&c);
    k = good(&c, "kernel rr {\n heads q = 32\n dims 128\n rope half, rerope(window = 512, leak = 16)\n mask causal\n}\n", "rr");
    if (k) CHECK(k->rope.rerope_window == 512 && k->rope.rerope_leak == 16);
    release(&c);
    k = good(&c, "kernel rr {\n heads q = 32\n dims 128\n rope half, rerope(256)\n}\n", "rr");
    if (k) CHECK(k->rope.rerope_window == 256 && k->rope.rerope_leak == 0);
    release(&c);
    /* positional scaling arguments, in order, and the yarn defaults */
    k = good(&c, "kernel y {\n heads q = 8\n dims 64\n rope half, scaling = yarn(4, 2048)\n}\n", "y");
    if (k) {
        CHECK(k->rope.scaling == IR_SCALE_YARN && k->rope.factor == 4 && k->rope.original == 2048);
        CHECK(k->rope.beta_fast == 32 && k->rope.beta_slow == 1 && k->rope.mscale == 1);
    }
    release(&c);
    k = good(&c, "kernel y {\n heads q = 8\n dims 64\n rope half, scaling = dynamic_ntk(factor = 2, original = 4096)\n}\n", "y");
    if (k) CHECK(k->rope.scaling == IR_SCALE_DYNAMIC_NTK && k->rope.factor == 2 && k->rope.original == 4096);
    release(&c);
}

static void test_mla(void) {
    compiled c;
    ir_kernel *k = good(&c,
        "kernel deepseek_v2_decode {\n"
        "    heads   q = 128, kv = 1\n"
        "    latent  rank = 512, rope = 64\n"
        "    rope    half, dims = [512, 576), base = 10000,\n"
        "            scaling = yarn(factor = 40, original = 4096, beta_fast = 32, beta_slow = 1, mscale = 0.707)\n"
        "    scale   1 / sqrt(192)\n"
        "    phase   decode\n"
        "}\n", "deepseek_v2_decode");
    if (k) {
        CHECK(k->heads_q == 128 && k->heads_kv == 1 && k->phase == IR_DECODE);
        CHECK(k->latent_rank == 512 && k->latent_rope == 64 && k->v_in_k);
        CHECK(k->d_qk == 576 && k->d_v == 512);
        CHECK_NEAR(k->scale_value, 1 / sqrt(192.0), 1e-15);
        CHECK(k->rope.dim_lo == 512 && k->rope.dim_hi == 576 && k->rope.scaling == IR_SCALE_YARN);
        CHECK(k->rope.factor == 40 && k->rope.original == 4096 && k->rope.mscale == 0.707);
        CHECK(k->rope.beta_fast == 32 && k->rope.beta_slow == 1);
    }
    release(&c);
    /* default rotary dims with latent: the rope part; dims that agree are accepted */
    k = good(&c, "kernel m {\n heads q = 16, kv = 1\n dims qk = 576, v = 512\n latent rank = 512, rope = 64\n rope interleaved\n scale 0.1\n}\n", "m");
    if (k) CHECK(k->rope.dim_lo == 512 && k->rope.dim_hi == 576 && k->v_in_k);
    release(&c);
}

static void test_score_builtins(void) {
    compiled c;
    ir_kernel *k = good(&c,
        "kernel bloom_alibi {\n heads q = 32, kv = 32\n dims 128\n"
        " score score + alibi_slope(head) * (kv_idx - q_idx)\n mask causal\n}\n", "bloom_alibi");
    if (k) {
        double slope = pow(2, -8.0 * 3 / 32);   /* head 2 */
        CHECK_NEAR(ev_at(k->score_mod, 10, 4, 2, 1.5), 1.5 + slope * (4 - 10), 1e-12);
    }
    release(&c);
    k = good(&c,
        "kernel f {\n heads q = 4\n dims 16\n"
        " score softcap(score, 30) + sigmoid(score) + softplus(score) + relu(score) + elu(-score) + min(score, 2) + max(q_idx, 1)\n"
        " mask sliding_window(4) || (kv_idx % 3 == 0 ? true : !causal) && head // 2 >= 0\n}\n", "f");
    if (k) {
        double s = 1.25;
        double want = 30 * tanh(s / 30) + 1 / (1 + exp(-s)) + log(1 + exp(s)) + s + (exp(-s) - 1) + 1.25 + 7;
        CHECK_NEAR(ev_at(k->score_mod, 7, 2, 0, s), want, 1e-12);
        CHECK(ev_at(k->mask, 10, 7, 0, 0) == 1);    /* inside the window */
        CHECK(ev_at(k->mask, 10, 6, 0, 0) == 1);    /* kv 6 % 3 == 0 -> true */
        CHECK(ev_at(k->mask, 10, 5, 0, 0) == 0);    /* outside, causal */
        CHECK(ev_at(k->mask, 10, 11, 0, 0) == 1);   /* future key: !causal */
    }
    release(&c);
}

static void test_inputs_softmax(void) {
    compiled c;
    ir_kernel *k = good(&c,
        "kernel docs {\n heads q = 8\n dims 64\n inputs doc[token]: i32, bias[head]\n inputs pair[token, head]: f32\n"
        " mask causal && doc[q_idx] == doc[kv_idx]\n score score + bias[head] + pair[kv_idx, head]\n}\n", "docs");
    if (k) {
        CHECK(k->n_inputs == 3);
        CHECK(strcmp(k->inputs[0].name, "doc") == 0 && k->inputs[0].n_axes == 1 &&
              k->inputs[0].axes[0] == IR_AXIS_TOKEN && k->inputs[0].scalar == IR_S_I32);
        CHECK(k->inputs[1].n_axes == 1 && k->inputs[1].axes[0] == IR_AXIS_HEAD && k->inputs[1].scalar == IR_S_F32);
        CHECK(k->inputs[2].n_axes == 2 && k->inputs[2].axes[0] == IR_AXIS_TOKEN && k->inputs[2].axes[1] == IR_AXIS_HEAD);
        /* doc[q_idx] == doc[kv_idx]: two reads with one int index each */
        const ir_expr *eq = k->mask->args[1];
        CHECK(eq->op == IR_EQ && eq->args[0]->op == IR_INPUT && eq->args[0]->n_args == 1);
        CHECK(eq->args[0]->args[0]->op == IR_VAR && eq->args[0]->args[0]->var == IR_VAR_Q_IDX);
        CHECK(eq->args[1]->args[0]->var == IR_VAR_KV_IDX && eq->args[0]->type == IR_T_INT);
        CHECK(ir_expr_uses_input(k->score_mod));
    }
    release(&c);
}

/* ---------------------------------------------------------------- recurrences */

static void test_recurrences(void) {
    compiled c;
    ir_kernel *k = good(&c,
        "kernel mamba2_2_7b : recurrence {\n"
        "    heads   80, groups = 1\n"
        "    dims    k = 128, v = 64\n"
        "    inputs  dt[token, head], A[head], D[head]\n"
        "    decay   exp(dt * A)\n"
        "    update  S = decay * S + outer(k, dt * v)\n"
        "    output  q @ S + D * v\n"
        "    chunk   256\n"
        "}\n", "mamba2_2_7b");
    if (k) {
        CHECK(k->family == IR_RECURRENCE && k->heads_q == 80 && k->heads_kv == 80 && k->groups == 1);
        CHECK(k->d_qk == 128 && k->d_v == 64 && k->chunk == 256 && k->n_inputs == 3);
        CHECK(k->decay && k->decay->op == IR_EXP && k->decay_kind == IR_DECAY_TOKEN_HEAD);
        CHECK(k->v_scale && reads_input_bare(k->v_scale, 0));
        CHECK(k->skip && reads_input_bare(k->skip, 2) && !k->normalize && !k->feature);
        CHECK(!k->mask && !k->score_mod && k->rope.layout == IR_ROPE_NONE);
    }
    release(&c);
    k = good(&c, "kernel retnet : recurrence {\n heads 8\n dims k = 64, v = 128\n decay 1 - 2 ^ (-5 - head)\n}\n", "retnet");
    if (k) {
        CHECK(k->decay_kind == IR_DECAY_HEAD && k->groups == 8 && k->chunk == 64);
        CHECK_NEAR(ev_at(k->decay, 0, 0, 3, 0), 1 - pow(2, -8), 1e-15);
        CHECK(!k->v_scale && !k->skip);
    }
    release(&c);
    k = good(&c, "kernel linear_elu : recurrence {\n heads 8\n dims k = 64, v = 64\n feature elu(x) + 1\n normalize\n}\n", "linear_elu");
    if (k) {
        CHECK(k->normalize && k->feature && !k->decay && k->decay_kind == IR_DECAY_NONE);
        CHECK_NEAR(ev_at(k->feature, 0, 0, 0, -1), exp(-1.0), 1e-15);
        CHECK_NEAR(ev_at(k->feature, 0, 0, 0, 2), 3, 1e-15);
    }
    release(&c);
    /* GLA: a decay over k; Mamba-1 style: over k and v; `v * E` and `v * D` orders */
    k = good(&c, "kernel gla : recurrence {\n heads 4\n dims k = 16, v = 32\n inputs g[token, head, k], beta[token, head]\n"
                 " decay sigmoid(g)\n update S = S * decay + outer(k, v * beta)\n output q @ S + v\n}\n", "gla");
    if (k) {
        CHECK(k->decay_kind == IR_DECAY_KEY_VECTOR && k->v_scale && reads_input_bare(k->v_scale, 1));
        CHECK(k->skip && k->skip->op == IR_CONST && k->skip->value == 1);
    }
    release(&c);
    k = good(&c, "kernel s6 : recurrence {\n heads 4\n dims k = 16, v = 32\n inputs dt[token, head, v], A[head, k, v], D[head, v]\n"
                 " decay exp(dt * A)\n output q @ S + v * D\n}\n", "s6");
    if (k) CHECK(k->decay_kind == IR_DECAY_STATE && k->skip && reads_input_bare(k->skip, 2));
    release(&c);
}

/* ---------------------------------------------------------------- errors */

static const char *base = "kernel k {\n heads q = 8\n dims 64\n";

static void bad_body(const char *body, const char *want) {
    char src[1024];
    snprintf(src, sizeof src, "%s%s\n}\n", base, body);
    bad(src, want);
}

static void test_errors(void) {
    bad_body(" score min(score, 50, 60)", "min takes 2 arguments, got 3");
    bad_body(" score causal", "'causal' is a boolean; a score must be a number");
    bad_body(" mask q_idx - kv_idx", "a mask must be a boolean, but 'q_idx - kv_idx' is an integer");
    bad_body(" score score // 2", "'//' is integer division, but 'score' is a float");
    bad_body(" mask casual", "did you mean 'causal'?");
    bad_body(" score softcapp(score, 50)", "did you mean 'softcap'?");
    bad_body(" mask score > 0", "a mask cannot read 'score'");
    bad_body(" scale 1 / 0", "divides by zero");
    bad_body(" scale sqrt(-1)", "is not a real number");
    bad_body(" scale 0", "the scale must be positive, got 0");
    bad_body(" scale 1e308 * 1e308", "overflows");
    bad_body(" dtype bfloat16", "did you mean 'bf16'?");
    bad_body(" phase prefil", "did you mean 'prefill'?");
    bad_body(" rope half, dims = [0, 23)", "odd number");
    bad_body(" rope half, dims = [0, 128)", "the range must lie inside [0, 64)");
    bad_body(" rope half, sections = [8, 8, 8]", "M-RoPE sections add up to 24 pairs but rope dims [0, 64) have 32 pairs");
    bad_body(" rope half, scaling = yarm(factor = 2, original = 1)", "did you mean 'yarn'?");
    bad_body(" rope half, scaling = yarn(factor = 2)", "yarn needs 'original = ...'");
    bad_body(" rope half, scaling = linear(factor = 0.5)", "must be at least 1");
    bad_body(" rope half, scaling = llama3(8, low = 2, high = 2)", "llama3's high (2) must be greater than low (2)");
    bad_body(" rope half, sections = [16, 16], rerope(window = 8)", "rerope cannot be combined");
    bad_body(" rope half, rerope(window = 8, leak = 1)", "leak must be greater than 1");
    bad_body(" rope half, rerope(window = 0)", "the rerope window must be a positive integer, got 0");
    bad_body(" rope hlaf", "did you mean 'half'?");
    bad_body(" decay 0.5", "'decay' is a recurrence clause");
    bad_body(" inputs doc[token]\n mask doc == 1", "'doc[q_idx]' for the query's or 'doc[kv_idx]'");
    bad_body(" inputs q[token]", "'q' is a reserved name");
    bad_body(" inputs doc[token], doc[head]", "input 'doc' is declared twice");
    bad_body(" mask sliding_window(-3)", "the window of sliding_window must be a positive integer, got -3");
    bad("kernel k {\n heads q = 32, kv = 7\n dims 64\n}\n", "kv heads (7) must divide q heads (32); use a divisor of 32 such as 8");
    bad("kernel k {\n heads q = 5000\n dims 64\n}\n", "between 1 and 4096, got 5000");
    bad("kernel k {\n heads q = 8\n dims 2000\n}\n", "between 1 and 1024, got 2000");
    bad("kernel k {\n heads q = 8\n dims 2.5\n}\n", "must be an integer, got 2.5");
    bad("kernel k {\n heads q = 1e20\n dims 64\n}\n", "must be an integer");
    bad("kernel k {\n heads q = 8\n latent rank = 512, rope = 64\n}\n", "not 1/sqrt(576)");
    bad("kernel k {\n heads q = 8\n dims qk = 512\n latent rank = 640, rope = 64\n scale 0.1\n}\n",
        "the latent rank (640) is larger than the qk head dim (512); K rows are [latent ; rope part], so qk = rank + rope: use rank = 448");
    bad("kernel k : recurence {\n heads 8\n dims k = 8, v = 8\n}\n", "did you mean 'recurrence'?");
    bad("kernel k : recurrence {\n heads 8\n dims k = 8, v = 8\n mask causal\n}\n", "'mask' is a softmax-attention clause");
    bad("kernel k : recurrence {\n heads 8\n dims k = 8, v = 8\n decay q_idx\n}\n", "'q_idx' is an index of softmax attention");
    bad("kernel k : recurrence {\n heads 8\n dims k = 8, v = 8\n feature 2\n}\n", "does not use 'x'");
    bad("kernel k : recurrence {\n heads 8\n dims k = 8, v = 8\n decay x\n}\n", "'x' exists only inside the 'feature' clause");
    bad("kernel k : recurrence {\n heads 8\n dims k = 8, v = 8\n chunk 40\n}\n", "multiple of 16, got 40; use 32 or 48");
    bad("kernel k : recurrence {\n heads 8, groups = 3\n dims k = 8, v = 8\n}\n", "groups (3) must divide heads (8)");
    bad("kernel k : recurrence {\n heads 8\n dims k = 8, v = 8\n inputs dt[token, head]\n decay exp(dt[0])\n}\n",
        "write 'dt' without an index");
    bad("kernel k : recurrence {\n heads 8\n dims k = 8, v = 8\n update S = decay * S + outer(k, v)\n}\n",
        "the kernel has no 'decay' clause");
    bad("kernel k : recurrence {\n heads 8\n dims k = 8, v = 8\n decay 0.9\n update S = S + outer(k, v)\n}\n",
        "does not apply it");
    bad("kernel k : recurrence {\n heads 8\n dims k = 8, v = 8\n inputs g[token, head, k]\n update S = S + outer(k, g * v)\n}\n",
        "the value scale E is one number per token and head");
    bad("kernel k : recurrence {\n heads 8\n dims k = 8, v = 8\n output S @ q\n}\n", "the output reads the state as 'q @ S'");
    bad("kernel k : recurrence {\n heads 8\n dims k = 8, v = 8\n inputs a[token, head, v]\n decay a\n normalize\n}\n",
        "normalize cannot be used with a decay that has a v axis");
    bad("kernel k {\n heads q = 8\n dims 64\n}\nkernel k {\n heads q = 8\n dims 64\n}\n", "kernel 'k' is already defined on line 1");
    bad("kernel k {\n heads q = 8\n dims 64\n mask causal\n mask causal\n}\n", "'mask' is given twice");
    bad("kernel k {\n heads q = 8\n dims 64\n maks causal\n}\n", "unknown clause 'maks'; did you mean 'mask'?");
    bad("kernel k {\n dims 64\n}\n", "has no 'heads' clause");
    bad("kernel k {\n heads q = 8\n}\n", "has no 'dims' clause");
}

/* A kernel with errors is left out, the others stay; every error comes out in one run. */
static void test_partial_module(void) {
    compiled c;
    compile(&c,
        "kernel ok1 {\n heads q = 8\n dims 64\n}\n"
        "kernel broken {\n heads q = 8, kv = 3\n dims 64\n dtype f64\n mask 1\n score score + causal\n}\n"
        "kernel ok2 : recurrence {\n heads 4\n dims k = 16, v = 16\n}\n"
        "kernel broken2 : recurrence {\n heads 4\n dims k = 16, v = 16\n chunk 8\n decay q_idx\n}\n");
    CHECK_MSG(c.d.n_errors == 6, "got %d errors:\n%s", c.d.n_errors, c.messages);
    CHECK(c.m->n_kernels == 2 && ir_module_find(c.m, "ok1") && ir_module_find(c.m, "ok2"));
    CHECK(!ir_module_find(c.m, "broken") && !ir_module_find(c.m, "broken2"));
    release(&c);
    /* a syntax error does not also produce "missing clause" noise */
    compile(&c, "kernel s {\n heads q = 8 +\n dims 64\n}\n");
    CHECK(c.d.n_errors >= 1 && strstr(c.messages, "has no 'heads'") == NULL && c.m->n_kernels == 0);
    release(&c);
}

/* ---------------------------------------------------------------- random ASTs */

typedef struct rng { uint64_t s; } rng;
static uint32_t rnd(rng *r) {
    r->s = r->s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(r->s >> 33);
}

static const char *const names[] = {
    "q", "kv", "k", "v", "x", "S", "score", "causal", "q_idx", "kv_idx", "head", "batch", "true", "decay",
    "exp", "min", "select", "sliding_window", "alibi_slope", "softcap", "outer", "half", "interleaved", "base",
    "dims", "scaling", "sections", "positions", "rerope", "yarn", "llama3", "factor", "original", "window",
    "leak", "token", "doc", "dt", "i32", "f32", "rank", "rope", "groups", "bf16", "decode", "zz",
};
enum { N_NAMES = sizeof names / sizeof names[0] };

static ast_node *random_node(rng *r, arena *a, int depth) {
    ast_node *n = arena_alloc(a, sizeof *n);
    int kind = depth <= 0 ? (int)(rnd(r) % 2) : (int)(rnd(r) % 11);
    n->kind = (ast_kind)kind;
    n->loc = (src_loc){1 + (int)(rnd(r) % 5), 1 + (int)(rnd(r) % 20), 0, 0};
    n->name_loc = n->loc;
    static const double nums[] = {0, 1, 2, 3, 16, 64, 128, -1, 0.5, 1e308, 1e20, 4097, NAN, INFINITY, 1e-300};
    n->num = nums[rnd(r) % (sizeof nums / sizeof nums[0])];
    n->is_int = rnd(r) % 2;
    n->op = (ast_op)(rnd(r) % (OP_PLUS + 1));
    n->name = names[rnd(r) % N_NAMES];
    if (kind == AST_UNARY || kind == AST_NAMED || kind == AST_TYPED) n->a = random_node(r, a, depth - 1);
    if (kind == AST_BINARY) { n->a = random_node(r, a, depth - 1); n->b = random_node(r, a, depth - 1); }
    if (kind == AST_TERNARY) {
        n->a = random_node(r, a, depth - 1);
        n->b = random_node(r, a, depth - 1);
        n->c = random_node(r, a, depth - 1);
    }
    if (kind == AST_CALL || kind == AST_INDEX || kind == AST_LIST || kind == AST_INTERVAL) {
        n->n_items = (int)(rnd(r) % 6);
        n->items = arena_calloc(a, (size_t)(n->n_items ? n->n_items : 1), sizeof *n->items);
        for (int i = 0; i < n->n_items; i++) n->items[i] = random_node(r, a, depth - 1);
    }
    return n;
}

static void test_random_asts(void) {
    static const char *const keywords[] = {"heads", "dims", "dtype", "phase", "inputs", "scale", "latent", "rope",
                                           "score", "mask", "decay", "feature", "normalize", "update", "output",
                                           "chunk", "bogus"};
    rng r = {12345};
    int accepted = 0, verified = 0;
    for (int iter = 0; iter < 3000; iter++) {
        arena a;
        arena_init(&a);
        diag_sink d;
        diag_init(&d, "rand", NULL, 0);
        ast_file f = {0};
        ast_kernel **tail = &f.kernels;
        int nk = 1 + (int)(rnd(&r) % 2);
        for (int ki = 0; ki < nk; ki++) {
            ast_kernel *k = arena_alloc(&a, sizeof *k);
            k->name = ki == 1 && rnd(&r) % 2 ? "k0" : (ki ? "k1" : "k0");
            k->family = rnd(&r) % 3 == 0 ? "recurrence" : rnd(&r) % 8 == 0 ? "bogus" : NULL;
            ast_clause **ct = &k->clauses;
            /* mostly valid heads and dims, so deeper clauses are reached */
            const char *pre = k->family && strcmp(k->family, "recurrence") == 0
                ? "heads 4\ndims k = 16, v = 16\n" : "heads q = 4\ndims 16\n";
            if (rnd(&r) % 4) {
                char wrapped[128];
                snprintf(wrapped, sizeof wrapped, "kernel w {\n%s}\n", pre);
                diag_sink pd;
                diag_init(&pd, "pre", NULL, 0);
                ast_file *pf = dsl_parse(wrapped, strlen(wrapped), &a, &pd);
                diag_free(&pd);
                if (pf && pf->kernels) {
                    *ct = pf->kernels->clauses;
                    while (*ct) ct = &(*ct)->next;
                }
            }
            int nc = (int)(rnd(&r) % 6);
            for (int ci = 0; ci < nc; ci++) {
                ast_clause *cl = arena_alloc(&a, sizeof *cl);
                cl->keyword = keywords[rnd(&r) % (sizeof keywords / sizeof keywords[0])];
                cl->loc = (src_loc){2 + ci, 1, 2 + ci, 5};
                cl->n_args = (int)(rnd(&r) % 4);
                cl->args = arena_calloc(&a, (size_t)(cl->n_args ? cl->n_args : 1), sizeof *cl->args);
                for (int i = 0; i < cl->n_args; i++) cl->args[i] = random_node(&r, &a, (int)(rnd(&r) % 5));
                *ct = cl;
                ct = &cl->next;
            }
            *tail = k;
            tail = &k->next;
            f.n_kernels++;
        }
        ir_module *m = frontend_check(&f, &a, &d);
        CHECK(m != NULL);
        if (m && m->n_kernels) {
            accepted++;
            for (int i = 0; i < m->n_kernels; i++) {
                diag_sink vd;
                diag_init(&vd, "rand", NULL, 0);
                bool ok = ir_verify_kernel(m->kernels[i], &vd);
                CHECK_MSG(ok, "accepted kernel fails the verifier (iteration %d): %s", iter,
                          vd.n_records ? vd.records[0].message : "");
                verified += ok;
                diag_free(&vd);
            }
        }
        diag_free(&d);
        arena_free(&a);
    }
    CHECK_MSG(accepted > 50, "only %d random files accepted: the generator does not reach the lowering", accepted);
    printf("random ASTs: %d files with accepted kernels, %d kernels verified\n", accepted, verified);
}

int main(void) {
    test_llama3();
    test_gemma_and_defaults();
    test_partial_rope_and_sections();
    test_mla();
    test_score_builtins();
    test_inputs_softmax();
    test_recurrences();
    test_errors();
    test_partial_module();
    test_random_asts();
    return check_status("test_check");
}
