/* Parser tests: the specs of dsl/README.md and the design sketch parse to the expected
 * trees, precedence and brackets follow the reference, locations are exact, syntax errors
 * say where and what was expected, several errors are reported per file, and hostile
 * input (random bytes, truncations, deep nesting) never crashes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "frontend/ast.h"

/* ---- Spec texts (copied from dsl/README.md and shared/design/dsl-sketch.md) ---- */

static const char README_LLAMA[] =
    "# Llama-3-8B: GQA, RoPE with Llama-3.1 scaling, causal\n"
    "kernel llama3_8b {\n"
    "    heads   q = 32, kv = 8\n"
    "    dims    qk = 128, v = 128\n"
    "    dtype   bf16                      # accumulation is always f32\n"
    "    rope    half, base = 500000,\n"
    "            scaling = llama3(factor = 8, low = 1, high = 4, original = 8192)\n"
    "    mask    causal\n"
    "}\n";

static const char README_INPUTS[] =
    "kernel docs {\n"
    "inputs  doc[token]: i32, bias[head]\n"
    "mask    causal && doc[q_idx] == doc[kv_idx]\n"
    "}\n";

static const char README_MAMBA[] =
    "kernel mamba2_2_7b : recurrence {\n"
    "    heads   80, groups = 1\n"
    "    dims    k = 128, v = 64              # d_state, headdim\n"
    "    inputs  dt[token, head], A[head], D[head]\n"
    "    decay   exp(dt * A)\n"
    "    update  S = decay * S + outer(k, dt * v)\n"
    "    output  q @ S + D * v\n"
    "    chunk   256\n"
    "}\n";

static const char README_DIAG[] =
    "kernel llama {\n"
    "    heads   q = 32, kv = 7\n"
    "}\n";

static const char SKETCH[] =
    "# Llama-3-8B: GQA, RoPE with Llama-3.1 scaling, causal\n"
    "kernel llama3_8b {\n"
    "    heads   q = 32, kv = 8\n"
    "    dims    qk = 128, v = 128\n"
    "    dtype   bf16                      # accumulation is f32\n"
    "    rope    half, base = 500000,\n"
    "            scaling = llama3(factor = 8, low = 1, high = 4, original = 8192)\n"
    "    mask    causal\n"
    "}\n"
    "\n"
    "# Gemma-2-9B local layer: soft-capped scores, sliding window\n"
    "kernel gemma2_9b_local {\n"
    "    heads   q = 16, kv = 8\n"
    "    dims    qk = 256, v = 256\n"
    "    scale   1 / sqrt(256)\n"
    "    rope    half\n"
    "    score   50 * tanh(score / 50)\n"
    "    mask    causal && q_idx - kv_idx < 4096\n"
    "}\n"
    "\n"
    "# GPT-NeoX-20B: partial rotary on 24 of 96 dims\n"
    "kernel neox_20b {\n"
    "    heads   q = 64, kv = 64\n"
    "    dims    qk = 96, v = 96\n"
    "    rope    half, dims = [0, 24)\n"
    "    mask    causal\n"
    "}\n"
    "\n"
    "# DeepSeek-V2 absorbed decode: one latent kv head, K row = [c ; k_rope], V = c\n"
    "kernel deepseek_v2_decode {\n"
    "    heads   q = 128, kv = 1\n"
    "    latent  rank = 512, rope = 64\n"
    "    rope    half, dims = [512, 576), base = 10000,\n"
    "            scaling = yarn(factor = 40, original = 4096, beta_fast = 32, beta_slow = 1, mscale = 0.707)\n"
    "    scale   1 / sqrt(192)\n"
    "    phase   decode\n"
    "}\n"
    "\n"
    "# Qwen2-VL: multimodal RoPE, three position axes\n"
    "kernel qwen2_vl_7b {\n"
    "    heads   q = 28, kv = 4\n"
    "    dims    qk = 128, v = 128\n"
    "    rope    half, base = 1000000, sections = [16, 24, 24]   # (t, h, w) position ids\n"
    "    mask    causal\n"
    "}\n"
    "\n"
    "# ReRoPE: relative positions clipped at 512 (leaky: slope 1/16 beyond)\n"
    "kernel llama_rerope {\n"
    "    heads   q = 32, kv = 32\n"
    "    dims    qk = 128, v = 128\n"
    "    rope    half, rerope(window = 512, leak = 16)\n"
    "    mask    causal\n"
    "}\n"
    "\n"
    "# ALiBi instead of RoPE\n"
    "kernel bloom_alibi {\n"
    "    heads   q = 32, kv = 32\n"
    "    dims    qk = 128, v = 128\n"
    "    score   score + alibi_slope(head) * (kv_idx - q_idx)\n"
    "    mask    causal\n"
    "}\n"
    "\n"
    "# Mamba2-2.7B (SSD): scalar decay per head and token\n"
    "kernel mamba2_2_7b : recurrence {\n"
    "    heads   80, groups = 1\n"
    "    dims    k = 128, v = 64              # d_state, headdim\n"
    "    inputs  dt[token, head], A[head], D[head]\n"
    "    decay   exp(dt * A)\n"
    "    update  S = decay * S + outer(k, dt * v)\n"
    "    output  q @ S + D * v\n"
    "    chunk   256\n"
    "}\n"
    "\n"
    "# RetNet: fixed per-head decay\n"
    "kernel retnet : recurrence {\n"
    "    heads   8\n"
    "    dims    k = 64, v = 128\n"
    "    decay   1 - 2 ^ (-5 - head)\n"
    "}\n"
    "\n"
    "# Linear attention with the elu+1 feature map, normalised\n"
    "kernel linear_elu : recurrence {\n"
    "    heads   8\n"
    "    dims    k = 64, v = 64\n"
    "    feature elu(x) + 1\n"
    "    normalize\n"
    "}\n";

/* ---- Helpers ---- */

typedef struct parsed {
    arena a;
    diag_sink d;
    ast_file *f;
} parsed;

