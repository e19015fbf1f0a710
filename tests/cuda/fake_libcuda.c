/* A stand-in for libcuda.so.1 on machines without a GPU, loaded through
 * ATTNC_CUDA_LIBRARY by test_cuda_launch: "device" memory is host memory, a module load
 * checks for a CUBIN (ELF) image, and a launch records its geometry and argument block and
 * fills the o / lse / state_out allocations with a known byte pattern, so the whole host
 * side of cuda_run (validation, uploads, workspaces, attributes, launches, downloads,
 * conversions) runs for real. It does not execute kernels: numbers come from the simulator
 * tests and, on a GPU, from test_cuda_gpu. Test-only; its state is file-scope. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "codegen/cuda/cuda_args.h"

#define EXPORT __attribute__((visibility("default")))

typedef struct fake_alloc {
    uint64_t ptr;
    size_t bytes;
} fake_alloc;

typedef struct fake_launch {
    char name[128];
    unsigned grid[3], block[3], smem;
    int dyn_smem_attr;
    cuda_args_fixed args;
    uint64_t q_hash;          /* FNV-1a of the q allocation at launch time */
    size_t q_bytes;
} fake_launch;

enum { MAX_ALLOCS = 64, MAX_LAUNCHES = 8 };
static fake_alloc allocs[MAX_ALLOCS];
static int n_allocs, live_allocs, modules_loaded, modules_unloaded;
static fake_launch launches[MAX_LAUNCHES];
static int n_launches;
static char func_names[8][128];
static int func_dyn_smem[8];
static int n_funcs;
static int context_depth;

EXPORT int fake_cuda_launch_count(void) { return n_launches; }
EXPORT const fake_launch *fake_cuda_launch(int i) { return i >= 0 && i < n_launches ? &launches[i] : NULL; }
EXPORT int fake_cuda_live_allocations(void) { return live_allocs; }
EXPORT int fake_cuda_modules(int loaded) { return loaded ? modules_loaded : modules_unloaded; }
EXPORT int fake_cuda_context_depth(void) { return context_depth; }
EXPORT void fake_cuda_reset(void) {
    n_launches = 0;
    n_funcs = 0;
    modules_loaded = modules_unloaded = 0;
}

static int cc(void) {
    const char *e = getenv("FAKE_CUDA_CC");
    return e ? atoi(e) : 90;
}

EXPORT int cuInit(unsigned flags) { return flags == 0 ? 0 : 1; }
EXPORT int cuDriverGetVersion(int *v) { *v = 13000; return 0; }
EXPORT int cuDeviceGetCount(int *n) { *n = 1; return 0; }
EXPORT int cuDeviceGet(int *dev, int ordinal) { *dev = ordinal; return ordinal == 0 ? 0 : 101; }
EXPORT int cuDeviceGetName(char *name, int len, int dev) { (void)dev; snprintf(name, (size_t)len, "fake GPU"); return 0; }
EXPORT int cuDeviceGetAttribute(int *v, int attrib, int dev) {
    (void)dev;
    switch (attrib) {
    case 75: *v = cc() / 10; return 0;
    case 76: *v = cc() % 10; return 0;
    case 16: *v = 132; return 0;
    case 97: *v = cc() >= 90 ? 232448 : 166912; return 0;
    default: *v = 0; return 0;
    }
}
EXPORT int cuDevicePrimaryCtxRetain(void **ctx, int dev) { (void)dev; *ctx = (void *)0x1; return 0; }
EXPORT int cuDevicePrimaryCtxRelease_v2(int dev) { (void)dev; return 0; }
EXPORT int cuCtxPushCurrent_v2(void *ctx) { (void)ctx; context_depth++; return 0; }
EXPORT int cuCtxPopCurrent_v2(void **ctx) { *ctx = (void *)0x1; context_depth--; return 0; }
EXPORT int cuCtxSynchronize(void) { return 0; }
/* A module keeps a copy of its CUBIN's bytes, so a function is found only in the module
 * whose image names it (as with a real driver and one module per compiled part). */
