/* Test harness around the CPU simulator: emits a kernel's simulator build, compiles it with
 * the host C compiler into a shared object, runs a whole grid on host tensors exactly as
 * cuda_run would on the device, and compares with the float64 interpreter.
 * Header-only (static functions) for the tests/unit/test_cuda_*.c programs. */
#ifndef ATTNC_SIM_HARNESS_H
#define ATTNC_SIM_HARNESS_H
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "codegen/cuda/cuda_args.h"
#include "codegen/cuda/cuda_emit.h"
#include "codegen/cuda/cuda_plan.h"
#include "frontend/frontend.h"
#include "ir/interp.h"
#include "ir/signature.h"
#include "runtime/tensor_access.h"

#ifndef ATTNC_C_COMPILER
#define ATTNC_C_COMPILER "cc"
#endif

typedef struct attnc_sim_global_h {
    const void *ptr;
    size_t bytes;
} attnc_sim_global_h;

typedef long long (*sim_launch_fn)(void (*)(const void *), unsigned, unsigned, unsigned, unsigned, unsigned, const void *,
                                   const attnc_sim_global_h *, int, char *, size_t, long long *);

typedef struct sim_module {
    void *handle;
    sim_launch_fn launch;
    void (*fwd)(const void *);
    void (*merge)(const void *);
    void (*step)(const void *);      /* recurrences with a separate step kernel */
    unsigned long (*args_size)(void);
    cuda_plan plan;
    char dir[256];
} sim_module;

/* Replaces the first occurrence of `find` in a malloc'd string (mutation tests). */
static inline char *sim_replace(char *src, const char *find, const char *repl) {
    char *at = strstr(src, find);
    if (!at) return src;
    size_t n = strlen(src), fl = strlen(find), rl = strlen(repl);
    char *out = malloc(n - fl + rl + 1);
    memcpy(out, src, (size_t)(at - src));
    memcpy(out + (at - src), repl, rl);
    strcpy(out + (at - src) + rl, at + fl);
    free(src);
    return out;
}

/* Compiles the simulator build of k (plan for arch, optionally overridden by "bc=32,..."
 * and optionally mutated: the first `find` replaced by `repl`) into a shared object. */
static inline bool sim_build_ex(const ir_kernel *k, const char *arch, const char *plan_override, const char *find,
                         const char *repl, sim_module *m, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    if (!cuda_plan_make(k, arch, &m->plan, err, errlen)) return false;
    if (plan_override && !cuda_plan_override(&m->plan, plan_override, err, errlen)) return false;
    char *src = cuda_emit_kernel_string(k, &m->plan, true, err, errlen);
    if (!src) return false;
    if (find) {
        if (!strstr(src, find)) {
            snprintf(err, errlen, "mutation target '%s' not in the emitted source", find);
            free(src);
            return false;
        }
        src = sim_replace(src, find, repl);
    }
    snprintf(m->dir, sizeof m->dir, "/tmp/attnc-sim-XXXXXX");
    if (!mkdtemp(m->dir)) {
        snprintf(err, errlen, "mkdtemp failed");
        free(src);
        return false;
    }
    char c_path[512], so_path[512], cmd[2048];
    snprintf(c_path, sizeof c_path, "%s/kernel.c", m->dir);
    snprintf(so_path, sizeof so_path, "%s/kernel.so", m->dir);
    FILE *f = fopen(c_path, "w");
    if (!f) {
        snprintf(err, errlen, "cannot write %s", c_path);
        free(src);
        return false;
    }
    fputs(src, f);
    fclose(f);
    free(src);
    /* -O1 keeps the run fast; the kernel's locals still start poisoned from the 0xFF stack */
    snprintf(cmd, sizeof cmd, "%s -std=gnu11 -O1 -g -fPIC -shared -w -I%s -o %s %s -lm 2>%s/cc.log", ATTNC_C_COMPILER,
             ATTNC_SOURCE_DIR, so_path, c_path, m->dir);
    if (system(cmd) != 0) {
        char log[1024] = "";
        snprintf(cmd, sizeof cmd, "%s/cc.log", m->dir);
        FILE *lf = fopen(cmd, "r");
        if (lf) {
            size_t n = fread(log, 1, sizeof log - 1, lf);
            log[n] = 0;
            fclose(lf);
        }
        snprintf(err, errlen, "compiling the simulator build of '%s' failed (%s):\n%s", k->name, c_path, log);
        return false;
    }
    m->handle = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
    if (!m->handle) {
        snprintf(err, errlen, "dlopen %s: %s", so_path, dlerror());
        return false;
    }
    void *p;
    if ((p = dlsym(m->handle, "attnc_sim_launch"))) memcpy(&m->launch, &p, sizeof p);
    if ((p = dlsym(m->handle, "attnc_sim_fwd"))) memcpy(&m->fwd, &p, sizeof p);
    if ((p = dlsym(m->handle, "attnc_sim_merge"))) memcpy(&m->merge, &p, sizeof p);
    if ((p = dlsym(m->handle, "attnc_sim_step"))) memcpy(&m->step, &p, sizeof p);
    if ((p = dlsym(m->handle, "attnc_sim_args_size"))) memcpy(&m->args_size, &p, sizeof p);
    if (!m->launch || !m->fwd || !m->args_size) {
        snprintf(err, errlen, "simulator build of '%s' lacks its entry points", k->name);
        return false;
    }
    return true;
}

