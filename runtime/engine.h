/* The C API's view of a backend: an engine compiles an IR kernel once into a handle and
 * launches that handle many times. runtime/api.c does everything target-independent
 * (parsing, checking, signature validation of every view, locking) and calls an engine
 * only with arguments that already match the kernel's signature.
 *
 * Engines: "ref" (runtime/engine_ref.c, the interpreter), "cuda" (runtime/engine_cuda.c),
 * "cpu" (runtime/llvm/engine_cpu.c, only in builds with LLVM).
 *
 * How the cpu engine reaches the API without a link cycle: attnc_core (api.c) cannot refer
 * to attnc_llvm, which is linked after it. So attnc_context_create, the only entry that
 * picks engines, is defined twice: runtime/context_core.c (attnc_core: no cpu engine) and
 * runtime/llvm/context_llvm.c (attnc_llvm: with it). Both forward to api_context_create.
 * A program links attnc_llvm before attnc_core (CMake's attnc::attnc and `pkg-config
 * --libs attnc` do), so the static linker takes the LLVM definition first and never
 * pulls the core one; a core-only build has only the core one. */
#ifndef ATTNC_ENGINE_H
#define ATTNC_ENGINE_H
#include <stdbool.h>
#include <stdint.h>
#include "attnc/attnc.h"
#include "ir/ir.h"

/* What a context asks of its engine. */
typedef struct engine_config {
    const char *arch;              /* cuda: "sm_80", "sm_90a", or NULL for the device's own */
    const char *cache_dir;         /* NULL: no on-disk cache */
    int device;                    /* cuda ordinal; -1: $ATTNC_CUDA_DEVICE or 0 */
    int threads;                   /* cpu: 0 = default */
} engine_config;

typedef struct engine_launch {
    void *stream;
    bool device_pointers;
} engine_launch;

typedef struct engine_kernel engine_kernel;   /* an engine's compiled kernel */

typedef struct engine_ops {
    const char *name;              /* "ref", "cpu", "cuda" */
    /* Checks the backend can run here (library present, device present, arch valid) and
     * makes the per-context state. On failure sets err (ATTNC_ERR_TARGET_UNAVAILABLE
     * for a missing backend) and returns false. state may stay NULL. */
    bool (*open)(const engine_config *cfg, void **state, char *resolved_target, size_t resolved_len, attnc_error *err);
    void (*close)(void *state);
    /* Compiles k (which outlives the handle). NULL with err set on failure
     * (ATTNC_ERR_COMPILE, ATTNC_ERR_UNSUPPORTED). Called concurrently from several threads. */
    engine_kernel *(*compile)(void *state, const ir_kernel *k, attnc_error *err);
    /* Runs a compiled kernel; tensors already match its signature for these lengths.
     * Called concurrently, also on the same handle. */
    bool (*launch)(void *state, engine_kernel *ek, int64_t batch, int64_t seq_q, int64_t seq_k,
                   attnc_tensor *tensors, int n, const engine_launch *opts, attnc_error *err);
    void (*release)(void *state, engine_kernel *ek);
    /* Bytes of scratch memory a launch with these lengths takes beyond its tensors (host
     * memory on cpu, device memory on cuda); lengths already checked. */
    int64_t (*workspace)(void *state, engine_kernel *ek, int64_t batch, int64_t seq_q, int64_t seq_k);
} engine_ops;

const engine_ops *engine_ref_ops(void);
const engine_ops *engine_cuda_ops(void);
const engine_ops *engine_cpu_ops(void);     /* defined only in attnc_llvm */

/* The body of attnc_context_create; cpu is the cpu engine, or NULL in a build without LLVM. */
attnc_status api_context_create(const attnc_options *opts, const engine_ops *cpu, attnc_context **out,
                                attnc_error *err);

/* Sets err (when not NULL) and returns code: the one way engines and api.c report. */
attnc_status api_fail(attnc_error *err, attnc_status code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A backend's message as "kernel 'K' on TARGET: msg" (without repeating the kernel when
 * msg already starts with it). */
attnc_status api_fail_backend(attnc_error *err, attnc_status code, const char *target, const char *kernel,
                              const char *msg);

#endif
