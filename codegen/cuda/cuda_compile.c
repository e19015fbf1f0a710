/* Emit + compile through the cache; ptxas report parsing. */
#include "codegen/cuda/cuda_compile.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "codegen/cuda/cuda_emit.h"

bool cuda_compile_kernel(const ir_kernel *k, const char *arch, const kernel_cache *cache, const nvrtc_lib *lib,
                         cuda_compiled *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!cuda_plan_make(k, arch, &out->plan, err, errlen)) return false;
    out->source = cuda_emit_kernel_string(k, &out->plan, false, err, errlen);
    if (!out->source) return false;
    char target[64];
    snprintf(target, sizeof target, "cuda:%s", arch);
    /* the source is part of the key, so a changed generator never reuses a stale CUBIN */
    if (!kernel_cache_key_for(k, target, out->source, &out->key, err, errlen)) goto fail;
    if (cache) {
        bool corrupt = false;
        if (kernel_cache_load(cache, &out->key, &out->image, &out->image_size, &corrupt)) {
            out->from_cache = true;
            return true;
        }
    }
    if (!lib) {
        snprintf(err, errlen, "kernel '%s' is not in the kernel cache and NVRTC is not loaded", k->name);
        goto fail;
    }
    char name[160];
    snprintf(name, sizeof name, "%s.cu", k->name);
    nvrtc_output o;
    if (!nvrtc_compile(lib, out->source, name, arch, NULL, 0, false, &o, err, errlen)) {
        free(o.log);
        goto fail;
    }
    if (o.is_ptx) {
        snprintf(err, errlen, "NVRTC %d.%d cannot produce a CUBIN (nvrtcGetCUBIN missing); use CUDA 11.2 or newer",
                 lib->major, lib->minor);
        nvrtc_output_free(&o);
        goto fail;
    }
    out->image = o.image;
    out->image_size = o.image_size;
    out->log = o.log;
    if (cache) {
        char store_err[512];
        /* a cache that cannot be written only costs the next run a compile */
        char target[32];
        snprintf(target, sizeof target, "cuda:%s", arch);
        kernel_cache_store_named(cache, &out->key, k->name, target, out->image, out->image_size, store_err,
                                 sizeof store_err);
    }
    return true;
fail:
    cuda_compiled_free(out);
    return false;
}

void cuda_compiled_free(cuda_compiled *c) {
    free(c->source);
    free(c->image);
    free(c->log);
    memset(c, 0, sizeof *c);
}

/* ptxas prints, per entry:
 *   ptxas info    : Compiling entry function 'NAME' for 'sm_80'
 *   ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
 *   ptxas info    : Used 182 registers, ... */
int cuda_parse_ptxas_log(const char *log, cuda_ptxas_info *out, int max) {
    int n = -1;
    if (!log) return 0;
    for (const char *line = log; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[512];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf - 1 ? len : sizeof buf - 1), line);
        const char *p;
        if ((p = strstr(buf, "Compiling entry function '")) != NULL) {
            if (n + 1 < max) {
                n++;
                memset(&out[n], 0, sizeof out[n]);
                p += strlen("Compiling entry function '");
                const char *q = strchr(p, '\'');
                snprintf(out[n].function, sizeof out[n].function, "%.*s", q ? (int)(q - p) : 0, p);
            }
        } else if (n >= 0 && n < max && (p = strstr(buf, "bytes stack frame")) != NULL) {
            sscanf(buf, "ptxas . %d bytes stack frame, %d bytes spill stores, %d bytes spill loads",
                   &out[n].stack_frame, &out[n].spill_stores, &out[n].spill_loads);
            /* tolerate varying whitespace: parse the numbers before each phrase */
            const char *s1 = strstr(buf, ".");
            if (s1) sscanf(s1 + 1, " %d bytes stack frame, %d bytes spill stores, %d bytes spill loads",
                           &out[n].stack_frame, &out[n].spill_stores, &out[n].spill_loads);
        } else if (n >= 0 && n < max && (p = strstr(buf, "Used ")) != NULL) {
            sscanf(p, "Used %d registers", &out[n].registers);
        }
        line = end ? end + 1 : NULL;
    }
    return n + 1 < max ? n + 1 : max;
}
