/* Extra entry points of the CPU backend for the C API's cpu engine, tests and the
 * benchmark (the CLI uses cpu_backend.h): explicit targets and thread counts, compile
 * timing, compiles through the on-disk kernel cache, and a handle on a JIT-compiled kernel
 * that can be launched many times (from several threads at once) without a lookup. */
#ifndef ATTNC_CPU_RUNTIME_H
#define ATTNC_CPU_RUNTIME_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "ir/ir.h"
#include "attnc/tensor.h"
#include "codegen/llvm/cpu_target.h"
#include "runtime/kernel_cache.h"

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
/* cpu_compile_for with the module compiled as at most max_parts concurrent parts
 * (runtime/llvm/cpu_split.h; the others use cpu_split_default_parts, 1 = whole). */
cpu_compiled *cpu_compile_parts(const ir_kernel *k, const cpu_target *t, int max_parts, double *ms_out,
                                char *err, size_t errlen);
void cpu_compiled_free(cpu_compiled *ck);

/* What cpu_compile_cached did. */
typedef struct cpu_cache_result {
    bool from_cache;               /* linked from a cache entry: no optimisation, no code generation */
    bool stored;                   /* compiled, and the object stored in the cache */
    bool was_corrupt;              /* an entry was there but invalid (or did not link): removed, rebuilt */
    kernel_cache_key key;          /* the entry's key (zero without a cache) */
    double ms;                     /* wall time of the whole call */
} cpu_cache_result;
/* Compiles for this host through the on-disk cache (NULL: no cache, as cpu_compile). The
 * key covers the IR, the host (triple, CPU name, every feature), the LLVM version and the
 * generator's revision. A hit links the stored object(s) into a JIT and looks the entry
 * points up; a miss generates, optimises and emits objects in memory (cpu_split_compile:
 * one, or concurrent parts), stores them (one object as itself, parts as a parts image,
 * with the kernel's name and cpu_cache_target_label) and links them the same way. Any
 * number of threads and processes may compile the same kernel at once: each store
 * replaces the entry atomically. Refuses kernels the CPU backend cannot compile. res may
 * be NULL. */
cpu_compiled *cpu_compile_cached(const ir_kernel *k, const kernel_cache *cache, cpu_cache_result *res, char *err,
                                 size_t errlen);
/* The target label cache entries record: "cpu:CPU/TRIPLE/features-HASH". */
void cpu_cache_target_label(const cpu_target *t, char *out, size_t len);

/* Launches with n_threads threads (0 = ATTNC_CPU_THREADS or all CPUs); same tensor
 * convention as cpu_run. Launches of one handle may overlap (each borrows its own
 * workspace); with one thread a launch runs on the caller without the thread pool. */
bool cpu_launch(cpu_compiled *ck, const ir_kernel *k, int n_threads, int64_t batch, int64_t seq_q, int64_t seq_k,
                attnc_tensor *tensors, int n_tensors, char *err, size_t errlen);
/* Workspace bytes a launch of these sizes needs with n_threads threads. */
int64_t cpu_workspace_bytes(cpu_compiled *ck, const ir_kernel *k, int n_threads, int64_t batch, int64_t seq_q,
                            int64_t seq_k);

#endif