enum { MAX_MODULES = 16 };
static unsigned char *module_image[MAX_MODULES];
static size_t module_size[MAX_MODULES];

static size_t elf64_size(const unsigned char *e) {
    uint64_t shoff;
    uint16_t shentsize, shnum;
    memcpy(&shoff, e + 0x28, 8);
    memcpy(&shentsize, e + 0x3A, 2);
    memcpy(&shnum, e + 0x3C, 2);
    return (size_t)(shoff + (uint64_t)shentsize * shnum);
}

EXPORT int cuModuleLoadData(void **mod, const void *image) {
    if (!image || memcmp(image, "\177ELF", 4) != 0 || ((const unsigned char *)image)[4] != 2) return 200;   /* CUDA_ERROR_INVALID_IMAGE */
    int slot = 0;
    while (slot < MAX_MODULES && module_image[slot]) slot++;
    if (slot == MAX_MODULES) return 2;   /* CUDA_ERROR_OUT_OF_MEMORY */
    size_t size = elf64_size(image);
    if (!(module_image[slot] = malloc(size))) return 2;
    memcpy(module_image[slot], image, size);
    module_size[slot] = size;
    *mod = (void *)(uintptr_t)(slot + 1);
    modules_loaded++;
    return 0;
}
EXPORT int cuModuleUnload(void *mod) {
    int slot = (int)(uintptr_t)mod - 1;
    if (slot < 0 || slot >= MAX_MODULES || !module_image[slot]) return 400;   /* CUDA_ERROR_INVALID_HANDLE */
    free(module_image[slot]);
    module_image[slot] = NULL;
    modules_unloaded++;
    return 0;
}
static bool image_names(int slot, const char *name) {
    size_t n = strlen(name) + 1;   /* with its NUL: the symbol string table entry */
    const unsigned char *b = module_image[slot];
    for (size_t i = 0; i + n <= module_size[slot]; i++)
        if (b[i] == (unsigned char)name[0] && memcmp(b + i, name, n) == 0) return true;
    return false;
}
EXPORT int cuModuleGetFunction(void **fn, void *mod, const char *name) {
    int slot = (int)(uintptr_t)mod - 1;
    if (slot < 0 || slot >= MAX_MODULES || !module_image[slot]) return 400;
    if (!image_names(slot, name)) return 500;   /* CUDA_ERROR_NOT_FOUND */
    if (n_funcs >= 8) return 500;
    snprintf(func_names[n_funcs], sizeof func_names[n_funcs], "%s", name);
    func_dyn_smem[n_funcs] = 48 * 1024;
    *fn = (void *)(uintptr_t)(n_funcs + 1);
    n_funcs++;
    return 0;
}
EXPORT int cuFuncSetAttribute(void *fn, int attrib, int value) {
    int f = (int)(uintptr_t)fn - 1;
    if (f < 0 || f >= n_funcs) return 400;
    if (attrib == 8) {
        if (value > (cc() >= 90 ? 232448 : 166912)) return 1;
        func_dyn_smem[f] = value;
    }
    return 0;
}
EXPORT int cuFuncGetAttribute(int *v, int attrib, void *fn) {
    (void)fn;
    *v = attrib == 4 ? 200 : 0;
    return 0;
}
EXPORT int cuMemAlloc_v2(uint64_t *p, size_t bytes) {
    if (n_allocs >= MAX_ALLOCS || bytes == 0) return 2;
    void *m = aligned_alloc(256, (bytes + 255) / 256 * 256);
    if (!m) return 2;
    memset(m, 0xCD, bytes);
    allocs[n_allocs].ptr = (uint64_t)(uintptr_t)m;
    allocs[n_allocs].bytes = bytes;
    n_allocs++;
    live_allocs++;
    *p = (uint64_t)(uintptr_t)m;
    return 0;
}
EXPORT int cuMemFree_v2(uint64_t p) {
    for (int i = 0; i < n_allocs; i++)
        if (allocs[i].ptr == p) {
            free((void *)(uintptr_t)p);
            allocs[i] = allocs[--n_allocs];
            live_allocs--;
            return 0;
        }
    return 1;
}
static fake_alloc *find(uint64_t p) {
    for (int i = 0; i < n_allocs; i++)
        if (p >= allocs[i].ptr && p < allocs[i].ptr + allocs[i].bytes) return &allocs[i];
    return NULL;
}
EXPORT int cuMemcpyHtoD_v2(uint64_t dst, const void *src, size_t bytes) {
    fake_alloc *a = find(dst);
    if (!a || dst + bytes > a->ptr + a->bytes) return 1;
    memcpy((void *)(uintptr_t)dst, src, bytes);
    return 0;
}
EXPORT int cuMemcpyDtoH_v2(void *dst, uint64_t src, size_t bytes) {
    fake_alloc *a = find(src);
    if (!a || src + bytes > a->ptr + a->bytes) return 1;
    memcpy(dst, (void *)(uintptr_t)src, bytes);
    return 0;
}
EXPORT int cuMemsetD8_v2(uint64_t dst, unsigned char v, size_t n) {
    fake_alloc *a = find(dst);
    if (!a || dst + n > a->ptr + a->bytes) return 1;
    memset((void *)(uintptr_t)dst, v, n);
    return 0;
}

