/* Extra entry points of the CPU backend for tests and the benchmark (the CLI uses
 * cpu_backend.h): explicit targets and thread counts, compile timing, and a handle on a
 * JIT-compiled kernel that can be launched many times without the per-call lookup. */
#ifndef ATTNC_CPU_RUNTIME_H
#define ATTNC_CPU_RUNTIME_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "ir/ir.h"
#include "attnc/tensor.h"
#include "codegen/llvm/cpu_target.h"

/* Object file + header for an explicit target (cpu_build uses the host). */
bool cpu_build_for(const ir_kernel *k, const cpu_target *t, const char *out_dir, char *err, size_t errlen);
/* The C header `attnc build` writes next to the object. */
void cpu_write_header(const ir_kernel *k, const cpu_target *t, FILE *out);

/* A kernel compiled by the JIT for this host. */
typedef struct cpu_compiled cpu_compiled;
/* Compiles (no cache); ms_out gets the wall time of IR generation + O3 + machine code. */
cpu_compiled *cpu_compile(const ir_kernel *k, double *ms_out, char *err, size_t errlen);
/* The same for an explicit target the host can run (tests: 4-lane SSE code on an AVX2
 * machine exercises the generator's other vector width and the no-FMA path). */
cpu_compiled *cpu_compile_for(const ir_kernel *k, const cpu_target *t, double *ms_out, char *err, size_t errlen);
void cpu_compiled_free(cpu_compiled *ck);
/* Launches with n_threads threads (0 = ATTNC_CPU_THREADS or all CPUs); same tensor
 * convention as cpu_run. */
bool cpu_launch(cpu_compiled *ck, const ir_kernel *k, int n_threads, int64_t batch, int64_t seq_q, int64_t seq_k,
                attnc_tensor *tensors, int n_tensors, char *err, size_t errlen);
/* Workspace bytes a launch of these sizes needs with n_threads threads. */
int64_t cpu_workspace_bytes(cpu_compiled *ck, const ir_kernel *k, int n_threads, int64_t batch, int64_t seq_q,
                            int64_t seq_k);

#endif
