/* On-disk cache of compiled kernels (CUBINs). Key: a 128-bit hash of the normalised IR text
 * (ir_print_kernel), the target, the attnc version and the generated source. Entries are
 * written to a temporary file and renamed into place (readers never see half an entry);
 * every entry carries its key and a checksum of its payload, so a truncated, altered or
 * colliding entry is detected, removed and rebuilt rather than trusted. */
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

/* Path of the entry for key (for tests and messages). */
void kernel_cache_entry_path(const kernel_cache *c, const kernel_cache_key *key, char *path, size_t len);

/* Loads an entry: true with a malloc'd payload on a hit; false on a miss. An entry that is
 * present but invalid (short, bad magic, wrong key, checksum mismatch) is deleted and
 * reported as a miss, with *was_corrupt set (may be NULL). */
bool kernel_cache_load(const kernel_cache *c, const kernel_cache_key *key, void **data, size_t *size, bool *was_corrupt);

/* Stores an entry atomically (temporary file + rename). */
bool kernel_cache_store(const kernel_cache *c, const kernel_cache_key *key, const void *data, size_t size,
                        char *err, size_t errlen);

#endif