static void parse_bytes(parsed *p, const char *src, size_t len) {
    arena_init(&p->a);
    diag_init(&p->d, "t.attn", src, len);
    p->f = dsl_parse(src, len, &p->a, &p->d);
}

static void parse_text(parsed *p, const char *src) { parse_bytes(p, src, strlen(src)); }

static void parsed_free(parsed *p) {
    diag_free(&p->d);
    arena_free(&p->a);
}

static void dump_diags(const parsed *p) { diag_print(&p->d, stderr); }

/* Prints with the printer under test into a malloc'd string. */
static char *expr_text(const ast_node *n) {
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    ast_print_expr(f, n);
    fclose(f);
    return buf;
}

static char *file_text(const ast_file *af) {
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    ast_print(f, af);
    fclose(f);
    return buf;
}

static const ast_kernel *kernel_named(const ast_file *f, const char *name) {
    if (!f) return NULL;
    for (const ast_kernel *k = f->kernels; k; k = k->next)
        if (strcmp(k->name, name) == 0) return k;
    return NULL;
}

static const ast_clause *clause_named(const ast_kernel *k, const char *kw) {
    if (!k) return NULL;
    for (const ast_clause *c = k->clauses; c; c = c->next)
        if (strcmp(c->keyword, kw) == 0) return c;
    return NULL;
}

static int clause_count(const ast_kernel *k) {
    int n = 0;
    for (const ast_clause *c = k ? k->clauses : NULL; c; c = c->next) n++;
    return n;
}

static const ast_node *arg_of(const ast_kernel *k, const char *kw, int i) {
    const ast_clause *c = clause_named(k, kw);
    return c && i < c->n_args ? c->args[i] : NULL;
}

#define CHECK_EXPR(node, expected) do { \
    char *got_ = expr_text(node); \
    CHECK_MSG(strcmp(got_, (expected)) == 0, "got \"%s\", want \"%s\"", got_, (expected)); \
    free(got_); } while (0)

#define CHECK_LOC(l, L, C, EL, EC) CHECK_MSG((l).line == (L) && (l).col == (C) && (l).end_line == (EL) && (l).end_col == (EC), \
    "loc %d:%d-%d:%d, want %d:%d-%d:%d", (l).line, (l).col, (l).end_line, (l).end_col, (L), (C), (EL), (EC))

/* 1-based column of `needle` on 1-based line `line` of src (the n-th occurrence, from 1). */
static int col_of(const char *src, int line, const char *needle, int nth) {
    const char *p = src;
    for (int l = 1; l < line && p; l++) {
        p = strchr(p, '\n');
        if (p) p++;
    }
    if (!p) return -1;
    const char *eol = strchr(p, '\n');
    const char *q = p;
    for (int i = 0; i < nth; i++) {
        q = strstr(i ? q + 1 : q, needle);
        if (!q || (eol && q >= eol)) return -1;
    }
    return (int)(q - p) + 1;
}

/* Parses one expression by wrapping it in a clause. */
static void check_expr_parse(const char *expr, const char *expected, int line) {
    char src[512];
    snprintf(src, sizeof src, "kernel k {\n    x %s\n}\n", expr);
    parsed p;
    parse_text(&p, src);
    const ast_node *n = arg_of(kernel_named(p.f, "k"), "x", 0);
    char *got = n ? expr_text(n) : NULL;
    CHECK_MSG(p.d.n_errors == 0 && got && strcmp(got, expected) == 0,
              "line %d: '%s' parsed to \"%s\" (%d errors), want \"%s\"", line, expr, got ? got : "(none)",
              p.d.n_errors, expected);
    if (p.d.n_errors) dump_diags(&p);
    free(got);
    parsed_free(&p);
}
#define EXPR(src, want) check_expr_parse((src), (want), __LINE__)

/* Parses src, expects an error whose message contains every `parts` substring at line:col. */
static void check_error(const char *src, int line, int col, const char *const *parts, int n_parts, int at) {
    parsed p;
    parse_text(&p, src);
    const diag_record *hit = NULL;
    for (int i = 0; i < p.d.n_records && !hit; i++) {
        const diag_record *r = &p.d.records[i];
        if (r->severity != DIAG_ERROR || r->loc.line != line || r->loc.col != col) continue;
        bool all = true;
        for (int j = 0; j < n_parts; j++)
            if (!strstr(r->message, parts[j])) all = false;
        if (all) hit = r;
    }
    CHECK_MSG(hit != NULL, "test at line %d: no error at %d:%d containing \"%s\"%s", at, line, col, parts[0],
              n_parts > 1 ? " ..." : "");
    if (!hit) dump_diags(&p);
    CHECK_MSG(p.d.n_errors > 0, "test at line %d: errors were not counted", at);
    parsed_free(&p);
}
#define ERR(src, line, col, ...) do { static const char *const parts_[] = {__VA_ARGS__}; \
    check_error((src), (line), (col), parts_, (int)(sizeof parts_ / sizeof parts_[0]), __LINE__); } while (0)

/* Walks a tree checking what every later pass relies on: bounded depth, sane locations. */
static int tree_ok(const ast_node *n, int depth) {
    if (!n) return 0;
    if (depth > 205) return 0;
    if (n->loc.line < 1 || n->loc.col < 1 || n->loc.end_line < n->loc.line) return 0;
    if (n->loc.end_line == n->loc.line && n->loc.end_col < n->loc.col) return 0;
    switch (n->kind) {
    case AST_NUMBER: return 1;
    case AST_IDENT: return n->name != NULL;
    case AST_UNARY: case AST_NAMED: case AST_TYPED: return n->name || n->kind == AST_UNARY ? tree_ok(n->a, depth + 1) : 0;
    case AST_BINARY: return tree_ok(n->a, depth + 1) && tree_ok(n->b, depth + 1);
    case AST_TERNARY: return tree_ok(n->a, depth + 1) && tree_ok(n->b, depth + 1) && tree_ok(n->c, depth + 1);
    case AST_CALL: case AST_INDEX: case AST_LIST: case AST_INTERVAL:
        if ((n->kind == AST_CALL || n->kind == AST_INDEX) && !n->name) return 0;
        for (int i = 0; i < n->n_items; i++)
            if (!tree_ok(n->items[i], depth + 1)) return 0;
        return 1;
    }
    return 0;
}

