/* ORC LLJIT wrapper, O3 pipeline and object emission (see cpu_jit.h). */
#include "runtime/llvm/cpu_jit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <llvm-c/Error.h>
#include <llvm-c/ExecutionEngine.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/OrcEE.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>

struct cpu_jit {
    LLVMOrcLLJITRef jit;
};

static bool take_error(LLVMErrorRef e, const char *what, char *err, size_t errlen) {
    if (!e) return true;
    char *msg = LLVMGetErrorMessage(e);
    snprintf(err, errlen, "%s: %s", what, msg);
    LLVMDisposeErrorMessage(msg);
    return false;
}

static void set_layout(LLVMModuleRef m, const cpu_target *t, LLVMTargetMachineRef tm) {
    LLVMSetTarget(m, t->triple);
    LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(m, dl);
    LLVMDisposeTargetData(dl);
}

bool cpu_run_passes(LLVMModuleRef m, const cpu_target *t, const char *pipeline, char *err, size_t errlen) {
    LLVMTargetMachineRef tm = cpu_target_machine(t, false, err, errlen);
    if (!tm) return false;
    set_layout(m, t, tm);
    LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
    /* The micro-kernels are unrolled by the generator; letting the unroller multiply
     * them again only grows code and compile time. */
    LLVMPassBuilderOptionsSetLoopUnrolling(opts, 0);
    LLVMErrorRef e = LLVMRunPasses(m, pipeline, tm, opts);
    LLVMDisposePassBuilderOptions(opts);
    LLVMDisposeTargetMachine(tm);
    return take_error(e, "LLVM optimisation failed", err, errlen);
}

bool cpu_optimize_module(LLVMModuleRef m, const cpu_target *t, char *err, size_t errlen) {
    return cpu_run_passes(m, t, "default<O3>", err, errlen);
}

bool cpu_emit_object(LLVMModuleRef m, const cpu_target *t, const char *path, char *err, size_t errlen) {
    LLVMTargetMachineRef tm = cpu_target_machine(t, false, err, errlen);
    if (!tm) return false;
    set_layout(m, t, tm);
    char *msg = NULL;
    /* LLVMTargetMachineEmitToFile takes a non-const path in LLVM 14. */
    char *p = strdup(path);
    bool failed = !p || LLVMTargetMachineEmitToFile(tm, m, p, LLVMObjectFile, &msg);
    free(p);
    if (failed) snprintf(err, errlen, "cannot write object file '%s': %s", path, msg ? msg : "out of memory");
    LLVMDisposeMessage(msg);
    LLVMDisposeTargetMachine(tm);
    return !failed;
}

/* With ATTNC_PERF_JIT=1 in the environment, JIT code is reported to `perf` (perf record
 * -k 1, then perf inject --jit) so profiles name the generated functions. */
static LLVMOrcObjectLayerRef perf_object_layer(void *ctx, LLVMOrcExecutionSessionRef es, const char *triple) {
    (void)ctx;
    (void)triple;
    LLVMOrcObjectLayerRef layer = LLVMOrcCreateRTDyldObjectLinkingLayerWithSectionMemoryManager(es);
    LLVMJITEventListenerRef l = LLVMCreatePerfJITEventListener();
    if (l) LLVMOrcRTDyldObjectLinkingLayerRegisterJITEventListener(layer, l);
    return layer;
}

/* An empty JIT for the target, with the process's symbols (libm) visible. */
static cpu_jit *jit_new(const cpu_target *t, char *err, size_t errlen) {
    cpu_jit *j = calloc(1, sizeof *j);
    LLVMTargetMachineRef tm = j ? cpu_target_machine(t, true, err, errlen) : NULL;
    if (!tm) {
        if (!j) snprintf(err, errlen, "out of memory");
        free(j);
        return NULL;
    }
    /* The builder owns the JIT target machine builder, which owns tm: the JIT compiles
     * with the host CPU's features, not LLVM's idea of the CPU name. */
    LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm));
    const char *perf = getenv("ATTNC_PERF_JIT");
    if (perf && *perf == '1') LLVMOrcLLJITBuilderSetObjectLinkingLayerCreator(builder, perf_object_layer, NULL);
    LLVMErrorRef e = LLVMOrcCreateLLJIT(&j->jit, builder);
    if (!take_error(e, "cannot create the LLVM JIT", err, errlen)) {
        free(j);
        return NULL;
    }
    LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(j->jit);
    LLVMOrcDefinitionGeneratorRef gen = NULL;
    e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(j->jit), NULL, NULL);
    if (!take_error(e, "cannot expose process symbols to the JIT", err, errlen)) {
        cpu_jit_destroy(j);
        return NULL;
    }
    LLVMOrcJITDylibAddGenerator(jd, gen);
    return j;
}

