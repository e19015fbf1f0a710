/* The launch signature: which tensors a kernel reads and writes, in a fixed order, with
 * dtype, shape and the name of every dimension; and the check of views against it, whose
 * messages name the tensor and say what shape or dtype was expected.
 *
 * Outputs (o, lse, state_out) are also accepted as ATTNC_F64 views: the interpreter writes
 * any float dtype, and float64 outputs let tests compare with the oracle exactly. A
 * backend that cannot write f64 rejects such views in its own launch validation. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "ir/signature.h"
#include "util/diag.h"

int attnc_dtype_size(attnc_dtype t) {
    switch (t) {
    case ATTNC_F32: case ATTNC_I32: return 4;
    case ATTNC_F16: case ATTNC_BF16: return 2;
    case ATTNC_F64: return 8;
    }
    return 0;
}

const char *attnc_dtype_name(attnc_dtype t) {
    switch (t) {
    case ATTNC_F32: return "f32";
    case ATTNC_F16: return "f16";
    case ATTNC_BF16: return "bf16";
    case ATTNC_I32: return "i32";
    case ATTNC_F64: return "f64";
    }
    return "?";
}

/* The longer form used in messages, so a user who saved the wrong numpy dtype sees both
 * the attnc and the numpy spelling. */
static const char *dtype_long_name(attnc_dtype t) {
    switch (t) {
    case ATTNC_F32: return "f32 (float32)";
    case ATTNC_F16: return "f16 (float16)";
    case ATTNC_BF16: return "bf16 (uint16 bit patterns)";
    case ATTNC_I32: return "i32 (int32)";
    case ATTNC_F64: return "f64 (float64)";
    }
    return "?";
}

static attnc_dtype kernel_dtype(ir_dtype d) {
    switch (d) {
    case IR_F16: return ATTNC_F16;
    case IR_BF16: return ATTNC_BF16;
    case IR_F32: break;
    }
    return ATTNC_F32;
}

typedef struct sig_builder {
    sig_tensor *out;
    int n;
} sig_builder;

/* Appends a tensor; dims come as (size, name) pairs. ndim beyond ATTNC_MAX_DIMS is kept
 * as a negative ndim so sig_check can report it instead of silently truncating. */
static sig_tensor *add(sig_builder *b, const char *name, sig_role role, bool optional, attnc_dtype dt) {
    if (b->n >= SIG_MAX_TENSORS) return NULL;
    sig_tensor *t = &b->out[b->n++];
    memset(t, 0, sizeof *t);
    t->name = name;
    t->role = role;
    t->optional = optional;
    t->dtype = dt;
    return t;
}

static void dim(sig_tensor *t, int64_t size, const char *name) {
    if (!t) return;
    if (t->ndim < 0 || t->ndim >= ATTNC_MAX_DIMS) {   /* too many: remember how many */
        t->ndim = t->ndim < 0 ? t->ndim - 1 : -(ATTNC_MAX_DIMS + 1);
        return;
    }
    t->shape[t->ndim] = size;
    t->dim_names[t->ndim] = name;
    t->ndim++;
}

