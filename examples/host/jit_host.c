/* jit_host: JIT-compiles an attention spec through attnc's C API, runs one of its kernels
 * on the CPU (and on CUDA where there is a GPU), and checks every output against the
 * float64 reference interpreter, reached through the same API (target "ref").
 *
 *   jit_host SPEC.attn [KERNEL] [--batch B] [--seq S] [--seq-q SQ] [--targets cpu,cuda]
 *            [--require TARGET]...
 *
 * A target this build or machine lacks is skipped with its reason, unless --require names
 * it. Exit status: 0 every target run agrees with the reference, 1 a mismatch, 2 an error.
 * Build: cc jit_host.c $(pkg-config --cflags --libs attnc), or link CMake's attnc::attnc. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <attnc/attnc.h>

/* ---------------------------------------------------------------- the C API in one function */

/* Compiles the spec for `target` and runs `kernel_name` on t[0..n). Returns 0 on success,
 * 1 when the target is unavailable here (the reason in why), 2 on any other failure. */
static int jit_run(const char *target, const char *spec_path, const char *kernel_name, int64_t batch,
                   int64_t seq_q, int64_t seq_k, attnc_tensor *t, int n, char *why, size_t whylen) {
    attnc_options opts;
    attnc_options_init(&opts);
    opts.target = target;                    /* "ref", "cpu", "cuda" or "cuda:sm_90a" */
    attnc_context *ctx = NULL;
    attnc_program *prog = NULL;
    attnc_kernel *k = NULL;
    attnc_error err;
    if (attnc_context_create(&opts, &ctx, &err) != ATTNC_OK) {
        snprintf(why, whylen, "%s", err.message);
        return err.code == ATTNC_ERR_TARGET_UNAVAILABLE ? 1 : 2;
    }
    int rc = 2;
    if (attnc_compile_file(ctx, spec_path, &prog, &err) != ATTNC_OK) {
        /* a spec with errors still gives a program: its diagnostics, as the CLI prints them */
        fputs(prog ? attnc_program_diagnostics_text(prog) : err.message, stderr);
    } else if (attnc_kernel_get(prog, kernel_name, &k, &err) != ATTNC_OK ||
               attnc_launch(k, batch, seq_q, seq_k, t, n, NULL, &err) != ATTNC_OK) {
        fprintf(stderr, "%s: %s\n", attnc_status_name(err.code), err.message);
    } else {
        rc = 0;
    }
    attnc_program_destroy(prog);
    attnc_context_destroy(ctx);
    return rc;
}

/* ---------------------------------------------------------------- tensors */