/* The pattern a launch leaves in an output: byte i of the allocation = (i * 7 + 3) & 0x7F
 * (0x7F keeps bf16/f16/f32 values finite). */
static void fill(uint64_t p) {
    fake_alloc *a = p ? find(p) : NULL;
    if (!a) return;
    unsigned char *b = (unsigned char *)(uintptr_t)a->ptr;
    for (size_t i = 0; i < a->bytes; i++) b[i] = (unsigned char)((i * 7 + 3) & 0x7F);
}

EXPORT int cuLaunchKernel(void *fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                          unsigned smem, void *stream, void **params, void **extra) {
    (void)stream;
    int f = (int)(uintptr_t)fn - 1;
    if (f < 0 || f >= n_funcs || !params || extra) return 400;
    if (!gx || !gy || !gz || gy > 65535 || gz > 65535 || bx * by * bz > 1024 || bx * by * bz == 0) return 1;
    if ((int)smem > func_dyn_smem[f]) return 1;   /* what a real launch does without the opt-in */
    if (n_launches >= MAX_LAUNCHES) return 1;
    fake_launch *l = &launches[n_launches++];
    snprintf(l->name, sizeof l->name, "%s", func_names[f]);
    l->grid[0] = gx, l->grid[1] = gy, l->grid[2] = gz;
    l->block[0] = bx, l->block[1] = by, l->block[2] = bz;
    l->smem = smem;
    l->dyn_smem_attr = func_dyn_smem[f];
    memcpy(&l->args, params[0], sizeof l->args);
    /* every pointer in the block must be a live allocation (or 0) */
    const uint64_t *ptrs = &l->args.q;
    for (int i = 0; i < 10; i++)
        if (ptrs[i] && !find(ptrs[i])) return 700;   /* CUDA_ERROR_ILLEGAL_ADDRESS */
    fake_alloc *qa = l->args.q ? find(l->args.q) : NULL;
    l->q_hash = 0xcbf29ce484222325ull;
    l->q_bytes = qa ? qa->bytes : 0;
    for (size_t i = 0; qa && i < qa->bytes; i++) l->q_hash = (l->q_hash ^ ((unsigned char *)(uintptr_t)qa->ptr)[i]) * 0x100000001b3ull;
    if (strstr(l->name, "_merge") || l->args.n_splits <= 1) {
        fill(l->args.o);
        fill(l->args.lse);
        fill(l->args.state_out);
        fill(l->args.norm_out);
    } else {
        fill(l->args.ws_o);
        fill(l->args.ws_lse);
    }
    return 0;
}
EXPORT int cuGetErrorString(int err, const char **s) { *s = err ? "fake failure" : "no error"; return 0; }
EXPORT int cuGetErrorName(int err, const char **s) { *s = err ? "CUDA_ERROR_FAKE" : "CUDA_SUCCESS"; return 0; }
