/* The public C API (include/attnc/attnc.h): an error code and message for every failure
 * path, structured diagnostics, signatures, results against an independent attention
 * written here and against the interpreter, and four threads compiling and launching on
 * one context at once. Uses only the public header (plus check.h), as a user would. */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "attnc/attnc.h"
#include "check.h"

/* Two small kernels whose shapes the checks below spell out. */
static const char SPEC[] =
    "kernel gqa {\n"
    "    heads q = 4, kv = 2\n"
    "    dims  qk = 16, v = 8\n"
    "    mask  causal\n"
    "}\n"
    "kernel window_bias {\n"
    "    heads  q = 2, kv = 1\n"
    "    dims   16\n"
    "    rope   half\n"
    "    inputs bias[head]\n"
    "    score  score + bias[head]\n"
    "    mask   sliding_window(3)\n"
    "}\n"
    "kernel ret : recurrence {\n"
    "    heads 2\n"
    "    dims  k = 8, v = 4\n"
    "    decay 1 - 2 ^ (-5 - head)\n"
    "}\n";

/* Three errors: no dims clause (line 1, the kernel name), kv heads that do not divide
 * q heads (line 2), a misspelt clause (line 3). */
static const char BAD_SPEC[] =
    "kernel broken {\n"
    "    heads q = 4, kv = 3\n"
    "    dimz  qk = 16\n"
    "}\n";

