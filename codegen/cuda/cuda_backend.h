/* The CUDA backend's interface to the CLI and the C API (codegen/cuda + runtime/cuda*).
 * Always built: NVRTC and the driver are loaded with dlopen at run time. */
#ifndef ATTNC_CUDA_BACKEND_H
#define ATTNC_CUDA_BACKEND_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "ir/ir.h"
#include "attnc/tensor.h"

/* CUDA C source of the kernel(s) for an arch such as "sm_80", "sm_90a" (`attnc emit --target cuda`). */
bool cuda_emit_source(const ir_kernel *k, const char *arch, FILE *out, char *err, size_t errlen);
/* CUBIN + C header in out_dir, compiled with NVRTC (`attnc build --target cuda:sm_90a -o DIR`). */
bool cuda_build(const ir_kernel *k, const char *arch, const char *out_dir, char *err, size_t errlen);
/* Compiles (through the kernel cache), copies host tensors to the device, launches, copies back.
 * Fails with a clear message where there is no libcuda / no GPU. */
bool cuda_run(const ir_kernel *k, const char *arch, int64_t batch, int64_t seq_q, int64_t seq_k,
              attnc_tensor *tensors, int n_tensors, char *err, size_t errlen);

#endif