static int file_ok(const ast_file *f) {
    if (!f) return 0;
    int n = 0;
    for (const ast_kernel *k = f->kernels; k; k = k->next, n++) {
        if (!k->name || k->loc.line < 1 || k->name_loc.line < 1) return 0;
        for (const ast_clause *c = k->clauses; c; c = c->next) {
            if (!c->keyword || c->loc.line < 1) return 0;
            for (int i = 0; i < c->n_args; i++)
                if (!tree_ok(c->args[i], 1)) return 0;
        }
    }
    return n == f->n_kernels;
}

/* print -> parse -> print must be a fixed point (the dump is valid, equivalent syntax). */
static void check_roundtrip(const ast_file *f, const char *what) {
    char *once = file_text(f);
    parsed q;
    parse_text(&q, once);
    char *twice = file_text(q.f);
    CHECK_MSG(q.d.n_errors == 0 && strcmp(once, twice) == 0, "%s: printed AST does not reparse to itself:\n%s\n---\n%s",
              what, once, twice);
    if (q.d.n_errors) dump_diags(&q);
    free(twice);
    free(once);
    parsed_free(&q);
}

/* ---- Tests ---- */

static void test_readme_examples(void) {
    parsed p;
    parse_text(&p, README_LLAMA);
    CHECK(p.d.n_errors == 0);
    CHECK(p.f && p.f->n_kernels == 1);
    char *dump = file_text(p.f);
    const char *want =
        "kernel llama3_8b {\n"
        "  heads q = 32, kv = 8\n"
        "  dims qk = 128, v = 128\n"
        "  dtype bf16\n"
        "  rope half, base = 500000, scaling = llama3(factor = 8, low = 1, high = 4, original = 8192)\n"
        "  mask causal\n"
        "}\n";
    CHECK_MSG(strcmp(dump, want) == 0, "dump:\n%s", dump);
    free(dump);
    const ast_kernel *k = kernel_named(p.f, "llama3_8b");
    CHECK(k && k->family == NULL);
    const ast_node *rope2 = arg_of(k, "rope", 2);
    CHECK(rope2 && rope2->kind == AST_NAMED && strcmp(rope2->name, "scaling") == 0);
    CHECK(rope2 && rope2->a && rope2->a->kind == AST_CALL && rope2->a->n_items == 4);
    CHECK(rope2 && rope2->a->items[3]->kind == AST_NAMED && rope2->a->items[3]->a->num == 8192);
    const ast_node *mask = arg_of(k, "mask", 0);
    CHECK(mask && mask->kind == AST_IDENT && strcmp(mask->name, "causal") == 0);
    parsed_free(&p);

    parse_text(&p, README_INPUTS);
    CHECK(p.d.n_errors == 0);
    k = kernel_named(p.f, "docs");
    const ast_node *doc = arg_of(k, "inputs", 0);
    CHECK(doc && doc->kind == AST_TYPED && strcmp(doc->name, "i32") == 0);
    CHECK(doc && doc->a->kind == AST_INDEX && strcmp(doc->a->name, "doc") == 0 && doc->a->n_items == 1);
    CHECK_EXPR(arg_of(k, "inputs", 1), "bias[head]");
    CHECK_EXPR(arg_of(k, "mask", 0), "(causal && (doc[q_idx] == doc[kv_idx]))");
    parsed_free(&p);

    parse_text(&p, README_MAMBA);
    CHECK(p.d.n_errors == 0);
    k = kernel_named(p.f, "mamba2_2_7b");
    CHECK(k && k->family && strcmp(k->family, "recurrence") == 0);
    CHECK(clause_count(k) == 7);
    CHECK_EXPR(arg_of(k, "heads", 0), "80");
    CHECK_EXPR(arg_of(k, "heads", 1), "groups = 1");
    CHECK_EXPR(arg_of(k, "update", 0), "S = ((decay * S) + outer(k, (dt * v)))");
    CHECK_EXPR(arg_of(k, "output", 0), "((q @ S) + (D * v))");
    const ast_clause *inputs = clause_named(k, "inputs");
    CHECK(inputs && inputs->n_args == 3);
    CHECK(inputs && inputs->args[0]->kind == AST_INDEX && inputs->args[0]->n_items == 2);
    parsed_free(&p);

    parse_text(&p, README_DIAG);
    CHECK(p.d.n_errors == 0);
    const ast_node *kv = arg_of(kernel_named(p.f, "llama"), "heads", 1);
    /* The README's caret for this example spans "kv = 7": column 21, six columns. */
    CHECK(kv && kv->kind == AST_NAMED);
    if (kv) CHECK_LOC(kv->loc, 2, 21, 2, 26);
    parsed_free(&p);
}

