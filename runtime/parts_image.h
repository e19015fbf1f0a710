/* A compiled kernel kept as one blob made of several independently compiled parts (CUBINs
 * of concurrent NVRTC programs, objects of concurrent LLVM code generation), so the
 * kernel cache stores and checks one entry per kernel. A blob without the magic is a
 * single part, so plain CUBINs and objects read back unchanged. */
#ifndef ATTNC_PARTS_IMAGE_H
#define ATTNC_PARTS_IMAGE_H
#include <stddef.h>

enum { PARTS_IMAGE_MAX = 8 };

/* The image of n (1..PARTS_IMAGE_MAX) non-empty parts, malloc'd; NULL when out of memory
 * or n is out of range. */
void *parts_image_pack(const void *const part[], const size_t part_size[], int n, size_t *image_size);
/* Points part[i] into image. Returns the part count: 1 for a plain blob, 0 for an empty
 * blob or a malformed parts image (truncated, no parts, too many, a size past the end). */
int parts_image_read(const void *image, size_t size, const void *part[PARTS_IMAGE_MAX],
                     size_t part_size[PARTS_IMAGE_MAX]);

#endif
