/* Builder helpers shared by the CPU code generator (see cpu_cg.h). */
#include "codegen/llvm/cpu_cg.h"
#include <stdio.h>
#include <string.h>
#include <llvm-c/Analysis.h>

void cg_init(cg *c, LLVMContextRef ctx, LLVMModuleRef mod, const cpu_target *t, const ir_kernel *k) {
    memset(c, 0, sizeof *c);
    c->ctx = ctx;
    c->mod = mod;
    c->b = LLVMCreateBuilderInContext(ctx);
    c->tgt = t;
    c->k = k;
    c->W = t->lanes;
    c->t_void = LLVMVoidTypeInContext(ctx);
    c->t_i1 = LLVMInt1TypeInContext(ctx);
    c->t_i8 = LLVMInt8TypeInContext(ctx);
    c->t_i16 = LLVMInt16TypeInContext(ctx);
    c->t_i32 = LLVMInt32TypeInContext(ctx);
    c->t_i64 = LLVMInt64TypeInContext(ctx);
    c->t_f16 = LLVMHalfTypeInContext(ctx);
    c->t_f32 = LLVMFloatTypeInContext(ctx);
    c->t_f64 = LLVMDoubleTypeInContext(ctx);
    c->t_vf = LLVMVectorType(c->t_f32, (unsigned)c->W);
    c->t_vi32 = LLVMVectorType(c->t_i32, (unsigned)c->W);
    c->t_vi64 = LLVMVectorType(c->t_i64, (unsigned)c->W);
    c->t_vb = LLVMVectorType(c->t_i1, (unsigned)c->W);
    c->t_pi8 = LLVMPointerType(c->t_i8, 0);
    c->t_pf32 = LLVMPointerType(c->t_f32, 0);
    c->t_pf64 = LLVMPointerType(c->t_f64, 0);
    c->t_pi32 = LLVMPointerType(c->t_i32, 0);
    c->t_pi16 = LLVMPointerType(c->t_i16, 0);
}

void cg_dispose(cg *c) {
    if (c->b) LLVMDisposeBuilder(c->b);
    c->b = NULL;
}

LLVMTypeRef cg_args_type(cg *c, const char *modname, int n_slots, LLVMTypeRef *slot) {
    LLVMTypeRef slot_fields[2] = { c->t_pi8, LLVMArrayType(c->t_i64, 4) };
    *slot = LLVMStructTypeInContext(c->ctx, slot_fields, 2, 0);
    char tname[300];
    snprintf(tname, sizeof tname, "%s_args", modname);
    LLVMTypeRef args = LLVMStructCreateNamed(c->ctx, tname);
    /* batch, seq_q, seq_k; n_threads, flags; rope_inv_freq; workspace, workspace_bytes; t[] */
    LLVMTypeRef fields[9] = { c->t_i64, c->t_i64, c->t_i64, c->t_i32, c->t_i32, c->t_pf64, c->t_pi8, c->t_i64,
                              LLVMArrayType(*slot, (unsigned)n_slots) };
    LLVMStructSetBody(args, fields, 9, 0);
    return args;
}

LLVMModuleRef cg_verified(LLVMModuleRef mod, const ir_kernel *k, char *err, size_t errlen) {
    char *msg = NULL;
    if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg)) {
        snprintf(err, errlen, "internal error: generated LLVM IR for kernel '%s' does not verify: %.400s", k->name,
                 msg ? msg : "?");
        LLVMDisposeMessage(msg);
        LLVMDisposeModule(mod);
        return NULL;
    }
    LLVMDisposeMessage(msg);
    return mod;
}

LLVMValueRef cg_i64(cg *c, int64_t v) { return LLVMConstInt(c->t_i64, (unsigned long long)v, 1); }
LLVMValueRef cg_i32(cg *c, int32_t v) { return LLVMConstInt(c->t_i32, (unsigned long long)(int64_t)v, 1); }
LLVMValueRef cg_f32(cg *c, double v) { return LLVMConstReal(c->t_f32, v); }
LLVMValueRef cg_f64(cg *c, double v) { return LLVMConstReal(c->t_f64, v); }
LLVMValueRef cg_true(cg *c) { return LLVMConstInt(c->t_i1, 1, 0); }

bool cg_is_vec(LLVMValueRef v) { return LLVMGetTypeKind(LLVMTypeOf(v)) == LLVMVectorTypeKind; }

LLVMValueRef cg_splat(cg *c, LLVMValueRef s) {
    if (cg_is_vec(s)) return s;
    LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(s), (unsigned)c->W);
    if (LLVMIsConstant(s)) {
        LLVMValueRef elems[64];
        for (int i = 0; i < c->W; i++) elems[i] = s;
        return LLVMConstVector(elems, (unsigned)c->W);
    }
    /* insertelement + zero shuffle: folds to vbroadcastss / {1toN}. */
    LLVMValueRef one = LLVMBuildInsertElement(c->b, LLVMGetUndef(vt), s, cg_i32(c, 0), "");
    LLVMValueRef zeros = LLVMConstNull(LLVMVectorType(c->t_i32, (unsigned)c->W));
    return LLVMBuildShuffleVector(c->b, one, LLVMGetUndef(vt), zeros, "");
}

