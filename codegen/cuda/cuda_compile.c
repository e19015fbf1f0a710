/* Emit + compile through the cache; ptxas report parsing. */
#include "codegen/cuda/cuda_compile.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "codegen/cuda/cuda_emit.h"
#include "runtime/parts_image.h"
#include "runtime/threadpool.h"

int cuda_image_parts(const void *image, size_t size, const void *part[CUDA_MAX_PARTS], size_t part_size[CUDA_MAX_PARTS]) {
    const void *p[PARTS_IMAGE_MAX];
    size_t ps[PARTS_IMAGE_MAX];
    int n = parts_image_read(image, size, p, ps);
    if (n > CUDA_MAX_PARTS) return 0;
    for (int i = 0; i < n; i++) part[i] = p[i], part_size[i] = ps[i];
    return n;
}

/* ---------------------------------------------------------------- compile */

typedef struct part_job {
    const nvrtc_lib *lib;
    const char *source, *name, *arch;
    char define[32];
    bool with_define;
    nvrtc_output out;
    bool ok;
    char err[4096];
} part_job;

static void compile_part(void *arg) {
    part_job *j = arg;
    const char *opt = j->define;
    j->ok = nvrtc_compile(j->lib, j->source, j->name, j->arch, &opt, j->with_define ? 1 : 0, false, &j->out, j->err,
                          sizeof j->err);
}

/* Packs the parts' CUBINs into out->image (runtime/parts_image.h) and their logs into out->log. */
static bool pack_parts(part_job *jobs, int n, cuda_compiled *out, char *err, size_t errlen) {
    const void *part[CUDA_MAX_PARTS];
    size_t part_size[CUDA_MAX_PARTS], log_len = 1;
    for (int i = 0; i < n; i++) {
        part[i] = jobs[i].out.image, part_size[i] = jobs[i].out.image_size;
        log_len += jobs[i].out.log ? strlen(jobs[i].out.log) : 0;
    }
    out->image = parts_image_pack(part, part_size, n, &out->image_size);
    out->log = malloc(log_len);
    if (!out->image || !out->log) {
        free(out->image);
        free(out->log);
        out->image = NULL, out->log = NULL, out->image_size = 0;
        snprintf(err, errlen, "out of memory");
        return false;
    }
    out->log[0] = 0;
    for (int i = 0; i < n; i++)
        if (jobs[i].out.log) strcat(out->log, jobs[i].out.log);
    return true;
}

bool cuda_compile_kernel(const ir_kernel *k, const char *arch, const kernel_cache *cache, const nvrtc_lib *lib,
                         bool split_entries, cuda_compiled *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!cuda_plan_make(k, arch, &out->plan, err, errlen)) return false;
    out->source = cuda_emit_kernel_string(k, &out->plan, false, err, errlen);
    if (!out->source) return false;
    const char *entries[CUDA_MAX_PARTS];
    int n_parts = split_entries ? cuda_plan_parts(&out->plan, entries) : 1;
    char target[64];
    snprintf(target, sizeof target, "cuda:%s%s", arch, n_parts > 1 ? "+parts" : "");
    /* the source is part of the key, so a changed generator never reuses a stale CUBIN */
    if (!kernel_cache_key_for(k, target, out->source, &out->key, err, errlen)) goto fail;
    if (cache) {
        bool corrupt = false;
        if (kernel_cache_load(cache, &out->key, &out->image, &out->image_size, &corrupt)) {
            const void *part[CUDA_MAX_PARTS];
            size_t part_size[CUDA_MAX_PARTS];
            if (cuda_image_parts(out->image, out->image_size, part, part_size) == n_parts) {
                out->from_cache = true;
                return true;
            }
            /* checksummed but not what this key should hold: compile it again */
            free(out->image);
            out->image = NULL;
            out->image_size = 0;
        }
    }
    if (!lib) {
        snprintf(err, errlen, "kernel '%s' is not in the kernel cache and NVRTC is not loaded", k->name);
        goto fail;
    }
    part_job jobs[CUDA_MAX_PARTS];
    memset(jobs, 0, sizeof jobs);
    char name[160];
    snprintf(name, sizeof name, "%s.cu", k->name);
    for (int i = 0; i < n_parts; i++) {
        jobs[i].lib = lib, jobs[i].source = out->source, jobs[i].name = name, jobs[i].arch = arch;
        jobs[i].with_define = n_parts > 1;
        snprintf(jobs[i].define, sizeof jobs[i].define, "-DATTNC_PART=%d", i);
    }
    /* NVRTC compiles independent programs concurrently */
    attnc_run_concurrently(compile_part, jobs, sizeof jobs[0], n_parts);
    bool ok = true;
    for (int i = 0; i < n_parts && ok; i++) {
        if (!jobs[i].ok) {
            snprintf(err, errlen, "%s", jobs[i].err);
            ok = false;
        } else if (jobs[i].out.is_ptx) {
            snprintf(err, errlen, "NVRTC %d.%d cannot produce a CUBIN (nvrtcGetCUBIN missing); use CUDA 11.2 or newer",
                     lib->major, lib->minor);
            ok = false;
        }
    }
    if (ok && n_parts == 1) {
        out->image = jobs[0].out.image, out->image_size = jobs[0].out.image_size, out->log = jobs[0].out.log;
        jobs[0].out.image = NULL, jobs[0].out.log = NULL;
    } else if (ok) {
        ok = pack_parts(jobs, n_parts, out, err, errlen);
    }
    for (int i = 0; i < n_parts; i++) nvrtc_output_free(&jobs[i].out);
    if (!ok) goto fail;
    if (cache) {
        char store_err[512];
        /* a cache that cannot be written only costs the next run a compile */
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
