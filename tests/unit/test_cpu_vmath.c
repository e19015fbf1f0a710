/* The CPU backend's inline vector math (cpu_vmath.c) against libm in double precision:
 * each function is JIT-compiled on whole W-lane vectors and swept over its range,
 * including the special values a kernel can meet (-inf for masked scores, 0, inf, NaN).
 * Bounds are a few times the measured worst errors (see cpu_cg.h for the claims). Also the
 * expression emitter's int -> float conversion, which must round exactly like sitofp. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#if ATTNC_HAVE_LLVM
#include <llvm-c/Core.h>
#include <llvm-c/Orc.h>
#include "codegen/llvm/cpu_cg.h"
#include "runtime/llvm/cpu_jit.h"

typedef void (*vec_fn)(const float *x, const float *y, float *out);
typedef void (*conv_fn)(const int64_t *q, int64_t kv, float *out);

enum { F_EXP2_SOFTMAX, F_EXP2, F_EXP, F_LOG, F_TANH, F_POW, F_N };
static const char *const NAMES[F_N] = { "exp2_softmax", "exp2", "exp", "log", "tanh", "pow" };
static const char *const CONV_NAMES[2] = { "float_of_distance", "float_of_cube" };

/* One function per vm_* routine: out[0..W) = f(x[0..W), y[0..W)). */
static cpu_jit *build(cpu_target *t, vec_fn fns[F_N], conv_fn convs[2]) {
    char err[512];
    LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
    LLVMContextRef ctx = LLVMOrcThreadSafeContextGetContext(tsc);
    LLVMModuleRef m = LLVMModuleCreateWithNameInContext("vmath", ctx);
    ir_kernel dummy;
    memset(&dummy, 0, sizeof dummy);
    dummy.heads_q = 1;
    cg c;
    cg_init(&c, ctx, m, t, &dummy);
    for (int f = 0; f < F_N; f++) {
        LLVMTypeRef ps[3] = { c.t_pf32, c.t_pf32, c.t_pf32 };
        c.fn = cg_function(&c, NAMES[f], c.t_void, ps, 3, true);
        LLVMPositionBuilderAtEnd(c.b, LLVMAppendBasicBlockInContext(ctx, c.fn, "entry"));
        LLVMValueRef x = cg_vload(&c, LLVMGetParam(c.fn, 0)), y = cg_vload(&c, LLVMGetParam(c.fn, 1)), r;
        switch (f) {
        case F_EXP2_SOFTMAX: r = vm_exp2_softmax(&c, x); break;
        case F_EXP2: r = vm_exp2(&c, x); break;
        case F_EXP: r = vm_exp(&c, x); break;
        case F_LOG: r = vm_log(&c, x); break;
        case F_TANH: r = vm_tanh(&c, x); break;
        default: r = vm_pow(&c, x, y); break;
        }
        cg_vstore(&c, r, LLVMGetParam(c.fn, 2));
        LLVMBuildRetVoid(c.b);
    }
    /* float(q_idx - kv_idx), whose bounds are proved (the fast conversion on AVX2), and
     * float(q_idx * q_idx * q_idx), whose bounds are not (sitofp). */
    arena a;
    arena_init(&a);
    ir_expr *q = ir_var_ref(&a, IR_VAR_Q_IDX), *kv = ir_var_ref(&a, IR_VAR_KV_IDX);
    ir_expr *conv[2] = { ir_unary(&a, IR_TO_FLOAT, ir_binary(&a, IR_SUB, q, kv)),
                         ir_unary(&a, IR_TO_FLOAT, ir_binary(&a, IR_MUL, ir_binary(&a, IR_MUL, q, q), q)) };
    for (int f = 0; f < 2; f++) {
        LLVMTypeRef ps[3] = { LLVMPointerType(c.t_i64, 0), c.t_i64, c.t_pf32 };
        c.fn = cg_function(&c, CONV_NAMES[f], c.t_void, ps, 3, true);
        LLVMPositionBuilderAtEnd(c.b, LLVMAppendBasicBlockInContext(ctx, c.fn, "entry"));
        LLVMValueRef qp = cg_bitcast_ptr(&c, LLVMGetParam(c.fn, 0), LLVMPointerType(c.t_vi64, 0));
        cg_env env;
        memset(&env, 0, sizeof env);
        env.var[IR_VAR_Q_IDX] = cg_load(&c, c.t_vi64, qp, 8);
        env.var[IR_VAR_KV_IDX] = LLVMGetParam(c.fn, 1);
        cg_vstore(&c, cg_expr(&c, conv[f], &env), LLVMGetParam(c.fn, 2));
        LLVMBuildRetVoid(c.b);
    }
    arena_free(&a);
    cg_dispose(&c);
    CHECK(cpu_optimize_module(m, t, err, sizeof err));
    cpu_jit *j = cpu_jit_create(t, tsc, m, err, sizeof err);
    CHECK_MSG(j != NULL, "%s", err);
    for (int f = 0; j && f < F_N; f++) {
        fns[f] = (vec_fn)cpu_jit_lookup(j, NAMES[f], err, sizeof err);
        CHECK_MSG(fns[f] != NULL, "%s", err);
    }
    for (int f = 0; j && f < 2; f++) {
        convs[f] = (conv_fn)cpu_jit_lookup(j, CONV_NAMES[f], err, sizeof err);
        CHECK_MSG(convs[f] != NULL, "%s", err);
    }
    return j;
}

