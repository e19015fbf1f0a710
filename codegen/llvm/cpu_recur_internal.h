/* Internal to the recurrence generator (cpu_recur*.c): the state of one module being
 * generated, the values of one work item (batch row, head), and the helpers the parts
 * share. Layout conventions (floats, all row lengths padded to whole vectors):
 *   S   [Npad][Pp]   the state; with normalize, column P holds the normaliser z, so every
 *                    formula for S updates z too (z is S applied to a value column of ones);
 *   Kr  [Cpad][Npad] keys of a chunk, one row per token;
 *   QT  [Npad][Cpad] queries of a chunk, transposed (a row per key dim, tokens along it);
 *   ScT [Cpad][Cpad] scores of a chunk, transposed: ScT[i][t] = q_t . k_i (i key, t query);
 *   V   [Cpad][Pp]   values times the value scale (+ the ones column);
 *   O   [Cpad][Pp]   the chunk's outputs before normalisation and skip.
 * Cumulative log-decays are kept in log2 units in f64, so differences of nearby sums keep
 * full precision and every decay factor is exp2 of a difference that is <= 0. */
#ifndef ATTNC_CPU_RECUR_INTERNAL_H
#define ATTNC_CPU_RECUR_INTERNAL_H
#include <stdbool.h>
#include <stdint.h>
#include "codegen/llvm/cpu_cg.h"
#include "codegen/llvm/cpu_kernel.h"
#include "codegen/llvm/cpu_recur.h"
#include "util/arena.h"

typedef struct rgen {
    cg c;
    const ir_kernel *k;
    arena ar;                       /* rewritten expressions */
    cpu_abi abi;
    int s_state_in, s_norm_in, s_state_out, s_norm_out;   /* slots, -1 when absent */
    int H, G, N, P, P1, W, C;       /* heads, groups, d_k, d_v, d_v (+1 with normalize), lanes, chunk */
    int Npad, Pp, Cpad;
    int R, NV;                      /* micro-GEMM tile: R rows x NV vectors */
    int sub;                        /* vector decay: diagonal sub-block length */
    int EB;                         /* step form: vectors of a state row per pass */
    int n_gemm;                     /* GEMM functions emitted so far (their names) */
    bool chunked;                   /* the chunkwise form exists (not per-element decay) */
    bool vdecay;                    /* decay per key dim (GLA) */
    bool lam_table;                 /* per-element decay constant over tokens: tabled per head */
    LLVMTypeRef t_slot, t_args, t_pargs, t_pi64, t_vd;
    /* Per-thread scratch, offsets in floats (64-byte multiples): T floats, then the
     * states of the item's heads, SF floats each. */
    int64_t T, SF;
    int64_t o_zero, o_q, o_k, o_v, o_lam, o_orow, o_w, o_lit;
    int64_t o_QT, o_Kr, o_V, o_Vd, o_Vs, o_Sc, o_Sraw, o_O, o_A, o_es;
    int64_t o_Qr, o_fj, o_Ar, o_QdT, o_Kx, o_QtT, o_esr;
} rgen;

/* Values of the item function (batch row b, head h). */
typedef struct ritem {
    LLVMValueRef A, ST;             /* args*, i64 strides[slot * 4 + d] */
    LLVMValueRef b, h, grp, seq;    /* i64 */
    LLVMValueRef X;                 /* float*: this thread's scratch (T floats, then states) */
    LLVMValueRef data[SIG_MAX_TENSORS];
    LLVMValueRef lam_h, ell_h;      /* per-head decay and its log2 (f32), when constant per head */
    LLVMValueRef skip_h;            /* per-head skip (f32) when it does not vary along v */
} ritem;

