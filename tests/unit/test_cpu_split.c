/* Concurrent JIT compilation (runtime/llvm/cpu_split.c) and the parts image it is cached
 * as (runtime/parts_image.c):
 * - the image: round trips of 1..3 parts, a plain blob reads as one part, malformed
 *   images (truncated, no parts, too many, a size past the end) read as none;
 * - the split: a module compiles into as many parts as asked (up to its definitions),
 *   each a relocatable object, and the linked kernel gives bit-for-bit the output of the
 *   whole-module compile and agrees with the float64 interpreter (fp32 1e-5 of the row's
 *   largest |o|, as test_cpu_examples.c), on prefill, decode, GQA-packed and MLA kernels;
 * - the kernel cache stores the parts as one image and a second compile links it back. */
#if ATTNC_HAVE_LLVM
#include <unistd.h>
#include "cpu_harness.h"
#include "codegen/llvm/cpu_kernel.h"
#include "runtime/kernel_cache.h"
#include "runtime/llvm/cpu_split.h"
#include "runtime/parts_image.h"

static void test_parts_image(void) {
    const char a[] = "first part", b[] = "2", c[] = "the third part, longer";
    const void *in[3] = { a, b, c };
    size_t in_size[3] = { sizeof a, sizeof b, sizeof c };
    const void *part[PARTS_IMAGE_MAX];
    size_t size[PARTS_IMAGE_MAX];
    for (int n = 1; n <= 3; n++) {
        size_t img_size = 0;
        unsigned char *img = parts_image_pack(in, in_size, n, &img_size);
        CHECK(img != NULL);
        if (!img) continue;
        CHECK(parts_image_read(img, img_size, part, size) == n);
        for (int i = 0; i < n; i++) {
            CHECK(size[i] == in_size[i] && memcmp(part[i], in[i], in_size[i]) == 0);
            CHECK(((const unsigned char *)part[i] - img) % 8 == 0);
        }
        CHECK(parts_image_read(img, img_size - 1, part, size) == 0);
        CHECK(parts_image_read(img, 20, part, size) == 0);
        uint32_t count = 0;
        memcpy(img + 8, &count, 4);
        CHECK(parts_image_read(img, img_size, part, size) == 0);
        count = PARTS_IMAGE_MAX + 1;
        memcpy(img + 8, &count, 4);
        CHECK(parts_image_read(img, img_size, part, size) == 0);
        count = (uint32_t)n;
        memcpy(img + 8, &count, 4);
        uint64_t huge = ~(uint64_t)0 - 4;
        memcpy(img + 16 + 8 * (n - 1), &huge, 8);
        CHECK(parts_image_read(img, img_size, part, size) == 0);
        free(img);
    }
    size_t s = 0;
    CHECK(parts_image_pack(in, in_size, 0, &s) == NULL && s == 0);
    CHECK(parts_image_pack(in, in_size, PARTS_IMAGE_MAX + 1, &s) == NULL);
    CHECK(parts_image_read(a, sizeof a, part, size) == 1 && part[0] == a && size[0] == sizeof a);
    CHECK(parts_image_read(a, 0, part, size) == 0);
    CHECK(parts_image_read(NULL, 8, part, size) == 0);
}

static int definitions(LLVMModuleRef m) {
    int n = 0;
    for (LLVMValueRef f = LLVMGetFirstFunction(m); f; f = LLVMGetNextFunction(f)) n += !LLVMIsDeclaration(f);
    return n;
}

/* cpu_split_compile yields min(asked, definitions) ELF objects. */
static void test_part_counts(const ir_kernel *k, const cpu_target *t) {
    char err[512];
    for (int ask = 1; ask <= CPU_SPLIT_MAX; ask++) {
        LLVMContextRef ctx = LLVMContextCreate();
        LLVMModuleRef m = cpu_kernel_emit(k, t, ctx, err, sizeof err);
        CHECK_MSG(m != NULL, "%s", err);
        if (!m) {
            LLVMContextDispose(ctx);
            continue;
        }
        int defs = definitions(m);
        LLVMMemoryBufferRef objs[CPU_SPLIT_MAX];
        int n = cpu_split_compile(m, t, ask, objs, err, sizeof err);
        LLVMContextDispose(ctx);
        /* the IPO step may drop a dead definition, never add one */
        CHECK_MSG(n == (ask < defs ? ask : n) && n >= 1 && n <= defs, "%s: asked %d parts, got %d (%s)", k->name, ask,
                  n, err);
        for (int i = 0; i < n; i++) {
            CHECK(LLVMGetBufferSize(objs[i]) > 64 && memcmp(LLVMGetBufferStart(objs[i]), "\177ELF", 4) == 0);
            LLVMDisposeMemoryBuffer(objs[i]);
        }
    }
}

/* Output tensors of a launch, as bytes. */
static size_t output_bytes(const launch_case *lc, int i) {
    return (size_t)tensor_count(&lc->t[i]) * (size_t)attnc_dtype_size(lc->t[i].dtype);
}

