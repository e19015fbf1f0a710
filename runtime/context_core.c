/* attnc_context_create for builds without the CPU backend (see runtime/engine.h for why
 * runtime/llvm/context_llvm.c defines it too). Keep this file to that one function, so
 * linking attnc_llvm first never pulls it in. */
#include "runtime/engine.h"

attnc_status attnc_context_create(const attnc_options *opts, attnc_context **out, attnc_error *err) {
    return api_context_create(opts, NULL, out, err);
}