cpu_jit *cpu_jit_create(const cpu_target *t, LLVMOrcThreadSafeContextRef tsc, LLVMModuleRef m,
                        char *err, size_t errlen) {
    cpu_jit *j = jit_new(t, err, errlen);
    LLVMTargetMachineRef tm = j ? cpu_target_machine(t, true, err, errlen) : NULL;
    if (!tm) {
        cpu_jit_destroy(j);
        LLVMDisposeModule(m);
        LLVMOrcDisposeThreadSafeContext(tsc);
        return NULL;
    }
    set_layout(m, t, tm);
    LLVMDisposeTargetMachine(tm);
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(m, tsc);
    LLVMOrcDisposeThreadSafeContext(tsc);      /* the module keeps the context alive */
    LLVMErrorRef e = LLVMOrcLLJITAddLLVMIRModule(j->jit, LLVMOrcLLJITGetMainJITDylib(j->jit), tsm);
    if (e) {
        LLVMOrcDisposeThreadSafeModule(tsm);
        take_error(e, "cannot add the kernel module to the JIT", err, errlen);
        cpu_jit_destroy(j);
        return NULL;
    }
    return j;
}

bool cpu_emit_jit_object(LLVMModuleRef m, const cpu_target *t, LLVMMemoryBufferRef *out, char *err, size_t errlen) {
    *out = NULL;
    LLVMTargetMachineRef tm = cpu_target_machine(t, true, err, errlen);
    if (!tm) return false;
    set_layout(m, t, tm);
    char *msg = NULL;
    bool failed = LLVMTargetMachineEmitToMemoryBuffer(tm, m, LLVMObjectFile, &msg, out);
    if (failed) {
        snprintf(err, errlen, "cannot generate machine code: %s", msg ? msg : "?");
        *out = NULL;
    }
    LLVMDisposeMessage(msg);
    LLVMDisposeTargetMachine(tm);
    return !failed;
}

cpu_jit *cpu_jit_create_from_objects(const cpu_target *t, LLVMMemoryBufferRef objs[], int n, char *err,
                                     size_t errlen) {
    cpu_jit *j = jit_new(t, err, errlen);
    int i = 0;
    /* LLJIT takes each buffer it is given, whatever happens. */
    for (; j && i < n; i++) {
        LLVMErrorRef e = LLVMOrcLLJITAddObjectFile(j->jit, LLVMOrcLLJITGetMainJITDylib(j->jit), objs[i]);
        if (!take_error(e, "cannot add an object to the JIT", err, errlen)) {
            cpu_jit_destroy(j);
            j = NULL;
        }
    }
    for (; i < n; i++) LLVMDisposeMemoryBuffer(objs[i]);
    return j;
}

void *cpu_jit_lookup(cpu_jit *j, const char *name, char *err, size_t errlen) {
    LLVMOrcExecutorAddress addr = 0;
    LLVMErrorRef e = LLVMOrcLLJITLookup(j->jit, &addr, name);
    if (!take_error(e, "JIT compilation failed", err, errlen)) return NULL;
    return (void *)(uintptr_t)addr;
}

void cpu_jit_destroy(cpu_jit *j) {
    if (!j) return;
    if (j->jit) {
        LLVMErrorRef e = LLVMOrcDisposeLLJIT(j->jit);
        if (e) LLVMConsumeError(e);
    }
    free(j);
}