static void split_case(const char *what, const char *spec, const int64_t (*shapes)[3], int n_shapes) {
    spec_file sf;
    bool ok = spec_load(&sf, NULL, spec);
    CHECK_MSG(ok, "%s: spec does not compile", what);
    if (!ok) return;
    ir_kernel *k = sf.m->kernels[0];
    cpu_target t;
    char err[512];
    CHECK(cpu_target_host(&t, err, sizeof err));
    test_part_counts(k, &t);
    cpu_compiled *whole = cpu_compile_parts(k, &t, 1, NULL, err, sizeof err);
    CHECK_MSG(whole != NULL, "%s: whole compile: %s", what, err);
    for (int parts = 2; whole && parts <= CPU_SPLIT_MAX; parts++) {
        cpu_compiled *split = cpu_compile_parts(k, &t, parts, NULL, err, sizeof err);
        CHECK_MSG(split != NULL, "%s: %d-part compile: %s", what, parts, err);
        for (int s = 0; split && s < n_shapes; s++) {
            launch_case lc;
            case_make(&lc, k, shapes[s][0], shapes[s][1], shapes[s][2]);
            CHECK(case_run_ref(&lc));
            CHECK_MSG(cpu_launch(whole, k, 1, shapes[s][0], shapes[s][1], shapes[s][2], lc.t, lc.n, err, sizeof err),
                      "%s", err);
            size_t ob = output_bytes(&lc, lc.o), lb = output_bytes(&lc, lc.lse);
            void *o_whole = malloc(ob), *l_whole = malloc(lb);
            memcpy(o_whole, lc.t[lc.o].data, ob);
            memcpy(l_whole, lc.t[lc.lse].data, lb);
            memset(lc.t[lc.o].data, 0xff, ob);
            memset(lc.t[lc.lse].data, 0xff, lb);
            CHECK_MSG(cpu_launch(split, k, 1, shapes[s][0], shapes[s][1], shapes[s][2], lc.t, lc.n, err, sizeof err),
                      "%s", err);
            CHECK_MSG(memcmp(o_whole, lc.t[lc.o].data, ob) == 0 && memcmp(l_whole, lc.t[lc.lse].data, lb) == 0,
                      "%s, %d parts, shape %d: output differs from the whole-module compile", what, parts, s);
            double lse_err, e = case_compare(&lc, &lse_err);
            CHECK_MSG(e <= 1e-5 && lse_err <= 1e-5, "%s, %d parts, shape %d: o error %.3g, lse error %.3g", what, parts,
                      s, e, lse_err);
            free(o_whole);
            free(l_whole);
            case_free(&lc);
        }
        cpu_compiled_free(split);
    }
    cpu_compiled_free(whole);
    spec_free(&sf);
}

static void test_split_kernels(void) {
    static const int64_t prefill[][3] = { { 1, 17, 17 }, { 2, 65, 65 }, { 1, 1, 300 } };
    split_case("causal GQA prefill with RoPE",
               "kernel t { heads q = 8, kv = 2\n dims 64\n rope half\n mask causal }", prefill, 3);
    split_case("softcap, window",
               "kernel t { heads q = 2, kv = 1\n dims 40\n score softcap(score, 20)\n mask sliding_window(9) }",
               prefill, 3);
    static const int64_t decode[][3] = { { 2, 1, 1000 }, { 1, 1, 63 } };
    split_case("MLA decode", "kernel t { heads q = 16, kv = 1\n latent rank = 64, rope = 16\n scale 0.1\n mask causal }", decode, 2);
}

/* With a cache, the parts are stored as one parts image, and a second compile of the
 * kernel links that image (no code generation) into a working kernel. */
static void test_cache_round_trip(void) {
    char dir[] = "/tmp/attnc-split-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    kernel_cache cache;
    char err[512];
    CHECK(kernel_cache_open(&cache, dir, err, sizeof err));
    spec_file sf;
    CHECK(spec_load(&sf, NULL, "kernel t { heads q = 4, kv = 2\n dims 32\n mask causal }"));
    ir_kernel *k = sf.m->kernels[0];
    cpu_cache_result r1, r2;
    cpu_compiled *a = cpu_compile_cached(k, &cache, &r1, err, sizeof err);
    CHECK_MSG(a && !r1.from_cache && r1.stored, "%s", err);
    void *data = NULL;
    size_t size = 0;
    bool corrupt = false;
    CHECK(kernel_cache_load(&cache, &r1.key, &data, &size, &corrupt));
    const void *part[PARTS_IMAGE_MAX];
    size_t part_size[PARTS_IMAGE_MAX];
    int n = parts_image_read(data, size, part, part_size);
    CHECK_MSG(n == cpu_split_default_parts(), "cached image holds %d parts, expected %d", n,
              cpu_split_default_parts());
    free(data);
    cpu_compiled *b = cpu_compile_cached(k, &cache, &r2, err, sizeof err);
    CHECK_MSG(b && r2.from_cache, "%s", err);
    launch_case lc;
    case_make(&lc, k, 1, 33, 33);
    CHECK(case_run_ref(&lc));
    CHECK_MSG(b && cpu_launch(b, k, 2, 1, 33, 33, lc.t, lc.n, err, sizeof err), "%s", err);
    double lse_err, e = case_compare(&lc, &lse_err);
    CHECK_MSG(e <= 1e-5 && lse_err <= 1e-5, "cached parts: o error %.3g, lse error %.3g", e, lse_err);
    case_free(&lc);
    cpu_compiled_free(a);
    cpu_compiled_free(b);
    spec_free(&sf);
    CHECK(kernel_cache_remove(&cache, &r1.key));
    CHECK_MSG(rmdir(dir) == 0, "the cache held more than the one entry");
}

int main(void) {
    test_parts_image();
    test_split_kernels();
    test_cache_round_trip();
    return check_status("test_cpu_split");
}
#else
#include <stdio.h>
int main(void) {
    printf("test_cpu_split: not applicable, attnc was built without LLVM (ATTNC_LLVM=OFF)\n");
    return 0;
}
#endif