static inline bool sim_build(const ir_kernel *k, const char *arch, sim_module *m, char *err, size_t errlen) {
    return sim_build_ex(k, arch, NULL, NULL, NULL, m, err, errlen);
}

static inline void sim_free(sim_module *m) {
    if (m->handle) dlclose(m->handle);
    if (m->dir[0]) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf %s", m->dir);
        if (system(cmd) != 0) { /* a leftover temp dir is harmless */ }
    }
    memset(m, 0, sizeof *m);
}

typedef struct sim_result {
    long long errors;
    long long stats[8];        /* ldsm, mma, cp_async, barriers, shfl, bank_conflict_phases, lds, sts */
    char report[4096];
} sim_result;

/* sim_run_ex flags */
enum {
    /* recurrences: state_out (norm_out) is the very buffer state_in (norm_in) was uploaded to,
       the kernel updates the state in place; the views' state_out/norm_out receive it */
    SIM_STATE_IN_PLACE = 1,
    /* o gets a last-dim stride of 3 (a strided view): the gaps stay poisoned and are checked
       after the run, so a kernel that assumes dense rows or writes between elements fails */
    SIM_O_SPREAD = 2,
};

/* Runs the kernel on host tensors (by signature name) as cuda_run would: contiguous copies,
 * the same argument block, split-KV workspace and merge when n_splits > 1, the entry point
 * cuda_plan_entry picks for recurrences. */
