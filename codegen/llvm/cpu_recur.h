/* Recurrence kernels (linear attention, state-space models) on the CPU: code generation
 * behind the same binary interface as the softmax skeletons (cpu_kernel.h: one argument
 * struct, attnc_NAME_workspace_size / _num_items / _run_items / attnc_NAME), so the JIT
 * launcher, `attnc build` and the C header work unchanged; plus a launcher of its own for
 * tests and the benchmark that can force a form and a thread count.
 *
 * Forms (cpu_args.flags): AUTO picks the chunkwise parallel form for whole chunks and
 * finishes a short tail (and any run shorter than half a chunk, e.g. a decode step) with
 * the recurrent step; SCAN runs the recurrent step token by token (the interpreter's order
 * of operations, vectorised along v); CHUNK runs every chunk, the last one zero-padded, in
 * the chunkwise form; LITERAL runs the interpreter's loop nests as scalar code (a
 * benchmark baseline: what compiling the interpreter's loops gives).
 * Decays per state element (Mamba-1, S4D) always use the step form. */
#ifndef ATTNC_CPU_RECUR_H
#define ATTNC_CPU_RECUR_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <llvm-c/Core.h>
#include "ir/ir.h"
#include "attnc/tensor.h"
#include "codegen/llvm/cpu_target.h"

enum { CPU_RECUR_AUTO = 0, CPU_RECUR_SCAN = 1, CPU_RECUR_CHUNK = 2, CPU_RECUR_LITERAL = 3 };

/* Why a recurrence cannot be compiled for this CPU (NULL when it can). */
const char *cpu_recur_unsupported(const ir_kernel *k, const cpu_target *t);
/* Builds the kernel's module in ctx (unoptimised); NULL with a message. Same exports
 * and argument struct as cpu_kernel_emit. */
LLVMModuleRef cpu_recur_emit(const ir_kernel *k, const cpu_target *t, LLVMContextRef ctx, char *err, size_t errlen);

/* Shape of the generated code (for the benchmark's report). */
typedef struct cpu_recur_info {
    int lanes, tile_rows, tile_vecs;   /* micro-GEMM: rows x vectors of accumulators */
    int chunk, sub_block;              /* chunk length; GLA's diagonal sub-block */
    int d_k_pad, d_v_pad;              /* padded state dims (d_v + 1 with normalize) */
} cpu_recur_info;
cpu_recur_info cpu_recur_describe(const ir_kernel *k, const cpu_target *t);

/* ---- JIT launcher (cpu_recur_run.c) */
typedef struct cpu_recur_compiled cpu_recur_compiled;
/* Compiles for the host; ms_out (optional) gets the compile wall time. */
cpu_recur_compiled *cpu_recur_compile(const ir_kernel *k, double *ms_out, char *err, size_t errlen);
/* For an explicit target the host can run (tests: 4-lane SSE2 code without FMA on an AVX2
 * machine runs the generator's other vector width). */
cpu_recur_compiled *cpu_recur_compile_for(const ir_kernel *k, const cpu_target *t, double *ms_out, char *err,
                                          size_t errlen);
void cpu_recur_free(cpu_recur_compiled *ck);
/* Launches with n_threads (0 = ATTNC_CPU_THREADS or every CPU) and a form. Tensors as for
 * interp_run; o, state_out and norm_out may also be f64 views. state_in and state_out
 * may be the same buffer (the update is then in place). */
bool cpu_recur_launch(cpu_recur_compiled *ck, const ir_kernel *k, int n_threads, int form, int64_t batch,
                      int64_t seq, attnc_tensor *tensors, int n_tensors, char *err, size_t errlen);
/* The same through the exported single-threaded driver attnc_NAME(args) (what a program
 * linking `attnc build`'s object calls), which allocates its own workspace. */
bool cpu_recur_call_driver(cpu_recur_compiled *ck, const ir_kernel *k, int form, int64_t batch, int64_t seq,
                           attnc_tensor *tensors, int n_tensors, char *err, size_t errlen);
/* One-shot: compile, launch (AUTO), free. Same signature as cpu_run. */
bool cpu_recur_run(const ir_kernel *k, int64_t batch, int64_t seq_q, int64_t seq_k,
                   attnc_tensor *tensors, int n_tensors, char *err, size_t errlen);
/* LLVM IR text of the kernel's module for this host. */
bool cpu_recur_emit_llvm_ir(const ir_kernel *k, FILE *out, char *err, size_t errlen);

#endif
