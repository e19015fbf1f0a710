/* The C API (include/attnc/attnc.h): contexts, programs, kernel lookup, signatures and
 * launches. Everything target-independent lives here, above the engines of engine.h:
 * the frontend and pass pipeline, diagnostics, every check of a launch's views (so each
 * engine gets arguments that match the signature), and the locking. The context's mutex
 * guards its program list and every program's kernel table; compiling and launching run
 * outside it, so threads only wait for each other on those short table updates. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "frontend/frontend.h"
#include "ir/signature.h"
#include "runtime/engine.h"
#include "runtime/kernel_cache.h"
#include "runtime/nvrtc.h"
#include "runtime/tensor_access.h"

struct attnc_context {
    pthread_mutex_t lock;
    const engine_ops *ops;
    void *state;                   /* the engine's */
    char target[64];
    char cache_dir[1024];
    bool has_cache;
    attnc_program *programs;       /* every live program, for attnc_context_destroy */
};

struct attnc_kernel {
    attnc_program *prog;
    const ir_kernel *ir;
    engine_kernel *ek;
};

struct attnc_program {
    attnc_context *ctx;
    attnc_program *prev, *next;
    arena arena;                   /* IR, diagnostics, kernel handles */
    ir_module *mod;                /* NULL when the spec has errors */
    attnc_diagnostic *diags;
    int n_diags, n_errors;
    char *diag_text;
    attnc_kernel **kernels;        /* [mod->n_kernels]: compiled on first lookup */
};

/* ---------------------------------------------------------------- errors */

static const char *const status_names[] = {
    "ATTNC_OK", "ATTNC_ERR_INVALID_ARGUMENT", "ATTNC_ERR_UNKNOWN_TARGET", "ATTNC_ERR_TARGET_UNAVAILABLE",
    "ATTNC_ERR_IO", "ATTNC_ERR_SPEC", "ATTNC_ERR_UNKNOWN_KERNEL", "ATTNC_ERR_COMPILE", "ATTNC_ERR_UNSUPPORTED",
    "ATTNC_ERR_UNKNOWN_TENSOR", "ATTNC_ERR_MISSING_TENSOR", "ATTNC_ERR_DTYPE", "ATTNC_ERR_SHAPE",
    "ATTNC_ERR_NULL_POINTER", "ATTNC_ERR_LAYOUT", "ATTNC_ERR_LAUNCH", "ATTNC_ERR_OUT_OF_MEMORY", "ATTNC_ERR_INTERNAL",
};

const char *attnc_status_name(attnc_status s) {
    if ((unsigned)s >= sizeof status_names / sizeof status_names[0]) return "?";
    return status_names[s];
}

const char *attnc_version(void) { return ATTNC_VERSION; }

