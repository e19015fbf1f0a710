/* The one expression emitter of the CPU backend: lowers an IR expression (mask, score
 * modifier) to LLVM IR at the point where its variables are known. A value is a scalar
 * when every name it uses is a scalar there (e.g. kv_idx in the S^T tile, where each
 * key is one row), and a W-lane vector otherwise (q_idx and head vary across lanes);
 * mixed operands are splatted. Types: bool i1, int i64, float f32.
 *
 * Unlike the interpreter, both sides of && || ?: are evaluated (vectors cannot branch
 * per lane), so everything an expression does must be harmless when its result is
 * discarded: input reads clamp their indices to the tensor, integer division guards
 * its divisor. Where the interpreter reports an error (out-of-range read, division by
 * zero), the kernel computes some finite value instead. */
#include <math.h>
#include <string.h>
#include "codegen/llvm/cpu_cg.h"

enum { MEMO_MAX = 512 };

typedef struct emitter {
    cg *c;
    const cg_env *env;
    const ir_expr *key[MEMO_MAX];
    LLVMValueRef val[MEMO_MAX];
    int n;
} emitter;

static LLVMValueRef emit(emitter *em, const ir_expr *e);

static LLVMValueRef zero_of(cg *c, ir_type t) {
    switch (t) {
    case IR_T_BOOL: return LLVMConstInt(c->t_i1, 0, 0);
    case IR_T_INT: return cg_i64(c, 0);
    default: return cg_f32(c, 0.0);
    }
}

/* Both operands as the same shape: a vector if either is one. */
static void unify(cg *c, LLVMValueRef *a, LLVMValueRef *b) {
    if (cg_is_vec(*a) && !cg_is_vec(*b)) *b = cg_splat(c, *b);
    else if (cg_is_vec(*b) && !cg_is_vec(*a)) *a = cg_splat(c, *a);
}

static LLVMValueRef clamp_index(cg *c, LLVMValueRef i, LLVMValueRef extent) {
    LLVMValueRef hi = LLVMBuildSub(c->b, extent, cg_i64(c, 1), "");
    hi = cg_smax(c, hi, cg_i64(c, 0));
    i = cg_smin(c, i, cg_like(c, i, hi));
    return cg_smax(c, i, cg_like(c, i, cg_i64(c, 0)));
}

static LLVMValueRef emit_input(emitter *em, const ir_expr *e) {
    cg *c = em->c;
    const ir_input *in = &c->k->inputs[e->input];
    const cg_env *env = em->env;
    LLVMValueRef off = cg_i64(c, 0);
    int dim = 0;
    for (int a = 0; a < in->n_axes && a < e->n_args && dim < 4; a++) {
        LLVMValueRef idx = emit(em, e->args[a]);
        LLVMValueRef extent;
        if (in->axes[a] == IR_AXIS_TOKEN) {
            off = LLVMBuildAdd(c->b, off, LLVMBuildMul(c->b, env->batch, env->in_stride[e->input][dim], ""), "");
            dim++;
            extent = env->seq_k;
        } else {
            extent = cg_i64(c, c->k->heads_q);   /* HEAD; k/v axes do not occur in softmax kernels */
        }
        idx = clamp_index(c, idx, extent);
        LLVMValueRef stride = env->in_stride[e->input][dim < 4 ? dim : 3];
        LLVMValueRef term = LLVMBuildMul(c->b, idx, cg_like(c, idx, stride), "");
        LLVMValueRef o = off;
        unify(c, &o, &term);
        off = LLVMBuildAdd(c->b, o, term, "");
        dim++;
    }
    bool is_int = in->scalar == IR_S_I32;
    LLVMTypeRef et = is_int ? c->t_i32 : c->t_f32;
    LLVMValueRef base = cg_bitcast_ptr(c, env->in_data[e->input], LLVMPointerType(et, 0));
    LLVMValueRef v;
    if (cg_is_vec(off)) {
        LLVMValueRef ptrs = LLVMBuildInBoundsGEP2(c->b, et, base, &off, 1, "");
        LLVMTypeRef vt = LLVMVectorType(et, (unsigned)c->W);
        LLVMTypeRef over[2] = { vt, LLVMTypeOf(ptrs) };
        LLVMValueRef ones[64];
        for (int i = 0; i < c->W; i++) ones[i] = cg_true(c);
        LLVMValueRef args[4] = { ptrs, cg_i32(c, 4), LLVMConstVector(ones, (unsigned)c->W), LLVMGetUndef(vt) };
        v = cg_call_intrinsic(c, "llvm.masked.gather", over, 2, args, 4);
    } else {
        v = cg_load(c, et, cg_gep(c, et, base, off), 4);
    }
    if (is_int) v = LLVMBuildSExt(c->b, v, cg_is_vec(v) ? c->t_vi64 : c->t_i64, "");
    return v;
}