#define RB(g) ((g)->c.b)
static inline LLVMValueRef rI(rgen *g, int64_t v) { return cg_i64(&g->c, v); }
static inline LLVMValueRef radd(rgen *g, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildAdd(RB(g), a, b, ""); }
static inline LLVMValueRef rsub(rgen *g, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildSub(RB(g), a, b, ""); }
static inline LLVMValueRef rmul(rgen *g, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildMul(RB(g), a, b, ""); }
static inline LLVMValueRef rdiv(rgen *g, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildSDiv(RB(g), a, b, ""); }
static inline LLVMValueRef rcmp(rgen *g, LLVMIntPredicate p, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildICmp(RB(g), p, a, b, "");
}
static inline LLVMValueRef rsel(rgen *g, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(RB(g), c, a, b, "");
}
static inline LLVMValueRef rmin(rgen *g, LLVMValueRef a, LLVMValueRef b) { return cg_smin(&g->c, a, b); }
static inline LLVMValueRef rmax(rgen *g, LLVMValueRef a, LLVMValueRef b) { return cg_smax(&g->c, a, b); }
static inline LLVMValueRef rfadd(rgen *g, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFAdd(RB(g), a, b, ""); }
static inline LLVMValueRef rfsub(rgen *g, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(RB(g), a, b, ""); }
static inline LLVMValueRef rfmul(rgen *g, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFMul(RB(g), a, b, ""); }
/* float* p + i (i an i64 value). */
static inline LLVMValueRef rfp(rgen *g, LLVMValueRef p, LLVMValueRef i) { return cg_gep(&g->c, g->c.t_f32, p, i); }
static inline LLVMValueRef rfpc(rgen *g, LLVMValueRef p, int64_t i) { return rfp(g, p, rI(g, i)); }
static inline LLVMValueRef rldf(rgen *g, LLVMValueRef p) { return cg_load(&g->c, g->c.t_f32, p, 4); }
static inline void rstf(rgen *g, LLVMValueRef v, LLVMValueRef p) { cg_store(&g->c, v, p, 4); }
/* The scratch array at a float offset. */
static inline LLVMValueRef rscr(rgen *g, const ritem *it, int64_t off) { return rfpc(g, it->X, off); }

/* ---- cpu_recur_util.c */
LLVMValueRef rg_stride(rgen *g, const ritem *it, int slot, int d);
/* Element offset of (i0, i1, i2, i3) in a slot (unused trailing indices NULL). */
LLVMValueRef rg_offset(rgen *g, const ritem *it, int slot, LLVMValueRef i0, LLVMValueRef i1, LLVMValueRef i2,
                       LLVMValueRef i3);
/* W lanes of a row of the kernel dtype (or f32 when f32_data) from base_i8 at element
 * offset off with element stride `stride`; lanes >= nvalid are 0 and not read. */
LLVMValueRef rg_load_row(rgen *g, LLVMValueRef base_i8, bool f32_data, LLVMValueRef off, LLVMValueRef stride,
                         LLVMValueRef nvalid);
void rg_store_row(rgen *g, LLVMValueRef base_i8, bool f32_data, LLVMValueRef off, LLVMValueRef stride,
                  LLVMValueRef nvalid, LLVMValueRef v);
/* W whole elements at off, contiguous (no checks). */
LLVMValueRef rg_load_contig(rgen *g, LLVMValueRef base_i8, bool f32_data, LLVMValueRef off);
void rg_store_contig(rgen *g, LLVMValueRef base_i8, bool f32_data, LLVMValueRef off, LLVMValueRef v);
/* Prefetches the cache lines of n_elems consecutive elements at element offset off
 * (a hint: wrong addresses do not fault). */
void rg_prefetch_row(rgen *g, LLVMValueRef base_i8, bool f32_data, LLVMValueRef off, int n_elems, bool write);
/* Lanes < n (n an i64 value) as <W x i1>. */
LLVMValueRef rg_lanes_below(rgen *g, LLVMValueRef n);
/* Contiguous masked f32 access (mask a <W x i1> value). */
LLVMValueRef rg_mload(rgen *g, LLVMValueRef fptr, LLVMValueRef mask);
void rg_mstore(rgen *g, LLVMValueRef v, LLVMValueRef fptr, LLVMValueRef mask);

/* A spec expression (decay, log decay, value scale, skip) at token t (i64, may be NULL
 * when the expression reads no token axis), key dim kidx, value dim vidx. lanes = -1:
 * a scalar; IR_AXIS_K / IR_AXIS_V: W lanes along that axis starting at kidx / vidx
 * (indices past the axis are clamped; the caller masks those lanes). */
LLVMValueRef rg_eval(rgen *g, const ritem *it, const ir_expr *e, LLVMValueRef t, LLVMValueRef kidx,
                     LLVMValueRef vidx, int lanes);
/* The feature map (identity when the kernel has none) on a vector. */
LLVMValueRef rg_feature(rgen *g, LLVMValueRef x);
/* log2 of the decay at token t (scalar, or lanes along k from kidx), clamped below at
 * -150 so that a zero decay gives factors that flush to 0 and never NaN. */