int ir_signature(const ir_kernel *k, int64_t batch, int64_t seq_q, int64_t seq_k, sig_tensor *out) {
    sig_builder b = { out, 0 };
    attnc_dtype dt = kernel_dtype(k->dtype);
    bool rec = k->family == IR_RECURRENCE;
    const char *sq = rec ? "seq" : "seq_q", *sk = rec ? "seq" : "seq_k";
    if (rec) seq_k = seq_q;
    sig_tensor *t;

    t = add(&b, "q", SIG_IN, false, dt);
    dim(t, batch, "batch"); dim(t, seq_q, sq);
    dim(t, rec ? k->groups : k->heads_q, rec ? "groups" : "heads_q"); dim(t, k->d_qk, "d_qk");
    t = add(&b, "k", SIG_IN, false, dt);
    dim(t, batch, "batch"); dim(t, seq_k, sk);
    dim(t, rec ? k->groups : k->heads_kv, rec ? "groups" : "heads_kv"); dim(t, k->d_qk, "d_qk");
    if (rec || !k->v_in_k) {
        t = add(&b, "v", SIG_IN, false, dt);
        dim(t, batch, "batch"); dim(t, seq_k, sk);
        dim(t, rec ? k->heads_q : k->heads_kv, rec ? "heads" : "heads_kv"); dim(t, k->d_v, "d_v");
    }
    if (!rec && k->rope.layout != IR_ROPE_NONE && k->rope.explicit_positions) {
        t = add(&b, "positions", SIG_IN, false, ATTNC_I32);
        dim(t, batch, "batch"); dim(t, seq_k, "seq_k");
        dim(t, k->rope.n_sections > 1 ? k->rope.n_sections : 1, "axes");
    }
    for (int i = 0; i < k->n_inputs; i++) {
        const ir_input *in = &k->inputs[i];
        t = add(&b, in->name, SIG_IN, false, in->scalar == IR_S_I32 ? ATTNC_I32 : ATTNC_F32);
        for (int a = 0; a < in->n_axes; a++) {
            switch (in->axes[a]) {
            case IR_AXIS_TOKEN: dim(t, batch, "batch"); dim(t, seq_k, sk); break;
            case IR_AXIS_HEAD: dim(t, k->heads_q, rec ? "heads" : "heads_q"); break;
            case IR_AXIS_K: dim(t, k->d_qk, "d_qk"); break;
            case IR_AXIS_V: dim(t, k->d_v, "d_v"); break;
            }
        }
    }
    if (rec) {
        t = add(&b, "state_in", SIG_IN, true, ATTNC_F32);
        dim(t, batch, "batch"); dim(t, k->heads_q, "heads"); dim(t, k->d_qk, "d_qk"); dim(t, k->d_v, "d_v");
        if (k->normalize) {     /* the normaliser z travels with S so decode can continue a prefill */
            t = add(&b, "norm_in", SIG_IN, true, ATTNC_F32);
            dim(t, batch, "batch"); dim(t, k->heads_q, "heads"); dim(t, k->d_qk, "d_qk");
        }
    }
    t = add(&b, "o", SIG_OUT, false, dt);
    dim(t, batch, "batch"); dim(t, seq_q, sq);
    dim(t, k->heads_q, rec ? "heads" : "heads_q"); dim(t, k->d_v, "d_v");
    if (rec) {
        t = add(&b, "state_out", SIG_OUT, true, ATTNC_F32);
        dim(t, batch, "batch"); dim(t, k->heads_q, "heads"); dim(t, k->d_qk, "d_qk"); dim(t, k->d_v, "d_v");
        if (k->normalize) {
            t = add(&b, "norm_out", SIG_OUT, true, ATTNC_F32);
            dim(t, batch, "batch"); dim(t, k->heads_q, "heads"); dim(t, k->d_qk, "d_qk");
        }
    } else {
        t = add(&b, "lse", SIG_OUT, true, ATTNC_F32);
        dim(t, batch, "batch"); dim(t, seq_q, "seq_q"); dim(t, k->heads_q, "heads_q");
    }
    return b.n;
}

const attnc_tensor *sig_find(const attnc_tensor *ts, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (ts[i].name && strcmp(ts[i].name, name) == 0) return &ts[i];
    return NULL;
}

/* Appends printf-style text to a bounded buffer; never overflows, truncates quietly. */
static void put(char *buf, size_t len, size_t *pos, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void put(char *buf, size_t len, size_t *pos, const char *fmt, ...) {
    if (!buf || len == 0 || *pos >= len) return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + *pos, len - *pos, fmt, ap);
    va_end(ap);
    if (w > 0) *pos += (size_t)w;
    if (*pos >= len) *pos = len - 1;
}

static void put_shape(char *buf, size_t len, size_t *pos, const int64_t *shape, int ndim) {
    put(buf, len, pos, "[");
    for (int i = 0; i < ndim; i++) put(buf, len, pos, "%s%lld", i ? ", " : "", (long long)shape[i]);
    put(buf, len, pos, "]");
}

