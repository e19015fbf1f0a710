/* Module split for concurrent JIT compilation (see cpu_split.h).
 *
 * Why split after a whole-module IPO step rather than before O3: the generator's
 * micro-kernels are internal, noinline functions that O3 specialises through their
 * callers (a constant head dim becomes an immediate stride, dead arguments go, pointer
 * arguments get noalias/readonly). Those passes run here on the whole module; afterwards
 * each function's signature is final, so a part can call into another part through a
 * declaration with the same type, calling convention and attributes, and the code each
 * part's O3 produces matches what one O3 over the whole module gives. */
#include "runtime/llvm/cpu_split.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <llvm-c/BitReader.h>
#include <llvm-c/BitWriter.h>
#include "runtime/llvm/cpu_jit.h"
#include "runtime/threadpool.h"

/* The interprocedural passes of O3 that change signatures, in O3's order. */
static const char IPO_PIPELINE[] =
    "ipsccp,globalopt,deadargelim,cgscc(function-attrs,argpromotion),deadargelim";

int cpu_split_default_parts(void) {
    const char *env = getenv("ATTNC_JIT_PARTS");
    int n = env && atoi(env) >= 1 ? atoi(env) : attnc_cpu_count();
    return n > CPU_SPLIT_MAX ? CPU_SPLIT_MAX : n;
}

/* ---------------------------------------------------------------- dealing functions into parts */

typedef struct def_info {
    LLVMValueRef fn;
    long cost;
    int index, part;
} def_info;

/* Estimated O3 + code generation cost of a definition, in instructions' worth. Length
 * alone misjudges it: measured per function on LLVM 14 (llama3 and gemma2 kernels), an
 * instruction with a vector result costs about twice a scalar one (the micro-kernels,
 * the softcap's polynomial), and loops that move vectors (staging, packing) cost far
 * more than their length says, while loops of scalar bookkeeping cost little. The item
 * driver, scalar and short, compiled as slowly as the widest micro-kernel (48 vs 37 ms
 * for gpt_neox_20b, each function alone in a part; 581 vs 617 machine instructions):
 * its calls into the module's functions pass ~50 arguments, and each is moves and
 * spills around the calls. So: instructions, plus one per vector instruction, plus 40
 * per basic block in a function that uses vectors and calls none of the module's (10 in
 * others: a driver's blocks are bookkeeping), plus 22 per argument of a call to a
 * function defined in the module. With that the busier part takes 4-6 % more than the
 * mean of the two instead of 16-20 % (the example kernels). An optnone function skips
 * O3 and takes fast instruction selection: a quarter (the item driver, optnone since,
 * took 15 ms instead of 64 for llama3_8b_decode). */
static long fn_cost(LLVMValueRef f) {
    long insts = 0, vectors = 0, blocks = 0, call_args = 0;
    for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(f); b; b = LLVMGetNextBasicBlock(b), blocks++)
        for (LLVMValueRef i = LLVMGetFirstInstruction(b); i; i = LLVMGetNextInstruction(i), insts++) {
            vectors += LLVMGetTypeKind(LLVMTypeOf(i)) == LLVMVectorTypeKind;
            LLVMValueRef callee = LLVMIsACallInst(i) ? LLVMGetCalledValue(i) : NULL;
            if (callee && LLVMIsAFunction(callee) && !LLVMIsDeclaration(callee))
                call_args += (long)LLVMGetNumArgOperands(i);
        }
    long cost = insts + vectors + (vectors && !call_args ? 40 : 10) * blocks + 22 * call_args;
    unsigned optnone = LLVMGetEnumAttributeKindForName("optnone", 7);
    return LLVMGetEnumAttributeAtIndex(f, LLVMAttributeFunctionIndex, optnone) ? cost / 4 : cost;
}

/* The function definitions in module order (the order bitcode preserves); NULL when out
 * of memory. */
static LLVMValueRef *definitions(LLVMModuleRef m, int *n_out) {
    int n = 0;
    for (LLVMValueRef f = LLVMGetFirstFunction(m); f; f = LLVMGetNextFunction(f)) n += !LLVMIsDeclaration(f);
    LLVMValueRef *defs = malloc((size_t)(n ? n : 1) * sizeof *defs);
    if (!defs) return NULL;
    n = 0;
    for (LLVMValueRef f = LLVMGetFirstFunction(m); f; f = LLVMGetNextFunction(f))
        if (!LLVMIsDeclaration(f)) defs[n++] = f;
    *n_out = n;
    return defs;
}

