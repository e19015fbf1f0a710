/* attnc run: runs one kernel of a spec on a target, on tensors read from .npy files or on
 * deterministic random inputs, writes the outputs as .npy and prints a short summary;
 * --check validates the result (the reference target: self-consistency; any other
 * target: agreement with the float64 interpreter within the dtype's tolerance).
 *
 * Random inputs (no --in): q, k, v ~ N(0, 1) rounded to the kernel dtype; positions =
 * arange on every axis; declared i32 inputs = runs of equal ids (segment-id like, run
 * lengths 1 .. seq/3 + 1); declared f32 inputs uniform in [0.01, 0.1] (their meaning is
 * not known here: small positive values keep decays like exp(-dt * exp(A_log)) in (0, 1)
 * and every score finite). The generator is splitmix64 seeded by --seed. Lengths: --seq
 * sets seq_q and seq_k (default 128), except for decode kernels, where it is the cache
 * length and seq_q stays 1 unless --seq-q is given; with --in files, q gives batch and
 * seq_q and k gives seq_k.
 *
 * Outputs: the reference target writes f64, a backend its own dtypes (o: the kernel's,
 * lse/state_out: f32); files are written as --out-dtype (default f64 for ref, else f32).
 * --check against the interpreter passes when every element has
 * |got − ref| ≤ tol · (|ref| + rms(ref)), tol = 1e-5 for f32 kernels and 2e-2 for
 * bf16/f16 ones (their outputs are rounded to 8 or 11 significant bits). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "ir/interp.h"
#include "ir/signature.h"
#include "runtime/npy.h"
#include "runtime/tensor_access.h"
#include "tools/commands.h"

enum { RUN_MAX_IN = SIG_MAX_TENSORS };

static const char run_usage[] =
    "usage: attnc run FILE [--kernel NAME] [--target ref|cpu|cuda[:smXX]] [--in NAME=FILE.npy]...\n"
    "                 [--out FILE.npy] [--out-lse FILE.npy] [--out-state FILE.npy]\n"
    "                 [--batch B] [--seq S] [--seq-q SQ] [--seq-k SK] [--seed N] [--check]\n"
    "                 [--out-dtype f64|f32]\n";

typedef struct run_opts {
    const char *path, *kernel, *target;
    const char *in_name[RUN_MAX_IN], *in_file[RUN_MAX_IN];
    int n_in;
    const char *out, *out_lse, *out_state, *out_dtype;
    int64_t batch, seq, seq_q, seq_k;    /* -1: not given */
    uint64_t seed;
    bool check;
} run_opts;

/* ---------------------------------------------------------------- arguments */

static bool parse_i64(const char *s, int64_t lo, int64_t *out) {
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < lo) return false;
    *out = v;
    return true;
}

static bool parse_length(const char *v, const char *opt, int64_t lo, int64_t *out) {
    if (parse_i64(v, lo, out) && *out <= (1 << 30)) return true;
    fprintf(stderr, "attnc run: %s wants a number in [%lld, 2^30], got '%s'\n", opt, (long long)lo, v);
    return false;
}

/* Accepts "--opt value" and "--opt=value"; *i advances past what was used. */
static const char *opt_value(int argc, char **argv, int *i, const char *opt) {
    size_t n = strlen(opt);
    if (strncmp(argv[*i], opt, n) != 0) return NULL;
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (argv[*i][n] == '\0' && *i + 1 < argc) return argv[++*i];
    return NULL;
}