static void test_sketch(void) {
    parsed p;
    parse_text(&p, SKETCH);
    CHECK(p.d.n_errors == 0);
    if (p.d.n_errors) dump_diags(&p);
    CHECK(file_ok(p.f));
    static const char *const names[] = {"llama3_8b", "gemma2_9b_local", "neox_20b", "deepseek_v2_decode",
                                        "qwen2_vl_7b", "llama_rerope", "bloom_alibi", "mamba2_2_7b",
                                        "retnet", "linear_elu"};
    static const int clauses[] = {5, 6, 4, 5, 4, 4, 4, 7, 3, 4};
    static const char *const families[] = {NULL, NULL, NULL, NULL, NULL, NULL, NULL, "recurrence",
                                           "recurrence", "recurrence"};
    CHECK(p.f && p.f->n_kernels == 10);
    int i = 0;
    for (const ast_kernel *k = p.f ? p.f->kernels : NULL; k && i < 10; k = k->next, i++) {
        CHECK_MSG(strcmp(k->name, names[i]) == 0, "kernel %d is %s", i, k->name);
        CHECK_MSG(clause_count(k) == clauses[i], "%s has %d clauses", k->name, clause_count(k));
        CHECK(families[i] ? k->family && strcmp(k->family, families[i]) == 0 : k->family == NULL);
    }
    CHECK(i == 10);

    const ast_kernel *k = kernel_named(p.f, "gemma2_9b_local");
    CHECK_EXPR(arg_of(k, "scale", 0), "(1 / sqrt(256))");
    CHECK_EXPR(arg_of(k, "score", 0), "(50 * tanh((score / 50)))");
    CHECK_EXPR(arg_of(k, "mask", 0), "(causal && ((q_idx - kv_idx) < 4096))");
    const ast_node *n = arg_of(k, "score", 0);
    CHECK(n && n->b->kind == AST_CALL && strcmp(n->b->name, "tanh") == 0);

    k = kernel_named(p.f, "neox_20b");
    const ast_node *dims = arg_of(k, "rope", 1);
    CHECK(dims && dims->kind == AST_NAMED && strcmp(dims->name, "dims") == 0);
    CHECK(dims && dims->a->kind == AST_INTERVAL && dims->a->n_items == 2);
    CHECK(dims && dims->a->items[0]->num == 0 && dims->a->items[1]->num == 24);

    k = kernel_named(p.f, "deepseek_v2_decode");
    const ast_clause *rope = clause_named(k, "rope");
    CHECK(rope && rope->n_args == 4);
    CHECK_EXPR(arg_of(k, "rope", 1), "dims = [512, 576)");
    const ast_node *yarn = arg_of(k, "rope", 3);
    CHECK(yarn && yarn->a->kind == AST_CALL && yarn->a->n_items == 5);
    const ast_node *ms = yarn ? yarn->a->items[4] : NULL;
    CHECK(ms && strcmp(ms->name, "mscale") == 0 && !ms->a->is_int && ms->a->num == 0.707);
    CHECK_EXPR(arg_of(k, "phase", 0), "decode");

    k = kernel_named(p.f, "qwen2_vl_7b");
    const ast_node *sec = arg_of(k, "rope", 2);
    CHECK(sec && sec->a->kind == AST_LIST && sec->a->n_items == 3);
    CHECK_EXPR(arg_of(k, "rope", 1), "base = 1000000");

    k = kernel_named(p.f, "llama_rerope");
    CHECK_EXPR(arg_of(k, "rope", 1), "rerope(window = 512, leak = 16)");

    k = kernel_named(p.f, "bloom_alibi");
    CHECK_EXPR(arg_of(k, "score", 0), "(score + (alibi_slope(head) * (kv_idx - q_idx)))");

    k = kernel_named(p.f, "retnet");
    CHECK_EXPR(arg_of(k, "decay", 0), "(1 - (2 ^ ((-5) - head)))");

    k = kernel_named(p.f, "linear_elu");
    const ast_clause *norm = clause_named(k, "normalize");
    CHECK(norm && norm->n_args == 0 && norm->args == NULL);
    CHECK_EXPR(arg_of(k, "feature", 0), "(elu(x) + 1)");

    check_roundtrip(p.f, "sketch");
    parsed_free(&p);
}

static void test_precedence(void) {
    EXPR("-2^2", "(-(2 ^ 2))");
    EXPR("2^-2", "(2 ^ (-2))");
    EXPR("2^3^4", "(2 ^ (3 ^ 4))");
    EXPR("-a*b", "((-a) * b)");
    EXPR("a - b - c", "((a - b) - c)");
    EXPR("a / b / c", "((a / b) / c)");
    EXPR("a // b % c", "((a // b) % c)");
    EXPR("a + b * c", "(a + (b * c))");
    EXPR("q @ S + D * v", "((q @ S) + (D * v))");
    EXPR("a || b && c", "(a || (b && c))");
    EXPR("a && b || c", "((a && b) || c)");
    EXPR("a == b && c != d", "((a == b) && (c != d))");
    EXPR("a < b == c >= d", "((a < b) == (c >= d))");
    EXPR("a + 1 <= b * 2", "((a + 1) <= (b * 2))");
    EXPR("!a && !b", "((!a) && (!b))");
    EXPR("!a == b", "((!a) == b)");
    EXPR("+a - -b", "((+a) - (-b))");
    EXPR("c ? a : b", "(c ? a : b)");
    EXPR("c ? a : d ? e : f", "(c ? a : (d ? e : f))");
    EXPR("c ? d ? e : f : g", "(c ? (d ? e : f) : g)");
    EXPR("a || b ? x + 1 : y * 2", "((a || b) ? (x + 1) : (y * 2))");
    EXPR("(a + b) * c", "((a + b) * c)");
    EXPR("-(x)^2", "(-(x ^ 2))");
    EXPR("(-x)^2", "((-x) ^ 2)");
    EXPR("-x[1]", "(-x[1])");
}

static void test_brackets(void) {
    EXPR("[0, 24)", "[0, 24)");
    EXPR("[0, 24]", "[0, 24]");
    EXPR("[]", "[]");
    EXPR("[a]", "[a]");
    EXPR("[[1, 2), [3, 4]]", "[[1, 2), [3, 4]]");
    EXPR("x[i, j]", "x[i, j]");
    EXPR("f()", "f()");
    EXPR("f(g(x), [1, 2), h[1])", "f(g(x), [1, 2), h[1])");
    EXPR("yarn(factor = 40, original = 4096)", "yarn(factor = 40, original = 4096)");
    EXPR("f(x : i32)", "f(x : i32)");
    EXPR("((((x))))", "x");

    parsed p;
    parse_text(&p, "kernel k {\n    a [1, 2), [1, 2], x[1]\n}\n");
    const ast_kernel *k = kernel_named(p.f, "k");
    CHECK(arg_of(k, "a", 0) && arg_of(k, "a", 0)->kind == AST_INTERVAL);
    CHECK(arg_of(k, "a", 1) && arg_of(k, "a", 1)->kind == AST_LIST);
    CHECK(arg_of(k, "a", 2) && arg_of(k, "a", 2)->kind == AST_INDEX);
    parsed_free(&p);
}