static int larger_first(const void *a, const void *b) {
    const def_info *x = a, *y = b;
    return x->cost != y->cost ? (x->cost < y->cost ? 1 : -1) : x->index - y->index;
}

/* Costliest function first, each to the least loaded part: part_of[i] for definition i. */
static bool deal(LLVMValueRef *defs, int n_defs, int n_parts, int *part_of) {
    def_info *d = malloc((size_t)n_defs * sizeof *d);
    if (!d) return false;
    for (int i = 0; i < n_defs; i++) d[i] = (def_info){ defs[i], fn_cost(defs[i]), i, 0 };
    qsort(d, (size_t)n_defs, sizeof *d, larger_first);
    long load[CPU_SPLIT_MAX] = {0};
    for (int i = 0; i < n_defs; i++) {
        int best = 0;
        for (int p = 1; p < n_parts; p++)
            if (load[p] < load[best]) best = p;
        load[best] += d[i].cost;
        part_of[d[i].index] = best;
    }
    free(d);
    return true;
}

static int part_of_fn(LLVMValueRef f, LLVMValueRef *defs, const int *part_of, int n_defs) {
    for (int i = 0; i < n_defs; i++)
        if (defs[i] == f) return part_of[i];
    return -1;
}

/* An internal function called from another part becomes a hidden external symbol, which
 * the other part reaches through a declaration. Anything but a call from a known function
 * counts as a use from elsewhere. */
static void externalise_shared(LLVMValueRef *defs, const int *part_of, int n_defs) {
    for (int i = 0; i < n_defs; i++) {
        LLVMLinkage l = LLVMGetLinkage(defs[i]);
        if (l != LLVMInternalLinkage && l != LLVMPrivateLinkage) continue;
        bool shared = false;
        for (LLVMUseRef u = LLVMGetFirstUse(defs[i]); u && !shared; u = LLVMGetNextUse(u)) {
            LLVMValueRef user = LLVMGetUser(u);
            LLVMValueRef caller = LLVMIsAInstruction(user) ? LLVMGetBasicBlockParent(LLVMGetInstructionParent(user)) : NULL;
            shared = !caller || part_of_fn(caller, defs, part_of, n_defs) != part_of[i];
        }
        if (shared) {
            LLVMSetLinkage(defs[i], LLVMExternalLinkage);
            LLVMSetVisibility(defs[i], LLVMHiddenVisibility);
        }
    }
}

/* Copies of module-level variables go to every part, so only constants may be split. */
static bool has_mutable_global(LLVMModuleRef m) {
    for (LLVMValueRef g = LLVMGetFirstGlobal(m); g; g = LLVMGetNextGlobal(g))
        if (!LLVMIsGlobalConstant(g)) return true;
    return false;
}

/* ---------------------------------------------------------------- one part */

typedef struct part_job {
    LLVMMemoryBufferRef bitcode;   /* the module after IPO, shared read-only */
    const cpu_target *t;
    const int *part_of;
    int n_defs, part;
    LLVMMemoryBufferRef obj;
    bool ok;
    char err[512];
} part_job;

static void copy_attributes(LLVMValueRef from, LLVMValueRef to) {
    unsigned n_params = LLVMCountParams(from);
    for (unsigned idx = 0; idx <= n_params + 1; idx++) {
        /* the return value (0), the parameters (1..n), then the function itself */
        LLVMAttributeIndex ai = idx <= n_params ? (LLVMAttributeIndex)idx : (LLVMAttributeIndex)LLVMAttributeFunctionIndex;
        unsigned n = LLVMGetAttributeCountAtIndex(from, ai);
        LLVMAttributeRef buf[64];
        if (n == 0 || n > 64) continue;   /* attributes only inform the caller's optimiser */
        LLVMGetAttributesAtIndex(from, ai, buf);
        for (unsigned i = 0; i < n; i++) LLVMAddAttributeAtIndex(to, ai, buf[i]);
    }
}

/* Replaces a definition by a declaration of the same name, type, calling convention and
 * attributes; dropped altogether when nothing in this part calls it. */
static bool drop_body(LLVMModuleRef m, LLVMValueRef f) {
    if (!LLVMGetFirstUse(f)) {
        LLVMDeleteFunction(f);
        return true;
    }
    size_t len = 0;
    const char *nm = LLVMGetValueName2(f, &len);
    char *name = malloc(len + 1);
    if (!name) return false;
    memcpy(name, nm, len);
    name[len] = 0;
    LLVMSetValueName2(f, "", 0);
    LLVMValueRef d = LLVMAddFunction(m, name, LLVMGlobalGetValueType(f));
    free(name);
    LLVMSetFunctionCallConv(d, LLVMGetFunctionCallConv(f));
    LLVMSetVisibility(d, LLVMGetVisibility(f));
    copy_attributes(f, d);
    LLVMReplaceAllUsesWith(f, d);
    LLVMDeleteFunction(f);
    return true;
}

