/* Every softmax kernel of every examples/NAME.attn through the CPU JIT against the float64
 * interpreter, on awkward shapes: one token, lengths that are no multiple of any tile
 * (17, 63, 65, 1000), decode (1 query against 1000 keys), seq_q < seq_k, batch 2.
 *
 * Tolerances: fp32 kernels 1e-5 of the row's largest |o| (row-relative, see
 * cpu_harness.h); bf16/f16 kernels 2e-2 (their outputs are rounded to 8/11 bits). Kernels
 * whose spec dtype is bf16/f16 also run with the dtype switched to f32 at 1e-5, so the
 * tight bound covers every skeleton, not just the f32 examples. lse (always f32) within
 * 1e-5 relative (absolute below 1); fully masked rows exactly 0 and -inf.
 *
 * The interpreter is O(seq_q * seq_k * heads * d); to keep this test to seconds, heads
 * are cut to at most two kv heads (the GQA ratio kept) except for the smallest shapes,
 * and the 1000 x 1000 case uses one kv head and at most two query heads. */
#if ATTNC_HAVE_LLVM
#include <dirent.h>
#include "cpu_harness.h"

typedef struct shape { int64_t batch, seq_q, seq_k; int max_kv; int max_group; } shape;

static const shape NATIVE[] = {
    { 1, 1, 1, 1 << 20, 1 << 20 }, { 1, 17, 17, 1 << 20, 1 << 20 }, { 1, 63, 63, 2, 1 << 20 },
    { 2, 65, 65, 2, 1 << 20 },     { 1, 1, 1000, 2, 1 << 20 },      { 1, 17, 63, 2, 1 << 20 },
    { 1, 1000, 1000, 1, 2 },
};
static const shape AS_F32[] = {
    { 1, 17, 17, 2, 1 << 20 }, { 2, 65, 65, 2, 1 << 20 }, { 1, 1, 1000, 2, 1 << 20 }, { 1, 130, 200, 1, 4 },
};

static int n_cases;

static void run_shapes(ir_kernel *k, const shape *shapes, int n, double tol) {
    int hq0 = k->heads_q, hkv0 = k->heads_kv, group = hq0 / hkv0;
    for (int i = 0; i < n; i++) {
        const shape *s = &shapes[i];
        if (k->rope.layout != IR_ROPE_NONE && k->rope.explicit_positions && s->seq_q > s->seq_k) continue;
        int hkv = hkv0 < s->max_kv ? hkv0 : s->max_kv;
        int g = group < s->max_group ? group : s->max_group;
        k->heads_kv = hkv;
        k->heads_q = hkv * g;
        launch_case lc;
        case_make(&lc, k, s->batch, s->seq_q, s->seq_k);
        char err[512] = "";
        bool ref_ok = case_run_ref(&lc);
        CHECK_MSG(ref_ok, "%s: interpreter failed", k->name);
        bool ok = ref_ok && cpu_run(k, s->batch, s->seq_q, s->seq_k, lc.t, lc.n, err, sizeof err);
        CHECK_MSG(!ref_ok || ok, "%s: cpu_run failed: %s", k->name, err);
        if (ok) {
            double lse_err, e = case_compare(&lc, &lse_err);
            n_cases++;
            CHECK_MSG(e <= tol && lse_err <= 1e-5,
                      "%s (%s, heads %d/%d) batch %lld seq_q %lld seq_k %lld: o error %.3g (tol %.1g), lse error %.3g",
                      k->name, k->dtype == IR_F32 ? "f32" : k->dtype == IR_BF16 ? "bf16" : "f16", k->heads_q,
                      k->heads_kv, (long long)s->batch, (long long)s->seq_q, (long long)s->seq_k, e, tol, lse_err);
        }
        case_free(&lc);
    }
    k->heads_q = hq0;
    k->heads_kv = hkv0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/examples", ATTNC_SOURCE_DIR);
    DIR *d = opendir(dir);
    CHECK_MSG(d != NULL, "cannot open %s", dir);
    if (!d) return check_status("test_cpu_examples");
    char *files[256];
    int n_files = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n_files < 256) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".attn") == 0) files[n_files++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(files, (size_t)n_files, sizeof *files, cmp_str);
    int n_kernels = 0;
    for (int f = 0; f < n_files; f++) {
        char path[512];
        snprintf(path, sizeof path, "examples/%s", files[f]);
        spec_file sf;
        bool loaded = spec_load(&sf, path, NULL);
        CHECK_MSG(loaded, "%s does not compile", path);
        for (int i = 0; loaded && i < sf.m->n_kernels; i++) {
            ir_kernel *k = sf.m->kernels[i];
            if (k->family != IR_SOFTMAX) continue;   /* recurrences: tests/unit/test_cpu_recur.c */
            n_kernels++;
            ir_dtype native = k->dtype;
            run_shapes(k, NATIVE, (int)(sizeof NATIVE / sizeof *NATIVE), native == IR_F32 ? 1e-5 : 2e-2);
            if (native != IR_F32) {
                k->dtype = IR_F32;
                run_shapes(k, AS_F32, (int)(sizeof AS_F32 / sizeof *AS_F32), 1e-5);
                k->dtype = native;
            }
        }
        spec_free(&sf);
        free(files[f]);
    }
    CHECK_MSG(n_kernels >= 10, "only %d softmax kernels found in examples/", n_kernels);
    printf("%d softmax kernels, %d cases\n", n_kernels, n_cases);
    return check_status("test_cpu_examples");
}
#else
#include <stdio.h>
int main(void) {
    printf("test_cpu_examples: not applicable, attnc was built without LLVM (ATTNC_LLVM=OFF)\n");
    return 0;
}
#endif
