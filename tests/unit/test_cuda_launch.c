/* The host side of cuda_run against a stand-in driver (tests/cuda/fake_libcuda.c, loaded
 * through ATTNC_CUDA_LIBRARY): argument validation, strided uploads, the argument block the
 * kernel receives, the opt-in for more than 48 KB of shared memory, launch geometry, the
 * split-KV workspace and merge launch, the kernel cache on the second run, downloads into
 * strided and wider (f64) views, and that every allocation and module is released. The
 * fake does not execute kernels; the simulator tests and test_cuda_gpu check numbers. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "codegen/cuda/cuda_args.h"
#include "codegen/cuda/cuda_backend.h"
#include "codegen/cuda/cuda_kernel.h"
#include "codegen/cuda/cuda_launch.h"
#include "codegen/cuda/cuda_plan.h"
#include "frontend/frontend.h"
#include "ir/signature.h"
#include "runtime/tensor_access.h"

typedef struct fake_launch {
    char name[128];
    unsigned grid[3], block[3], smem;
    int dyn_smem_attr;
    cuda_args_fixed args;
    uint64_t q_hash;
    size_t q_bytes;
} fake_launch;

typedef struct fake_api {
    int (*launch_count)(void);
    const fake_launch *(*launch)(int);
    int (*live_allocations)(void);
    int (*modules)(int);
    int (*context_depth)(void);
    void (*reset)(void);
} fake_api;

static bool load_fake(fake_api *f) {
    void *h = dlopen(FAKE_LIBCUDA, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!h) return false;
    void *p;
#define SYM(field, name) if (!(p = dlsym(h, name))) return false; memcpy(&f->field, &p, sizeof p)
    SYM(launch_count, "fake_cuda_launch_count");
    SYM(launch, "fake_cuda_launch");
    SYM(live_allocations, "fake_cuda_live_allocations");
    SYM(modules, "fake_cuda_modules");
    SYM(context_depth, "fake_cuda_context_depth");
    SYM(reset, "fake_cuda_reset");
#undef SYM
    return true;
}

static ir_module *compile_text(const char *src, arena *a) {
    diag_sink d;
    diag_init(&d, "<test>", src, strlen(src));
    ir_module *m = frontend_compile(src, strlen(src), a, &d);
    if (d.n_errors == 0) ir_run_pipeline(m, &d, NULL, NULL);
    if (d.n_errors) diag_print(&d, stderr);
    bool ok = d.n_errors == 0;
    diag_free(&d);
    return ok ? m : NULL;
}

/* Views for every signature tensor; inputs random; `o` as f64 and transposed-strided q when
 * asked, to exercise conversion and gathering. */
typedef struct views {
    attnc_tensor t[SIG_MAX_TENSORS];
    int n;
} views;

static void make_views(views *v, const ir_kernel *k, int64_t b, int64_t sq, int64_t sk, bool odd_views) {
    sig_tensor sig[SIG_MAX_TENSORS];
    int ns = ir_signature(k, b, sq, sk, sig);
    memset(v, 0, sizeof *v);
    uint64_t s = 1234;
    for (int i = 0; i < ns; i++) {
        attnc_tensor *t = &v->t[v->n++];
        t->name = sig[i].name;
        t->dtype = (odd_views && sig[i].role == SIG_OUT && !strcmp(sig[i].name, "o")) ? ATTNC_F64 : sig[i].dtype;
        t->ndim = sig[i].ndim;
        int64_t n = 1;
        for (int d = 0; d < t->ndim; d++) t->shape[d] = sig[i].shape[d], n *= sig[i].shape[d];
        size_t esz = (size_t)attnc_dtype_size(t->dtype);
        if (odd_views && !strcmp(t->name, "q") && t->ndim == 4) {
            /* q stored as [batch][heads][seq][d] and viewed as [batch][seq][heads][d] */
            t->strides[3] = 1;
            t->strides[1] = t->shape[3];
            t->strides[2] = t->shape[1] * t->shape[3];
            t->strides[0] = t->shape[2] * t->strides[2];
        }
        t->data = calloc((size_t)(n > 0 ? n : 1), esz);
        for (int64_t e = 0; e < n && sig[i].role == SIG_IN; e++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            if (t->dtype == ATTNC_I32) ((int32_t *)t->data)[e] = (int32_t)((s >> 33) % 5);
            else tensor_store(t, e, (double)((s >> 11) % 1000) / 500.0 - 1.0);
        }
    }
}