static int parse_args(int argc, char **argv, run_opts *o) {
    memset(o, 0, sizeof *o);
    o->target = "ref";
    o->batch = o->seq = o->seq_q = o->seq_k = -1;
    for (int i = 0; i < argc; i++) {
        const char *v;
        int64_t n;
        if (strcmp(argv[i], "--check") == 0) o->check = true;
        else if ((v = opt_value(argc, argv, &i, "--kernel"))) o->kernel = v;
        else if ((v = opt_value(argc, argv, &i, "--target"))) o->target = v;
        else if ((v = opt_value(argc, argv, &i, "--out-lse"))) o->out_lse = v;
        else if ((v = opt_value(argc, argv, &i, "--out-state"))) o->out_state = v;
        else if ((v = opt_value(argc, argv, &i, "--out-dtype"))) {
            if (strcmp(v, "f64") != 0 && strcmp(v, "f32") != 0) {
                fprintf(stderr, "attnc run: --out-dtype must be f64 or f32, got '%s'\n", v);
                return 2;
            }
            o->out_dtype = v;
        } else if ((v = opt_value(argc, argv, &i, "--out"))) o->out = v;
        else if ((v = opt_value(argc, argv, &i, "--in"))) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v || !eq[1]) {
                fprintf(stderr, "attnc run: --in wants NAME=FILE.npy, got '%s'\n", v);
                return 2;
            }
            if (o->n_in == RUN_MAX_IN) {
                fprintf(stderr, "attnc run: too many --in options (at most %d)\n", RUN_MAX_IN);
                return 2;
            }
            /* Split in place: argv strings are ours to modify. */
            ((char *)eq)[0] = '\0';
            o->in_name[o->n_in] = v;
            o->in_file[o->n_in++] = eq + 1;
        } else if ((v = opt_value(argc, argv, &i, "--seed"))) {
            if (!parse_i64(v, 0, &n)) { fprintf(stderr, "attnc run: --seed wants a number >= 0, got '%s'\n", v); return 2; }
            o->seed = (uint64_t)n;
        } else if ((v = opt_value(argc, argv, &i, "--batch"))) {
            if (!parse_length(v, "--batch", 1, &o->batch)) return 2;
        } else if ((v = opt_value(argc, argv, &i, "--seq-q"))) {
            if (!parse_length(v, "--seq-q", 0, &o->seq_q)) return 2;
        } else if ((v = opt_value(argc, argv, &i, "--seq-k"))) {
            if (!parse_length(v, "--seq-k", 0, &o->seq_k)) return 2;
        } else if ((v = opt_value(argc, argv, &i, "--seq"))) {
            if (!parse_length(v, "--seq", 0, &o->seq)) return 2;
        } else if (argv[i][0] != '-' && !o->path) o->path = argv[i];
        else {
            fprintf(stderr, "attnc run: unexpected argument '%s'\n%s", argv[i], run_usage);
            return 2;
        }
    }
    if (!o->path) {
        fprintf(stderr, "attnc run: no spec file\n%s", run_usage);
        return 2;
    }
    return 0;
}

static const ir_kernel *pick_kernel(const ir_module *m, const char *name, const char *path) {
    if (name) {
        const ir_kernel *k = ir_module_find(m, name);
        if (k) return k;
        const char *names[64];
        int n = m->n_kernels < 64 ? m->n_kernels : 64;
        for (int i = 0; i < n; i++) names[i] = m->kernels[i]->name;
        const char *near = diag_closest(name, names, n);
        fprintf(stderr, "attnc run: %s has no kernel '%s'", path, name);
        if (near) fprintf(stderr, "; did you mean '%s'?", near);
        fputc('\n', stderr);
    } else if (m->n_kernels == 1) {
        return m->kernels[0];
    } else {
        fprintf(stderr, "attnc run: %s has %d kernels; choose one with --kernel NAME\n", path, m->n_kernels);
    }
    fprintf(stderr, "  kernels in %s:", path);
    for (int i = 0; i < m->n_kernels; i++) fprintf(stderr, " %s", m->kernels[i]->name);
    fputc('\n', stderr);
    return NULL;
}

/* ---------------------------------------------------------------- tensors */

typedef struct tensor_list {
    attnc_tensor t[SIG_MAX_TENSORS];
    int n;
} tensor_list;

static void list_free(tensor_list *l) {
    for (int i = 0; i < l->n; i++) free(l->t[i].data);
    l->n = 0;
}

static attnc_tensor *list_find(tensor_list *l, const char *name) {
    return (attnc_tensor *)sig_find(l->t, l->n, name);
}

