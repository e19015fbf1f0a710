/* Host-side pieces of the CUDA backend that need no GPU: tile plans and their budgets,
 * launch geometry, the split heuristic, argument validation, architecture choice, the
 * argument block layout, ptxas report parsing, and a clear error from cuda_run where the
 * driver or the GPU is missing. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "codegen/cuda/cuda_args.h"
#include "codegen/cuda/cuda_backend.h"
#include "codegen/cuda/cuda_compile.h"
#include "codegen/cuda/cuda_emit.h"
#include "codegen/cuda/cuda_launch.h"
#include "codegen/cuda/cuda_plan.h"
#include "frontend/frontend.h"
#include "runtime/cuda_driver.h"

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

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

/* Every example kernel gets a plan within the budgets for both archs. */
static void test_example_plans(void) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/examples", ATTNC_SOURCE_DIR);
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    if (!d) return;
    struct dirent *e;
    int kernels = 0;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".attn") != 0) continue;
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        char *text = read_text(path);
        arena a;
        arena_init(&a);
        ir_module *m = text ? compile_text(text, &a) : NULL;
        CHECK_MSG(m != NULL, "%s does not compile", path);
        for (int i = 0; m && i < m->n_kernels; i++) {
            const ir_kernel *k = m->kernels[i];
            const char *archs[] = {"sm_80", "sm_86", "sm_90a"};
            for (int ai = 0; ai < 3; ai++) {
                cuda_plan p;
                char err[512];
                bool ok = cuda_plan_make(k, archs[ai], &p, err, sizeof err);
                CHECK_MSG(ok, "%s on %s: %s", k->name, archs[ai], err);
                if (!ok) continue;
                kernels++;
                CHECK_MSG(p.smem_bytes <= p.smem_limit, "%s on %s: %d bytes of shared memory > %d", k->name, archs[ai],
                          p.smem_bytes, p.smem_limit);
                CHECK(p.threads >= 32 && p.threads <= 256 && p.threads % 32 == 0);
                if (k->dtype != IR_F32 && k->family == IR_SOFTMAX && k->rope.rerope_window == 0)
                    CHECK_MSG(p.kind == CUDA_KIND_MMA, "%s on %s: a bf16/f16 kernel should use tensor cores", k->name,
                              archs[ai]);
                if (p.kind != CUDA_KIND_MMA) continue;
                CHECK(p.d % 16 == 0 && p.d >= k->d_qk && p.d < k->d_qk + 16);
                CHECK(p.dvp >= k->d_v && p.dvp == p.wc * p.dvc && p.dvc % 16 == 0);
                CHECK(p.wc == 1 || p.dvc % 64 == 0);
                CHECK(p.bc % 16 == 0 && p.bc >= 16 && p.bc <= 128);
                CHECK(p.br == 16 * p.wr && p.threads == 32 * p.wr * p.wc);
                CHECK_MSG(p.est_regs <= 240, "%s on %s: register estimate %d", k->name, archs[ai], p.est_regs);
                CHECK(p.smem_k == p.br * p.d * 2 && p.smem_v >= p.smem_k + p.stages * p.smem_k_stage);
                if (k->phase == IR_DECODE) CHECK(p.pack == k->heads_q / k->heads_kv && p.splitkv);
                else CHECK(p.pack == 1 && !p.splitkv);
            }
        }
        free(text);
        arena_free(&a);
    }
    closedir(d);
    CHECK(kernels >= 40);
}