static inline bool sim_run_ex(const sim_module *m, const ir_kernel *k, int64_t batch, int64_t seq_q, int64_t seq_k,
                              attnc_tensor *tensors, int n_tensors, int n_splits, unsigned flags, sim_result *res,
                              char *err, size_t errlen) {
    memset(res, 0, sizeof *res);
    sig_tensor sig[SIG_MAX_TENSORS];
    int ns = ir_signature(k, batch, seq_q, seq_k, sig);
    if (!sig_check(sig, ns, tensors, n_tensors, err, errlen)) return false;
    cuda_args_fixed a;
    memset(&a, 0, sizeof a);
    a.batch = batch, a.seq_q = seq_q, a.seq_k = seq_k, a.n_splits = n_splits;
    uint64_t in_ptr[8] = {0};
    int64_t in_st[8][4];
    memset(in_st, 0, sizeof in_st);
    attnc_sim_global_h globals[SIG_MAX_TENSORS + 2];
    void *bufs[SIG_MAX_TENSORS + 2] = {0};
    int64_t spreads[SIG_MAX_TENSORS + 2] = {0};
    int ng = 0;
    for (int i = 0; i < ns; i++) {
        const attnc_tensor *t = sig_find(tensors, n_tensors, sig[i].name);
        if (!t) continue;
        int64_t n = tensor_count(t);
        const int64_t spread = (flags & SIM_O_SPREAD) && !strcmp(sig[i].name, "o") ? 3 : 1;
        spreads[i] = spread;
        size_t esz = (size_t)attnc_dtype_size(t->dtype), bytes = (size_t)n * esz * (size_t)spread;
        /* 64-byte aligned, exact size registered: any access past it is reported */
        bufs[i] = aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
        int64_t st[4] = {0}, idx[4] = {0}, tst[4];
        int64_t acc = spread;
        for (int d = sig[i].ndim - 1; d >= 0; d--) st[d] = acc, acc *= sig[i].shape[d];
        tensor_strides(t, tst);
        for (int64_t e = 0; e < n; e++) {
            int64_t off = 0;
            for (int d = 0; d < t->ndim; d++) off += idx[d] * tst[d];
            if (sig[i].role == SIG_IN) memcpy((char *)bufs[i] + e * esz, (char *)t->data + off * esz, esz);
            for (int d = t->ndim - 1; d >= 0; d--) {
                if (++idx[d] < t->shape[d]) break;
                idx[d] = 0;
            }
        }
        if (sig[i].role == SIG_OUT) memset(bufs[i], 0xFF, bytes);   /* NaN: unwritten outputs show */
        globals[ng].ptr = bufs[i];
        globals[ng].bytes = bytes;
        ng++;
        uint64_t dp = (uint64_t)(uintptr_t)bufs[i];
        const char *nm = sig[i].name;
        if (!strcmp(nm, "q")) a.q = dp, memcpy(a.q_st, st, sizeof st);
        else if (!strcmp(nm, "k")) a.k = dp, memcpy(a.k_st, st, sizeof st);
        else if (!strcmp(nm, "v")) a.v = dp, memcpy(a.v_st, st, sizeof st);
        else if (!strcmp(nm, "o")) a.o = dp, memcpy(a.o_st, st, sizeof st);
        else if (!strcmp(nm, "lse")) a.lse = dp, memcpy(a.lse_st, st, sizeof st);
        else if (!strcmp(nm, "positions")) a.pos = dp, memcpy(a.pos_st, st, sizeof st);
        else if (!strcmp(nm, "state_in")) a.state_in = dp, memcpy(a.sin_st, st, sizeof st);
        else if (!strcmp(nm, "state_out")) a.state_out = dp, memcpy(a.sout_st, st, sizeof st);
        else if (!strcmp(nm, "norm_in")) a.norm_in = dp, memcpy(a.nin_st, st, sizeof st);
        else if (!strcmp(nm, "norm_out")) a.norm_out = dp, memcpy(a.nout_st, st, sizeof st);
        else
            for (int j = 0; j < k->n_inputs && j < 8; j++)
                if (!strcmp(nm, k->inputs[j].name)) in_ptr[j] = dp, memcpy(in_st[j], st, sizeof st);
    }
    int alias_of[SIG_MAX_TENSORS];   /* output i reads back from buffer alias_of[i] */
    for (int i = 0; i < ns; i++) alias_of[i] = i;
    if (flags & SIM_STATE_IN_PLACE) {
        if (!a.state_in || !a.state_out || (k->normalize && (!a.norm_in || !a.norm_out))) {
            snprintf(err, errlen, "in-place run without state_in/state_out (and norm_in/norm_out) views");
            for (int i = 0; i < SIG_MAX_TENSORS + 2; i++) free(bufs[i]);
            return false;
        }
        for (int i = 0; i < ns; i++) {
            const char *src = !strcmp(sig[i].name, "state_out") ? "state_in" : !strcmp(sig[i].name, "norm_out") ? "norm_in" : NULL;
            for (int j = 0; src && j < ns; j++)
                if (!strcmp(sig[j].name, src)) alias_of[i] = j;
        }
        a.state_out = a.state_in, memcpy(a.sout_st, a.sin_st, sizeof a.sin_st);
        a.norm_out = a.norm_in, memcpy(a.nout_st, a.nin_st, sizeof a.nin_st);
    }
    void *ws_o = NULL, *ws_lse = NULL;
    if (n_splits > 1) {
        size_t rows = (size_t)n_splits * (size_t)batch * (size_t)k->heads_q * (size_t)seq_q;
        ws_o = aligned_alloc(64, (rows * (size_t)k->d_v * 4 + 63) / 64 * 64 + 64);
        ws_lse = aligned_alloc(64, (rows * 4 + 63) / 64 * 64 + 64);
        memset(ws_o, 0xFF, rows * (size_t)k->d_v * 4);
        memset(ws_lse, 0xFF, rows * 4);
        globals[ng].ptr = ws_o, globals[ng++].bytes = rows * (size_t)k->d_v * 4;
        globals[ng].ptr = ws_lse, globals[ng++].bytes = rows * 4;
        a.ws_o = (uint64_t)(uintptr_t)ws_o, a.ws_lse = (uint64_t)(uintptr_t)ws_lse;
    }
    double freq[1024] = {0};
    if (k->rope.layout != IR_ROPE_NONE && k->rope.planned) ir_rope_inv_freq_at(&k->rope, seq_k, freq);
    size_t blob_size = cuda_args_size(k);
    unsigned char *blob = calloc(1, blob_size);
    cuda_args_pack(k, &a, in_ptr, (const int64_t(*)[4])in_st, freq, blob);
    bool ok = true;
    if (m->args_size() != blob_size) {
        snprintf(err, errlen, "argument block: host packs %zu bytes, the kernel's struct has %lu", blob_size, m->args_size());
        ok = false;
    }
    cuda_grid g = cuda_plan_fwd_grid(&m->plan, k, batch, seq_q, n_splits);
    void (*entry)(const void *) = m->fwd;
    if (cuda_plan_uses_step(&m->plan, seq_q) && strcmp(m->plan.step_name, m->plan.fwd_name) != 0) entry = m->step;
    if (ok && !entry) {
        snprintf(err, errlen, "the simulator build has no entry %s", cuda_plan_entry(&m->plan, seq_q));
        ok = false;
    }
    if (ok && g.gx && g.gy && g.gz) {
        res->errors = m->launch(entry, g.gx, g.gy, g.gz, g.threads, g.smem, blob, globals, ng, res->report,
                                sizeof res->report, res->stats);
        if (n_splits > 1 && res->errors == 0) {
            cuda_grid mg = cuda_plan_merge_grid(&m->plan, k, batch, seq_q);
            long long st2[8];
            size_t used = strlen(res->report);
            if (!m->merge) {
                snprintf(err, errlen, "no merge kernel in the simulator build");
                ok = false;
            } else if (mg.gx) {
                res->errors += m->launch(m->merge, mg.gx, 1, 1, mg.threads, 0, blob, globals, ng, res->report + used,
                                         sizeof res->report - used, st2);
            }
        }
    }
    /* outputs back into the caller's views */
    for (int i = 0; i < ns && ok; i++) {
        attnc_tensor *t = (attnc_tensor *)sig_find(tensors, n_tensors, sig[i].name);
        if (!t || sig[i].role != SIG_OUT) continue;
        int64_t n = tensor_count(t), idx[4] = {0}, tst[4];
        size_t esz = (size_t)attnc_dtype_size(t->dtype);
        tensor_strides(t, tst);
        for (int64_t e = 0; e < n; e++) {
            int64_t off = 0;
            for (int d = 0; d < t->ndim; d++) off += idx[d] * tst[d];
            const int src = alias_of[i];
            memcpy((char *)t->data + off * esz, (char *)bufs[src] + e * spreads[src] * (int64_t)esz, esz);
            for (int64_t g = 1; g < spreads[src]; g++) {
                const unsigned char *gap = (const unsigned char *)bufs[src] + (e * spreads[src] + g) * (int64_t)esz;
                for (size_t bi = 0; bi < esz; bi++)
                    if (gap[bi] != 0xFF && ok) {
                        snprintf(err, errlen, "%s: a store landed between elements (element %lld)", sig[i].name, (long long)e);
                        ok = false;
                    }
            }
            for (int d = t->ndim - 1; d >= 0; d--) {
                if (++idx[d] < t->shape[d]) break;
                idx[d] = 0;
            }
        }
    }
    free(blob);
    free(ws_o);
    free(ws_lse);
    for (int i = 0; i < SIG_MAX_TENSORS + 2; i++) free(bufs[i]);
    return ok;
}

