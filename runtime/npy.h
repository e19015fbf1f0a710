/* Reading and writing numpy .npy files (format versions 1.0, 2.0 and 3.0), so tensors
 * cross between attnc and Python without glue. Supported: little-endian, C-order arrays
 * of at most ATTNC_MAX_DIMS dimensions with descr '<f4' (f32), '<f2' (f16), '<u2' (bf16
 * stored as uint16 bit patterns), '<i4' (i32) and '<f8' (f64). Anything else is rejected
 * with a message that says what to save instead; a malformed file never crashes. */
#ifndef ATTNC_NPY_H
#define ATTNC_NPY_H
#include <stdbool.h>
#include <stddef.h>
#include "attnc/tensor.h"

/* Reads a file into a contiguous tensor whose data is malloc'd (release with npy_free);
 * out->name is NULL (the caller names it). On failure returns false, writes a message
 * to err, and leaves out empty. */
bool npy_read(const char *path, attnc_tensor *out, char *err, size_t errlen);
/* The same from a buffer holding a whole file's bytes (tests, fuzzing). */
bool npy_read_mem(const void *buf, size_t len, attnc_tensor *out, char *err, size_t errlen);
/* Writes a view (any strides) in its own dtype; bf16 is written as '<u2'. */
bool npy_write(const char *path, const attnc_tensor *t, char *err, size_t errlen);
/* The whole file image in a malloc'd buffer (*len bytes); NULL with err on failure. */
void *npy_write_mem(const attnc_tensor *t, size_t *len, char *err, size_t errlen);
/* Frees what npy_read allocated and empties the view. */
void npy_free(attnc_tensor *t);

#endif
