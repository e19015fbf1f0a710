/* Host detection and target machines for the CPU backend. */
#include "codegen/llvm/cpu_target.h"
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <llvm-c/Core.h>
#include <llvm-c/Target.h>

static pthread_once_t llvm_once = PTHREAD_ONCE_INIT;

static void llvm_init_once(void) {
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    LLVMInitializeNativeAsmParser();
}

void cpu_llvm_init(void) { pthread_once(&llvm_once, llvm_init_once); }

bool cpu_has_feature(const char *features, const char *name) {
    size_t n = strlen(name);
    for (const char *p = features; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n + 1 && p[0] == '+' && strncmp(p + 1, name, n) == 0) return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

static void derive(cpu_target *t) {
    t->x86 = strncmp(t->triple, "x86_64", 6) == 0 || strncmp(t->triple, "i386", 4) == 0 ||
             strncmp(t->triple, "i686", 4) == 0;
    const char *f = t->features;
    if (t->x86) {
        t->avx512 = cpu_has_feature(f, "avx512f");
        t->fma = cpu_has_feature(f, "fma");
        t->f16c = cpu_has_feature(f, "f16c");
        t->avx512bf16 = cpu_has_feature(f, "avx512bf16");
        bool avx = cpu_has_feature(f, "avx") || cpu_has_feature(f, "avx2");
        t->lanes = t->avx512 ? 16 : avx ? 8 : 4;
    } else {
        /* Other ISAs: 128-bit vectors (NEON and the like) with FMA assumed on aarch64. */
        t->fma = strncmp(t->triple, "aarch64", 7) == 0;
        t->f16c = t->fma;
        t->lanes = 4;
    }
}

bool cpu_target_init(cpu_target *t, const char *triple, const char *cpu, const char *features,
                     char *err, size_t errlen) {
    cpu_llvm_init();
    memset(t, 0, sizeof *t);
    char *host_triple = NULL;
    if (!triple) triple = host_triple = LLVMGetDefaultTargetTriple();
    char *norm = LLVMNormalizeTargetTriple(triple);
    LLVMDisposeMessage(host_triple);
    if (strlen(norm) >= sizeof t->triple || strlen(cpu ? cpu : "") >= sizeof t->cpu ||
        strlen(features ? features : "") >= sizeof t->features) {
        snprintf(err, errlen, "target description too long; use a shorter triple, cpu or feature string");
        LLVMDisposeMessage(norm);
        return false;
    }
    strcpy(t->triple, norm);
    LLVMDisposeMessage(norm);
    strcpy(t->cpu, cpu ? cpu : "generic");
    strcpy(t->features, features ? features : "");
    LLVMTargetRef target;
    char *msg = NULL;
    if (LLVMGetTargetFromTriple(t->triple, &target, &msg)) {
        snprintf(err, errlen, "no LLVM target for triple '%s': %s", t->triple, msg ? msg : "?");
        LLVMDisposeMessage(msg);
        return false;
    }
    derive(t);
    return true;
}

bool cpu_target_host(cpu_target *t, char *err, size_t errlen) {
    cpu_llvm_init();
    char *cpu = LLVMGetHostCPUName();
    char *features = LLVMGetHostCPUFeatures();
    bool ok = cpu_target_init(t, NULL, cpu, features, err, errlen);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    return ok;
}

LLVMTargetMachineRef cpu_target_machine(const cpu_target *t, bool for_jit, char *err, size_t errlen) {
    cpu_llvm_init();
    LLVMTargetRef target;
    char *msg = NULL;
    if (LLVMGetTargetFromTriple(t->triple, &target, &msg)) {
        snprintf(err, errlen, "no LLVM target for triple '%s': %s", t->triple, msg ? msg : "?");
        LLVMDisposeMessage(msg);
        return NULL;
    }
    /* Objects are PIC so they link into executables and shared libraries alike. */
    LLVMTargetMachineRef tm = LLVMCreateTargetMachine(
        target, t->triple, t->cpu, t->features, LLVMCodeGenLevelAggressive,
        for_jit ? LLVMRelocDefault : LLVMRelocPIC, for_jit ? LLVMCodeModelJITDefault : LLVMCodeModelDefault);
    if (!tm) snprintf(err, errlen, "cannot create a target machine for %s (%s)", t->triple, t->cpu);
    return tm;
}