static bool const_int_value(const ir_expr *e, int64_t lo, int64_t hi, int64_t *out) {
    if (e->op != IR_CONST || e->value != floor(e->value) || e->value < (double)lo || e->value > (double)hi) return false;
    *out = (int64_t)e->value;
    return true;
}

/* pow with a small integral constant exponent: products, like pow() is exact for them. */
static bool small_power(const ir_expr *e, int64_t *n) { return const_int_value(e->args[1], -16, 16, n); }

bool cg_expr_node_calls_vmath(const ir_expr *e) {
    int64_t n;
    return e->op == IR_EXP || e->op == IR_LOG || e->op == IR_TANH || (e->op == IR_POW && !small_power(e, &n));
}

static LLVMValueRef emit_pow(emitter *em, const ir_expr *e, LLVMValueRef x, LLVMValueRef y) {
    cg *c = em->c;
    int64_t n;
    if (small_power(e, &n)) {
        LLVMValueRef r = cg_like(c, x, cg_f32(c, 1.0)), base = x;
        for (int64_t m = n < 0 ? -n : n; m; m >>= 1) {
            if (m & 1) r = LLVMBuildFMul(c->b, r, base, "");
            if (m > 1) base = LLVMBuildFMul(c->b, base, base, "");
        }
        return n < 0 ? LLVMBuildFDiv(c->b, cg_like(c, x, cg_f32(c, 1.0)), r, "") : r;
    }
    unify(c, &x, &y);
    if (e->args[0]->op == IR_CONST && e->args[0]->value == 2.0) return vm_exp2(c, y);   /* ALiBi slopes */
    return vm_pow(c, x, y);
}

/* i64 -> f32. Without AVX-512 DQ a vector sitofp is done lane by lane (about 25
 * instructions for 8 lanes: the ALiBi distance once per score vector). When the value is
 * proved to lie within +-2^51 over every launch, adding the bits of 1.5*2^52 makes it the
 * mantissa of a double and subtracting 1.5*2^52 leaves it exactly; rounding that double to
 * float is the one rounding sitofp does. */
static LLVMValueRef int_to_float(cg *c, const ir_expr *arg, LLVMValueRef v) {
    int64_t lo, hi;
    const int64_t lim = (int64_t)1 << 51;
    bool fast = cg_is_vec(v) && c->tgt->x86 && !cpu_has_feature(c->tgt->features, "avx512dq") &&
                ir_expr_int_bounds(arg, c->k->heads_q, &lo, &hi) && lo >= -lim && hi <= lim;
    if (!fast) return LLVMBuildSIToFP(c->b, v, cg_is_vec(v) ? c->t_vf : c->t_f32, "");
    LLVMTypeRef vd = LLVMVectorType(c->t_f64, (unsigned)c->W);
    LLVMValueRef bits = LLVMBuildAdd(c->b, v, cg_splat(c, cg_i64(c, INT64_C(0x4338000000000000))), "");
    LLVMValueRef d = LLVMBuildFSub(c->b, LLVMBuildBitCast(c->b, bits, vd, ""), cg_splat(c, cg_f64(c, 0x1.8p52)), "");
    return LLVMBuildFPTrunc(c->b, d, c->t_vf, "");
}