/* A fresh zeroed contiguous tensor shaped like s, in dtype dt. */
static attnc_tensor *list_new(tensor_list *l, const sig_tensor *s, attnc_dtype dt) {
    attnc_tensor *t = &l->t[l->n];
    memset(t, 0, sizeof *t);
    t->name = s->name;
    t->dtype = dt;
    t->ndim = s->ndim;
    memcpy(t->shape, s->shape, sizeof t->shape);
    int64_t count = tensor_count(t);
    t->data = count < 0 ? NULL : calloc((size_t)(count ? count : 1), (size_t)attnc_dtype_size(dt));
    if (!t->data) {
        fprintf(stderr, "attnc run: out of memory for tensor '%s'\n", s->name);
        return NULL;
    }
    l->n++;
    return t;
}

static void print_shape(FILE *f, const int64_t *shape, int ndim) {
    fputc('[', f);
    for (int i = 0; i < ndim; i++) fprintf(f, "%s%lld", i ? ", " : "", (long long)shape[i]);
    fputc(']', f);
}

/* dtype, shape and dimension names; lengths no file has fixed yet print as their names. */
static void print_expected(FILE *f, const sig_tensor *s, bool batch_known, bool seq_q_known, bool seq_k_known) {
    fprintf(f, "%s [", attnc_dtype_name(s->dtype));
    for (int i = 0; i < s->ndim; i++) {
        const char *n = s->dim_names[i];
        bool known = strcmp(n, "batch") == 0 ? batch_known
                   : strcmp(n, "seq_q") == 0 || strcmp(n, "seq") == 0 ? seq_q_known
                   : strcmp(n, "seq_k") == 0 ? seq_k_known : true;
        if (known) fprintf(f, "%s%lld", i ? ", " : "", (long long)s->shape[i]);
        else fprintf(f, "%s%s", i ? ", " : "", n);
    }
    fputs("] (", f);
    for (int i = 0; i < s->ndim; i++) fprintf(f, "%s%s", i ? ", " : "", s->dim_names[i]);
    fputc(')', f);
}

/* ---------------------------------------------------------------- random inputs */

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *state) {             /* in [0, 1) */
    return (double)(splitmix64(state) >> 11) * 0x1.0p-53;
}

static double normal01(uint64_t *state) {               /* Box-Muller, one of the pair */
    double u = 1.0 - uniform01(state), w = uniform01(state);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * w);
}

static void fill_random(attnc_tensor *t, const char *name, int64_t seq, uint64_t *rng) {
    int64_t count = tensor_count(t);
    if (strcmp(name, "positions") == 0) {
        /* arange over the token dim on every axis: text-like positions */
        int64_t idx[ATTNC_MAX_DIMS] = { 0 };
        for (idx[0] = 0; idx[0] < t->shape[0]; idx[0]++)
            for (idx[1] = 0; idx[1] < t->shape[1]; idx[1]++)
                for (idx[2] = 0; idx[2] < t->shape[2]; idx[2]++)
                    tensor_store(t, tensor_offset(t, idx), (double)idx[1]);
    } else if (t->dtype == ATTNC_I32) {
        int64_t max_run = seq / 3 + 1, left = 0, id = -1;
        for (int64_t e = 0; e < count; e++) {
            if (left == 0) {
                id++;
                left = 1 + (int64_t)(uniform01(rng) * (double)max_run);
            }
            left--;
            tensor_store(t, e, (double)id);
        }
    } else if (strcmp(name, "q") == 0 || strcmp(name, "k") == 0 || strcmp(name, "v") == 0) {
        for (int64_t e = 0; e < count; e++) tensor_store(t, e, normal01(rng));
    } else {
        for (int64_t e = 0; e < count; e++) tensor_store(t, e, 0.01 + 0.09 * uniform01(rng));
    }
}

/* ---------------------------------------------------------------- checks */

typedef struct compare_result {
    double max_abs, max_rel;
    int64_t mismatches;
} compare_result;

