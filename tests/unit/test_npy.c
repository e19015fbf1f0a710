/* .npy reading and writing: round trips for every dtype (including strided views and
 * format versions 2.0/3.0 written by hand), the messages for what is not supported, and a
 * fuzz-style sweep over truncated and corrupted files that must never crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "runtime/npy.h"
#include "runtime/tensor_access.h"

static bool same_values(const attnc_tensor *a, const attnc_tensor *b) {
    if (a->dtype != b->dtype || a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    int64_t n = tensor_count(a), idx[ATTNC_MAX_DIMS] = { 0 };
    for (int64_t e = 0; e < n; e++) {
        double x = tensor_load(a, tensor_offset(a, idx)), y = tensor_load(b, tensor_offset(b, idx));
        if (!(x == y || (x != x && y != y))) return false;
        for (int d = a->ndim - 1; d >= 0; d--) {
            if (++idx[d] < a->shape[d]) break;
            idx[d] = 0;
        }
    }
    return true;
}

static void test_round_trips(void) {
    const attnc_dtype dts[] = { ATTNC_F32, ATTNC_F16, ATTNC_BF16, ATTNC_I32, ATTNC_F64 };
    const int64_t shapes[][5] = { { 0 }, { 1, 7 }, { 2, 3, 5 }, { 3, 2, 1, 4 }, { 4, 2, 3, 4, 5 }, { 2, 0, 3 } };
    char path[] = "/tmp/attnc_test_npy_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    for (size_t di = 0; di < sizeof dts / sizeof dts[0]; di++)
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            attnc_tensor t = { .name = "x", .dtype = dts[di], .ndim = (int)shapes[si][0] };
            for (int d = 0; d < t.ndim; d++) t.shape[d] = shapes[si][1 + d];
            int64_t n = tensor_count(&t);
            t.data = calloc((size_t)(n ? n : 1), 8);
            for (int64_t e = 0; e < n; e++) tensor_store(&t, e, (double)(e * 37 % 101) - 50.25 * (dts[di] != ATTNC_I32));
            char err[256];
            CHECK_MSG(npy_write(path, &t, err, sizeof err), "%s", err);
            attnc_tensor r;
            CHECK_MSG(npy_read(path, &r, err, sizeof err), "%s", err);
            CHECK(same_values(&t, &r));
            CHECK(r.name == NULL);
            /* and through memory, checking the v1.0 header layout numpy expects */
            size_t len;
            unsigned char *img = npy_write_mem(&t, &len, err, sizeof err);
            CHECK(img && img[6] == 1 && img[7] == 0);
            size_t hl = img ? (size_t)img[8] | (size_t)img[9] << 8 : 0;
            CHECK((10 + hl) % 64 == 0 && img && img[10 + hl - 1] == '\n');
            attnc_tensor m;
            CHECK_MSG(img && npy_read_mem(img, len, &m, err, sizeof err), "%s", err);
            CHECK(same_values(&t, &m));
            npy_free(&m);
            free(img);
            npy_free(&r);
            free(t.data);
        }
    /* a strided view (a transposed 3x4) is written in its logical C order */
    double base[12];
    for (int i = 0; i < 12; i++) base[i] = i;
    attnc_tensor tv = { .name = "t", .dtype = ATTNC_F64, .ndim = 2, .shape = { 4, 3 }, .strides = { 1, 4 }, .data = base };
    char err[256];
    CHECK_MSG(npy_write(path, &tv, err, sizeof err), "%s", err);
    attnc_tensor r;
    CHECK_MSG(npy_read(path, &r, err, sizeof err), "%s", err);
    CHECK(r.ndim == 2 && r.shape[0] == 4 && r.shape[1] == 3);
    if (r.data) CHECK(((double *)r.data)[1] == 4 && ((double *)r.data)[3] == 1 && ((double *)r.data)[11] == 11);
    npy_free(&r);
    CHECK(r.data == NULL && r.ndim == 0);
    unlink(path);
}