static void test_numbers(void) {
    parsed p;
    parse_text(&p, "kernel k {\n    n 128, 0.707, 1e6, 1.5e-3, .5, 3., 007, 9007199254740992\n}\n");
    CHECK(p.d.n_errors == 0);
    const ast_clause *c = clause_named(kernel_named(p.f, "k"), "n");
    CHECK(c && c->n_args == 8);
    if (c && c->n_args == 8) {
        static const double values[] = {128, 0.707, 1e6, 1.5e-3, 0.5, 3.0, 7, 9007199254740992.0};
        static const bool ints[] = {true, false, false, false, false, false, true, true};
        for (int i = 0; i < 8; i++) {
            CHECK_MSG(c->args[i]->kind == AST_NUMBER && c->args[i]->num == values[i] && c->args[i]->is_int == ints[i],
                      "number %d: %g is_int=%d", i, c->args[i]->num, c->args[i]->is_int);
        }
    }
    /* A negative literal is unary minus over the number (the checker folds it). */
    const ast_node *neg = NULL;
    parsed_free(&p);
    parse_text(&p, "kernel k {\n    n -3\n}\n");
    neg = arg_of(kernel_named(p.f, "k"), "n", 0);
    CHECK(neg && neg->kind == AST_UNARY && neg->op == OP_NEG && neg->a->kind == AST_NUMBER && neg->a->num == 3);
    parsed_free(&p);
}

static void test_layout(void) {
    /* Continuation after a trailing comma (with a comment and a blank line between), and
     * inside parentheses and brackets. */
    const char *src =
        "kernel k {\n"
        "    rope half,   # comment after the comma\n"
        "\n"
        "         base = 10,\n"
        "         scaling = yarn(\n"
        "             factor = 40,\n"
        "             original = 4096\n"
        "         ), sections = [\n"
        "           16, 24,\n"
        "           24]\n"
        "    mask (causal\n"
        "          && q_idx - kv_idx < 8)\n"
        "}\n";
    parsed p;
    parse_text(&p, src);
    CHECK(p.d.n_errors == 0);
    if (p.d.n_errors) dump_diags(&p);
    const ast_kernel *k = kernel_named(p.f, "k");
    CHECK(clause_count(k) == 2);
    const ast_clause *rope = clause_named(k, "rope");
    CHECK(rope && rope->n_args == 4);
    CHECK_EXPR(arg_of(k, "rope", 2), "scaling = yarn(factor = 40, original = 4096)");
    CHECK_EXPR(arg_of(k, "rope", 3), "sections = [16, 24, 24]");
    CHECK_EXPR(arg_of(k, "mask", 0), "(causal && ((q_idx - kv_idx) < 8))");
    /* A node spanning lines: the call from 'yarn' (line 5) to its ')' (line 8). */
    const ast_node *yarn = arg_of(k, "rope", 2);
    if (yarn) CHECK_LOC(yarn->a->loc, 5, col_of(src, 5, "yarn", 1), 8, col_of(src, 8, ")", 1));
    parsed_free(&p);

    /* ';' separators, one-line kernels, '{' on its own line, blank lines, CRLF. */
    const char *src2 =
        "kernel a { heads 8; dims 64 }\n"
        "kernel b : recurrence\n"
        "{\r\n"
        "\n"
        "   heads 1;;; dims k = 2, v = 2;\r\n"
        "   normalize\n"
        "}\n"
        "kernel c {}\n"
        "kernel d { normalize }";
    parse_text(&p, src2);
    CHECK(p.d.n_errors == 0);
    if (p.d.n_errors) dump_diags(&p);
    CHECK(p.f && p.f->n_kernels == 4);
    CHECK(clause_count(kernel_named(p.f, "a")) == 2);
    CHECK_EXPR(arg_of(kernel_named(p.f, "a"), "dims", 0), "64");
    CHECK(clause_count(kernel_named(p.f, "b")) == 3);
    CHECK(clause_count(kernel_named(p.f, "c")) == 0);
    CHECK(clause_count(kernel_named(p.f, "d")) == 1);
    check_roundtrip(p.f, "layout");
    parsed_free(&p);

    /* Empty and comment-only files are valid and have no kernels. */
    parse_text(&p, "\n# nothing here\n\n;\n");
    CHECK(p.d.n_errors == 0 && p.f && p.f->n_kernels == 0 && p.f->kernels == NULL);
    parsed_free(&p);
    parse_bytes(&p, NULL, 0);
    CHECK(p.d.n_errors == 0 && p.f && p.f->n_kernels == 0);
    parsed_free(&p);
}

