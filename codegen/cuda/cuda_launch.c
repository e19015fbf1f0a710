/* Host-side launch of the CUDA backend's kernels. */
#include "codegen/cuda/cuda_launch.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "codegen/cuda/cuda_compile.h"
#include "ir/signature.h"
#include "runtime/cuda_driver.h"
#include "runtime/kernel_cache.h"
#include "runtime/nvrtc.h"
#include "runtime/tensor_access.h"

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

bool cuda_pick_arch(const char *requested, int cc_major, int cc_minor, char *out, size_t outlen, char *err, size_t errlen) {
    int dev = cc_major * 10 + cc_minor;
    if (!requested || !*requested || strcmp(requested, "native") == 0 || strcmp(requested, "auto") == 0) {
        snprintf(out, outlen, "sm_%d%s", dev, dev == 90 ? "a" : "");
        return true;
    }
    int cc;
    bool specific;
    if (!nvrtc_parse_arch(requested, &cc, &specific)) {
        snprintf(err, errlen, "bad CUDA architecture '%s'; expected sm_XX or sm_XXa (e.g. sm_80, sm_90a) or native",
                 requested);
        return false;
    }
    /* a CUBIN runs on the same major version with an equal or higher minor; 'a' only on its own */
    bool runs = specific ? cc == dev : (cc / 10 == cc_major && cc % 10 <= cc_minor);
    if (!runs) {
        snprintf(err, errlen, "a CUBIN for %s cannot run on this GPU (compute capability %d.%d); use --target cuda:sm_%d%s "
                 "or cuda:native", requested, cc_major, cc_minor, dev, dev == 90 ? "a" : "");
        return false;
    }
    snprintf(out, outlen, "%s", requested);
    return true;
}

static bool fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool fail(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return false;
}

static bool check_cp_async_view(const char *name, uint64_t ptr, const int64_t *st, int width, char *err, size_t errlen) {
    if (!ptr) return fail(err, errlen, "tensor '%s' is missing (null device pointer)", name);
    if (ptr % 16) return fail(err, errlen, "tensor '%s': device pointer 0x%llx is not 16-byte aligned; the tensor-core "
                              "kernels load it with 16-byte cp.async", name, (unsigned long long)ptr);
    if (st[3] != 1) return fail(err, errlen, "tensor '%s': the head-dim stride is %lld; the tensor-core kernels need it to "
                                "be 1 (contiguous rows)", name, (long long)st[3]);
    for (int d = 0; d < 3; d++)
        if (st[d] % 8) return fail(err, errlen, "tensor '%s': stride %d is %lld elements; the tensor-core kernels need "
                                   "every row stride to be a multiple of 8 elements (16 bytes)", name, d, (long long)st[d]);
    if (width % 8) return fail(err, errlen, "tensor '%s': head dim %d is not a multiple of 8", name, width);
    return true;
}

