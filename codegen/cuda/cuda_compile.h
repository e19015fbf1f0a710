/* Emit + NVRTC compile of one kernel, through the on-disk cache; and the reading of ptxas
 * reports. Shared by cuda_build, cuda_run, the tests and the compile benchmark. */
#ifndef ATTNC_CUDA_COMPILE_H
#define ATTNC_CUDA_COMPILE_H
#include <stdbool.h>
#include <stddef.h>
#include "ir/ir.h"
#include "codegen/cuda/cuda_plan.h"
#include "runtime/kernel_cache.h"
#include "runtime/nvrtc.h"

typedef struct cuda_compiled {
    cuda_plan plan;
    char *source;            /* the emitted CUDA C */
    void *image;             /* CUBIN, or a parts image (see cuda_image_parts) */
    size_t image_size;
    char *log;               /* NVRTC/ptxas log; NULL when the CUBIN came from the cache */
    bool from_cache;
    kernel_cache_key key;
} cuda_compiled;

/* Plans, emits and compiles k for arch. cache may be NULL (no caching); lib may be NULL
 * when only a cache hit is acceptable (then a miss is an error). split_entries compiles
 * each entry point (cuda_plan_parts) as its own NVRTC program, concurrently, and yields a
 * parts image (cuda_image_parts); otherwise the image is one CUBIN holding every entry. */
bool cuda_compile_kernel(const ir_kernel *k, const char *arch, const kernel_cache *cache, const nvrtc_lib *lib,
                         bool split_entries, cuda_compiled *out, char *err, size_t errlen);

/* The CUBINs of an image from cuda_compile_kernel: a plain CUBIN is one part. Returns the
 * part count, 0 for a malformed parts image. */
int cuda_image_parts(const void *image, size_t size, const void *part[CUDA_MAX_PARTS], size_t part_size[CUDA_MAX_PARTS]);
void cuda_compiled_free(cuda_compiled *c);

typedef struct cuda_ptxas_info {
    char function[128];
    int registers, spill_stores, spill_loads, stack_frame;
} cuda_ptxas_info;

/* Reads the "--ptxas-options=-v" lines of a log: one record per compiled entry function.
 * Returns the number found (at most max). */
int cuda_parse_ptxas_log(const char *log, cuda_ptxas_info *out, int max);

#endif
