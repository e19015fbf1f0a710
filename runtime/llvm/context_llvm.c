/* attnc_context_create with the CPU engine: in attnc_llvm, which links before attnc_core,
 * so a program built with LLVM resolves the function here and never loads
 * runtime/context_core.c (runtime/engine.h explains the pair). */
#include "runtime/engine.h"

attnc_status attnc_context_create(const attnc_options *opts, attnc_context **out, attnc_error *err) {
    return api_context_create(opts, engine_cpu_ops(), out, err);
}