static inline bool sim_run(const sim_module *m, const ir_kernel *k, int64_t batch, int64_t seq_q, int64_t seq_k,
                           attnc_tensor *tensors, int n_tensors, int n_splits, sim_result *res, char *err, size_t errlen) {
    return sim_run_ex(m, k, batch, seq_q, seq_k, tensors, n_tensors, n_splits, 0, res, err, errlen);
}

/* ---------------------------------------------------------------- test data */

typedef struct sim_case_data {
    attnc_tensor t[SIG_MAX_TENSORS];       /* kernel-dtype views (inputs and outputs) */
    attnc_tensor ref[SIG_MAX_TENSORS];     /* f64 views for the interpreter: inputs widened, outputs */
    int n;
} sim_case_data;

static inline uint64_t sim_rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}
static inline double sim_rng_uniform(uint64_t *s) { return (double)(sim_rng_next(s) >> 11) / 9007199254740992.0; }

/* Allocates every signature tensor, fills inputs with random data (values exactly
 * representable in the kernel dtype, so the reference sees the same numbers), and the f64
 * twins for the interpreter. Integer inputs (segment ids) get small runs of equal values;
 * positions get nondecreasing ids. */
static inline void sim_case_make(sim_case_data *c, const ir_kernel *k, int64_t batch, int64_t seq_q, int64_t seq_k,
                          bool with_lse, uint64_t seed) {
    sig_tensor sig[SIG_MAX_TENSORS];
    int ns = ir_signature(k, batch, seq_q, seq_k, sig);
    memset(c, 0, sizeof *c);
    uint64_t s = seed * 2654435761u + 12345;
    for (int i = 0; i < ns; i++) {
        if (sig[i].optional && !with_lse) continue;   /* lse, state_in, state_out */
        attnc_tensor *t = &c->t[c->n], *r = &c->ref[c->n];
        t->name = r->name = sig[i].name;
        t->dtype = sig[i].dtype;
        r->dtype = sig[i].dtype == ATTNC_I32 ? ATTNC_I32 : ATTNC_F64;
        t->ndim = r->ndim = sig[i].ndim;
        int64_t n = 1;
        for (int d = 0; d < sig[i].ndim; d++) t->shape[d] = r->shape[d] = sig[i].shape[d], n *= sig[i].shape[d];
        t->data = calloc((size_t)(n > 0 ? n : 1), (size_t)attnc_dtype_size(t->dtype));
        /* the interpreter reads the very same input views; its outputs are f64 */
        if (sig[i].role == SIG_IN) r->dtype = t->dtype, r->data = t->data;
        else r->data = calloc((size_t)(n > 0 ? n : 1), (size_t)attnc_dtype_size(r->dtype));
        if (sig[i].role == SIG_IN) {
            bool is_pos = strcmp(sig[i].name, "positions") == 0;
            for (int64_t e = 0; e < n; e++) {
                double v;
                if (t->dtype == ATTNC_I32) {
                    if (is_pos) {
                        /* [batch, seq_k, axes]: token index / 2 on axis 0, spread ids on others */
                        int64_t axes = sig[i].shape[2], tok = (e / axes) % sig[i].shape[1], ax = e % axes;
                        v = ax == 0 ? (double)(tok / 2) : (double)((tok * (ax + 1)) % 7 + tok / 3);
                    } else {
                        v = (double)((e / 5) % 3);
                    }
                    ((int32_t *)t->data)[e] = (int32_t)v;
                    continue;
                }
                v = 2.0 * sim_rng_uniform(&s) - 1.0;
                if (!strcmp(sig[i].name, "q") || !strcmp(sig[i].name, "k")) v *= 2.0;
                tensor_store(t, e, v);
            }
        } else {
            memset(t->data, 0xFF, (size_t)n * (size_t)attnc_dtype_size(t->dtype));
        }
        c->n++;
    }
}