LLVMValueRef cg_vf32(cg *c, double v) { return cg_splat(c, cg_f32(c, v)); }

LLVMValueRef cg_iota64(cg *c) {
    LLVMValueRef elems[64];
    for (int i = 0; i < c->W; i++) elems[i] = cg_i64(c, i);
    return LLVMConstVector(elems, (unsigned)c->W);
}

LLVMValueRef cg_like(cg *c, LLVMValueRef like, LLVMValueRef scalar_const) {
    return cg_is_vec(like) ? cg_splat(c, scalar_const) : scalar_const;
}

LLVMValueRef cg_gep(cg *c, LLVMTypeRef elem, LLVMValueRef ptr, LLVMValueRef idx) {
    return LLVMBuildInBoundsGEP2(c->b, elem, ptr, &idx, 1, "");
}

LLVMValueRef cg_load(cg *c, LLVMTypeRef t, LLVMValueRef ptr, unsigned align) {
    LLVMValueRef v = LLVMBuildLoad2(c->b, t, ptr, "");
    LLVMSetAlignment(v, align);
    return v;
}

void cg_store(cg *c, LLVMValueRef v, LLVMValueRef ptr, unsigned align) {
    LLVMValueRef s = LLVMBuildStore(c->b, v, ptr);
    LLVMSetAlignment(s, align);
}

void cg_transpose(cg *c, LLVMValueRef *rows) {
    int W = c->W;
    /* Stage d swaps bit d of the row index with bit d of the lane. */
    for (int d = 1; d < W; d <<= 1) {
        LLVMValueRef lo[64], hi[64];
        for (int j = 0; j < W; j++) {
            lo[j] = cg_i32(c, (j & d) ? W + j - d : j);
            hi[j] = cg_i32(c, (j & d) ? W + j : j + d);
        }
        LLVMValueRef mlo = LLVMConstVector(lo, (unsigned)W), mhi = LLVMConstVector(hi, (unsigned)W);
        for (int r = 0; r < W; r++) {
            if (r & d) continue;
            LLVMValueRef x = rows[r], y = rows[r + d];
            rows[r] = LLVMBuildShuffleVector(c->b, x, y, mlo, "");
            rows[r + d] = LLVMBuildShuffleVector(c->b, x, y, mhi, "");
        }
    }
}

LLVMValueRef cg_bitcast_ptr(cg *c, LLVMValueRef p, LLVMTypeRef ptr_type) {
    return LLVMTypeOf(p) == ptr_type ? p : LLVMBuildBitCast(c->b, p, ptr_type, "");
}

LLVMValueRef cg_vload(cg *c, LLVMValueRef fptr) {
    LLVMValueRef p = LLVMBuildBitCast(c->b, fptr, LLVMPointerType(c->t_vf, 0), "");
    return cg_load(c, c->t_vf, p, 4);
}

void cg_vstore(cg *c, LLVMValueRef v, LLVMValueRef fptr) {
    LLVMValueRef p = LLVMBuildBitCast(c->b, fptr, LLVMPointerType(c->t_vf, 0), "");
    cg_store(c, v, p, 4);
}

LLVMValueRef cg_call_intrinsic(cg *c, const char *name, LLVMTypeRef *overloads, int n_over,
                               LLVMValueRef *args, int n_args) {
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(c->mod, id, overloads, (size_t)n_over);
    LLVMTypeRef ft = LLVMIntrinsicGetType(c->ctx, id, overloads, (size_t)n_over);
    return LLVMBuildCall2(c->b, ft, fn, args, (unsigned)n_args, "");
}

LLVMValueRef cg_call_unary(cg *c, const char *name, LLVMValueRef x) {
    LLVMTypeRef t = LLVMTypeOf(x);
    return cg_call_intrinsic(c, name, &t, 1, &x, 1);
}

LLVMValueRef cg_fma(cg *c, LLVMValueRef a, LLVMValueRef b, LLVMValueRef acc) {
    LLVMTypeRef t = LLVMTypeOf(acc);
    LLVMValueRef args[3] = { a, b, acc };
    /* llvm.fma is always fused; without hardware FMA it becomes a libcall, so use
     * fmuladd (mul + add) there. */
    return cg_call_intrinsic(c, c->tgt->fma ? "llvm.fma" : "llvm.fmuladd", &t, 1, args, 3);
}

LLVMValueRef cg_fmax(cg *c, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, a, b, ""), a, b, "");
}

LLVMValueRef cg_fmin(cg *c, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOLT, a, b, ""), a, b, "");
}

LLVMValueRef cg_smax(cg *c, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSGT, a, b, ""), a, b, "");
}

LLVMValueRef cg_smin(cg *c, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, a, b, ""), a, b, "");
}

