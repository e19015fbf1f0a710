/* Launching emitted kernels through the driver API: architecture choice, argument
 * validation (every rule the kernels rely on, checked before a launch so a bad view is an
 * error message, not a fault), uploads, split-KV workspaces, launch, download. */
#ifndef ATTNC_CUDA_LAUNCH_H
#define ATTNC_CUDA_LAUNCH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "attnc/tensor.h"
#include "ir/ir.h"
#include "codegen/cuda/cuda_args.h"
#include "codegen/cuda/cuda_plan.h"

/* Formats a message into err and returns false: the CUDA host code's one error path. */
bool cuda_errorf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

typedef struct cuda_launch_info {
    char arch[16];          /* the arch compiled for */
    int n_splits;
    bool from_cache;
    double compile_ms;      /* emit + compile or cache load */
    double kernel_ms;       /* launch to synchronize */
} cuda_launch_info;

/* Arch for a device: requested ("sm_80", "sm_90a") when the device can run it, or the
 * device's own (sm_XY, sm_90a on CC 9.0) when requested is NULL, "", "native" or "auto". */
bool cuda_pick_arch(const char *requested, int cc_major, int cc_minor, char *out, size_t outlen, char *err, size_t errlen);

/* Checks device-side views against what the plan's kernels assume: pointers present and
 * aligned (16 B with unit last stride and 8-element row strides for the cp.async tensors),
 * 32-bit index ranges, grid limits. */
bool cuda_validate_args(const ir_kernel *k, const cuda_plan *p, const cuda_args_fixed *a, char *err, size_t errlen);

/* Device memory a launch needs beyond its tensors: 0 for prefill; for split-KV decode with
 * n_splits > 1 the f32 partials, n_splits * batch * heads_q * seq_q * (d_v + 1) * 4 bytes. */
size_t cuda_workspace_bytes(const ir_kernel *k, const cuda_plan *p, int64_t batch, int64_t seq_q, int n_splits);

typedef struct cuda_kernel cuda_kernel;
/* Host tensors in, host tensors out, through a loaded kernel (default stream, waits). */
bool cuda_kernel_run_host(const cuda_kernel *h, int64_t batch, int64_t seq_q, int64_t seq_k, attnc_tensor *tensors,
                          int n_tensors, cuda_launch_info *info, char *err, size_t errlen);

/* cuda_run's body: load (compile or cache), run on host tensors, unload. info may be NULL. */
bool cuda_launch_host(const ir_kernel *k, const char *arch, int64_t batch, int64_t seq_q, int64_t seq_k,
                      attnc_tensor *tensors, int n_tensors, cuda_launch_info *info, char *err, size_t errlen);

#endif
