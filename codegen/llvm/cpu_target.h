/* The machine a CPU kernel is generated for: triple, CPU name, feature string, and what
 * the generator derives from them (vector lanes, FMA, F16C). The host is the default;
 * tests pass a fixed feature string to build AVX-512 objects on any x86 machine. */
#ifndef ATTNC_CPU_TARGET_H
#define ATTNC_CPU_TARGET_H
#include <stdbool.h>
#include <stddef.h>
#include <llvm-c/TargetMachine.h>

typedef struct cpu_target {
    char triple[128];
    char cpu[64];
    char features[2048];       /* "+avx2,+fma,..." as LLVM spells them */
    int lanes;                 /* fp32 lanes of the vector type the kernels use: 16, 8 or 4 */
    bool x86;
    bool avx512;               /* avx512f: zmm kernels, "prefer-vector-width"="512" */
    bool fma;                  /* fused multiply-add instructions (else mul + add) */
    bool f16c;                 /* hardware f16 <-> f32 conversion (needed for f16 inputs on x86) */
    bool avx512bf16;
} cpu_target;

/* Initialises LLVM's native target once per process (thread-safe). */
void cpu_llvm_init(void);
/* The host: LLVMGetHostCPUName + LLVMGetHostCPUFeatures. LLVM 14 names Zen 3/4/5 poorly
 * ("generic" on Zen 5), so the feature string, not the name, decides what is used. */
bool cpu_target_host(cpu_target *t, char *err, size_t errlen);
/* An explicit machine (triple NULL = the host triple). */
bool cpu_target_init(cpu_target *t, const char *triple, const char *cpu, const char *features,
                     char *err, size_t errlen);
/* True when the comma-separated feature string enables `name` (e.g. "avx512f"). */
bool cpu_has_feature(const char *features, const char *name);
/* A target machine at -O3 for code generation (caller disposes); for_jit picks the JIT's
 * relocation and code model, otherwise PIC objects. */
LLVMTargetMachineRef cpu_target_machine(const cpu_target *t, bool for_jit, char *err, size_t errlen);

#endif