/* Elementwise |a − b| ≤ tol · (|b| + max(rms(b), rowmax|b|)): relative, with a floor of
 * the reference's typical magnitude and of the largest element of the row (the last
 * dimension: one output row of d_v values). The row floor is the scale of a low-precision
 * kernel's error: a bf16 P of ~1 times a value of |v| errs by |v|·2^-9 whatever the
 * (cancelled, small) output element is. Equal infinities (lse of masked rows) agree. */
static compare_result compare(const attnc_tensor *got, const attnc_tensor *ref, double tol) {
    compare_result r = { 0, 0, 0 };
    int64_t n = tensor_count(ref);
    int64_t row = ref->ndim > 0 && ref->shape[ref->ndim - 1] > 0 ? ref->shape[ref->ndim - 1] : 1;
    double ss = 0;
    int64_t finite = 0;
    for (int64_t e = 0; e < n; e++) {
        double b = tensor_load(ref, e);
        if (isfinite(b)) { ss += b * b; finite++; }
    }
    double rms = finite ? sqrt(ss / (double)finite) : 0;
    for (int64_t r0 = 0; r0 < n; r0 += row) {
        double rowmax = 0;
        for (int64_t e = r0; e < r0 + row && e < n; e++) {
            double b = fabs(tensor_load(ref, e));
            if (isfinite(b) && b > rowmax) rowmax = b;
        }
        double floor = rms > rowmax ? rms : rowmax;
        for (int64_t e = r0; e < r0 + row && e < n; e++) {
            double a = tensor_load(got, e), b = tensor_load(ref, e);
            if (a == b) continue;
            double d = fabs(a - b);
            double rel = isfinite(d) ? d / (fabs(b) + floor + 1e-300) : INFINITY;
            if (!(d <= r.max_abs)) r.max_abs = d;
            if (!(rel <= r.max_rel)) r.max_rel = rel;
            if (!(rel <= tol)) r.mismatches++;
        }
    }
    return r;
}

/* The reference target's own invariants: outputs finite; lse never NaN or +inf; a row
 * with lse = -inf is all zeros; each output is a convex combination of value rows, so
 * |o| never exceeds the largest |v| of its kv head. */
static bool self_check(const ir_kernel *k, const tensor_list *l, int64_t batch, int64_t seq_q, int64_t seq_k) {
    const attnc_tensor *o = sig_find(l->t, l->n, "o");
    bool ok = true;
    int64_t n = tensor_count(o), bad = 0, masked = 0, over = 0;
    for (int64_t e = 0; e < n; e++) bad += !isfinite(tensor_load(o, e));
    if (k->family == IR_RECURRENCE) {
        const attnc_tensor *s = sig_find(l->t, l->n, "state_out");
        int64_t ns = tensor_count(s), sbad = 0;
        for (int64_t e = 0; e < ns; e++) sbad += !isfinite(tensor_load(s, e));
        printf("  check: %lld non-finite outputs, %lld non-finite state entries\n", (long long)bad, (long long)sbad);
        return bad == 0 && sbad == 0;
    }
    const attnc_tensor *lse = sig_find(l->t, l->n, "lse");
    const attnc_tensor *v = sig_find(l->t, l->n, k->v_in_k ? "k" : "v");
    int64_t lbad = 0, group = k->heads_q / k->heads_kv;
    for (int64_t b = 0; b < batch; b++) {
        for (int64_t g = 0; g < k->heads_kv; g++) {
            double vmax = 0;
            for (int64_t i = 0; i < seq_k; i++)
                for (int64_t d = 0; d < k->d_v; d++) {
                    int64_t idx[4] = { b, i, g, d };
                    double x = fabs(tensor_load(v, tensor_offset(v, idx)));
                    if (x > vmax) vmax = x;
                }
            for (int64_t h = g * group; h < (g + 1) * group; h++)
                for (int64_t r = 0; r < seq_q; r++) {
                    int64_t li[4] = { b, r, h, 0 };
                    double s = tensor_load(lse, tensor_offset(lse, li));
                    bool row_masked = s == -INFINITY;
                    if (isnan(s) || s == INFINITY) lbad++;
                    masked += row_masked;
                    for (int64_t d = 0; d < k->d_v; d++) {
                        int64_t idx[4] = { b, r, h, d };
                        double x = tensor_load(o, tensor_offset(o, idx));
                        if (row_masked && x != 0) lbad++;
                        if (fabs(x) > vmax * (1 + 1e-12)) over++;
                    }
                }
        }
    }
    printf("  check: %lld non-finite outputs, %lld bad lse rows or non-zero masked rows, %lld fully masked rows, "
           "%lld outputs outside the value range\n", (long long)bad, (long long)lbad, (long long)masked, (long long)over);
    ok = bad == 0 && lbad == 0 && over == 0;
    return ok;
}