static bool has(const char *hay, const char *needle) { return hay && strstr(hay, needle) != NULL; }

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void fill(float *x, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) x[i] = (float)((double)(rng_next(&seed) >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

static attnc_tensor view(const char *name, attnc_dtype dt, int ndim, const int64_t *shape, void *data) {
    attnc_tensor t;
    memset(&t, 0, sizeof t);
    t.name = name;
    t.dtype = dt;
    t.ndim = ndim;
    for (int i = 0; i < ndim; i++) t.shape[i] = shape[i];
    t.data = data;
    return t;
}

/* ---------------------------------------------------------------- contexts */

static void test_contexts(void) {
    attnc_error err;
    attnc_context *ctx = (attnc_context *)&err;    /* must be reset to NULL on failure */

    attnc_options o;
    attnc_options_init(&o);
    CHECK(o.target && strcmp(o.target, "cpu") == 0);
    CHECK(o.device == -1 && o.threads == 0 && o.cache_dir == NULL);

    o.target = "gpu";
    CHECK(attnc_context_create(&o, &ctx, &err) == ATTNC_ERR_UNKNOWN_TARGET);
    CHECK(err.code == ATTNC_ERR_UNKNOWN_TARGET && ctx == NULL);
    CHECK_MSG(has(err.message, "unknown target 'gpu'") && has(err.message, "ref, cpu or cuda"), "%s", err.message);

    o.target = "reff";
    CHECK(attnc_context_create(&o, &ctx, &err) == ATTNC_ERR_UNKNOWN_TARGET);
    CHECK_MSG(has(err.message, "did you mean 'ref'"), "%s", err.message);

    o.target = "cuda:sm_9x";
    CHECK(attnc_context_create(&o, &ctx, &err) == ATTNC_ERR_UNKNOWN_TARGET);
    CHECK_MSG(has(err.message, "sm_9x") && has(err.message, "cuda:sm_90a"), "%s", err.message);

    /* Without err the code still comes back. */
    o.target = "nope";
    CHECK(attnc_context_create(&o, &ctx, NULL) == ATTNC_ERR_UNKNOWN_TARGET);

    o.target = "ref";
    CHECK(attnc_context_create(&o, NULL, &err) == ATTNC_ERR_INVALID_ARGUMENT);
    CHECK(has(err.message, "out is NULL"));
    o.device = -2;
    CHECK(attnc_context_create(&o, &ctx, &err) == ATTNC_ERR_INVALID_ARGUMENT && has(err.message, "device -2"));
    o.device = -1;
    o.threads = -1;
    CHECK(attnc_context_create(&o, &ctx, &err) == ATTNC_ERR_INVALID_ARGUMENT && has(err.message, "threads -1"));
    o.threads = 0;

    /* The cache directory: explicit, off, or one that cannot be made. */
    char dir[] = "/tmp/attnc_test_api_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char sub[64];
    snprintf(sub, sizeof sub, "%s/cache/nested", dir);
    o.cache_dir = sub;
    CHECK(attnc_context_create(&o, &ctx, &err) == ATTNC_OK && err.code == ATTNC_OK && err.message[0] == '\0');
    CHECK(ctx && attnc_context_cache_dir(ctx) && strcmp(attnc_context_cache_dir(ctx), sub) == 0);
    CHECK(ctx && access(sub, W_OK) == 0);
    CHECK(ctx && strcmp(attnc_context_target(ctx), "ref") == 0);
    attnc_context_destroy(ctx);
    o.cache_dir = "";
    CHECK(attnc_context_create(&o, &ctx, &err) == ATTNC_OK && attnc_context_cache_dir(ctx) == NULL);
    attnc_context_destroy(ctx);
    char file[80];
    snprintf(file, sizeof file, "%s/plain_file", dir);
    FILE *f = fopen(file, "w");
    CHECK(f != NULL);
    if (f) fclose(f);
    char under_file[96];
    snprintf(under_file, sizeof under_file, "%s/sub", file);
    o.cache_dir = under_file;
    CHECK(attnc_context_create(&o, &ctx, &err) == ATTNC_ERR_IO && ctx == NULL);
    CHECK_MSG(has(err.message, under_file), "%s", err.message);
    remove(file);
    rmdir(sub);
    snprintf(sub, sizeof sub, "%s/cache", dir);
    rmdir(sub);
    rmdir(dir);

    /* cpu: there exactly when the program links the LLVM backend. */
    o.target = "cpu";
    o.cache_dir = "";
    attnc_status s = attnc_context_create(&o, &ctx, &err);
#ifdef ATTNC_HAVE_LLVM
    CHECK_MSG(s == ATTNC_OK, "%s", err.message);
    CHECK(ctx && strcmp(attnc_context_target(ctx), "cpu") == 0);
#else
    CHECK(s == ATTNC_ERR_TARGET_UNAVAILABLE && has(err.message, "LLVM"));
#endif
    attnc_context_destroy(ctx);

    /* cuda: a context where a GPU and its driver are, a clear refusal elsewhere. */
    o.target = "cuda";
    s = attnc_context_create(&o, &ctx, &err);
    if (s == ATTNC_OK) {
        CHECK(strncmp(attnc_context_target(ctx), "cuda:sm_", 8) == 0);
        printf("test_api: cuda available as %s\n", attnc_context_target(ctx));
        attnc_context_destroy(ctx);
    } else {
        CHECK(s == ATTNC_ERR_TARGET_UNAVAILABLE && ctx == NULL);
        CHECK_MSG(has(err.message, "cuda"), "%s", err.message);
        printf("test_api: cuda context refused as expected here: %s\n", err.message);
    }

    /* a device that does not exist is refused at context creation, with its number */
    o.device = 3;
    s = attnc_context_create(&o, &ctx, &err);
    CHECK(s == ATTNC_ERR_TARGET_UNAVAILABLE && ctx == NULL);
    CHECK_MSG(has(err.message, "device 3") || has(err.message, "CUDA driver") || has(err.message, "no CUDA device"), "%s",
              err.message);
    CHECK(attnc_context_create(&o, &ctx, NULL) == ATTNC_ERR_TARGET_UNAVAILABLE);
    o.device = -1;

    attnc_context_destroy(NULL);

    CHECK(strcmp(attnc_status_name(ATTNC_OK), "ATTNC_OK") == 0);
    CHECK(strcmp(attnc_status_name(ATTNC_ERR_SHAPE), "ATTNC_ERR_SHAPE") == 0);
    CHECK(strcmp(attnc_status_name(ATTNC_ERR_INTERNAL), "ATTNC_ERR_INTERNAL") == 0);
    CHECK(strcmp(attnc_status_name((attnc_status)999), "?") == 0);
    for (int a = ATTNC_OK; a <= ATTNC_ERR_INTERNAL; a++)
        for (int b = a + 1; b <= ATTNC_ERR_INTERNAL; b++)
            CHECK(strcmp(attnc_status_name((attnc_status)a), attnc_status_name((attnc_status)b)) != 0);
    CHECK(strlen(attnc_version()) > 0);
}

static attnc_context *make_ctx(const char *target) {
    attnc_options o;
    attnc_options_init(&o);
    o.target = target;
    o.cache_dir = "";
    attnc_context *ctx = NULL;
    attnc_error err;
    if (attnc_context_create(&o, &ctx, &err) != ATTNC_OK) fprintf(stderr, "context %s: %s\n", target, err.message);
    return ctx;
}

/* ---------------------------------------------------------------- programs */

static void test_programs(attnc_context *ctx) {
    attnc_error err;
    attnc_program *p = NULL;

    CHECK(attnc_compile_string(ctx, BAD_SPEC, 0, "bad.attn", &p, &err) == ATTNC_ERR_SPEC);
    CHECK(p != NULL && err.code == ATTNC_ERR_SPEC);
    CHECK_MSG(has(err.message, "bad.attn:"), "%s", err.message);
    CHECK(attnc_program_error_count(p) == 3);
    CHECK(attnc_program_diagnostic_count(p) == 3);
    const attnc_diagnostic *d0 = attnc_program_diagnostic(p, 0), *d1 = attnc_program_diagnostic(p, 1),
                           *d2 = attnc_program_diagnostic(p, 2);
    CHECK(d0 && d0->severity == ATTNC_SEVERITY_ERROR && strcmp(d0->file, "bad.attn") == 0);
    CHECK(d0 && d0->line == 1 && d0->col == 8 && d0->end_col == 13);
    CHECK_MSG(d0 && has(d0->message, "no 'dims' clause"), "%s", d0 ? d0->message : "");
    CHECK(d1 && d1->line == 2 && d1->col == 18);
    CHECK_MSG(d1 && has(d1->message, "must divide"), "%s", d1 ? d1->message : "");
    CHECK(d2 && d2->line == 3 && d2->col == 5 && d2->end_col == 8);
    CHECK_MSG(d2 && has(d2->message, "did you mean 'dims'"), "%s", d2 ? d2->message : "");
    CHECK(attnc_program_diagnostic(p, -1) == NULL && attnc_program_diagnostic(p, 99) == NULL);
    const char *text = attnc_program_diagnostics_text(p);
    CHECK_MSG(has(text, "bad.attn:1:8: error: kernel 'broken' has no 'dims' clause") &&
              has(text, "bad.attn:2:18: error: ") && has(text, "bad.attn:3:5: error: ") &&
              has(text, "    dimz  qk = 16\n      ^~~~\n"), "%s", text);
    CHECK(attnc_program_kernel_count(p) == 0 && attnc_program_kernel_name(p, 0) == NULL);
    attnc_kernel *k = (attnc_kernel *)&err;
    CHECK(attnc_kernel_get(p, "broken", &k, &err) == ATTNC_ERR_SPEC && k == NULL);
    CHECK(has(err.message, "3 errors"));
    attnc_program_destroy(p);

    /* The name defaults to <string>; len bounds an unterminated buffer. */
    char buf[sizeof SPEC + 8];
    memcpy(buf, SPEC, sizeof SPEC - 1);
    memset(buf + sizeof SPEC - 1, '@', 9);    /* garbage after the spec: must not be read */
    CHECK(attnc_compile_string(ctx, buf, sizeof SPEC - 1, NULL, &p, &err) == ATTNC_OK);
    CHECK(attnc_program_error_count(p) == 0 && attnc_program_diagnostic_count(p) == 0);
    CHECK(strcmp(attnc_program_diagnostics_text(p), "") == 0);
    CHECK(attnc_program_kernel_count(p) == 3);
    CHECK(attnc_program_kernel_name(p, 0) && strcmp(attnc_program_kernel_name(p, 0), "gqa") == 0);
    CHECK(attnc_program_kernel_name(p, 2) && strcmp(attnc_program_kernel_name(p, 2), "ret") == 0);
    attnc_program_destroy(p);
    CHECK(attnc_compile_string(ctx, "kernel x {\n heads q = 1\n dims 8\n}\n@", 0, NULL, &p, &err) == ATTNC_ERR_SPEC);
    CHECK_MSG(has(attnc_program_diagnostics_text(p), "<string>:5:"), "%s", attnc_program_diagnostics_text(p));
    attnc_program_destroy(p);

    /* an empty spec is valid and has no kernels */
    CHECK(attnc_compile_string(ctx, "# nothing\n", 0, NULL, &p, &err) == ATTNC_OK);
    CHECK(attnc_program_kernel_count(p) == 0);
    attnc_kernel *none = NULL;
    CHECK(attnc_kernel_get(p, "x", &none, &err) == ATTNC_ERR_UNKNOWN_KERNEL && has(err.message, "no kernels"));
    attnc_program_destroy(p);

    CHECK(attnc_compile_file(ctx, "/nonexistent/x.attn", &p, &err) == ATTNC_ERR_IO && p == NULL);
    CHECK(has(err.message, "/nonexistent/x.attn"));
    CHECK(attnc_compile_file(ctx, ATTNC_SOURCE_DIR "/examples/phi2.attn", &p, &err) == ATTNC_OK);
    CHECK(attnc_program_kernel_count(p) == 1 && strcmp(attnc_program_kernel_name(p, 0), "phi2") == 0);
    attnc_program_destroy(p);

    CHECK(attnc_compile_string(NULL, SPEC, 0, NULL, &p, &err) == ATTNC_ERR_INVALID_ARGUMENT && p == NULL);
    CHECK(attnc_compile_string(ctx, NULL, 0, NULL, &p, &err) == ATTNC_ERR_INVALID_ARGUMENT);
    CHECK(attnc_compile_string(ctx, SPEC, 0, NULL, NULL, &err) == ATTNC_ERR_INVALID_ARGUMENT);
    CHECK(attnc_compile_file(ctx, NULL, &p, &err) == ATTNC_ERR_INVALID_ARGUMENT);
    attnc_program_destroy(NULL);

    /* Lookup: unknown names, the same handle twice, NULL arguments. */
    CHECK(attnc_compile_string(ctx, SPEC, 0, "spec.attn", &p, &err) == ATTNC_OK);
    CHECK(attnc_kernel_get(p, "gqa_", &k, &err) == ATTNC_ERR_UNKNOWN_KERNEL && k == NULL);
    CHECK_MSG(has(err.message, "did you mean 'gqa'") && has(err.message, "window_bias"), "%s", err.message);
    CHECK(attnc_kernel_get(p, "nothing_like_it", &k, &err) == ATTNC_ERR_UNKNOWN_KERNEL);
    CHECK(attnc_kernel_get(NULL, "gqa", &k, &err) == ATTNC_ERR_INVALID_ARGUMENT);
    CHECK(attnc_kernel_get(p, NULL, &k, &err) == ATTNC_ERR_INVALID_ARGUMENT);
    CHECK(attnc_kernel_get(p, "gqa", NULL, &err) == ATTNC_ERR_INVALID_ARGUMENT);
    attnc_kernel *k2 = NULL;
    CHECK_MSG(attnc_kernel_get(p, "gqa", &k, &err) == ATTNC_OK, "%s", err.message);
    CHECK(attnc_kernel_get(p, "gqa", &k2, NULL) == ATTNC_OK && k2 == k);
    CHECK(strcmp(attnc_kernel_name(k), "gqa") == 0 && !attnc_kernel_is_recurrence(k));

    /* Signatures. */
    attnc_tensor_info info[8];
    int n = -1;
    CHECK(attnc_kernel_signature(k, 2, 3, 5, info, 8, &n, &err) == ATTNC_OK && n == 5);
    static const char *const names[] = { "q", "k", "v", "o", "lse" };
    static const int64_t shapes[5][4] = { { 2, 3, 4, 16 }, { 2, 5, 2, 16 }, { 2, 5, 2, 8 }, { 2, 3, 4, 8 }, { 2, 3, 4, 0 } };
    for (int i = 0; i < 5 && i < n; i++) {
        CHECK(strcmp(info[i].name, names[i]) == 0);
        CHECK(info[i].ndim == (i == 4 ? 3 : 4));
        for (int d = 0; d < info[i].ndim; d++) CHECK(info[i].shape[d] == shapes[i][d]);
        CHECK(info[i].role == (i >= 3 ? ATTNC_ROLE_OUTPUT : ATTNC_ROLE_INPUT));
        CHECK(info[i].optional == (i == 4));
        CHECK(info[i].dtype == ATTNC_F32);
    }
    CHECK(strcmp(info[1].dim_names[1], "seq_k") == 0 && strcmp(info[1].dim_names[2], "heads_kv") == 0);
    CHECK(strcmp(info[0].dim_names[3], "d_qk") == 0 && strcmp(info[3].dim_names[3], "d_v") == 0);
    memset(info, 0, sizeof info);
    CHECK(attnc_kernel_signature(k, 1, 1, 1, info, 2, &n, &err) == ATTNC_OK && n == 5);
    CHECK(info[1].name && strcmp(info[1].name, "k") == 0 && info[2].name == NULL);
    CHECK(attnc_kernel_signature(k, 1, 1, 1, NULL, 0, &n, &err) == ATTNC_OK && n == 5);
    CHECK(attnc_kernel_signature(k, -1, 1, 1, info, 8, &n, &err) == ATTNC_ERR_INVALID_ARGUMENT && n == 0);
    CHECK(attnc_kernel_signature(k, 1, 1, 1, NULL, 3, &n, &err) == ATTNC_ERR_INVALID_ARGUMENT);
    CHECK(attnc_kernel_signature(NULL, 1, 1, 1, info, 8, &n, &err) == ATTNC_ERR_INVALID_ARGUMENT);
    CHECK(attnc_kernel_signature(k, 1, 1, 1, info, 8, NULL, &err) == ATTNC_ERR_INVALID_ARGUMENT);

    attnc_kernel *wb = NULL;
    CHECK(attnc_kernel_get(p, "window_bias", &wb, &err) == ATTNC_OK);
    CHECK(attnc_kernel_signature(wb, 1, 4, 6, info, 8, &n, &err) == ATTNC_OK && n == 6);
    CHECK(n == 6 && strcmp(info[3].name, "bias") == 0 && info[3].ndim == 1 && info[3].shape[0] == 2 &&
          info[3].role == ATTNC_ROLE_INPUT && !info[3].optional);

    /* The recurrence: seq_q and seq_k must agree. Its lookup may fail on a backend
     * without recurrences, but then with a compile error and a reason. */
    attnc_kernel *rk = NULL;
    attnc_status s = attnc_kernel_get(p, "ret", &rk, &err);
    if (s == ATTNC_OK) {
        CHECK(attnc_kernel_is_recurrence(rk));
        CHECK(attnc_kernel_signature(rk, 1, 4, 5, info, 8, &n, &err) == ATTNC_ERR_INVALID_ARGUMENT);
        CHECK_MSG(has(err.message, "recurrence"), "%s", err.message);
        CHECK(attnc_kernel_signature(rk, 1, 4, 4, info, 8, &n, &err) == ATTNC_OK && n == 6);
        CHECK(strcmp(info[3].name, "state_in") == 0 && info[3].optional && info[3].ndim == 4 && info[3].shape[2] == 8);
    } else {
        CHECK(s == ATTNC_ERR_COMPILE && rk == NULL);
        CHECK_MSG(has(err.message, "ret") && strlen(err.message) > 20, "%s", err.message);
        printf("test_api: recurrence on %s: %s\n", attnc_context_target(ctx), err.message);
    }
    attnc_program_destroy(p);
}

/* ---------------------------------------------------------------- launches */

enum { B = 2, SQ = 3, SK = 5, HQ = 4, HKV = 2, DQK = 16, DV = 8 };

typedef struct gqa_data {
    float q[B * SQ * HQ * DQK], k[B * SK * HKV * DQK], v[B * SK * HKV * DV];
    float o[B * SQ * HQ * DV], lse[B * SQ * HQ];
} gqa_data;

/* Causal GQA written out directly: the independent check of the ref target. */
static void naive_gqa(const gqa_data *x, double *o, double *lse) {
    for (int b = 0; b < B; b++)
        for (int h = 0; h < HQ; h++) {
            int g = h / (HQ / HKV);
            for (int r = 0; r < SQ; r++) {
                int qi = r + SK - SQ;
                double s[SK], m = -INFINITY;
                for (int j = 0; j <= qi; j++) {
                    double dot = 0;
                    for (int d = 0; d < DQK; d++)
                        dot += (double)x->q[((b * SQ + r) * HQ + h) * DQK + d] * x->k[((b * SK + j) * HKV + g) * DQK + d];
                    s[j] = dot / sqrt((double)DQK);
                    if (s[j] > m) m = s[j];
                }
                double sum = 0;
                for (int j = 0; j <= qi; j++) sum += exp(s[j] - m);
                for (int e = 0; e < DV; e++) {
                    double acc = 0;
                    for (int j = 0; j <= qi; j++) acc += exp(s[j] - m) / sum * x->v[((b * SK + j) * HKV + g) * DV + e];
                    o[((b * SQ + r) * HQ + h) * DV + e] = acc;
                }
                lse[(b * SQ + r) * HQ + h] = m + log(sum);
            }
        }
}

static int gqa_views(gqa_data *x, attnc_tensor *t) {
    static const int64_t qs[] = { B, SQ, HQ, DQK }, ks[] = { B, SK, HKV, DQK }, vs[] = { B, SK, HKV, DV },
                         os[] = { B, SQ, HQ, DV }, ls[] = { B, SQ, HQ };
    t[0] = view("q", ATTNC_F32, 4, qs, x->q);
    t[1] = view("k", ATTNC_F32, 4, ks, x->k);
    t[2] = view("v", ATTNC_F32, 4, vs, x->v);
    t[3] = view("o", ATTNC_F32, 4, os, x->o);
    t[4] = view("lse", ATTNC_F32, 3, ls, x->lse);
    return 5;
}

static void gqa_fill(gqa_data *x, uint64_t seed) {
    fill(x->q, sizeof x->q / sizeof x->q[0], seed);
    fill(x->k, sizeof x->k / sizeof x->k[0], seed + 1);
    fill(x->v, sizeof x->v / sizeof x->v[0], seed + 2);
    for (size_t i = 0; i < sizeof x->o / sizeof x->o[0]; i++) x->o[i] = 12345.0f;
    for (size_t i = 0; i < sizeof x->lse / sizeof x->lse[0]; i++) x->lse[i] = 12345.0f;
}

static bool untouched(const gqa_data *x) {
    for (size_t i = 0; i < sizeof x->o / sizeof x->o[0]; i++)
        if (x->o[i] != 12345.0f) return false;
    return true;
}

static void test_launch_errors(attnc_context *ctx) {
    attnc_error err;
    attnc_program *p = NULL;
    attnc_kernel *k = NULL;
    CHECK(attnc_compile_string(ctx, SPEC, 0, NULL, &p, &err) == ATTNC_OK);
    CHECK_MSG(attnc_kernel_get(p, "gqa", &k, &err) == ATTNC_OK, "%s", err.message);
    if (!k) { attnc_program_destroy(p); return; }
    static gqa_data x;
    gqa_fill(&x, 1);
    attnc_tensor t[8];
    int n = gqa_views(&x, t);

    /* missing v */
    attnc_tensor m[4] = { t[0], t[1], t[3], t[4] };
    CHECK(attnc_launch(k, B, SQ, SK, m, 4, NULL, &err) == ATTNC_ERR_MISSING_TENSOR);
    CHECK_MSG(has(err.message, "missing tensor 'v'") && has(err.message, "[2, 5, 2, 8]"), "%s", err.message);
    /* o is required too; lse is not */
    CHECK(attnc_launch(k, B, SQ, SK, t, 3, NULL, &err) == ATTNC_ERR_MISSING_TENSOR && has(err.message, "'o'"));
    /* unknown name, with a suggestion */
    attnc_tensor u[5];
    memcpy(u, t, sizeof u);
    u[2].name = "vv";
    CHECK(attnc_launch(k, B, SQ, SK, u, 5, NULL, &err) == ATTNC_ERR_UNKNOWN_TENSOR);
    CHECK_MSG(has(err.message, "unknown tensor 'vv'") && has(err.message, "did you mean 'v'"), "%s", err.message);
    /* wrong dtype */
    memcpy(u, t, sizeof u);
    u[0].dtype = ATTNC_F16;
    CHECK(attnc_launch(k, B, SQ, SK, u, 5, NULL, &err) == ATTNC_ERR_DTYPE && has(err.message, "'q'"));
    u[0].dtype = (attnc_dtype)42;
    CHECK(attnc_launch(k, B, SQ, SK, u, 5, NULL, &err) == ATTNC_ERR_DTYPE);
    /* wrong shape, wrong rank */
    memcpy(u, t, sizeof u);
    u[1].shape[3] = 8;
    CHECK(attnc_launch(k, B, SQ, SK, u, 5, NULL, &err) == ATTNC_ERR_SHAPE);
    CHECK_MSG(has(err.message, "tensor 'k': expected shape [2, 5, 2, 16]") && has(err.message, "heads_kv"), "%s",
              err.message);
    memcpy(u, t, sizeof u);
    u[4].ndim = 4;
    CHECK(attnc_launch(k, B, SQ, SK, u, 5, NULL, &err) == ATTNC_ERR_SHAPE);
    u[4].ndim = 9;
    CHECK(attnc_launch(k, B, SQ, SK, u, 5, NULL, &err) == ATTNC_ERR_SHAPE);
    /* the lengths decide the shapes: right views, wrong seq_k */
    CHECK(attnc_launch(k, B, SQ, SK + 1, t, n, NULL, &err) == ATTNC_ERR_SHAPE);
    /* null data, misaligned data, bad strides */
    memcpy(u, t, sizeof u);
    u[2].data = NULL;
    CHECK(attnc_launch(k, B, SQ, SK, u, 5, NULL, &err) == ATTNC_ERR_NULL_POINTER && has(err.message, "'v'"));
    memcpy(u, t, sizeof u);
    u[3].data = (char *)x.o + 2;
    CHECK(attnc_launch(k, B, SQ, SK, u, 5, NULL, &err) == ATTNC_ERR_LAYOUT && has(err.message, "aligned"));
    memcpy(u, t, sizeof u);
    int64_t neg[4] = { SK * HKV * DQK, HKV * DQK, -DQK, 1 };
    memcpy(u[1].strides, neg, sizeof neg);
    CHECK(attnc_launch(k, B, SQ, SK, u, 5, NULL, &err) == ATTNC_ERR_LAYOUT && has(err.message, "stride -16"));
    memcpy(u, t, sizeof u);
    int64_t overlap[4] = { SQ * HQ * DV, 0, DV, 1 };
    memcpy(u[3].strides, overlap, sizeof overlap);
    CHECK(attnc_launch(k, B, SQ, SK, u, 5, NULL, &err) == ATTNC_ERR_LAYOUT && has(err.message, "overlap"));
    /* argument errors */
    memcpy(u, t, sizeof u);
    u[4].name = "q";
    CHECK(attnc_launch(k, B, SQ, SK, u, 5, NULL, &err) == ATTNC_ERR_INVALID_ARGUMENT && has(err.message, "twice"));
    u[4].name = NULL;
    CHECK(attnc_launch(k, B, SQ, SK, u, 5, NULL, &err) == ATTNC_ERR_INVALID_ARGUMENT && has(err.message, "no name"));
    CHECK(attnc_launch(NULL, B, SQ, SK, t, n, NULL, &err) == ATTNC_ERR_INVALID_ARGUMENT);
    CHECK(attnc_launch(k, B, SQ, SK, NULL, n, NULL, &err) == ATTNC_ERR_INVALID_ARGUMENT);
    CHECK(attnc_launch(k, B, SQ, SK, t, -1, NULL, &err) == ATTNC_ERR_INVALID_ARGUMENT);
    CHECK(attnc_launch(k, B, SQ, SK, NULL, 0, NULL, &err) == ATTNC_ERR_MISSING_TENSOR);
    CHECK(attnc_launch(k, -1, SQ, SK, t, n, NULL, &err) == ATTNC_ERR_INVALID_ARGUMENT && has(err.message, "batch -1"));
    CHECK(attnc_launch(k, B, (int64_t)1 << 40, SK, t, n, NULL, &err) == ATTNC_ERR_INVALID_ARGUMENT);
    attnc_tensor many[30];
    for (int i = 0; i < 30; i++) many[i] = t[i % n];
    CHECK(attnc_launch(k, B, SQ, SK, many, 30, NULL, &err) == ATTNC_ERR_INVALID_ARGUMENT);
    attnc_launch_options lo = { (void *)&lo, 0 };
    CHECK(attnc_launch(k, B, SQ, SK, t, n, &lo, &err) == ATTNC_ERR_INVALID_ARGUMENT && has(err.message, "stream"));
    lo.stream = NULL;
    lo.device_pointers = 1;
    CHECK(attnc_launch(k, B, SQ, SK, t, n, &lo, &err) == ATTNC_ERR_INVALID_ARGUMENT);
    /* no failed launch wrote anything */
    CHECK(untouched(&x));
    /* and without err the codes are the same */
    CHECK(attnc_launch(k, B, SQ, SK, m, 4, NULL, NULL) == ATTNC_ERR_MISSING_TENSOR);
    CHECK(untouched(&x));

    /* the right views run, and overwrite every output element */
    lo.device_pointers = 0;
    CHECK_MSG(attnc_launch(k, B, SQ, SK, t, n, &lo, &err) == ATTNC_OK, "%s", err.message);
    CHECK(err.code == ATTNC_OK && err.message[0] == '\0');
    bool all_written = true;
    for (size_t i = 0; i < sizeof x.o / sizeof x.o[0]; i++) all_written &= x.o[i] != 12345.0f;
    CHECK(all_written);
    attnc_program_destroy(p);
}

/* ref against the naive attention above; cpu against ref, with strided views too. */
static void test_results(attnc_context *ref, attnc_context *cpu) {
    attnc_error err;
    attnc_program *p = NULL;
    attnc_kernel *k = NULL;
    CHECK(attnc_compile_string(ref, SPEC, 0, NULL, &p, &err) == ATTNC_OK);
    CHECK(attnc_kernel_get(p, "gqa", &k, &err) == ATTNC_OK);
    static gqa_data x;
    static double want_o[B * SQ * HQ * DV], want_lse[B * SQ * HQ];
    gqa_fill(&x, 7);
    naive_gqa(&x, want_o, want_lse);
    attnc_tensor t[5];
    int n = gqa_views(&x, t);
    CHECK_MSG(attnc_launch(k, B, SQ, SK, t, n, NULL, &err) == ATTNC_OK, "%s", err.message);
    double worst = 0;
    for (int i = 0; i < B * SQ * HQ * DV; i++) worst = fmax(worst, fabs(x.o[i] - want_o[i]));
    for (int i = 0; i < B * SQ * HQ; i++) worst = fmax(worst, fabs(x.lse[i] - want_lse[i]));
    CHECK_MSG(worst < 1e-5, "ref vs naive: max error %g", worst);
    static float ref_o[B * SQ * HQ * DV];
    memcpy(ref_o, x.o, sizeof ref_o);

    /* f64 output views (exact comparisons) work on the reference target */
    static double o64[B * SQ * HQ * DV];
    t[3].dtype = ATTNC_F64;
    t[3].data = o64;
    CHECK_MSG(attnc_launch(k, B, SQ, SK, t, n, NULL, &err) == ATTNC_OK, "%s", err.message);
    worst = 0;
    for (int i = 0; i < B * SQ * HQ * DV; i++) worst = fmax(worst, fabs(o64[i] - want_o[i]));
    CHECK_MSG(worst < 1e-12, "ref f64 vs naive: %g", worst);
    attnc_program_destroy(p);
    if (!cpu) return;

    CHECK(attnc_compile_string(cpu, SPEC, 0, NULL, &p, &err) == ATTNC_OK);
    CHECK_MSG(attnc_kernel_get(p, "gqa", &k, &err) == ATTNC_OK, "%s", err.message);
    if (!k) { attnc_program_destroy(p); return; }
    gqa_fill(&x, 7);
    n = gqa_views(&x, t);
    CHECK_MSG(attnc_launch(k, B, SQ, SK, t, n, NULL, &err) == ATTNC_OK, "%s", err.message);
    worst = 0;
    for (int i = 0; i < B * SQ * HQ * DV; i++) worst = fmax(worst, fabs(x.o[i] - ref_o[i]));
    CHECK_MSG(worst < 1e-5, "cpu vs ref: %g", worst);

    /* k as a strided slice of a wider buffer (every other head slot) */
    static float wide[B * SK * 2 * HKV * DQK];
    for (int b = 0; b < B; b++)
        for (int j = 0; j < SK; j++)
            for (int g = 0; g < HKV; g++)
                for (int d = 0; d < DQK; d++) {
                    wide[(((b * SK + j) * 2 * HKV) + 2 * g) * DQK + d] = x.k[((b * SK + j) * HKV + g) * DQK + d];
                    wide[(((b * SK + j) * 2 * HKV) + 2 * g + 1) * DQK + d] = NAN;
                }
    t[1].data = wide;
    int64_t st[4] = { SK * 2 * HKV * DQK, 2 * HKV * DQK, 2 * DQK, 1 };
    memcpy(t[1].strides, st, sizeof st);
    memset(x.o, 0, sizeof x.o);
    CHECK_MSG(attnc_launch(k, B, SQ, SK, t, n, NULL, &err) == ATTNC_OK, "%s", err.message);
    worst = 0;
    for (int i = 0; i < B * SQ * HQ * DV; i++) worst = fmax(worst, fabs(x.o[i] - ref_o[i]));
    CHECK_MSG(worst < 1e-5, "cpu strided vs ref: %g", worst);
    attnc_program_destroy(p);
}

/* ---------------------------------------------------------------- threads */

enum { THREADS = 4, ROUNDS = 6 };

typedef struct thread_job {
    attnc_context *ctx;
    attnc_program *shared;         /* every thread also looks kernels up here, racing */
    int id;
    gqa_data x[ROUNDS];
    float wb_o[ROUNDS][6 * 2 * 16];
    int failures;
    char first_error[sizeof(((attnc_error *)0)->message)];
} thread_job;

static float wb_q[6 * 2 * 16], wb_k[6 * 1 * 16], wb_v[6 * 1 * 16], wb_bias[2] = { 0.25f, -0.5f };

static bool run_window_bias(attnc_kernel *k, float *o, attnc_error *err) {
    static const int64_t qs[] = { 1, 6, 2, 16 }, ks[] = { 1, 6, 1, 16 }, bs[] = { 2 };
    attnc_tensor t[5] = {
        view("q", ATTNC_F32, 4, qs, wb_q), view("k", ATTNC_F32, 4, ks, wb_k), view("v", ATTNC_F32, 4, ks, wb_v),
        view("bias", ATTNC_F32, 1, bs, wb_bias), view("o", ATTNC_F32, 4, qs, o),
    };
    return attnc_launch(k, 1, 6, 6, t, 5, NULL, err) == ATTNC_OK;
}

static void *thread_main(void *arg) {
    thread_job *j = arg;
    attnc_error err;
    for (int r = 0; r < ROUNDS; r++) {
        /* Odd rounds compile their own program; even rounds use the shared one. */
        attnc_program *own = NULL, *p = j->shared;
        if (r % 2) {
            if (attnc_compile_string(j->ctx, SPEC, 0, NULL, &own, &err) != ATTNC_OK) goto fail;
            p = own;
        }
        attnc_kernel *k = NULL, *wb = NULL;
        if (attnc_kernel_get(p, "gqa", &k, &err) != ATTNC_OK) goto fail;
        if (attnc_kernel_get(p, "window_bias", &wb, &err) != ATTNC_OK) goto fail;
        attnc_tensor t[5];
        int n = gqa_views(&j->x[r], t);
        if (attnc_launch(k, B, SQ, SK, t, n, NULL, &err) != ATTNC_OK) goto fail;
        if (!run_window_bias(wb, j->wb_o[r], &err)) goto fail;
        attnc_program_destroy(own);
        continue;
    fail:
        if (!j->failures++) snprintf(j->first_error, sizeof j->first_error, "%s", err.message);
        attnc_program_destroy(own);
    }
    return NULL;
}

static void test_threads(attnc_context *ctx) {
    fill(wb_q, sizeof wb_q / sizeof wb_q[0], 100);
    fill(wb_k, sizeof wb_k / sizeof wb_k[0], 101);
    fill(wb_v, sizeof wb_v / sizeof wb_v[0], 102);
    static thread_job jobs[THREADS];
    attnc_error err;
    attnc_program *shared = NULL;
    CHECK(attnc_compile_string(ctx, SPEC, 0, NULL, &shared, &err) == ATTNC_OK);
    for (int i = 0; i < THREADS; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].ctx = ctx;
        jobs[i].shared = shared;
        jobs[i].id = i;
        for (int r = 0; r < ROUNDS; r++) gqa_fill(&jobs[i].x[r], (uint64_t)(1000 * i + 10 * r));
    }
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) CHECK(pthread_create(&th[i], NULL, thread_main, &jobs[i]) == 0);
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);

    /* The same work on one thread, with a fresh program: results must be identical. */
    attnc_program *p = NULL;
    attnc_kernel *k = NULL, *wb = NULL;
    CHECK(attnc_compile_string(ctx, SPEC, 0, NULL, &p, &err) == ATTNC_OK);
    CHECK(attnc_kernel_get(p, "gqa", &k, &err) == ATTNC_OK && attnc_kernel_get(p, "window_bias", &wb, &err) == ATTNC_OK);
    static float single_wb[6 * 2 * 16];
    CHECK(run_window_bias(wb, single_wb, &err));
    bool any_nonzero = false;
    for (size_t e = 0; e < sizeof single_wb / sizeof single_wb[0]; e++) any_nonzero |= single_wb[e] != 0;
    CHECK(any_nonzero);
    for (int i = 0; i < THREADS; i++) {
        CHECK_MSG(jobs[i].failures == 0, "thread %d: %d failures, first: %s", i, jobs[i].failures, jobs[i].first_error);
        for (int r = 0; r < ROUNDS; r++) {
            static gqa_data x;
            gqa_fill(&x, (uint64_t)(1000 * i + 10 * r));
            attnc_tensor t[5];
            int n = gqa_views(&x, t);
            CHECK(attnc_launch(k, B, SQ, SK, t, n, NULL, &err) == ATTNC_OK);
            CHECK_MSG(memcmp(x.o, jobs[i].x[r].o, sizeof x.o) == 0 && memcmp(x.lse, jobs[i].x[r].lse, sizeof x.lse) == 0,
                      "thread %d round %d differs from the single-threaded run", i, r);
            CHECK(memcmp(single_wb, jobs[i].wb_o[r], sizeof single_wb) == 0);
        }
    }
    attnc_program_destroy(p);
    /* shared is left for attnc_context_destroy, which must free it (ASan checks) */
}