static void test_plan_rules(void) {
    arena a;
    arena_init(&a);
    ir_module *m = compile_text("kernel p {\n heads q = 32, kv = 8\n dims 128\n dtype bf16\n mask causal\n}\n"
                                "kernel dec {\n heads q = 32, kv = 8\n dims 128\n dtype bf16\n phase decode\n}\n"
                                "kernel f {\n heads q = 4, kv = 4\n dims 64\n dtype f32\n}\n"
                                "kernel odd {\n heads q = 4, kv = 4\n dims 36\n dtype bf16\n}\n",
                                &a);
    CHECK(m != NULL);
    if (!m) return;
    char err[512];
    cuda_plan p;
    /* prefill d = 128: 128-row tiles of 8 warps, 2-stage K/V ring on both archs */
    CHECK(cuda_plan_make(m->kernels[0], "sm_80", &p, err, sizeof err));
    CHECK(p.kind == CUDA_KIND_MMA && p.br == 128 && p.bc == 64 && p.stages == 2);
    cuda_grid g = cuda_plan_fwd_grid(&p, m->kernels[0], 3, 1000, 1);
    CHECK(g.gx == 8 && g.gy == 1 && g.gz == 3 * 32 && g.threads == 256 && g.smem == (unsigned)p.smem_bytes);
    /* sm_75 has no bf16 mma: the SIMT path */
    CHECK(cuda_plan_make(m->kernels[0], "sm_75", &p, err, sizeof err) && p.kind == CUDA_KIND_SIMT);
    CHECK(!cuda_plan_make(m->kernels[0], "sm_60", &p, err, sizeof err) && strstr(err, "too old"));
    CHECK(!cuda_plan_make(m->kernels[0], "gfx90a", &p, err, sizeof err) && strstr(err, "sm_"));
    /* decode packs the 4 query heads of a kv head into one 16-row tile */
    CHECK(cuda_plan_make(m->kernels[1], "sm_90a", &p, err, sizeof err));
    CHECK(p.pack == 4 && p.br == 16 && p.splitkv);
    g = cuda_plan_fwd_grid(&p, m->kernels[1], 2, 1, 5);
    CHECK(g.gx == 1 && g.gy == 5 && g.gz == 2 * 8);
    /* the split heuristic: few CTAs and a long cache -> many splits; a full device -> 1 */
    int s_small = cuda_plan_num_splits(&p, m->kernels[1], 1, 1, 32768, 132);
    int s_big = cuda_plan_num_splits(&p, m->kernels[1], 512, 1, 32768, 132);   /* 4096 CTAs: several per slot */
    CHECK_MSG(s_small > 8 && s_small <= 128, "splits for batch 1: %d", s_small);
    CHECK(s_big == 1);
    CHECK(cuda_plan_num_splits(&p, m->kernels[1], 1, 1, 0, 132) == 1);
    CHECK(cuda_plan_num_splits(&p, m->kernels[1], 1, 1, p.bc, 132) == 1);   /* one key tile: nothing to split */
    /* a fixed split count (plan override) is taken as given, capped at the key tiles */
    cuda_plan fixed = p;
    CHECK(cuda_plan_override(&fixed, "splits=6", err, sizeof err) && fixed.splits == 6);
    CHECK(cuda_plan_num_splits(&fixed, m->kernels[1], 64, 1, 32768, 132) == 6);
    CHECK(cuda_plan_num_splits(&fixed, m->kernels[1], 64, 1, 3 * p.bc, 132) == 3);
    CHECK(cuda_workspace_bytes(m->kernels[1], &p, 2, 1, 5) == (size_t)5 * 2 * 32 * 1 * 129 * 4);
    CHECK(cuda_workspace_bytes(m->kernels[1], &p, 2, 1, 1) == 0);
    cuda_plan pre;
    CHECK(cuda_plan_make(m->kernels[0], "sm_80", &pre, err, sizeof err) && cuda_workspace_bytes(m->kernels[0], &pre, 2, 100, 4) == 0);
    /* f32 and head dims that are not a multiple of 8 take the SIMT path */
    CHECK(cuda_plan_make(m->kernels[2], "sm_90a", &p, err, sizeof err) && p.kind == CUDA_KIND_SIMT);
    CHECK(cuda_plan_make(m->kernels[3], "sm_90a", &p, err, sizeof err) && p.kind == CUDA_KIND_SIMT);
    /* overrides */
    CHECK(cuda_plan_make(m->kernels[0], "sm_80", &p, err, sizeof err));
    CHECK(cuda_plan_override(&p, "bc=32,stages=1", err, sizeof err) && p.bc == 32 && p.stages == 1 &&
          p.smem_bytes == p.br * p.d * 2 + 32 * p.d * 2 * 2);
    CHECK(!cuda_plan_override(&p, "bc=48", err, sizeof err));
    CHECK(!cuda_plan_override(&p, "nonsense", err, sizeof err));
    arena_free(&a);
}

