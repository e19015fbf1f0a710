/* Emit + compile through the cache; ptxas report parsing. */
#include "codegen/cuda/cuda_compile.h"
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "codegen/cuda/cuda_emit.h"

/* ---------------------------------------------------------------- parts image */

/* A module compiled as one program per entry point is kept as one image: the magic, the
 * part count and each part's size (u64, little-endian as written by this host), then the
 * CUBINs, each at an offset rounded up to 8 bytes. A single-program module is the CUBIN
 * itself, so `attnc build` output and old cache entries stay plain CUBINs. */
static const char PARTS_MAGIC[8] = {'A', 'T', 'T', 'N', 'C', 'P', 'R', 'T'};
enum { PARTS_HEADER = 8 + 8 + 8 * CUDA_MAX_PARTS };

static size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

int cuda_image_parts(const void *image, size_t size, const void *part[CUDA_MAX_PARTS], size_t part_size[CUDA_MAX_PARTS]) {
    const unsigned char *b = image;
    if (!image || size < sizeof PARTS_MAGIC || memcmp(b, PARTS_MAGIC, sizeof PARTS_MAGIC) != 0) {
        part[0] = image, part_size[0] = size;
        return image && size ? 1 : 0;
    }
    if (size < PARTS_HEADER) return 0;
    uint32_t n;
    memcpy(&n, b + 8, 4);
    if (n < 1 || n > CUDA_MAX_PARTS) return 0;
    size_t off = PARTS_HEADER;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t sz;
        memcpy(&sz, b + 16 + 8 * i, 8);
        if (sz == 0 || sz > size || off > size - sz) return 0;
        part[i] = b + off, part_size[i] = (size_t)sz;
        off = align8(off + (size_t)sz);
    }
    return (int)n;
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

static void *compile_part(void *arg) {
    part_job *j = arg;
    const char *opt = j->define;
    j->ok = nvrtc_compile(j->lib, j->source, j->name, j->arch, &opt, j->with_define ? 1 : 0, false, &j->out, j->err,
                          sizeof j->err);
    return NULL;
}

/* Runs the jobs, all but the first on threads of their own (NVRTC compiles independent
 * programs concurrently); a thread that cannot be started runs its job here instead. */
static void compile_parts(part_job *jobs, int n) {
    pthread_t th[CUDA_MAX_PARTS];
    bool started[CUDA_MAX_PARTS] = {false};
    for (int i = 1; i < n; i++) started[i] = pthread_create(&th[i], NULL, compile_part, &jobs[i]) == 0;
    compile_part(&jobs[0]);
    for (int i = 1; i < n; i++) {
        if (started[i]) pthread_join(th[i], NULL);
        else compile_part(&jobs[i]);
    }
}

/* Packs the parts' CUBINs into out->image (the image format above) and their logs into out->log. */
static bool pack_parts(part_job *jobs, int n, cuda_compiled *out, char *err, size_t errlen) {
    size_t total = PARTS_HEADER, log_len = 1;
    for (int i = 0; i < n; i++) {
        total = align8(total) + jobs[i].out.image_size;
        log_len += jobs[i].out.log ? strlen(jobs[i].out.log) : 0;
    }
    unsigned char *img = calloc(1, total);
    char *log = malloc(log_len);
    if (!img || !log) {
        free(img);
        free(log);
        snprintf(err, errlen, "out of memory");
        return false;
    }
    memcpy(img, PARTS_MAGIC, sizeof PARTS_MAGIC);
    uint32_t n32 = (uint32_t)n;
    memcpy(img + 8, &n32, 4);
    size_t off = PARTS_HEADER;
    log[0] = 0;
    for (int i = 0; i < n; i++) {
        uint64_t sz = jobs[i].out.image_size;
        memcpy(img + 16 + 8 * i, &sz, 8);
        off = align8(off);
        memcpy(img + off, jobs[i].out.image, jobs[i].out.image_size);
        off += jobs[i].out.image_size;
        if (jobs[i].out.log) strcat(log, jobs[i].out.log);
    }
    out->image = img;
    out->image_size = total;
    out->log = log;
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
    compile_parts(jobs, n_parts);
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