bool cuda_validate_args(const ir_kernel *k, const cuda_plan *p, const cuda_args_fixed *a, char *err, size_t errlen) {
    if (a->batch < 0 || a->seq_q < 0 || a->seq_k < 0)
        return fail(err, errlen, "negative run size (batch %lld, seq_q %lld, seq_k %lld)", (long long)a->batch,
                    (long long)a->seq_q, (long long)a->seq_k);
    /* sequence indices are 32-bit inside the kernels (offsets are 64-bit) */
    if (a->seq_q * (p->pack > 0 ? p->pack : 1) > INT32_MAX - 1024 || a->seq_k > INT32_MAX - 1024)
        return fail(err, errlen, "sequence too long for the CUDA kernels (seq_q %lld, seq_k %lld; the limit is 2^31 - 1024 rows)",
                    (long long)a->seq_q, (long long)a->seq_k);
    if (a->batch * k->heads_q > 65535)
        return fail(err, errlen, "batch * heads_q = %lld exceeds the CUDA grid limit of 65535", (long long)(a->batch * k->heads_q));
    if (a->n_splits < 1 || a->n_splits > 65535) return fail(err, errlen, "bad split count %lld", (long long)a->n_splits);
    if (!a->o) return fail(err, errlen, "tensor 'o' is missing (null device pointer)");
    if (!a->q || !a->k || (!k->v_in_k && k->family == IR_SOFTMAX && !a->v))
        return fail(err, errlen, "tensor '%s' is missing (null device pointer)", !a->q ? "q" : !a->k ? "k" : "v");
    if (a->lse % 4) return fail(err, errlen, "tensor 'lse': device pointer not 4-byte aligned");
    if (a->state_in % 4 || a->state_out % 4 || a->norm_in % 4 || a->norm_out % 4)
        return fail(err, errlen, "tensor '%s': device pointer not 4-byte aligned (f32 state)",
                    a->state_in % 4 ? "state_in" : a->state_out % 4 ? "state_out" : a->norm_in % 4 ? "norm_in" : "norm_out");
    if (a->n_splits > 1 && (!a->ws_o || !a->ws_lse)) return fail(err, errlen, "split-KV launch without its workspace");
    if (k->rope.layout != IR_ROPE_NONE && k->rope.explicit_positions && !a->pos)
        return fail(err, errlen, "tensor 'positions' is missing (null device pointer)");
    if (p->kind == CUDA_KIND_MMA) {
        if (!check_cp_async_view("q", a->q, a->q_st, k->d_qk, err, errlen)) return false;
        if (!check_cp_async_view("k", a->k, a->k_st, k->d_qk, err, errlen)) return false;
        if (!k->v_in_k && !check_cp_async_view("v", a->v, a->v_st, k->d_v, err, errlen)) return false;
    }
    int esz = k->dtype == IR_F32 ? 4 : 2;
    if (a->o % (uint64_t)esz) return fail(err, errlen, "tensor 'o': device pointer not %d-byte aligned", esz);
    return true;
}

size_t cuda_workspace_bytes(const ir_kernel *k, const cuda_plan *p, int64_t batch, int64_t seq_q, int n_splits) {
    if (!p->splitkv || n_splits <= 1 || p->kind == CUDA_KIND_RECUR) return 0;
    return (size_t)n_splits * (size_t)batch * (size_t)k->heads_q * (size_t)seq_q * ((size_t)k->d_v + 1) * 4;
}

/* ---------------------------------------------------------------- host launch */

typedef struct dev_buf {
    cu_deviceptr ptr;
    size_t bytes;
} dev_buf;

/* Gathers a strided host view into a contiguous buffer of the same dtype, or scatters a
 * contiguous buffer of dtype `contig_dtype` back into the view, converting when the view is
 * wider (sig_check lets outputs be f64 views). */
