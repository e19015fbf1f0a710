/* Targets of the CPU backend: feature parsing, the host's lanes, the LLVM IR text of
 * `attnc emit --target llvm`, and code generation for machines this one may not be:
 * AVX-512 (zmm FMAs with the 512-bit attributes), AVX2 without AVX-512, plain SSE2, and
 * an f16 kernel without F16C (refused with a message). Generation only; nothing runs. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#if ATTNC_HAVE_LLVM
#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>
#include "codegen/llvm/cpu_backend.h"
#include "codegen/llvm/cpu_kernel.h"
#include "codegen/llvm/cpu_runtime.h"
#include "frontend/frontend.h"
#include "runtime/llvm/cpu_jit.h"

static const char *SPEC = "kernel t {\n heads q = 8, kv = 2\n dims 64\n dtype bf16\n rope half\n"
                          " score softcap(score, 30)\n mask sliding_window(256)\n}\n"
                          "kernel h {\n heads q = 2, kv = 1\n dims 16\n dtype f16\n}\n";

/* Assembly text of the optimised kernel for target t (caller frees). */
static char *assembly(const ir_kernel *k, const cpu_target *t) {
    char err[512];
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef m = cpu_kernel_emit(k, t, ctx, err, sizeof err);
    CHECK_MSG(m != NULL, "%s", err);
    char *text = NULL;
    if (m && cpu_optimize_module(m, t, err, sizeof err)) {
        LLVMTargetMachineRef tm = cpu_target_machine(t, false, err, sizeof err);
        LLVMMemoryBufferRef buf = NULL;
        char *msg = NULL;
        if (tm && !LLVMTargetMachineEmitToMemoryBuffer(tm, m, LLVMAssemblyFile, &msg, &buf)) {
            size_t n = LLVMGetBufferSize(buf);
            text = malloc(n + 1);
            memcpy(text, LLVMGetBufferStart(buf), n);
            text[n] = 0;
            LLVMDisposeMemoryBuffer(buf);
        } else {
            CHECK_MSG(0, "emission failed: %s", msg ? msg : err);
        }
        LLVMDisposeMessage(msg);
        if (tm) LLVMDisposeTargetMachine(tm);
    }
    if (m) LLVMDisposeModule(m);
    LLVMContextDispose(ctx);
    return text;
}

static int count(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p++) n++;
    return n;
}

int main(void) {
    char err[512];
    CHECK(cpu_has_feature("+sse2,+avx512f,-avx512bf16", "avx512f"));
    CHECK(!cpu_has_feature("+sse2,+avx512f,-avx512bf16", "avx512bf16"));
    CHECK(!cpu_has_feature("+avx512fp16", "avx512f"));
    cpu_target host;
    CHECK_MSG(cpu_target_host(&host, err, sizeof err), "%s", err);
    CHECK(host.lanes == 4 || host.lanes == 8 || host.lanes == 16);
    if (host.x86) CHECK(host.lanes == (host.avx512 ? 16 : cpu_has_feature(host.features, "avx2") ? 8 : host.lanes));

    arena a;
    arena_init(&a);
    diag_sink d;
    diag_init(&d, "<test>", SPEC, strlen(SPEC));
    ir_module *m = frontend_compile(SPEC, strlen(SPEC), &a, &d);
    bool ok = d.n_errors == 0 && ir_run_pipeline(m, &d, NULL, NULL);
    CHECK(ok);
    if (!ok) diag_print(&d, stderr);
    ir_kernel *k = ok ? ir_module_find(m, "t") : NULL, *kh = ok ? ir_module_find(m, "h") : NULL;
    if (k && kh) {
        /* IR text: the exported functions and per-function target attributes. */
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        CHECK_MSG(cpu_emit_llvm_ir(k, f, err, sizeof err), "%s", err);
        fclose(f);
        CHECK(strstr(text, "define i32 @attnc_t(") != NULL);
        CHECK(strstr(text, "@attnc_t_run_items(") != NULL);
        CHECK(strstr(text, "\"target-features\"") != NULL);
        CHECK(strstr(text, "llvm.fma") != NULL || !host.fma);
        free(text);

        cpu_target avx512;
        CHECK(cpu_target_init(&avx512, "x86_64-unknown-linux-gnu", "skylake-avx512",
                              "+sse2,+avx,+avx2,+fma,+f16c,+avx512f,+avx512bw,+avx512vl,+avx512dq", err, sizeof err));
        CHECK(avx512.lanes == 16 && avx512.avx512);
        char *s = assembly(k, &avx512);
        if (s) {
            int zfma = count(s, "vfmadd231ps\t%zmm") + count(s, "vfmadd213ps\t%zmm") + count(s, "vfmadd231ps\t(");
            CHECK_MSG(zfma > 20, "AVX-512 kernel has too few zmm FMAs (%d)", zfma);
            CHECK(count(s, "%zmm") > 100);
            free(s);
        }
        cpu_target avx2;
        CHECK(cpu_target_init(&avx2, "x86_64-unknown-linux-gnu", "haswell", "+sse2,+avx,+avx2,+fma,+f16c", err, sizeof err));
        CHECK(avx2.lanes == 8 && !avx2.avx512);
        s = assembly(k, &avx2);
        if (s) {
            CHECK(count(s, "%zmm") == 0);
            CHECK(count(s, "vfmadd231ps\t%ymm") + count(s, "vfmadd213ps\t%ymm") > 20);
            free(s);
        }
        cpu_target sse;
        CHECK(cpu_target_init(&sse, "x86_64-unknown-linux-gnu", "x86-64", "+sse2", err, sizeof err));
        CHECK(sse.lanes == 4 && !sse.fma);
        s = assembly(k, &sse);
        if (s) {
            CHECK(count(s, "%ymm") == 0 && count(s, "mulps") > 10);
            CHECK(count(s, "fmaf") == 0);   /* no libcalls for fused multiply-add */
            free(s);
        }
        /* f16 needs F16C on x86. */
        CHECK(cpu_kernel_unsupported(kh, &sse) != NULL);
        CHECK(cpu_kernel_unsupported(kh, &avx2) == NULL);

        /* Object + header for an explicit target (what `attnc build` writes). */
        char dir[] = "/tmp/attnc_cpu_target_XXXXXX";
        if (mkdtemp(dir)) {
            CHECK_MSG(cpu_build_for(k, &avx512, dir, err, sizeof err), "%s", err);
            char path[256];
            snprintf(path, sizeof path, "%s/t.o", dir);
            FILE *o = fopen(path, "rb");
            CHECK(o != NULL);
            if (o) {
                fseek(o, 0, SEEK_END);
                CHECK(ftell(o) > 1000);
                fclose(o);
                remove(path);
            }
            snprintf(path, sizeof path, "%s/t.h", dir);
            o = fopen(path, "r");
            CHECK(o != NULL);
            if (o) {
                char buf[8192];
                size_t n = fread(buf, 1, sizeof buf - 1, o);
                buf[n] = 0;
                CHECK(strstr(buf, "int32_t attnc_t(attnc_t_args *a);") != NULL);
                CHECK(strstr(buf, "attnc_t_tensor q;") != NULL);
                fclose(o);
                remove(path);
            }
            rmdir(dir);
        }
    }
    diag_free(&d);
    arena_free(&a);
    return check_status("test_cpu_target");
}
#else
int main(void) {
    printf("test_cpu_target: not applicable, attnc was built without LLVM (ATTNC_LLVM=OFF)\n");
    return 0;
}
#endif