static void compile_part(void *arg) {
    part_job *j = arg;
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef m = NULL;
    LLVMMemoryBufferRef view = LLVMCreateMemoryBufferWithMemoryRange(
        LLVMGetBufferStart(j->bitcode), LLVMGetBufferSize(j->bitcode), "attnc-part", 0);
    bool bad = !view || LLVMParseBitcodeInContext2(ctx, view, &m);
    if (view) LLVMDisposeMemoryBuffer(view);
    int n = 0;
    LLVMValueRef *defs = bad ? NULL : definitions(m, &n);
    if (bad || !defs || n != j->n_defs) {
        snprintf(j->err, sizeof j->err, "cannot read back part %d of the module", j->part);
    } else {
        bool ok = true;
        for (int i = 0; i < n && ok; i++)
            if (j->part_of[i] != j->part) ok = drop_body(m, defs[i]);
        if (!ok) snprintf(j->err, sizeof j->err, "out of memory");
        j->ok = ok && cpu_optimize_module(m, j->t, j->err, sizeof j->err) &&
                cpu_emit_jit_object(m, j->t, &j->obj, j->err, sizeof j->err);
    }
    free(defs);
    if (m) LLVMDisposeModule(m);
    LLVMContextDispose(ctx);
}

/* ---------------------------------------------------------------- the whole */

static int compile_whole(LLVMModuleRef m, const cpu_target *t, LLVMMemoryBufferRef objs[], char *err, size_t errlen) {
    bool ok = cpu_optimize_module(m, t, err, errlen) && cpu_emit_jit_object(m, t, &objs[0], err, errlen);
    LLVMDisposeModule(m);
    return ok ? 1 : 0;
}

int cpu_split_compile(LLVMModuleRef m, const cpu_target *t, int max_parts, LLVMMemoryBufferRef objs[CPU_SPLIT_MAX],
                      char *err, size_t errlen) {
    if (max_parts > CPU_SPLIT_MAX) max_parts = CPU_SPLIT_MAX;
    if (max_parts <= 1 || has_mutable_global(m)) return compile_whole(m, t, objs, err, errlen);
    if (!cpu_run_passes(m, t, IPO_PIPELINE, err, errlen)) {
        LLVMDisposeModule(m);
        return 0;
    }
    int n_defs = 0;
    LLVMValueRef *defs = definitions(m, &n_defs);
    int n = defs ? (n_defs < max_parts ? n_defs : max_parts) : 0;
    int *part_of = defs ? malloc((size_t)(n_defs ? n_defs : 1) * sizeof *part_of) : NULL;
    if (!part_of || n <= 1 || !deal(defs, n_defs, n, part_of)) {
        free(defs);
        free(part_of);
        if (n <= 1 && part_of) return compile_whole(m, t, objs, err, errlen);
        LLVMDisposeModule(m);
        snprintf(err, errlen, "out of memory");
        return 0;
    }
    externalise_shared(defs, part_of, n_defs);
    free(defs);
    LLVMMemoryBufferRef bitcode = LLVMWriteBitcodeToMemoryBuffer(m);
    LLVMDisposeModule(m);
    part_job jobs[CPU_SPLIT_MAX];
    for (int p = 0; p < n; p++) jobs[p] = (part_job){ bitcode, t, part_of, n_defs, p, NULL, false, "" };
    if (bitcode) attnc_run_concurrently(compile_part, jobs, sizeof jobs[0], n);
    else snprintf(jobs[0].err, sizeof jobs[0].err, "out of memory");
    int failed = -1;
    for (int p = 0; p < n; p++)
        if (!jobs[p].ok && failed < 0) failed = p;
    for (int p = 0; p < n; p++) {
        if (failed >= 0 && jobs[p].obj) LLVMDisposeMemoryBuffer(jobs[p].obj);
        else objs[p] = jobs[p].obj;
    }
    if (failed >= 0) snprintf(err, errlen, "%s", jobs[failed].err);
    if (bitcode) LLVMDisposeMemoryBuffer(bitcode);
    free(part_of);
    return failed >= 0 ? 0 : n;
}
