/* On a GPU, through the C API: device pointers (with padded, strided views), several
 * threads launching one compiled kernel at once, split-KV decode with its stream-ordered
 * workspace, and the dtype rule for device views. The host path of the same kernel is
 * the reference (itself checked against the interpreter by test_cuda_gpu), and the "ref"
 * target checks both. Exits 77 (skipped, label gpu) with the reason where there is no GPU. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "attnc/attnc.h"
#include "runtime/cuda_driver.h"
#include "runtime/tensor_access.h"

static const char *SPEC =
    "kernel gqa {\n heads q = 8, kv = 2\n dims qk = 64, v = 64\n dtype bf16\n mask causal\n}\n"
    "kernel gqa_decode {\n heads q = 8, kv = 2\n dims qk = 64, v = 64\n dtype bf16\n mask causal\n phase decode\n}\n";

enum { B = 2, H = 8, HKV = 2, D = 64, PAD = 8 };

typedef struct run {
    const char *kernel;
    int64_t sq, sk;
} run;

typedef struct buffers {
    uint16_t *q, *k, *v;          /* host, contiguous */
    float *o_host, *o_ref;
    cu_deviceptr dq, dk, dv, dout; /* device: q/k/v padded rows (D + PAD), o contiguous */
} buffers;

static uint64_t rng = 88172645463325252ull;
static double urand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0 * 2 - 1;
}

static attnc_tensor view(const char *name, attnc_dtype dt, int64_t s, int64_t h, int64_t d, void *data, bool padded) {
    attnc_tensor t = {name, dt, 4, {B, s, h, d}, {0, 0, 0, 0}, data};
    if (padded) {
        int64_t row = d + PAD;
        t.strides[3] = 1, t.strides[2] = row, t.strides[1] = h * row, t.strides[0] = s * h * row;
    }
    return t;
}

typedef struct thread_arg {
    const attnc_kernel *k;
    const run *r;
    cu_deviceptr dq, dk, dv, dout;
    int launches;
    attnc_status status;
    char message[1024];
} thread_arg;

static void *launch_thread(void *p) {
    thread_arg *a = p;
    attnc_tensor t[4] = {
        view("q", ATTNC_BF16, a->r->sq, H, D, (void *)(uintptr_t)a->dq, true),
        view("k", ATTNC_BF16, a->r->sk, HKV, D, (void *)(uintptr_t)a->dk, true),
        view("v", ATTNC_BF16, a->r->sk, HKV, D, (void *)(uintptr_t)a->dv, true),
        view("o", ATTNC_BF16, a->r->sq, H, D, (void *)(uintptr_t)a->dout, false),
    };
    attnc_launch_options lo = {NULL, 1};
    attnc_error err;
    a->status = ATTNC_OK;
    for (int i = 0; i < a->launches && a->status == ATTNC_OK; i++) a->status = attnc_launch(a->k, B, a->r->sq, a->r->sk, t, 4, &lo, &err);
    if (a->status != ATTNC_OK) snprintf(a->message, sizeof a->message, "%s", err.message);
    return NULL;
}

/* Copies a contiguous [B, s, h, D] bf16 host tensor into padded device rows. */
static bool upload_padded(cuda_driver *drv, cu_deviceptr dst, const uint16_t *src, int64_t rows) {
    uint16_t *tmp = calloc((size_t)rows * (D + PAD), 2);
    for (int64_t r = 0; r < rows; r++) {
        memcpy(tmp + r * (D + PAD), src + r * D, D * 2);
        for (int p = 0; p < PAD; p++) tmp[r * (D + PAD) + D + p] = 0x7fc0;   /* NaN in the padding: must not be read */
    }
    bool ok = drv->memcpy_htod(dst, tmp, (size_t)rows * (D + PAD) * 2) == 0;
    free(tmp);
    return ok;
}

