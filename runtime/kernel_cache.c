/* The on-disk kernel cache. Entry layout (little-endian as written by this host):
 *   magic "ATTNCKC2" | u64 key.h[0] | u64 key.h[1] | u64 payload size | u64 payload checksum |
 *   u32 name length | u32 target length | u64 header checksum (of the 48 bytes before it and
 *   the two labels) | name | target | payload
 * Entries of the first format ("ATTNCKC1", no labels) read as invalid: removed and rebuilt. */
#include "runtime/kernel_cache.h"
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { HEADER_BYTES = 56, CHECKED_BYTES = 48 };
static const char MAGIC[8] = {'A', 'T', 'T', 'N', 'C', 'K', 'C', '2'};
static const char SUFFIX[] = ".attnck";
static const char TMP_PREFIX[] = ".tmp-";

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

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

bool kernel_cache_key_from_hex(const char *hex, kernel_cache_key *key) {
    if (!hex || strlen(hex) != 32) return false;
    memset(key, 0, sizeof *key);
    for (int i = 0; i < 32; i++) {
        int d = hex_digit(hex[i]);
        if (d < 0) return false;
        key->h[i / 16] = key->h[i / 16] << 4 | (uint64_t)d;
    }
    memcpy(key->hex, hex, 33);
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
    snprintf(path, len, "%s/%s%s", c->dir, key->hex, SUFFIX);
}

static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static uint32_t get32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static uint64_t get64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static uint64_t header_checksum(const unsigned char *h, const char *labels, size_t labels_len) {
    return fnv1a((const unsigned char *)labels, labels_len, fnv1a(h, CHECKED_BYTES, 0xcbf29ce484222325ull));
}

/* Reads and checks the header and labels of an open entry. On success labels (malloc'd,
 * name then target, NUL-terminated each) and the payload size are returned. */
static bool read_header(FILE *f, const kernel_cache_key *key, unsigned char h[HEADER_BYTES], char **labels,
                        uint32_t *name_len, uint32_t *target_len) {
    *labels = NULL;
    if (fread(h, 1, HEADER_BYTES, f) != HEADER_BYTES || memcmp(h, MAGIC, 8) != 0) return false;
    if (get64(h + 8) != key->h[0] || get64(h + 16) != key->h[1]) return false;
    *name_len = get32(h + 40);
    *target_len = get32(h + 44);
    if (*name_len >= KERNEL_CACHE_LABEL_MAX || *target_len >= KERNEL_CACHE_LABEL_MAX) return false;
    size_t n = (size_t)*name_len + *target_len;
    char *l = malloc(n + 2);
    if (!l || fread(l, 1, n, f) != n || get64(h + 48) != header_checksum(h, l, n)) {
        free(l);
        return false;
    }
    memmove(l + *name_len + 1, l + *name_len, *target_len);
    l[*name_len] = 0;
    l[*name_len + 1 + *target_len] = 0;
    *labels = l;
    return true;
}

bool kernel_cache_load(const kernel_cache *c, const kernel_cache_key *key, void **data, size_t *size, bool *was_corrupt) {
    char path[1100];
    kernel_cache_entry_path(c, key, path, sizeof path);
    if (was_corrupt) *was_corrupt = false;
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    unsigned char h[HEADER_BYTES];
    char *labels = NULL;
    uint32_t name_len = 0, target_len = 0;
    bool ok = read_header(f, key, h, &labels, &name_len, &target_len);
    free(labels);
    uint64_t n = ok ? get64(h + 24) : 0;
    unsigned char *payload = NULL;
    if (ok && n > 0 && n < ((uint64_t)1 << 32)) {
        payload = malloc((size_t)n);
        ok = payload && fread(payload, 1, (size_t)n, f) == n && fgetc(f) == EOF &&
             get64(h + 32) == mix64(payload, (size_t)n, 0x94d049bb133111ebull);
    } else {
        ok = false;
    }
    struct stat read_st, now_st;
    bool have_st = fstat(fileno(f), &read_st) == 0;
    fclose(f);
    if (!ok) {
        free(payload);
        /* never trust it again: the caller rebuilds and stores a fresh entry (unless another
         * process has meanwhile renamed a fresh entry into place: that one stays) */
        if (!have_st || (stat(path, &now_st) == 0 && now_st.st_ino == read_st.st_ino && now_st.st_dev == read_st.st_dev))
            remove(path);
        if (was_corrupt) *was_corrupt = true;
        return false;
    }
    *data = payload;
    *size = (size_t)n;
    return true;
}

