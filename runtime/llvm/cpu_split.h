/* JIT compilation of one generated module on several threads. The whole module first goes
 * through the interprocedural passes that settle every function's signature (constant and
 * dead arguments, argument promotion, attributes, fast calling convention); then its
 * function definitions are dealt into parts by estimated cost, and each part is optimised
 * (O3) and turned into an object in an LLVM context of its own, concurrently. The objects link
 * together in one JIT (cpu_jit_create_from_objects). */
#ifndef ATTNC_CPU_SPLIT_H
#define ATTNC_CPU_SPLIT_H
#include <llvm-c/Core.h>
#include "codegen/llvm/cpu_target.h"
#include "runtime/parts_image.h"

/* The part count for a JIT compile on this machine: the online CPUs, at most
 * CPU_SPLIT_MAX; $ATTNC_JIT_PARTS (1 .. CPU_SPLIT_MAX) overrides it. */
enum { CPU_SPLIT_MAX = 4 };
int cpu_split_default_parts(void);

/* Compiles the unoptimised module m (taken: disposed here; its context stays the
 * caller's) into at most max_parts objects, generated as cpu_emit_jit_object does. Fewer
 * parts when the module has fewer definitions; max_parts <= 1 compiles it whole, on the
 * calling thread. Returns the part count with objs[0 .. n-1] owned by the caller, or 0
 * with a message. */
int cpu_split_compile(LLVMModuleRef m, const cpu_target *t, int max_parts, LLVMMemoryBufferRef objs[CPU_SPLIT_MAX],
                      char *err, size_t errlen);

#endif