attnc_status api_fail(attnc_error *err, attnc_status code, const char *fmt, ...) {
    if (err) {
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

attnc_status api_fail_backend(attnc_error *err, attnc_status code, const char *target, const char *kernel,
                              const char *msg) {
    char prefix[300];
    snprintf(prefix, sizeof prefix, "kernel '%s'", kernel);
    if (strncmp(msg, prefix, strlen(prefix)) == 0 && msg[strlen(prefix)] == ':')
        return api_fail(err, code, "%s on %s:%s", prefix, target, msg + strlen(prefix) + 1);
    return api_fail(err, code, "%s on %s: %s", prefix, target, msg);
}

static attnc_status ok(attnc_error *err) {
    if (err) {
        err->code = ATTNC_OK;
        err->message[0] = '\0';
    }
    return ATTNC_OK;
}

/* ---------------------------------------------------------------- contexts */

void attnc_options_init(attnc_options *opts) {
    if (!opts) return;
    memset(opts, 0, sizeof *opts);
    opts->target = "cpu";
    opts->device = -1;
}

/* Splits "cuda:sm_90a" into its engine and arch; reports unknown names with a suggestion. */
static attnc_status pick_engine(const char *target, const engine_ops *cpu, const engine_ops **ops, const char **arch,
                                attnc_error *err) {
    *arch = NULL;
    if (strcmp(target, "ref") == 0) {
        *ops = engine_ref_ops();
        return ATTNC_OK;
    }
    if (strcmp(target, "cpu") == 0) {
        if (!cpu)
            return api_fail(err, ATTNC_ERR_TARGET_UNAVAILABLE,
                            "target 'cpu' needs the LLVM backend, and this program was built without it (libattnc "
                            "without LLVM, or attnc_core linked without attnc_llvm); use target 'ref', or rebuild attnc "
                            "with the LLVM development files and link attnc::attnc");
        *ops = cpu;
        return ATTNC_OK;
    }
    if (strcmp(target, "cuda") == 0 || strncmp(target, "cuda:", 5) == 0) {
        if (target[4] == ':') {
            int cc;
            bool specific;
            const char *a = target + 5;
            if (strcmp(a, "native") != 0 && !nvrtc_parse_arch(a, &cc, &specific))
                return api_fail(err, ATTNC_ERR_UNKNOWN_TARGET,
                                "target '%s': bad CUDA architecture '%s'; use cuda, cuda:native or cuda:sm_XX such as "
                                "cuda:sm_80 or cuda:sm_90a", target, a);
            if (strcmp(a, "native") != 0) *arch = a;
        }
        *ops = engine_cuda_ops();
        return ATTNC_OK;
    }
    static const char *const names[] = { "ref", "cpu", "cuda" };
    const char *near = diag_closest(target, names, 3);
    return api_fail(err, ATTNC_ERR_UNKNOWN_TARGET, "unknown target '%s'%s%s%s; use ref, cpu or cuda[:sm_XX]", target,
                    near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
}

attnc_status api_context_create(const attnc_options *opts, const engine_ops *cpu, attnc_context **out,
                                attnc_error *err) {
    if (!out) return api_fail(err, ATTNC_ERR_INVALID_ARGUMENT, "attnc_context_create: out is NULL; pass the address of an attnc_context *");
    *out = NULL;
    attnc_options def;
    attnc_options_init(&def);
    if (!opts) opts = &def;
    const char *target = opts->target ? opts->target : "cpu";
    if (opts->device < -1)
        return api_fail(err, ATTNC_ERR_INVALID_ARGUMENT, "device %d is not a device ordinal; use -1 (the default) or 0, 1, ...",
                        opts->device);
    if (opts->threads < 0)
        return api_fail(err, ATTNC_ERR_INVALID_ARGUMENT, "threads %d is negative; use 0 (every CPU) or a count",
                        opts->threads);

    const engine_ops *ops = NULL;
    const char *arch;
    attnc_status s = pick_engine(target, cpu, &ops, &arch, err);
    if (s != ATTNC_OK) return s;

    attnc_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return api_fail(err, ATTNC_ERR_OUT_OF_MEMORY, "out of memory creating a context");
    ctx->ops = ops;
    if (!opts->cache_dir || opts->cache_dir[0]) {
        kernel_cache kc;
        char cerr[512];
        if (kernel_cache_open(&kc, opts->cache_dir, cerr, sizeof cerr)) {
            snprintf(ctx->cache_dir, sizeof ctx->cache_dir, "%s", kc.dir);
            ctx->has_cache = true;
        } else if (opts->cache_dir) {
            /* an explicit directory must work; the default one is only an optimisation */
            free(ctx);
            return api_fail(err, ATTNC_ERR_IO, "%s; pass another cache_dir, or \"\" for no cache", cerr);
        }
    }
    engine_config cfg = { arch, ctx->has_cache ? ctx->cache_dir : NULL, opts->device, opts->threads };
    snprintf(ctx->target, sizeof ctx->target, "%s", target);
    attnc_error local;
    attnc_error *e = err ? err : &local;
    e->code = ATTNC_ERR_TARGET_UNAVAILABLE;
    e->message[0] = '\0';
    if (!ops->open(&cfg, &ctx->state, ctx->target, sizeof ctx->target, e)) {
        free(ctx);
        return e->code;
    }
    if (pthread_mutex_init(&ctx->lock, NULL) != 0) {
        ops->close(ctx->state);
        free(ctx);
        return api_fail(err, ATTNC_ERR_INTERNAL, "cannot create a mutex");
    }
    *out = ctx;
    return ok(err);
}

static void program_free(attnc_program *p);

void attnc_context_destroy(attnc_context *ctx) {
    if (!ctx) return;
    pthread_mutex_lock(&ctx->lock);
    attnc_program *p = ctx->programs;
    ctx->programs = NULL;
    pthread_mutex_unlock(&ctx->lock);
    while (p) {
        attnc_program *next = p->next;
        program_free(p);
        p = next;
    }
    ctx->ops->close(ctx->state);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

const char *attnc_context_target(const attnc_context *ctx) { return ctx ? ctx->target : NULL; }

const char *attnc_context_cache_dir(const attnc_context *ctx) {
    return ctx && ctx->has_cache ? ctx->cache_dir : NULL;
}

/* ---------------------------------------------------------------- programs */

/* Keeps the sink's records and the printed text in the program's arena. */
static void keep_diagnostics(attnc_program *p, diag_sink *d) {
    p->n_errors = d->n_errors;
    p->n_diags = d->n_records;
    p->diags = arena_calloc(&p->arena, (size_t)(d->n_records ? d->n_records : 1), sizeof *p->diags);
    const char *file = arena_strdup(&p->arena, d->path);
    for (int i = 0; i < d->n_records; i++) {
        const diag_record *r = &d->records[i];
        attnc_diagnostic *o = &p->diags[i];
        o->severity = r->severity == DIAG_ERROR ? ATTNC_SEVERITY_ERROR
                    : r->severity == DIAG_WARNING ? ATTNC_SEVERITY_WARNING : ATTNC_SEVERITY_NOTE;
        o->file = file;
        o->line = r->loc.line;
        o->col = r->loc.col;
        o->end_line = r->loc.end_line;
        o->end_col = r->loc.end_col;
        o->message = arena_strdup(&p->arena, r->message ? r->message : "");
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f) {
        diag_print(d, f);
        if (d->n_errors > d->n_records)
            fprintf(f, "%s: %d more errors not shown\n", d->path, d->n_errors - d->n_records);
        fclose(f);
    }
    p->diag_text = arena_strdup(&p->arena, buf ? buf : "");
    free(buf);
}

static attnc_status compile_source(attnc_context *ctx, const char *src, size_t len, const char *name,
                                   attnc_program **out, attnc_error *err) {
    attnc_program *p = calloc(1, sizeof *p);
    if (!p) return api_fail(err, ATTNC_ERR_OUT_OF_MEMORY, "out of memory compiling '%s'", name);
    p->ctx = ctx;
    arena_init(&p->arena);
    diag_sink d;
    diag_init(&d, name, src, len);
    ir_module *m = frontend_compile(src, len, &p->arena, &d);
    if (d.n_errors == 0) ir_run_pipeline(m, &d, NULL, NULL);
    diag_sort(&d);
    keep_diagnostics(p, &d);
    diag_free(&d);
    if (p->n_errors == 0) {
        p->mod = m;
        p->kernels = arena_calloc(&p->arena, (size_t)(m->n_kernels ? m->n_kernels : 1), sizeof *p->kernels);
    }
    pthread_mutex_lock(&ctx->lock);
    p->next = ctx->programs;
    if (ctx->programs) ctx->programs->prev = p;
    ctx->programs = p;
    pthread_mutex_unlock(&ctx->lock);
    *out = p;
    if (p->n_errors) {
        const attnc_diagnostic *first = NULL;
        for (int i = 0; i < p->n_diags && !first; i++)
            if (p->diags[i].severity == ATTNC_SEVERITY_ERROR) first = &p->diags[i];
        if (!first) return api_fail(err, ATTNC_ERR_SPEC, "%s: %d errors", name, p->n_errors);
        return api_fail(err, ATTNC_ERR_SPEC, "%s has %d error%s; the first: %s:%d:%d: %s (all of them: "
                        "attnc_program_diagnostic / attnc_program_diagnostics_text)", name, p->n_errors,
                        p->n_errors == 1 ? "" : "s", first->file, first->line, first->col, first->message);
    }
    return ok(err);
}

attnc_status attnc_compile_string(attnc_context *ctx, const char *src, size_t len, const char *name,
                                  attnc_program **out, attnc_error *err) {
    if (out) *out = NULL;
    if (!ctx || !src || !out)
        return api_fail(err, ATTNC_ERR_INVALID_ARGUMENT, "attnc_compile_string: %s is NULL",
                        !ctx ? "the context" : !src ? "the source" : "out");
    if (len == 0) len = strlen(src);
    /* The lexer reads a NUL-terminated copy; src need not be terminated when len is given. */
    char *copy = malloc(len + 1);
    if (!copy) return api_fail(err, ATTNC_ERR_OUT_OF_MEMORY, "out of memory copying a %zu-byte spec", len);
    memcpy(copy, src, len);
    copy[len] = '\0';
    attnc_status s = compile_source(ctx, copy, len, name ? name : "<string>", out, err);
    free(copy);
    return s;
}

attnc_status attnc_compile_file(attnc_context *ctx, const char *path, attnc_program **out, attnc_error *err) {
    if (out) *out = NULL;
    if (!ctx || !path || !out)
        return api_fail(err, ATTNC_ERR_INVALID_ARGUMENT, "attnc_compile_file: %s is NULL",
                        !ctx ? "the context" : !path ? "the path" : "out");
    FILE *f = fopen(path, "rb");
    if (!f) return api_fail(err, ATTNC_ERR_IO, "cannot read spec '%s': %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    bool read_ok = true;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 16384;
            char *nb = realloc(buf, ncap);
            if (!nb) { read_ok = false; break; }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) break;
    }
    int saved = errno;
    bool io_err = ferror(f);
    fclose(f);
    if (!read_ok || io_err) {
        free(buf);
        if (!read_ok) return api_fail(err, ATTNC_ERR_OUT_OF_MEMORY, "out of memory reading spec '%s'", path);
        return api_fail(err, ATTNC_ERR_IO, "cannot read spec '%s': %s", path, strerror(saved));
    }
    if (!buf) buf = calloc(1, 1);
    if (!buf) return api_fail(err, ATTNC_ERR_OUT_OF_MEMORY, "out of memory reading spec '%s'", path);
    buf[len] = '\0';
    attnc_status s = compile_source(ctx, buf, len, path, out, err);
    free(buf);
    return s;
}

static void program_free(attnc_program *p) {
    if (p->kernels)
        for (int i = 0; i < p->mod->n_kernels; i++)
            if (p->kernels[i]) p->ctx->ops->release(p->ctx->state, p->kernels[i]->ek);
    arena_free(&p->arena);
    free(p);
}

void attnc_program_destroy(attnc_program *p) {
    if (!p) return;
    attnc_context *ctx = p->ctx;
    pthread_mutex_lock(&ctx->lock);
    if (p->prev) p->prev->next = p->next;
    else ctx->programs = p->next;
    if (p->next) p->next->prev = p->prev;
    pthread_mutex_unlock(&ctx->lock);
    program_free(p);
}

int attnc_program_error_count(const attnc_program *p) { return p ? p->n_errors : 0; }
int attnc_program_diagnostic_count(const attnc_program *p) { return p ? p->n_diags : 0; }

const attnc_diagnostic *attnc_program_diagnostic(const attnc_program *p, int i) {
    if (!p || i < 0 || i >= p->n_diags) return NULL;
    return &p->diags[i];
}

const char *attnc_program_diagnostics_text(const attnc_program *p) { return p ? p->diag_text : ""; }

int attnc_program_kernel_count(const attnc_program *p) { return p && p->mod ? p->mod->n_kernels : 0; }

const char *attnc_program_kernel_name(const attnc_program *p, int i) {
    if (!p || !p->mod || i < 0 || i >= p->mod->n_kernels) return NULL;
    return p->mod->kernels[i]->name;
}

/* ---------------------------------------------------------------- kernels */

static attnc_status unknown_kernel(const attnc_program *p, const char *name, attnc_error *err) {
    const char *names[64];
    int n = p->mod->n_kernels < 64 ? p->mod->n_kernels : 64;
    for (int i = 0; i < n; i++) names[i] = p->mod->kernels[i]->name;
    const char *near = diag_closest(name, names, n);
    char list[512] = "";
    size_t pos = 0;
    for (int i = 0; i < p->mod->n_kernels && pos < sizeof list; i++)
        pos += (size_t)snprintf(list + pos, sizeof list - pos, "%s%s", i ? ", " : "", p->mod->kernels[i]->name);
    return api_fail(err, ATTNC_ERR_UNKNOWN_KERNEL, "no kernel '%s'%s%s%s; the program has: %s", name,
                    near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "", list[0] ? list : "no kernels");
}

attnc_status attnc_kernel_get(attnc_program *p, const char *name, attnc_kernel **out, attnc_error *err) {
    if (out) *out = NULL;
    if (!p || !name || !out)
        return api_fail(err, ATTNC_ERR_INVALID_ARGUMENT, "attnc_kernel_get: %s is NULL",
                        !p ? "the program" : !name ? "the name" : "out");
    if (!p->mod)
        return api_fail(err, ATTNC_ERR_SPEC, "the program has %d error%s and no kernels; fix the spec first",
                        p->n_errors, p->n_errors == 1 ? "" : "s");
    int idx = -1;
    for (int i = 0; i < p->mod->n_kernels && idx < 0; i++)
        if (strcmp(p->mod->kernels[i]->name, name) == 0) idx = i;
    if (idx < 0) return unknown_kernel(p, name, err);

    attnc_context *ctx = p->ctx;
    pthread_mutex_lock(&ctx->lock);
    attnc_kernel *have = p->kernels[idx];
    pthread_mutex_unlock(&ctx->lock);
    if (have) {
        *out = have;
        return ok(err);
    }
    /* Compile without the lock (it may take a while); when two threads race, the first
     * to finish wins and the other's handle is released. */
    attnc_error local;
    attnc_error *e = err ? err : &local;
    e->code = ATTNC_OK;
    e->message[0] = '\0';
    engine_kernel *ek = ctx->ops->compile(ctx->state, p->mod->kernels[idx], e);
    if (!ek) {
        if (e->code == ATTNC_OK) api_fail(e, ATTNC_ERR_COMPILE, "kernel '%s': the %s backend failed without a message", name,
                                          ctx->ops->name);
        return e->code;
    }
    pthread_mutex_lock(&ctx->lock);
    if (!p->kernels[idx]) {
        attnc_kernel *k = arena_alloc(&p->arena, sizeof *k);
        k->prog = p;
        k->ir = p->mod->kernels[idx];
        k->ek = ek;
        p->kernels[idx] = k;
        ek = NULL;
    }
    *out = p->kernels[idx];
    pthread_mutex_unlock(&ctx->lock);
    if (ek) ctx->ops->release(ctx->state, ek);
    return ok(err);
}

const char *attnc_kernel_name(const attnc_kernel *k) { return k ? k->ir->name : NULL; }
int attnc_kernel_is_recurrence(const attnc_kernel *k) { return k && k->ir->family == IR_RECURRENCE; }

static attnc_status check_lengths(const ir_kernel *k, int64_t batch, int64_t seq_q, int64_t seq_k, attnc_error *err) {
    if (batch < 0 || seq_q < 0 || seq_k < 0 || batch > IR_MAX_LENGTH || seq_q > IR_MAX_LENGTH || seq_k > IR_MAX_LENGTH)
        return api_fail(err, ATTNC_ERR_INVALID_ARGUMENT,
                        "kernel '%s': batch %lld, seq_q %lld, seq_k %lld: lengths must be in [0, 2^31)", k->name,
                        (long long)batch, (long long)seq_q, (long long)seq_k);
    if (k->family == IR_RECURRENCE && seq_q != seq_k)
        return api_fail(err, ATTNC_ERR_INVALID_ARGUMENT,
                        "kernel '%s' is a recurrence: seq_q and seq_k must be equal (got %lld and %lld)", k->name,
                        (long long)seq_q, (long long)seq_k);
    return ATTNC_OK;
}

attnc_status attnc_kernel_signature(const attnc_kernel *k, int64_t batch, int64_t seq_q, int64_t seq_k,
                                    attnc_tensor_info *out, int cap, int *n_out, attnc_error *err) {
    if (n_out) *n_out = 0;
    if (!k || !n_out || cap < 0 || (cap > 0 && !out))
        return api_fail(err, ATTNC_ERR_INVALID_ARGUMENT, "attnc_kernel_signature: %s",
                        !k ? "the kernel is NULL" : !n_out ? "n_out is NULL"
                        : cap < 0 ? "cap is negative" : "out is NULL but cap > 0");
    attnc_status s = check_lengths(k->ir, batch, seq_q, seq_k, err);
    if (s != ATTNC_OK) return s;
    sig_tensor sig[SIG_MAX_TENSORS];
    int n = ir_signature(k->ir, batch, seq_q, seq_k, sig);
    for (int i = 0; i < n && i < cap; i++) {
        attnc_tensor_info *o = &out[i];
        memset(o, 0, sizeof *o);
        o->name = sig[i].name;
        o->role = sig[i].role == SIG_OUT ? ATTNC_ROLE_OUTPUT : ATTNC_ROLE_INPUT;
        o->optional = sig[i].optional;
        o->dtype = sig[i].dtype;
        o->ndim = sig[i].ndim;
        for (int d = 0; d < sig[i].ndim && d < ATTNC_MAX_DIMS; d++) {
            o->shape[d] = sig[i].shape[d];
            o->dim_names[d] = sig[i].dim_names[d];
        }
    }
    *n_out = n;
    return ok(err);
}

attnc_status attnc_kernel_workspace(const attnc_kernel *k, int64_t batch, int64_t seq_q, int64_t seq_k, int64_t *bytes,
                                    attnc_error *err) {
    if (bytes) *bytes = 0;
    if (!k || !bytes)
        return api_fail(err, ATTNC_ERR_INVALID_ARGUMENT, "attnc_kernel_workspace: %s",
                        !k ? "the kernel is NULL" : "bytes is NULL");
    attnc_status s = check_lengths(k->ir, batch, seq_q, seq_k, err);
    if (s != ATTNC_OK) return s;
    const engine_ops *ops = k->prog->ctx->ops;
    *bytes = ops->workspace ? ops->workspace(k->prog->ctx->state, k->ek, batch, seq_q, seq_k) : 0;
    return ok(err);
}

/* ---------------------------------------------------------------- launches */

static bool dtype_known(attnc_dtype t) { return (unsigned)t <= (unsigned)ATTNC_F64; }

/* Every view against the signature, with a code per kind of mistake; messages come from
 * sig_check where it has one, so the CLI and the API word them alike. */
static attnc_status check_views(const ir_kernel *k, const sig_tensor *sig, int n_sig, const attnc_tensor *ts, int n,
                                attnc_error *err) {
    char msg[sizeof err->message];
    if (n > SIG_MAX_TENSORS)
        return api_fail(err, ATTNC_ERR_INVALID_ARGUMENT, "kernel '%s': %d tensors given; it takes at most %d", k->name, n,
                        n_sig);
    for (int i = 0; i < n; i++) {
        const attnc_tensor *t = &ts[i];
        if (!t->name)
            return api_fail(err, ATTNC_ERR_INVALID_ARGUMENT, "tensor #%d has no name; set .name to its signature name (q, k, v, o, ...)", i);
        for (int j = 0; j < i; j++)
            if (strcmp(ts[j].name, t->name) == 0)
                return api_fail(err, ATTNC_ERR_INVALID_ARGUMENT, "tensor '%s' is given twice; pass each tensor once", t->name);
        const sig_tensor *s = NULL;
        for (int j = 0; j < n_sig && !s; j++)
            if (strcmp(sig[j].name, t->name) == 0) s = &sig[j];
        if (!s) {
            sig_check(sig, n_sig, t, 1, msg, sizeof msg);
            return api_fail(err, ATTNC_ERR_UNKNOWN_TENSOR, "kernel '%s': %s", k->name, msg);
        }
        if (!dtype_known(t->dtype))
            return api_fail(err, ATTNC_ERR_DTYPE, "tensor '%s': dtype %d is not an attnc_dtype; expected %s", t->name,
                            (int)t->dtype, attnc_dtype_name(s->dtype));
        if (t->ndim < 0 || t->ndim > ATTNC_MAX_DIMS)
            return api_fail(err, ATTNC_ERR_SHAPE, "tensor '%s': ndim %d; attnc tensors have 0 to %d dimensions (this one %d)",
                            t->name, t->ndim, ATTNC_MAX_DIMS, s->ndim);
        if (!sig_check(s, 1, t, 1, msg, sizeof msg)) {
            bool dt_ok = t->dtype == s->dtype || (s->role == SIG_OUT && t->dtype == ATTNC_F64);
            bool shape_ok = t->ndim == s->ndim;
            for (int d = 0; shape_ok && d < s->ndim; d++) shape_ok = t->shape[d] == s->shape[d];
            attnc_status code = !dt_ok ? ATTNC_ERR_DTYPE : !shape_ok ? ATTNC_ERR_SHAPE : ATTNC_ERR_NULL_POINTER;
            if (code == ATTNC_ERR_NULL_POINTER)
                return api_fail(err, code, "%s; pass the address of its first element", msg);
            return api_fail(err, code, "%s", msg);
        }
        int64_t count = tensor_count(t);
        if (count == 0) continue;
        int es = attnc_dtype_size(t->dtype);
        if ((uintptr_t)t->data % (uintptr_t)es != 0)
            return api_fail(err, ATTNC_ERR_LAYOUT, "tensor '%s': data %p is not aligned to its %d-byte %s elements",
                            t->name, t->data, es, attnc_dtype_name(t->dtype));
        bool contiguous = true;
        for (int d = 0; d < ATTNC_MAX_DIMS; d++) contiguous = contiguous && t->strides[d] == 0;
        if (contiguous) continue;
        for (int d = 0; d < t->ndim; d++) {
            if (t->strides[d] < 0)
                return api_fail(err, ATTNC_ERR_LAYOUT, "tensor '%s': stride %lld in dimension %d (%s); attnc needs "
                                "strides >= 0 (in elements), or all zero for a contiguous tensor", t->name,
                                (long long)t->strides[d], d, s->dim_names[d]);
            if (s->role == SIG_OUT && t->strides[d] == 0 && t->shape[d] > 1)
                return api_fail(err, ATTNC_ERR_LAYOUT, "output '%s': stride 0 in dimension %d (%s) of size %lld makes its "
                                "elements overlap; give every dimension of an output its own stride", t->name, d,
                                s->dim_names[d], (long long)t->shape[d]);
        }
    }
    for (int j = 0; j < n_sig; j++) {
        if (sig[j].optional || sig_find(ts, n, sig[j].name)) continue;
        sig_check(sig, n_sig, ts, n, msg, sizeof msg);
        return api_fail(err, ATTNC_ERR_MISSING_TENSOR, "kernel '%s': %s", k->name, msg);
    }
    return ATTNC_OK;
}

attnc_status attnc_launch(const attnc_kernel *k, int64_t batch, int64_t seq_q, int64_t seq_k,
                          const attnc_tensor *tensors, int n, const attnc_launch_options *opts, attnc_error *err) {
    if (!k) return api_fail(err, ATTNC_ERR_INVALID_ARGUMENT, "attnc_launch: the kernel is NULL");
    if (n < 0 || (n > 0 && !tensors))
        return api_fail(err, ATTNC_ERR_INVALID_ARGUMENT, "attnc_launch: %s", n < 0 ? "n is negative" : "tensors is NULL");
    attnc_status s = check_lengths(k->ir, batch, seq_q, seq_k, err);
    if (s != ATTNC_OK) return s;
    sig_tensor sig[SIG_MAX_TENSORS];
    int n_sig = ir_signature(k->ir, batch, seq_q, seq_k, sig);
    s = check_views(k->ir, sig, n_sig, tensors, n, err);
    if (s != ATTNC_OK) return s;

    const engine_ops *ops = k->prog->ctx->ops;
    engine_launch lo = { opts ? opts->stream : NULL, opts && opts->device_pointers };
    if (strcmp(ops->name, "cuda") != 0 && (lo.stream || lo.device_pointers))
        return api_fail(err, ATTNC_ERR_INVALID_ARGUMENT, "target '%s' runs on host memory: a stream and device pointers "
                        "are for cuda targets; pass NULL launch options", k->prog->ctx->target);
    attnc_tensor views[SIG_MAX_TENSORS];
    if (n) memcpy(views, tensors, (size_t)n * sizeof *views);
    attnc_error local;
    attnc_error *e = err ? err : &local;
    e->code = ATTNC_OK;
    e->message[0] = '\0';
    if (!ops->launch(k->prog->ctx->state, k->ek, batch, seq_q, seq_k, views, n, &lo, e)) {
        if (e->code == ATTNC_OK) api_fail(e, ATTNC_ERR_LAUNCH, "kernel '%s': the %s backend failed without a message",
                                          k->ir->name, ops->name);
        return e->code;
    }
    return ok(err);
}