static void test_locations(void) {
    const char *src = README_LLAMA;
    parsed p;
    parse_text(&p, src);
    const ast_kernel *k = kernel_named(p.f, "llama3_8b");
    CHECK(k != NULL);
    if (!k) {
        parsed_free(&p);
        return;
    }
    CHECK_LOC(k->loc, 2, 1, 2, 6);
    CHECK_LOC(k->name_loc, 2, 8, 2, 16);
    const ast_clause *heads = clause_named(k, "heads");
    CHECK_LOC(heads->loc, 3, 5, 3, 9);
    const ast_node *q = heads->args[0];
    CHECK_LOC(q->loc, 3, 13, 3, 18);
    CHECK_LOC(q->name_loc, 3, 13, 3, 13);
    CHECK_LOC(q->a->loc, 3, 17, 3, 18);
    /* The named argument on the continuation line, and its call. */
    const ast_node *scaling = arg_of(k, "rope", 2);
    int c0 = col_of(src, 7, "scaling", 1), c1 = col_of(src, 7, "llama3", 1), c2 = col_of(src, 7, ")", 1);
    CHECK_LOC(scaling->loc, 7, c0, 7, c2);
    CHECK_LOC(scaling->name_loc, 7, c0, 7, c0 + 6);
    CHECK_LOC(scaling->a->loc, 7, c1, 7, c2);
    CHECK_LOC(scaling->a->name_loc, 7, c1, 7, c1 + 5);
    const ast_node *orig = scaling->a->items[3];
    int c3 = col_of(src, 7, "original", 1);
    CHECK_LOC(orig->loc, 7, c3, 7, c3 + (int)strlen("original = 8192") - 1);
    parsed_free(&p);

    /* Binary, unary, typed, interval and family locations; tabs count one column. */
    const char *src2 =
        "kernel r : recurrence {\n"
        "\tmask\t-a + b * c\n"
        "    inputs doc[token]: i32\n"
        "    rope half, dims = [0, 24)\n"
        "}\n";
    parse_text(&p, src2);
    k = kernel_named(p.f, "r");
    CHECK(k && p.d.n_errors == 0);
    if (!k) {
        parsed_free(&p);
        return;
    }
    CHECK_LOC(k->family_loc, 1, 12, 1, 21);
    const ast_node *m = arg_of(k, "mask", 0);
    CHECK_LOC(clause_named(k, "mask")->loc, 2, 2, 2, 5);
    CHECK_LOC(m->loc, 2, 7, 2, 16);        /* "-a + b * c" */
    CHECK_LOC(m->a->loc, 2, 7, 2, 8);      /* "-a" */
    CHECK_LOC(m->b->loc, 2, 12, 2, 16);    /* "b * c" */
    const ast_node *t = arg_of(k, "inputs", 0);
    CHECK(t->kind == AST_TYPED);
    CHECK_LOC(t->loc, 3, 12, 3, 26);       /* "doc[token]: i32" */
    CHECK_LOC(t->name_loc, 3, 24, 3, 26);  /* "i32" */
    CHECK_LOC(t->a->loc, 3, 12, 3, 21);
    CHECK_LOC(t->a->name_loc, 3, 12, 3, 14);
    const ast_node *iv = arg_of(k, "rope", 1)->a;
    CHECK(iv->kind == AST_INTERVAL);
    CHECK_LOC(iv->loc, 4, 23, 4, 29);      /* "[0, 24)" */
    parsed_free(&p);
}

static void test_syntax_errors(void) {
    /* The example of the brief: no argument where one must be. */
    ERR("kernel a {\n    rope )\n}\n", 2, 10, "unexpected ')'", "clause 'rope'", "expected an expression");
    /* A second value without a comma. */
    ERR("kernel a {\n    heads q = 32 8\n}\n", 2, 18, "unexpected number '8'", "expected ','", "end of line");
    /* Missing value of a named argument inside a call. */
    ERR("kernel a {\n    rope half, scaling = llama3(factor = , low = 1)\n}\n", 2, 42,
        "unexpected ','", "arguments of 'llama3'", "expected an expression");
    /* Missing kernel name, family, brace. */
    ERR("kernel {\n    heads 1\n}\n", 1, 8, "unexpected '{'", "expected the kernel's name");
    ERR("kernel a : {\n}\n", 1, 12, "unexpected '{'", "kernel family");
    ERR("kernel a b {\n    heads 1\n}\n", 1, 10, "unexpected name 'b'", "expected ':' or '{'");
    /* Clauses outside a kernel. */
    ERR("heads 8\nkernel b { heads 1 }\n", 1, 1, "unexpected name 'heads'", "top level", "expected 'kernel'");
    /* Unfinished ?: */
    ERR("kernel a {\n    mask a ? b\n}\n", 2, 15, "unexpected end of line", "expected ':'");
    /* Two operands without an operator inside parentheses. */
    ERR("kernel a {\n    mask (a b)\n}\n", 2, 13, "unexpected name 'b'", "inside parentheses", "expected ')'");
    /* A '=' where a clause's argument starts. */
    ERR("kernel a {\n    y = 3\n}\n", 2, 7, "unexpected '='", "clause 'y'", "expected an expression");
    /* Junk where a clause starts. */
    ERR("kernel a {\n    ) z\n}\n", 2, 5, "unexpected ')'", "kernel 'a'", "expected a clause name or '}'");
    /* ';' inside parentheses is not a separator. */
    ERR("kernel a {\n    mask f(a; b)\n}\n", 2, 13, "unexpected ';'", "arguments of 'f'", "expected ','");
    /* Index closed like an interval. */
    ERR("kernel a {\n    inputs doc[token)\n}\n", 2, 21, "index of 'doc'", "']'");
    /* An empty index. */
    ERR("kernel a {\n    mask x[]\n}\n", 2, 12, "unexpected ']'", "index of 'x'", "expected an expression");
    /* Unclosed list: the error is at the kernel's '}', with a note at the '['. */
    ERR("kernel a {\n    x [1, 2\n}\n", 3, 1, "unexpected '}'", "in the list", "expected ','", "']'", "')'");
    /* Unclosed call at the end of the file. */
    ERR("kernel a {\n    mask f(a,\n", 3, 1, "unexpected end of file", "arguments of 'f'", "expected an expression");
    ERR("kernel a {\n    mask f(a,\n", 1, 10, "never closed", "end of the file");
    /* A kernel's '}' is missing before the next kernel. */
    ERR("kernel a {\n    heads 8\n\nkernel b {\n    heads 2\n}\n", 1, 10, "never closed", "line 4");
    /* Lexical errors. */
    ERR("kernel a {\n    mask $ causal\n}\n", 2, 10, "unexpected character '$'");
    ERR("kernel a {\n    dims 1e999\n}\n", 2, 10, "too large");
    ERR("kernel a {\n    dims 99999999999999999999\n}\n", 2, 10, "too large", "2^53");
    ERR("kernel a {\n    dims 0x10\n}\n", 2, 10, "malformed number '0x10'");
    ERR("kernel a {\n    dims 1e\n}\n", 2, 10, "malformed number '1e'");
    ERR("kernel a {\n    mask a & b\n}\n", 2, 12, "'&&'");
    ERR("kernel a {\n    mask a | b\n}\n", 2, 12, "'||'");
    ERR("kernel a {\n    s a ** 2\n}\n", 2, 9, "'^'");
    ERR("kernel a {\n    dtype \"bf16\"\n}\n", 2, 11, "no strings");
    ERR("kernel a {\n    mask {x}\n}\n", 2, 10, "unexpected '{' inside a kernel");
    ERR("kernel a {\n    mask \xc3\xa9t\xc3\xa9\n}\n", 2, 10, "unexpected character '\xc3\xa9'");
    ERR("kernel a {\n    mask a \xff b\n}\n", 2, 12, "invalid byte 0xFF");
    /* A file cut inside a kernel: the '{' is reported, at the '{'. */
    ERR("kernel a {\n    mask a ", 1, 10, "never closed", "end of the file");
}