static inline void sim_case_free(sim_case_data *c) {
    for (int i = 0; i < c->n; i++) {
        if (c->ref[i].data != c->t[i].data) free(c->ref[i].data);
        free(c->t[i].data);
    }
    memset(c, 0, sizeof *c);
}

/* Max error of output `name` against the reference: |x - r| / (atol + |r|) style numbers. */
typedef struct sim_cmp {
    double max_abs, max_ref;
    long long nan_count, mismatches;
    int64_t worst;
} sim_cmp;

static inline sim_cmp sim_compare(const sim_case_data *c, const char *name, double atol, double rtol) {
    sim_cmp r = {0};
    for (int i = 0; i < c->n; i++) {
        if (strcmp(c->t[i].name, name) != 0) continue;
        int64_t n = tensor_count(&c->t[i]);
        for (int64_t e = 0; e < n; e++) {
            double x = tensor_load(&c->t[i], e), y = ((double *)c->ref[i].data)[e];
            if (isinf(y) && x == y) continue;
            if (isnan(x) != isnan(y) || (isinf(x) != isinf(y))) {
                r.nan_count++;
                r.worst = e;
                continue;
            }
            double d = fabs(x - y);
            if (fabs(y) > r.max_ref) r.max_ref = fabs(y);
            if (d > r.max_abs) r.max_abs = d, r.worst = e;
            if (d > atol + rtol * fabs(y)) r.mismatches++;
        }
    }
    return r;
}

/* Builds a module from spec text through the real frontend and pass pipeline. */
static inline ir_module *sim_compile_spec(const char *src, arena *a, char *err, size_t errlen) {
    diag_sink d;
    diag_init(&d, "<test>", src, strlen(src));
    ir_module *m = frontend_compile(src, strlen(src), a, &d);
    if (d.n_errors == 0) ir_run_pipeline(m, &d, NULL, NULL);
    if (d.n_errors) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        diag_print(&d, f);
        fclose(f);
        snprintf(err, errlen, "%s", buf ? buf : "spec errors");
        free(buf);
        diag_free(&d);
        return NULL;
    }
    diag_free(&d);
    return m;
}

#endif
