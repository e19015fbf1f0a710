/* Turning a generated LLVM module into machine code: the O3 pipeline, ORC LLJIT for
 * in-process use, object files for `attnc build`, and in-memory objects for the on-disk
 * kernel cache (emitted with the JIT's own code generation settings, then linked into a
 * JIT with no code generation at all). */
#ifndef ATTNC_CPU_JIT_H
#define ATTNC_CPU_JIT_H
#include <stdbool.h>
#include <stddef.h>
#include <llvm-c/Core.h>
#include <llvm-c/Orc.h>
#include "codegen/llvm/cpu_target.h"

/* Sets the module's triple and data layout from the target, then runs the pass pipeline
 * (new pass manager syntax, loop unrolling off: the generator unrolls what it wants). */
bool cpu_run_passes(LLVMModuleRef m, const cpu_target *t, const char *pipeline, char *err, size_t errlen);
/* cpu_run_passes with "default<O3>" (LLJIT itself runs no IR passes). */
bool cpu_optimize_module(LLVMModuleRef m, const cpu_target *t, char *err, size_t errlen);

/* Writes an object file for the (already optimised) module. */
bool cpu_emit_object(LLVMModuleRef m, const cpu_target *t, const char *path, char *err, size_t errlen);

/* Machine code for the (already optimised) module as an in-memory object file, generated
 * exactly as cpu_jit_create would (the JIT's relocation and code model), so it can be
 * linked by cpu_jit_create_from_objects. The caller owns *out (LLVMDisposeMemoryBuffer). */
bool cpu_emit_jit_object(LLVMModuleRef m, const cpu_target *t, LLVMMemoryBufferRef *out, char *err, size_t errlen);

typedef struct cpu_jit cpu_jit;
/* A JIT for one module: takes ownership of the module and of the thread-safe context
 * it was built in (the caller must not dispose either). Process symbols (libm) resolve. */
cpu_jit *cpu_jit_create(const cpu_target *t, LLVMOrcThreadSafeContextRef tsc, LLVMModuleRef m,
                        char *err, size_t errlen);
/* A JIT that links n object files from cpu_emit_jit_object or cpu_split_compile (for the
 * same target; they may call each other), taking ownership of every buffer; no IR, no
 * optimisation, no code generation. Process symbols resolve. */
cpu_jit *cpu_jit_create_from_objects(const cpu_target *t, LLVMMemoryBufferRef objs[], int n, char *err,
                                     size_t errlen);
/* Address of a defined function, or NULL with a message. */
void *cpu_jit_lookup(cpu_jit *j, const char *name, char *err, size_t errlen);
void cpu_jit_destroy(cpu_jit *j);

#endif