bool kernel_cache_store_named(const kernel_cache *c, const kernel_cache_key *key, const char *name,
                              const char *target, const void *data, size_t size, char *err, size_t errlen) {
    char path[1100], tmp[1200];
    kernel_cache_entry_path(c, key, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s/%s%s-XXXXXX", c->dir, TMP_PREFIX, key->hex);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a file in the kernel cache %s: %s", c->dir, strerror(errno));
        return false;
    }
    size_t name_len = name ? strlen(name) : 0, target_len = target ? strlen(target) : 0;
    if (name_len >= KERNEL_CACHE_LABEL_MAX) name_len = KERNEL_CACHE_LABEL_MAX - 1;
    if (target_len >= KERNEL_CACHE_LABEL_MAX) target_len = KERNEL_CACHE_LABEL_MAX - 1;
    char labels[2 * KERNEL_CACHE_LABEL_MAX];
    if (name_len) memcpy(labels, name, name_len);
    if (target_len) memcpy(labels + name_len, target, target_len);
    unsigned char h[HEADER_BYTES];
    memcpy(h, MAGIC, 8);
    put64(h + 8, key->h[0]);
    put64(h + 16, key->h[1]);
    put64(h + 24, (uint64_t)size);
    put64(h + 32, mix64(data, size, 0x94d049bb133111ebull));
    put32(h + 40, (uint32_t)name_len);
    put32(h + 44, (uint32_t)target_len);
    put64(h + 48, header_checksum(h, labels, name_len + target_len));
    FILE *f = fdopen(fd, "wb");
    bool ok = f && fwrite(h, 1, HEADER_BYTES, f) == HEADER_BYTES &&
              fwrite(labels, 1, name_len + target_len, f) == name_len + target_len && fwrite(data, 1, size, f) == size;
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

bool kernel_cache_store(const kernel_cache *c, const kernel_cache_key *key, const void *data, size_t size,
                        char *err, size_t errlen) {
    return kernel_cache_store_named(c, key, NULL, NULL, data, size, err, errlen);
}

/* ---------------------------------------------------------------- listing */

/* An entry's file name: the key's 32 hex digits and the suffix. */
static bool entry_name(const char *name, kernel_cache_key *key) {
    size_t n = strlen(name);
    if (n != 32 + strlen(SUFFIX) || strcmp(name + 32, SUFFIX) != 0) return false;
    char hex[33];
    memcpy(hex, name, 32);
    hex[32] = 0;
    return kernel_cache_key_from_hex(hex, key);
}

static int cmp_info(const void *a, const void *b) {
    const kernel_cache_entry_info *x = a, *y = b;
    int r = strcmp(x->name, y->name);
    if (!r) r = strcmp(x->target, y->target);
    return r ? r : strcmp(x->key.hex, y->key.hex);
}

bool kernel_cache_list(const kernel_cache *c, kernel_cache_entry_info **out, int *n, char *err, size_t errlen) {
    *out = NULL;
    *n = 0;
    DIR *d = opendir(c->dir);
    if (!d) {
        snprintf(err, errlen, "cannot read the kernel cache directory %s: %s", c->dir, strerror(errno));
        return false;
    }
    kernel_cache_entry_info *v = NULL;
    int count = 0, cap = 0;
    bool ok = true;
    for (struct dirent *e; (e = readdir(d));) {
        kernel_cache_key key;
        if (!entry_name(e->d_name, &key)) continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", c->dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;   /* removed meanwhile, or not a file */
        if (count == cap) {
            cap = cap ? 2 * cap : 16;
            kernel_cache_entry_info *nv = realloc(v, (size_t)cap * sizeof *v);
            if (!nv) {
                snprintf(err, errlen, "out of memory listing the kernel cache");
                ok = false;
                break;
            }
            v = nv;
        }
        kernel_cache_entry_info *info = &v[count++];
        memset(info, 0, sizeof *info);
        info->key = key;
        info->bytes = (int64_t)st.st_size;
        info->mtime = (int64_t)st.st_mtime;
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        unsigned char h[HEADER_BYTES];
        char *labels = NULL;
        uint32_t name_len = 0, target_len = 0;
        if (read_header(f, &key, h, &labels, &name_len, &target_len)) {
            snprintf(info->name, sizeof info->name, "%s", labels);
            snprintf(info->target, sizeof info->target, "%s", labels + name_len + 1);
            info->header_ok = (uint64_t)st.st_size == HEADER_BYTES + (uint64_t)name_len + target_len + get64(h + 24);
        }
        free(labels);
        fclose(f);
    }
    closedir(d);
    if (!ok) {
        free(v);
        return false;
    }
    if (count > 1) qsort(v, (size_t)count, sizeof *v, cmp_info);
    *out = v;
    *n = count;
    return true;
}

bool kernel_cache_remove(const kernel_cache *c, const kernel_cache_key *key) {
    char path[1100];
    kernel_cache_entry_path(c, key, path, sizeof path);
    return remove(path) == 0;
}

int kernel_cache_remove_stale(const kernel_cache *c, int max_age_s, int *failed) {
    DIR *d = opendir(c->dir);
    if (!d) {
        if (failed) (*failed)++;
        return 0;
    }
    int removed = 0;
    time_t now = time(NULL);
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) != 0) continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", c->dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || now - st.st_mtime <= max_age_s) continue;
        if (remove(path) == 0) removed++;
        else if (failed) (*failed)++;
    }
    closedir(d);
    return removed;
}
