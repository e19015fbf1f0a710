/* GPU throughput of the CUDA recurrence kernels, as JSON lines on stdout:
 *   decode:  the step kernel on Mamba2-2.7B's decode state (80 heads, 128 x 64 f32 per head,
 *            batch 64 by default) updated in place, as GB/s of state traffic (read + write),
 *            next to a plain device copy of the same bytes (issue 5 target: >= 70 % of it);
 *   prefill: the chunkwise kernels (Mamba2 bf16 on tensor cores, RetNet f32 SIMT, GLA bf16)
 *            at seq 8192, as tokens/s.
 * Times are host clock around cuCtxSynchronize over --iters launches after one warm-up.
 * Without a GPU (or driver) it prints why and exits 0: there is nothing to measure. It has
 * not been run on hardware yet.
 * Usage: cuda_recur_bench [--batch N] [--seq N] [--iters N] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "codegen/cuda/cuda_args.h"
#include "codegen/cuda/cuda_compile.h"
#include "codegen/cuda/cuda_launch.h"
#include "frontend/frontend.h"
#include "ir/signature.h"
#include "runtime/cuda_driver.h"
#include "runtime/tensor_access.h"

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static ir_module *compile_text(const char *src, arena *a) {
    diag_sink d;
    diag_init(&d, "<bench>", src, strlen(src));
    ir_module *m = frontend_compile(src, strlen(src), a, &d);
    if (d.n_errors == 0) ir_run_pipeline(m, &d, NULL, NULL);
    if (d.n_errors) diag_print(&d, stderr);
    bool ok = d.n_errors == 0;
    diag_free(&d);
    return ok ? m : NULL;
}

static const char *specs =
    "kernel mamba2_decode : recurrence {\n heads 80, groups = 1\n dims k = 128, v = 64\n dtype bf16\n"
    " inputs dt[token, head], A_log[head], D[head]\n decay exp(-dt * exp(A_log))\n"
    " update S = decay * S + outer(k, dt * v)\n output q @ S + D * v\n phase decode\n}\n"
    "kernel mamba2_prefill : recurrence {\n heads 80, groups = 1\n dims k = 128, v = 64\n dtype bf16\n"
    " inputs dt[token, head], A_log[head], D[head]\n decay exp(-dt * exp(A_log))\n"
    " update S = decay * S + outer(k, dt * v)\n output q @ S + D * v\n chunk 256\n}\n"
    "kernel retnet_f32 : recurrence {\n heads 8\n dims k = 64, v = 128\n dtype f32\n decay 1 - 2 ^ (-5 - head)\n}\n"
    "kernel gla_bf16 : recurrence {\n heads 4\n dims k = 64, v = 128\n dtype bf16\n inputs g[token, head, k]\n"
    " decay exp(-softplus(-g) / 16)\n}\n";

typedef struct bench_env {
    cuda_driver drv;
    nvrtc_lib lib;
    char arch[16];
} bench_env;

/* Device buffers for every signature tensor (model-range values), the state updated in
 * place; times `iters` launches of the entry cuda_plan_entry picks. Returns ms per launch,
 * or < 0 with a message. state_bytes receives the state's size. */