static void test_error_details(void) {
    /* An embedded NUL is an error at its exact column, and parsing goes on. */
    static const char with_nul[] = "kernel a {\n    mask a\0b\n}\nkernel b { heads 1 }\n";
    parsed p;
    parse_bytes(&p, with_nul, sizeof with_nul - 1);
    CHECK(p.d.n_errors >= 1);
    CHECK(p.d.n_records >= 1 && p.d.records[0].loc.line == 2 && p.d.records[0].loc.col == 11 &&
          strstr(p.d.records[0].message, "0x00"));
    CHECK(kernel_named(p.f, "b") != NULL && kernel_named(p.f, "a") == NULL);
    parsed_free(&p);

    /* An unclosed bracket gets a note where it opened. */
    parse_text(&p, "kernel a {\n    mask f(a,\n");
    bool note = false;
    for (int i = 0; i < p.d.n_records; i++)
        if (p.d.records[i].severity == DIAG_NOTE && p.d.records[i].loc.line == 2 && p.d.records[i].loc.col == 11 &&
            strstr(p.d.records[i].message, "'('") && strstr(p.d.records[i].message, "still open"))
            note = true;
    CHECK(note);
    parsed_free(&p);

    /* A clause running into the next line inside a call: error at the next clause's
     * keyword, note at the unclosed '('. */
    parse_text(&p, "kernel a {\n    score tanh(score / 50\n    mask causal\n}\n");
    CHECK(p.d.n_records >= 2 && p.d.records[0].loc.line == 3 && p.d.records[0].loc.col == 5 &&
          strstr(p.d.records[0].message, "unexpected name 'mask' in the arguments of 'tanh'") &&
          strstr(p.d.records[0].message, "')'"));
    CHECK(p.d.n_records >= 2 && p.d.records[1].severity == DIAG_NOTE && p.d.records[1].loc.line == 2 &&
          p.d.records[1].loc.col == 15);
    parsed_free(&p);

    /* The message of an error found at an invented '}' names what was really there. */
    parse_text(&p, "kernel a {\n    heads 8,\nkernel b {\n    heads 2\n}\n");
    bool saw_kernel = false;
    for (int i = 0; i < p.d.n_records; i++)
        if (strstr(p.d.records[i].message, "unexpected 'kernel'") && p.d.records[i].loc.line == 3) saw_kernel = true;
    CHECK(saw_kernel);
    CHECK(kernel_named(p.f, "b") != NULL);
    parsed_free(&p);
}

static void test_many_errors(void) {
    const char *src =
        "kernel one {\n"            /* 1 */
        "    heads q = , kv = 8\n"  /* 2: error */
        "    dims 128\n"            /* 3 */
        "    mask causal causal\n"  /* 4: error (reported: the line after an error is checked) */
        "}\n"                       /* 5 */
        "kernel two {\n"            /* 6 */
        "    heads q = 8\n"         /* 7 */
        "}\n"                       /* 8 */
        "kernel three {\n"          /* 9 */
        "    rope half, dims = [0, 24\n"  /* 10: unclosed '[' runs into '}' */
        "}\n"                       /* 11: error */
        "stray words here\n"        /* 12: error at top level */
        "kernel 4four { x 1 }\n"    /* 13: malformed number as name -> lexical + header error */
        "kernel five : recurrence {\n"
        "    heads 2\n"
        "}\n";
    parsed p;
    parse_text(&p, src);
    int lines[] = {2, 4, 11, 12, 13};
    for (int i = 0; i < 5; i++) {
        bool found = false;
        for (int r = 0; r < p.d.n_records; r++)
            if (p.d.records[r].severity == DIAG_ERROR && p.d.records[r].loc.line == lines[i]) found = true;
        CHECK_MSG(found, "no error reported on line %d", lines[i]);
    }
    CHECK(p.d.n_errors >= 5);
    /* Kernels with errors are left out; the good ones before and after are all there. */
    CHECK(p.f && p.f->n_kernels == 2);
    CHECK(kernel_named(p.f, "two") != NULL && kernel_named(p.f, "five") != NULL);
    CHECK(kernel_named(p.f, "one") == NULL && kernel_named(p.f, "three") == NULL);
    CHECK(file_ok(p.f));
    parsed_free(&p);
}

static char *repeat(const char *prefix, const char *unit, int n, const char *suffix) {
    size_t lp = strlen(prefix), lu = strlen(unit), ls = strlen(suffix);
    char *s = malloc(lp + lu * (size_t)n + ls + 1);
    memcpy(s, prefix, lp);
    for (int i = 0; i < n; i++) memcpy(s + lp + lu * (size_t)i, unit, lu);
    memcpy(s + lp + lu * (size_t)n, suffix, ls + 1);
    return s;
}

static void check_deep(const char *prefix, const char *unit, int n, const char *mid, const char *close_unit,
                       bool want_error, const char *what) {
    char *open = repeat(prefix, unit, n, mid);
    char *src = repeat(open, close_unit, n, "\n}\nkernel after { heads 1 }\n");
    parsed p;
    parse_text(&p, src);
    CHECK_MSG((p.d.n_errors > 0) == want_error, "%s x%d: %d errors", what, n, p.d.n_errors);
    CHECK_MSG(file_ok(p.f), "%s x%d: bad tree", what, n);
    if (want_error && p.d.n_records > 0)
        CHECK_MSG(strstr(p.d.records[0].message, "nested") != NULL, "%s: %s", what, p.d.records[0].message);
    parsed_free(&p);
    free(src);
    free(open);
}

