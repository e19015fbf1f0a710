/* Compile-once, launch-many CUDA kernels (see cuda_kernel.h). */
#include "codegen/cuda/cuda_kernel.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "codegen/cuda/cuda_args.h"
#include "codegen/cuda/cuda_compile.h"
#include "codegen/cuda/cuda_launch.h"
#include "ir/signature.h"
#include "runtime/kernel_cache.h"
#include "runtime/nvrtc.h"
#include "runtime/tensor_access.h"

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

/* Entry function by name, from whichever module holds it, with its dynamic shared memory
 * opted in when over 48 KB. */
static bool get_entry(cuda_kernel *h, const char *name, int smem, void **fn, char *err, size_t errlen) {
    const cuda_driver *drv = &h->drv;
    int rc = -1;
    for (int i = 0; i < h->n_modules && rc; i++) rc = drv->module_get_function(fn, h->modules[i], name);
    if (rc) return cuda_driver_fail(drv, rc, "cuModuleGetFunction", err, errlen);
    if (smem > drv->smem_optin)
        return cuda_errorf(err, errlen, "kernel '%s' needs %d bytes of shared memory per block; %s allows %d", h->k->name, smem,
                    drv->name, drv->smem_optin);
    if (smem > 48 * 1024 && (rc = drv->func_set_attribute(*fn, CUDRV_FUNC_ATTR_MAX_DYNAMIC_SHARED, smem)))
        return cuda_driver_fail(drv, rc, "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)", err, errlen);
    return true;
}

static bool load_body(cuda_kernel *h, const char *arch, int device, const char *cache_dir, char *err, size_t errlen) {
    const ir_kernel *k = h->k;
    if (!cuda_driver_open(&h->drv, err, errlen)) return false;
    if (!cuda_driver_open_device(&h->drv, device, err, errlen)) return false;
    if (!cuda_pick_arch(arch, h->drv.cc_major, h->drv.cc_minor, h->arch, sizeof h->arch, err, errlen)) return false;

    double t0 = now_ms();
    kernel_cache cache;
    char cache_err[512];
    bool have_cache = !(cache_dir && !*cache_dir) && kernel_cache_open(&cache, cache_dir, cache_err, sizeof cache_err);
    cuda_compiled comp;
    memset(&comp, 0, sizeof comp);
    /* NVRTC is loaded only on a cache miss */
    bool ok = have_cache && cuda_compile_kernel(k, h->arch, &cache, NULL, true, &comp, err, errlen);
    if (!ok) {
        nvrtc_lib lib;
        if (!nvrtc_open(&lib, err, errlen)) return false;
        ok = cuda_compile_kernel(k, h->arch, have_cache ? &cache : NULL, &lib, true, &comp, err, errlen);
        nvrtc_close(&lib);
        if (!ok) return false;
    }
    h->plan = comp.plan;
    h->from_cache = comp.from_cache;
    const void *part[CUDA_MAX_PARTS];
    size_t part_size[CUDA_MAX_PARTS];
    int n_parts = cuda_image_parts(comp.image, comp.image_size, part, part_size), rc = 0;
    while (h->n_modules < n_parts && !(rc = h->drv.module_load_data(&h->modules[h->n_modules], part[h->n_modules])))
        h->n_modules++;
    cuda_compiled_free(&comp);
    if (n_parts == 0) return cuda_errorf(err, errlen, "kernel '%s': the compiled image is malformed", k->name);
    if (rc) return cuda_driver_fail(&h->drv, rc, "cuModuleLoadData", err, errlen);
    const cuda_plan *p = &h->plan;
    cuda_grid g = cuda_plan_fwd_grid(p, k, 1, 2, 1);
    if (p->kind == CUDA_KIND_RECUR && cuda_plan_uses_step(p, 2)) g.smem = (unsigned)p->step_smem;
    if (!get_entry(h, p->fwd_name, (int)g.smem, &h->fwd, err, errlen)) return false;
    h->step = h->fwd;
    if (p->kind == CUDA_KIND_RECUR && p->step_name[0] && strcmp(p->step_name, p->fwd_name) != 0 &&
        !get_entry(h, p->step_name, p->step_smem, &h->step, err, errlen))
        return false;
    if (p->splitkv && p->kind != CUDA_KIND_RECUR && !get_entry(h, p->merge_name, 0, &h->merge, err, errlen)) return false;
    h->drv.func_get_attribute(&h->regs, CUDRV_FUNC_ATTR_NUM_REGS, h->fwd);
    if (h->regs * p->threads > 65536)
        return cuda_errorf(err, errlen, "kernel '%s' uses %d registers x %d threads, more than a multiprocessor holds", k->name,
                    h->regs, p->threads);
    h->compile_ms = now_ms() - t0;
    return cuda_driver_release_current(&h->drv, err, errlen);
}

