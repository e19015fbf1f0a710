/* The on-disk kernel cache. Entry layout (little-endian as written by this host):
 *   magic "ATTNCKC1" | u64 key.h[0] | u64 key.h[1] | u64 payload size | u64 payload checksum |
 *   u64 header checksum (of the 40 bytes before it) | payload */
#include "runtime/kernel_cache.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { HEADER_BYTES = 48 };
static const char MAGIC[8] = {'A', 'T', 'T', 'N', 'C', 'K', 'C', '1'};

/* Two independent 64-bit hashes (FNV-1a and a multiply-xorshift) give the 128-bit key and
 * the checksums; not cryptographic, only against accidents. */
static uint64_t fnv1a(const unsigned char *p, size_t n, uint64_t h) {
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}
static uint64_t mix64(const unsigned char *p, size_t n, uint64_t h) {
    for (size_t i = 0; i < n; i++) {
        h ^= p[i] + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
        h *= 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
    }
    return h ^ n;
}

void kernel_cache_key_bytes(const void *data, size_t len, kernel_cache_key *key) {
    key->h[0] = fnv1a(data, len, 0xcbf29ce484222325ull);
    key->h[1] = mix64(data, len, 0x94d049bb133111ebull);
    snprintf(key->hex, sizeof key->hex, "%016llx%016llx", (unsigned long long)key->h[0], (unsigned long long)key->h[1]);
}

bool kernel_cache_key_for(const ir_kernel *k, const char *target, const char *extra, kernel_cache_key *key,
                          char *err, size_t errlen) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        snprintf(err, errlen, "out of memory while hashing kernel '%s'", k->name);
        return false;
    }
    fprintf(f, "attnc %s\ntarget %s\n", ATTNC_VERSION, target ? target : "");
    ir_print_kernel(f, k);
    if (extra) fprintf(f, "\nsource\n%s", extra);
    fclose(f);
    kernel_cache_key_bytes(buf, len, key);
    free(buf);
    return true;
}

static bool mkdir_p(const char *path) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return false;
        *p = '/';
    }
    return mkdir(tmp, 0755) == 0 || errno == EEXIST;
}

bool kernel_cache_open(kernel_cache *c, const char *dir, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    const char *env = getenv("ATTNC_CACHE_DIR");
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    if (dir && *dir) snprintf(c->dir, sizeof c->dir, "%s", dir);
    else if (env && *env) snprintf(c->dir, sizeof c->dir, "%s", env);
    else if (xdg && *xdg) snprintf(c->dir, sizeof c->dir, "%s/attnc", xdg);
    else if (home && *home) snprintf(c->dir, sizeof c->dir, "%s/.cache/attnc", home);
    else {
        snprintf(err, errlen, "no kernel cache directory: set ATTNC_CACHE_DIR, XDG_CACHE_HOME or HOME");
        return false;
    }
    if (!mkdir_p(c->dir)) {
        snprintf(err, errlen, "cannot create the kernel cache directory %s: %s", c->dir, strerror(errno));
        return false;
    }
    return true;
}

void kernel_cache_entry_path(const kernel_cache *c, const kernel_cache_key *key, char *path, size_t len) {
    snprintf(path, len, "%s/%s.attnck", c->dir, key->hex);
}

static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static uint64_t get64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

bool kernel_cache_load(const kernel_cache *c, const kernel_cache_key *key, void **data, size_t *size, bool *was_corrupt) {
    char path[1100];
    kernel_cache_entry_path(c, key, path, sizeof path);
    if (was_corrupt) *was_corrupt = false;
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    unsigned char h[HEADER_BYTES];
    bool ok = fread(h, 1, HEADER_BYTES, f) == HEADER_BYTES && memcmp(h, MAGIC, 8) == 0 &&
              get64(h + 8) == key->h[0] && get64(h + 16) == key->h[1] &&
              get64(h + 40) == fnv1a(h, 40, 0xcbf29ce484222325ull);
    uint64_t n = ok ? get64(h + 24) : 0;
    unsigned char *payload = NULL;
    if (ok && n > 0 && n < ((uint64_t)1 << 32)) {
        payload = malloc((size_t)n);
        ok = payload && fread(payload, 1, (size_t)n, f) == n && fgetc(f) == EOF &&
             get64(h + 32) == mix64(payload, (size_t)n, 0x94d049bb133111ebull);
    } else {
        ok = false;
    }
    fclose(f);
    if (!ok) {
        free(payload);
        /* never trust it again: the caller rebuilds and stores a fresh entry */
        remove(path);
        if (was_corrupt) *was_corrupt = true;
        return false;
    }
    *data = payload;
    *size = (size_t)n;
    return true;
}

bool kernel_cache_store(const kernel_cache *c, const kernel_cache_key *key, const void *data, size_t size,
                        char *err, size_t errlen) {
    char path[1100], tmp[1200];
    kernel_cache_entry_path(c, key, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s/.tmp-%s-XXXXXX", c->dir, key->hex);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a file in the kernel cache %s: %s", c->dir, strerror(errno));
        return false;
    }
    unsigned char h[HEADER_BYTES];
    memcpy(h, MAGIC, 8);
    put64(h + 8, key->h[0]);
    put64(h + 16, key->h[1]);
    put64(h + 24, (uint64_t)size);
    put64(h + 32, mix64(data, size, 0x94d049bb133111ebull));
    put64(h + 40, fnv1a(h, 40, 0xcbf29ce484222325ull));
    FILE *f = fdopen(fd, "wb");
    bool ok = f && fwrite(h, 1, HEADER_BYTES, f) == HEADER_BYTES && fwrite(data, 1, size, f) == size;
    if (f) ok = (fclose(f) == 0) && ok;
    else close(fd);
    if (ok && rename(tmp, path) != 0) ok = false;
    if (!ok) {
        snprintf(err, errlen, "cannot write the kernel cache entry %s: %s", path, strerror(errno));
        remove(tmp);
        return false;
    }
    return true;
}