static void check_run(attnc_program *cuda_p, attnc_program *ref_p, cuda_driver *drv, const run *r) {
    attnc_error err;
    attnc_kernel *k = NULL, *kr = NULL;
    CHECK_MSG(attnc_kernel_get(cuda_p, r->kernel, &k, &err) == ATTNC_OK, "%s", err.message);
    CHECK_MSG(attnc_kernel_get(ref_p, r->kernel, &kr, &err) == ATTNC_OK, "%s", err.message);
    if (!k || !kr) return;
    int64_t nq = B * r->sq * H * D, nk = B * r->sk * HKV * D;
    uint16_t *q = malloc(nq * 2), *kk = malloc(nk * 2), *v = malloc(nk * 2), *o_dev = malloc(nq * 2);
    double *o_host = malloc(nq * 8);
    double *o_ref = malloc(nq * 8);
    for (int64_t i = 0; i < nq; i++) q[i] = attnc_double_to_bf16(urand());
    for (int64_t i = 0; i < nk; i++) kk[i] = attnc_double_to_bf16(urand()), v[i] = attnc_double_to_bf16(urand());

    /* host path and the interpreter */
    attnc_tensor th[4] = {view("q", ATTNC_BF16, r->sq, H, D, q, false), view("k", ATTNC_BF16, r->sk, HKV, D, kk, false),
                          view("v", ATTNC_BF16, r->sk, HKV, D, v, false), view("o", ATTNC_F64, r->sq, H, D, o_host, false)};
    CHECK_MSG(attnc_launch(k, B, r->sq, r->sk, th, 4, NULL, &err) == ATTNC_OK, "%s host: %s", r->kernel, err.message);
    th[3] = view("o", ATTNC_F64, r->sq, H, D, o_ref, false);
    CHECK_MSG(attnc_launch(kr, B, r->sq, r->sk, th, 4, NULL, &err) == ATTNC_OK, "%s ref: %s", r->kernel, err.message);

    /* device pointers, padded rows, four threads at once, each into its own output */
    enum { T = 4 };
    cu_deviceptr dq = 0, dk = 0, dv = 0, dout[T] = {0};
    bool up = !drv->mem_alloc(&dq, (size_t)B * r->sq * H * (D + PAD) * 2) &&
              !drv->mem_alloc(&dk, (size_t)B * r->sk * HKV * (D + PAD) * 2) &&
              !drv->mem_alloc(&dv, (size_t)B * r->sk * HKV * (D + PAD) * 2) &&
              upload_padded(drv, dq, q, B * r->sq * H) && upload_padded(drv, dk, kk, B * r->sk * HKV) &&
              upload_padded(drv, dv, v, B * r->sk * HKV);
    for (int t = 0; t < T; t++) up = up && !drv->mem_alloc(&dout[t], (size_t)nq * 2) && !drv->memset_d8(dout[t], 0xff, (size_t)nq * 2);
    CHECK_MSG(up, "%s: device allocation/upload failed", r->kernel);
    thread_arg args[T];
    pthread_t th_id[T];
    for (int t = 0; up && t < T; t++) {
        args[t] = (thread_arg){k, r, dq, dk, dv, dout[t], 25, ATTNC_OK, ""};
        pthread_create(&th_id[t], NULL, launch_thread, &args[t]);
    }
    for (int t = 0; up && t < T; t++) {
        pthread_join(th_id[t], NULL);
        CHECK_MSG(args[t].status == ATTNC_OK, "%s thread %d: %s", r->kernel, t, args[t].message);
    }
    if (up) CHECK(drv->ctx_synchronize() == 0);
    double worst_host = 0, worst_ref = 0;
    long mismatch = 0, nan = 0;
    for (int t = 0; up && t < T; t++) {
        CHECK(drv->memcpy_dtoh(o_dev, dout[t], (size_t)nq * 2) == 0);
        for (int64_t i = 0; i < nq; i++) {
            double x = attnc_bf16_to_double(o_dev[i]);
            if (x != x) { nan++; continue; }
            /* the host path widens the kernel's bf16 to f64: rounding back must give the device's bits */
            if (attnc_double_to_bf16(o_host[i]) != o_dev[i]) mismatch++;
            double dh = fabs(x - o_host[i]), dr = fabs(x - o_ref[i]);
            if (dh > worst_host) worst_host = dh;
            if (dr > worst_ref) worst_ref = dr;
        }
    }
    CHECK_MSG(!nan && !mismatch, "%s: device-pointer launches differ from the host launch: %ld elements, %ld NaN", r->kernel,
              mismatch, nan);
    CHECK_MSG(worst_ref <= 2e-2, "%s: device output vs interpreter: max |diff| %.3g", r->kernel, worst_ref);
    printf("  %-11s [%d, %4lld, %5lld]  %d threads x 25 launches on device pointers: max |diff| %.2g vs host launch, "
           "%.2g vs interpreter\n", r->kernel, B, (long long)r->sq, (long long)r->sk, T, worst_host, worst_ref);

    /* the workspace query: none for prefill; split-KV partials (f32 o and lse per split) for decode */
    int64_t ws = -1;
    CHECK_MSG(attnc_kernel_workspace(k, B, r->sq, r->sk, &ws, &err) == ATTNC_OK, "%s", err.message);
    int64_t per_split = (int64_t)B * H * r->sq * (D + 1) * 4;
    if (strcmp(r->kernel, "gqa") == 0) CHECK_MSG(ws == 0, "prefill workspace %lld", (long long)ws);
    else CHECK_MSG(ws == 0 || (ws % per_split == 0 && ws / per_split >= 2), "decode workspace %lld (per split %lld)",
                   (long long)ws, (long long)per_split);
    if (strcmp(r->kernel, "gqa_decode") == 0 && r->sk >= 3000) CHECK_MSG(ws > 0, "a 3000-key decode of 2 x 2 kv heads splits");
    printf("  %-11s workspace %lld bytes\n", r->kernel, (long long)ws);

    /* a device view in another dtype is refused with the dtype code, and nothing runs */
    attnc_tensor bad[4] = {view("q", ATTNC_BF16, r->sq, H, D, (void *)(uintptr_t)dq, true),
                           view("k", ATTNC_BF16, r->sk, HKV, D, (void *)(uintptr_t)dk, true),
                           view("v", ATTNC_BF16, r->sk, HKV, D, (void *)(uintptr_t)dv, true),
                           view("o", ATTNC_F32, r->sq, H, D, (void *)(uintptr_t)dout[0], false)};
    attnc_launch_options lo = {NULL, 1};
    CHECK(attnc_launch(k, B, r->sq, r->sk, bad, 4, &lo, &err) == ATTNC_ERR_DTYPE);
    CHECK_MSG(strstr(err.message, "'o'") != NULL, "%s", err.message);

    drv->mem_free(dq), drv->mem_free(dk), drv->mem_free(dv);
    for (int t = 0; t < T; t++) if (dout[t]) drv->mem_free(dout[t]);
    free(q), free(kk), free(v), free(o_dev), free(o_host), free(o_ref);
}