/* ---------------------------------------------------------------- command */

static bool write_output(const attnc_tensor *t, const char *path, const char *dtype) {
    attnc_tensor w = *t;
    w.dtype = strcmp(dtype, "f64") == 0 ? ATTNC_F64 : ATTNC_F32;
    int64_t n = tensor_count(t);
    w.data = malloc((size_t)(n ? n : 1) * (size_t)attnc_dtype_size(w.dtype));
    if (!w.data) {
        fprintf(stderr, "attnc run: out of memory writing '%s'\n", path);
        return false;
    }
    memset(w.strides, 0, sizeof w.strides);
    for (int64_t e = 0; e < n; e++) tensor_store(&w, e, tensor_load(t, e));
    char err[512];
    bool ok = npy_write(path, &w, err, sizeof err);
    if (!ok) fprintf(stderr, "attnc run: %s\n", err);
    free(w.data);
    return ok;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int run_kernel(const run_opts *o, const ir_kernel *k) {
    bool rec = k->family == IR_RECURRENCE, is_ref = strcmp(o->target, "ref") == 0;
    if (rec && o->out_lse) { fprintf(stderr, "attnc run: kernel '%s' is a recurrence: it has no lse (use --out-state)\n", k->name); return 2; }
    if (!rec && o->out_state) { fprintf(stderr, "attnc run: kernel '%s' is softmax attention: it has no state (use --out-lse)\n", k->name); return 2; }

    int status = 2;
    tensor_list in = { .n = 0 }, out = { .n = 0 }, ref = { .n = 0 };
    char err[1024];

    /* Lengths: from the files when any is given, else from the options. */
    int64_t batch = o->batch > 0 ? o->batch : 1;
    /* A decode kernel answers few queries against a long cache: --seq is its cache length
     * and seq_q stays 1 unless --seq-q says otherwise. */
    bool decode = k->phase == IR_DECODE && !rec;
    int64_t seq_q = o->seq_q >= 0 ? o->seq_q : decode ? 1 : o->seq >= 0 ? o->seq : 128;
    int64_t seq_k = o->seq_k >= 0 ? o->seq_k : o->seq >= 0 ? o->seq : 128;
    if (rec && o->seq < 0 && o->seq_q < 0) seq_q = seq_k;
    if (rec && o->seq_k < 0 && o->seq < 0) seq_k = seq_q;
    for (int i = 0; i < o->n_in; i++) {
        attnc_tensor *t = &in.t[in.n];
        if (!npy_read(o->in_file[i], t, err, sizeof err)) {
            fprintf(stderr, "attnc run: --in %s: %s\n", o->in_name[i], err);
            goto done;
        }
        t->name = o->in_name[i];
        in.n++;
    }
    if (o->n_in) {
        if (o->batch > 0 || o->seq >= 0 || o->seq_q >= 0 || o->seq_k >= 0)
            fprintf(stderr, "attnc run: note: lengths come from the input files; --batch/--seq options are ignored\n");
        attnc_tensor *q = list_find(&in, "q"), *kt = list_find(&in, "k");
        if (q && q->ndim >= 2) { batch = q->shape[0]; seq_q = q->shape[1]; }
        if (kt && kt->ndim >= 2) seq_k = kt->shape[1];
        if (rec) seq_k = seq_q;
    }
    if (rec && seq_q != seq_k) {
        fprintf(stderr, "attnc run: kernel '%s' is a recurrence: --seq-q and --seq-k must agree (use --seq)\n", k->name);
        goto done;
    }

    sig_tensor sig[SIG_MAX_TENSORS];
    int n_sig = ir_signature(k, batch, seq_q, seq_k, sig);
    if (o->n_in) {
        /* Names first (a misspelt name also looks like a missing input), then what is
         * missing, all at once, then shapes and dtypes. */
        const char *in_names[SIG_MAX_TENSORS];
        int n_in_names = 0;
        for (int j = 0; j < n_sig; j++)
            if (sig[j].role == SIG_IN) in_names[n_in_names++] = sig[j].name;
        for (int i = 0; i < in.n; i++) {
            const sig_tensor *s = NULL;
            for (int j = 0; j < n_sig; j++)
                if (strcmp(sig[j].name, in.t[i].name) == 0) s = &sig[j];
            if (s && s->role == SIG_OUT) {
                fprintf(stderr, "attnc run: '%s' is an output; write it with --out/--out-lse/--out-state\n", s->name);
                goto done;
            }
            if (!s) {
                const char *near = diag_closest(in.t[i].name, in_names, n_in_names);
                fprintf(stderr, "attnc run: unknown tensor '%s'", in.t[i].name);
                if (near) fprintf(stderr, "; did you mean '%s'?", near);
                fprintf(stderr, " (kernel '%s' reads:", k->name);
                for (int j = 0; j < n_in_names; j++) fprintf(stderr, " %s", in_names[j]);
                fprintf(stderr, ")\n");
                goto done;
            }
        }
        bool have_q = list_find(&in, "q") != NULL, have_k = list_find(&in, "k") != NULL;
        int missing = 0;
        for (int j = 0; j < n_sig; j++) {
            if (sig[j].role != SIG_IN || sig[j].optional || list_find(&in, sig[j].name)) continue;
            fprintf(stderr, "attnc run: missing --in %s=FILE.npy: expected ", sig[j].name);
            print_expected(stderr, &sig[j], have_q, have_q, rec ? have_q : have_k);
            fputc('\n', stderr);
            missing++;
        }
        if (missing) goto done;
        /* Outputs are made here, so check the files against the inputs alone. */
        sig_tensor sig_in[SIG_MAX_TENSORS];
        int n_sig_in = 0;
        for (int j = 0; j < n_sig; j++)
            if (sig[j].role == SIG_IN) sig_in[n_sig_in++] = sig[j];
        if (!sig_check(sig_in, n_sig_in, in.t, in.n, err, sizeof err)) {
            fprintf(stderr, "attnc run: %s\n", err);
            goto done;
        }
    } else {
        uint64_t rng = o->seed;
        for (int j = 0; j < n_sig; j++) {
            if (sig[j].role != SIG_IN || sig[j].optional) continue;
            attnc_tensor *t = list_new(&in, &sig[j], sig[j].dtype);
            if (!t) goto done;
            fill_random(t, sig[j].name, seq_k, &rng);
        }
    }

    /* Outputs: f64 from the reference, the kernel's own dtypes from a backend. */
    attnc_tensor all[SIG_MAX_TENSORS];
    int n_all = 0;
    for (int i = 0; i < in.n; i++) all[n_all++] = in.t[i];
    for (int j = 0; j < n_sig; j++) {
        if (sig[j].role != SIG_OUT) continue;
        attnc_tensor *t = list_new(&out, &sig[j], is_ref ? ATTNC_F64 : sig[j].dtype);
        if (!t) goto done;
        all[n_all++] = *t;
    }

    double t0 = now_ms();
    if (!run_on_target(o->target, k, batch, seq_q, seq_k, all, n_all, err, sizeof err)) {
        fprintf(stderr, "attnc run: %s\n", err);
        status = 1;
        goto done;
    }
    double elapsed = now_ms() - t0;

    const attnc_tensor *ot = list_find(&out, "o");
    double sum = 0, maxabs = 0;
    for (int64_t e = 0, n = tensor_count(ot); e < n; e++) {
        double x = tensor_load(ot, e);
        sum += x;
        if (!(fabs(x) <= maxabs)) maxabs = fabs(x);
    }
    printf("kernel %s (%s, %s, %s) on %s\n", k->name, rec ? "recurrence" : "softmax",
           k->phase == IR_DECODE ? "decode" : "prefill", attnc_dtype_name(sig[0].dtype), o->target);
    if (rec) printf("  batch %lld, seq %lld\n", (long long)batch, (long long)seq_q);
    else printf("  batch %lld, seq_q %lld, seq_k %lld\n", (long long)batch, (long long)seq_q, (long long)seq_k);
    for (int i = 0; i < n_all; i++) {
        printf("  %-10s %-4s ", all[i].name, attnc_dtype_name(all[i].dtype));
        print_shape(stdout, all[i].shape, all[i].ndim);
        putchar('\n');
    }
    printf("  elapsed %.3f ms\n", elapsed);
    printf("  o: checksum (sum) %.12e, max |o| %.6e\n", sum, maxabs);

    status = 0;
    if (o->check) {
        if (is_ref) {
            tensor_list view = { .n = 0 };
            for (int i = 0; i < n_all; i++) view.t[view.n++] = all[i];
            bool ok = self_check(k, &view, batch, seq_q, seq_k);
            printf("  check: %s\n", ok ? "PASS" : "FAIL");
            if (!ok) status = 1;
        } else {
            attnc_tensor rall[SIG_MAX_TENSORS];
            int n_rall = 0;
            for (int i = 0; i < in.n; i++) rall[n_rall++] = in.t[i];
            for (int j = 0; j < n_sig; j++) {
                if (sig[j].role != SIG_OUT) continue;
                attnc_tensor *t = list_new(&ref, &sig[j], ATTNC_F64);
                if (!t) { status = 2; goto done; }
                rall[n_rall++] = *t;
            }
            if (!interp_run(k, batch, seq_q, seq_k, rall, n_rall, err, sizeof err)) {
                fprintf(stderr, "attnc run: reference interpreter: %s\n", err);
                status = 1;
                goto done;
            }
            double tol = sig[0].dtype == ATTNC_F32 ? 1e-5 : 2e-2;
            bool ok = true;
            for (int i = 0; i < out.n; i++) {
                compare_result c = compare(&out.t[i], list_find(&ref, out.t[i].name), tol);
                printf("  check %-9s max abs err %.3e, max rel err %.3e (tolerance %.0e): %lld mismatches\n",
                       out.t[i].name, c.max_abs, c.max_rel, tol, (long long)c.mismatches);
                ok = ok && c.mismatches == 0;
            }
            printf("  check: %s\n", ok ? "PASS" : "FAIL");
            if (!ok) status = 1;
        }
    }

    const char *odt = o->out_dtype ? o->out_dtype : is_ref ? "f64" : "f32";
    if (o->out && !write_output(ot, o->out, odt)) status = 2;
    if (o->out_lse && !write_output(list_find(&out, "lse"), o->out_lse, odt)) status = 2;
    if (o->out_state && !write_output(list_find(&out, "state_out"), o->out_state, odt)) status = 2;

done:
    list_free(&in);
    list_free(&out);
    list_free(&ref);
    return status;
}

int cmd_run(int argc, char **argv) {
    run_opts o;
    int status = parse_args(argc, argv, &o);
    if (status) return status;
    arena a;
    arena_init(&a);
    ir_module *m = NULL;
    status = load_spec(o.path, &a, &m, NULL, NULL);
    if (status == 0) {
        const ir_kernel *k = pick_kernel(m, o.kernel, o.path);
        status = k ? run_kernel(&o, k) : 2;
    }
    arena_free(&a);
    return status;
}