static void test_validation(void) {
    arena a;
    arena_init(&a);
    ir_module *m = compile_text("kernel p {\n heads q = 4, kv = 2\n dims 64\n dtype bf16\n}\n", &a);
    CHECK(m != NULL);
    if (!m) return;
    const ir_kernel *k = m->kernels[0];
    cuda_plan p;
    char err[512];
    CHECK(cuda_plan_make(k, "sm_80", &p, err, sizeof err));
    cuda_args_fixed f;
    memset(&f, 0, sizeof f);
    f.batch = 2, f.seq_q = 10, f.seq_k = 20, f.n_splits = 1;
    f.q = 0x10000, f.k = 0x20000, f.v = 0x30000, f.o = 0x40000;
    int64_t st[4] = {20 * 4 * 64, 4 * 64, 64, 1};
    memcpy(f.q_st, st, sizeof st);
    memcpy(f.k_st, st, sizeof st);
    memcpy(f.v_st, st, sizeof st);
    memcpy(f.o_st, st, sizeof st);
    CHECK_MSG(cuda_validate_args(k, &p, &f, err, sizeof err), "%s", err);
    cuda_args_fixed b = f;
    b.k += 8;
    CHECK(!cuda_validate_args(k, &p, &b, err, sizeof err) && strstr(err, "'k'") && strstr(err, "16-byte"));
    b = f;
    b.v_st[1] = 72;   /* fine: a multiple of 8 elements */
    CHECK(cuda_validate_args(k, &p, &b, err, sizeof err));
    b.v_st[1] = 66;
    CHECK(!cuda_validate_args(k, &p, &b, err, sizeof err) && strstr(err, "'v'") && strstr(err, "multiple of 8"));
    b = f;
    b.q_st[3] = 2;
    CHECK(!cuda_validate_args(k, &p, &b, err, sizeof err) && strstr(err, "'q'"));
    b = f;
    b.o = 0;
    CHECK(!cuda_validate_args(k, &p, &b, err, sizeof err) && strstr(err, "'o'"));
    b = f;
    b.n_splits = 3;
    CHECK(!cuda_validate_args(k, &p, &b, err, sizeof err) && strstr(err, "workspace"));
    b = f;
    b.batch = 20000;
    CHECK(!cuda_validate_args(k, &p, &b, err, sizeof err) && strstr(err, "65535"));
    b = f;
    b.seq_k = (int64_t)1 << 31;
    CHECK(!cuda_validate_args(k, &p, &b, err, sizeof err) && strstr(err, "too long"));
    arena_free(&a);
}

static void test_arch_pick(void) {
    char out[16], err[256];
    CHECK(cuda_pick_arch(NULL, 9, 0, out, sizeof out, err, sizeof err) && strcmp(out, "sm_90a") == 0);
    CHECK(cuda_pick_arch("native", 8, 6, out, sizeof out, err, sizeof err) && strcmp(out, "sm_86") == 0);
    CHECK(cuda_pick_arch("sm_80", 8, 9, out, sizeof out, err, sizeof err) && strcmp(out, "sm_80") == 0);
    CHECK(!cuda_pick_arch("sm_80", 9, 0, out, sizeof out, err, sizeof err) && strstr(err, "sm_90a"));
    CHECK(!cuda_pick_arch("sm_90a", 10, 0, out, sizeof out, err, sizeof err));
    CHECK(!cuda_pick_arch("sm_86", 8, 0, out, sizeof out, err, sizeof err));
    CHECK(!cuda_pick_arch("banana", 8, 0, out, sizeof out, err, sizeof err));
    int cc;
    bool spec;
    CHECK(nvrtc_parse_arch("sm_90a", &cc, &spec) && cc == 90 && spec);
    CHECK(nvrtc_parse_arch("compute_80", &cc, &spec) && cc == 80 && !spec);
    CHECK(!nvrtc_parse_arch("sm_9", &cc, &spec));
    CHECK(!nvrtc_parse_arch("sm_90ab", &cc, &spec));
}