static double time_kernel(bench_env *env, const ir_kernel *k, int64_t batch, int64_t seq, int iters, double *state_bytes,
                          char *err, size_t errlen) {
    cuda_driver *drv = &env->drv;
    cuda_compiled comp;
    double ms = -1;
    void *module = NULL, *fn = NULL;
    cu_deviceptr bufs[SIG_MAX_TENSORS] = {0};
    unsigned char *blob = NULL;
    if (!cuda_compile_kernel(k, env->arch, NULL, &env->lib, false, &comp, err, errlen)) return -1;
    const cuda_plan *p = &comp.plan;
    int rc;
    if ((rc = drv->module_load_data(&module, comp.image)) || (rc = drv->module_get_function(&fn, module, cuda_plan_entry(p, seq)))) {
        cuda_driver_fail(drv, rc, "loading the kernel", err, errlen);
        goto out;
    }
    cuda_grid g = cuda_plan_fwd_grid(p, k, batch, seq, 1);
    if (g.smem > 48 * 1024 && (rc = drv->func_set_attribute(fn, CUDRV_FUNC_ATTR_MAX_DYNAMIC_SHARED, (int)g.smem))) {
        cuda_driver_fail(drv, rc, "cuFuncSetAttribute", err, errlen);
        goto out;
    }
    sig_tensor sig[SIG_MAX_TENSORS];
    int ns = ir_signature(k, batch, seq, seq, sig);
    cuda_args_fixed a;
    memset(&a, 0, sizeof a);
    a.batch = batch, a.seq_q = a.seq_k = seq, a.n_splits = 1;
    uint64_t in_ptr[8] = {0};
    int64_t in_st[8][4];
    memset(in_st, 0, sizeof in_st);
    uint64_t rng = 88172645463325252ull;
    for (int i = 0; i < ns; i++) {
        int64_t n = 1, st[4] = {0};
        for (int d = sig[i].ndim - 1; d >= 0; d--) st[d] = n, n *= sig[i].shape[d];
        if (!strcmp(sig[i].name, "state_out") || !strcmp(sig[i].name, "norm_out")) continue;   /* in place */
        size_t bytes = (size_t)n * (size_t)attnc_dtype_size(sig[i].dtype);
        if ((rc = drv->mem_alloc(&bufs[i], bytes ? bytes : 16))) {
            cuda_driver_fail(drv, rc, "cuMemAlloc", err, errlen);
            goto out;
        }
        void *host = malloc(bytes ? bytes : 16);
        attnc_tensor flat = {sig[i].name, sig[i].dtype, 1, {n}, {1}, host};
        for (int64_t e = 0; e < n; e++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            double u = (double)(rng >> 11) / 9007199254740992.0;
            double v = !strcmp(sig[i].name, "dt") ? 0.01 + 0.1 * u : !strcmp(sig[i].name, "A_log") ? u
                     : !strcmp(sig[i].name, "state_in") ? 0.1 * (u - 0.5) : !strcmp(sig[i].name, "norm_in") ? 1 + u : 2 * u - 1;
            if (sig[i].role == SIG_IN) tensor_store(&flat, e, v);
        }
        if (sig[i].role == SIG_IN) rc = drv->memcpy_htod(bufs[i], host, bytes);
        free(host);
        if (rc) {
            cuda_driver_fail(drv, rc, "cuMemcpyHtoD", err, errlen);
            goto out;
        }
        uint64_t dp = bufs[i];
        const char *nm = sig[i].name;
        if (!strcmp(nm, "q")) a.q = dp, memcpy(a.q_st, st, sizeof st);
        else if (!strcmp(nm, "k")) a.k = dp, memcpy(a.k_st, st, sizeof st);
        else if (!strcmp(nm, "v")) a.v = dp, memcpy(a.v_st, st, sizeof st);
        else if (!strcmp(nm, "o")) a.o = dp, memcpy(a.o_st, st, sizeof st);
        else if (!strcmp(nm, "state_in")) {
            a.state_in = a.state_out = dp;
            memcpy(a.sin_st, st, sizeof st), memcpy(a.sout_st, st, sizeof st);
            *state_bytes = (double)bytes;
        } else if (!strcmp(nm, "norm_in")) {
            a.norm_in = a.norm_out = dp;
            memcpy(a.nin_st, st, sizeof st), memcpy(a.nout_st, st, sizeof st);
        } else
            for (int j = 0; j < k->n_inputs && j < 8; j++)
                if (!strcmp(nm, k->inputs[j].name)) in_ptr[j] = dp, memcpy(in_st[j], st, sizeof st);
    }
    blob = calloc(1, cuda_args_size(k));
    cuda_args_pack(k, &a, in_ptr, (const int64_t(*)[4])in_st, NULL, blob);
    void *params[1] = {blob};
    for (int it = -1; it < iters; it++) {
        if (it == 0) {
            if ((rc = drv->ctx_synchronize())) break;
            ms = now_ms();
        }
        if ((rc = drv->launch_kernel(fn, g.gx, g.gy, g.gz, g.threads, 1, 1, g.smem, NULL, params, NULL))) break;
    }
    if (!rc) rc = drv->ctx_synchronize();
    if (rc) {
        cuda_driver_fail(drv, rc, "launch", err, errlen);
        ms = -1;
    } else {
        ms = (now_ms() - ms) / iters;
    }
out:
    free(blob);
    for (int i = 0; i < SIG_MAX_TENSORS; i++)
        if (bufs[i]) drv->mem_free(bufs[i]);
    if (module) drv->module_unload(module);
    cuda_compiled_free(&comp);
    return ms;
}