static void put_expected(char *buf, size_t len, size_t *pos, const sig_tensor *s) {
    put_shape(buf, len, pos, s->shape, s->ndim);
    put(buf, len, pos, " (");
    for (int i = 0; i < s->ndim; i++) put(buf, len, pos, "%s%s", i ? ", " : "", s->dim_names[i]);
    put(buf, len, pos, ")");
}

static bool dtype_ok(const sig_tensor *s, attnc_dtype got) {
    if (got == s->dtype) return true;
    return s->role == SIG_OUT && got == ATTNC_F64;
}

bool sig_check(const sig_tensor *sig, int n_sig, const attnc_tensor *ts, int n, char *err, size_t errlen) {
    size_t pos = 0;
    if (err && errlen) err[0] = '\0';
    for (int j = 0; j < n_sig; j++)
        if (sig[j].ndim < 0) {
            put(err, errlen, &pos, "tensor '%s' would need %d dimensions; attnc tensors have at most %d",
                sig[j].name, -sig[j].ndim, ATTNC_MAX_DIMS);
            return false;
        }
    for (int i = 0; i < n; i++) {
        const attnc_tensor *t = &ts[i];
        if (!t->name) {
            put(err, errlen, &pos, "tensor #%d has no name; every view needs its signature name", i);
            return false;
        }
        for (int j = 0; j < i; j++)
            if (ts[j].name && strcmp(ts[j].name, t->name) == 0) {
                put(err, errlen, &pos, "tensor '%s' is given twice; pass each tensor once", t->name);
                return false;
            }
        const sig_tensor *s = NULL;
        for (int j = 0; j < n_sig; j++)
            if (strcmp(sig[j].name, t->name) == 0) s = &sig[j];
        if (!s) {
            const char *names[SIG_MAX_TENSORS] = { 0 };
            for (int j = 0; j < n_sig && j < SIG_MAX_TENSORS; j++) names[j] = sig[j].name;
            const char *near = diag_closest(t->name, names, n_sig < SIG_MAX_TENSORS ? n_sig : SIG_MAX_TENSORS);
            put(err, errlen, &pos, "unknown tensor '%s'", t->name);
            if (near) put(err, errlen, &pos, "; did you mean '%s'?", near);
            put(err, errlen, &pos, " (this kernel takes:");
            for (int j = 0; j < n_sig; j++) put(err, errlen, &pos, " %s", sig[j].name);
            put(err, errlen, &pos, ")");
            return false;
        }
        if (!dtype_ok(s, t->dtype)) {
            put(err, errlen, &pos, "tensor '%s': expected %s", s->name, dtype_long_name(s->dtype));
            if (s->role == SIG_OUT) put(err, errlen, &pos, " or f64 (float64)");
            put(err, errlen, &pos, ", got %s", dtype_long_name(t->dtype));
            return false;
        }
        bool same = t->ndim == s->ndim;
        for (int d = 0; same && d < s->ndim; d++) same = t->shape[d] == s->shape[d];
        if (!same) {
            put(err, errlen, &pos, "tensor '%s': expected shape ", s->name);
            put_expected(err, errlen, &pos, s);
            put(err, errlen, &pos, ", got ");
            put_shape(err, errlen, &pos, t->shape, t->ndim < 0 ? 0 : t->ndim > ATTNC_MAX_DIMS ? ATTNC_MAX_DIMS : t->ndim);
            return false;
        }
        int64_t count = 1;
        for (int d = 0; d < s->ndim; d++) count *= s->shape[d];
        if (count > 0 && !t->data) {
            put(err, errlen, &pos, "tensor '%s' has no data (null pointer)", s->name);
            return false;
        }
    }
    for (int j = 0; j < n_sig; j++) {
        if (sig[j].optional || sig_find(ts, n, sig[j].name)) continue;
        put(err, errlen, &pos, "missing tensor '%s': expected %s ", sig[j].name, dtype_long_name(sig[j].dtype));
        put_expected(err, errlen, &pos, &sig[j]);
        return false;
    }
    return true;
}