static void test_args_block(void) {
    arena a;
    arena_init(&a);
    ir_module *m = compile_text("kernel p {\n heads q = 4, kv = 2\n dims 64\n dtype bf16\n inputs doc[token]: i32, "
                                "bias[head]\n rope half\n mask doc[q_idx] == doc[kv_idx]\n}\n", &a);
    CHECK(m != NULL);
    if (!m) return;
    const ir_kernel *k = m->kernels[0];
    CHECK(cuda_args_n_inputs(k) == 2 && cuda_args_n_freq(k) == 32);
    size_t size = cuda_args_size(k);
    CHECK(size == sizeof(cuda_args_fixed) + 2 * 8 * 5 + 32 * 8);
    cuda_args_fixed f;
    memset(&f, 0, sizeof f);
    f.q = 0x1111, f.seq_k = 77, f.n_splits = 3;
    uint64_t in_ptr[2] = {0xAAAA, 0xBBBB};
    int64_t in_st[2][4] = {{5, 1, 0, 0}, {1, 0, 0, 0}};
    double freq[32];
    for (int i = 0; i < 32; i++) freq[i] = 1.0 / (i + 1);
    unsigned char *blob = malloc(size);
    cuda_args_pack(k, &f, in_ptr, (const int64_t(*)[4])in_st, freq, blob);
    uint64_t u;
    int64_t s;
    double dd;
    memcpy(&u, blob, 8);
    CHECK(u == 0x1111);
    memcpy(&s, blob + offsetof(cuda_args_fixed, seq_k), 8);
    CHECK(s == 77);
    memcpy(&u, blob + sizeof f + 8, 8);
    CHECK(u == 0xBBBB);
    memcpy(&s, blob + sizeof f + 16, 8);
    CHECK(s == 5);
    memcpy(&dd, blob + sizeof f + 16 + 64 + 8 * 31, 8);
    CHECK(dd == 1.0 / 32);
    free(blob);
    /* the emitted struct has the same members in the same order */
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    cuda_args_emit_struct(out, k);
    fclose(out);
    CHECK(strstr(buf, "u64 in_ptr[2];") && strstr(buf, "i64 in_st[2][4];") && strstr(buf, "double rope_freq[32];"));
    CHECK(strstr(buf, "u64 q, k, v, o, lse, pos, ws_o, ws_lse, state_in, state_out;"));
    free(buf);
    arena_free(&a);
}

static void test_ptxas_parse(void) {
    const char *log =
        "ptxas info    : 0 bytes gmem\n"
        "ptxas info    : Compiling entry function 'attnc_x_merge' for 'sm_80'\n"
        "ptxas info    : Function properties for attnc_x_merge\n"
        "ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n"
        "ptxas info    : Used 45 registers, used 0 barriers, 768 bytes cmem[0]\n"
        "ptxas info    : Compiling entry function 'attnc_x_fwd' for 'sm_80'\n"
        "ptxas info    : Function properties for attnc_x_fwd\n"
        "ptxas         .     96 bytes stack frame, 92 bytes spill stores, 88 bytes spill loads\n"
        "ptxas info    : Used 255 registers, used 1 barriers, 96 bytes cumulative stack size\n";
    cuda_ptxas_info info[4];
    int n = cuda_parse_ptxas_log(log, info, 4);
    CHECK(n == 2);
    CHECK(strcmp(info[0].function, "attnc_x_merge") == 0 && info[0].registers == 45 && info[0].spill_stores == 0);
    CHECK(strcmp(info[1].function, "attnc_x_fwd") == 0 && info[1].registers == 255 && info[1].stack_frame == 96 &&
          info[1].spill_stores == 92 && info[1].spill_loads == 88);
    CHECK(cuda_parse_ptxas_log("", info, 4) == 0);
}

