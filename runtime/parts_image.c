/* Parts image layout: the magic "ATTNCPRT", the part count (u32, then 4 zero bytes), the
 * sizes (u64 each, PARTS_IMAGE_MAX slots, host byte order: images are cached per machine),
 * then the parts, each at an offset rounded up to 8 bytes. */
#include "runtime/parts_image.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char MAGIC[8] = {'A', 'T', 'T', 'N', 'C', 'P', 'R', 'T'};
enum { HEADER = 8 + 8 + 8 * PARTS_IMAGE_MAX };

static size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

void *parts_image_pack(const void *const part[], const size_t part_size[], int n, size_t *image_size) {
    *image_size = 0;
    if (n < 1 || n > PARTS_IMAGE_MAX) return NULL;
    size_t total = HEADER;
    for (int i = 0; i < n; i++) total = align8(total) + part_size[i];
    unsigned char *img = calloc(1, total);
    if (!img) return NULL;
    memcpy(img, MAGIC, sizeof MAGIC);
    uint32_t n32 = (uint32_t)n;
    memcpy(img + 8, &n32, 4);
    size_t off = HEADER;
    for (int i = 0; i < n; i++) {
        uint64_t sz = part_size[i];
        memcpy(img + 16 + 8 * i, &sz, 8);
        off = align8(off);
        memcpy(img + off, part[i], part_size[i]);
        off += part_size[i];
    }
    *image_size = total;
    return img;
}

int parts_image_read(const void *image, size_t size, const void *part[PARTS_IMAGE_MAX],
                     size_t part_size[PARTS_IMAGE_MAX]) {
    const unsigned char *b = image;
    if (!image || size < sizeof MAGIC || memcmp(b, MAGIC, sizeof MAGIC) != 0) {
        part[0] = image, part_size[0] = size;
        return image && size ? 1 : 0;
    }
    if (size < HEADER) return 0;
    uint32_t n;
    memcpy(&n, b + 8, 4);
    if (n < 1 || n > PARTS_IMAGE_MAX) return 0;
    size_t off = HEADER;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t sz;
        memcpy(&sz, b + 16 + 8 * i, 8);
        off = align8(off);
        if (sz == 0 || off > size || sz > size - off) return 0;
        part[i] = b + off, part_size[i] = (size_t)sz;
        off += (size_t)sz;
    }
    return (int)n;
}