bool cuda_kernel_load(cuda_kernel *h, const ir_kernel *k, const char *arch, int device, const char *cache_dir,
                      char *err, size_t errlen) {
    memset(h, 0, sizeof *h);
    h->k = k;
    if (load_body(h, arch, device, cache_dir, err, errlen)) return true;
    cuda_kernel_unload(h);
    return false;
}

void cuda_kernel_unload(cuda_kernel *h) {
    if (h->n_modules) {
        char err[256];
        if (cuda_driver_push(&h->drv, err, sizeof err)) {
            for (int i = 0; i < h->n_modules; i++) h->drv.module_unload(h->modules[i]);
            cuda_driver_pop(&h->drv);
        }
    }
    if (h->drv.handle) cuda_driver_close(&h->drv);
    memset(h, 0, sizeof *h);
}

/* ---------------------------------------------------------------- launch */

static void view_strides(const attnc_tensor *t, int64_t st[4]) {
    int64_t s[ATTNC_MAX_DIMS];
    tensor_strides(t, s);
    for (int d = 0; d < 4; d++) st[d] = d < t->ndim ? s[d] : 0;
}

/* Fills the argument block's pointers and strides from views already checked against sig. */
static bool bind_views(const ir_kernel *k, const sig_tensor *sig, int ns, const attnc_tensor *views, int n_views,
                       cuda_args_fixed *a, uint64_t in_ptr[8], int64_t in_st[8][4], char *err, size_t errlen) {
    for (int i = 0; i < ns; i++) {
        const attnc_tensor *t = sig_find(views, n_views, sig[i].name);
        if (!t) continue;   /* optional and absent */
        if (t->dtype != sig[i].dtype)
            return cuda_errorf(err, errlen, "tensor '%s': device views must have the kernel's dtype (%s), got %s", sig[i].name,
                        attnc_dtype_name(sig[i].dtype), attnc_dtype_name(t->dtype));
        int64_t st[4];
        view_strides(t, st);
        for (int d = 0; d < t->ndim; d++)
            if (st[d] < 0)
                return cuda_errorf(err, errlen, "tensor '%s': negative stride %lld in dim %d", sig[i].name, (long long)st[d], d);
        uint64_t ptr = (uint64_t)(uintptr_t)t->data;
        const char *nm = sig[i].name;
        if (!strcmp(nm, "q")) a->q = ptr, memcpy(a->q_st, st, sizeof st);
        else if (!strcmp(nm, "k")) a->k = ptr, memcpy(a->k_st, st, sizeof st);
        else if (!strcmp(nm, "v")) a->v = ptr, memcpy(a->v_st, st, sizeof st);
        else if (!strcmp(nm, "o")) a->o = ptr, memcpy(a->o_st, st, sizeof st);
        else if (!strcmp(nm, "lse")) a->lse = ptr, memcpy(a->lse_st, st, sizeof st);
        else if (!strcmp(nm, "positions")) a->pos = ptr, memcpy(a->pos_st, st, sizeof st);
        else if (!strcmp(nm, "state_in")) a->state_in = ptr, memcpy(a->sin_st, st, sizeof st);
        else if (!strcmp(nm, "state_out")) a->state_out = ptr, memcpy(a->sout_st, st, sizeof st);
        else if (!strcmp(nm, "norm_in")) a->norm_in = ptr, memcpy(a->nin_st, st, sizeof st);
        else if (!strcmp(nm, "norm_out")) a->norm_out = ptr, memcpy(a->nout_st, st, sizeof st);
        else
            for (int j = 0; j < k->n_inputs && j < 8; j++)
                if (!strcmp(nm, k->inputs[j].name)) in_ptr[j] = ptr, memcpy(in_st[j], st, sizeof st);
    }
    return true;
}

