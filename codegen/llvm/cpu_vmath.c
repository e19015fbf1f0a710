/* Vector math emitted inline as LLVM IR: exp2 for the softmax, and exp, log, tanh, pow
 * for spec expressions. LLVM's llvm.exp.* and friends become one libm call per lane;
 * these are branch-free polynomials on whole vectors instead. Polynomial coefficients
 * are weighted least-squares fits of 2^r on r in [-1/2, 1/2] (Chebyshev nodes, fp32
 * Horner error 2.2e-7 for degree 5, 9.7e-8 for degree 6). Every function works on a
 * float scalar or a W-lane vector alike. */
#include <math.h>
#include "codegen/llvm/cpu_cg.h"

static const double EXP2_DEG5[6] = { 1.0000001192092896, 0.6931469440460205, 0.24022121727466583,
                                     0.05550742521882057, 0.009675459936261177, 0.0013266970636323094 };
static const double EXP2_DEG6[7] = { 1.0, 0.6931471824645996, 0.24022646248340607, 0.05550329014658928,
                                     0.009618519805371761, 0.0013399859890341759, 0.00015337577497120947 };

static LLVMValueRef fconst(cg *c, LLVMValueRef like, double v) { return cg_like(c, like, cg_f32(c, v)); }
static LLVMValueRef iconst(cg *c, LLVMValueRef like, int32_t v) { return cg_like(c, like, cg_i32(c, v)); }

static LLVMTypeRef int_type_like(cg *c, LLVMValueRef like) {
    return cg_is_vec(like) ? c->t_vi32 : c->t_i32;
}

static LLVMValueRef horner(cg *c, LLVMValueRef r, const double *coef, int n) {
    LLVMValueRef p = fconst(c, r, coef[n - 1]);
    for (int i = n - 2; i >= 0; i--) p = cg_fma(c, p, r, fconst(c, r, coef[i]));
    return p;
}

/* 2^n for integral float n in [-127, 127]: the exponent field built by integer shift
 * (AVX2 has no vscalefps); n = -127 gives +0 exactly. */
static LLVMValueRef pow2_int(cg *c, LLVMValueRef n) {
    LLVMValueRef ni = LLVMBuildFPToSI(c->b, n, int_type_like(c, n), "");
    LLVMValueRef e = LLVMBuildAdd(c->b, ni, iconst(c, ni, 127), "");
    LLVMValueRef bits = LLVMBuildShl(c->b, e, iconst(c, ni, 23), "");
    return LLVMBuildBitCast(c->b, bits, LLVMTypeOf(n), "");
}

static LLVMValueRef round_even(cg *c, LLVMValueRef x) { return cg_call_unary(c, "llvm.nearbyint", x); }

LLVMValueRef vm_exp2_softmax(cg *c, LLVMValueRef t) {
    /* Clamp at -127 (NaN passes through): then 2^n is +0 and masked (-inf) scores give
     * exactly 0 with no extra select. t in (-127, -126.5) also gives 0: below 2^-126. */
    LLVMValueRef lo = fconst(c, t, -127.0);
    t = LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOLT, t, lo, ""), lo, t, "");
    LLVMValueRef n = round_even(c, t);
    LLVMValueRef r = LLVMBuildFSub(c->b, t, n, "");
    return LLVMBuildFMul(c->b, horner(c, r, EXP2_DEG5, 6), pow2_int(c, n), "");
}

/* 2^(n + r) with |r| <= 1/2 (plus a small correction term): result NaN where x is NaN,
 * +inf above 128, 0 below -126 (where results would be subnormal). */