static float bf16_to_float(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint16_t float_to_bf16(float f) {     /* round to nearest even; inputs here are finite */
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

static float f16_to_float(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    float v = e == 0 ? ldexpf((float)m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexpf((float)(m | 1024), e - 25);
    return h & 0x8000 ? -v : v;
}

static uint16_t float_to_f16(float f) {     /* for |f| < 65504, round to nearest */
    uint16_t sign = f < 0 ? 0x8000 : 0;
    float a = fabsf(f);
    if (a < 0x1p-24f) return sign;
    int e;
    frexpf(a, &e);                           /* a = x * 2^e, x in [0.5, 1) */
    if (e < -13) return (uint16_t)(sign | (uint16_t)lrintf(ldexpf(a, 24)));           /* subnormal */
    long m = lrintf(ldexpf(a, 11 - e));      /* 11 significant bits */
    if (m == 2048) { m = 1024; e++; }
    return (uint16_t)(sign | (uint16_t)((e + 14) << 10) | (uint16_t)(m - 1024));
}

static double load(const attnc_tensor *t, int64_t i) {
    switch (t->dtype) {
    case ATTNC_F32: return ((const float *)t->data)[i];
    case ATTNC_F64: return ((const double *)t->data)[i];
    case ATTNC_BF16: return bf16_to_float(((const uint16_t *)t->data)[i]);
    case ATTNC_F16: return f16_to_float(((const uint16_t *)t->data)[i]);
    case ATTNC_I32: return ((const int32_t *)t->data)[i];
    }
    return NAN;
}

static void store(attnc_tensor *t, int64_t i, double v) {
    switch (t->dtype) {
    case ATTNC_F32: ((float *)t->data)[i] = (float)v; break;
    case ATTNC_F64: ((double *)t->data)[i] = v; break;
    case ATTNC_BF16: ((uint16_t *)t->data)[i] = float_to_bf16((float)v); break;
    case ATTNC_F16: ((uint16_t *)t->data)[i] = float_to_f16((float)v); break;
    case ATTNC_I32: ((int32_t *)t->data)[i] = (int32_t)v; break;
    }
}

static int64_t count(const attnc_tensor *t) {
    int64_t c = 1;
    for (int d = 0; d < t->ndim; d++) c *= t->shape[d];
    return c;
}

static int dtype_size(attnc_dtype d) { return d == ATTNC_F64 ? 8 : d == ATTNC_BF16 || d == ATTNC_F16 ? 2 : 4; }

/* A zeroed contiguous tensor shaped like info, in dtype dt. */
static attnc_tensor make(const attnc_tensor_info *info, attnc_dtype dt) {
    attnc_tensor t;
    memset(&t, 0, sizeof t);
    t.name = info->name;
    t.dtype = dt;
    t.ndim = info->ndim;
    memcpy(t.shape, info->shape, sizeof t.shape);
    t.data = calloc((size_t)(count(&t) ? count(&t) : 1), (size_t)dtype_size(dt));
    return t;
}

static uint64_t next_random(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* q, k, v uniform in [-1, 1); declared f32 inputs in [0.01, 0.1) (small positive values keep
 * decays and biases tame); positions count tokens; other int inputs are segment ids. */
static void fill(attnc_tensor *t, uint64_t *rng) {
    int64_t n = count(t);
    bool qkv = !strcmp(t->name, "q") || !strcmp(t->name, "k") || !strcmp(t->name, "v");
    int64_t inner = 1;
    for (int d = 2; d < t->ndim; d++) inner *= t->shape[d];
    for (int64_t i = 0; i < n; i++) {
        double u = (double)(next_random(rng) >> 11) * 0x1.0p-53;
        int64_t token = t->ndim >= 2 ? (i / inner) % t->shape[1] : 0;
        if (!strcmp(t->name, "positions")) store(t, i, (double)token);
        else if (t->dtype == ATTNC_I32) store(t, i, (double)(token / 5));
        else store(t, i, qkv ? 2 * u - 1 : 0.01 + 0.09 * u);
    }
}

/* |got - ref| <= tol * (|ref| + rms(ref)) everywhere; equal infinities (masked lse rows) agree. */
static int64_t mismatches(const attnc_tensor *got, const attnc_tensor *ref, double tol, double *worst) {
    int64_t n = count(ref), bad = 0, finite = 0;
    double ss = 0;
    for (int64_t i = 0; i < n; i++) {
        double r = load(ref, i);
        if (isfinite(r)) { ss += r * r; finite++; }
    }
    double rms = finite ? sqrt(ss / (double)finite) : 0;
    *worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double g = load(got, i), r = load(ref, i);
        if (g == r) continue;
        double rel = fabs(g - r) / (fabs(r) + rms + 1e-300);
        if (!(rel <= *worst)) *worst = rel;
        if (!(rel <= tol)) bad++;
    }
    return bad;
}

/* ---------------------------------------------------------------- main */

enum { MAX_T = 24, MAX_TARGETS = 8 };

/* Copies the next comma-separated item of *list into out (C11 has no strtok_r); false at the end. */
static bool next_item(const char **list, char *out, size_t len) {
    if (!**list) return false;
    size_t n = strcspn(*list, ",");
    snprintf(out, len, "%.*s", (int)n, *list);
    *list += n + ((*list)[n] == ',');
    return true;
}

static void usage(void) {
    fprintf(stderr, "usage: jit_host SPEC.attn [KERNEL] [--batch B] [--seq S] [--seq-q SQ] [--targets cpu,cuda] "
                    "[--require TARGET]...\n");
}

int main(int argc, char **argv) {
    const char *spec = NULL, *kernel = NULL, *targets = "cpu,cuda", *required[MAX_TARGETS];
    int n_required = 0;
    long long batch = 1, seq = 64, seq_q = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--batch") && v) batch = atoll(argv[++i]);
        else if (!strcmp(a, "--seq") && v) seq = atoll(argv[++i]);
        else if (!strcmp(a, "--seq-q") && v) seq_q = atoll(argv[++i]);
        else if (!strcmp(a, "--targets") && v) targets = argv[++i];
        else if (!strcmp(a, "--require") && v && n_required < MAX_TARGETS) required[n_required++] = argv[++i];
        else if (a[0] != '-' && !spec) spec = a;
        else if (a[0] != '-' && !kernel) kernel = a;
        else { usage(); return 2; }
    }
    if (!spec || batch < 1 || seq < 1) { usage(); return 2; }

    /* The signature (what to allocate) through a reference context; it is the same for
     * every target. */
    attnc_options opts;
    attnc_options_init(&opts);
    opts.target = "ref";
    attnc_context *ref = NULL;
    attnc_program *prog = NULL;
    attnc_kernel *k = NULL;
    attnc_error err;
    if (attnc_context_create(&opts, &ref, &err) != ATTNC_OK) {
        fprintf(stderr, "jit_host: %s\n", err.message);
        return 2;
    }
    if (attnc_compile_file(ref, spec, &prog, &err) != ATTNC_OK) {
        fputs(prog ? attnc_program_diagnostics_text(prog) : err.message, stderr);
        fputc('\n', stderr);
        attnc_context_destroy(ref);
        return 2;
    }
    if (!kernel) kernel = attnc_program_kernel_name(prog, 0);
    if (attnc_kernel_get(prog, kernel ? kernel : "", &k, &err) != ATTNC_OK) {
        fprintf(stderr, "jit_host: %s\n", err.message);
        attnc_context_destroy(ref);
        return 2;
    }
    int64_t sq = seq_q >= 0 ? seq_q : seq, sk = attnc_kernel_is_recurrence(k) ? sq : seq;
    attnc_tensor_info info[MAX_T];
    int n_info = 0;
    if (attnc_kernel_signature(k, batch, sq, sk, info, MAX_T, &n_info, &err) != ATTNC_OK) {
        fprintf(stderr, "jit_host: %s\n", err.message);
        attnc_context_destroy(ref);
        return 2;
    }
    attnc_tensor inputs[MAX_T], want[MAX_T];
    int n_in = 0, n_out = 0;
    uint64_t rng = 42;
    for (int i = 0; i < n_info; i++) {
        if (info[i].role == ATTNC_ROLE_INPUT && !info[i].optional) {
            inputs[n_in] = make(&info[i], info[i].dtype);
            fill(&inputs[n_in++], &rng);
        } else if (info[i].role == ATTNC_ROLE_OUTPUT) {
            want[n_out++] = make(&info[i], ATTNC_F64);     /* the reference writes exact f64 */
        }
    }
    double tol = info[0].dtype == ATTNC_F32 ? 1e-5 : 2e-2;
    printf("kernel %s: batch %lld, seq_q %lld, seq_k %lld, %s\n", kernel, batch, (long long)sq, (long long)sk,
           info[0].dtype == ATTNC_F32 ? "f32" : info[0].dtype == ATTNC_BF16 ? "bf16" : "f16");

    attnc_tensor all[MAX_T];
    char why[1024] = "";
    int n_all = 0, status = 0;
    for (int i = 0; i < n_in; i++) all[n_all++] = inputs[i];
    for (int i = 0; i < n_out; i++) all[n_all++] = want[i];
    if (jit_run("ref", spec, kernel, batch, sq, sk, all, n_all, why, sizeof why) != 0) {
        fprintf(stderr, "jit_host: the reference run failed%s%s\n", why[0] ? ": " : "", why);
        status = 2;
    }

    char target[64];
    for (const char *rest = targets; status != 2 && next_item(&rest, target, sizeof target);) {
        attnc_tensor got[MAX_T];
        n_all = 0;
        for (int i = 0; i < n_in; i++) all[n_all++] = inputs[i];
        for (int i = 0; i < n_out; i++) {
            attnc_tensor_info o;
            int idx = 0;
            for (int j = 0; j < n_info; j++)
                if (!strcmp(info[j].name, want[i].name)) idx = j;
            o = info[idx];
            got[i] = make(&o, o.dtype);
            all[n_all++] = got[i];
        }
        why[0] = '\0';
        int rc = jit_run(target, spec, kernel, batch, sq, sk, all, n_all, why, sizeof why);
        bool is_required = false;
        for (int r = 0; r < n_required; r++) is_required |= !strcmp(required[r], target);
        if (rc == 1) {
            printf("  %-6s skipped: %s\n", target, why);
            if (is_required) {
                fprintf(stderr, "jit_host: target %s is required but unavailable\n", target);
                status = 2;
            }
        } else if (rc != 0) {
            printf("  %-6s FAILED%s%s\n", target, why[0] ? ": " : " (the message above)", why);
            status = 2;
        } else {
            for (int i = 0; i < n_out; i++) {
                double worst;
                int64_t bad = mismatches(&got[i], &want[i], tol, &worst);
                printf("  %-6s %-9s max rel err %.2e (tolerance %.0e): %s\n", target, want[i].name, worst, tol,
                       bad ? "MISMATCH" : "ok");
                if (bad && status == 0) status = 1;
            }
        }
        for (int i = 0; i < n_out; i++) free(got[i].data);
    }
    for (int r = 0; r < n_required; r++) {
        bool listed = false;
        for (const char *rest = targets; next_item(&rest, target, sizeof target);) listed |= !strcmp(target, required[r]);
        if (!listed) {
            fprintf(stderr, "jit_host: --require %s: not among --targets %s\n", required[r], targets);
            status = 2;
        }
    }
    for (int i = 0; i < n_in; i++) free(inputs[i].data);
    for (int i = 0; i < n_out; i++) free(want[i].data);
    attnc_context_destroy(ref);
    printf("%s\n", status == 0 ? "PASS" : status == 1 ? "FAIL" : "ERROR");
    return status;
}