static bool launch_body(const cuda_kernel *h, int64_t batch, int64_t seq_q, int64_t seq_k, const attnc_tensor *views,
                        int n_views, void *stream, int *n_splits_out, cu_deviceptr ws[2], bool *ws_async, char *err,
                        size_t errlen) {
    const ir_kernel *k = h->k;
    const cuda_plan *p = &h->plan;
    const cuda_driver *drv = &h->drv;
    sig_tensor sig[SIG_MAX_TENSORS];
    int ns = ir_signature(k, batch, seq_q, seq_k, sig);
    if (!sig_check(sig, ns, views, n_views, err, errlen)) return false;
    if (k->family == IR_RECURRENCE && seq_q != seq_k)
        return cuda_errorf(err, errlen, "recurrences need seq_q == seq_k (got %lld and %lld)", (long long)seq_q, (long long)seq_k);
    if (k->n_inputs > 8)
        return cuda_errorf(err, errlen, "kernel '%s' declares %d inputs; the CUDA backend takes at most 8", k->name, k->n_inputs);
    cuda_args_fixed a;
    memset(&a, 0, sizeof a);
    a.batch = batch, a.seq_q = seq_q, a.seq_k = seq_k;
    uint64_t in_ptr[8] = {0};
    int64_t in_st[8][4];
    memset(in_st, 0, sizeof in_st);
    if (!bind_views(k, sig, ns, views, n_views, &a, in_ptr, in_st, err, errlen)) return false;

    int splits = cuda_plan_num_splits(p, k, batch, seq_q, seq_k, drv->sm_count);
    a.n_splits = splits;
    if (n_splits_out) *n_splits_out = splits;
    if (splits > 1) {
        size_t rows = (size_t)splits * (size_t)batch * (size_t)k->heads_q * (size_t)seq_q;
        size_t bytes[2] = {rows * (size_t)k->d_v * 4, rows * 4};   /* together cuda_workspace_bytes */
        *ws_async = drv->mem_alloc_async && drv->mem_free_async;
        for (int i = 0; i < 2; i++) {
            int rc = *ws_async ? drv->mem_alloc_async(&ws[i], bytes[i] ? bytes[i] : 16, stream)
                               : drv->mem_alloc(&ws[i], bytes[i] ? bytes[i] : 16);
            if (rc) {
                ws[i] = 0;
                return cuda_driver_fail(drv, rc, "allocating the split-KV workspace", err, errlen);
            }
        }
        a.ws_o = ws[0], a.ws_lse = ws[1];
    }
    if (!cuda_validate_args(k, p, &a, err, errlen)) return false;

    double freq[1024];
    int n_freq = cuda_args_n_freq(k);
    memset(freq, 0, sizeof freq);
    if (n_freq > 1024) return cuda_errorf(err, errlen, "kernel '%s': %d RoPE frequencies; at most 1024", k->name, n_freq);
    if (k->rope.layout != IR_ROPE_NONE && k->rope.planned) ir_rope_inv_freq_at(&k->rope, seq_k, freq);
    unsigned char *blob = calloc(1, cuda_args_size(k));
    if (!blob) return cuda_errorf(err, errlen, "out of host memory");
    cuda_args_pack(k, &a, in_ptr, (const int64_t(*)[4])in_st, freq, blob);
    void *params[1] = {blob};
    cuda_grid g = cuda_plan_fwd_grid(p, k, batch, seq_q, splits);
    void *entry = p->kind == CUDA_KIND_RECUR && cuda_plan_uses_step(p, seq_q) ? h->step : h->fwd;
    int rc = 0;
    bool ok = true;
    /* the driver copies the parameter block at launch, so blob may go right after */
    if (g.gx && g.gy && g.gz) {
        if ((rc = drv->launch_kernel(entry, g.gx, g.gy, g.gz, g.threads, 1, 1, g.smem, stream, params, NULL)))
            ok = cuda_driver_fail(drv, rc, "cuLaunchKernel", err, errlen);
        cuda_grid mg = cuda_plan_merge_grid(p, k, batch, seq_q);
        if (ok && splits > 1 && mg.gx &&
            (rc = drv->launch_kernel(h->merge, mg.gx, 1, 1, mg.threads, 1, 1, 0, stream, params, NULL)))
            ok = cuda_driver_fail(drv, rc, "cuLaunchKernel (merge)", err, errlen);
    }
    free(blob);
    return ok;
}

bool cuda_kernel_launch(const cuda_kernel *h, int64_t batch, int64_t seq_q, int64_t seq_k, const attnc_tensor *views,
                        int n_views, void *stream, int *n_splits_out, char *err, size_t errlen) {
    if (!h || !h->n_modules) return cuda_errorf(err, errlen, "launch of a CUDA kernel that is not loaded");
    if (!cuda_driver_push(&h->drv, err, errlen)) return false;
    cu_deviceptr ws[2] = {0, 0};
    bool ws_async = false;
    bool ok = launch_body(h, batch, seq_q, seq_k, views, n_views, stream, n_splits_out, ws, &ws_async, err, errlen);
    if (ws[0] || ws[1]) {
        if (ws_async) {
            /* freed in stream order: the memory returns to the pool once the merge has run */
            for (int i = 0; i < 2; i++)
                if (ws[i]) h->drv.mem_free_async(ws[i], stream);
        } else {
            int rc = stream && h->drv.stream_synchronize ? h->drv.stream_synchronize(stream) : h->drv.ctx_synchronize();
            if (rc && ok) ok = cuda_driver_fail(&h->drv, rc, "kernel execution (synchronize)", err, errlen);
            for (int i = 0; i < 2; i++)
                if (ws[i]) h->drv.mem_free(ws[i]);
        }
    }
    cuda_driver_pop(&h->drv);
    return ok;
}