/* Workspace queries: argument errors; ref needs none; a cpu decode over many keys needs
 * split partials, more for more keys (the split count grows), and prefill at least its
 * per-thread tiles. */
static void test_workspace(attnc_context *ref, attnc_context *cpu) {
    static const char spec[] =
        "kernel pre {\n heads q = 4, kv = 2\n dims qk = 64, v = 64\n mask causal\n}\n"
        "kernel dec {\n heads q = 4, kv = 2\n dims qk = 64, v = 64\n mask causal\n phase decode\n}\n";
    attnc_context *ctxs[2] = {ref, cpu};
    for (int c = 0; c < 2; c++) {
        if (!ctxs[c]) continue;
        attnc_program *p = NULL;
        attnc_kernel *pre = NULL, *dec = NULL;
        attnc_error err;
        CHECK_MSG(attnc_compile_string(ctxs[c], spec, 0, "ws.attn", &p, &err) == ATTNC_OK, "%s", err.message);
        CHECK(attnc_kernel_get(p, "pre", &pre, &err) == ATTNC_OK && attnc_kernel_get(p, "dec", &dec, &err) == ATTNC_OK);
        if (!pre || !dec) { attnc_program_destroy(p); continue; }
        int64_t b = -1, small = -1, big = -1;
        CHECK(attnc_kernel_workspace(NULL, 1, 1, 1, &b, &err) == ATTNC_ERR_INVALID_ARGUMENT && b == 0);
        CHECK(attnc_kernel_workspace(pre, 1, 1, 1, NULL, &err) == ATTNC_ERR_INVALID_ARGUMENT);
        CHECK(attnc_kernel_workspace(pre, -1, 1, 1, &b, &err) == ATTNC_ERR_INVALID_ARGUMENT);
        CHECK_MSG(attnc_kernel_workspace(pre, 2, 300, 300, &b, &err) == ATTNC_OK, "%s", err.message);
        CHECK_MSG(attnc_kernel_workspace(dec, 2, 1, 64, &small, &err) == ATTNC_OK, "%s", err.message);
        CHECK_MSG(attnc_kernel_workspace(dec, 2, 1, 100000, &big, &err) == ATTNC_OK, "%s", err.message);
        if (c == 0) {
            CHECK(b == 0 && small == 0 && big == 0);
        } else {
            CHECK_MSG(b > 0 && big > small && small > 0, "cpu workspace: prefill %lld, decode 64 keys %lld, 100k keys %lld",
                      (long long)b, (long long)small, (long long)big);
            /* bounded by O(batch · heads · splits · d_v) plus per-thread tiles: far below the K/V bytes */
            CHECK_MSG(big < (int64_t)2 * 100000 * 2 * 128 * 4, "cpu decode workspace %lld bytes", (long long)big);
        }
        attnc_program_destroy(p);
    }
}

int main(void) {
    test_contexts();
    attnc_context *ref = make_ctx("ref");
    CHECK(ref != NULL);
    if (!ref) return check_status("test_api");
    test_programs(ref);
    test_launch_errors(ref);
#ifdef ATTNC_HAVE_LLVM
    attnc_context *cpu = make_ctx("cpu");
    CHECK(cpu != NULL);
    if (cpu) {
        test_programs(cpu);
        test_launch_errors(cpu);
    }
#else
    attnc_context *cpu = NULL;
    printf("test_api: no LLVM in this build: the cpu target is checked only for its refusal\n");
#endif
    test_results(ref, cpu);
    test_workspace(ref, cpu);
    test_threads(ref);
    if (cpu) test_threads(cpu);
    attnc_context_destroy(cpu);
    attnc_context_destroy(ref);
    return check_status("test_api");
}
