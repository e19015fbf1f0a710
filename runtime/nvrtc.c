/* dlopen'd NVRTC: compile CUDA C to CUBIN for one real architecture. */
#include "runtime/nvrtc.h"
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* dlsym returns void*; POSIX guarantees it converts to a function pointer. memcpy keeps the
 * conversion free of object/function pointer casts that some compilers warn about. */
static bool load_sym(void *handle, const char *name, void *fnptr, size_t size) {
    void *p = dlsym(handle, name);
    if (!p) return false;
    memcpy(fnptr, &p, size);
    return true;
}
#define LOAD(field, name) load_sym(lib->handle, name, &lib->field, sizeof lib->field)

bool nvrtc_open(nvrtc_lib *lib, char *err, size_t errlen) {
    memset(lib, 0, sizeof *lib);
    const char *env = getenv("ATTNC_NVRTC_LIBRARY");
    const char *candidates[] = {
        env && *env ? env : NULL,
        "libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so.11.1",
        "/usr/local/cuda/lib64/libnvrtc.so", "/usr/local/cuda/lib64/libnvrtc.so.13",
        "/usr/local/cuda/lib64/libnvrtc.so.12", "/usr/local/cuda/lib/libnvrtc.so",
    };
    const int n = (int)(sizeof candidates / sizeof candidates[0]);
    char first_error[256] = "";
    for (int i = 0; i < n && !lib->handle; i++) {
        if (!candidates[i]) continue;
        /* NODELETE: unloading NVRTC (and the libstdc++ it pulls in) is neither needed nor safe */
        lib->handle = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
        if (lib->handle) snprintf(lib->path, sizeof lib->path, "%s", candidates[i]);
        else if (!first_error[0]) {
            const char *e = dlerror();
            snprintf(first_error, sizeof first_error, "%s", e ? e : candidates[i]);
        }
    }
    if (!lib->handle) {
        snprintf(err, errlen,
                 "cannot load libnvrtc (tried $ATTNC_NVRTC_LIBRARY, libnvrtc.so, libnvrtc.so.13/.12/.11.2 "
                 "and /usr/local/cuda/lib64; first error: %s); install the CUDA toolkit or set "
                 "ATTNC_NVRTC_LIBRARY to the path of libnvrtc.so", first_error);
        return false;
    }
    bool ok = LOAD(version, "nvrtcVersion") && LOAD(create_program, "nvrtcCreateProgram") &&
              LOAD(compile_program, "nvrtcCompileProgram") && LOAD(get_log_size, "nvrtcGetProgramLogSize") &&
              LOAD(get_log, "nvrtcGetProgramLog") && LOAD(get_ptx_size, "nvrtcGetPTXSize") &&
              LOAD(get_ptx, "nvrtcGetPTX") && LOAD(destroy_program, "nvrtcDestroyProgram") &&
              LOAD(get_error_string, "nvrtcGetErrorString");
    if (!ok) {
        snprintf(err, errlen, "%s lacks the NVRTC entry points attnc needs (nvrtcCreateProgram, ...); "
                 "use NVRTC from CUDA 11.2 or newer", lib->path);
        nvrtc_close(lib);
        return false;
    }
    /* CUBIN output and the arch list arrived in CUDA 11.1/11.2; without them we fall back to PTX. */
    LOAD(get_cubin_size, "nvrtcGetCUBINSize");
    LOAD(get_cubin, "nvrtcGetCUBIN");
    LOAD(get_num_supported_archs, "nvrtcGetNumSupportedArchs");
    LOAD(get_supported_archs, "nvrtcGetSupportedArchs");
    lib->version(&lib->major, &lib->minor);
    return true;
}

void nvrtc_close(nvrtc_lib *lib) {
    if (lib->handle) dlclose(lib->handle);
    memset(lib, 0, sizeof *lib);
}

bool nvrtc_parse_arch(const char *arch, int *cc, bool *arch_specific) {
    if (!arch) return false;
    const char *p;
    if (strncmp(arch, "sm_", 3) == 0) p = arch + 3;
    else if (strncmp(arch, "compute_", 8) == 0) p = arch + 8;
    else return false;
    int v = 0, digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 4) v = v * 10 + (*p++ - '0'), digits++;
    if (digits < 2) return false;
    bool a = false;
    if (*p == 'a' || *p == 'f') a = true, p++;
    if (*p) return false;
    *cc = v;
    *arch_specific = a;
    return true;
}

