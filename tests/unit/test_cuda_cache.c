/* The on-disk kernel cache: keys, round trip, atomic replacement, and that a truncated,
 * altered or foreign entry is detected, removed and reported as a miss (never trusted). */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"
#include "runtime/kernel_cache.h"
#include "frontend/frontend.h"

static ir_kernel *compile_one(const char *src, arena *a) {
    diag_sink d;
    diag_init(&d, "<test>", src, strlen(src));
    ir_module *m = frontend_compile(src, strlen(src), a, &d);
    if (d.n_errors == 0) ir_run_pipeline(m, &d, NULL, NULL);
    bool ok = d.n_errors == 0 && m->n_kernels > 0;
    diag_free(&d);
    return ok ? m->kernels[0] : NULL;
}

static int count_files(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) n++;
    closedir(d);
    return n;
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

int main(void) {
    char dir[] = "/tmp/attnc-cache-test-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char sub[256];
    snprintf(sub, sizeof sub, "%s/nested/cache", dir);
    char err[1024];
    kernel_cache c;
    CHECK_MSG(kernel_cache_open(&c, sub, err, sizeof err), "%s", err);   /* creates the nested directory */
    struct stat st;
    CHECK(stat(sub, &st) == 0 && S_ISDIR(st.st_mode));

    /* keys: IR text, target and extra material all matter; equal inputs give equal keys */
    arena a;
    arena_init(&a);
    ir_kernel *k1 = compile_one("kernel a {\n heads q = 4, kv = 2\n dims 64\n dtype bf16\n mask causal\n}", &a);
    ir_kernel *k2 = compile_one("kernel a {\n heads q = 4, kv = 2\n dims 64\n dtype bf16\n}", &a);
    ir_kernel *k1b = compile_one("kernel a {\n heads q = 4, kv = 2\n dims 64\n dtype bf16\n mask causal\n}", &a);
    CHECK(k1 && k2 && k1b);
    kernel_cache_key key1, key2, key3, key4, key1b;
    if (k1 && k2 && k1b) {
        CHECK(kernel_cache_key_for(k1, "cuda:sm_80", "src", &key1, err, sizeof err));
        CHECK(kernel_cache_key_for(k2, "cuda:sm_80", "src", &key2, err, sizeof err));
        CHECK(kernel_cache_key_for(k1, "cuda:sm_90a", "src", &key3, err, sizeof err));
        CHECK(kernel_cache_key_for(k1, "cuda:sm_80", "src2", &key4, err, sizeof err));
        CHECK(kernel_cache_key_for(k1b, "cuda:sm_80", "src", &key1b, err, sizeof err));
        CHECK(strcmp(key1.hex, key2.hex) != 0);
        CHECK(strcmp(key1.hex, key3.hex) != 0);
        CHECK(strcmp(key1.hex, key4.hex) != 0);
        CHECK(strcmp(key1.hex, key1b.hex) == 0);
        CHECK(strlen(key1.hex) == 32);
    } else {
        kernel_cache_key_bytes("x", 1, &key1);
        kernel_cache_key_bytes("y", 1, &key2);
    }

    /* miss, store, hit with identical bytes */
    void *data = NULL;
    size_t size = 0;
    bool corrupt = true;
    CHECK(!kernel_cache_load(&c, &key1, &data, &size, &corrupt));
    CHECK(!corrupt);
    unsigned char payload[3000];
    for (size_t i = 0; i < sizeof payload; i++) payload[i] = (unsigned char)(i * 37 + 11);
    CHECK_MSG(kernel_cache_store(&c, &key1, payload, sizeof payload, err, sizeof err), "%s", err);
    CHECK(count_files(sub, ".tmp-") == 0);    /* the temporary file was renamed away */
    CHECK(kernel_cache_load(&c, &key1, &data, &size, &corrupt));
    CHECK(size == sizeof payload && data && memcmp(data, payload, size) == 0);
    free(data);
    /* another key is still a miss */
    CHECK(!kernel_cache_load(&c, &key2, &data, &size, &corrupt) && !corrupt);

    char path[1200];
    kernel_cache_entry_path(&c, &key1, path, sizeof path);
    long full = file_size(path);
    CHECK(full > (long)sizeof payload);

    /* a truncated entry: detected, removed, reported as a miss; a store repairs it */
    CHECK(truncate(path, full - 100) == 0);
    CHECK(!kernel_cache_load(&c, &key1, &data, &size, &corrupt));
    CHECK(corrupt);
    CHECK(file_size(path) < 0);
    CHECK(kernel_cache_store(&c, &key1, payload, sizeof payload, err, sizeof err));
    CHECK(kernel_cache_load(&c, &key1, &data, &size, &corrupt) && size == sizeof payload);
    free(data);

    /* truncated to less than a header */
    CHECK(truncate(path, 10) == 0);
    CHECK(!kernel_cache_load(&c, &key1, &data, &size, &corrupt) && corrupt);
    CHECK(kernel_cache_store(&c, &key1, payload, sizeof payload, err, sizeof err));

    /* one altered payload byte, then one altered header byte */
    for (int where = 0; where < 2; where++) {
        FILE *f = fopen(path, "r+b");
        CHECK(f != NULL);
        if (f) {
            long off = where == 0 ? full - 7 : 20;
            fseek(f, off, SEEK_SET);
            int ch = fgetc(f);
            fseek(f, off, SEEK_SET);
            fputc(ch ^ 0x5A, f);
            fclose(f);
        }
        CHECK_MSG(!kernel_cache_load(&c, &key1, &data, &size, &corrupt) && corrupt,
                  "an entry with an altered %s byte was trusted", where == 0 ? "payload" : "header");
        CHECK(file_size(path) < 0);
        CHECK(kernel_cache_store(&c, &key1, payload, sizeof payload, err, sizeof err));
    }

    /* trailing garbage after a valid entry */
    FILE *f = fopen(path, "ab");
    if (f) {
        fputs("junk", f);
        fclose(f);
    }
    CHECK(!kernel_cache_load(&c, &key1, &data, &size, &corrupt) && corrupt);

    /* an entry stored under another key, renamed to this key's file name, is not this key's */
    CHECK(kernel_cache_store(&c, &key2, payload, sizeof payload, err, sizeof err));
    char path2[1200];
    kernel_cache_entry_path(&c, &key2, path2, sizeof path2);
    CHECK(rename(path2, path) == 0);
    CHECK(!kernel_cache_load(&c, &key1, &data, &size, &corrupt) && corrupt);

    /* replacing an existing entry is atomic (rename over it) and yields the new bytes */
    CHECK(kernel_cache_store(&c, &key1, payload, sizeof payload, err, sizeof err));
    payload[5] ^= 1;
    CHECK(kernel_cache_store(&c, &key1, payload, sizeof payload, err, sizeof err));
    CHECK(kernel_cache_load(&c, &key1, &data, &size, &corrupt) && memcmp(data, payload, size) == 0);
    free(data);

    /* directory from the environment */
    setenv("ATTNC_CACHE_DIR", dir, 1);
    kernel_cache c2;
    CHECK(kernel_cache_open(&c2, NULL, err, sizeof err) && strcmp(c2.dir, dir) == 0);
    unsetenv("ATTNC_CACHE_DIR");
    setenv("XDG_CACHE_HOME", dir, 1);
    CHECK(kernel_cache_open(&c2, NULL, err, sizeof err));
    char want[600];
    snprintf(want, sizeof want, "%s/attnc", dir);
    CHECK(strcmp(c2.dir, want) == 0);
    /* an unusable directory is an error with a message */
    CHECK(!kernel_cache_open(&c2, "/proc/attnc-cannot-exist/x", err, sizeof err) && strstr(err, "cache"));

    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    arena_free(&a);
    return check_status("test_cuda_cache");
}
