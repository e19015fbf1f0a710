/* attnc's C API: compile attention specs at run time and launch their kernels.
 *
 *   attnc_context_create   a target ("ref", "cpu", "cuda[:sm_XX]") and its options
 *   attnc_compile_string / attnc_compile_file
 *                          parse and check a spec; diagnostics as records and as text
 *   attnc_kernel_get       look a kernel up by name; the backend compiles it here, once
 *   attnc_kernel_signature the tensors a launch takes, for given batch and lengths
 *   attnc_launch           run it on strided tensor views (attnc/tensor.h)
 *
 * Ownership: a context owns its programs (destroying the context destroys any left), a
 * program owns its kernels (handles stay valid until the program is destroyed). Every
 * call reports failure through its return value and, when err is not NULL, a code and a
 * message in the caller's attnc_error; nothing prints, exits or aborts.
 *
 * Threads: any number of threads may compile, look up and launch on one context at once.
 * A program or kernel must not be used while another thread destroys it. */
#ifndef ATTNC_ATTNC_H
#define ATTNC_ATTNC_H
#include <stddef.h>
#include <stdint.h>
#include "attnc/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ATTNC_API_VERSION 1

typedef enum attnc_status {
    ATTNC_OK = 0,
    ATTNC_ERR_INVALID_ARGUMENT,    /* a NULL handle or output pointer, a negative length, a bad option */
    ATTNC_ERR_UNKNOWN_TARGET,      /* the target string names no target */
    ATTNC_ERR_TARGET_UNAVAILABLE,  /* a known target this build or machine cannot run (no LLVM, no libcuda, no GPU) */
    ATTNC_ERR_IO,                  /* a spec file or the cache directory cannot be read or created */
    ATTNC_ERR_SPEC,                /* the spec has errors: read them from the program */
    ATTNC_ERR_UNKNOWN_KERNEL,      /* no kernel of that name in the program */
    ATTNC_ERR_COMPILE,             /* the backend could not compile the kernel */
    ATTNC_ERR_UNSUPPORTED,         /* the backend cannot do what was asked (a kernel feature, device pointers, a stream) */
    ATTNC_ERR_UNKNOWN_TENSOR,      /* launch: a view's name is not in the kernel's signature */
    ATTNC_ERR_MISSING_TENSOR,      /* launch: a required tensor was not given */
    ATTNC_ERR_DTYPE,               /* launch: a view has the wrong dtype */
    ATTNC_ERR_SHAPE,               /* launch: a view has the wrong rank or shape */
    ATTNC_ERR_NULL_POINTER,        /* launch: a non-empty view has no data */
    ATTNC_ERR_LAYOUT,              /* launch: negative strides or data not aligned to its elements */
    ATTNC_ERR_LAUNCH,              /* the backend failed while running the kernel */
    ATTNC_ERR_OUT_OF_MEMORY,
    ATTNC_ERR_INTERNAL
} attnc_status;

typedef struct attnc_error {
    attnc_status code;
    char message[1024];            /* "what is wrong; what would be right"; "" on success */
} attnc_error;

/* "ATTNC_ERR_SHAPE" etc.; "?" for values outside the enum. */
const char *attnc_status_name(attnc_status s);
/* The library version, e.g. "0.1.0". */
const char *attnc_version(void);

/* ---------------------------------------------------------------- contexts */

typedef struct attnc_context attnc_context;

typedef struct attnc_options {
    const char *target;            /* "ref" (float64 interpreter), "cpu" (LLVM JIT), "cuda" (this GPU's
                                      architecture) or "cuda:sm_80", "cuda:sm_90a"; NULL means "cpu" */
    const char *cache_dir;         /* kernel cache: NULL = $ATTNC_CACHE_DIR, else $XDG_CACHE_HOME/attnc,
                                      else ~/.cache/attnc; "" = no cache */
    int device;                    /* CUDA device ordinal; -1 = $ATTNC_CUDA_DEVICE or 0 */
    int threads;                   /* CPU threads per launch; 0 = $ATTNC_CPU_THREADS or every CPU */
} attnc_options;

/* Defaults: target "cpu", cache_dir NULL, device -1, threads 0. A zeroed struct means the
 * same except device 0. */
void attnc_options_init(attnc_options *opts);

/* opts may be NULL (defaults). On failure *out is NULL. */
attnc_status attnc_context_create(const attnc_options *opts, attnc_context **out, attnc_error *err);
/* Destroys the context and every program (and kernel) it still holds. NULL is ignored. */
void attnc_context_destroy(attnc_context *ctx);
/* The target as resolved ("ref", "cpu", "cuda:sm_90a", ...). */
const char *attnc_context_target(const attnc_context *ctx);
/* The kernel cache directory, or NULL when the cache is off. */
const char *attnc_context_cache_dir(const attnc_context *ctx);

/* ---------------------------------------------------------------- programs */

typedef struct attnc_program attnc_program;

typedef enum attnc_severity { ATTNC_SEVERITY_ERROR, ATTNC_SEVERITY_WARNING, ATTNC_SEVERITY_NOTE } attnc_severity;

