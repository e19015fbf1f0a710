/* Host-side launch of the CUDA backend's kernels. */
#include "codegen/cuda/cuda_launch.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "codegen/cuda/cuda_compile.h"
#include "codegen/cuda/cuda_kernel.h"
#include "ir/signature.h"
#include "runtime/cuda_driver.h"
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

bool cuda_errorf(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return false;
}

static bool check_cp_async_view(const char *name, uint64_t ptr, const int64_t *st, int width, char *err, size_t errlen) {
    if (!ptr) return cuda_errorf(err, errlen, "tensor '%s' is missing (null device pointer)", name);
    if (ptr % 16) return cuda_errorf(err, errlen, "tensor '%s': device pointer 0x%llx is not 16-byte aligned; the tensor-core "
                              "kernels load it with 16-byte cp.async", name, (unsigned long long)ptr);
    if (st[3] != 1) return cuda_errorf(err, errlen, "tensor '%s': the head-dim stride is %lld; the tensor-core kernels need it to "
                                "be 1 (contiguous rows)", name, (long long)st[3]);
    for (int d = 0; d < 3; d++)
        if (st[d] % 8) return cuda_errorf(err, errlen, "tensor '%s': stride %d is %lld elements; the tensor-core kernels need "
                                   "every row stride to be a multiple of 8 elements (16 bytes)", name, d, (long long)st[d]);
    if (width % 8) return cuda_errorf(err, errlen, "tensor '%s': head dim %d is not a multiple of 8", name, width);
    return true;
}