static void test_deep_nesting(void) {
    check_deep("kernel k {\n x ", "(", 150, "a", ")", false, "parens");
    check_deep("kernel k {\n x ", "(", 250, "a", ")", true, "parens");
    check_deep("kernel k {\n x ", "(", 100000, "a", ")", true, "parens");
    check_deep("kernel k {\n x ", "[", 100000, "a", "]", true, "brackets");
    check_deep("kernel k {\n x ", "f(", 150, "a", ")", false, "calls");
    check_deep("kernel k {\n x ", "-", 150, "a", "", false, "unary");
    check_deep("kernel k {\n x ", "-", 250, "a", "", true, "unary");
    check_deep("kernel k {\n x ", "!-", 50000, "a", "", true, "unary");
    check_deep("kernel k {\n x ", "a + ", 150, "a", "", false, "sum");
    check_deep("kernel k {\n x ", "a + ", 5000, "a", "", true, "sum");
    check_deep("kernel k {\n x ", "2 ^ ", 5000, "a", "", true, "power");
    check_deep("kernel k {\n x ", "c ? a : ", 5000, "a", "", true, "ternary");
    check_deep("kernel k {\n x ", "g = ", 1, "a", "", false, "named");
    /* Deep nesting must not hide the following kernels (except where parsing stopped). */
    char *src = repeat("kernel k {\n x ", "a + ", 1000, "a\n}\nkernel after { heads 1 }\n");
    parsed p;
    parse_text(&p, src);
    CHECK(p.d.n_errors == 1 && kernel_named(p.f, "after") != NULL && kernel_named(p.f, "k") == NULL);
    parsed_free(&p);
    free(src);
    /* Long but flat input is fine. */
    char *flat = repeat("kernel k {\n x ", "1, ", 20000, "1\n}\n");
    parse_text(&p, flat);
    CHECK(p.d.n_errors == 0 && arg_of(kernel_named(p.f, "k"), "x", 20000) != NULL);
    parsed_free(&p);
    free(flat);
}

/* xorshift: reproducible random input without global state. */
static uint64_t next_random(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Returns whether src parsed without errors (then its dump was round-tripped). */
static bool parse_robust(const char *src, size_t len, int *bad) {
    parsed p;
    parse_bytes(&p, src, len);
    if (!file_ok(p.f)) (*bad)++;
    if (p.d.n_errors == 0 && p.f) {
        check_roundtrip(p.f, "random input");
    } else if (p.d.n_errors > 0 && p.d.n_records == 0) {
        (*bad)++;
    }
    FILE *null = fopen("/dev/null", "w");
    if (null) {
        ast_print(null, p.f);
        diag_print(&p.d, null);
        fclose(null);
    }
    bool ok = p.d.n_errors == 0;
    parsed_free(&p);
    return ok;
}

static void test_robustness(void) {
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    int bad = 0;
    char buf[512];

    /* Random bytes, all 256 values. */
    for (int iter = 0; iter < 2000; iter++) {
        size_t len = next_random(&seed) % sizeof buf;
        for (size_t i = 0; i < len; i++) buf[i] = (char)(next_random(&seed) & 0xFF);
        parse_robust(buf, len, &bad);
    }

    /* Token soup: random sequences of the language's own tokens reach deep parser states. */
    static const char *const vocab[] = {
        "kernel", "k", " ", "\n", ";", ",", ":", "?", "=", "(", ")", "[", "]", "{", "}", "||", "&&",
        "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "//", "%", "@", "^", "!", "1", "2.5",
        "1e309", "x", "heads", "#c\n", "\t", "$", "\xc3\xa9", "\xff", "recurrence", "f(", "a[", "[0, 2)"};
    const int n_vocab = (int)(sizeof vocab / sizeof vocab[0]);
    int n_ok = 0;
    for (int iter = 0; iter < 3000; iter++) {
        size_t len = 0;
        if (iter % 2 == 0) {
            memcpy(buf, "kernel k {\n x ", 14);
            len = 14;
        }
        int n = (int)(next_random(&seed) % 40);
        for (int t = 0; t < n; t++) {
            const char *tok = vocab[next_random(&seed) % (uint64_t)n_vocab];
            size_t tl = strlen(tok);
            if (len + tl + 1 >= sizeof buf) break;
            memcpy(buf + len, tok, tl);
            len += tl;
            if (next_random(&seed) % 3 == 0) buf[len++] = ' ';
        }
        n_ok += parse_robust(buf, len, &bad);
    }
    /* Some soups must be valid, or the round trip above was never exercised. */
    CHECK_MSG(n_ok >= 20, "only %d random token sequences parsed", n_ok);

    /* Every prefix of the specs (unterminated clauses, brackets, kernels). */
    const char *specs[] = {SKETCH, README_LLAMA, README_MAMBA, README_INPUTS};
    for (int s = 0; s < 4; s++) {
        size_t len = strlen(specs[s]);
        for (size_t cut = 0; cut <= len; cut += (s == 0 ? 3 : 1)) parse_robust(specs[s], cut, &bad);
    }

    /* Single-byte mutations of the sketch. */
    size_t sketch_len = strlen(SKETCH);
    char *copy = malloc(sketch_len);
    for (int iter = 0; iter < 300; iter++) {
        memcpy(copy, SKETCH, sketch_len);
        for (int m = 0; m < 3; m++) copy[next_random(&seed) % sketch_len] = (char)(next_random(&seed) & 0xFF);
        parse_robust(copy, sketch_len, &bad);
    }
    free(copy);
    CHECK_MSG(bad == 0, "%d malformed results on random input", bad);
}

int main(void) {
    test_readme_examples();
    test_sketch();
    test_precedence();
    test_brackets();
    test_numbers();
    test_layout();
    test_locations();
    test_syntax_errors();
    test_error_details();
    test_many_errors();
    test_deep_nesting();
    test_robustness();
    return check_status("test_parser");
}