static LLVMValueRef emit_intdiv(cg *c, ir_op op, LLVMValueRef x, LLVMValueRef y) {
    /* Guard y == 0 (the interpreter's error) and y == -1 (INT64_MIN / -1 traps). */
    LLVMValueRef zero = cg_like(c, y, cg_i64(c, 0)), one = cg_like(c, y, cg_i64(c, 1));
    LLVMValueRef m1 = cg_like(c, y, cg_i64(c, -1));
    LLVMValueRef is_m1 = LLVMBuildICmp(c->b, LLVMIntEQ, y, m1, "");
    LLVMValueRef bad = LLVMBuildOr(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, y, zero, ""), is_m1, "");
    LLVMValueRef ys = LLVMBuildSelect(c->b, bad, one, y, "");
    LLVMValueRef q = LLVMBuildSDiv(c->b, x, ys, "");
    LLVMValueRef r = LLVMBuildSRem(c->b, x, ys, "");
    LLVMValueRef fix = LLVMBuildAnd(c->b, LLVMBuildICmp(c->b, LLVMIntNE, r, zero, ""),
                                    LLVMBuildXor(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, r, zero, ""),
                                                 LLVMBuildICmp(c->b, LLVMIntSLT, ys, zero, ""), ""), "");
    q = LLVMBuildSelect(c->b, fix, LLVMBuildSub(c->b, q, one, ""), q, "");
    r = LLVMBuildSelect(c->b, fix, LLVMBuildAdd(c->b, r, ys, ""), r, "");
    q = LLVMBuildSelect(c->b, is_m1, LLVMBuildSub(c->b, zero, x, ""), q, "");
    r = LLVMBuildSelect(c->b, is_m1, zero, r, "");
    return op == IR_IDIV ? q : r;
}

static LLVMValueRef emit_compare(cg *c, ir_op op, LLVMValueRef x, LLVMValueRef y) {
    LLVMTypeRef t = LLVMTypeOf(x);
    if (cg_is_vec(x)) t = LLVMGetElementType(t);
    if (LLVMGetTypeKind(t) == LLVMFloatTypeKind) {
        LLVMRealPredicate p = op == IR_LT ? LLVMRealOLT : op == IR_LE ? LLVMRealOLE : op == IR_GT ? LLVMRealOGT
                            : op == IR_GE ? LLVMRealOGE : op == IR_EQ ? LLVMRealOEQ : LLVMRealUNE;
        return LLVMBuildFCmp(c->b, p, x, y, "");
    }
    LLVMIntPredicate p = op == IR_LT ? LLVMIntSLT : op == IR_LE ? LLVMIntSLE : op == IR_GT ? LLVMIntSGT
                       : op == IR_GE ? LLVMIntSGE : op == IR_EQ ? LLVMIntEQ : LLVMIntNE;
    return LLVMBuildICmp(c->b, p, x, y, "");
}

