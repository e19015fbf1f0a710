/* Internal to codegen/llvm: the state of one module being generated and the small
 * builder helpers every part of the CPU code generator shares (types, constants,
 * splats, counted loops with SSA-carried values, intrinsics), the vector math
 * (cpu_vmath.c) and the one expression emitter (cpu_expr.c). */
#ifndef ATTNC_CPU_CG_H
#define ATTNC_CPU_CG_H
#include <stdbool.h>
#include <stdint.h>
#include <llvm-c/Core.h>
#include "ir/ir.h"
#include "codegen/llvm/cpu_target.h"

typedef struct cg {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    const cpu_target *tgt;
    const ir_kernel *k;
    int W;                                  /* fp32 lanes per vector */
    LLVMTypeRef t_void, t_i1, t_i8, t_i16, t_i32, t_i64, t_f16, t_f32, t_f64;
    LLVMTypeRef t_vf, t_vi32, t_vi64, t_vb; /* W lanes of float, i32, i64, i1 */
    LLVMTypeRef t_pi8, t_pf32, t_pf64, t_pi32, t_pi16;
    LLVMValueRef fn;                        /* function being emitted */
} cg;

void cg_init(cg *c, LLVMContextRef ctx, LLVMModuleRef mod, const cpu_target *t, const ir_kernel *k);
void cg_dispose(cg *c);

/* The argument block every CPU kernel takes, cpu_args (cpu_kernel.h) as LLVM types: the
 * named struct "<modname>_args" with n_slots tensor slots; *slot gets the slot type
 * (cpu_tensor_arg: data, four strides). */
LLVMTypeRef cg_args_type(cg *c, const char *modname, int n_slots, LLVMTypeRef *slot);
/* mod when it verifies; otherwise NULL with an internal-error message, mod disposed. */
LLVMModuleRef cg_verified(LLVMModuleRef mod, const ir_kernel *k, char *err, size_t errlen);

/* Constants. */
LLVMValueRef cg_i64(cg *c, int64_t v);
LLVMValueRef cg_i32(cg *c, int32_t v);
LLVMValueRef cg_f32(cg *c, double v);
LLVMValueRef cg_f64(cg *c, double v);
LLVMValueRef cg_true(cg *c);
/* Splat of a scalar value (or a constant) to W lanes; vectors pass through. */
LLVMValueRef cg_splat(cg *c, LLVMValueRef scalar);
LLVMValueRef cg_vf32(cg *c, double v);
/* 0, 1, ..., W-1 as i64 lanes. */
LLVMValueRef cg_iota64(cg *c);
bool cg_is_vec(LLVMValueRef v);
/* Same shape as `like` (scalar or W-lane vector). */
LLVMValueRef cg_like(cg *c, LLVMValueRef like, LLVMValueRef scalar_const);

/* Memory. Pointer arithmetic in elements of the pointee type. */
LLVMValueRef cg_gep(cg *c, LLVMTypeRef elem, LLVMValueRef ptr, LLVMValueRef idx);
LLVMValueRef cg_load(cg *c, LLVMTypeRef t, LLVMValueRef ptr, unsigned align);
void cg_store(cg *c, LLVMValueRef v, LLVMValueRef ptr, unsigned align);
/* W floats at ptr (a float*), 4-byte alignment (the allocator's alignment is not promised). */
LLVMValueRef cg_vload(cg *c, LLVMValueRef fptr);
void cg_vstore(cg *c, LLVMValueRef v, LLVMValueRef fptr);
/* W vectors transposed in place (rows[j] lane i <- rows[i] lane j): log2 W rounds of
 * two-source shuffles. */
void cg_transpose(cg *c, LLVMValueRef *rows);
LLVMValueRef cg_bitcast_ptr(cg *c, LLVMValueRef p, LLVMTypeRef ptr_type);

/* Intrinsics by name with their overload types. */
LLVMValueRef cg_call_intrinsic(cg *c, const char *name, LLVMTypeRef *overloads, int n_over,
                               LLVMValueRef *args, int n_args);