LLVMValueRef cg_floordiv_const(cg *c, LLVMValueRef a, int64_t d) {
    LLVMValueRef dv = cg_like(c, a, cg_i64(c, d));
    LLVMValueRef q = LLVMBuildSDiv(c->b, a, dv, "");
    LLVMValueRef r = LLVMBuildSRem(c->b, a, dv, "");
    LLVMValueRef neg = LLVMBuildICmp(c->b, LLVMIntSLT, r, cg_like(c, a, cg_i64(c, 0)), "");
    return LLVMBuildSelect(c->b, neg, LLVMBuildSub(c->b, q, cg_like(c, a, cg_i64(c, 1)), ""), q, "");
}

LLVMBasicBlockRef cg_block(cg *c, const char *name) {
    return LLVMAppendBasicBlockInContext(c->ctx, c->fn, name);
}

void cg_loop_begin(cg *c, cg_loop *l, LLVMValueRef begin, LLVMValueRef end, LLVMValueRef step,
                   int n_carried, const LLVMValueRef *init) {
    l->pre = LLVMGetInsertBlock(c->b);
    l->header = cg_block(c, "loop");
    l->body = cg_block(c, "body");
    l->exit = cg_block(c, "exit");
    l->step = step;
    l->n = n_carried;
    LLVMBuildBr(c->b, l->header);
    LLVMPositionBuilderAtEnd(c->b, l->header);
    l->iv = LLVMBuildPhi(c->b, LLVMTypeOf(begin), "i");
    LLVMAddIncoming(l->iv, &begin, &l->pre, 1);
    for (int i = 0; i < n_carried; i++) {
        l->carried[i] = LLVMBuildPhi(c->b, LLVMTypeOf(init[i]), "");
        LLVMValueRef v = init[i];
        LLVMAddIncoming(l->carried[i], &v, &l->pre, 1);
    }
    LLVMValueRef cond = LLVMBuildICmp(c->b, LLVMIntSLT, l->iv, end, "");
    LLVMBuildCondBr(c->b, cond, l->body, l->exit);
    LLVMPositionBuilderAtEnd(c->b, l->body);
}

void cg_loop_end(cg *c, cg_loop *l, const LLVMValueRef *next) {
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(c->b);
    LLVMValueRef iv_next = LLVMBuildNSWAdd(c->b, l->iv, l->step, "");
    LLVMAddIncoming(l->iv, &iv_next, &latch, 1);
    for (int i = 0; i < l->n; i++) {
        LLVMValueRef v = next[i];
        LLVMAddIncoming(l->carried[i], &v, &latch, 1);
    }
    LLVMBuildBr(c->b, l->header);
    LLVMMoveBasicBlockAfter(l->exit, latch);
    LLVMPositionBuilderAtEnd(c->b, l->exit);
}

LLVMBasicBlockRef cg_if_begin(cg *c, LLVMValueRef cond) {
    LLVMBasicBlockRef then = cg_block(c, "then");
    LLVMBasicBlockRef join = cg_block(c, "join");
    LLVMBuildCondBr(c->b, cond, then, join);
    LLVMPositionBuilderAtEnd(c->b, then);
    return join;
}

void cg_if_end(cg *c, LLVMBasicBlockRef join) {
    LLVMBasicBlockRef cur = LLVMGetInsertBlock(c->b);
    LLVMBuildBr(c->b, join);
    LLVMMoveBasicBlockAfter(join, cur);
    LLVMPositionBuilderAtEnd(c->b, join);
}

void cg_fn_attr(cg *c, LLVMValueRef fn, const char *attr) {
    unsigned kind = LLVMGetEnumAttributeKindForName(attr, strlen(attr));
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(c->ctx, kind, 0));
}

void cg_param_attr(cg *c, LLVMValueRef fn, int index, const char *attr) {
    unsigned kind = LLVMGetEnumAttributeKindForName(attr, strlen(attr));
    LLVMAddAttributeAtIndex(fn, (unsigned)(index + 1), LLVMCreateEnumAttribute(c->ctx, kind, 0));
}

static void string_attr(cg *c, LLVMValueRef fn, const char *key, const char *val) {
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(c->ctx, key, (unsigned)strlen(key), val, (unsigned)strlen(val)));
}

LLVMValueRef cg_function(cg *c, const char *name, LLVMTypeRef ret, LLVMTypeRef *params, int n, bool exported) {
    LLVMTypeRef ft = LLVMFunctionType(ret, params, (unsigned)n, 0);
    LLVMValueRef fn = LLVMAddFunction(c->mod, name, ft);
    if (!exported) LLVMSetLinkage(fn, LLVMInternalLinkage);
    /* Per-function CPU and features override whatever the target machine assumes, so
     * the module means the same in the JIT, in an object, and in printed IR. */
    string_attr(c, fn, "target-cpu", c->tgt->cpu);
    string_attr(c, fn, "target-features", c->tgt->features);
    if (c->tgt->avx512) {
        /* Without these, LLVM splits 512-bit operations into ymm halves on CPUs tuned
         * to prefer 256-bit vectors. */
        string_attr(c, fn, "prefer-vector-width", "512");
        string_attr(c, fn, "min-legal-vector-width", "512");
    }
    cg_fn_attr(c, fn, "nounwind");
    return fn;
}
