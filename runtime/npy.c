/* .npy reading and writing (see npy.h). The header is a Python dict literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * after a magic string, a version and a little-endian length; a small hand-written
 * scanner reads exactly that grammar, checking every bound, so corrupt files give
 * messages instead of crashes. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "runtime/npy.h"
#include "runtime/tensor_access.h"

enum { NPY_MAX_HEADER = 1 << 20 };   /* real headers are < 1 KiB; bounds hostile lengths */

static const char npy_magic[6] = { '\x93', 'N', 'U', 'M', 'P', 'Y' };

static bool npy_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool npy_fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return false;
}

/* ---------------------------------------------------------------- header scanner */

typedef struct scanner {
    const char *p, *end;
} scanner;

static void skip_space(scanner *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

static bool accept(scanner *s, char c) {
    skip_space(s);
    if (s->p < s->end && *s->p == c) { s->p++; return true; }
    return false;
}

/* A quoted string ('...' or "..."), no escapes (numpy never writes any here). */
static bool scan_string(scanner *s, char *out, size_t cap) {
    skip_space(s);
    if (s->p >= s->end || (*s->p != '\'' && *s->p != '"')) return false;
    char q = *s->p++;
    size_t n = 0;
    while (s->p < s->end && *s->p != q) {
        if (n + 1 >= cap) return false;
        out[n++] = *s->p++;
    }
    if (s->p >= s->end) return false;
    s->p++;
    out[n] = '\0';
    return true;
}

static bool scan_word(scanner *s, const char *w) {
    skip_space(s);
    size_t n = strlen(w);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0) return false;
    s->p += n;
    return true;
}

static bool scan_int(scanner *s, int64_t *out) {
    skip_space(s);
    int64_t v = 0;
    int digits = 0;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
        if (v > (INT64_MAX - 9) / 10) return false;
        v = v * 10 + (*s->p++ - '0');
        digits++;
    }
    if (s->p < s->end && *s->p == 'L') s->p++;   /* Python 2 longs in old files */
    *out = v;
    return digits > 0;
}

typedef struct npy_header {
    attnc_dtype dtype;
    int ndim;
    int64_t shape[ATTNC_MAX_DIMS];
} npy_header;

static bool parse_descr(const char *d, attnc_dtype *out, char *err, size_t errlen) {
    static const struct { const char *descr; attnc_dtype dt; } known[] = {
        { "<f4", ATTNC_F32 }, { "<f2", ATTNC_F16 }, { "<u2", ATTNC_BF16 }, { "<i4", ATTNC_I32 }, { "<f8", ATTNC_F64 },
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(d, known[i].descr) == 0) { *out = known[i].dt; return true; }
    if (d[0] == '>')
        return npy_fail(err, errlen, "big-endian data ('%s') is not supported; save arr.astype(arr.dtype.newbyteorder('<'))", d);
    return npy_fail(err, errlen, "unsupported dtype '%s'; use float32 '<f4', float16 '<f2', bfloat16 bits as "
                    "uint16 '<u2', int32 '<i4' or float64 '<f8'", d);
}

static bool parse_header(const char *text, size_t len, npy_header *h, char *err, size_t errlen) {
    scanner s = { text, text + len };
    bool have_descr = false, have_order = false, have_shape = false;
    if (!accept(&s, '{')) return npy_fail(err, errlen, "malformed .npy header: expected '{'");
    while (!accept(&s, '}')) {
        char key[32], val[32];
        if (!scan_string(&s, key, sizeof key) || !accept(&s, ':'))
            return npy_fail(err, errlen, "malformed .npy header: expected a quoted key and ':'");
        if (strcmp(key, "descr") == 0) {
            if (!scan_string(&s, val, sizeof val))
                return npy_fail(err, errlen, "malformed .npy header: 'descr' must be a simple dtype string "
                                "(structured arrays are not supported)");
            if (!parse_descr(val, &h->dtype, err, errlen)) return false;
            have_descr = true;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (scan_word(&s, "True"))
                return npy_fail(err, errlen, "Fortran-order arrays are not supported; save np.ascontiguousarray(arr)");
            if (!scan_word(&s, "False"))
                return npy_fail(err, errlen, "malformed .npy header: 'fortran_order' must be True or False");
            have_order = true;
        } else if (strcmp(key, "shape") == 0) {
            if (!accept(&s, '('))
                return npy_fail(err, errlen, "malformed .npy header: 'shape' must be a tuple");
            h->ndim = 0;
            while (!accept(&s, ')')) {
                int64_t v;
                if (!scan_int(&s, &v))
                    return npy_fail(err, errlen, "malformed .npy header: bad dimension in 'shape'");
                if (h->ndim == ATTNC_MAX_DIMS)
                    return npy_fail(err, errlen, "arrays of more than %d dimensions are not supported", ATTNC_MAX_DIMS);
                h->shape[h->ndim++] = v;
                if (!accept(&s, ',')) {
                    if (!accept(&s, ')'))
                        return npy_fail(err, errlen, "malformed .npy header: expected ',' or ')' in 'shape'");
                    break;
                }
            }
            have_shape = true;
        } else {
            return npy_fail(err, errlen, "malformed .npy header: unexpected key '%s'", key);
        }
        if (!accept(&s, ',')) {
            if (!accept(&s, '}')) return npy_fail(err, errlen, "malformed .npy header: expected ',' or '}'");
            break;
        }
    }
    if (!have_descr || !have_order || !have_shape)
        return npy_fail(err, errlen, "malformed .npy header: missing '%s'",
                        !have_descr ? "descr" : !have_order ? "fortran_order" : "shape");
    return true;
}