static void free_views(views *v) {
    for (int i = 0; i < v->n; i++) free(v->t[i].data);
}

/* FNV-1a of the contiguous (row-major) gather of a view: what the device copy must hold. */
static uint64_t gathered_hash(const attnc_tensor *t) {
    int64_t st[4], idx[4] = {0}, n = tensor_count(t);
    tensor_strides(t, st);
    int esz = attnc_dtype_size(t->dtype);
    uint64_t h = 0xcbf29ce484222325ull;
    for (int64_t e = 0; e < n; e++) {
        int64_t off = 0;
        for (int d = 0; d < t->ndim; d++) off += idx[d] * st[d];
        const unsigned char *p = (const unsigned char *)t->data + off * esz;
        for (int i = 0; i < esz; i++) h = (h ^ p[i]) * 0x100000001b3ull;
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
    return h;
}

/* The value the fake's byte pattern gives element e of a contiguous buffer of dtype dt. */
static double pattern_value(int64_t e, attnc_dtype dt) {
    int esz = attnc_dtype_size(dt);
    unsigned char b[8];
    for (int i = 0; i < esz; i++) b[i] = (unsigned char)(((size_t)(e * esz + i) * 7 + 3) & 0x7F);
    attnc_tensor flat = {"x", dt, 1, {1}, {1}, b};
    return tensor_load(&flat, 0);
}

static const attnc_tensor *find(const views *v, const char *name) { return sig_find(v->t, v->n, name); }

static void check_download(const views *v, const char *name, attnc_dtype device_dtype) {
    const attnc_tensor *t = find(v, name);
    if (!t) return;
    int64_t st[4], idx[4] = {0}, n = tensor_count(t);
    tensor_strides(t, st);
    int bad = 0;
    for (int64_t e = 0; e < n; e++) {
        int64_t off = 0;
        for (int d = 0; d < t->ndim; d++) off += idx[d] * st[d];
        if (tensor_load(t, off) != pattern_value(e, device_dtype)) bad++;
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
    CHECK_MSG(bad == 0, "tensor '%s': %d elements differ from what the device held", name, bad);
}

/* Device views through a loaded kernel (what the C API's cuda engine does with
 * device_pointers = 1): one load, launches on the stand-in's "device" memory with padded q
 * rows and a stream; the argument block carries those addresses and strides, context
 * pushes are balanced, a wrong dtype is refused, a split-KV workspace is returned (the
 * stand-in has no stream-ordered allocator, so this is the synchronous fallback). */
static void test_device_views(fake_api *fake, const ir_kernel *pre, const ir_kernel *dec) {
    void *h = dlopen(FAKE_LIBCUDA, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE), *p;
    int (*dalloc)(uint64_t *, size_t) = NULL, (*dfree)(uint64_t) = NULL;
    if (h && (p = dlsym(h, "cuMemAlloc_v2"))) memcpy(&dalloc, &p, sizeof p);
    if (h && (p = dlsym(h, "cuMemFree_v2"))) memcpy(&dfree, &p, sizeof p);
    CHECK(dalloc && dfree);
    if (!dalloc || !dfree) return;
    const ir_kernel *ks[2] = {pre, dec};
    const int64_t shapes[2][3] = {{2, 50, 70}, {1, 1, 4096}};
    for (int c = 0; c < 2; c++) {
        const ir_kernel *k = ks[c];
        int64_t b = shapes[c][0], sq = shapes[c][1], sk = shapes[c][2];
        char err[4096];
        cuda_kernel kh;
        fake->reset();
        CHECK_MSG(cuda_kernel_load(&kh, k, NULL, -1, NULL, err, sizeof err), "%s: %s", k->name, err);
        int depth0 = fake->context_depth();
        sig_tensor sig[SIG_MAX_TENSORS];
        int ns = ir_signature(k, b, sq, sk, sig);
        attnc_tensor t[SIG_MAX_TENSORS];
        uint64_t mem[SIG_MAX_TENSORS] = {0};
        int n = 0;
        bool ok = true;
        for (int i = 0; i < ns; i++) {
            attnc_tensor *x = &t[n++];
            memset(x, 0, sizeof *x);
            x->name = sig[i].name, x->dtype = sig[i].dtype, x->ndim = sig[i].ndim;
            int64_t elems = 1, row = sig[i].shape[sig[i].ndim - 1];
            bool padded = !strcmp(sig[i].name, "q");
            if (padded) row += 8;   /* q rows padded to d + 8 elements */
            for (int d = 0; d < x->ndim; d++) x->shape[d] = sig[i].shape[d], elems *= d == x->ndim - 1 ? row : sig[i].shape[d];
            if (padded) {
                x->strides[3] = 1, x->strides[2] = row, x->strides[1] = x->shape[2] * row, x->strides[0] = x->shape[1] * x->strides[1];
            }
            ok = ok && dalloc(&mem[i], (size_t)elems * (size_t)attnc_dtype_size(x->dtype)) == 0;
            x->data = (void *)(uintptr_t)mem[i];
        }
        CHECK(ok);
        int splits = 0, base = fake->launch_count(), live0 = fake->live_allocations();
        ok = ok && cuda_kernel_launch(&kh, b, sq, sk, t, n, (void *)0x77, &splits, err, sizeof err);
        CHECK_MSG(ok, "%s on device views: %s", k->name, err);
        CHECK(fake->context_depth() == depth0);
        CHECK_MSG(fake->live_allocations() == live0, "%s: %d allocations left by a launch", k->name,
                  fake->live_allocations() - live0);
        CHECK(fake->launch_count() == base + (splits > 1 ? 2 : 1));
        if (ok && fake->launch_count() > base) {
            const fake_launch *l = fake->launch(base);
            const attnc_tensor *q = &t[0];
            CHECK(l->args.q == mem[0] && l->args.q_st[2] == q->strides[2] && l->args.q_st[1] == q->strides[1] &&
                  l->args.q_st[0] == q->strides[0] && l->args.q_st[3] == 1);
            CHECK(l->args.n_splits == splits && (splits > 1) == (l->args.ws_o != 0));
        }
        if (c == 1) CHECK_MSG(splits > 1, "a 4096-key decode on device views used %d splits", splits);
        /* device views must carry the kernel's dtype: attnc converts (to f64 outputs) only
           for host tensors */
        for (int i = 0; i < n; i++)
            if (!strcmp(t[i].name, "o")) t[i].dtype = ATTNC_F64;
        CHECK(!cuda_kernel_launch(&kh, b, sq, sk, t, n, NULL, NULL, err, sizeof err) && strstr(err, "dtype"));
        CHECK(fake->context_depth() == depth0);
        for (int i = 0; i < ns; i++)
            if (mem[i]) dfree(mem[i]);
        /* the JIT compiles each entry point as its own program: fwd + merge, two modules */
        const char *entries[CUDA_MAX_PARTS];
        int parts = cuda_plan_parts(&kh.plan, entries);
        CHECK_MSG(kh.n_modules == parts && (c != 1 || parts == 2), "%s: %d modules for %d entry points", k->name,
                  kh.n_modules, parts);
        int unloaded = fake->modules(0), n_modules = kh.n_modules;
        cuda_kernel_unload(&kh);
        CHECK(fake->modules(0) == unloaded + n_modules);
    }
}

int main(void) {
    fake_api fake;
    if (!load_fake(&fake)) {
        CHECK_MSG(false, "cannot load the stand-in driver %s: %s", FAKE_LIBCUDA, dlerror());
        return check_status("test_cuda_launch");
    }
    setenv("ATTNC_CUDA_LIBRARY", FAKE_LIBCUDA, 1);
    char cache_dir[] = "/tmp/attnc-launch-cache-XXXXXX";
    CHECK(mkdtemp(cache_dir) != NULL);
    setenv("ATTNC_CACHE_DIR", cache_dir, 1);
    setenv("FAKE_CUDA_CC", "90", 1);

    arena a;
    arena_init(&a);
    ir_module *m = compile_text("kernel pre {\n heads q = 4, kv = 2\n dims 128\n dtype bf16\n mask causal\n}\n"
                                "kernel dec {\n heads q = 8, kv = 2\n dims 64\n dtype bf16\n phase decode\n}\n"
                                "kernel rec : recurrence {\n heads 2\n dims k = 16, v = 8\n dtype f32\n decay 0.9\n}\n",
                                &a);
    CHECK(m != NULL);
    if (!m) return check_status("test_cuda_launch");
    char err[4096];
    cuda_launch_info info;

    /* prefill: strided q, f64 o, lse; 98 KB of shared memory (opt-in needed) */
    const ir_kernel *pre = m->kernels[0];
    views v;
    make_views(&v, pre, 2, 50, 70, true);
    fake.reset();
    bool ok = cuda_launch_host(pre, NULL, 2, 50, 70, v.t, v.n, &info, err, sizeof err);
    CHECK_MSG(ok, "prefill launch: %s", err);
    CHECK(strcmp(info.arch, "sm_90a") == 0 && info.n_splits == 1 && !info.from_cache);
    CHECK(fake.launch_count() == 1);
    cuda_plan p;
    CHECK(cuda_plan_make(pre, "sm_90a", &p, err, sizeof err));
    if (fake.launch_count() == 1) {
        const fake_launch *l = fake.launch(0);
        CHECK(strcmp(l->name, "attnc_pre_fwd") == 0);
        CHECK(l->grid[0] == 1 && l->grid[1] == 1 && l->grid[2] == 2 * 4);
        CHECK(l->block[0] == (unsigned)p.threads && l->block[1] == 1 && l->block[2] == 1);
        CHECK(l->smem == (unsigned)p.smem_bytes && l->smem > 48 * 1024 && l->dyn_smem_attr >= (int)l->smem);
        CHECK(l->args.batch == 2 && l->args.seq_q == 50 && l->args.seq_k == 70 && l->args.n_splits == 1);
        CHECK(l->args.q_st[0] == 50 * 4 * 128 && l->args.q_st[1] == 4 * 128 && l->args.q_st[2] == 128 && l->args.q_st[3] == 1);
        CHECK(l->args.k_st[1] == 2 * 128 && l->args.o_st[2] == 128 && l->args.lse_st[1] == 4 && l->args.lse_st[2] == 1);
        CHECK(l->args.q % 16 == 0 && l->args.k % 16 == 0 && l->args.v % 16 == 0 && l->args.lse && !l->args.ws_o);
        CHECK(l->q_bytes == (size_t)2 * 50 * 4 * 128 * 2);
        CHECK_MSG(l->q_hash == gathered_hash(find(&v, "q")), "the device copy of a strided q is not its row-major gather");
    }
    check_download(&v, "o", ATTNC_BF16);
    check_download(&v, "lse", ATTNC_F32);
    CHECK(fake.live_allocations() == 0 && fake.context_depth() == 0);
    CHECK(fake.modules(1) == 1 && fake.modules(0) == 1);

    /* the second run loads the CUBIN from the cache */
    fake.reset();
    CHECK(cuda_launch_host(pre, "sm_90a", 2, 50, 70, v.t, v.n, &info, err, sizeof err) && info.from_cache);
    free_views(&v);

    /* a CUBIN the device cannot run is refused before anything is allocated */
    setenv("FAKE_CUDA_CC", "80", 1);
    make_views(&v, pre, 1, 5, 5, false);
    CHECK(!cuda_launch_host(pre, "sm_90a", 1, 5, 5, v.t, v.n, &info, err, sizeof err) && strstr(err, "compute capability 8.0"));
    CHECK(fake.live_allocations() == 0);
    /* native arch on an sm_80 device */
    fake.reset();
    CHECK_MSG(cuda_launch_host(pre, NULL, 1, 5, 5, v.t, v.n, &info, err, sizeof err), "%s", err);
    CHECK(strcmp(info.arch, "sm_80") == 0);
    free_views(&v);
    setenv("FAKE_CUDA_CC", "90", 1);

    /* decode with a long cache: split-KV, workspace, then the merge launch */
    const ir_kernel *dec = m->kernels[1];
    make_views(&v, dec, 1, 1, 4096, false);
    fake.reset();
    ok = cuda_launch_host(dec, NULL, 1, 1, 4096, v.t, v.n, &info, err, sizeof err);
    CHECK_MSG(ok, "decode launch: %s", err);
    CHECK_MSG(info.n_splits > 1, "decode of 4096 keys on 2 CTAs used %d splits", info.n_splits);
    CHECK(fake.launch_count() == 2);
    if (fake.launch_count() == 2) {
        const fake_launch *f = fake.launch(0), *g = fake.launch(1);
        CHECK(strcmp(f->name, "attnc_dec_fwd") == 0 && strcmp(g->name, "attnc_dec_merge") == 0);
        CHECK(f->grid[1] == (unsigned)info.n_splits && f->grid[2] == 2 && f->args.n_splits == info.n_splits);
        CHECK(f->args.ws_o && f->args.ws_lse && g->args.ws_o == f->args.ws_o);
        CHECK(g->grid[0] == (1 * 8 * 1 + 3) / 4 && g->block[0] == 128 && g->smem == 0);
    }
    check_download(&v, "o", ATTNC_BF16);
    CHECK(fake.live_allocations() == 0);
    free_views(&v);

    /* recurrence: state in and out */
    const ir_kernel *rec = m->kernels[2];
    make_views(&v, rec, 2, 9, 9, false);
    fake.reset();
    ok = cuda_launch_host(rec, NULL, 2, 9, 9, v.t, v.n, &info, err, sizeof err);
    CHECK_MSG(ok, "recurrence launch: %s", err);
    if (ok && fake.launch_count() == 1) {
        const fake_launch *l = fake.launch(0);
        CHECK(l->grid[2] == 2 * 2 && l->args.state_in && l->args.state_out && l->args.sout_st[2] == 8);
    }
    check_download(&v, "state_out", ATTNC_F32);
    check_download(&v, "o", ATTNC_F32);
    CHECK(!cuda_launch_host(rec, NULL, 2, 9, 8, v.t, v.n, &info, err, sizeof err));
    free_views(&v);
    CHECK(fake.live_allocations() == 0);

    /* one token: the step kernel; state_out on state_in's memory: one device buffer, updated
       in place, and the download lands in that memory */
    make_views(&v, rec, 2, 1, 1, false);
    attnc_tensor *sin = (attnc_tensor *)find(&v, "state_in"), *sout = (attnc_tensor *)find(&v, "state_out");
    free(sout->data);
    sout->data = sin->data;
    fake.reset();
    ok = cuda_launch_host(rec, NULL, 2, 1, 1, v.t, v.n, &info, err, sizeof err);
    CHECK_MSG(ok, "recurrence step launch: %s", err);
    CHECK(fake.launch_count() == 1);
    if (ok && fake.launch_count() == 1) {
        const fake_launch *l = fake.launch(0);
        CHECK_MSG(strcmp(l->name, "attnc_rec_step") == 0, "launched %s", l->name);
        CHECK(l->args.state_in && l->args.state_out == l->args.state_in && l->grid[0] == 1 && l->grid[2] == 2 * 2);
    }
    check_download(&v, "state_out", ATTNC_F32);
    sout->data = NULL;
    free_views(&v);
    CHECK(fake.live_allocations() == 0);

    test_device_views(&fake, pre, dec);
    CHECK(fake.live_allocations() == 0);

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", cache_dir);
    CHECK(system(cmd) == 0);
    arena_free(&a);
    return check_status("test_cuda_launch");
}