/* Both conversions against C's (float)int64_t, which rounds once to nearest-even, over
 * positions across the launch limits: odd values above 2^24 meet every rounding case. */
static void test_int_to_float(conv_fn convs[2], int W) {
    uint64_t s = 7;
    int64_t q[64];
    float out[64];
    int bad = 0;
    for (int it = 0; it < 20000 && bad < 5; it++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        int64_t kv = (int64_t)(s % IR_MAX_LENGTH);
        for (int l = 0; l < W; l++) {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            q[l] = (int64_t)(s % (2 * (uint64_t)IR_MAX_LENGTH)) - IR_MAX_LENGTH;
            if (it % 4 == 0) q[l] = kv + (int64_t)(s % 64) - 32 + (((int64_t)1 << 24) | 1) * (l % 3 - 1);
        }
        convs[0](q, kv, out);
        for (int l = 0; l < W; l++)
            if (out[l] != (float)(q[l] - kv)) {
                CHECK_MSG(0, "float(%lld - %lld) = %.9g, expected %.9g", (long long)q[l], (long long)kv, out[l],
                          (float)(q[l] - kv));
                bad++;
            }
        for (int l = 0; l < W; l++) q[l] = (int64_t)((uint64_t)q[l] % 2000001) - 1000000;   /* cubes within int64 */
        convs[1](q, kv, out);
        for (int l = 0; l < W; l++)
            if (out[l] != (float)(q[l] * q[l] * q[l])) {
                CHECK_MSG(0, "float(%lld^3) = %.9g, expected %.9g", (long long)q[l], out[l], (float)(q[l] * q[l] * q[l]));
                bad++;
            }
    }
}

/* Largest relative error of f over xs (and ys), with exact special-value matches. */
static double sweep(vec_fn fn, int W, const float *xs, const float *ys, int n, double (*ref)(double, double),
                    double tiny, const char *name) {
    float x[64], y[64], out[64];
    double worst = 0;
    for (int i = 0; i < n; i += W) {
        for (int l = 0; l < W; l++) {
            x[l] = xs[(i + l) % n];
            y[l] = ys ? ys[(i + l) % n] : 0;
        }
        fn(x, y, out);
        for (int l = 0; l < W; l++) {
            double r = ref(x[l], y[l]), o = out[l];
            if (isnan(r) || isinf(r) || r == 0) {
                bool same = (isnan(r) && isnan(o)) || r == o || (r == 0 && fabs(o) < 1e-37);
                CHECK_MSG(same, "%s(%.9g, %.9g) = %.9g, expected %.9g", name, x[l], y[l], o, r);
                continue;
            }
            double e = fabs(o - r) / fmax(fabs(r), tiny);
            if (e > worst) worst = e;
        }
    }
    return worst;
}

static double ref_exp2(double x, double y) { (void)y; return exp2(x) < 1.1754943508222875e-38 ? 0.0 : exp2(x); }
static double ref_exp(double x, double y) { (void)y; return exp(x) < 1.1754943508222875e-38 ? 0.0 : exp(x); }
static double ref_log(double x, double y) { (void)y; return log(x); }
static double ref_tanh(double x, double y) { (void)y; return tanh(x); }
static double ref_pow(double x, double y) { return pow(x, y); }