/* Without a driver (or a GPU) cuda_run fails with a message, never a crash; with one it
 * runs (the gpu-labelled test checks the numbers). */
static void test_run_without_gpu(void) {
    arena a;
    arena_init(&a);
    ir_module *m = compile_text("kernel p {\n heads q = 1, kv = 1\n dims 64\n dtype bf16\n}\n", &a);
    if (!m) return;
    uint16_t q[64] = {0}, kk[64] = {0}, v[64] = {0}, o[64];
    attnc_tensor t[4] = {
        {"q", ATTNC_BF16, 4, {1, 1, 1, 64}, {0}, q}, {"k", ATTNC_BF16, 4, {1, 1, 1, 64}, {0}, kk},
        {"v", ATTNC_BF16, 4, {1, 1, 1, 64}, {0}, v}, {"o", ATTNC_BF16, 4, {1, 1, 1, 64}, {0}, o},
    };
    char err[2048] = "";
    cuda_driver drv;
    bool have_driver = cuda_driver_open(&drv, err, sizeof err);
    if (have_driver) cuda_driver_close(&drv);
    else CHECK(strstr(err, "CUDA driver") != NULL);
    bool ran = cuda_run(m->kernels[0], NULL, 1, 1, 1, t, 4, err, sizeof err);
    if (!ran) {
        CHECK_MSG(strlen(err) > 10, "cuda_run failed without saying why");
        printf("  cuda_run here: %s\n", err);
    }
    /* a bad view is reported before anything is launched */
    t[1].shape[3] = 32;
    CHECK(!cuda_run(m->kernels[0], NULL, 1, 1, 1, t, 4, err, sizeof err) && strstr(err, "'k'"));
    arena_free(&a);
}

/* Recurrence plans: which form each kernel gets, the step entry for seq <= 1, geometry,
 * shared memory within the arch, overrides. */