bool cuda_validate_args(const ir_kernel *k, const cuda_plan *p, const cuda_args_fixed *a, char *err, size_t errlen) {
    if (a->batch < 0 || a->seq_q < 0 || a->seq_k < 0)
        return cuda_errorf(err, errlen, "negative run size (batch %lld, seq_q %lld, seq_k %lld)", (long long)a->batch,
                    (long long)a->seq_q, (long long)a->seq_k);
    /* sequence indices are 32-bit inside the kernels (offsets are 64-bit) */
    if (a->seq_q * (p->pack > 0 ? p->pack : 1) > INT32_MAX - 1024 || a->seq_k > INT32_MAX - 1024)
        return cuda_errorf(err, errlen, "sequence too long for the CUDA kernels (seq_q %lld, seq_k %lld; the limit is 2^31 - 1024 rows)",
                    (long long)a->seq_q, (long long)a->seq_k);
    if (a->batch * k->heads_q > 65535)
        return cuda_errorf(err, errlen, "batch * heads_q = %lld exceeds the CUDA grid limit of 65535", (long long)(a->batch * k->heads_q));
    if (a->n_splits < 1 || a->n_splits > 65535) return cuda_errorf(err, errlen, "bad split count %lld", (long long)a->n_splits);
    if (!a->o) return cuda_errorf(err, errlen, "tensor 'o' is missing (null device pointer)");
    if (!a->q || !a->k || (!k->v_in_k && k->family == IR_SOFTMAX && !a->v))
        return cuda_errorf(err, errlen, "tensor '%s' is missing (null device pointer)", !a->q ? "q" : !a->k ? "k" : "v");
    if (a->lse % 4) return cuda_errorf(err, errlen, "tensor 'lse': device pointer not 4-byte aligned");
    if (a->state_in % 4 || a->state_out % 4 || a->norm_in % 4 || a->norm_out % 4)
        return cuda_errorf(err, errlen, "tensor '%s': device pointer not 4-byte aligned (f32 state)",
                    a->state_in % 4 ? "state_in" : a->state_out % 4 ? "state_out" : a->norm_in % 4 ? "norm_in" : "norm_out");
    if (a->n_splits > 1 && (!a->ws_o || !a->ws_lse)) return cuda_errorf(err, errlen, "split-KV launch without its workspace");
    if (k->rope.layout != IR_ROPE_NONE && k->rope.explicit_positions && !a->pos)
        return cuda_errorf(err, errlen, "tensor 'positions' is missing (null device pointer)");
    if (p->kind == CUDA_KIND_MMA) {
        if (!check_cp_async_view("q", a->q, a->q_st, k->d_qk, err, errlen)) return false;
        if (!check_cp_async_view("k", a->k, a->k_st, k->d_qk, err, errlen)) return false;
        if (!k->v_in_k && !check_cp_async_view("v", a->v, a->v_st, k->d_v, err, errlen)) return false;
    }
    int esz = k->dtype == IR_F32 ? 4 : 2;
    if (a->o % (uint64_t)esz) return cuda_errorf(err, errlen, "tensor 'o': device pointer not %d-byte aligned", esz);
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

/* Uploads every tensor contiguously in the kernel's dtype, launches through a loaded
 * cuda_kernel on the default stream, waits, downloads the outputs. An in-place recurrence
 * (state_out given state_in's memory) shares one device buffer, as it would on the GPU. */
static bool host_body(const cuda_kernel *h, int64_t batch, int64_t seq_q, int64_t seq_k, attnc_tensor *tensors,
                      int n_tensors, const sig_tensor *sig, int ns, dev_buf *bufs, cuda_launch_info *info, char *err,
                      size_t errlen) {
    const cuda_driver *drv = &h->drv;
    int alias[SIG_MAX_TENSORS];
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
    attnc_tensor dev[SIG_MAX_TENSORS];
    int nd = 0;
    int rc;
    for (int i = 0; i < ns; i++) {
        const attnc_tensor *t = sig_find(tensors, n_tensors, sig[i].name);
        if (!t) continue;   /* optional and absent */
        attnc_tensor *d = &dev[nd++];
        memset(d, 0, sizeof *d);
        d->name = sig[i].name, d->dtype = sig[i].dtype, d->ndim = sig[i].ndim;
        memcpy(d->shape, sig[i].shape, sizeof d->shape);   /* strides all 0: contiguous */
        if (alias[i] >= 0) {
            d->data = (void *)(uintptr_t)bufs[alias[i]].ptr;
            continue;
        }
        int64_t n = tensor_count(t);
        size_t bytes = (size_t)(n > 0 ? n : 0) * (size_t)attnc_dtype_size(sig[i].dtype);
        bufs[i].bytes = bytes;
        if ((rc = drv->mem_alloc(&bufs[i].ptr, bytes ? bytes : 16))) return cuda_driver_fail(drv, rc, "cuMemAlloc", err, errlen);
        d->data = (void *)(uintptr_t)bufs[i].ptr;
        if (!bytes) continue;
        if (sig[i].role == SIG_IN) {
            void *tmp = malloc(bytes);
            if (!tmp) return cuda_errorf(err, errlen, "out of host memory");
            copy_view(t, tmp, sig[i].dtype, false);
            rc = drv->memcpy_htod(bufs[i].ptr, tmp, bytes);
            free(tmp);
            if (rc) return cuda_driver_fail(drv, rc, "cuMemcpyHtoD", err, errlen);
        } else if ((rc = drv->memset_d8(bufs[i].ptr, 0, bytes))) {
            return cuda_driver_fail(drv, rc, "cuMemsetD8", err, errlen);
        }
    }
    double t1 = now_ms();
    if (!cuda_kernel_launch(h, batch, seq_q, seq_k, dev, nd, NULL, &info->n_splits, err, errlen)) return false;
    if ((rc = drv->ctx_synchronize())) return cuda_driver_fail(drv, rc, "kernel execution (cuCtxSynchronize)", err, errlen);
    info->kernel_ms = now_ms() - t1;
    for (int i = 0; i < ns; i++) {
        attnc_tensor *t = (attnc_tensor *)sig_find(tensors, n_tensors, sig[i].name);
        const dev_buf *b = &bufs[alias[i] >= 0 ? alias[i] : i];
        if (!t || sig[i].role != SIG_OUT || !b->bytes) continue;
        void *tmp = malloc(b->bytes);
        if (!tmp) return cuda_errorf(err, errlen, "out of host memory");
        rc = drv->memcpy_dtoh(tmp, b->ptr, b->bytes);
        if (!rc) copy_view(t, tmp, sig[i].dtype, true);
        free(tmp);
        if (rc) return cuda_driver_fail(drv, rc, "cuMemcpyDtoH", err, errlen);
    }
    return true;
}

bool cuda_kernel_run_host(const cuda_kernel *h, int64_t batch, int64_t seq_q, int64_t seq_k, attnc_tensor *tensors,
                          int n_tensors, cuda_launch_info *info, char *err, size_t errlen) {
    cuda_launch_info dummy;
    if (!info) info = &dummy;
    memset(info, 0, sizeof *info);
    snprintf(info->arch, sizeof info->arch, "%s", h->arch);
    info->from_cache = h->from_cache;
    info->compile_ms = h->compile_ms;
    sig_tensor sig[SIG_MAX_TENSORS];
    int ns = ir_signature(h->k, batch, seq_q, seq_k, sig);
    if (!sig_check(sig, ns, tensors, n_tensors, err, errlen)) return false;
    if (h->k->family == IR_RECURRENCE && seq_q != seq_k)
        return cuda_errorf(err, errlen, "recurrences need seq_q == seq_k (got %lld and %lld)", (long long)seq_q, (long long)seq_k);
    if (!cuda_driver_push(&h->drv, err, errlen)) return false;
    dev_buf bufs[SIG_MAX_TENSORS];
    memset(bufs, 0, sizeof bufs);
    bool ok = host_body(h, batch, seq_q, seq_k, tensors, n_tensors, sig, ns, bufs, info, err, errlen);
    for (int i = 0; i < SIG_MAX_TENSORS; i++)
        if (bufs[i].ptr) h->drv.mem_free(bufs[i].ptr);
    cuda_driver_pop(&h->drv);
    return ok;
}

bool cuda_launch_host(const ir_kernel *k, const char *arch, int64_t batch, int64_t seq_q, int64_t seq_k,
                      attnc_tensor *tensors, int n_tensors, cuda_launch_info *info, char *err, size_t errlen) {
    if (info) memset(info, 0, sizeof *info);
    /* shape errors first, without touching the driver */
    sig_tensor sig[SIG_MAX_TENSORS];
    int ns = ir_signature(k, batch, seq_q, seq_k, sig);
    if (!sig_check(sig, ns, tensors, n_tensors, err, errlen)) return false;
    cuda_kernel h;
    if (!cuda_kernel_load(&h, k, arch, -1, NULL, err, errlen)) return false;
    bool ok = cuda_kernel_run_host(&h, batch, seq_q, seq_k, tensors, n_tensors, info, err, errlen);
    cuda_kernel_unload(&h);
    return ok;
}