static LLVMValueRef exp2_finish(cg *c, LLVMValueRef x, LLVMValueRef hi, LLVMValueRef lo_corr) {
    LLVMValueRef cl_lo = fconst(c, hi, -126.0), cl_hi = fconst(c, hi, 128.0);
    LLVMValueRef under = LLVMBuildFCmp(c->b, LLVMRealOLT, hi, cl_lo, "");
    LLVMValueRef over = LLVMBuildFCmp(c->b, LLVMRealOGT, hi, cl_hi, "");
    LLVMValueRef h = LLVMBuildSelect(c->b, under, cl_lo, hi, "");
    h = LLVMBuildSelect(c->b, over, cl_hi, h, "");
    LLVMValueRef n = round_even(c, h);
    LLVMValueRef r = LLVMBuildFSub(c->b, h, n, "");
    if (lo_corr) r = LLVMBuildFAdd(c->b, r, lo_corr, "");
    /* n in [-126, 128]: 2^n as two factors 2^(n/2) 2^(n - n/2), each a normal number,
     * so results up to FLT_MAX stay finite and exact in the scaling. */
    LLVMValueRef n1 = cg_call_unary(c, "llvm.floor", LLVMBuildFMul(c->b, n, fconst(c, n, 0.5), ""));
    LLVMValueRef n2 = LLVMBuildFSub(c->b, n, n1, "");
    LLVMValueRef y = LLVMBuildFMul(c->b, LLVMBuildFMul(c->b, horner(c, r, EXP2_DEG6, 7), pow2_int(c, n1), ""),
                                   pow2_int(c, n2), "");
    y = LLVMBuildSelect(c->b, under, fconst(c, x, 0.0), y, "");
    y = LLVMBuildSelect(c->b, over, fconst(c, x, INFINITY), y, "");
    LLVMValueRef isnan = LLVMBuildFCmp(c->b, LLVMRealUNO, x, x, "");
    return LLVMBuildSelect(c->b, isnan, x, y, "");
}

LLVMValueRef vm_exp2(cg *c, LLVMValueRef x) { return exp2_finish(c, x, x, NULL); }

LLVMValueRef vm_exp(cg *c, LLVMValueRef x) {
    /* x·log2(e) with the product's rounding error kept: hi + lo = x·log2e to ~2^-48. */
    const double L = 1.4426950408889634;
    float L_hi = (float)L;
    double L_lo = L - (double)L_hi;
    LLVMValueRef lh = fconst(c, x, L_hi);
    LLVMValueRef hi = LLVMBuildFMul(c->b, x, lh, "");
    LLVMValueRef err = cg_fma(c, x, lh, LLVMBuildFNeg(c->b, hi, ""));
    LLVMValueRef lo = cg_fma(c, x, fconst(c, x, L_lo), err);
    if (!c->tgt->fma) lo = LLVMBuildFMul(c->b, x, fconst(c, x, L_lo), "");   /* no exact product error */
    return exp2_finish(c, x, hi, lo);
}

LLVMValueRef vm_log(cg *c, LLVMValueRef x) {
    LLVMTypeRef it = int_type_like(c, x);
    LLVMValueRef bits = LLVMBuildBitCast(c->b, x, it, "");
    LLVMValueRef e = LLVMBuildSub(c->b, LLVMBuildAnd(c->b, LLVMBuildLShr(c->b, bits, iconst(c, bits, 23), ""),
                                                     iconst(c, bits, 0xff), ""), iconst(c, bits, 127), "");
    LLVMValueRef mb = LLVMBuildOr(c->b, LLVMBuildAnd(c->b, bits, iconst(c, bits, 0x007fffff), ""),
                                  iconst(c, bits, 0x3f800000), "");
    LLVMValueRef m = LLVMBuildBitCast(c->b, mb, LLVMTypeOf(x), "");
    /* m in [sqrt(1/2), sqrt(2)) so that s below stays small. */
    LLVMValueRef big = LLVMBuildFCmp(c->b, LLVMRealOGT, m, fconst(c, x, 1.4142135623730951), "");
    m = LLVMBuildSelect(c->b, big, LLVMBuildFMul(c->b, m, fconst(c, x, 0.5), ""), m, "");
    e = LLVMBuildSelect(c->b, big, LLVMBuildAdd(c->b, e, iconst(c, e, 1), ""), e, "");
    /* log m = 2 atanh(s), s = (m-1)/(m+1), |s| < 0.172: the series to s^11 is exact to 1e-10. */
    LLVMValueRef one = fconst(c, x, 1.0);
    LLVMValueRef s = LLVMBuildFDiv(c->b, LLVMBuildFSub(c->b, m, one, ""), LLVMBuildFAdd(c->b, m, one, ""), "");
    LLVMValueRef z = LLVMBuildFMul(c->b, s, s, "");
    static const double series[6] = { 2.0, 2.0 / 3, 2.0 / 5, 2.0 / 7, 2.0 / 9, 2.0 / 11 };
    LLVMValueRef p = horner(c, z, series, 6);
    LLVMValueRef lm = LLVMBuildFMul(c->b, s, p, "");
    const double LN2 = 0.6931471805599453;
    float ln2_hi = (float)LN2;
    LLVMValueRef ef = LLVMBuildSIToFP(c->b, e, LLVMTypeOf(x), "");
    LLVMValueRef y = cg_fma(c, ef, fconst(c, x, LN2 - (double)ln2_hi), lm);
    y = cg_fma(c, ef, fconst(c, x, ln2_hi), y);
    /* Zero and denormals (flushed anyway): -inf; negative: NaN; +inf and NaN: themselves. */
    LLVMValueRef zero = LLVMBuildFCmp(c->b, LLVMRealOLT, x, fconst(c, x, 1.1754943508222875e-38), "");
    y = LLVMBuildSelect(c->b, zero, fconst(c, x, -INFINITY), y, "");
    LLVMValueRef neg = LLVMBuildFCmp(c->b, LLVMRealOLT, x, fconst(c, x, 0.0), "");
    y = LLVMBuildSelect(c->b, neg, fconst(c, x, NAN), y, "");
    LLVMValueRef special = LLVMBuildFCmp(c->b, LLVMRealUEQ, x, fconst(c, x, INFINITY), "");
    return LLVMBuildSelect(c->b, special, x, y, "");
}