static void copy_view(const attnc_tensor *t, void *contig, attnc_dtype contig_dtype, bool to_view) {
    int64_t st[ATTNC_MAX_DIMS], idx[ATTNC_MAX_DIMS] = {0};
    tensor_strides(t, st);
    int esz = attnc_dtype_size(t->dtype);
    int64_t n = tensor_count(t);
    unsigned char *c = contig, *base = t->data;
    attnc_tensor flat = {t->name, contig_dtype, 1, {n}, {1}, contig};
    for (int64_t e = 0; e < n; e++) {
        int64_t off = 0;
        for (int d = 0; d < t->ndim; d++) off += idx[d] * st[d];
        if (!to_view) memcpy(c + e * esz, base + off * esz, (size_t)esz);
        else if (contig_dtype == t->dtype) memcpy(base + off * esz, c + e * esz, (size_t)esz);
        else tensor_store((attnc_tensor *)t, off, tensor_load(&flat, e));
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
}

static void contiguous_strides(const sig_tensor *s, int64_t *st) {
    int64_t acc = 1;
    for (int d = 3; d >= 0; d--) st[d] = 0;
    for (int d = s->ndim - 1; d >= 0; d--) {
        st[d] = acc;
        acc *= s->shape[d] > 0 ? s->shape[d] : 1;
    }
}

bool cuda_launch_host(const ir_kernel *k, const char *arch, int64_t batch, int64_t seq_q, int64_t seq_k,
                      attnc_tensor *tensors, int n_tensors, cuda_launch_info *info, char *err, size_t errlen) {
    cuda_launch_info dummy;
    if (!info) info = &dummy;
    memset(info, 0, sizeof *info);
    sig_tensor sig[SIG_MAX_TENSORS];
    int ns = ir_signature(k, batch, seq_q, seq_k, sig);
    if (!sig_check(sig, ns, tensors, n_tensors, err, errlen)) return false;
    if (k->family == IR_RECURRENCE && seq_q != seq_k)
        return fail(err, errlen, "recurrences need seq_q == seq_k (got %lld and %lld)", (long long)seq_q, (long long)seq_k);

    cuda_driver drv;
    if (!cuda_driver_open(&drv, err, errlen)) return false;
    bool ok = false;
    nvrtc_lib lib;
    bool have_lib = false;
    cuda_compiled comp;
    memset(&comp, 0, sizeof comp);
    void *module = NULL, *fwd = NULL, *merge = NULL;
    dev_buf bufs[SIG_MAX_TENSORS + 2];
    memset(bufs, 0, sizeof bufs);
    void *host_tmp = NULL;

    if (!cuda_driver_open_device(&drv, -1, err, errlen)) goto out;
    if (!cuda_pick_arch(arch, drv.cc_major, drv.cc_minor, info->arch, sizeof info->arch, err, errlen)) goto out;

    /* compile through the cache; NVRTC is only needed on a miss */
    double t0 = now_ms();
    kernel_cache cache;
    char cache_err[512];
    bool have_cache = kernel_cache_open(&cache, NULL, cache_err, sizeof cache_err);
    if (!cuda_compile_kernel(k, info->arch, have_cache ? &cache : NULL, NULL, &comp, err, errlen)) {
        if (!nvrtc_open(&lib, err, errlen)) goto out;
        have_lib = true;
        if (!cuda_compile_kernel(k, info->arch, have_cache ? &cache : NULL, &lib, &comp, err, errlen)) goto out;
    }
    info->from_cache = comp.from_cache;
    const cuda_plan *p = &comp.plan;
    int rc;
    if ((rc = drv.module_load_data(&module, comp.image))) {
        cuda_driver_fail(&drv, rc, "cuModuleLoadData", err, errlen);
        goto out;
    }
    /* recurrences: seq <= 1 (or the step form) launches the step kernel */
    if ((rc = drv.module_get_function(&fwd, module, cuda_plan_entry(p, seq_q)))) {
        cuda_driver_fail(&drv, rc, "cuModuleGetFunction", err, errlen);
        goto out;
    }
    if (p->splitkv && p->kind != CUDA_KIND_RECUR && (rc = drv.module_get_function(&merge, module, p->merge_name))) {
        cuda_driver_fail(&drv, rc, "cuModuleGetFunction (merge)", err, errlen);
        goto out;
    }
    info->compile_ms = now_ms() - t0;
    if (p->smem_bytes > drv.smem_optin) {
        fail(err, errlen, "kernel '%s' needs %d bytes of shared memory per block; %s allows %d", k->name, p->smem_bytes,
             drv.name, drv.smem_optin);
        goto out;
    }
    cuda_grid g = cuda_plan_fwd_grid(p, k, batch, seq_q, 1);   /* the entry's block size and smem */
    if (g.smem > 48 * 1024 &&
        (rc = drv.func_set_attribute(fwd, CUDRV_FUNC_ATTR_MAX_DYNAMIC_SHARED, (int)g.smem))) {
        cuda_driver_fail(&drv, rc, "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)", err, errlen);
        goto out;
    }
    int regs = 0;
    drv.func_get_attribute(&regs, CUDRV_FUNC_ATTR_NUM_REGS, fwd);
    if (regs * (int)g.threads > 65536) {
        fail(err, errlen, "kernel '%s' uses %d registers x %u threads, more than a multiprocessor holds", k->name, regs,
             g.threads);
        goto out;
    }

    /* uploads: every tensor contiguous on the device */
    cuda_args_fixed a;
    memset(&a, 0, sizeof a);
    a.batch = batch, a.seq_q = seq_q, a.seq_k = seq_k;
    uint64_t in_ptr[8] = {0};
    int64_t in_st[8][4];
    memset(in_st, 0, sizeof in_st);
    int alias[SIG_MAX_TENSORS];   /* recurrences in place: state_out (norm_out) -> state_in's (norm_in's) buffer */
    for (int i = 0; i < ns; i++) alias[i] = -1;
    for (int i = 0; i < ns; i++) {
        const char *src = !strcmp(sig[i].name, "state_out") ? "state_in" : !strcmp(sig[i].name, "norm_out") ? "norm_in" : NULL;
        const attnc_tensor *o = src ? sig_find(tensors, n_tensors, sig[i].name) : NULL;
        for (int j = 0; o && j < ns; j++) {
            const attnc_tensor *in = sig_find(tensors, n_tensors, sig[j].name);
            int64_t so[ATTNC_MAX_DIMS], si[ATTNC_MAX_DIMS];
            if (!in || strcmp(sig[j].name, src) != 0 || in->data != o->data || in->dtype != o->dtype) continue;
            tensor_strides(o, so);
            tensor_strides(in, si);
            if (!memcmp(so, si, sizeof so)) alias[i] = j;
        }
    }
    for (int i = 0; i < ns; i++) {
        const attnc_tensor *t = sig_find(tensors, n_tensors, sig[i].name);
        if (!t) continue;   /* optional and absent */
        if (alias[i] >= 0) {
            /* the kernel updates the state in place (each element is read before it is written,
               by the thread that writes it); the download below then reads the shared buffer */
            int64_t st[4];
            contiguous_strides(&sig[i], st);
            if (!strcmp(sig[i].name, "state_out")) a.state_out = bufs[alias[i]].ptr, memcpy(a.sout_st, st, sizeof st);
            else a.norm_out = bufs[alias[i]].ptr, memcpy(a.nout_st, st, sizeof st);
            continue;
        }
        int64_t n = tensor_count(t);
        /* the device holds the kernel's dtype (the signature's), whatever the view's */
        size_t bytes = (size_t)(n > 0 ? n : 0) * (size_t)attnc_dtype_size(sig[i].dtype);
        bufs[i].bytes = bytes;
        if ((rc = drv.mem_alloc(&bufs[i].ptr, bytes ? bytes : 16))) {
            cuda_driver_fail(&drv, rc, "cuMemAlloc", err, errlen);
            goto out;
        }
        if (bytes) {
            free(host_tmp);
            host_tmp = malloc(bytes);
            if (!host_tmp) { fail(err, errlen, "out of host memory"); goto out; }
            if (sig[i].role == SIG_IN) {
                copy_view(t, host_tmp, sig[i].dtype, false);
                if ((rc = drv.memcpy_htod(bufs[i].ptr, host_tmp, bytes))) {
                    cuda_driver_fail(&drv, rc, "cuMemcpyHtoD", err, errlen);
                    goto out;
                }
            } else if ((rc = drv.memset_d8(bufs[i].ptr, 0, bytes))) {
                cuda_driver_fail(&drv, rc, "cuMemsetD8", err, errlen);
                goto out;
            }
        }
        int64_t st[4];
        contiguous_strides(&sig[i], st);
        const char *nm = sig[i].name;
        uint64_t d = bufs[i].ptr;
        if (!strcmp(nm, "q")) a.q = d, memcpy(a.q_st, st, sizeof st);
        else if (!strcmp(nm, "k")) a.k = d, memcpy(a.k_st, st, sizeof st);
        else if (!strcmp(nm, "v")) a.v = d, memcpy(a.v_st, st, sizeof st);
        else if (!strcmp(nm, "o")) a.o = d, memcpy(a.o_st, st, sizeof st);
        else if (!strcmp(nm, "lse")) a.lse = d, memcpy(a.lse_st, st, sizeof st);
        else if (!strcmp(nm, "positions")) a.pos = d, memcpy(a.pos_st, st, sizeof st);
        else if (!strcmp(nm, "state_in")) a.state_in = d, memcpy(a.sin_st, st, sizeof st);
        else if (!strcmp(nm, "state_out")) a.state_out = d, memcpy(a.sout_st, st, sizeof st);
        else if (!strcmp(nm, "norm_in")) a.norm_in = d, memcpy(a.nin_st, st, sizeof st);
        else if (!strcmp(nm, "norm_out")) a.norm_out = d, memcpy(a.nout_st, st, sizeof st);
        else
            for (int j = 0; j < k->n_inputs && j < 8; j++)
                if (!strcmp(nm, k->inputs[j].name)) in_ptr[j] = d, memcpy(in_st[j], st, sizeof st);
    }
    if (k->n_inputs > 8) { fail(err, errlen, "kernel '%s' declares %d inputs; the CUDA backend takes at most 8", k->name, k->n_inputs); goto out; }

    int splits = cuda_plan_num_splits(p, k, batch, seq_q, seq_k, drv.sm_count);
    a.n_splits = splits;
    info->n_splits = splits;
    dev_buf *ws = &bufs[SIG_MAX_TENSORS];
    if (splits > 1) {
        size_t rows = (size_t)splits * (size_t)batch * (size_t)k->heads_q * (size_t)seq_q;
        ws[0].bytes = rows * (size_t)k->d_v * 4;
        ws[1].bytes = rows * 4;   /* together cuda_workspace_bytes */
        for (int i = 0; i < 2; i++)
            if ((rc = drv.mem_alloc(&ws[i].ptr, ws[i].bytes ? ws[i].bytes : 16))) {
                cuda_driver_fail(&drv, rc, "cuMemAlloc (split-KV workspace)", err, errlen);
                goto out;
            }
        a.ws_o = ws[0].ptr, a.ws_lse = ws[1].ptr;
    }
    if (!cuda_validate_args(k, p, &a, err, errlen)) goto out;

    double freq[1024];
    int n_freq = cuda_args_n_freq(k);
    memset(freq, 0, sizeof freq);
    if (k->rope.layout != IR_ROPE_NONE && k->rope.planned && n_freq <= 1024) ir_rope_inv_freq_at(&k->rope, seq_k, freq);
    size_t blob_size = cuda_args_size(k);
    unsigned char *blob = calloc(1, blob_size);
    if (!blob) { fail(err, errlen, "out of host memory"); goto out; }
    cuda_args_pack(k, &a, in_ptr, (const int64_t(*)[4])in_st, freq, blob);

    double t1 = now_ms();
    g = cuda_plan_fwd_grid(p, k, batch, seq_q, splits);
    void *params[1] = {blob};
    if (g.gx && g.gy && g.gz) {
        if ((rc = drv.launch_kernel(fwd, g.gx, g.gy, g.gz, g.threads, 1, 1, g.smem, NULL, params, NULL))) {
            free(blob);
            cuda_driver_fail(&drv, rc, "cuLaunchKernel", err, errlen);
            goto out;
        }
        if (splits > 1) {
            cuda_grid mg = cuda_plan_merge_grid(p, k, batch, seq_q);
            if (mg.gx && (rc = drv.launch_kernel(merge, mg.gx, 1, 1, mg.threads, 1, 1, 0, NULL, params, NULL))) {
                free(blob);
                cuda_driver_fail(&drv, rc, "cuLaunchKernel (merge)", err, errlen);
                goto out;
            }
        }
    }
    free(blob);
    if ((rc = drv.ctx_synchronize())) {
        cuda_driver_fail(&drv, rc, "kernel execution (cuCtxSynchronize)", err, errlen);
        goto out;
    }
    info->kernel_ms = now_ms() - t1;

    for (int i = 0; i < ns; i++) {
        attnc_tensor *t = (attnc_tensor *)sig_find(tensors, n_tensors, sig[i].name);
        const dev_buf *b = &bufs[alias[i] >= 0 ? alias[i] : i];
        if (!t || sig[i].role != SIG_OUT || !b->bytes) continue;
        free(host_tmp);
        host_tmp = malloc(b->bytes);
        if (!host_tmp) { fail(err, errlen, "out of host memory"); goto out; }
        if ((rc = drv.memcpy_dtoh(host_tmp, b->ptr, b->bytes))) {
            cuda_driver_fail(&drv, rc, "cuMemcpyDtoH", err, errlen);
            goto out;
        }
        copy_view(t, host_tmp, sig[i].dtype, true);
    }
    ok = true;
out:
    free(host_tmp);
    for (int i = 0; i < SIG_MAX_TENSORS + 2; i++)
        if (bufs[i].ptr) drv.mem_free(bufs[i].ptr);
    if (module) drv.module_unload(module);
    cuda_compiled_free(&comp);
    if (have_lib) nvrtc_close(&lib);
    cuda_driver_close(&drv);
    return ok;
}