/* Splits a file prefix into header fields; *data_off is where the array starts. */
static bool parse_preamble(const unsigned char *buf, size_t len, npy_header *h, size_t *data_off,
                           char *err, size_t errlen) {
    if (len < 10 || memcmp(buf, npy_magic, sizeof npy_magic) != 0)
        return npy_fail(err, errlen, "not a .npy file (missing the \\x93NUMPY magic)");
    int major = buf[6];
    size_t hlen, pre;
    if (major == 1) {
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
        pre = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12) return npy_fail(err, errlen, "truncated .npy file (header length)");
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        pre = 12;
    } else {
        return npy_fail(err, errlen, "unsupported .npy format version %d.%d; use 1.0, 2.0 or 3.0", major, buf[7]);
    }
    if (hlen > NPY_MAX_HEADER) return npy_fail(err, errlen, "implausible .npy header length %zu", hlen);
    if (len - pre < hlen) return npy_fail(err, errlen, "truncated .npy file (header)");
    memset(h, 0, sizeof *h);
    if (!parse_header((const char *)buf + pre, hlen, h, err, errlen)) return false;
    *data_off = pre + hlen;
    return true;
}

static bool data_bytes(const npy_header *h, size_t *out, char *err, size_t errlen) {
    attnc_tensor t = { .dtype = h->dtype, .ndim = h->ndim };
    memcpy(t.shape, h->shape, sizeof t.shape);
    int64_t n = tensor_count(&t);
    int64_t es = h->dtype == ATTNC_F64 ? 8 : (h->dtype == ATTNC_F32 || h->dtype == ATTNC_I32) ? 4 : 2;
    if (n < 0 || n > INT64_MAX / es || (uint64_t)(n * es) > SIZE_MAX)
        return npy_fail(err, errlen, "array too large");
    *out = (size_t)(n * es);
    return true;
}

static void fill_tensor(attnc_tensor *out, const npy_header *h, void *data) {
    memset(out, 0, sizeof *out);
    out->dtype = h->dtype;
    out->ndim = h->ndim;
    memcpy(out->shape, h->shape, sizeof out->shape);
    out->data = data;
}

bool npy_read_mem(const void *buf, size_t len, attnc_tensor *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    npy_header h;
    size_t off = 0, need = 0;
    if (!parse_preamble(buf, len, &h, &off, err, errlen) || !data_bytes(&h, &need, err, errlen)) return false;
    if (len - off != need)
        return npy_fail(err, errlen, "%s .npy file: the header promises %zu data bytes, the file has %zu",
                        len - off < need ? "truncated" : "oversized", need, len - off);
    void *data = malloc(need ? need : 1);
    if (!data) return npy_fail(err, errlen, "out of memory (%zu bytes)", need);
    memcpy(data, (const unsigned char *)buf + off, need);
    fill_tensor(out, &h, data);
    return true;
}