LLVMValueRef cg_call_unary(cg *c, const char *name, LLVMValueRef x);   /* overloaded on x */
LLVMValueRef cg_fma(cg *c, LLVMValueRef a, LLVMValueRef b, LLVMValueRef acc);
/* max/min as compare+select: -inf stays -inf, and no fast-math flags are needed. */
LLVMValueRef cg_fmax(cg *c, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_fmin(cg *c, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_smax(cg *c, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_smin(cg *c, LLVMValueRef a, LLVMValueRef b);
/* Floor division of i64 values by a positive constant. */
LLVMValueRef cg_floordiv_const(cg *c, LLVMValueRef a, int64_t d);

/* Counted loop `for (iv = begin; iv < end; iv += step)` with values carried in phis.
 * After cg_loop_end, builder sits in the exit block and carried[] hold the final values. */
enum { CG_LOOP_MAX_CARRIED = 64 };
typedef struct cg_loop {
    LLVMBasicBlockRef pre, header, body, exit;
    LLVMValueRef iv, step;
    LLVMValueRef carried[CG_LOOP_MAX_CARRIED];
    int n;
} cg_loop;
void cg_loop_begin(cg *c, cg_loop *l, LLVMValueRef begin, LLVMValueRef end, LLVMValueRef step,
                   int n_carried, const LLVMValueRef *init);
void cg_loop_end(cg *c, cg_loop *l, const LLVMValueRef *next);

/* if (cond) { ... } with no values merged: cg_if_begin returns the join block; emit the
 * body, then cg_if_end(c, join). */
LLVMBasicBlockRef cg_if_begin(cg *c, LLVMValueRef cond);
void cg_if_end(cg *c, LLVMBasicBlockRef join);
LLVMBasicBlockRef cg_block(cg *c, const char *name);

/* A function with the target attributes every kernel function carries. */
LLVMValueRef cg_function(cg *c, const char *name, LLVMTypeRef ret, LLVMTypeRef *params, int n,
                         bool exported);
void cg_param_attr(cg *c, LLVMValueRef fn, int index, const char *attr);
void cg_fn_attr(cg *c, LLVMValueRef fn, const char *attr);

/* ---------------------------------------------------------------- vector math (cpu_vmath.c)
 * Each takes and returns float or <W x float>. Accuracy (max rel. error, fp32, tested in
 * tests/unit/test_cpu_vmath.c): exp2_softmax 2e-7 on [-126, 0] and exactly 0 below -127;
 * exp, exp2, log, tanh below 5e-7; pow about 1e-7 (1 + |y log x|). */
LLVMValueRef vm_exp2_softmax(cg *c, LLVMValueRef t);   /* t <= 0 expected; -inf -> 0 */
LLVMValueRef vm_exp2(cg *c, LLVMValueRef x);
LLVMValueRef vm_exp(cg *c, LLVMValueRef x);
LLVMValueRef vm_log(cg *c, LLVMValueRef x);
LLVMValueRef vm_tanh(cg *c, LLVMValueRef x);
LLVMValueRef vm_pow(cg *c, LLVMValueRef x, LLVMValueRef y);

/* ---------------------------------------------------------------- expressions (cpu_expr.c) */

/* Where the expression's names come from. Each var is an i64 (float for SCORE/X)
 * scalar or W-lane vector; NULL when not available. Inputs are read through their
 * tensor slot: data pointer and four element strides (i64), with indices clamped to
 * the tensor so a spec's out-of-range read never faults. */
typedef struct cg_env {
    LLVMValueRef var[IR_VAR_COUNT];
    LLVMValueRef in_data[16];               /* i8* per declared input */
    LLVMValueRef in_stride[16][4];
    LLVMValueRef batch;                     /* i64: batch row of token-axis inputs */
    LLVMValueRef seq_k;                     /* i64: extent of token axes */
} cg_env;

/* Emits e; the result is i1 / i64 / float, scalar or vector as the operands require. */
LLVMValueRef cg_expr(cg *c, const ir_expr *e, const cg_env *env);
/* Whether the node itself (not its operands) becomes vector math: exp, log, tanh, and pow
 * other than by a small integral constant (tens of instructions each). */
bool cg_expr_node_calls_vmath(const ir_expr *e);

#endif