/* A grid-stride float4 copy: the bandwidth the decode kernel is measured against. */
static double time_copy(bench_env *env, double bytes, int iters, char *err, size_t errlen) {
    static const char src[] =
        "extern \"C\" __global__ void attnc_copy(const float4 *__restrict__ a, float4 *__restrict__ b, unsigned long long n) {\n"
        "    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n;\n"
        "         i += (unsigned long long)gridDim.x * blockDim.x) b[i] = a[i];\n"
        "}\n";
    cuda_driver *drv = &env->drv;
    nvrtc_output o;
    if (!nvrtc_compile(&env->lib, src, "copy.cu", env->arch, NULL, 0, false, &o, err, errlen)) return -1;
    void *module = NULL, *fn = NULL;
    cu_deviceptr x = 0, y = 0;
    double ms = -1;
    unsigned long long n = (unsigned long long)(bytes / 2 / 16);   /* read half, write half */
    int rc;
    if ((rc = drv->module_load_data(&module, o.image)) || (rc = drv->module_get_function(&fn, module, "attnc_copy")) ||
        (rc = drv->mem_alloc(&x, n * 16 + 16)) || (rc = drv->mem_alloc(&y, n * 16 + 16)) ||
        (rc = drv->memset_d8(x, 0, n * 16))) {
        cuda_driver_fail(drv, rc, "copy kernel setup", err, errlen);
        goto out;
    }
    void *params[3] = {&x, &y, &n};
    unsigned blocks = (unsigned)(env->drv.sm_count > 0 ? env->drv.sm_count * 8 : 1024);
    for (int it = -1; it < iters && !rc; it++) {
        if (it == 0 && !(rc = drv->ctx_synchronize())) ms = now_ms();
        if (!rc) rc = drv->launch_kernel(fn, blocks, 1, 1, 256, 1, 1, 0, NULL, params, NULL);
    }
    if (!rc) rc = drv->ctx_synchronize();
    if (rc) {
        cuda_driver_fail(drv, rc, "copy kernel", err, errlen);
        ms = -1;
    } else {
        ms = (now_ms() - ms) / iters;
    }
out:
    if (x) drv->mem_free(x);
    if (y) drv->mem_free(y);
    if (module) drv->module_unload(module);
    nvrtc_output_free(&o);
    return ms;
}

int main(int argc, char **argv) {
    int64_t batch = 64, seq = 8192;
    int iters = 20;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--batch")) batch = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--seq")) seq = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--iters")) iters = atoi(argv[i + 1]);
    }
    if (iters < 1) iters = 1;
    bench_env env;
    char err[4096];
    if (!cuda_driver_open(&env.drv, err, sizeof err)) {
        printf("{\"bench\": \"cuda_recur\", \"skipped\": \"no GPU: %s\"}\n", err);
        return 0;
    }
    if (!cuda_driver_open_device(&env.drv, -1, err, sizeof err)) {
        printf("{\"bench\": \"cuda_recur\", \"skipped\": \"no GPU: %s\"}\n", err);
        cuda_driver_close(&env.drv);
        return 0;
    }
    int status = 0;
    if (!nvrtc_open(&env.lib, err, sizeof err) ||
        !cuda_pick_arch(NULL, env.drv.cc_major, env.drv.cc_minor, env.arch, sizeof env.arch, err, sizeof err)) {
        fprintf(stderr, "cuda_recur_bench: %s\n", err);
        cuda_driver_close(&env.drv);
        return 1;
    }
    arena a;
    arena_init(&a);
    ir_module *m = compile_text(specs, &a);
    if (!m) {
        status = 1;
        goto done;
    }
    /* decode: state traffic vs copy */
    double state_bytes = 0;
    const ir_kernel *dec = ir_module_find(m, "mamba2_decode");
    double ms = time_kernel(&env, dec, batch, 1, iters, &state_bytes, err, sizeof err);
    double copy_ms = ms > 0 ? time_copy(&env, 2 * state_bytes, iters, err, sizeof err) : -1;
    if (ms > 0 && copy_ms > 0) {
        double gbs = 2 * state_bytes / (ms * 1e6), copy_gbs = 2 * state_bytes / (copy_ms * 1e6);
        printf("{\"bench\": \"decode_step\", \"gpu\": \"%s\", \"arch\": \"%s\", \"kernel\": \"mamba2_decode\", \"batch\": %lld, "
               "\"state_mb\": %.1f, \"ms\": %.4f, \"gbs\": %.1f, \"copy_gbs\": %.1f, \"of_copy\": %.3f, \"target\": 0.70}\n",
               env.drv.name, env.arch, (long long)batch, state_bytes / 1e6, ms, gbs, copy_gbs, gbs / copy_gbs);
    } else {
        fprintf(stderr, "cuda_recur_bench: decode: %s\n", err);
        status = 1;
    }
    /* prefill: tokens/s of the chunkwise kernels */
    const char *pre[] = {"mamba2_prefill", "retnet_f32", "gla_bf16"};
    for (int i = 0; i < 3; i++) {
        const ir_kernel *k = ir_module_find(m, pre[i]);
        int64_t b = 1;
        ms = time_kernel(&env, k, b, seq, iters > 5 ? 5 : iters, &state_bytes, err, sizeof err);
        if (ms > 0)
            printf("{\"bench\": \"prefill\", \"gpu\": \"%s\", \"arch\": \"%s\", \"kernel\": \"%s\", \"batch\": %lld, \"seq\": %lld, "
                   "\"heads\": %d, \"ms\": %.3f, \"tokens_per_s\": %.0f}\n",
                   env.drv.name, env.arch, pre[i], (long long)b, (long long)seq, k->heads_q, ms, (double)(b * seq) / (ms * 1e-3));
        else {
            fprintf(stderr, "cuda_recur_bench: %s: %s\n", pre[i], err);
            status = 1;
        }
    }
done:
    arena_free(&a);
    nvrtc_close(&env.lib);
    cuda_driver_close(&env.drv);
    return status;
}