static void test_recur_plans(void) {
    arena a;
    arena_init(&a);
    ir_module *m = compile_text(
        "kernel m : recurrence {\n heads 80, groups = 1\n dims k = 128, v = 64\n dtype bf16\n"
        " inputs dt[token, head], A_log[head]\n decay exp(-dt * exp(A_log))\n update S = decay * S + outer(k, dt * v)\n chunk 256\n}\n"
        "kernel r : recurrence {\n heads 8\n dims k = 64, v = 128\n dtype f32\n decay 1 - 2 ^ (-5 - head)\n}\n"
        "kernel g : recurrence {\n heads 4\n dims k = 64, v = 128\n dtype bf16\n inputs g[token, head, k]\n decay exp(-g * g)\n}\n"
        "kernel s : recurrence {\n heads 4\n dims k = 16, v = 32\n inputs A[head, k, v]\n decay exp(-exp(A))\n}\n"
        "kernel d : recurrence {\n heads 80\n dims k = 128, v = 64\n dtype bf16\n phase decode\n}\n"
        "kernel n : recurrence {\n heads 2\n dims k = 64, v = 96\n dtype bf16\n feature elu(x) + 1\n normalize\n}\n", &a);
    CHECK(m != NULL);
    if (!m) return;
    cuda_plan p;
    char err[512];
    const struct { const char *kernel, *arch; int form; } want[] = {
        {"m", "sm_80", CUDA_RECUR_CHUNK_MMA}, {"m", "sm_90a", CUDA_RECUR_CHUNK_MMA}, {"m", "sm_75", CUDA_RECUR_CHUNK},
        {"r", "sm_80", CUDA_RECUR_CHUNK}, {"g", "sm_80", CUDA_RECUR_CHUNK_MMA}, {"s", "sm_80", CUDA_RECUR_STEP},
        {"d", "sm_90a", CUDA_RECUR_STEP}, {"n", "sm_80", CUDA_RECUR_CHUNK_MMA},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const ir_kernel *k = ir_module_find(m, want[i].kernel);
        bool ok = cuda_plan_make(k, want[i].arch, &p, err, sizeof err);
        CHECK_MSG(ok && (int)p.recur_form == want[i].form, "%s on %s: form %d, expected %d (%s)", want[i].kernel,
                  want[i].arch, p.recur_form, want[i].form, ok ? p.recur_note : err);
        CHECK(p.smem_bytes <= p.smem_limit && p.step_smem <= p.smem_limit && p.step_threads <= 256);
        /* seq <= 1 goes to the step kernel; its own entry unless the form is the step */
        CHECK(cuda_plan_uses_step(&p, 1) && cuda_plan_uses_step(&p, 0));
        CHECK(cuda_plan_uses_step(&p, 100) == (p.recur_form == CUDA_RECUR_STEP));
        CHECK((strcmp(p.step_name, p.fwd_name) == 0) == (p.recur_form == CUDA_RECUR_STEP));
        cuda_grid g1 = cuda_plan_fwd_grid(&p, k, 3, 1, 1), gn = cuda_plan_fwd_grid(&p, k, 3, 500, 1);
        CHECK(g1.gx == 1 && g1.gz == 3u * (unsigned)k->heads_q && g1.threads == (unsigned)p.step_threads);
        if (p.recur_form != CUDA_RECUR_STEP)
            CHECK(gn.gx == (unsigned)((k->d_v + p.rdvc - 1) / p.rdvc) && gn.smem == (unsigned)p.smem_bytes &&
                  gn.threads == (unsigned)p.threads);
        if (k->normalize) CHECK(p.recur_form == CUDA_RECUR_STEP || p.rdvc >= k->d_v);   /* one owner of z */
    }
    CHECK(cuda_plan_make(ir_module_find(m, "m"), "sm_80", &p, err, sizeof err));
    CHECK(p.chunk == 256 && p.rb == 64 && p.rd == 128);
    CHECK(cuda_plan_override(&p, "form=chunk,rb=32,dvc=16", err, sizeof err) && p.recur_form == CUDA_RECUR_CHUNK &&
          p.rb == 32 && p.rdvc == 16);
    CHECK(cuda_plan_override(&p, "form=step", err, sizeof err) && p.recur_form == CUDA_RECUR_STEP &&
          !strcmp(p.step_name, p.fwd_name));
    CHECK(cuda_plan_override(&p, "form=mma,rstep=0", err, sizeof err) && p.recur_form == CUDA_RECUR_CHUNK_MMA &&
          !cuda_plan_uses_step(&p, 1) && strcmp(p.step_name, p.fwd_name) != 0);
    CHECK(!cuda_plan_override(&p, "rb=32", err, sizeof err));          /* tensor cores use 64-token blocks */
    CHECK(!cuda_plan_override(&p, "form=banana", err, sizeof err));
    CHECK(cuda_plan_make(ir_module_find(m, "s"), "sm_80", &p, err, sizeof err));
    CHECK(!cuda_plan_override(&p, "form=chunk", err, sizeof err) && strstr(err, "no chunk form"));
    CHECK(cuda_plan_make(ir_module_find(m, "r"), "sm_80", &p, err, sizeof err));
    CHECK(!cuda_plan_override(&p, "form=mma", err, sizeof err));       /* f32 */
    CHECK(cuda_plan_make(ir_module_find(m, "n"), "sm_80", &p, err, sizeof err));
    CHECK(!cuda_plan_override(&p, "dvc=32", err, sizeof err) && strstr(err, "normalised"));
    arena_free(&a);
}

int main(void) {
    test_example_plans();
    test_plan_rules();
    test_recur_plans();
    test_validation();
    test_arch_pick();
    test_args_block();
    test_ptxas_parse();
    test_run_without_gpu();
    return check_status("test_cuda_host");
}
