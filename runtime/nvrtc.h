/* NVRTC loaded at run time with dlopen: attnc builds and runs without the CUDA toolkit,
 * and only asking for CUDA compilation needs libnvrtc. No globals: the loaded library and
 * its function table live in an nvrtc_lib the caller owns. */
#ifndef ATTNC_RUNTIME_NVRTC_H
#define ATTNC_RUNTIME_NVRTC_H
#include <stdbool.h>
#include <stddef.h>

typedef struct nvrtc_lib {
    void *handle;
    char path[256];                 /* which file was loaded */
    int major, minor;               /* nvrtcVersion */
    /* The NVRTC C API, typed without nvrtc.h (nvrtcProgram is an opaque pointer,
     * nvrtcResult an int; 0 is success). */
    int (*version)(int *major, int *minor);
    int (*create_program)(void **prog, const char *src, const char *name, int n_headers,
                          const char *const *headers, const char *const *include_names);
    int (*compile_program)(void *prog, int n_options, const char *const *options);
    int (*get_log_size)(void *prog, size_t *size);
    int (*get_log)(void *prog, char *log);
    int (*get_cubin_size)(void *prog, size_t *size);
    int (*get_cubin)(void *prog, char *cubin);
    int (*get_ptx_size)(void *prog, size_t *size);
    int (*get_ptx)(void *prog, char *ptx);
    int (*destroy_program)(void **prog);
    const char *(*get_error_string)(int result);
    int (*get_num_supported_archs)(int *n);       /* may be NULL on old NVRTC */
    int (*get_supported_archs)(int *archs);
} nvrtc_lib;

/* Loads libnvrtc: $ATTNC_NVRTC_LIBRARY if set, else libnvrtc.so, .so.13, .so.12, .so.11.2,
 * then /usr/local/cuda/lib64/. On failure err says what was tried. */
bool nvrtc_open(nvrtc_lib *lib, char *err, size_t errlen);
void nvrtc_close(nvrtc_lib *lib);

/* True when NVRTC can generate code for the compute capability (e.g. 80, 90). */
bool nvrtc_supports_arch(const nvrtc_lib *lib, int cc);

typedef struct nvrtc_output {
    char *image;                    /* malloc'd CUBIN (real arch) or PTX text (NUL-terminated) */
    size_t image_size;
    bool is_ptx;
    char *log;                      /* malloc'd compile log (ptxas -v lines included); may be "" */
} nvrtc_output;

/* Compiles CUDA C source for arch "sm_80", "sm_90a", ... to a CUBIN (or PTX when want_ptx)
 * with -std=c++17 -lineinfo --ptxas-options=-v plus extra_options. On failure returns false
 * with the NVRTC log in err (truncated to errlen) and still fills out->log when possible.
 * The caller frees with nvrtc_output_free. */
bool nvrtc_compile(const nvrtc_lib *lib, const char *source, const char *name, const char *arch,
                   const char *const *extra_options, int n_extra, bool want_ptx,
                   nvrtc_output *out, char *err, size_t errlen);
void nvrtc_output_free(nvrtc_output *out);

/* Parses an arch string ("sm_80", "sm_90a", "compute_90") into a compute capability (80, 90)
 * and whether it is the arch-specific 'a' flavour. Returns false for malformed strings. */
bool nvrtc_parse_arch(const char *arch, int *cc, bool *arch_specific);

#endif