typedef struct attnc_diagnostic {
    attnc_severity severity;
    const char *file;              /* the path, or the name given to attnc_compile_string */
    int line, col;                 /* 1-based; line 0 when the message has no location */
    int end_line, end_col;         /* inclusive end of the marked span */
    const char *message;
} attnc_diagnostic;

/* Parses and checks a spec (len bytes of src, or strlen(src) when len is 0); name labels
 * its diagnostics (NULL: "<string>"). Returns ATTNC_OK, or ATTNC_ERR_SPEC when the spec
 * has errors: then *out is still a program, holding the diagnostics and no kernels, and
 * the caller destroys it. Other failures leave *out NULL. */
attnc_status attnc_compile_string(attnc_context *ctx, const char *src, size_t len, const char *name,
                                  attnc_program **out, attnc_error *err);
/* The same for a file (ATTNC_ERR_IO when it cannot be read). */
attnc_status attnc_compile_file(attnc_context *ctx, const char *path, attnc_program **out, attnc_error *err);
/* Destroys the program and its kernels. NULL is ignored. */
void attnc_program_destroy(attnc_program *prog);

int attnc_program_error_count(const attnc_program *prog);
/* Diagnostics in source order; records and strings live as long as the program. */
int attnc_program_diagnostic_count(const attnc_program *prog);
const attnc_diagnostic *attnc_program_diagnostic(const attnc_program *prog, int i);
/* Every diagnostic as the CLI prints it: "file:line:col: error: message", the source line
 * and a caret. "" when there are none. */
const char *attnc_program_diagnostics_text(const attnc_program *prog);
/* Kernels of a program without errors, in file order. */
int attnc_program_kernel_count(const attnc_program *prog);
const char *attnc_program_kernel_name(const attnc_program *prog, int i);

/* ---------------------------------------------------------------- kernels */

typedef struct attnc_kernel attnc_kernel;

/* Looks a kernel up and compiles it for the context's target (the first lookup compiles;
 * later ones return the same handle). The handle belongs to the program. */
attnc_status attnc_kernel_get(attnc_program *prog, const char *name, attnc_kernel **out, attnc_error *err);
const char *attnc_kernel_name(const attnc_kernel *k);
/* 1 for a linear recurrence (seq_q and seq_k must then be equal), 0 for softmax attention. */
int attnc_kernel_is_recurrence(const attnc_kernel *k);

typedef enum attnc_role { ATTNC_ROLE_INPUT, ATTNC_ROLE_OUTPUT } attnc_role;

typedef struct attnc_tensor_info {
    const char *name;              /* the name a launch's view must carry */
    attnc_role role;
    int optional;                  /* lse, state_in, state_out */
    attnc_dtype dtype;             /* outputs also accept ATTNC_F64 views in host memory (converted) */
    int ndim;
    int64_t shape[ATTNC_MAX_DIMS];
    const char *dim_names[ATTNC_MAX_DIMS];   /* "batch", "seq_q", "heads_kv", "d_qk", ... */
} attnc_tensor_info;

/* The tensors a launch with these lengths takes, in signature order: q, k, [v],
 * [positions], declared inputs, [state_in], o, [lse | state_out]. Writes up to cap
 * records to out (out may be NULL when cap is 0) and the full count to *n_out. */
attnc_status attnc_kernel_signature(const attnc_kernel *k, int64_t batch, int64_t seq_q, int64_t seq_k,
                                    attnc_tensor_info *out, int cap, int *n_out, attnc_error *err);

/* Scratch memory a launch with these lengths takes beyond its tensors, in bytes: on cuda
 * device memory (0 for prefill; the split-KV partials of a decode, O(batch · heads_q ·
 * splits · d_v), taken from the driver's stream-ordered pool), on cpu host memory (per-thread
 * tiles, RoPE tables, split partials, kept by the kernel between launches), 0 on ref. */
attnc_status attnc_kernel_workspace(const attnc_kernel *k, int64_t batch, int64_t seq_q, int64_t seq_k, int64_t *bytes,
                                    attnc_error *err);

typedef struct attnc_launch_options {
    void *stream;                  /* CUDA with device pointers: a CUstream (NULL: the legacy default stream) of
                                      the context's device's primary context (PyTorch's streams are) */
    int device_pointers;           /* CUDA: 1 when the views' data are device pointers, with exactly the
                                      kernel's dtypes; 0: host memory (copied in and out, synchronous) */
} attnc_launch_options;

/* Runs the kernel on tensors[0..n) (each named by its signature name; strides in
 * elements, all zero for contiguous). opts may be NULL (host memory, no stream). Every
 * view is checked against the signature first; a bad one is reported by name with the
 * expected shape and nothing runs. Returns when the outputs are written; with device
 * pointers, once the work is queued on the stream (a split-KV decode takes its workspace
 * from the driver's stream-ordered pool, so nothing else is allocated or synchronised).
 * Thread-safe: launches of one kernel from several threads may overlap. */
attnc_status attnc_launch(const attnc_kernel *k, int64_t batch, int64_t seq_q, int64_t seq_k,
                          const attnc_tensor *tensors, int n, const attnc_launch_options *opts, attnc_error *err);

#ifdef __cplusplus
}
#endif
#endif