/* Builds a file image with a given version and header text (padded like numpy). */
static unsigned char *image(int major, const char *dict, const void *data, size_t data_len, size_t *len) {
    size_t pre = major == 1 ? 10 : 12, hl = strlen(dict) + 1;
    hl += (64 - (pre + hl) % 64) % 64;
    *len = pre + hl + data_len;
    unsigned char *b = malloc(*len);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    b[7] = 0;
    b[8] = (unsigned char)hl;
    b[9] = (unsigned char)(hl >> 8);
    if (major > 1) b[10] = b[11] = 0;
    memset(b + pre, ' ', hl);
    memcpy(b + pre, dict, strlen(dict));
    b[pre + hl - 1] = '\n';
    memcpy(b + pre + hl, data, data_len);
    return b;
}

static bool read_image(int major, const char *dict, const void *data, size_t n, attnc_tensor *t, char *err, size_t el) {
    size_t len;
    unsigned char *b = image(major, dict, data, n, &len);
    bool ok = npy_read_mem(b, len, t, err, el);
    free(b);
    return ok;
}

static void test_versions_and_rejections(void) {
    float v[6] = { 1, 2, 3, 4, 5, 6 };
    attnc_tensor t;
    char err[256];
    for (int major = 1; major <= 3; major++) {
        CHECK_MSG(read_image(major, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", v, 24, &t, err, sizeof err), "%s", err);
        CHECK(t.ndim == 2 && t.shape[0] == 2 && t.shape[1] == 3 && t.dtype == ATTNC_F32 && ((float *)t.data)[5] == 6);
        npy_free(&t);
    }
    /* key order and quoting are free; a 1-tuple; a scalar */
    CHECK_MSG(read_image(1, "{\"shape\": (6,), \"fortran_order\": False, \"descr\": \"<f4\"}", v, 24, &t, err, sizeof err), "%s", err);
    CHECK(t.ndim == 1 && t.shape[0] == 6);
    npy_free(&t);
    CHECK_MSG(read_image(1, "{'descr': '<f4', 'fortran_order': False, 'shape': ()}", v, 4, &t, err, sizeof err), "%s", err);
    CHECK(t.ndim == 0 && ((float *)t.data)[0] == 1);
    npy_free(&t);
    CHECK_MSG(read_image(1, "{'descr': '<u2', 'fortran_order': False, 'shape': (3,)}", v, 6, &t, err, sizeof err), "%s", err);
    CHECK(t.dtype == ATTNC_BF16);
    npy_free(&t);

    CHECK(!read_image(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", v, 24, &t, err, sizeof err));
    CHECK_MSG(strstr(err, "Fortran-order") && strstr(err, "ascontiguousarray"), "%s", err);
    CHECK(t.data == NULL);
    CHECK(!read_image(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", v, 24, &t, err, sizeof err));
    CHECK_MSG(strstr(err, "big-endian"), "%s", err);
    CHECK(!read_image(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", v, 24, &t, err, sizeof err));
    CHECK_MSG(strstr(err, "unsupported dtype '<i8'") && strstr(err, "'<f4'"), "%s", err);
    CHECK(!read_image(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }", v, 12, &t, err, sizeof err));
    CHECK_MSG(strstr(err, "structured"), "%s", err);
    CHECK(!read_image(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 6), }", v, 24, &t, err, sizeof err));
    CHECK_MSG(strstr(err, "more than 4 dimensions"), "%s", err);
    CHECK(!read_image(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", v, 20, &t, err, sizeof err));
    CHECK_MSG(strstr(err, "truncated") && strstr(err, "24"), "%s", err);
    CHECK(!read_image(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", v, 24, &t, err, sizeof err));
    CHECK_MSG(strstr(err, "oversized"), "%s", err);
    CHECK(!read_image(1, "{'descr': '<f4', 'shape': (2, 3), }", v, 24, &t, err, sizeof err));
    CHECK_MSG(strstr(err, "missing 'fortran_order'"), "%s", err);
    CHECK(!read_image(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999, 99999999999), }", v, 24, &t, err, sizeof err));
    CHECK_MSG(strstr(err, "too large"), "%s", err);
    CHECK(!read_image(4, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", v, 24, &t, err, sizeof err));
    CHECK_MSG(strstr(err, "version 4"), "%s", err);
    CHECK(!npy_read_mem("PK\x03\x04zipfile", 11, &t, err, sizeof err));
    CHECK_MSG(strstr(err, "not a .npy file"), "%s", err);
    CHECK(!npy_read("/nonexistent/dir/x.npy", &t, err, sizeof err));
    CHECK_MSG(strstr(err, "cannot open '/nonexistent/dir/x.npy'"), "%s", err);
    CHECK(!npy_write("/nonexistent/dir/x.npy", &(attnc_tensor){ .dtype = ATTNC_F32, .ndim = 1, .shape = { 1 }, .data = v }, err, sizeof err));
    CHECK_MSG(strstr(err, "cannot create"), "%s", err);
}

/* Every prefix of a valid file, and every single-byte corruption of its header, either
 * reads (and then matches the original's byte count) or fails with a message; through
 * both the memory and the file reader. Under ASan this is the "never crash" test. */
static void test_malformed(void) {
    int32_t data[6] = { 1, 2, 3, 4, 5, 6 };
    size_t len;
    unsigned char *good = image(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }", data, 24, &len);
    char path[] = "/tmp/attnc_test_npy_bad_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    int accepted = 0, rejected = 0, mismatched = 0, unexplained = 0;
    for (size_t cut = 0; cut < len; cut++) {
        attnc_tensor t;
        char err[256] = "";
        if (npy_read_mem(good, cut, &t, err, sizeof err)) { accepted++; npy_free(&t); }
        else { rejected++; unexplained += err[0] == '\0'; }
        FILE *f = fopen(path, "wb");
        fwrite(good, 1, cut, f);
        fclose(f);
        err[0] = '\0';
        if (npy_read(path, &t, err, sizeof err)) { accepted++; npy_free(&t); }
        else { rejected++; unexplained += err[0] == '\0'; }
    }
    CHECK_MSG(accepted == 0, "%d truncated files accepted", accepted);
    static const unsigned char bytes[] = { 0, 0xff, '\'', '"', '(', ')', ',', ':', '{', '}', '9', '-', ' ', 'L', '>', 0x80 };
    unsigned char *bad = malloc(len);
    for (size_t pos = 0; pos < 128 && pos < len; pos++)
        for (size_t bi = 0; bi < sizeof bytes; bi++) {
            memcpy(bad, good, len);
            bad[pos] = bytes[bi];
            attnc_tensor t;
            char err[256] = "";
            if (npy_read_mem(bad, len, &t, err, sizeof err)) {
                accepted++;
                mismatched += (size_t)tensor_count(&t) * 4 != 24 || t.dtype != ATTNC_I32;
                npy_free(&t);
            } else {
                rejected++;
                unexplained += err[0] == '\0';
            }
        }
    /* a random-bytes sweep through the file reader too */
    uint64_t s = 99;
    for (int trial = 0; trial < 200; trial++) {
        memcpy(bad, good, len);
        for (int k = 0; k < 4; k++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            bad[(s >> 33) % 80] = (unsigned char)(s >> 20);
        }
        FILE *f = fopen(path, "wb");
        fwrite(bad, 1, len, f);
        fclose(f);
        attnc_tensor t;
        char err[256] = "";
        if (npy_read(path, &t, err, sizeof err)) { accepted++; npy_free(&t); }
        else { rejected++; unexplained += err[0] == '\0'; }
    }
    CHECK(rejected > 0);
    CHECK_MSG(mismatched == 0, "%d corrupt files read with a different size", mismatched);
    CHECK_MSG(unexplained == 0, "%d rejections without a message", unexplained);
    free(bad);
    free(good);
    unlink(path);
}

int main(void) {
    test_round_trips();
    test_versions_and_rejections();
    test_malformed();
    return check_status("test_npy");
}
