/* A compiled, loaded CUDA kernel: compile once (through the on-disk cache), launch many
 * times on device pointers and a stream, from any thread. What the C API's cuda engine
 * holds per kernel; cuda_launch_host (host tensors in and out) is built on it. */
#ifndef ATTNC_CUDA_KERNEL_H
#define ATTNC_CUDA_KERNEL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "attnc/tensor.h"
#include "ir/ir.h"
#include "codegen/cuda/cuda_plan.h"
#include "runtime/cuda_driver.h"

typedef struct cuda_kernel {
    const ir_kernel *k;            /* outlives the handle */
    cuda_driver drv;               /* device opened, primary context retained (not left current) */
    char arch[16];
    cuda_plan plan;
    void *modules[CUDA_MAX_PARTS];  /* one per program the entry points were compiled as */
    int n_modules;
    void *fwd, *step, *merge;      /* step: recurrences' seq <= 1 entry (may be fwd) */
    int regs;
    bool from_cache;
    double compile_ms;             /* plan + emit + NVRTC (or cache load) + module load */
} cuda_kernel;

/* device < 0: $ATTNC_CUDA_DEVICE or 0. arch NULL/"native": the device's own.
 * cache_dir NULL: the default cache; "": no cache. */
bool cuda_kernel_load(cuda_kernel *h, const ir_kernel *k, const char *arch, int device, const char *cache_dir,
                      char *err, size_t errlen);
void cuda_kernel_unload(cuda_kernel *h);

/* Launches on device views (data = device addresses, strides in elements, dtypes the
 * kernel's own) in stream order; nothing waits for the kernel. Split-KV workspace comes
 * from the stream-ordered allocator (or a synchronous allocation where the driver has
 * none). n_splits_out may be NULL. Safe to call concurrently on one handle. */
bool cuda_kernel_launch(const cuda_kernel *h, int64_t batch, int64_t seq_q, int64_t seq_k, const attnc_tensor *views,
                        int n_views, void *stream, int *n_splits_out, char *err, size_t errlen);

#endif