LLVMValueRef rg_log2_decay(rgen *g, const ritem *it, LLVMValueRef t, LLVMValueRef kidx, int lanes);
/* 2^x for x <= 0 (the decay factors), float or vector. */
LLVMValueRef rg_exp2(rgen *g, LLVMValueRef x);
/* 2^x for a double x (scalar or W lanes) in [-126, 126] as float, to ~2e-7 relative
 * whatever |x|: the integer part goes to the exponent exactly, only the fraction is
 * rounded to float. */
LLVMValueRef rg_exp2_wide(rgen *g, LLVMValueRef x);
/* Horizontal sum of a vector. */
LLVMValueRef rg_hsum(rgen *g, LLVMValueRef v);
/* n floats of zeros at p (n a multiple of W). */
void rg_zero(rgen *g, LLVMValueRef p, int64_t n);
/* if/else producing one value: rg_ifv_begin branches; after the then-part call
 * rg_ifv_else with its value, after the else-part rg_ifv_end with its value. */
typedef struct rg_ifv {
    LLVMBasicBlockRef then_end, else_bb, join;
    LLVMValueRef then_val;
} rg_ifv;
void rg_ifv_begin(rgen *g, rg_ifv *f, LLVMValueRef cond);
void rg_ifv_else(rgen *g, rg_ifv *f, LLVMValueRef then_val);
LLVMValueRef rg_ifv_end(rgen *g, rg_ifv *f, LLVMValueRef else_val);

/* ---- cpu_recur_gemm.c: register-blocked C (+)= A B.
 * Element (r, kk) of A is A[r * a_rs + kk * a_ks] (broadcast), row kk of B is
 * B[kk * b_ks ...] (vectors), C row r is C[r * c_rs ...]. */
typedef struct rg_phase {
    LLVMValueRef A, B, K;           /* float*, float*, i64 reduction length */
    int64_t a_rs, a_ks, b_ks;
    bool causal;                    /* reduce only over kk < r0 + rows of the tile (kk <= row) */
} rg_phase;
typedef struct rg_gemm_spec {
    int n_phases;
    rg_phase ph[2];
    LLVMValueRef Cm;
    int64_t c_rs;
    LLVMValueRef M;                 /* rows (i64) */
    int nvec;                       /* column vectors */
    bool causal_cols;               /* only columns >= the tile's first row (rounded down) */
    bool init_load;                 /* start from C (else 0) ... */
    LLVMValueRef init_scale;        /* ... times this float (or NULL) ... */
    LLVMValueRef init_scale_rows;   /* ... or times init_scale_rows[row] (float*) */
    LLVMValueRef mid_scale;         /* after phase 0: row r times mid_scale[r] (float*), or NULL */
    LLVMValueRef post_scale;        /* after the last phase: row r times post_scale[r], or NULL */
} rg_gemm_spec;
void rg_gemm(rgen *g, const rg_gemm_spec *s);

/* ---- cpu_recur.c: shared by both forms */
/* Writes o[b, t, h, :] from the f32 row orow (floats), divided by den when normalising
 * (den NULL otherwise), plus the skip term. */
void rg_store_output(rgen *g, const ritem *it, LLVMValueRef t, LLVMValueRef orow, LLVMValueRef den);

/* ---- cpu_recur_chunk.c: one chunk [c0, c0 + L) of the chunkwise form: the part shared
 * by the heads of it->grp, then each head (it->h) with its state S [Npad][Pp]. */
void rg_chunk_stage(rgen *g, const ritem *it, LLVMValueRef c0, LLVMValueRef L);
void rg_chunk_head(rgen *g, const ritem *it, LLVMValueRef c0, LLVMValueRef L, LLVMValueRef S);

/* ---- cpu_recur_scan.c: the recurrent step over tokens [t0, t1). The state is read from
 * (src_S, src_rs) / (src_z, src_zs) for the first token and from the destination after
 * that, so a state_in view feeds the first step directly and state_out (even the same
 * buffer) receives every step; rows are src_S + a * src_rs (inner stride 1). literal: the
 * interpreter's loop nests as scalar code (CPU_RECUR_LITERAL, a benchmark baseline). */
typedef struct rg_state_ref {
    LLVMValueRef S, rs, z, zs;      /* float*, i64, float*, i64 (z only with normalize) */
} rg_state_ref;
void rg_scan(rgen *g, const ritem *it, LLVMValueRef t0, LLVMValueRef t1, const rg_state_ref *src,
             const rg_state_ref *dst, bool literal);

#endif