int main(void) {
    char msg[1024];
    cuda_driver drv;
    if (!cuda_driver_open(&drv, msg, sizeof msg) || !cuda_driver_open_device(&drv, -1, msg, sizeof msg)) {
        printf("test_cuda_device: SKIP: %s\n", msg);
        if (drv.handle) cuda_driver_close(&drv);
        return 77;
    }
    printf("GPU: %s\n", drv.name);
    attnc_options o;
    attnc_options_init(&o);
    o.target = "cuda";
    o.cache_dir = "";
    attnc_context *ctx = NULL, *ref = NULL;
    attnc_error err;
    CHECK_MSG(attnc_context_create(&o, &ctx, &err) == ATTNC_OK, "%s", err.message);
    o.target = "ref";
    CHECK_MSG(attnc_context_create(&o, &ref, &err) == ATTNC_OK, "%s", err.message);
    attnc_program *p = NULL, *pr = NULL;
    if (ctx) CHECK_MSG(attnc_compile_string(ctx, SPEC, 0, "device.attn", &p, &err) == ATTNC_OK, "%s", err.message);
    if (ref) CHECK_MSG(attnc_compile_string(ref, SPEC, 0, "device.attn", &pr, &err) == ATTNC_OK, "%s", err.message);
    const run runs[] = {{"gqa", 77, 77}, {"gqa", 130, 300}, {"gqa_decode", 1, 3000}, {"gqa_decode", 3, 1000}};
    for (size_t i = 0; p && pr && i < sizeof runs / sizeof runs[0]; i++) check_run(p, pr, &drv, &runs[i]);
    attnc_program_destroy(p);
    attnc_program_destroy(pr);
    attnc_context_destroy(ctx);
    attnc_context_destroy(ref);
    cuda_driver_close(&drv);
    return check_status("test_cuda_device");
}