int main(void) {
    char err[512];
    cpu_target t;
    CHECK_MSG(cpu_target_host(&t, err, sizeof err), "%s", err);
    vec_fn fns[F_N] = { 0 };
    conv_fn convs[2] = { 0 };
    cpu_jit *j = build(&t, fns, convs);
    if (!j) return check_status("test_cpu_vmath");
    int W = t.lanes;
    enum { N = 200000 };
    float *xs = malloc(sizeof(float) * N), *ys = malloc(sizeof(float) * N);
    uint64_t s = 42;

    /* exp2 for the softmax: t in [-130, 0] plus -inf (masked) -> exactly 0. */
    for (int i = 0; i < N; i++) xs[i] = -130.0f * (float)i / N;
    xs[0] = -INFINITY;
    xs[1] = 0.0f;
    double e = sweep(fns[F_EXP2_SOFTMAX], W, xs, NULL, N, ref_exp2, 1e-30, "exp2_softmax");
    CHECK_MSG(e < 5e-7, "exp2_softmax error %.3g", e);
    for (int i = 0; i < N; i++) xs[i] = -130.0f + 258.0f * (float)i / N;
    xs[0] = -INFINITY; xs[1] = INFINITY; xs[2] = NAN;
    e = sweep(fns[F_EXP2], W, xs, NULL, N, ref_exp2, 1e-30, "exp2");
    CHECK_MSG(e < 5e-7, "exp2 error %.3g", e);
    for (int i = 0; i < N; i++) xs[i] = -90.0f + 178.0f * (float)i / N;
    xs[0] = -INFINITY; xs[1] = INFINITY; xs[2] = NAN; xs[3] = 0; xs[4] = 1e-7f;
    e = sweep(fns[F_EXP], W, xs, NULL, N, ref_exp, 1e-30, "exp");
    CHECK_MSG(e < 5e-7, "exp error %.3g", e);
    for (int i = 0; i < N; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        xs[i] = ldexpf((float)(s >> 40) / (float)(1 << 24) + 0.5f, (int)(s % 200) - 100);
    }
    xs[0] = 0; xs[1] = -1; xs[2] = INFINITY; xs[3] = NAN; xs[4] = 1.0f; xs[5] = 1.0000001f; xs[6] = 0.9999999f;
    e = sweep(fns[F_LOG], W, xs, NULL, N, ref_log, 1e-30, "log");
    CHECK_MSG(e < 5e-7, "log error %.3g", e);
    for (int i = 0; i < N; i++) xs[i] = -12.0f + 24.0f * (float)i / N;
    xs[0] = -INFINITY; xs[1] = INFINITY; xs[2] = NAN; xs[3] = 1e-6f; xs[4] = -3e-4f; xs[5] = 0.2499f;
    e = sweep(fns[F_TANH], W, xs, NULL, N, ref_tanh, 1e-30, "tanh");
    CHECK_MSG(e < 5e-7, "tanh error %.3g", e);
    for (int i = 0; i < N; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        xs[i] = (float)((s >> 11) % 10000) / 1000.0f;          /* base in [0, 10) */
        ys[i] = (float)((int)((s >> 40) % 2000) - 1000) / 100.0f;   /* exponent in [-10, 10) */
    }
    xs[0] = -2; ys[0] = 3; xs[1] = -2; ys[1] = 0.5f; xs[2] = 0; ys[2] = 0; xs[3] = 0; ys[3] = 2; xs[4] = 2; ys[4] = -126;
    e = sweep(fns[F_POW], W, xs, ys, N, ref_pow, 1e-30, "pow");
    CHECK_MSG(e < 1e-5, "pow error %.3g", e);     /* exp(y log x): |y log x| up to 23 */
    test_int_to_float(convs, W);
    free(xs);
    free(ys);
    cpu_jit_destroy(j);
    return check_status("test_cpu_vmath");
}
#else
int main(void) {
    printf("test_cpu_vmath: not applicable, attnc was built without LLVM (ATTNC_LLVM=OFF)\n");
    return 0;
}
#endif