bool npy_read(const char *path, attnc_tensor *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return npy_fail(err, errlen, "cannot open '%s': %s", path, strerror(errno));
    /* Read the preamble and header first, then exactly the promised data. */
    unsigned char pre[12];
    size_t got = fread(pre, 1, sizeof pre, f);
    bool ok = false;
    unsigned char *head = NULL;
    void *data = NULL;
    npy_header h;
    size_t off = 0, need = 0;
    char msg[256];
    if (got < 10 || memcmp(pre, npy_magic, sizeof npy_magic) != 0) {
        npy_fail(msg, sizeof msg, "not a .npy file (missing the \\x93NUMPY magic)");
        goto done;
    }
    size_t hlen = pre[6] == 1 ? ((size_t)pre[8] | (size_t)pre[9] << 8)
                : got < 12 ? 0 : ((size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24);
    size_t total = (pre[6] == 1 ? 10 : 12) + (hlen > NPY_MAX_HEADER ? 0 : hlen);
    head = malloc(total);
    if (!head) { npy_fail(msg, sizeof msg, "out of memory"); goto done; }
    memcpy(head, pre, got < total ? got : total);
    size_t have = got < total ? got : total;
    if (have < total) have += fread(head + have, 1, total - have, f);
    if (!parse_preamble(head, have, &h, &off, msg, sizeof msg) || !data_bytes(&h, &need, msg, sizeof msg)) goto done;
    data = malloc(need ? need : 1);
    if (!data) { npy_fail(msg, sizeof msg, "out of memory (%zu bytes)", need); goto done; }
    /* Bytes of the first fread that lie past the header belong to the data. */
    size_t early = got > off ? got - off : 0;
    if (early > need) early = need;
    memcpy(data, pre + off, early);
    size_t rd = early + fread((unsigned char *)data + early, 1, need - early, f);
    if (rd != need) {
        npy_fail(msg, sizeof msg, "truncated .npy file: the header promises %zu data bytes, the file has %zu", need, rd);
        goto done;
    }
    if ((got > off && got - off > need) || fgetc(f) != EOF) {
        npy_fail(msg, sizeof msg, "oversized .npy file: more bytes after the %zu data bytes the header promises", need);
        goto done;
    }
    fill_tensor(out, &h, data);
    data = NULL;
    ok = true;
done:
    if (!ok) npy_fail(err, errlen, "%s: %s", path, msg);
    free(head);
    free(data);
    fclose(f);
    return ok;
}

/* ---------------------------------------------------------------- writing */

static const char *descr_of(attnc_dtype t) {
    switch (t) {
    case ATTNC_F32: return "<f4";
    case ATTNC_F16: return "<f2";
    case ATTNC_BF16: return "<u2";
    case ATTNC_I32: return "<i4";
    case ATTNC_F64: return "<f8";
    }
    return "?";
}

void *npy_write_mem(const attnc_tensor *t, size_t *len, char *err, size_t errlen) {
    if (t->ndim < 0 || t->ndim > ATTNC_MAX_DIMS) {
        npy_fail(err, errlen, "cannot write a tensor of %d dimensions", t->ndim);
        return NULL;
    }
    char dict[256];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr_of(t->dtype));
    for (int i = 0; i < t->ndim; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld%s", (long long)t->shape[i], t->ndim == 1 ? "," : i + 1 < t->ndim ? ", " : "");
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    /* Version 1.0; magic + version + length + dict + padding + '\n' is a multiple of 64. */
    size_t hlen = (size_t)n + 1;
    size_t pad = (64 - (10 + hlen) % 64) % 64;
    hlen += pad;
    int64_t count = tensor_count(t);
    size_t es = (size_t)(t->dtype == ATTNC_F64 ? 8 : (t->dtype == ATTNC_F32 || t->dtype == ATTNC_I32) ? 4 : 2);
    if (count < 0 || (uint64_t)count > (SIZE_MAX - 10 - hlen) / es) {
        npy_fail(err, errlen, "tensor too large to write");
        return NULL;
    }
    size_t total = 10 + hlen + (size_t)count * es;
    unsigned char *buf = malloc(total);
    if (!buf) {
        npy_fail(err, errlen, "out of memory (%zu bytes)", total);
        return NULL;
    }
    memcpy(buf, npy_magic, 6);
    buf[6] = 1;
    buf[7] = 0;
    buf[8] = (unsigned char)(hlen & 0xff);
    buf[9] = (unsigned char)(hlen >> 8);
    memcpy(buf + 10, dict, (size_t)n);
    memset(buf + 10 + n, ' ', pad);
    buf[10 + hlen - 1] = '\n';
    /* Element by element, so any strides work; the bytes are copied as they are. */
    unsigned char *dst = buf + 10 + hlen;
    int64_t idx[ATTNC_MAX_DIMS] = { 0 };
    for (int64_t e = 0; e < count; e++) {
        memcpy(dst + (size_t)e * es, (const unsigned char *)t->data + (size_t)tensor_offset(t, idx) * es, es);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
    *len = total;
    return buf;
}

bool npy_write(const char *path, const attnc_tensor *t, char *err, size_t errlen) {
    size_t len;
    void *buf = npy_write_mem(t, &len, err, errlen);
    if (!buf) return false;
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(buf);
        return npy_fail(err, errlen, "cannot create '%s': %s", path, strerror(errno));
    }
    bool ok = fwrite(buf, 1, len, f) == len;
    ok = (fclose(f) == 0) && ok;
    free(buf);
    if (!ok) return npy_fail(err, errlen, "cannot write '%s': %s", path, strerror(errno));
    return true;
}

void npy_free(attnc_tensor *t) {
    free(t->data);
    memset(t, 0, sizeof *t);
}