LLVMValueRef vm_tanh(cg *c, LLVMValueRef x) {
    /* tanh|x| = e / (e + 2) with e = expm1(2|x|); expm1 by its Taylor series below 1/2
     * (no cancellation), by exp - 1 above; 1 from |x| >= 9 on. */
    LLVMValueRef a = cg_call_unary(c, "llvm.fabs", x);
    LLVMValueRef y = LLVMBuildFAdd(c->b, a, a, "");
    static const double taylor[8] = { 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320 };
    LLVMValueRef small = LLVMBuildFMul(c->b, y, horner(c, y, taylor, 8), "");
    LLVMValueRef yc = cg_fmin(c, y, fconst(c, x, 18.0));
    LLVMValueRef large = LLVMBuildFSub(c->b, vm_exp(c, yc), fconst(c, x, 1.0), "");
    LLVMValueRef e = LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOLT, y, fconst(c, x, 0.5), ""), small, large, "");
    LLVMValueRef t = LLVMBuildFDiv(c->b, e, LLVMBuildFAdd(c->b, e, fconst(c, x, 2.0), ""), "");
    t = LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealOGE, a, fconst(c, x, 9.0), ""), fconst(c, x, 1.0), t, "");
    LLVMTypeRef ty = LLVMTypeOf(x);
    LLVMValueRef args[2] = { t, x };
    LLVMValueRef r = cg_call_intrinsic(c, "llvm.copysign", &ty, 1, args, 2);
    return LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, LLVMRealUNO, x, x, ""), x, r, "");
}

LLVMValueRef vm_pow(cg *c, LLVMValueRef x, LLVMValueRef y) {
    /* |x|^y = exp(y log|x|); a negative base keeps its sign for odd integral y and is
     * NaN otherwise; x^0 = 1 (also for x = 0 and NaN), as C's pow. */
    LLVMValueRef ax = cg_call_unary(c, "llvm.fabs", x);
    LLVMValueRef r = vm_exp(c, LLVMBuildFMul(c->b, y, vm_log(c, ax), ""));
    LLVMValueRef yint = LLVMBuildFCmp(c->b, LLVMRealOEQ, cg_call_unary(c, "llvm.floor", y), y, "");
    LLVMValueRef half = LLVMBuildFMul(c->b, y, fconst(c, y, 0.5), "");
    LLVMValueRef odd = LLVMBuildFCmp(c->b, LLVMRealONE, cg_call_unary(c, "llvm.floor", half), half, "");
    LLVMValueRef neg = LLVMBuildFCmp(c->b, LLVMRealOLT, x, fconst(c, x, 0.0), "");
    LLVMValueRef signed_r = LLVMBuildSelect(c->b, odd, LLVMBuildFNeg(c->b, r, ""), r, "");
    LLVMValueRef neg_r = LLVMBuildSelect(c->b, yint, signed_r, fconst(c, x, NAN), "");
    r = LLVMBuildSelect(c->b, neg, neg_r, r, "");
    LLVMValueRef y0 = LLVMBuildFCmp(c->b, LLVMRealOEQ, y, fconst(c, y, 0.0), "");
    return LLVMBuildSelect(c->b, y0, fconst(c, x, 1.0), r, "");
}