static LLVMValueRef emit_uncached(emitter *em, const ir_expr *e) {
    cg *c = em->c;
    switch (e->op) {
    case IR_CONST:
        if (e->type == IR_T_BOOL) return LLVMConstInt(c->t_i1, e->value != 0, 0);
        if (e->type == IR_T_INT) return cg_i64(c, (int64_t)e->value);
        return cg_f32(c, e->value);
    case IR_VAR: {
        LLVMValueRef v = (e->var >= 0 && e->var < IR_VAR_COUNT) ? em->env->var[e->var] : NULL;
        return v ? v : zero_of(c, e->type);   /* the kernel emitter checks availability first */
    }
    case IR_INPUT: return emit_input(em, e);
    default: break;
    }
    LLVMValueRef a[3] = { NULL, NULL, NULL };
    for (int i = 0; i < e->n_args && i < 3; i++) a[i] = emit(em, e->args[i]);
    bool flt = e->n_args > 0 && e->args[0]->type == IR_T_FLOAT;
    switch (e->op) {
    case IR_NEG: return flt ? LLVMBuildFNeg(c->b, a[0], "") : LLVMBuildSub(c->b, cg_like(c, a[0], cg_i64(c, 0)), a[0], "");
    case IR_NOT: return LLVMBuildXor(c->b, a[0], cg_like(c, a[0], cg_true(c)), "");
    case IR_EXP: return vm_exp(c, a[0]);
    case IR_LOG: return vm_log(c, a[0]);
    case IR_TANH: return vm_tanh(c, a[0]);
    case IR_SQRT: return cg_call_unary(c, "llvm.sqrt", a[0]);
    case IR_FLOOR: return cg_call_unary(c, "llvm.floor", a[0]);
    case IR_ABS:
        if (flt) return cg_call_unary(c, "llvm.fabs", a[0]);
        return cg_smax(c, a[0], LLVMBuildSub(c->b, cg_like(c, a[0], cg_i64(c, 0)), a[0], ""));
    case IR_TO_FLOAT:
        if (e->args[0]->type == IR_T_FLOAT) return a[0];
        if (e->args[0]->type == IR_T_BOOL) return LLVMBuildUIToFP(c->b, a[0], cg_is_vec(a[0]) ? c->t_vf : c->t_f32, "");
        return int_to_float(c, e->args[0], a[0]);
    case IR_SELECT: {
        LLVMValueRef t = a[1], f = a[2];
        unify(c, &t, &f);
        if (cg_is_vec(a[0]) && !cg_is_vec(t)) { t = cg_splat(c, t); f = cg_splat(c, f); }
        return LLVMBuildSelect(c->b, a[0], t, f, "");
    }
    default: break;
    }
    if (e->op == IR_POW) return emit_pow(em, e, a[0], a[1]);
    unify(c, &a[0], &a[1]);
    LLVMValueRef x = a[0], y = a[1];
    switch (e->op) {
    case IR_ADD: return flt ? LLVMBuildFAdd(c->b, x, y, "") : LLVMBuildAdd(c->b, x, y, "");
    case IR_SUB: return flt ? LLVMBuildFSub(c->b, x, y, "") : LLVMBuildSub(c->b, x, y, "");
    case IR_MUL: return flt ? LLVMBuildFMul(c->b, x, y, "") : LLVMBuildMul(c->b, x, y, "");
    case IR_DIV: return LLVMBuildFDiv(c->b, x, y, "");
    case IR_IDIV: case IR_MOD: return emit_intdiv(c, e->op, x, y);
    case IR_MIN: return LLVMBuildSelect(c->b, emit_compare(c, IR_LT, x, y), x, y, "");
    case IR_MAX: return LLVMBuildSelect(c->b, emit_compare(c, IR_GT, x, y), x, y, "");
    case IR_LT: case IR_LE: case IR_GT: case IR_GE: case IR_EQ: case IR_NE: return emit_compare(c, e->op, x, y);
    case IR_AND: return LLVMBuildAnd(c->b, x, y, "");
    case IR_OR: return LLVMBuildOr(c->b, x, y, "");
    default: return zero_of(c, e->type);
    }
}

static LLVMValueRef emit(emitter *em, const ir_expr *e) {
    for (int i = 0; i < em->n; i++)
        if (em->key[i] == e) return em->val[i];
    LLVMValueRef v = emit_uncached(em, e);
    if (em->n < MEMO_MAX) {
        em->key[em->n] = e;
        em->val[em->n++] = v;
    }
    return v;
}

LLVMValueRef cg_expr(cg *c, const ir_expr *e, const cg_env *env) {
    emitter em;
    em.c = c;
    em.env = env;
    em.n = 0;
    return emit(&em, e);
}