bool nvrtc_supports_arch(const nvrtc_lib *lib, int cc) {
    if (!lib->get_num_supported_archs || !lib->get_supported_archs) return cc >= 52;
    int n = 0;
    if (lib->get_num_supported_archs(&n) != 0 || n <= 0 || n > 256) return false;
    int archs[256];
    if (lib->get_supported_archs(archs) != 0) return false;
    for (int i = 0; i < n; i++)
        if (archs[i] == cc) return true;
    return false;
}

static char *program_log(const nvrtc_lib *lib, void *prog) {
    size_t size = 0;
    if (lib->get_log_size(prog, &size) != 0) size = 0;
    char *log = malloc(size + 1);
    if (!log) return NULL;
    log[0] = 0;
    if (size && lib->get_log(prog, log) != 0) log[0] = 0;
    log[size] = 0;
    return log;
}

bool nvrtc_compile(const nvrtc_lib *lib, const char *source, const char *name, const char *arch,
                   const char *const *extra_options, int n_extra, bool want_ptx,
                   nvrtc_output *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    int cc;
    bool arch_specific;
    if (!nvrtc_parse_arch(arch, &cc, &arch_specific)) {
        snprintf(err, errlen, "bad CUDA architecture '%s'; expected sm_XX or sm_XXa such as sm_80 or sm_90a",
                 arch ? arch : "(null)");
        return false;
    }
    if (!nvrtc_supports_arch(lib, cc)) {
        snprintf(err, errlen, "NVRTC %d.%d (%s) cannot generate code for %s", lib->major, lib->minor,
                 lib->path, arch);
        return false;
    }
    bool cubin = !want_ptx && lib->get_cubin && lib->get_cubin_size;
    char arch_opt[48];
    /* A real arch (sm_XX) makes NVRTC run ptxas and yield a CUBIN; compute_XX yields PTX. */
    snprintf(arch_opt, sizeof arch_opt, "-arch=%s_%d%s", cubin ? "sm" : "compute", cc, arch_specific ? "a" : "");
    enum { MAX_OPTS = 32 };
    const char *opts[MAX_OPTS];
    int n_opts = 0;
    opts[n_opts++] = arch_opt;
    opts[n_opts++] = "-std=c++17";
    opts[n_opts++] = "-lineinfo";
    opts[n_opts++] = "--ptxas-options=-v";
    for (int i = 0; i < n_extra && n_opts < MAX_OPTS; i++) opts[n_opts++] = extra_options[i];

    void *prog = NULL;
    int rc = lib->create_program(&prog, source, name, 0, NULL, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "nvrtcCreateProgram failed: %s", lib->get_error_string(rc));
        return false;
    }
    rc = lib->compile_program(prog, n_opts, opts);
    out->log = program_log(lib, prog);
    if (rc != 0) {
        snprintf(err, errlen, "NVRTC failed to compile '%s' for %s (%s):\n%s", name, arch,
                 lib->get_error_string(rc), out->log ? out->log : "(no log)");
        lib->destroy_program(&prog);
        return false;
    }
    size_t size = 0;
    rc = cubin ? lib->get_cubin_size(prog, &size) : lib->get_ptx_size(prog, &size);
    if (rc == 0 && size > 0) {
        out->image = malloc(size + 1);
        if (out->image) {
            rc = cubin ? lib->get_cubin(prog, out->image) : lib->get_ptx(prog, out->image);
            out->image[size] = 0;
        }
    }
    lib->destroy_program(&prog);
    if (rc != 0 || !out->image || size == 0) {
        snprintf(err, errlen, "NVRTC produced no %s for '%s' (%s)", cubin ? "CUBIN" : "PTX", name,
                 rc ? lib->get_error_string(rc) : "empty output");
        nvrtc_output_free(out);
        return false;
    }
    out->image_size = size;
    out->is_ptx = !cubin;
    return true;
}

void nvrtc_output_free(nvrtc_output *out) {
    free(out->image);
    free(out->log);
    memset(out, 0, sizeof *out);
}
