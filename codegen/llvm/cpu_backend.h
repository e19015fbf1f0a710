/* The CPU backend's interface to the CLI and the C API (codegen/llvm + runtime/llvm).
 * Only built when LLVM is found (ATTNC_HAVE_LLVM). */
#ifndef ATTNC_CPU_BACKEND_H
#define ATTNC_CPU_BACKEND_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "ir/ir.h"
#include "attnc/tensor.h"

/* LLVM IR text of the kernel's module for this host (`attnc emit --target llvm`). */
bool cpu_emit_llvm_ir(const ir_kernel *k, FILE *out, char *err, size_t errlen);
/* Object file + C header in out_dir (`attnc build --target cpu -o DIR`). */
bool cpu_build(const ir_kernel *k, const char *out_dir, char *err, size_t errlen);
/* JIT-compiles (cached per process is fine) and runs on host memory; same tensor
 * convention as interp_run (ir/signature.h). */
bool cpu_run(const ir_kernel *k, int64_t batch, int64_t seq_q, int64_t seq_k,
             attnc_tensor *tensors, int n_tensors, char *err, size_t errlen);

#endif
