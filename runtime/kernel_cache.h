/* On-disk cache of compiled kernels (CUBINs, CPU object files). Key: a 128-bit hash of the
 * normalised IR text (ir_print_kernel), the target, the attnc version and extra material
 * (the generated source, the code generator's revision). Entries are written to a
 * temporary file and renamed into place (readers never see half an entry, and processes
 * storing the same key at once leave one whole entry); every entry carries its key and
 * checksums of its header and payload, so a truncated, altered or colliding entry is
 * detected, removed and rebuilt rather than trusted. An entry may also record the
 * kernel's name and a target label, for `attnc cache ls`. */
#ifndef ATTNC_KERNEL_CACHE_H
#define ATTNC_KERNEL_CACHE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "ir/ir.h"

typedef struct kernel_cache {
    char dir[1024];
} kernel_cache;

typedef struct kernel_cache_key {
    uint64_t h[2];
    char hex[33];
} kernel_cache_key;

/* Directory: dir if non-NULL, else $ATTNC_CACHE_DIR, else $XDG_CACHE_HOME/attnc, else
 * $HOME/.cache/attnc; created if missing. */
bool kernel_cache_open(kernel_cache *c, const char *dir, char *err, size_t errlen);

/* Hash of arbitrary key material (what kernel_cache_key_for feeds it). */
void kernel_cache_key_bytes(const void *data, size_t len, kernel_cache_key *key);
/* Key of a kernel: ir_print_kernel text + target + ATTNC_VERSION + extra (e.g. the emitted
 * source; may be NULL). */
bool kernel_cache_key_for(const ir_kernel *k, const char *target, const char *extra, kernel_cache_key *key,
                          char *err, size_t errlen);
/* The key whose hex form is these 32 lower-case hex digits (false for anything else). */
bool kernel_cache_key_from_hex(const char *hex, kernel_cache_key *key);

/* Path of the entry for key (for tests and messages). */
void kernel_cache_entry_path(const kernel_cache *c, const kernel_cache_key *key, char *path, size_t len);

/* Loads an entry: true with a malloc'd payload on a hit; false on a miss. An entry that is
 * present but invalid (short, bad magic, wrong key, checksum mismatch) is deleted and
 * reported as a miss, with *was_corrupt set (may be NULL). */
bool kernel_cache_load(const kernel_cache *c, const kernel_cache_key *key, void **data, size_t *size, bool *was_corrupt);

/* Stores an entry atomically (temporary file + rename), without a name or target. */
bool kernel_cache_store(const kernel_cache *c, const kernel_cache_key *key, const void *data, size_t size,
                        char *err, size_t errlen);
/* The same, recording the kernel's name and a target label (either may be NULL; each is
 * cut to KERNEL_CACHE_LABEL_MAX - 1 bytes). */
bool kernel_cache_store_named(const kernel_cache *c, const kernel_cache_key *key, const char *name,
                              const char *target, const void *data, size_t size, char *err, size_t errlen);

enum { KERNEL_CACHE_LABEL_MAX = 256 };

/* One entry as listed: what its file name and header say (the payload is not read, so
 * `header_ok` does not promise a load will succeed; kernel_cache_load checks the rest). */
typedef struct kernel_cache_entry_info {
    kernel_cache_key key;
    char name[KERNEL_CACHE_LABEL_MAX];     /* "" when not recorded or unreadable */
    char target[KERNEL_CACHE_LABEL_MAX];
    int64_t bytes;                         /* size of the file */
    int64_t mtime;                         /* seconds since the epoch */
    bool header_ok;                        /* magic, key, header checksum and file size agree */
} kernel_cache_entry_info;

/* Every entry file in the cache directory (temporary files and foreign files are left
 * out), sorted by name, then target, then key. *out is malloc'd (NULL when *n is 0). */
bool kernel_cache_list(const kernel_cache *c, kernel_cache_entry_info **out, int *n, char *err, size_t errlen);
/* Removes the entry for key; true when there was one and it is gone. */
bool kernel_cache_remove(const kernel_cache *c, const kernel_cache_key *key);
/* Removes temporary files left by writers that died (older than max_age_s seconds); returns
 * how many were removed and adds the ones that could not be to *failed (may be NULL). */
int kernel_cache_remove_stale(const kernel_cache *c, int max_age_s, int *failed);

#endif
