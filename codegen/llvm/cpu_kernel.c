/* CPU kernel skeletons built with the LLVM C API: tiled online-softmax attention with
 * split-KV and a log-sum-exp merge, specialised by the IR's constants, with the mask and
 * score modifier inlined by the expression emitter (cpu_expr.c).
 *
 * Orientation. Everything is computed transposed, with query rows in vector lanes:
 *   S^T[key][row] = sum_d K[key][d] * Q^T[d][row]     (K element broadcast, Q^T vector)
 *   O^T[col][row] += sum_j V[j][col] * P^T[j][row]     (V element broadcast, P^T vector)
 * so K and V are read in place (any strides, any dtype after staging) and never
 * transposed, the online softmax state (max, sum, rescale) is per lane with no
 * horizontal reductions, and the GQA heads of a kv head are simply more lanes: a work
 * item holds R = Br positions x g heads rows (row r = position r / g, head r % g), so
 * each K/V block is read once for all g heads.
 *
 * Work decomposition. Item = (batch, kv heads, key split, q-block), heavy q-blocks first
 * within a head (bottom-right causal work grows with the q-block), handed out one at a
 * time by the pool's atomic counter. Prefill items hold one kv head; an item with a
 * single q-block (decode) holds every kv head of its key range, so K/V are read as
 * the contiguous [tokens][heads][d] memory they are (one head again when K is given
 * head-major: then each head is the contiguous stream). Per item: stage Q^T (dtype
 * conversion, scale * log2 e, RoPE) into per-thread scratch; for each key block of
 * Bc = 96 keys (restricted to the mask band) stage K/V (fp32 rows: conversion, RoPE,
 * and no 2^n strides), then for each panel of rows run the S micro-kernel (KT keys x RV
 * vectors of rows, accumulators in SSA phis), the softmax update (per-lane max, exp2
 * polynomial, sums) and the PV micro-kernel (KC columns x RV vectors). Panels are
 * classified EMPTY / FULL / PARTIAL from the mask band; only PARTIAL ones evaluate the
 * mask. In a `phase decode` kernel, with one query position and g <= lanes/2, `pack` =
 * lanes/g keys share each vector (packed panels, see kgen.pack); with dense rows those
 * read K in place (with RoPE: its rotated, staged rows) through dot products reduced
 * across lanes (kgen.direct). The phase picks the paths a module holds (kgen.wide).
 * Splits (few items, many keys) write (m, l, O~) partials that phase 2 merges.
 *
 * Workspace (attnc_NAME_workspace_size): n_threads x per-thread scratch, a constant of
 * the kernel: heads_kv x (Q^T, O^T: R_pad x (d_qk + d_v), m/l/alpha) + heads_kv x Bc x
 * (d_qk + d_v) staged K/V + small tables; plus RoPE tables ((ceil(seq_k'/Bc) + Bc) x pairs
 * x 8 bytes with implicit positions; batch x seq_k x pairs x 8 (x3 for ReRoPE) with
 * explicit ones); plus split partials (batch x heads_kv x q-blocks x splits x (2 + d_v) x
 * R_pad x 4 bytes, only when splitting). Nothing else is allocated per launch. */
#include "codegen/llvm/cpu_kernel.h"
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "codegen/llvm/cpu_cg.h"

enum { PL_B, PL_SQ, PL_SK, PL_NT, PL_OFF, PL_NQ, PL_NKB, PL_NSPLIT, PL_CHUNK, PL_BASE, PL_ITEMS0, PL_ITEMS1,
       PL_ITEMS2, PL_QSHIFT, PL_NHI, PL_TBLOFF, PL_PARTOFF, PL_WS, PL_HG, PL_N };

enum { MAX_SPLITS = 64 };

typedef struct kgen {
    cg c;
    const ir_kernel *k;
    cpu_tiles tl;
    cpu_abi abi;
    int G, HQ, HKV, dq, dv, Br, R, R_pad, Bc, Bd, W, RPw;
    int P, n_axes, ntab;
    bool rope, rerope, explicit_pos, factored, dyn_ntk;
    const ir_expr *mask;            /* NULL when every key is visible */
    bool mask_false;
    double qscale;                  /* scale (x log2 e without a score modifier) */
    LLVMTypeRef t_slot, t_args, t_pargs, t_pi64;
    /* Per-thread scratch: shared parts, then one block of state per kv head (decode items
     * hold all kv heads; prefill items use the first block only). Offsets in floats; the
     * per-head ones are relative to a head block. */
    int64_t off_sT, off_kst, off_kst2, off_vst, off_cs, off_w, off_rows, off_kp, off_vp, off_heads;
    int64_t off_qT, off_qT2, off_oT, off_m, off_l, off_alpha, head_floats;
    int64_t T_floats;
    LLVMValueRef g_inv_freq, g_pair_axis;
    LLVMValueRef f_plan, f_strides, f_table, f_stage_q, f_stage_k, f_stage_v, f_s[4], f_pv[4], f_compute, f_merge, f_rows;
    LLVMValueRef f_pack_k, f_pack_v, f_stage_pack_k, f_stage_pack_v;
    /* Packed decode: with one query position the g rows fill only g lanes, so `pack`
     * keys share a vector instead: lane = row * pack + key parity, each lane with its own
     * online softmax state (its keys are those of that parity), folded per row at the
     * end. K and V blocks are interleaved [keys/pack][d][pack] for group broadcasts. */
    int pack, kt_pack, pack_rows;
    /* Direct packed decode (head dims a multiple of the lanes, V not inside K): the S and
     * PV micro-kernels read K and V rows as they are (K in place, or with RoPE the rows
     * stage_k rotated; V staged as fp32), with the head dim in lanes (dot products reduced
     * across lanes into the packed layout), so nothing is interleaved. The pack lanes of a
     * row share one running max, so O stays one row per head: O[r][d] at off_on, Q rows at
     * off_qn. Its S tiles take half the narrow tile's key groups: with RoPE that kept the
     * module's JIT time within 1.05-1.09x of the interleaved path's, which it beats by
     * 1.2x at run time (half the groups cost nothing measurable without RoPE). */
    bool direct;
    /* The spec's phase picks the paths a module holds (as the CUDA plan does): a prefill
     * kernel has only wide panels (no packed decode path, and no narrow panels: the last
     * panel of an item overhangs its rows into the padding), and a decode kernel with
     * packing has no wide panels (only multi-position launches use panels there, a few
     * rows each, so narrow ones). Leaving out the packed path takes 20-50 % off the
     * compile time, the narrow panels 16-35 %; their price is a prefill kernel's launches
     * with at most one vector of rows per item (seq_q x g <= lanes), which compute a whole
     * wide panel (1.6x their time), and up to 2 vectors of padding per item's last panel. */
    bool wide;
    /* Prefill modules stage Q and write the output rows W rows at a time, transposing
     * W x W blocks in registers (2-6 % off a seq 512-1024 prefill, 2-23 % on its
     * compile time); decode modules, whose items hold a few rows, keep the row loops. */
    bool vec_rows;
    int G2;
    int64_t off_qn, off_on;
    LLVMValueRef f_malloc, f_free;
} kgen;

/* ---------------------------------------------------------------- small builders */

#define BLD (g->c.b)
static LLVMValueRef I(kgen *g, int64_t v) { return cg_i64(&g->c, v); }
static LLVMValueRef add(kgen *g, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildAdd(BLD, a, b, ""); }
static LLVMValueRef sub(kgen *g, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildSub(BLD, a, b, ""); }
static LLVMValueRef mul(kgen *g, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildMul(BLD, a, b, ""); }
static LLVMValueRef sdiv(kgen *g, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildSDiv(BLD, a, b, ""); }
static LLVMValueRef srem(kgen *g, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildSRem(BLD, a, b, ""); }
static LLVMValueRef icmp(kgen *g, LLVMIntPredicate p, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildICmp(BLD, p, a, b, ""); }
static LLVMValueRef sel(kgen *g, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildSelect(BLD, c, a, b, ""); }
static LLVMValueRef imin(kgen *g, LLVMValueRef a, LLVMValueRef b) { return cg_smin(&g->c, a, b); }
static LLVMValueRef imax(kgen *g, LLVMValueRef a, LLVMValueRef b) { return cg_smax(&g->c, a, b); }
static LLVMValueRef vfadd(kgen *g, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFAdd(BLD, a, b, ""); }
static LLVMValueRef vfsub(kgen *g, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(BLD, a, b, ""); }
static LLVMValueRef vfmul(kgen *g, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFMul(BLD, a, b, ""); }
/* ceil(a / b) for a >= 0, b > 0. */
static LLVMValueRef cdiv(kgen *g, LLVMValueRef a, LLVMValueRef b) { return sdiv(g, add(g, a, sub(g, b, I(g, 1))), b); }
static LLVMValueRef fptr(kgen *g, LLVMValueRef base, LLVMValueRef idx) { return cg_gep(&g->c, g->c.t_f32, base, idx); }
static LLVMValueRef ldf(kgen *g, LLVMValueRef p) { return cg_load(&g->c, g->c.t_f32, p, 4); }
static void stf(kgen *g, LLVMValueRef v, LLVMValueRef p) { cg_store(&g->c, v, p, 4); }
static LLVMValueRef ldv(kgen *g, LLVMValueRef p) { return cg_vload(&g->c, p); }
static void stv(kgen *g, LLVMValueRef v, LLVMValueRef p) { cg_vstore(&g->c, v, p); }
static LLVMValueRef ld64(kgen *g, LLVMValueRef base, int idx) {
    return cg_load(&g->c, g->c.t_i64, cg_gep(&g->c, g->c.t_i64, base, I(g, idx)), 8);
}
static void st64(kgen *g, LLVMValueRef v, LLVMValueRef base, int idx) {
    cg_store(&g->c, v, cg_gep(&g->c, g->c.t_i64, base, I(g, idx)), 8);
}
static LLVMValueRef param(kgen *g, int i) { return LLVMGetParam(g->c.fn, (unsigned)i); }

static void begin_fn(kgen *g, LLVMValueRef fn) {
    g->c.fn = fn;
    LLVMPositionBuilderAtEnd(BLD, LLVMAppendBasicBlockInContext(g->c.ctx, fn, "entry"));
}

/* Functions run once per launch or per item do not need optimising: optnone keeps
 * them out of the O3 pipeline and gives them fast instruction selection, so compile
 * time goes to the code that runs per key block. */
static void cold_fn(kgen *g, LLVMValueRef fn) {
    cg_fn_attr(&g->c, fn, "noinline");
    cg_fn_attr(&g->c, fn, "optnone");
}

/* Per key block, but not the inner loops: optimised for size. */
static void warm_fn(kgen *g, LLVMValueRef fn) {
    cg_fn_attr(&g->c, fn, "noinline");
    cg_fn_attr(&g->c, fn, "optsize");
}

static LLVMValueRef entry_alloca(kgen *g, LLVMTypeRef t, int n) {
    /* Allocas only in the entry block, so the stack does not grow in loops. */
    LLVMBasicBlockRef cur = LLVMGetInsertBlock(BLD);
    LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(g->c.fn);
    LLVMValueRef first = LLVMGetFirstInstruction(entry);
    if (first) LLVMPositionBuilderBefore(BLD, first);
    else LLVMPositionBuilderAtEnd(BLD, entry);
    LLVMValueRef a = LLVMBuildArrayAlloca(BLD, t, I(g, n), "");
    LLVMSetAlignment(a, 16);
    LLVMPositionBuilderAtEnd(BLD, cur);
    return a;
}

/* ---------------------------------------------------------------- arguments */

static LLVMValueRef afield(kgen *g, LLVMValueRef A, int idx, LLVMTypeRef t) {
    LLVMValueRef p = LLVMBuildStructGEP2(BLD, g->t_args, A, (unsigned)idx, "");
    return cg_load(&g->c, t, p, 8);
}

static LLVMValueRef slot_data(kgen *g, LLVMValueRef A, int s) {
    LLVMValueRef idx[3] = { I(g, 0), cg_i32(&g->c, 8), cg_i32(&g->c, s) };
    LLVMValueRef slot = LLVMBuildInBoundsGEP2(BLD, g->t_args, A, idx, 3, "");
    LLVMValueRef p = LLVMBuildStructGEP2(BLD, g->t_slot, slot, 0, "");
    return cg_load(&g->c, g->c.t_pi8, p, 8);
}

static LLVMValueRef slot_raw_stride(kgen *g, LLVMValueRef A, int s, int d) {
    LLVMValueRef idx[5] = { I(g, 0), cg_i32(&g->c, 8), cg_i32(&g->c, s), cg_i32(&g->c, 1), cg_i32(&g->c, d) };
    return cg_load(&g->c, g->c.t_i64, LLVMBuildInBoundsGEP2(BLD, g->t_args, A, idx, 5, ""), 8);
}

/* Resolved strides S[slot*4 + d]. */
static LLVMValueRef stride(kgen *g, LLVMValueRef S, int s, int d) { return ld64(g, S, s * 4 + d); }

/* ---------------------------------------------------------------- element access */

static LLVMValueRef load_elem(kgen *g, LLVMValueRef base_i8, LLVMValueRef idx) {
    cg *c = &g->c;
    switch (g->k->dtype) {
    case IR_BF16: {
        LLVMValueRef p = cg_gep(c, c->t_i16, cg_bitcast_ptr(c, base_i8, c->t_pi16), idx);
        LLVMValueRef v = LLVMBuildZExt(BLD, cg_load(c, c->t_i16, p, 2), c->t_i32, "");
        return LLVMBuildBitCast(BLD, LLVMBuildShl(BLD, v, cg_i32(c, 16), ""), c->t_f32, "");
    }
    case IR_F16: {
        LLVMValueRef p = cg_gep(c, c->t_f16, cg_bitcast_ptr(c, base_i8, LLVMPointerType(c->t_f16, 0)), idx);
        return LLVMBuildFPExt(BLD, cg_load(c, c->t_f16, p, 2), c->t_f32, "");
    }
    default:
        return ldf(g, fptr(g, cg_bitcast_ptr(c, base_i8, c->t_pf32), idx));
    }
}

/* Stores v (a float, or W lanes for W consecutive elements) at element idx. */
static void store_elem(kgen *g, LLVMValueRef v, LLVMValueRef base_i8, LLVMValueRef idx) {
    cg *c = &g->c;
    bool vec = cg_is_vec(v);
    LLVMTypeRef i32 = vec ? c->t_vi32 : c->t_i32;
    LLVMTypeRef i16 = vec ? LLVMVectorType(c->t_i16, (unsigned)g->W) : c->t_i16;
    LLVMTypeRef f16 = vec ? LLVMVectorType(c->t_f16, (unsigned)g->W) : c->t_f16;
    switch (g->k->dtype) {
    case IR_BF16: {
        /* Round to nearest even; NaN stays a (quiet) NaN. */
        LLVMValueRef bits = LLVMBuildBitCast(BLD, v, i32, "");
        LLVMValueRef k16 = cg_like(c, bits, cg_i32(c, 16));
        LLVMValueRef lsb = LLVMBuildAnd(BLD, LLVMBuildLShr(BLD, bits, k16, ""), cg_like(c, bits, cg_i32(c, 1)), "");
        LLVMValueRef r = LLVMBuildAdd(BLD, LLVMBuildAdd(BLD, bits, cg_like(c, bits, cg_i32(c, 0x7fff)), ""), lsb, "");
        LLVMValueRef h = LLVMBuildTrunc(BLD, LLVMBuildLShr(BLD, r, k16, ""), i16, "");
        LLVMValueRef nan = LLVMBuildFCmp(BLD, LLVMRealUNO, v, v, "");
        LLVMValueRef qnan = LLVMConstInt(c->t_i16, 0x7fc0, 0);
        h = LLVMBuildSelect(BLD, nan, cg_like(c, h, qnan), h, "");
        LLVMValueRef p = cg_gep(c, c->t_i16, cg_bitcast_ptr(c, base_i8, c->t_pi16), idx);
        cg_store(c, h, cg_bitcast_ptr(c, p, LLVMPointerType(i16, 0)), 2);
        break;
    }
    case IR_F16: {
        LLVMValueRef p = cg_gep(c, c->t_f16, cg_bitcast_ptr(c, base_i8, LLVMPointerType(c->t_f16, 0)), idx);
        cg_store(c, LLVMBuildFPTrunc(BLD, v, f16, ""), cg_bitcast_ptr(c, p, LLVMPointerType(f16, 0)), 2);
        break;
    }
    default:
        cg_store(c, v, cg_bitcast_ptr(c, fptr(g, cg_bitcast_ptr(c, base_i8, c->t_pf32), idx), LLVMPointerType(LLVMTypeOf(v), 0)), 4);
    }
}

/* ---------------------------------------------------------------- ABI */

void cpu_kernel_abi(const ir_kernel *k, cpu_abi *abi) {
    sig_tensor sig[SIG_MAX_TENSORS];
    int n = ir_signature(k, 1, 1, 1, sig);
    memset(abi, 0, sizeof *abi);
    abi->q = abi->k = abi->v = abi->positions = abi->first_input = abi->o = abi->lse = -1;
    abi->n_slots = n;
    for (int i = 0; i < n; i++) {
        abi->name[i] = sig[i].name;
        abi->optional[i] = sig[i].optional;
        const char *s = sig[i].name;
        if (!strcmp(s, "q")) abi->q = i;
        else if (!strcmp(s, "k")) abi->k = i;
        else if (!strcmp(s, "v")) abi->v = i;
        else if (!strcmp(s, "positions")) abi->positions = i;
        else if (!strcmp(s, "o")) abi->o = i;
        else if (!strcmp(s, "lse")) abi->lse = i;
        else if (abi->first_input < 0 && k->n_inputs > 0 && !strcmp(s, k->inputs[0].name)) abi->first_input = i;
    }
}

void cpu_symbol(const ir_kernel *k, const char *suffix, char *out, size_t outlen) {
    snprintf(out, outlen, "attnc_%s%s", k->name, suffix);
}

cpu_tiles cpu_tiles_for(const cpu_target *t) {
    cpu_tiles tl;
    tl.lanes = t->lanes;
    if (t->lanes >= 16) {
        /* 32 zmm: 6 keys x 4 vectors = 24 accumulators + 4 Q^T vectors, broadcasts folded
         * into the FMAs ({1to16}). */
        tl.s_keys_wide = 6; tl.s_vecs_wide = 4; tl.s_keys_narrow = 16;
        tl.pv_cols_wide = 6; tl.pv_cols_narrow = 24;
        tl.rows_target = 128;
    } else {
        /* 16 ymm: 4 keys x 3 vectors = 12 accumulators + 3 Q^T vectors + 1 broadcast. */
        tl.s_keys_wide = 4; tl.s_vecs_wide = 3; tl.s_keys_narrow = 8;
        tl.pv_cols_wide = 4; tl.pv_cols_narrow = 12;
        tl.rows_target = t->lanes * 12;
    }
    tl.block_keys = 96;   /* a multiple of every tile's key count */
    return tl;
}

/* ---------------------------------------------------------------- support check */

static bool uses_var(const ir_expr *e, ir_var v) { return e && ir_expr_uses_var(e, v); }

const char *cpu_kernel_unsupported(const ir_kernel *k, const cpu_target *t) {
    if (k->family == IR_RECURRENCE) return "recurrences are not yet supported on the cpu target";
    if (k->dtype == IR_F16 && t->x86 && !t->f16c)
        return "f16 tensors need F16C on the cpu target (this machine lacks it); use bf16 or f32";
    if (k->n_inputs > 16) return "more than 16 declared inputs are not supported on the cpu target";
    if (uses_var(k->mask, IR_VAR_SCORE) || uses_var(k->mask, IR_VAR_X) || uses_var(k->score_mod, IR_VAR_X))
        return "a mask may not read `score` (and `x` only exists in feature maps)";
    for (int i = 0; i < k->n_inputs; i++)
        for (int a = 0; a < k->inputs[i].n_axes; a++)
            if (k->inputs[i].axes[a] == IR_AXIS_K || k->inputs[i].axes[a] == IR_AXIS_V)
                return "inputs with k or v axes only exist in recurrences";
    const ir_rope *r = &k->rope;
    if (r->layout != IR_ROPE_NONE) {
        if (!r->planned || !r->inv_freq || r->n_pairs != (r->dim_hi - r->dim_lo) / 2)
            return "RoPE is not planned; run the IR pipeline (plan-rope) first";
        if (r->rerope_window > 0 && r->n_sections > 1)
            return "ReRoPE with multi-axis positions (sections) is not supported on the cpu target";
        if (r->n_sections > 4) return "more than 4 RoPE sections are not supported on the cpu target";
    }
    if (k->v_in_k && k->d_v > k->d_qk) return "V is a prefix of K but d_v > d_qk";
    if (k->heads_kv <= 0 || k->heads_q % k->heads_kv != 0 || k->d_qk <= 0 || k->d_v <= 0)
        return "inconsistent heads or dims";
    return NULL;
}

/* ---------------------------------------------------------------- layout */

static int64_t round_up(int64_t a, int64_t m) { return (a + m - 1) / m * m; }

static void layout(kgen *g) {
    const ir_kernel *k = g->k;
    g->tl = cpu_tiles_for(g->c.tgt);
    g->W = g->tl.lanes;
    g->RPw = g->tl.s_vecs_wide * g->W;
    g->HQ = k->heads_q;
    g->HKV = k->heads_kv;
    g->G = k->heads_q / k->heads_kv;
    g->dq = k->d_qk;
    g->dv = k->d_v;
    g->Bc = g->tl.block_keys;
    g->Br = (int)((g->tl.rows_target + g->G - 1) / g->G);
    if (g->Br < 1) g->Br = 1;
    g->R = g->Br * g->G;
    g->R_pad = (int)round_up(g->R, g->RPw);
    const ir_rope *r = &k->rope;
    g->rope = r->layout != IR_ROPE_NONE;
    g->P = g->rope ? r->n_pairs : 0;
    g->rerope = g->rope && r->rerope_window > 0;
    g->explicit_pos = g->rope && r->explicit_positions;
    g->n_axes = r->n_sections > 1 ? r->n_sections : 1;
    g->factored = g->rope && !g->explicit_pos && !g->rerope;
    g->dyn_ntk = g->rope && r->scaling == IR_SCALE_DYNAMIC_NTK;
    g->ntab = g->rerope ? 3 : 1;
    g->mask = k->mask;
    g->mask_false = false;
    if (g->mask && g->mask->op == IR_CONST) {
        g->mask_false = g->mask->value == 0;
        g->mask = NULL;
    }
    g->qscale = k->scale_value * (k->score_mod ? 1.0 : M_LOG2E);
    int g2 = 1;
    while (g2 < g->G) g2 *= 2;
    g->pack = (!g->rerope && k->phase == IR_DECODE && 2 * g2 <= g->W) ? g->W / g2 : 1;
    g->wide = g->pack == 1;
    g->vec_rows = g->W > 1 && k->phase != IR_DECODE;
    g->G2 = g2;
    g->direct = g->pack > 1 && !k->v_in_k && g->dq % g->W == 0 && g->dv % g->W == 0;
    g->kt_pack = g->direct ? g->tl.s_keys_narrow / 2 : g->tl.s_keys_narrow;
    /* Rows the packed buffers hold: whole tiles of kt_pack groups of pack keys. */
    /* Packed key sub-blocks: whole packed tiles, at least 32 keys. */
    g->Bd = g->kt_pack * g->pack * (int)((32 + g->kt_pack * g->pack - 1) / (g->kt_pack * g->pack));
    g->pack_rows = (int)round_up(round_up(g->Bc, g->pack) / g->pack, g->kt_pack) * g->pack;
    /* Per-thread scratch, in floats, each part 64-byte aligned. */
    int64_t o = 0;
#define PART(field, n) do { g->field = o; o += round_up((n), 16); } while (0)
    PART(off_sT, (int64_t)g->Bc * g->RPw);
    PART(off_kst, (int64_t)g->Bc * g->dq * g->HKV);
    PART(off_kst2, g->rerope ? (int64_t)g->Bc * g->dq * g->HKV : 0);
    PART(off_vst, k->v_in_k ? 0 : (int64_t)g->Bc * g->dv * g->HKV);
    PART(off_cs, 2 * g->P);
    PART(off_w, MAX_SPLITS);
    /* i64 tables: q_idx and head-in-group per row; for packed panels q_idx, row and key
     * parity per lane. */
    PART(off_rows, 2 * (2 * (int64_t)g->R_pad + 3 * g->W));
    PART(off_kp, g->pack > 1 && !g->direct ? (int64_t)g->pack_rows * g->dq * g->HKV : 0);
    PART(off_vp, g->pack > 1 && !g->direct ? (int64_t)g->pack_rows * g->dv * g->HKV : 0);
    g->off_heads = o;
    o = 0;
    PART(off_qT, (int64_t)g->dq * g->R_pad);
    PART(off_qT2, g->rerope ? (int64_t)g->dq * g->R_pad : 0);
    PART(off_oT, (int64_t)g->dv * g->R_pad);
    PART(off_m, g->R_pad);
    PART(off_l, g->R_pad);
    PART(off_alpha, g->R_pad);
    PART(off_qn, g->direct ? (int64_t)g->G2 * g->dq : 0);
    PART(off_on, g->direct ? (int64_t)g->G * g->dv : 0);
#undef PART
    g->head_floats = o;
    g->T_floats = g->off_heads + (int64_t)g->HKV * g->head_floats;
}

/* ---------------------------------------------------------------- plan */

/* void plan(const args *A, i64 *PL): every size the other functions derive from the
 * run-time lengths, computed the same way everywhere. */
static void emit_plan(kgen *g) {
    cg *c = &g->c;
    LLVMTypeRef ps[2] = { g->t_pargs, g->t_pi64 };
    g->f_plan = cg_function(c, "plan", c->t_void, ps, 2, false);
    cold_fn(g, g->f_plan);
    begin_fn(g, g->f_plan);
    LLVMValueRef A = param(g, 0), PL = param(g, 1);
    LLVMValueRef B = imax(g, afield(g, A, 0, c->t_i64), I(g, 0));
    LLVMValueRef SQ = imax(g, afield(g, A, 1, c->t_i64), I(g, 0));
    LLVMValueRef SK = imax(g, afield(g, A, 2, c->t_i64), I(g, 0));
    LLVMValueRef NT = LLVMBuildSExt(BLD, afield(g, A, 3, c->t_i32), c->t_i64, "");
    NT = imax(g, NT, I(g, 1));
    LLVMValueRef nq = cdiv(g, SQ, I(g, g->Br));
    LLVMValueRef nkb = cdiv(g, SK, I(g, g->Bc));
    LLVMValueRef base = mul(g, mul(g, B, I(g, g->HKV)), nq);
    /* One q-block (decode) on token-major K/V ([tokens][heads][d], the default): an item
     * takes every kv head of its key range, so K and V are read as the contiguous memory
     * they are instead of one row per page per head. When K's tokens are closer together
     * than its heads (head-major), each head is the contiguous stream: one per item. */
    LLVMValueRef ks_tok = slot_raw_stride(g, A, g->abi.k, 1), ks_head = slot_raw_stride(g, A, g->abi.k, 2);
    LLVMValueRef head_major = icmp(g, LLVMIntSLT, ks_tok, ks_head);
    LLVMValueRef HG = sel(g, LLVMBuildAnd(BLD, icmp(g, LLVMIntEQ, nq, I(g, 1)), LLVMBuildNot(BLD, head_major, ""), ""),
                          I(g, g->HKV), I(g, 1));
    LLVMValueRef units = sdiv(g, base, HG);
    /* Split keys only when there are too few items for the threads (decode): at least
     * four items per thread, chunks of at least four blocks. */
    LLVMValueRef want_items = mul(g, NT, I(g, 4));
    LLVMValueRef want = sel(g, icmp(g, LLVMIntSGE, units, want_items), I(g, 1), cdiv(g, want_items, imax(g, units, I(g, 1))));
    LLVMValueRef maxs = imin(g, imax(g, sdiv(g, nkb, I(g, 4)), I(g, 1)), I(g, MAX_SPLITS));
    LLVMValueRef ns0 = imax(g, imin(g, want, maxs), I(g, 1));
    LLVMValueRef has_keys = icmp(g, LLVMIntSGT, nkb, I(g, 0));
    LLVMValueRef chunk = sel(g, has_keys, cdiv(g, nkb, ns0), I(g, 1));
    LLVMValueRef nsplit = sel(g, has_keys, cdiv(g, nkb, chunk), I(g, 1));
    LLVMValueRef qshift = g->explicit_pos ? I(g, 0) : imax(g, sub(g, SQ, SK), I(g, 0));
    LLVMValueRef nhi = I(g, 0), rows = I(g, 0);
    int64_t row_floats = 0;
    if (g->factored) {
        nhi = cdiv(g, add(g, SK, qshift), I(g, g->Bc));
        rows = add(g, nhi, I(g, g->Bc));
        row_floats = 2 * g->P;
    } else if (g->rope) {
        rows = g->explicit_pos ? mul(g, B, SK) : add(g, SK, qshift);
        row_floats = 2 * g->P * g->ntab;
    }
    LLVMValueRef tbl_off = mul(g, NT, I(g, g->T_floats * 4));
    LLVMValueRef tbl_bytes = mul(g, cdiv(g, mul(g, rows, I(g, row_floats * 4)), I(g, 64)), I(g, 64));
    LLVMValueRef part_off = add(g, tbl_off, tbl_bytes);
    LLVMValueRef slot_bytes = I(g, (int64_t)(2 + g->dv) * g->R_pad * 4);
    LLVMValueRef part_bytes = sel(g, icmp(g, LLVMIntSGT, nsplit, I(g, 1)), mul(g, mul(g, base, nsplit), slot_bytes), I(g, 0));
    LLVMValueRef vals[PL_N];
    vals[PL_B] = B; vals[PL_SQ] = SQ; vals[PL_SK] = SK; vals[PL_NT] = NT; vals[PL_OFF] = sub(g, SK, SQ);
    vals[PL_NQ] = nq; vals[PL_NKB] = nkb; vals[PL_NSPLIT] = nsplit; vals[PL_CHUNK] = chunk; vals[PL_BASE] = base;
    vals[PL_ITEMS0] = rows;
    vals[PL_ITEMS1] = mul(g, units, nsplit);
    vals[PL_HG] = HG;
    vals[PL_ITEMS2] = sel(g, icmp(g, LLVMIntSGT, nsplit, I(g, 1)), base, I(g, 0));
    vals[PL_QSHIFT] = qshift; vals[PL_NHI] = nhi; vals[PL_TBLOFF] = tbl_off; vals[PL_PARTOFF] = part_off;
    vals[PL_WS] = add(g, part_off, part_bytes);
    for (int i = 0; i < PL_N; i++) st64(g, vals[i], PL, i);
    LLVMBuildRetVoid(BLD);
}

/* Shape of a slot's tensor as values (for contiguous strides). */
static int slot_shape(kgen *g, LLVMValueRef PL, int s, LLVMValueRef *dims) {
    const cpu_abi *a = &g->abi;
    LLVMValueRef B = ld64(g, PL, PL_B), SQ = ld64(g, PL, PL_SQ), SK = ld64(g, PL, PL_SK);
    if (s == a->q) { dims[0] = B; dims[1] = SQ; dims[2] = I(g, g->HQ); dims[3] = I(g, g->dq); return 4; }
    if (s == a->k) { dims[0] = B; dims[1] = SK; dims[2] = I(g, g->HKV); dims[3] = I(g, g->dq); return 4; }
    if (s == a->v) { dims[0] = B; dims[1] = SK; dims[2] = I(g, g->HKV); dims[3] = I(g, g->dv); return 4; }
    if (s == a->o) { dims[0] = B; dims[1] = SQ; dims[2] = I(g, g->HQ); dims[3] = I(g, g->dv); return 4; }
    if (s == a->lse) { dims[0] = B; dims[1] = SQ; dims[2] = I(g, g->HQ); return 3; }
    if (s == a->positions) { dims[0] = B; dims[1] = SK; dims[2] = I(g, g->n_axes); return 3; }
    const ir_input *in = &g->k->inputs[s - a->first_input];
    int n = 0;
    for (int i = 0; i < in->n_axes && n < 4; i++) {
        if (in->axes[i] == IR_AXIS_TOKEN) { dims[n++] = B; if (n < 4) dims[n++] = SK; }
        else dims[n++] = I(g, g->HQ);
    }
    return n;
}

/* void strides(const args *A, const i64 *PL, i64 *S): each slot's strides, with
 * all-zero strides replaced by the contiguous ones. */
static void emit_strides(kgen *g) {
    cg *c = &g->c;
    LLVMTypeRef ps[3] = { g->t_pargs, g->t_pi64, g->t_pi64 };
    g->f_strides = cg_function(c, "strides", c->t_void, ps, 3, false);
    cold_fn(g, g->f_strides);
    begin_fn(g, g->f_strides);
    LLVMValueRef A = param(g, 0), PL = param(g, 1), S = param(g, 2);
    for (int s = 0; s < g->abi.n_slots; s++) {
        LLVMValueRef dims[4] = { 0 };
        int n = slot_shape(g, PL, s, dims);
        LLVMValueRef contig[4], raw[4], any = I(g, 0);
        LLVMValueRef st = I(g, 1);
        for (int d = 3; d >= 0; d--) {
            if (d >= n) { contig[d] = I(g, 0); continue; }
            contig[d] = st;
            st = mul(g, st, dims[d]);
        }
        for (int d = 0; d < 4; d++) {
            raw[d] = slot_raw_stride(g, A, s, d);
            any = LLVMBuildOr(BLD, any, raw[d], "");
        }
        LLVMValueRef zero = icmp(g, LLVMIntEQ, any, I(g, 0));
        for (int d = 0; d < 4; d++) st64(g, sel(g, zero, contig[d], raw[d]), S, s * 4 + d);
    }
    LLVMBuildRetVoid(BLD);
}

/* ---------------------------------------------------------------- RoPE tables (phase 0) */

static LLVMValueRef call_f64(kgen *g, const char *intrinsic, LLVMValueRef x) { return cg_call_unary(&g->c, intrinsic, x); }

/* inv_freq[j] as a double: the launch's array if given, else the plan (dynamic NTK:
 * HF's base growth with seq_k, recomputed here so objects need no attnc at run time). */
static LLVMValueRef inv_freq_at(kgen *g, LLVMValueRef A, LLVMValueRef PL, LLVMValueRef j) {
    cg *c = &g->c;
    LLVMValueRef given = afield(g, A, 5, c->t_pf64);
    LLVMValueRef planned;
    if (g->dyn_ntk) {
        const ir_rope *r = &g->k->rope;
        double d = r->dim_hi - r->dim_lo;
        LLVMValueRef skd = LLVMBuildSIToFP(BLD, ld64(g, PL, PL_SK), c->t_f64, "");
        LLVMValueRef s = LLVMBuildFSub(BLD, LLVMBuildFMul(BLD, cg_f64(c, r->factor / r->original), skd, ""),
                                       cg_f64(c, r->factor - 1), "");
        LLVMTypeRef ft = c->t_f64;
        LLVMValueRef pa[2] = { s, cg_f64(c, d / (d - 2)) };
        LLVMValueRef grown = LLVMBuildFMul(BLD, cg_f64(c, r->base), cg_call_intrinsic(c, "llvm.pow", &ft, 1, pa, 2), "");
        LLVMValueRef base = sel(g, LLVMBuildFCmp(BLD, LLVMRealOGT, skd, cg_f64(c, r->original), ""), grown, cg_f64(c, r->base));
        LLVMValueRef ex = LLVMBuildFDiv(BLD, LLVMBuildSIToFP(BLD, mul(g, j, I(g, 2)), c->t_f64, ""), cg_f64(c, d), "");
        LLVMValueRef pb[2] = { base, ex };
        planned = LLVMBuildFDiv(BLD, cg_f64(c, 1.0), cg_call_intrinsic(c, "llvm.pow", &ft, 1, pb, 2), "");
    } else {
        LLVMValueRef idx[2] = { I(g, 0), j };
        LLVMValueRef p = LLVMBuildInBoundsGEP2(BLD, LLVMGlobalGetValueType(g->g_inv_freq), g->g_inv_freq, idx, 2, "");
        planned = cg_load(c, c->t_f64, p, 8);
    }
    LLVMValueRef have = LLVMBuildIsNotNull(BLD, given, "");
    LLVMValueRef safe = sel(g, have, given, LLVMConstNull(c->t_pf64));
    LLVMBasicBlockRef cur = LLVMGetInsertBlock(BLD);
    LLVMBasicBlockRef load_bb = cg_block(c, "given");
    LLVMBasicBlockRef join = cg_block(c, "freq");
    LLVMBuildCondBr(BLD, have, load_bb, join);
    LLVMPositionBuilderAtEnd(BLD, load_bb);
    LLVMValueRef gv = cg_load(c, c->t_f64, cg_gep(c, c->t_f64, safe, j), 8);
    LLVMBuildBr(BLD, join);
    LLVMPositionBuilderAtEnd(BLD, join);
    LLVMValueRef phi = LLVMBuildPhi(BLD, c->t_f64, "");
    LLVMValueRef vals[2] = { planned, gv };
    LLVMBasicBlockRef bbs[2] = { cur, load_bb };
    LLVMAddIncoming(phi, vals, bbs, 2);
    return phi;
}

static void store_cos_sin(kgen *g, LLVMValueRef row, LLVMValueRef j, LLVMValueRef ang) {
    cg *c = &g->c;
    LLVMValueRef cs = LLVMBuildFPTrunc(BLD, call_f64(g, "llvm.cos", ang), c->t_f32, "");
    LLVMValueRef sn = LLVMBuildFPTrunc(BLD, call_f64(g, "llvm.sin", ang), c->t_f32, "");
    stf(g, cs, fptr(g, row, j));
    stf(g, sn, fptr(g, row, add(g, j, I(g, g->P))));
}

/* void table_item(A, PL, S, i): one row of cos/sin. Factored (implicit positions): rows
 * [0, n_hi) hold angles of hi*Bc, rows [n_hi, n_hi + Bc) of lo, and position p gets
 * cos/sin of (p/Bc)*Bc + p%Bc by the addition theorem (two fp32 roundings, ~2e-7), so
 * the table is small even for long decodes. Full: one row per (batch, token) with the
 * explicit positions (x3 for ReRoPE: normal, query-leaky, key-leaky angles). */
static void emit_table(kgen *g) {
    cg *c = &g->c;
    LLVMTypeRef ps[4] = { g->t_pargs, g->t_pi64, g->t_pi64, c->t_i64 };
    g->f_table = cg_function(c, "table_item", c->t_void, ps, 4, false);
    cold_fn(g, g->f_table);
    begin_fn(g, g->f_table);
    if (!g->rope) { LLVMBuildRetVoid(BLD); return; }
    LLVMValueRef A = param(g, 0), PL = param(g, 1), S = param(g, 2), i = param(g, 3);
    LLVMValueRef ws = afield(g, A, 6, c->t_pi8);
    LLVMValueRef tbl = cg_bitcast_ptr(c, LLVMBuildInBoundsGEP2(BLD, c->t_i8, ws, (LLVMValueRef[]){ ld64(g, PL, PL_TBLOFF) }, 1, ""), c->t_pf32);
    const ir_rope *r = &g->k->rope;
    if (g->factored) {
        LLVMValueRef nhi = ld64(g, PL, PL_NHI);
        LLVMValueRef is_hi = icmp(g, LLVMIntSLT, i, nhi);
        LLVMValueRef pos = sel(g, is_hi, mul(g, i, I(g, g->Bc)), sub(g, i, nhi));
        LLVMValueRef posd = LLVMBuildSIToFP(BLD, pos, c->t_f64, "");
        LLVMValueRef row = fptr(g, tbl, mul(g, i, I(g, 2 * g->P)));
        cg_loop L;
        cg_loop_begin(c, &L, I(g, 0), I(g, g->P), I(g, 1), 0, NULL);
        store_cos_sin(g, row, L.iv, LLVMBuildFMul(BLD, posd, inv_freq_at(g, A, PL, L.iv), ""));
        cg_loop_end(c, &L, NULL);
        LLVMBuildRetVoid(BLD);
        return;
    }
    LLVMValueRef posd[4] = { NULL, NULL, NULL, NULL };
    if (g->explicit_pos) {
        LLVMValueRef SK = ld64(g, PL, PL_SK);
        LLVMValueRef b = sdiv(g, i, SK), t = srem(g, i, SK);
        LLVMValueRef pd = slot_data(g, A, g->abi.positions);
        for (int a = 0; a < g->n_axes; a++) {
            LLVMValueRef off = add(g, add(g, mul(g, b, stride(g, S, g->abi.positions, 0)),
                                          mul(g, t, stride(g, S, g->abi.positions, 1))),
                                   mul(g, I(g, a), stride(g, S, g->abi.positions, 2)));
            LLVMValueRef v = cg_load(c, c->t_i32, cg_gep(c, c->t_i32, cg_bitcast_ptr(c, pd, c->t_pi32), off), 4);
            posd[a] = LLVMBuildSIToFP(BLD, v, c->t_f64, "");
        }
    } else {
        posd[0] = LLVMBuildSIToFP(BLD, sub(g, i, ld64(g, PL, PL_QSHIFT)), c->t_f64, "");
        for (int a = 1; a < g->n_axes; a++) posd[a] = posd[0];
    }
    LLVMValueRef row = fptr(g, tbl, mul(g, i, I(g, 2 * g->P * g->ntab)));
    cg_loop L;
    cg_loop_begin(c, &L, I(g, 0), I(g, g->P), I(g, 1), 0, NULL);
    LLVMValueRef p = posd[0];
    if (g->n_axes > 1) {
        LLVMValueRef idx[2] = { I(g, 0), L.iv };
        LLVMValueRef ax = cg_load(c, c->t_i32, LLVMBuildInBoundsGEP2(BLD, LLVMGlobalGetValueType(g->g_pair_axis), g->g_pair_axis, idx, 2, ""), 4);
        for (int a = 1; a < g->n_axes; a++) p = sel(g, icmp(g, LLVMIntEQ, ax, cg_i32(c, a)), posd[a], p);
    }
    LLVMValueRef th = inv_freq_at(g, A, PL, L.iv);
    store_cos_sin(g, row, L.iv, LLVMBuildFMul(BLD, p, th, ""));
    if (g->rerope) {
        double w = r->rerope_window, leak = r->rerope_leak;
        LLVMValueRef qa, ka;
        if (leak > 0) {
            /* R(q angle) q . R(k angle) k depends on q angle - k angle = w + (t - i - w)/leak. */
            LLVMValueRef pl = LLVMBuildFDiv(BLD, p, cg_f64(c, leak), "");
            qa = LLVMBuildFAdd(BLD, pl, cg_f64(c, w - w / leak), "");
            ka = pl;
        } else {
            qa = cg_f64(c, w);
            ka = cg_f64(c, 0.0);
        }
        store_cos_sin(g, fptr(g, row, I(g, 2 * g->P)), L.iv, LLVMBuildFMul(BLD, qa, th, ""));
        store_cos_sin(g, fptr(g, row, I(g, 4 * g->P)), L.iv, LLVMBuildFMul(BLD, ka, th, ""));
    }
    cg_loop_end(c, &L, NULL);
    LLVMBuildRetVoid(BLD);
}

/* Pointer to [cos P][sin P] for sequence token `tok` (query rows: q_idx) and table tab,
 * combining the factored rows into cs_buf when needed. */
static LLVMValueRef row_cos_sin(kgen *g, LLVMValueRef A, LLVMValueRef PL, LLVMValueRef b, LLVMValueRef tok,
                                int tab, LLVMValueRef cs_buf) {
    cg *c = &g->c;
    LLVMValueRef ws = afield(g, A, 6, c->t_pi8);
    LLVMValueRef tbl = cg_bitcast_ptr(c, LLVMBuildInBoundsGEP2(BLD, c->t_i8, ws, (LLVMValueRef[]){ ld64(g, PL, PL_TBLOFF) }, 1, ""), c->t_pf32);
    if (!g->factored) {
        LLVMValueRef row = add(g, tok, ld64(g, PL, PL_QSHIFT));
        if (g->explicit_pos) row = add(g, mul(g, b, ld64(g, PL, PL_SK)), row);
        return fptr(g, tbl, add(g, mul(g, row, I(g, 2 * g->P * g->ntab)), I(g, 2 * g->P * tab)));
    }
    LLVMValueRef p = add(g, tok, ld64(g, PL, PL_QSHIFT));
    LLVMValueRef hi = sdiv(g, p, I(g, g->Bc)), lo = srem(g, p, I(g, g->Bc));
    LLVMValueRef rb = fptr(g, tbl, mul(g, hi, I(g, 2 * g->P)));
    LLVMValueRef ro = fptr(g, tbl, mul(g, add(g, ld64(g, PL, PL_NHI), lo), I(g, 2 * g->P)));
    /* cos(a+b), sin(a+b) from the two tables: whole vectors of pairs, then one by one. */
    int Pv = g->P / g->W * g->W;
    for (int vec = 1; vec >= 0; vec--) {
        int from = vec ? 0 : Pv, to = vec ? Pv : g->P;
        if (from == to) continue;
        LLVMValueRef (*ld)(kgen *, LLVMValueRef) = vec ? ldv : ldf;
        void (*st)(kgen *, LLVMValueRef, LLVMValueRef) = vec ? stv : stf;
        cg_loop L;
        cg_loop_begin(c, &L, I(g, from), I(g, to), I(g, vec ? g->W : 1), 0, NULL);
        LLVMValueRef jP = add(g, L.iv, I(g, g->P));
        LLVMValueRef cb = ld(g, fptr(g, rb, L.iv)), sb = ld(g, fptr(g, rb, jP));
        LLVMValueRef co = ld(g, fptr(g, ro, L.iv)), so = ld(g, fptr(g, ro, jP));
        st(g, cg_fma(c, cb, co, LLVMBuildFNeg(BLD, vfmul(g, sb, so), "")), fptr(g, cs_buf, L.iv));
        st(g, cg_fma(c, sb, co, vfmul(g, cb, so)), fptr(g, cs_buf, jP));
        cg_loop_end(c, &L, NULL);
    }
    return cs_buf;
}

/* Shuffle of a and b (lanes of b numbered from a's count on); m[i] < 0 is undef. */
static LLVMValueRef shuffle(kgen *g, LLVMValueRef a, LLVMValueRef b, const int *m, int n) {
    LLVMValueRef mask[64];
    for (int i = 0; i < n; i++) mask[i] = m[i] < 0 ? LLVMGetUndef(g->c.t_i32) : cg_i32(&g->c, m[i]);
    return LLVMBuildShuffleVector(BLD, a, b ? b : LLVMGetUndef(LLVMTypeOf(a)), LLVMConstVector(mask, (unsigned)n), "");
}

/* Rotates the pairs [0, n) of a dense row (element stride 1) a vector at a time, with
 * the operations of rotate_row's scalar form lane by lane (so bitwise the same). Half
 * layout: the x0 and x1 halves are contiguous. Interleaved: a vector holds W/2 pairs;
 * lane 2i computes fma(x0, cos, -(x1 sin)) and lane 2i+1 fma(x0, sin, x1 cos). */
static void rotate_dense(kgen *g, LLVMValueRef dst, LLVMValueRef cs, int n) {
    cg *c = &g->c;
    const ir_rope *r = &g->k->rope;
    int W = g->W, H = W / 2;
    if (r->layout == IR_ROPE_HALF) {
        cg_loop L;
        cg_loop_begin(c, &L, I(g, 0), I(g, n), I(g, W), 0, NULL);
        LLVMValueRef p0 = fptr(g, dst, add(g, L.iv, I(g, r->dim_lo))), p1 = fptr(g, p0, I(g, g->P));
        LLVMValueRef x0 = ldv(g, p0), x1 = ldv(g, p1);
        LLVMValueRef co = ldv(g, fptr(g, cs, L.iv)), sn = ldv(g, fptr(g, cs, add(g, L.iv, I(g, g->P))));
        stv(g, cg_fma(c, x0, co, LLVMBuildFNeg(BLD, vfmul(g, x1, sn), "")), p0);
        stv(g, cg_fma(c, x0, sn, vfmul(g, x1, co)), p1);
        cg_loop_end(c, &L, NULL);
        return;
    }
    int m_x0[64], m_x1[64], m_cs[64], m_sc[64];
    LLVMValueRef sign[64];
    for (int i = 0; i < W; i++) {
        m_x0[i] = i & ~1; m_x1[i] = i | 1;
        m_cs[i] = (i & 1 ? W : 0) + i / 2;    /* cos, sin, cos, sin ... of (cos | sin) */
        m_sc[i] = (i & 1 ? 0 : W) + i / 2;    /* sin, cos, sin, cos ... */
        sign[i] = cg_f32(c, i & 1 ? 1.0 : -1.0);
    }
    LLVMValueRef sgn = LLVMConstVector(sign, (unsigned)W);
    LLVMTypeRef th = LLVMVectorType(c->t_f32, (unsigned)H);
    cg_loop L;
    cg_loop_begin(c, &L, I(g, 0), I(g, n), I(g, H), 0, NULL);
    LLVMValueRef p = fptr(g, dst, add(g, mul(g, L.iv, I(g, 2)), I(g, r->dim_lo)));
    LLVMValueRef v = ldv(g, p);
    int widen[64];
    for (int i = 0; i < W; i++) widen[i] = i < H ? i : -1;
    LLVMValueRef co = cg_load(c, th, cg_bitcast_ptr(c, fptr(g, cs, L.iv), LLVMPointerType(th, 0)), 4);
    LLVMValueRef sn = cg_load(c, th, cg_bitcast_ptr(c, fptr(g, cs, add(g, L.iv, I(g, g->P))), LLVMPointerType(th, 0)), 4);
    co = shuffle(g, co, NULL, widen, W);
    sn = shuffle(g, sn, NULL, widen, W);
    LLVMValueRef a = shuffle(g, v, NULL, m_x0, W), x1 = shuffle(g, v, NULL, m_x1, W);
    LLVMValueRef bsel = shuffle(g, co, sn, m_cs, W), dsel = shuffle(g, co, sn, m_sc, W);
    stv(g, cg_fma(c, a, bsel, vfmul(g, vfmul(g, x1, dsel), sgn)), p);
    cg_loop_end(c, &L, NULL);
}

/* Rotates the pairs of a row stored with element stride st (floats); a dense row
 * (st the constant 1) takes whole vectors of pairs first. */
static void rotate_row(kgen *g, LLVMValueRef dst, LLVMValueRef st, LLVMValueRef cs) {
    cg *c = &g->c;
    const ir_rope *r = &g->k->rope;
    bool half = r->layout == IR_ROPE_HALF;
    int step = half ? g->W : g->W / 2, from = 0;
    if (step >= 1 && LLVMIsAConstantInt(st) && LLVMConstIntGetSExtValue(st) == 1 && g->P >= step) {
        from = g->P / step * step;
        rotate_dense(g, dst, cs, from);
    }
    if (from == g->P) return;
    cg_loop L;
    cg_loop_begin(c, &L, I(g, from), I(g, g->P), I(g, 1), 0, NULL);
    LLVMValueRef j = L.iv;
    LLVMValueRef d0 = half ? add(g, j, I(g, r->dim_lo)) : add(g, mul(g, j, I(g, 2)), I(g, r->dim_lo));
    LLVMValueRef d1 = half ? add(g, d0, I(g, g->P)) : add(g, d0, I(g, 1));
    LLVMValueRef p0 = fptr(g, dst, mul(g, d0, st)), p1 = fptr(g, dst, mul(g, d1, st));
    LLVMValueRef x0 = ldf(g, p0), x1 = ldf(g, p1);
    LLVMValueRef co = ldf(g, fptr(g, cs, j)), sn = ldf(g, fptr(g, cs, add(g, j, I(g, g->P))));
    stf(g, cg_fma(c, x0, co, LLVMBuildFNeg(BLD, vfmul(g, x1, sn), "")), p0);
    stf(g, cg_fma(c, x0, sn, vfmul(g, x1, co)), p1);
    cg_loop_end(c, &L, NULL);
}

/* ---------------------------------------------------------------- staging */

/* W consecutive elements of a tensor from element index idx, as fp32 lanes. */
static LLVMValueRef load_vec(kgen *g, LLVMValueRef data, LLVMValueRef idx) {
    cg *c = &g->c;
    if (g->k->dtype == IR_F32) return cg_vload(c, fptr(g, cg_bitcast_ptr(c, data, c->t_pf32), idx));
    LLVMTypeRef et = g->k->dtype == IR_BF16 ? c->t_i16 : c->t_f16;
    LLVMTypeRef vt = LLVMVectorType(et, (unsigned)g->W);
    LLVMValueRef p = cg_gep(c, et, cg_bitcast_ptr(c, data, LLVMPointerType(et, 0)), idx);
    LLVMValueRef v = cg_load(c, vt, LLVMBuildBitCast(BLD, p, LLVMPointerType(vt, 0), ""), 2);
    if (g->k->dtype == IR_BF16)
        return LLVMBuildBitCast(BLD, LLVMBuildShl(BLD, LLVMBuildZExt(BLD, v, c->t_vi32, ""), cg_splat(c, cg_i32(c, 16)), ""),
                                c->t_vf, "");
    return LLVMBuildFPExt(BLD, v, c->t_vf, "");
}

/* Prefetches (into L2) the n_elems elements s3 apart from element offset `off` of a
 * tensor (a row), one request per 64-byte line of a dense row; prefetches never fault,
 * so no bounds check. */
static void prefetch_row(kgen *g, LLVMValueRef data, LLVMValueRef off, LLVMValueRef s3, int n_elems) {
    cg *c = &g->c;
    int es = g->k->dtype == IR_F32 ? 4 : 2;
    int per_line = 64 / es;
    LLVMValueRef p = LLVMBuildGEP2(BLD, c->t_i8, data, (LLVMValueRef[]){ mul(g, off, I(g, es)) }, 1, "");
    for (int e = 0; e < n_elems; e += per_line) {
        LLVMValueRef at = LLVMBuildGEP2(BLD, c->t_i8, p, (LLVMValueRef[]){ mul(g, mul(g, I(g, e), s3), I(g, es)) }, 1, "");
        LLVMValueRef args[4] = { at, cg_i32(c, 0), cg_i32(c, 2), cg_i32(c, 1) };
        LLVMTypeRef pt = c->t_pi8;
        cg_call_intrinsic(c, "llvm.prefetch", &pt, 1, args, 4);
    }
}

/* Element offset of row r (position pos0 + r / G, query head h G + r % G) of Q. */
static LLVMValueRef q_row(kgen *g, LLVMValueRef S, LLVMValueRef b, LLVMValueRef h, LLVMValueRef pos0, LLVMValueRef r) {
    int sq = g->abi.q;
    LLVMValueRef pos = add(g, pos0, sdiv(g, r, I(g, g->G)));
    LLVMValueRef head = add(g, mul(g, h, I(g, g->G)), srem(g, r, I(g, g->G)));
    return add(g, add(g, mul(g, b, stride(g, S, sq, 0)), mul(g, pos, stride(g, S, sq, 1))), mul(g, head, stride(g, S, sq, 2)));
}

/* void stage_q(A, PL, S, ts, hs, b, h, pos0, npos): Q^T[d][r] = q * qscale (RoPE applied)
 * for the item's rows of kv head h into its state block hs, zeros for the padding rows
 * that panels touch. */
static void emit_stage_q(kgen *g) {
    cg *c = &g->c;
    LLVMTypeRef ps[9] = { g->t_pargs, g->t_pi64, g->t_pi64, c->t_pf32, c->t_pf32, c->t_i64, c->t_i64, c->t_i64, c->t_i64 };
    g->f_stage_q = cg_function(c, "stage_q", c->t_void, ps, 9, false);
    cold_fn(g, g->f_stage_q);
    begin_fn(g, g->f_stage_q);
    LLVMValueRef A = param(g, 0), PL = param(g, 1), S = param(g, 2), ts = param(g, 3), hs = param(g, 4);
    LLVMValueRef b = param(g, 5), h = param(g, 6), pos0 = param(g, 7), npos = param(g, 8);
    LLVMValueRef qT = fptr(g, hs, I(g, g->off_qT)), qT2 = fptr(g, hs, I(g, g->off_qT2));
    LLVMValueRef cs_buf = fptr(g, ts, I(g, g->off_cs));
    LLVMValueRef Rv = mul(g, npos, I(g, g->G));
    LLVMValueRef q = slot_data(g, A, g->abi.q);
    int sq = g->abi.q;
    LLVMValueRef Rp = I(g, g->R_pad);
    LLVMValueRef s3 = stride(g, S, sq, 3);
    LLVMValueRef qscale = cg_f32(c, g->qscale);
    LLVMValueRef r_scalar = I(g, 0);
    int W = g->W;
    if (g->vec_rows && g->dq % W == 0 && !g->rerope) {
        /* Whole groups of W rows of dense Q: W x W blocks transposed in registers, a
         * vector stored per column of Q^T (element by element this took 3-5 % of a seq
         * 512-1024 prefill); the next group's rows are fetched meanwhile. */
        r_scalar = sel(g, icmp(g, LLVMIntEQ, s3, I(g, 1)), mul(g, sdiv(g, Rv, I(g, W)), I(g, W)), I(g, 0));
        LLVMValueRef qb = entry_alloca(g, c->t_i64, W);
        cg_loop RB;
        cg_loop_begin(c, &RB, I(g, 0), r_scalar, I(g, W), 0, NULL);
        /* Row offsets (a rolled loop: this function is not optimised, and W unrolled
         * copies of the row arithmetic cost more to compile than they save). */
        cg_loop J;
        cg_loop_begin(c, &J, I(g, 0), I(g, W), I(g, 1), 0, NULL);
        LLVMValueRef r = add(g, RB.iv, J.iv);
        cg_store(c, q_row(g, S, b, h, pos0, r), cg_gep(c, c->t_i64, qb, J.iv), 8);
        prefetch_row(g, q, q_row(g, S, b, h, pos0, add(g, r, I(g, W))), s3, g->dq);
        cg_loop_end(c, &J, NULL);
        cg_loop D;
        cg_loop_begin(c, &D, I(g, 0), I(g, g->dq), I(g, W), 0, NULL);
        LLVMValueRef v[64];
        for (int j = 0; j < W; j++)
            v[j] = vfmul(g, load_vec(g, q, add(g, ld64(g, qb, j), D.iv)), cg_splat(c, qscale));
        cg_transpose(c, v);
        for (int i = 0; i < W; i++) stv(g, v[i], fptr(g, qT, add(g, mul(g, add(g, D.iv, I(g, i)), Rp), RB.iv)));
        cg_loop_end(c, &D, NULL);
        cg_loop_end(c, &RB, NULL);
    }
    cg_loop L;
    cg_loop_begin(c, &L, r_scalar, Rv, I(g, 1), 0, NULL);
    {
        LLVMValueRef r = L.iv;
        LLVMValueRef col = fptr(g, qT, r), col2 = fptr(g, qT2, r);
        /* Q rows are usually a page apart (one head of [tokens][heads][d]), out of the
         * hardware prefetchers' reach: fetch the row AHEAD rows on while this one is
         * transposed (past the last row the address is unused; prefetches never fault). */
        enum { AHEAD = 4 };
        LLVMValueRef base = q_row(g, S, b, h, pos0, r);
        prefetch_row(g, q, q_row(g, S, b, h, pos0, add(g, r, I(g, AHEAD))), s3, g->dq);
        LLVMValueRef pos = add(g, pos0, sdiv(g, r, I(g, g->G)));
        cg_loop D;
        cg_loop_begin(c, &D, I(g, 0), I(g, g->dq), I(g, 1), 0, NULL);
        LLVMValueRef x = vfmul(g, load_elem(g, q, add(g, base, mul(g, D.iv, s3))), qscale);
        stf(g, x, fptr(g, col, mul(g, D.iv, Rp)));
        if (g->rerope) stf(g, x, fptr(g, col2, mul(g, D.iv, Rp)));
        cg_loop_end(c, &D, NULL);
        if (g->rerope) {
            LLVMValueRef tok = add(g, pos, ld64(g, PL, PL_OFF));
            rotate_row(g, col, Rp, row_cos_sin(g, A, PL, b, tok, 0, cs_buf));
            rotate_row(g, col2, Rp, row_cos_sin(g, A, PL, b, tok, 1, cs_buf));
        }
    }
    cg_loop_end(c, &L, NULL);
    if (g->rope && !g->rerope) {
        /* RoPE on the staged columns, every row. */
        cg_loop RR;
        cg_loop_begin(c, &RR, I(g, 0), Rv, I(g, 1), 0, NULL);
        LLVMValueRef tok = add(g, add(g, pos0, sdiv(g, RR.iv, I(g, g->G))), ld64(g, PL, PL_OFF));
        rotate_row(g, fptr(g, qT, RR.iv), Rp, row_cos_sin(g, A, PL, b, tok, 0, cs_buf));
        cg_loop_end(c, &RR, NULL);
    }
    /* Padding rows: zeros, so their lanes compute finite values that are never stored. */
    LLVMValueRef Rused = imin(g, I(g, g->R_pad), mul(g, cdiv(g, Rv, I(g, g->RPw)), I(g, g->RPw)));
    cg_loop Z;
    cg_loop_begin(c, &Z, Rv, Rused, I(g, 1), 0, NULL);
    {
        cg_loop D;
        cg_loop_begin(c, &D, I(g, 0), I(g, g->dq), I(g, 1), 0, NULL);
        LLVMValueRef at = add(g, mul(g, D.iv, Rp), Z.iv);
        stf(g, cg_f32(c, 0.0), fptr(g, qT, at));
        if (g->rerope) stf(g, cg_f32(c, 0.0), fptr(g, qT2, at));
        cg_loop_end(c, &D, NULL);
    }
    cg_loop_end(c, &Z, NULL);
    LLVMBuildRetVoid(BLD);
}

/* dst[0..n) = src[base + d*s3] as fp32: whole vectors when s3 == 1 (the usual dense
 * row), element by element otherwise. */
static void convert_row(kgen *g, LLVMValueRef src, LLVMValueRef base, LLVMValueRef s3, LLVMValueRef dst, int n) {
    cg *c = &g->c;
    int W = g->W, main_end = n / W * W;
    LLVMBasicBlockRef vec_bb = cg_block(c, "dense"), sc_bb = cg_block(c, "strided"), join = cg_block(c, "converted");
    LLVMBuildCondBr(BLD, icmp(g, LLVMIntEQ, s3, I(g, 1)), vec_bb, sc_bb);
    LLVMPositionBuilderAtEnd(BLD, vec_bb);
    if (main_end > 0) {
        cg_loop L;
        cg_loop_begin(c, &L, I(g, 0), I(g, main_end), I(g, W), 0, NULL);
        cg_vstore(c, load_vec(g, src, add(g, base, L.iv)), fptr(g, dst, L.iv));
        cg_loop_end(c, &L, NULL);
    }
    if (n > main_end) {
        cg_loop T;
        cg_loop_begin(c, &T, I(g, main_end), I(g, n), I(g, 1), 0, NULL);
        stf(g, load_elem(g, src, add(g, base, T.iv)), fptr(g, dst, T.iv));
        cg_loop_end(c, &T, NULL);
    }
    LLVMBuildBr(BLD, join);
    LLVMPositionBuilderAtEnd(BLD, sc_bb);
    cg_loop S;
    cg_loop_begin(c, &S, I(g, 0), I(g, n), I(g, 1), 0, NULL);
    stf(g, load_elem(g, src, add(g, base, mul(g, S.iv, s3))), fptr(g, dst, S.iv));
    cg_loop_end(c, &S, NULL);
    LLVMBuildBr(BLD, join);
    LLVMPositionBuilderAtEnd(BLD, join);
}

/* void stage_k(A, PL, S, ts, b, h_lo, h_hi, k0, nk): K rows of the block for kv heads
 * [h_lo, h_hi) as fp32 [head][Bc][d_qk], rotated (ReRoPE: a second copy with the
 * key-leaky angles). Token-outer, so with several heads each token's [heads][d] row is
 * read as one contiguous run; with one head the next block is prefetched (its rows
 * are a page apart, too far for the hardware prefetcher). */
static void emit_stage_k(kgen *g) {
    cg *c = &g->c;
    LLVMTypeRef ps[9] = { g->t_pargs, g->t_pi64, g->t_pi64, c->t_pf32, c->t_i64, c->t_i64, c->t_i64, c->t_i64, c->t_i64 };
    g->f_stage_k = cg_function(c, "stage_k", c->t_void, ps, 9, false);
    warm_fn(g, g->f_stage_k);
    begin_fn(g, g->f_stage_k);
    LLVMValueRef A = param(g, 0), PL = param(g, 1), S = param(g, 2), ts = param(g, 3);
    LLVMValueRef b = param(g, 4), h_lo = param(g, 5), h_hi = param(g, 6), k0 = param(g, 7), nk = param(g, 8);
    LLVMValueRef kst = fptr(g, ts, I(g, g->off_kst)), kst2 = fptr(g, ts, I(g, g->off_kst2));
    LLVMValueRef cs_buf = fptr(g, ts, I(g, g->off_cs));
    int sk = g->abi.k;
    LLVMValueRef kd = slot_data(g, A, sk);
    LLVMValueRef s3 = stride(g, S, sk, 3);
    LLVMValueRef one_head = icmp(g, LLVMIntEQ, sub(g, h_hi, h_lo), I(g, 1));
    int64_t head_floats = (int64_t)g->Bc * g->dq;
    cg_loop L;
    cg_loop_begin(c, &L, I(g, 0), nk, I(g, 1), 0, NULL);
    LLVMValueRef tok = add(g, k0, L.iv);
    LLVMValueRef tbase = add(g, mul(g, b, stride(g, S, sk, 0)), mul(g, tok, stride(g, S, sk, 1)));
    LLVMBasicBlockRef jp = cg_if_begin(c, one_head);
    prefetch_row(g, kd, add(g, add(g, tbase, mul(g, I(g, g->Bc), stride(g, S, sk, 1))), mul(g, h_lo, stride(g, S, sk, 2))),
                 s3, g->dq);
    cg_if_end(c, jp);
    for (int pass = 0; pass < (g->rerope ? 2 : 1); pass++) {
        LLVMValueRef dst = pass ? kst2 : kst;
        LLVMValueRef cs = g->rope ? row_cos_sin(g, A, PL, b, tok, pass ? 2 : 0, cs_buf) : NULL;
        cg_loop H;
        cg_loop_begin(c, &H, h_lo, h_hi, I(g, 1), 0, NULL);
        LLVMValueRef row = fptr(g, dst, add(g, mul(g, sub(g, H.iv, h_lo), I(g, head_floats)), mul(g, L.iv, I(g, g->dq))));
        convert_row(g, kd, add(g, tbase, mul(g, H.iv, stride(g, S, sk, 2))), s3, row, g->dq);
        if (g->rope) rotate_row(g, row, I(g, 1), cs);
        cg_loop_end(c, &H, NULL);
    }
    cg_loop_end(c, &L, NULL);
    /* Rows up to the next multiple of 16 keys: zeros for the tiles that overhang nk. */
    LLVMValueRef tail_end = imin(g, I(g, g->Bc), mul(g, cdiv(g, nk, I(g, 16)), I(g, 16)));
    cg_loop H;
    cg_loop_begin(c, &H, I(g, 0), sub(g, h_hi, h_lo), I(g, 1), 0, NULL);
    LLVMValueRef hb = mul(g, H.iv, I(g, head_floats));
    cg_loop Z;
    cg_loop_begin(c, &Z, add(g, hb, mul(g, nk, I(g, g->dq))), add(g, hb, mul(g, tail_end, I(g, g->dq))), I(g, 1), 0, NULL);
    stf(g, cg_f32(c, 0.0), fptr(g, kst, Z.iv));
    if (g->rerope) stf(g, cg_f32(c, 0.0), fptr(g, kst2, Z.iv));
    cg_loop_end(c, &Z, NULL);
    cg_loop_end(c, &H, NULL);
    LLVMBuildRetVoid(BLD);
}

/* void stage_v(A, PL, S, ts, b, h_lo, h_hi, k0, nk): V rows as fp32 [head][Bc][d_v],
 * read like stage_k. */
static void emit_stage_v(kgen *g) {
    cg *c = &g->c;
    LLVMTypeRef ps[9] = { g->t_pargs, g->t_pi64, g->t_pi64, c->t_pf32, c->t_i64, c->t_i64, c->t_i64, c->t_i64, c->t_i64 };
    g->f_stage_v = cg_function(c, "stage_v", c->t_void, ps, 9, false);
    warm_fn(g, g->f_stage_v);
    begin_fn(g, g->f_stage_v);
    if (g->k->v_in_k) { LLVMBuildRetVoid(BLD); return; }
    LLVMValueRef A = param(g, 0), S = param(g, 2), ts = param(g, 3);
    LLVMValueRef b = param(g, 4), h_lo = param(g, 5), h_hi = param(g, 6), k0 = param(g, 7), nk = param(g, 8);
    LLVMValueRef vst = fptr(g, ts, I(g, g->off_vst));
    int sv = g->abi.v;
    LLVMValueRef vd = slot_data(g, A, sv);
    LLVMValueRef s3 = stride(g, S, sv, 3);
    LLVMValueRef one_head = icmp(g, LLVMIntEQ, sub(g, h_hi, h_lo), I(g, 1));
    cg_loop L;
    cg_loop_begin(c, &L, I(g, 0), nk, I(g, 1), 0, NULL);
    LLVMValueRef tbase = add(g, mul(g, b, stride(g, S, sv, 0)), mul(g, add(g, k0, L.iv), stride(g, S, sv, 1)));
    LLVMBasicBlockRef jp = cg_if_begin(c, one_head);
    prefetch_row(g, vd, add(g, add(g, tbase, mul(g, I(g, g->Bc), stride(g, S, sv, 1))), mul(g, h_lo, stride(g, S, sv, 2))),
                 s3, g->dv);
    cg_if_end(c, jp);
    cg_loop H;
    cg_loop_begin(c, &H, h_lo, h_hi, I(g, 1), 0, NULL);
    LLVMValueRef row = fptr(g, vst, add(g, mul(g, sub(g, H.iv, h_lo), I(g, (int64_t)g->Bc * g->dv)), mul(g, L.iv, I(g, g->dv))));
    convert_row(g, vd, add(g, tbase, mul(g, H.iv, stride(g, S, sv, 2))), s3, row, g->dv);
    if (g->direct && !g->rope) {
        /* Direct decode reads K in place, one head at a time (rows a page apart): fetch
         * the block's K rows here, in memory order beside V's, so both streams are in
         * flight together and the S kernel finds K in L2. */
        int sk = g->abi.k;
        LLVMBasicBlockRef jk = cg_if_begin(c, LLVMBuildNot(BLD, one_head, ""));
        LLVMValueRef kb = add(g, mul(g, b, stride(g, S, sk, 0)), mul(g, add(g, k0, L.iv), stride(g, S, sk, 1)));
        prefetch_row(g, slot_data(g, A, sk), add(g, kb, mul(g, H.iv, stride(g, S, sk, 2))), stride(g, S, sk, 3), g->dq);
        cg_if_end(c, jk);
    }
    cg_loop_end(c, &H, NULL);
    cg_loop_end(c, &L, NULL);
    LLVMBuildRetVoid(BLD);
}

/* ---------------------------------------------------------------- S micro-kernel + softmax */

enum { SB_A, SB_PL, SB_S, SB_K, SB_KRS, SB_K2, SB_NK, SB_QT, SB_QT2, SB_ST, SB_M, SB_L, SB_ALPHA,
       SB_B, SB_H, SB_POS0, SB_R0, SB_K0, SB_PARTIAL, SB_ROWS, SB_N };

/* W lanes repeating the `pack` floats at p (a group broadcast: vbroadcastss / sd / f128). */
static LLVMValueRef group_broadcast(kgen *g, LLVMValueRef p, int pack) {
    cg *c = &g->c;
    if (pack == 1) return cg_splat(c, ldf(g, p));
    LLVMTypeRef gt = LLVMVectorType(c->t_f32, (unsigned)pack);
    LLVMValueRef v = cg_load(c, gt, LLVMBuildBitCast(BLD, p, LLVMPointerType(gt, 0), ""), 4);
    if (pack == g->W) return v;
    LLVMValueRef mask[64];
    for (int i = 0; i < g->W; i++) mask[i] = cg_i32(c, i % pack);
    return LLVMBuildShuffleVector(BLD, v, LLVMGetUndef(gt), LLVMConstVector(mask, (unsigned)g->W), "");
}

/* acc[kk][i] = sum_d K[row kk][d] * Q^T[d][i-th vector]: the K loop unrolled by 4 with the
 * KT x RV accumulators carried in phis. Packed: row kk is a group of `pack` keys stored
 * [d][pack]. */
static void s_tile_dot(kgen *g, int KT, int RV, int pack, LLVMValueRef *rows, LLVMValueRef qT, LLVMValueRef *acc) {
    cg *c = &g->c;
    enum { U = 4 };
    int main_end = g->dq / U * U;
    LLVMValueRef init[64];
    for (int i = 0; i < KT * RV; i++) init[i] = LLVMConstNull(c->t_vf);
    LLVMValueRef cur[64];
    memcpy(cur, init, sizeof(LLVMValueRef) * (size_t)(KT * RV));
    for (int pass = 0; pass < 2; pass++) {
        int lo = pass ? main_end : 0, hi = pass ? g->dq : main_end, step = pass ? 1 : U;
        if (lo >= hi) continue;
        cg_loop L;
        cg_loop_begin(c, &L, I(g, lo), I(g, hi), I(g, step), KT * RV, cur);
        LLVMValueRef a[64];
        memcpy(a, L.carried, sizeof(LLVMValueRef) * (size_t)(KT * RV));
        for (int u = 0; u < step; u++) {
            LLVMValueRef d = add(g, L.iv, I(g, u));
            LLVMValueRef qv[8];
            LLVMValueRef qrow = fptr(g, qT, mul(g, d, I(g, g->R_pad)));
            for (int i = 0; i < RV; i++) qv[i] = cg_vload(c, fptr(g, qrow, I(g, (int64_t)i * g->W)));
            for (int kk = 0; kk < KT; kk++) {
                LLVMValueRef bk = group_broadcast(g, fptr(g, rows[kk], pack > 1 ? mul(g, d, I(g, pack)) : d), pack);
                for (int i = 0; i < RV; i++) a[kk * RV + i] = cg_fma(c, bk, qv[i], a[kk * RV + i]);
            }
        }
        cg_loop_end(c, &L, a);
        memcpy(cur, L.carried, sizeof(LLVMValueRef) * (size_t)(KT * RV));
    }
    memcpy(acc, cur, sizeof(LLVMValueRef) * (size_t)(KT * RV));
}

typedef struct s_ctx {
    int KT, RV, RP, pack;
    LLVMValueRef kvoff;                          /* packed: key parity per lane (i64) */
    LLVMValueRef qv[8], hv[8], qpos[8];
    LLVMValueRef kp_base, kp_stride, pos_data;   /* explicit positions for ReRoPE */
    cg_env env;
} s_ctx;

/* What one pass of the score epilogue does: all of it on the tile's accumulators, or, for
 * a modifier that calls vector math per score (see emit_s_block), only the ReRoPE select
 * and the store on the tile, then the rest row by row from S^T. */
typedef enum epi_mode { EPI_ALL, EPI_RAW, EPI_FINISH } epi_mode;

/* Score epilogue of KT rows from j0: ReRoPE select, score modifier, mask (partial tiles),
 * store to S^T and running max (new maxima in mb). EPI_FINISH reads the scores from S^T. */
static void s_epilogue(kgen *g, s_ctx *sc, epi_mode mode, bool partial, LLVMValueRef j0, LLVMValueRef nk,
                       LLVMValueRef k0, LLVMValueRef sT, LLVMValueRef *acc, LLVMValueRef *mb) {
    cg *c = &g->c;
    const ir_kernel *k = g->k;
    LLVMValueRef ninf = cg_vf32(c, -INFINITY);
    int KT = mode == EPI_FINISH ? 1 : sc->KT;
    for (int kk = 0; kk < KT; kk++) {
        LLVMValueRef j = add(g, j0, I(g, kk));
        /* The key of each lane: one per tile row, or per lane in packed groups. */
        LLVMValueRef jk = sc->pack > 1 ? LLVMBuildAdd(BLD, cg_splat(c, mul(g, j, I(g, sc->pack))), sc->kvoff, "") : j;
        LLVMValueRef kv = sc->pack > 1 ? LLVMBuildAdd(BLD, cg_splat(c, k0), jk, "") : add(g, k0, j);
        LLVMValueRef srow = fptr(g, sT, mul(g, j, I(g, sc->RP)));
        LLVMValueRef kpos = NULL;
        if (g->rerope && mode != EPI_FINISH) {
            if (g->explicit_pos) {
                LLVMValueRef kc = imax(g, imin(g, kv, sub(g, sc->env.seq_k, I(g, 1))), I(g, 0));
                LLVMValueRef p = cg_gep(c, c->t_i32, sc->pos_data, add(g, sc->kp_base, mul(g, kc, sc->kp_stride)));
                kpos = LLVMBuildSExt(BLD, cg_load(c, c->t_i32, p, 4), c->t_i64, "");
            } else {
                kpos = kv;
            }
        }
        for (int i = 0; i < sc->RV; i++) {
            LLVMValueRef sp = fptr(g, srow, I(g, (int64_t)i * g->W));
            LLVMValueRef s = mode == EPI_FINISH ? cg_vload(c, sp) : acc[kk * sc->RV + i];
            if (kpos) {
                LLVMValueRef rel = sub(g, sc->qpos[i], cg_splat(c, kpos));
                LLVMValueRef inside = icmp(g, LLVMIntSLE, rel, cg_splat(c, I(g, k->rope.rerope_window)));
                s = sel(g, inside, s, cg_vload(c, sp));
            }
            if (mode == EPI_RAW) {
                cg_vstore(c, s, sp);
                continue;
            }
            sc->env.var[IR_VAR_Q_IDX] = sc->qv[i];
            sc->env.var[IR_VAR_HEAD] = sc->hv[i];
            sc->env.var[IR_VAR_KV_IDX] = kv;
            if (k->score_mod) {
                sc->env.var[IR_VAR_SCORE] = s;
                s = cg_splat(c, cg_expr(c, k->score_mod, &sc->env));
                s = vfmul(g, s, cg_vf32(c, M_LOG2E));
            }
            if (partial) {
                LLVMValueRef vis = icmp(g, LLVMIntSLT, jk, sc->pack > 1 ? cg_splat(c, nk) : nk);
                if (g->mask) {
                    LLVMValueRef mv = cg_expr(c, g->mask, &sc->env);
                    vis = LLVMBuildAnd(BLD, cg_is_vec(mv) ? cg_splat(c, vis) : vis, mv, "");
                }
                s = sel(g, vis, s, ninf);
            }
            cg_vstore(c, s, sp);
            mb[i] = cg_fmax(c, mb[i], s);
        }
    }
}

/* The epilogue for a tile's partial flag, masked or plain: a branch on the flag (uniform
 * for the whole block) and both versions, maxima from mb_in joined into mb_out. */
static void s_epilogue_split(kgen *g, s_ctx *sc, epi_mode mode, LLVMValueRef partial, LLVMValueRef j0,
                             LLVMValueRef nk, LLVMValueRef k0, LLVMValueRef sT, LLVMValueRef *acc,
                             LLVMValueRef *mb_in, LLVMValueRef *mb_out) {
    cg *c = &g->c;
    LLVMBasicBlockRef bm = cg_block(c, "masked"), bp = cg_block(c, "plain"), bj = cg_block(c, "scored");
    LLVMBuildCondBr(BLD, partial, bm, bp);
    LLVMValueRef mbm[8], mbp[8];
    LLVMPositionBuilderAtEnd(BLD, bm);
    memcpy(mbm, mb_in, sizeof(LLVMValueRef) * (size_t)sc->RV);
    s_epilogue(g, sc, mode, true, j0, nk, k0, sT, acc, mbm);
    LLVMBasicBlockRef bm_end = LLVMGetInsertBlock(BLD);
    LLVMBuildBr(BLD, bj);
    LLVMPositionBuilderAtEnd(BLD, bp);
    memcpy(mbp, mb_in, sizeof(LLVMValueRef) * (size_t)sc->RV);
    s_epilogue(g, sc, mode, false, j0, nk, k0, sT, acc, mbp);
    LLVMBasicBlockRef bp_end = LLVMGetInsertBlock(BLD);
    LLVMBuildBr(BLD, bj);
    LLVMPositionBuilderAtEnd(BLD, bj);
    for (int i = 0; i < sc->RV; i++) {
        mb_out[i] = LLVMBuildPhi(BLD, c->t_vf, "");
        LLVMValueRef vals[2] = { mbm[i], mbp[i] };
        LLVMBasicBlockRef bbs[2] = { bm_end, bp_end };
        LLVMAddIncoming(mb_out[i], vals, bbs, 2);
    }
}

static bool uses_per_score(const ir_expr *e) { return uses_var(e, IR_VAR_SCORE) || uses_var(e, IR_VAR_KV_IDX); }

/* Whether e calls exp, log, tanh or pow (tens of vector instructions each) on a value
 * that changes from score to score. */
static bool per_score_vmath(const ir_expr *e) {
    if (!e) return false;
    if (cg_expr_node_calls_vmath(e) && uses_per_score(e)) return true;
    for (int i = 0; i < e->n_args; i++)
        if (per_score_vmath(e->args[i])) return true;
    return false;
}

enum { V_WIDE, V_NARROW, V_PACKED, V_DIRECT };
static const char *const VARIANT_NAME[4] = { "wide", "narrow", "packed", "direct" };

/* Lane i of the result = the sum of the lanes of v[i], for W vectors: log2 W rounds,
 * each adding the halves of every segment of a pair of vectors (two shuffles, one add). */
static LLVMValueRef reduce_lanes(kgen *g, const LLVMValueRef *v) {
    cg *c = &g->c;
    int W = g->W, n = W, nseg = 1;
    LLVMValueRef cur[64];
    memcpy(cur, v, sizeof(LLVMValueRef) * (size_t)W);
    while (n > 1) {
        int w = W / nseg, hw = w / 2;   /* segment width before and after this round */
        LLVMValueRef lo[64], hi[64];
        for (int s = 0; s < 2 * nseg; s++)
            for (int i = 0; i < hw; i++) {
                int src = (s < nseg ? 0 : W) + (s % nseg) * w + i;
                lo[s * hw + i] = cg_i32(c, src);
                hi[s * hw + i] = cg_i32(c, src + hw);
            }
        LLVMValueRef mlo = LLVMConstVector(lo, (unsigned)W), mhi = LLVMConstVector(hi, (unsigned)W);
        for (int i = 0; i < n / 2; i++)
            cur[i] = vfadd(g, LLVMBuildShuffleVector(BLD, cur[2 * i], cur[2 * i + 1], mlo, ""),
                           LLVMBuildShuffleVector(BLD, cur[2 * i], cur[2 * i + 1], mhi, ""));
        n /= 2;
        nseg *= 2;
    }
    return cur[0];
}

/* One packed group of the direct path: lane r * pack + p = q_r . K[key j * pack + p],
 * K rows read in place, or with RoPE from the rotated fp32 rows stage_k wrote (keys past
 * nk repeat the last row; their lanes get masked). Row of key i: kbase + (k0 + i) ks1. */
typedef struct direct_rows {
    LLVMValueRef kd, kbase, ks1, k0;
    bool staged;
} direct_rows;

static LLVMValueRef s_group_direct(kgen *g, const direct_rows *dr, LLVMValueRef nk, LLVMValueRef j, LLVMValueRef qn) {
    cg *c = &g->c;
    int P = g->pack, W = g->W;
    LLVMValueRef rowoff[16], init[64], a[64], kv[16];
    LLVMValueRef kd = dr->kd;
    /* Rows 2^n bytes apart defeat the hardware prefetchers (a page per row): prefetch the
     * K rows a few groups ahead. */
    enum { AHEAD = 4 };
    for (int p = 0; p < P; p++) {
        LLVMValueRef tok = add(g, dr->k0, add(g, mul(g, j, I(g, P)), I(g, p)));
        if (!dr->staged)
            prefetch_row(g, kd, add(g, dr->kbase, mul(g, add(g, tok, I(g, (int64_t)AHEAD * P)), dr->ks1)), I(g, 1), g->dq);
        LLVMValueRef key = imin(g, add(g, mul(g, j, I(g, P)), I(g, p)), sub(g, nk, I(g, 1)));
        rowoff[p] = add(g, dr->kbase, mul(g, add(g, dr->k0, key), dr->ks1));
    }
    for (int i = 0; i < W; i++) init[i] = LLVMConstNull(c->t_vf);
    cg_loop D;
    cg_loop_begin(c, &D, I(g, 0), I(g, g->dq), I(g, W), W, init);
    memcpy(a, D.carried, sizeof(LLVMValueRef) * (size_t)W);
    for (int p = 0; p < P; p++)
        kv[p] = dr->staged ? cg_vload(c, fptr(g, kd, add(g, rowoff[p], D.iv))) : load_vec(g, kd, add(g, rowoff[p], D.iv));
    for (int r = 0; r < g->G; r++) {
        LLVMValueRef q = cg_vload(c, fptr(g, qn, add(g, I(g, (int64_t)r * g->dq), D.iv)));
        for (int p = 0; p < P; p++) a[r * P + p] = cg_fma(c, kv[p], q, a[r * P + p]);
    }
    cg_loop_end(c, &D, a);
    return reduce_lanes(g, D.carried);
}

static void emit_s_block(kgen *g, int variant) {
    cg *c = &g->c;
    const ir_kernel *k = g->k;
    s_ctx sc;
    memset(&sc, 0, sizeof sc);
    sc.KT = variant == V_WIDE ? g->tl.s_keys_wide : variant == V_NARROW ? g->tl.s_keys_narrow : g->kt_pack;
    bool direct = variant == V_DIRECT, packed = variant >= V_PACKED;
    sc.RV = variant == V_WIDE ? g->tl.s_vecs_wide : 1;
    sc.RP = sc.RV * g->W;
    sc.pack = packed ? g->pack : 1;
    /* The row table: [R_pad] q_idx, [R_pad] head-in-group; packed: [W] each and [W] key parity. */
    int64_t tab_stride = packed ? g->W : g->R_pad;
    LLVMTypeRef ps[SB_N];
    for (int i = 0; i < SB_N; i++) ps[i] = c->t_i64;
    ps[SB_A] = g->t_pargs; ps[SB_PL] = g->t_pi64; ps[SB_S] = g->t_pi64;
    ps[SB_K] = ps[SB_K2] = ps[SB_QT] = ps[SB_QT2] = ps[SB_ST] = ps[SB_M] = ps[SB_L] = ps[SB_ALPHA] = c->t_pf32;
    ps[SB_PARTIAL] = c->t_i1;
    ps[SB_ROWS] = g->t_pi64;
    char fname[32];
    snprintf(fname, sizeof fname, "s_block_%s", VARIANT_NAME[variant]);
    LLVMValueRef fn = cg_function(c, fname, c->t_void, ps, SB_N, false);
    g->f_s[variant] = fn;
    cg_fn_attr(c, fn, "noinline");
    int noalias[] = { SB_ST, SB_M, SB_L, SB_ALPHA, SB_K, SB_K2, SB_QT, SB_QT2 };
    for (size_t i = 0; i < sizeof noalias / sizeof *noalias; i++) cg_param_attr(c, fn, noalias[i], "noalias");
    int ro[] = { SB_K, SB_K2, SB_QT, SB_QT2, SB_A, SB_PL, SB_S, SB_ROWS };
    for (size_t i = 0; i < sizeof ro / sizeof *ro; i++) cg_param_attr(c, fn, ro[i], "readonly");
    begin_fn(g, fn);
    LLVMValueRef A = param(g, SB_A), PL = param(g, SB_PL), S = param(g, SB_S);
    LLVMValueRef kptr = param(g, SB_K), krs = param(g, SB_KRS), kptr2 = param(g, SB_K2), nk = param(g, SB_NK);
    LLVMValueRef qT = param(g, SB_QT), qT2 = param(g, SB_QT2), sT = param(g, SB_ST);
    LLVMValueRef mrow = param(g, SB_M), lrow = param(g, SB_L), arow = param(g, SB_ALPHA);
    LLVMValueRef b = param(g, SB_B), h = param(g, SB_H), pos0 = param(g, SB_POS0), r0 = param(g, SB_R0);
    LLVMValueRef k0 = param(g, SB_K0), partial = param(g, SB_PARTIAL);

    /* Lane values for expressions: row r -> q_idx = pos0 + r/g + seq_k - seq_q, head = h*g + r%g. */
    LLVMValueRef SK = ld64(g, PL, PL_SK);
    sc.env.var[IR_VAR_SEQ_Q] = ld64(g, PL, PL_SQ);
    sc.env.var[IR_VAR_SEQ_K] = SK;
    sc.env.var[IR_VAR_BATCH] = b;
    sc.env.batch = b;
    sc.env.seq_k = SK;
    for (int in = 0; in < k->n_inputs; in++) {
        sc.env.in_data[in] = slot_data(g, A, g->abi.first_input + in);
        for (int d = 0; d < 4; d++) sc.env.in_stride[in][d] = stride(g, S, g->abi.first_input + in, d);
    }
    /* q_idx and head-in-group of every row come from a per-item table (vector loads,
     * no per-lane division). */
    (void)pos0;
    LLVMValueRef rowtab = param(g, SB_ROWS);
    LLVMValueRef hbase = cg_splat(c, mul(g, h, I(g, g->G)));
    for (int i = 0; i < sc.RV; i++) {
        LLVMValueRef at = add(g, r0, I(g, (int64_t)i * g->W));
        LLVMTypeRef vp = LLVMPointerType(c->t_vi64, 0);
        sc.qv[i] = cg_load(c, c->t_vi64, LLVMBuildBitCast(BLD, cg_gep(c, c->t_i64, rowtab, at), vp, ""), 8);
        LLVMValueRef hm = cg_load(c, c->t_vi64, LLVMBuildBitCast(BLD, cg_gep(c, c->t_i64, rowtab, add(g, at, I(g, tab_stride))), vp, ""), 8);
        sc.hv[i] = LLVMBuildAdd(BLD, hbase, hm, "");
        sc.qpos[i] = sc.qv[i];
        if (sc.pack > 1)
            sc.kvoff = cg_load(c, c->t_vi64, LLVMBuildBitCast(BLD, cg_gep(c, c->t_i64, rowtab, add(g, at, I(g, 2 * tab_stride))), vp, ""), 8);
    }
    if (g->rerope && g->explicit_pos) {
        int sp = g->abi.positions;
        sc.pos_data = cg_bitcast_ptr(c, slot_data(g, A, sp), c->t_pi32);
        sc.kp_base = mul(g, b, stride(g, S, sp, 0));
        sc.kp_stride = stride(g, S, sp, 1);
        for (int i = 0; i < sc.RV; i++) {
            LLVMValueRef qc = cg_smax(c, cg_smin(c, sc.qv[i], cg_splat(c, sub(g, SK, I(g, 1)))), cg_splat(c, I(g, 0)));
            LLVMValueRef off = LLVMBuildAdd(BLD, cg_splat(c, sc.kp_base), LLVMBuildMul(BLD, qc, cg_splat(c, sc.kp_stride), ""), "");
            LLVMValueRef ptrs = LLVMBuildInBoundsGEP2(BLD, c->t_i32, sc.pos_data, &off, 1, "");
            LLVMTypeRef over[2] = { c->t_vi32, LLVMTypeOf(ptrs) };
            LLVMValueRef ones = LLVMConstAllOnes(c->t_vb);
            LLVMValueRef args[4] = { ptrs, cg_i32(c, 4), ones, LLVMGetUndef(c->t_vi32) };
            sc.qpos[i] = LLVMBuildSExt(BLD, cg_call_intrinsic(c, "llvm.masked.gather", over, 2, args, 4), c->t_vi64, "");
        }
    }

    direct_rows dr = { 0 };
    if (direct && g->rope) {
        dr = (direct_rows){ kptr, I(g, 0), I(g, g->dq), I(g, 0), true };
    } else if (direct) {
        int sk = g->abi.k;
        dr.kd = slot_data(g, A, sk);
        dr.kbase = add(g, mul(g, b, stride(g, S, sk, 0)), mul(g, h, stride(g, S, sk, 2)));
        dr.ks1 = stride(g, S, sk, 1);
        dr.k0 = k0;
    }
    /* Tile rows: keys, or groups of `pack` keys. */
    LLVMValueRef ngroups = sc.pack > 1 ? cdiv(g, nk, I(g, sc.pack)) : nk;
    LLVMValueRef nkpad = mul(g, cdiv(g, ngroups, I(g, sc.KT)), I(g, sc.KT));
    LLVMValueRef mb0[8];
    for (int i = 0; i < sc.RV; i++) mb0[i] = cg_vf32(c, -INFINITY);
    cg_loop T;
    /* A modifier that calls vector math per score (not just per head, like ALiBi's
     * slope, which LLVM hoists) is applied in a loop over the rows of S^T instead of on
     * the tile: unrolled over a tile's KT x RV vectors, twice (masked and plain), it
     * doubled the S micro-kernel and its JIT time (gemma2's softcap). The price is one
     * more load and store per score vector. */
    bool roll = per_score_vmath(k->score_mod);
    cg_loop_begin(c, &T, I(g, 0), nkpad, I(g, sc.KT), roll ? 0 : sc.RV, roll ? NULL : mb0);
    LLVMValueRef j0 = T.iv;
    LLVMValueRef rows[32], rows2[32];
    (void)krs;
    for (int kk = 0; kk < sc.KT; kk++) {
        /* Staged rows are d_qk apart, so every row is one base register plus a constant.
         * Keys past the end read the zeroed tail of the staging buffer and are masked. */
        LLVMValueRef r = add(g, j0, I(g, kk));
        rows[kk] = fptr(g, kptr, mul(g, r, I(g, (int64_t)g->dq * sc.pack)));
        rows2[kk] = fptr(g, kptr2, mul(g, r, I(g, g->dq)));
    }
    LLVMValueRef acc[64];
    if (g->rerope) {
        /* Scores with the leaky rotation first, parked in S^T for the select. */
        s_tile_dot(g, sc.KT, sc.RV, 1, rows2, qT2, acc);
        for (int kk = 0; kk < sc.KT; kk++)
            for (int i = 0; i < sc.RV; i++)
                cg_vstore(c, acc[kk * sc.RV + i],
                          fptr(g, sT, add(g, mul(g, add(g, j0, I(g, kk)), I(g, sc.RP)), I(g, (int64_t)i * g->W))));
    }
    if (direct) {
        for (int kk = 0; kk < sc.KT; kk++) acc[kk] = s_group_direct(g, &dr, nk, add(g, j0, I(g, kk)), qT);
    } else {
        s_tile_dot(g, sc.KT, sc.RV, sc.pack, rows, qT, acc);
    }
    LLVMValueRef bmax[8];
    if (roll) {
        s_epilogue(g, &sc, EPI_RAW, false, j0, nk, k0, sT, acc, NULL);
        cg_loop_end(c, &T, NULL);
        cg_loop F;
        cg_loop_begin(c, &F, I(g, 0), nkpad, I(g, 1), sc.RV, mb0);
        LLVMValueRef mbn[8];
        s_epilogue_split(g, &sc, EPI_FINISH, partial, F.iv, nk, k0, sT, NULL, F.carried, mbn);
        cg_loop_end(c, &F, mbn);
        memcpy(bmax, F.carried, sizeof(LLVMValueRef) * (size_t)sc.RV);
    } else {
        LLVMValueRef mbn[8];
        s_epilogue_split(g, &sc, EPI_ALL, partial, j0, nk, k0, sT, acc, T.carried, mbn);
        cg_loop_end(c, &T, mbn);
        memcpy(bmax, T.carried, sizeof(LLVMValueRef) * (size_t)sc.RV);
    }
    if (direct) {
        /* One running max per row: fold the block maxima of its pack lanes. */
        for (int w = 1; w < sc.pack; w *= 2) {
            LLVMValueRef m[64];
            for (int i = 0; i < g->W; i++) m[i] = cg_i32(c, i ^ w);
            bmax[0] = cg_fmax(c, bmax[0], LLVMBuildShuffleVector(BLD, bmax[0], LLVMGetUndef(c->t_vf),
                                                                 LLVMConstVector(m, (unsigned)g->W), ""));
        }
    }

    /* Online softmax update, per lane: m' = max(m, block max); alpha = 2^(m - m');
     * P = 2^(S - m') in place; l' = l alpha + sum P. A row with nothing visible yet keeps
     * m = -inf and uses 0 as its offset, so P and alpha are exactly 0. */
    LLVMValueRef mu[8], alpha[8], mnew[8], psum0[8];
    for (int i = 0; i < sc.RV; i++) {
        LLVMValueRef mo = cg_vload(c, fptr(g, mrow, I(g, (int64_t)i * g->W)));
        mnew[i] = cg_fmax(c, mo, bmax[i]);
        LLVMValueRef none = LLVMBuildFCmp(BLD, LLVMRealOEQ, mnew[i], cg_vf32(c, -INFINITY), "");
        mu[i] = sel(g, none, cg_vf32(c, 0.0), mnew[i]);
        alpha[i] = vm_exp2_softmax(c, vfsub(g, mo, mu[i]));
        psum0[i] = cg_vf32(c, 0.0);
    }
    cg_loop Pl;
    cg_loop_begin(c, &Pl, I(g, 0), nkpad, I(g, 1), sc.RV, psum0);
    LLVMValueRef ps_next[8];
    for (int i = 0; i < sc.RV; i++) {
        LLVMValueRef sp = fptr(g, sT, add(g, mul(g, Pl.iv, I(g, sc.RP)), I(g, (int64_t)i * g->W)));
        LLVMValueRef p = vm_exp2_softmax(c, vfsub(g, cg_vload(c, sp), mu[i]));
        cg_vstore(c, p, sp);
        ps_next[i] = vfadd(g, Pl.carried[i], p);
    }
    cg_loop_end(c, &Pl, ps_next);
    for (int i = 0; i < sc.RV; i++) {
        LLVMValueRef off = I(g, (int64_t)i * g->W);
        LLVMValueRef lo = cg_vload(c, fptr(g, lrow, off));
        cg_vstore(c, cg_fma(c, lo, alpha[i], Pl.carried[i]), fptr(g, lrow, off));
        cg_vstore(c, mnew[i], fptr(g, mrow, off));
        cg_vstore(c, alpha[i], fptr(g, arow, off));
    }
    LLVMBuildRetVoid(BLD);
}

/* ---------------------------------------------------------------- PV micro-kernel */

/* O^T[c][rows] = alpha * O^T[c][rows] + sum_j V[j][c] P^T[j][rows] for KC columns.
 * Packed: j runs over groups of `pack` keys and V is [groups][c][pack]. */
static void pv_tile(kgen *g, int KC, int RV, int RP, int pack, LLVMValueRef c0, LLVMValueRef vptr, LLVMValueRef vrs,
                    LLVMValueRef nk, LLVMValueRef pT, LLVMValueRef oT, LLVMValueRef *al) {
    cg *c = &g->c;
    LLVMValueRef init[64];
    for (int cc = 0; cc < KC; cc++)
        for (int i = 0; i < RV; i++) {
            LLVMValueRef p = fptr(g, oT, add(g, mul(g, add(g, c0, I(g, cc)), I(g, g->R_pad)), I(g, (int64_t)i * g->W)));
            init[cc * RV + i] = vfmul(g, cg_vload(c, p), al[i]);
        }
    cg_loop J;
    cg_loop_begin(c, &J, I(g, 0), nk, I(g, 1), KC * RV, init);
    LLVMValueRef a[64], pv[8];
    memcpy(a, J.carried, sizeof(LLVMValueRef) * (size_t)(KC * RV));
    LLVMValueRef prow = fptr(g, pT, mul(g, J.iv, I(g, RP)));
    for (int i = 0; i < RV; i++) pv[i] = cg_vload(c, fptr(g, prow, I(g, (int64_t)i * g->W)));
    LLVMValueRef vrow = fptr(g, vptr, add(g, mul(g, J.iv, vrs), mul(g, c0, I(g, pack))));
    for (int cc = 0; cc < KC; cc++) {
        LLVMValueRef bv = group_broadcast(g, fptr(g, vrow, I(g, (int64_t)cc * pack)), pack);
        for (int i = 0; i < RV; i++) a[cc * RV + i] = cg_fma(c, bv, pv[i], a[cc * RV + i]);
    }
    cg_loop_end(c, &J, a);
    for (int cc = 0; cc < KC; cc++)
        for (int i = 0; i < RV; i++) {
            LLVMValueRef p = fptr(g, oT, add(g, mul(g, add(g, c0, I(g, cc)), I(g, g->R_pad)), I(g, (int64_t)i * g->W)));
            cg_vstore(c, J.carried[cc * RV + i], p);
        }
}

enum { PV_V, PV_VRS, PV_NK, PV_PT, PV_OT, PV_ALPHA, PV_N };

static void emit_pv(kgen *g, int variant) {
    cg *c = &g->c;
    int KC = variant == V_WIDE ? g->tl.pv_cols_wide : g->tl.pv_cols_narrow;
    int RV = variant == V_WIDE ? g->tl.s_vecs_wide : 1;
    int RP = RV * g->W;
    int pack = variant == V_PACKED ? g->pack : 1;
    LLVMTypeRef ps[PV_N] = { c->t_pf32, c->t_i64, c->t_i64, c->t_pf32, c->t_pf32, c->t_pf32 };
    char fname[32];
    snprintf(fname, sizeof fname, "pv_%s", VARIANT_NAME[variant]);
    LLVMValueRef fn = cg_function(c, fname, c->t_void, ps, PV_N, false);
    g->f_pv[variant] = fn;
    cg_fn_attr(c, fn, "noinline");
    int na[] = { PV_V, PV_PT, PV_OT, PV_ALPHA };
    for (size_t i = 0; i < sizeof na / sizeof *na; i++) cg_param_attr(c, fn, na[i], "noalias");
    cg_param_attr(c, fn, PV_V, "readonly");
    cg_param_attr(c, fn, PV_PT, "readonly");
    cg_param_attr(c, fn, PV_ALPHA, "readonly");
    begin_fn(g, fn);
    LLVMValueRef vptr = param(g, PV_V), vrs = param(g, PV_VRS), nk = param(g, PV_NK);
    LLVMValueRef pT = param(g, PV_PT), oT = param(g, PV_OT), arow = param(g, PV_ALPHA);
    LLVMValueRef al[8];
    for (int i = 0; i < RV; i++) al[i] = cg_vload(c, fptr(g, arow, I(g, (int64_t)i * g->W)));
    LLVMValueRef n = pack > 1 ? cdiv(g, nk, I(g, pack)) : nk;
    int main_end = g->dv / KC * KC;
    if (main_end > 0) {
        cg_loop C;
        cg_loop_begin(c, &C, I(g, 0), I(g, main_end), I(g, KC), 0, NULL);
        pv_tile(g, KC, RV, RP, pack, C.iv, vptr, vrs, n, pT, oT, al);
        cg_loop_end(c, &C, NULL);
    }
    if (g->dv > main_end) pv_tile(g, g->dv - main_end, RV, RP, pack, I(g, main_end), vptr, vrs, n, pT, oT, al);
    LLVMBuildRetVoid(BLD);
}

/* O[r][c0 + cb W ..] for CB vectors of columns of the G rows of a direct panel. */
static void pv_direct_tile(kgen *g, int CB, LLVMValueRef c0, LLVMValueRef vptr, LLVMValueRef nk, LLVMValueRef pT,
                           LLVMValueRef on, const LLVMValueRef *al) {
    cg *c = &g->c;
    int P = g->pack, W = g->W, G = g->G;
    LLVMValueRef init[64], a[64], vv[32];
    for (int r = 0; r < G; r++)
        for (int cb = 0; cb < CB; cb++)
            init[r * CB + cb] = vfmul(g, cg_vload(c, fptr(g, on, add(g, I(g, (int64_t)r * g->dv + cb * W), c0))), al[r]);
    cg_loop T;
    cg_loop_begin(c, &T, I(g, 0), cdiv(g, nk, I(g, P)), I(g, 1), G * CB, init);
    memcpy(a, T.carried, sizeof(LLVMValueRef) * (size_t)(G * CB));
    LLVMValueRef prow = fptr(g, pT, mul(g, T.iv, I(g, W)));
    for (int p = 0; p < P; p++) {
        LLVMValueRef key = imin(g, add(g, mul(g, T.iv, I(g, P)), I(g, p)), sub(g, nk, I(g, 1)));
        LLVMValueRef vrow = fptr(g, vptr, add(g, mul(g, key, I(g, g->dv)), c0));
        for (int cb = 0; cb < CB; cb++) vv[cb] = cg_vload(c, fptr(g, vrow, I(g, (int64_t)cb * W)));
        for (int r = 0; r < G; r++) {
            LLVMValueRef pb = cg_splat(c, ldf(g, fptr(g, prow, I(g, (int64_t)r * P + p))));
            for (int cb = 0; cb < CB; cb++) a[r * CB + cb] = cg_fma(c, vv[cb], pb, a[r * CB + cb]);
        }
    }
    cg_loop_end(c, &T, a);
    for (int r = 0; r < G; r++)
        for (int cb = 0; cb < CB; cb++)
            cg_vstore(c, T.carried[r * CB + cb], fptr(g, on, add(g, I(g, (int64_t)r * g->dv + cb * W), c0)));
}

enum { PD_V, PD_NK, PD_PT, PD_ON, PD_ALPHA, PD_N };

/* void pv_direct(V, nk, P^T, O, alpha): O[r] = alpha_r O[r] + sum_j P[j][r] V[j] for the G
 * rows of a kv head, V the staged fp32 rows [nk][d_v] (the packed P^T: lane r * pack + j %
 * pack of group j / pack), in blocks of columns that keep the accumulators in registers. */
static void emit_pv_direct(kgen *g) {
    cg *c = &g->c;
    LLVMTypeRef ps[PD_N] = { c->t_pf32, c->t_i64, c->t_pf32, c->t_pf32, c->t_pf32 };
    LLVMValueRef fn = cg_function(c, "pv_direct", c->t_void, ps, PD_N, false);
    g->f_pv[V_DIRECT] = fn;
    cg_fn_attr(c, fn, "noinline");
    int na[] = { PD_V, PD_PT, PD_ON, PD_ALPHA };
    for (size_t i = 0; i < sizeof na / sizeof *na; i++) cg_param_attr(c, fn, na[i], "noalias");
    begin_fn(g, fn);
    LLVMValueRef vptr = param(g, PD_V), nk = param(g, PD_NK), pT = param(g, PD_PT), on = param(g, PD_ON);
    LLVMValueRef alpha = param(g, PD_ALPHA);
    LLVMValueRef al[64];
    for (int r = 0; r < g->G; r++) al[r] = cg_splat(c, ldf(g, fptr(g, alpha, I(g, (int64_t)r * g->pack))));
    int nch = g->dv / g->W, budget = g->W >= 16 ? 24 : 12;
    int CB = budget / g->G < 1 ? 1 : budget / g->G;
    if (CB > nch) CB = nch;
    int main_end = nch / CB * CB;
    cg_loop C;
    cg_loop_begin(c, &C, I(g, 0), I(g, (int64_t)main_end * g->W), I(g, (int64_t)CB * g->W), 0, NULL);
    pv_direct_tile(g, CB, C.iv, vptr, nk, pT, on, al);
    cg_loop_end(c, &C, NULL);
    if (nch > main_end) pv_direct_tile(g, nch - main_end, I(g, (int64_t)main_end * g->W), vptr, nk, pT, on, al);
    LLVMBuildRetVoid(BLD);
}

/* ---------------------------------------------------------------- work items */

static LLVMValueRef ws_bytes_ptr(kgen *g, LLVMValueRef A, LLVMValueRef byte_off) {
    LLVMValueRef ws = afield(g, A, 6, g->c.t_pi8);
    return LLVMBuildInBoundsGEP2(BLD, g->c.t_i8, ws, &byte_off, 1, "");
}

/* Element offset of the output row of (batch b, position pos, query head head) in slot s. */
static LLVMValueRef row_base(kgen *g, LLVMValueRef S, int s, LLVMValueRef b, LLVMValueRef pos, LLVMValueRef head) {
    return add(g, add(g, mul(g, b, stride(g, S, s, 0)), mul(g, pos, stride(g, S, s, 1))), mul(g, head, stride(g, S, s, 2)));
}

/* lse = m ln 2 + ln l, or -inf where nothing was visible (l = 0); when lse is wanted. */
static void store_row_lse(kgen *g, LLVMValueRef A, LLVMValueRef S, LLVMValueRef b, LLVMValueRef pos,
                          LLVMValueRef head, LLVMValueRef m, LLVMValueRef l) {
    cg *c = &g->c;
    int sl = g->abi.lse;
    LLVMValueRef ld = slot_data(g, A, sl);
    LLVMBasicBlockRef join = cg_if_begin(c, LLVMBuildIsNotNull(BLD, ld, ""));
    LLVMValueRef md = LLVMBuildFPExt(BLD, m, c->t_f64, ""), lnl = call_f64(g, "llvm.log", LLVMBuildFPExt(BLD, l, c->t_f64, ""));
    LLVMValueRef lse = LLVMBuildFAdd(BLD, LLVMBuildFMul(BLD, md, cg_f64(c, M_LN2), ""), lnl, "");
    LLVMValueRef has = LLVMBuildFCmp(BLD, LLVMRealOGT, l, cg_f32(c, 0.0), "");
    lse = sel(g, has, LLVMBuildFPTrunc(BLD, lse, c->t_f32, ""), cg_f32(c, -INFINITY));
    stf(g, lse, fptr(g, cg_bitcast_ptr(c, ld, c->t_pf32), row_base(g, S, sl, b, pos, head)));
    cg_if_end(c, join);
}

/* Writes one row: o = src[d * src_stride] * inv (inv = 1 / l, or 0 where nothing was
 * visible), and its lse. */
static void store_row_output(kgen *g, LLVMValueRef A, LLVMValueRef S, LLVMValueRef b, LLVMValueRef pos,
                             LLVMValueRef head, LLVMValueRef m, LLVMValueRef l, LLVMValueRef src, LLVMValueRef src_stride,
                             LLVMValueRef inv) {
    cg *c = &g->c;
    int so = g->abi.o;
    LLVMValueRef od = slot_data(g, A, so);
    LLVMValueRef ob = row_base(g, S, so, b, pos, head);
    LLVMValueRef s3 = stride(g, S, so, 3);
    cg_loop D;
    cg_loop_begin(c, &D, I(g, 0), I(g, g->dv), I(g, 1), 0, NULL);
    LLVMValueRef v = vfmul(g, ldf(g, fptr(g, src, mul(g, D.iv, src_stride))), inv);
    store_elem(g, v, od, add(g, ob, mul(g, D.iv, s3)));
    cg_loop_end(c, &D, NULL);
    store_row_lse(g, A, S, b, pos, head, m, l);
}

static void call_void(kgen *g, LLVMValueRef fn, LLVMValueRef *args, int n) {
    LLVMBuildCall2(BLD, LLVMGlobalGetValueType(fn), fn, args, (unsigned)n, "");
}

static void do_panel(kgen *g, int variant, LLVMValueRef *sargs, LLVMValueRef r0, LLVMValueRef Rv, LLVMValueRef pos0,
                     LLVMValueRef off, LLVMValueRef k0, LLVMValueRef nk, int blk, LLVMValueRef oT, LLVMValueRef vp,
                     LLVMValueRef vrs) {
    cg *c = &g->c;
    const ir_mask_band *band = &g->k->band;
    int RP = variant == V_WIDE ? g->RPw : g->W;
    LLVMValueRef rlast = sub(g, imin(g, add(g, r0, I(g, RP)), Rv), I(g, 1));
    LLVMValueRef pa = add(g, add(g, pos0, sdiv(g, r0, I(g, g->G))), off);
    LLVMValueRef pz = add(g, add(g, pos0, sdiv(g, rlast, I(g, g->G))), off);
    LLVMValueRef kz = sub(g, add(g, k0, nk), I(g, 1));
    LLVMValueRef dmin = sub(g, pa, kz), dmax = sub(g, pz, k0);
    bool lo_fin = band->has_band && band->band_lo != INT64_MIN, hi_fin = band->has_band && band->band_hi != INT64_MAX;
    LLVMValueRef empty = LLVMConstInt(c->t_i1, 0, 0);
    if (hi_fin) empty = LLVMBuildOr(BLD, empty, icmp(g, LLVMIntSGT, dmin, I(g, band->band_hi)), "");
    if (lo_fin) empty = LLVMBuildOr(BLD, empty, icmp(g, LLVMIntSLT, dmax, I(g, band->band_lo)), "");
    LLVMValueRef full = icmp(g, LLVMIntEQ, nk, I(g, blk));
    /* Packed tiles overhang a block that is no multiple of their keys: always masked. */
    if (variant >= V_PACKED && blk % (g->kt_pack * g->pack) != 0) full = LLVMConstInt(c->t_i1, 0, 0);
    if (g->mask) {
        if (band->has_band && band->band_exact) {
            if (lo_fin) full = LLVMBuildAnd(BLD, full, icmp(g, LLVMIntSGE, dmin, I(g, band->band_lo)), "");
            if (hi_fin) full = LLVMBuildAnd(BLD, full, icmp(g, LLVMIntSLE, dmax, I(g, band->band_hi)), "");
        } else {
            full = LLVMConstInt(c->t_i1, 0, 0);
        }
    }
    LLVMBasicBlockRef join = cg_if_begin(c, LLVMBuildNot(BLD, empty, ""));
    LLVMValueRef a[SB_N];
    memcpy(a, sargs, sizeof a);
    a[SB_QT] = fptr(g, sargs[SB_QT], r0);
    a[SB_QT2] = fptr(g, sargs[SB_QT2], r0);
    a[SB_M] = fptr(g, sargs[SB_M], r0);
    a[SB_L] = fptr(g, sargs[SB_L], r0);
    a[SB_ALPHA] = fptr(g, sargs[SB_ALPHA], r0);
    a[SB_R0] = r0;
    a[SB_PARTIAL] = LLVMBuildNot(BLD, full, "");
    call_void(g, g->f_s[variant], a, SB_N);
    if (variant == V_DIRECT) {
        LLVMValueRef pd_args[PD_N] = { vp, nk, sargs[SB_ST], oT, a[SB_ALPHA] };
        call_void(g, g->f_pv[variant], pd_args, PD_N);
    } else {
        LLVMValueRef pa_args[PV_N] = { vp, vrs, nk, sargs[SB_ST], fptr(g, oT, r0), a[SB_ALPHA] };
        call_void(g, g->f_pv[variant], pa_args, PV_N);
    }
    cg_if_end(c, join);
}

/* Interleaves n vectors: out holds in[0][0], in[1][0], ..., in[n-1][0], in[0][1], ...
 * (pairwise unpack rounds; n = pack). */
static void interleave(kgen *g, LLVMValueRef *in, int n, LLVMValueRef *out) {
    if (n == 1) {
        out[0] = in[0];
        return;
    }
    cg *c = &g->c;
    int W = g->W;
    LLVMValueRef ml[64], mh[64], lo[16], hi[16];
    for (int i = 0; i < W / 2; i++) {
        ml[2 * i] = cg_i32(c, i); ml[2 * i + 1] = cg_i32(c, W + i);
        mh[2 * i] = cg_i32(c, W / 2 + i); mh[2 * i + 1] = cg_i32(c, W + W / 2 + i);
    }
    LLVMValueRef mlo = LLVMConstVector(ml, (unsigned)W), mhi = LLVMConstVector(mh, (unsigned)W);
    for (int i = 0; i < n / 2; i++) {
        lo[i] = LLVMBuildShuffleVector(BLD, in[i], in[i + n / 2], mlo, "");
        hi[i] = LLVMBuildShuffleVector(BLD, in[i], in[i + n / 2], mhi, "");
    }
    interleave(g, lo, n / 2, out);
    interleave(g, hi, n / 2, out + n / 2);
}

/* void pack(src, src_stride, nk, dst): rows of a staged block -> [groups][ncols][pack],
 * as many groups as packed tiles read; rows past nk repeat the last row (finite values
 * whose weights are 0). */
static LLVMValueRef emit_pack(kgen *g, int ncols, const char *name) {
    cg *c = &g->c;
    int P = g->pack, W = g->W;
    LLVMTypeRef ps[4] = { c->t_pf32, c->t_i64, c->t_i64, c->t_pf32 };
    LLVMValueRef fn = cg_function(c, name, c->t_void, ps, 4, false);
    warm_fn(g, fn);
    begin_fn(g, fn);
    LLVMValueRef src = param(g, 0), sst = param(g, 1), nk = param(g, 2), dst = param(g, 3);
    LLVMValueRef ngpad = mul(g, cdiv(g, cdiv(g, nk, I(g, P)), I(g, g->kt_pack)), I(g, g->kt_pack));
    cg_loop G;
    cg_loop_begin(c, &G, I(g, 0), ngpad, I(g, 1), 0, NULL);
    LLVMValueRef rp[16];
    for (int p = 0; p < P; p++)
        rp[p] = fptr(g, src, mul(g, imin(g, add(g, mul(g, G.iv, I(g, P)), I(g, p)), sub(g, nk, I(g, 1))), sst));
    LLVMValueRef dg = fptr(g, dst, mul(g, G.iv, I(g, (int64_t)ncols * P)));
    int main_end = ncols / W * W;
    if (main_end > 0) {
        cg_loop D;
        cg_loop_begin(c, &D, I(g, 0), I(g, main_end), I(g, W), 0, NULL);
        LLVMValueRef in[16], out[16];
        for (int p = 0; p < P; p++) in[p] = cg_vload(c, fptr(g, rp[p], D.iv));
        interleave(g, in, P, out);
        for (int o = 0; o < P; o++) cg_vstore(c, out[o], fptr(g, dg, add(g, mul(g, D.iv, I(g, P)), I(g, (int64_t)o * W))));
        cg_loop_end(c, &D, NULL);
    }
    for (int d = main_end; d < ncols; d++)
        for (int p = 0; p < P; p++) stf(g, ldf(g, fptr(g, rp[p], I(g, d))), fptr(g, dg, I(g, (int64_t)d * P + p)));
    cg_loop_end(c, &G, NULL);
    LLVMBuildRetVoid(BLD);
    return fn;
}

/* void stage_pack(A, S, ts, b, h_lo, h_hi, k0, nk): without RoPE, packed blocks come
 * straight from the tensor: for each group of `pack` tokens and each kv head, the rows
 * are converted and interleaved in registers into [head][groups][ncols][pack] (K from
 * slot k, V from slot v, or the first d_v columns of K for MLA). One pass over memory,
 * token rows in order. */
static LLVMValueRef emit_stage_pack(kgen *g, bool is_v) {
    cg *c = &g->c;
    int P = g->pack, W = g->W, ncols = is_v ? g->dv : g->dq;
    int sl = is_v && !g->k->v_in_k ? g->abi.v : g->abi.k;
    LLVMTypeRef ps[8] = { g->t_pargs, g->t_pi64, c->t_pf32, c->t_i64, c->t_i64, c->t_i64, c->t_i64, c->t_i64 };
    LLVMValueRef fn = cg_function(c, is_v ? "stage_pack_v" : "stage_pack_k", c->t_void, ps, 8, false);
    warm_fn(g, fn);
    begin_fn(g, fn);
    LLVMValueRef A = param(g, 0), S = param(g, 1), ts = param(g, 2), b = param(g, 3);
    LLVMValueRef h_lo = param(g, 4), h_hi = param(g, 5), k0 = param(g, 6), nk = param(g, 7);
    LLVMValueRef buf = fptr(g, ts, I(g, is_v ? g->off_vp : g->off_kp));
    LLVMValueRef data = slot_data(g, A, sl);
    LLVMValueRef s3 = stride(g, S, sl, 3);
    LLVMValueRef ngpad = mul(g, cdiv(g, cdiv(g, nk, I(g, P)), I(g, g->kt_pack)), I(g, g->kt_pack));
    LLVMValueRef dense = icmp(g, LLVMIntEQ, s3, I(g, 1));
    cg_loop G;
    cg_loop_begin(c, &G, I(g, 0), ngpad, I(g, 1), 0, NULL);
    LLVMValueRef tb[16];
    for (int p = 0; p < P; p++) {
        LLVMValueRef tok = add(g, k0, imin(g, add(g, mul(g, G.iv, I(g, P)), I(g, p)), sub(g, nk, I(g, 1))));
        tb[p] = add(g, mul(g, b, stride(g, S, sl, 0)), mul(g, tok, stride(g, S, sl, 1)));
    }
    cg_loop H;
    cg_loop_begin(c, &H, h_lo, h_hi, I(g, 1), 0, NULL);
    LLVMValueRef hoff = mul(g, H.iv, stride(g, S, sl, 2));

    LLVMValueRef dg = fptr(g, buf, add(g, mul(g, sub(g, H.iv, h_lo), I(g, (int64_t)g->pack_rows * ncols)),
                                       mul(g, G.iv, I(g, (int64_t)ncols * P))));
    int main_end = ncols / W * W;
    LLVMBasicBlockRef vec_bb = cg_block(c, "dense"), sc_bb = cg_block(c, "strided"), join = cg_block(c, "packed");
    LLVMBuildCondBr(BLD, dense, vec_bb, sc_bb);
    LLVMPositionBuilderAtEnd(BLD, vec_bb);
    if (main_end > 0) {
        cg_loop D;
        cg_loop_begin(c, &D, I(g, 0), I(g, main_end), I(g, W), 0, NULL);
        LLVMValueRef in[16], out[16];
        for (int p = 0; p < P; p++) in[p] = load_vec(g, data, add(g, add(g, tb[p], hoff), D.iv));
        interleave(g, in, P, out);
        for (int o = 0; o < P; o++) cg_vstore(c, out[o], fptr(g, dg, add(g, mul(g, D.iv, I(g, P)), I(g, (int64_t)o * W))));
        cg_loop_end(c, &D, NULL);
    }
    for (int d = main_end; d < ncols; d++)
        for (int p = 0; p < P; p++)
            stf(g, load_elem(g, data, add(g, add(g, tb[p], hoff), I(g, d))), fptr(g, dg, I(g, (int64_t)d * P + p)));
    LLVMBuildBr(BLD, join);
    LLVMPositionBuilderAtEnd(BLD, sc_bb);
    cg_loop D2;
    cg_loop_begin(c, &D2, I(g, 0), I(g, ncols), I(g, 1), 0, NULL);
    for (int p = 0; p < P; p++)
        stf(g, load_elem(g, data, add(g, add(g, tb[p], hoff), mul(g, D2.iv, s3))),
            fptr(g, dg, add(g, mul(g, D2.iv, I(g, P)), I(g, p))));
    cg_loop_end(c, &D2, NULL);
    LLVMBuildBr(BLD, join);
    LLVMPositionBuilderAtEnd(BLD, join);
    cg_loop_end(c, &H, NULL);
    cg_loop_end(c, &G, NULL);
    LLVMBuildRetVoid(BLD);
    return fn;
}

/* Arguments of the S block for kv head h over staged K rows kst_h (row stride d_qk). */
static void head_sargs(kgen *g, LLVMValueRef *sa, LLVMValueRef A, LLVMValueRef PL, LLVMValueRef S, LLVMValueRef ts,
                       LLVMValueRef hs, LLVMValueRef b, LLVMValueRef h, LLVMValueRef hk, LLVMValueRef pos0,
                       LLVMValueRef k0, LLVMValueRef nk, LLVMValueRef rows) {
    sa[SB_A] = A; sa[SB_PL] = PL; sa[SB_S] = S;
    sa[SB_K] = fptr(g, fptr(g, ts, I(g, g->off_kst)), hk); sa[SB_KRS] = I(g, g->dq);
    sa[SB_K2] = fptr(g, fptr(g, ts, I(g, g->off_kst2)), hk);
    sa[SB_NK] = nk;
    sa[SB_QT] = fptr(g, hs, I(g, g->off_qT)); sa[SB_QT2] = fptr(g, hs, I(g, g->off_qT2));
    sa[SB_ST] = fptr(g, ts, I(g, g->off_sT));
    sa[SB_M] = fptr(g, hs, I(g, g->off_m)); sa[SB_L] = fptr(g, hs, I(g, g->off_l));
    sa[SB_ALPHA] = fptr(g, hs, I(g, g->off_alpha));
    sa[SB_B] = b; sa[SB_H] = h; sa[SB_POS0] = pos0; sa[SB_R0] = I(g, 0); sa[SB_K0] = k0;
    sa[SB_PARTIAL] = cg_true(&g->c);
    sa[SB_ROWS] = rows;
}

static LLVMValueRef head_state(kgen *g, LLVMValueRef ts, LLVMValueRef h, LLVMValueRef h_lo) {
    return fptr(g, ts, add(g, I(g, g->off_heads), mul(g, sub(g, h, h_lo), I(g, g->head_floats))));
}

/* Key blocks [kb_lo, kb_hi) of Bc keys: stage K and V of every kv head of the item into
 * contiguous fp32 rows (that converts dtypes, applies RoPE, reads the [tokens][heads][d]
 * memory in order, and avoids the L1 set conflicts of rows 2^n bytes apart), then run
 * the panels of rows of each head: wide ones, the last overhanging the rows into the
 * padding (R_pad), or narrow ones where the module has no wide panels. */
static void emit_blocked_keys(kgen *g, LLVMValueRef A, LLVMValueRef PL, LLVMValueRef S, LLVMValueRef ts, LLVMValueRef b,
                              LLVMValueRef h_lo, LLVMValueRef h_hi, LLVMValueRef kb_lo, LLVMValueRef kb_hi,
                              LLVMValueRef pos0, LLVMValueRef off, LLVMValueRef Rv, LLVMValueRef rows) {
    cg *c = &g->c;
    LLVMValueRef SK = ld64(g, PL, PL_SK);
    cg_loop KB;
    cg_loop_begin(c, &KB, kb_lo, kb_hi, I(g, 1), 0, NULL);
    LLVMValueRef k0 = mul(g, KB.iv, I(g, g->Bc));
    LLVMValueRef nk = imin(g, I(g, g->Bc), sub(g, SK, k0));
    LLVMValueRef stage_args[9] = { A, PL, S, ts, b, h_lo, h_hi, k0, nk };
    call_void(g, g->f_stage_k, stage_args, 9);
    if (!g->k->v_in_k) call_void(g, g->f_stage_v, stage_args, 9);
    cg_loop H;
    cg_loop_begin(c, &H, h_lo, h_hi, I(g, 1), 0, NULL);
    LLVMValueRef h = H.iv, hs = head_state(g, ts, h, h_lo);
    LLVMValueRef hk = mul(g, sub(g, h, h_lo), I(g, (int64_t)g->Bc * g->dq));
    LLVMValueRef vp = fptr(g, fptr(g, ts, I(g, g->off_kst)), hk), vrs = I(g, g->dq);
    if (!g->k->v_in_k) {
        vp = fptr(g, fptr(g, ts, I(g, g->off_vst)), mul(g, sub(g, h, h_lo), I(g, (int64_t)g->Bc * g->dv)));
        vrs = I(g, g->dv);
    }
    LLVMValueRef sargs[SB_N];
    head_sargs(g, sargs, A, PL, S, ts, hs, b, h, hk, pos0, k0, nk, rows);
    LLVMValueRef oT = fptr(g, hs, I(g, g->off_oT));
    if (g->wide) {
        LLVMValueRef n_wide = cdiv(g, Rv, I(g, g->RPw));
        cg_loop PW;
        cg_loop_begin(c, &PW, I(g, 0), n_wide, I(g, 1), 0, NULL);
        do_panel(g, V_WIDE, sargs, mul(g, PW.iv, I(g, g->RPw)), Rv, pos0, off, k0, nk, g->Bc, oT, vp, vrs);
        cg_loop_end(c, &PW, NULL);
    } else {
        cg_loop PN;
        cg_loop_begin(c, &PN, I(g, 0), Rv, I(g, g->W), 0, NULL);
        do_panel(g, V_NARROW, sargs, PN.iv, Rv, pos0, off, k0, nk, g->Bc, oT, vp, vrs);
        cg_loop_end(c, &PN, NULL);
    }
    cg_loop_end(c, &H, NULL);
    cg_loop_end(c, &KB, NULL);
}

/* Keys [key_lo, key_hi) of a packed (one query position) item, in sub-blocks of Bd keys,
 * so what is staged for every kv head stays in L2 while the heads use it (a Bc block of
 * 8 heads of d 128 is 786 KB of K and V, more than L2). Direct: V is staged, and K only
 * with RoPE (rotated). Interleaved (no direct kernels): without RoPE the rows are
 * converted and interleaved in one pass straight from the tensor; with it they are
 * staged, rotated and then packed. */
static void emit_packed_keys(kgen *g, LLVMValueRef A, LLVMValueRef PL, LLVMValueRef S, LLVMValueRef ts, LLVMValueRef b,
                             LLVMValueRef h_lo, LLVMValueRef h_hi, LLVMValueRef key_lo, LLVMValueRef key_hi,
                             LLVMValueRef pos0, LLVMValueRef off, LLVMValueRef Rv, LLVMValueRef prow) {
    cg *c = &g->c;
    if (g->direct) {
        /* Direct: K is read in place by the S kernel (with RoPE: its rotated rows, staged
         * as fp32); V rows of every head are staged as fp32 (reading the [tokens][heads][d]
         * memory in order) for the PV passes. */
        cg_loop KB;
        cg_loop_begin(c, &KB, key_lo, key_hi, I(g, g->Bd), 0, NULL);
        LLVMValueRef k0 = KB.iv;
        LLVMValueRef nk = imin(g, I(g, g->Bd), sub(g, key_hi, k0));
        LLVMValueRef stage_args[9] = { A, PL, S, ts, b, h_lo, h_hi, k0, nk };
        if (g->rope) call_void(g, g->f_stage_k, stage_args, 9);
        call_void(g, g->f_stage_v, stage_args, 9);
        cg_loop H;
        cg_loop_begin(c, &H, h_lo, h_hi, I(g, 1), 0, NULL);
        LLVMValueRef h = H.iv, hs = head_state(g, ts, h, h_lo);
        LLVMValueRef hk = g->rope ? mul(g, sub(g, h, h_lo), I(g, (int64_t)g->Bc * g->dq)) : I(g, 0);
        LLVMValueRef pargs[SB_N];
        head_sargs(g, pargs, A, PL, S, ts, hs, b, h, hk, pos0, k0, nk, prow);
        pargs[SB_QT] = fptr(g, hs, I(g, g->off_qn));
        LLVMValueRef vst = fptr(g, fptr(g, ts, I(g, g->off_vst)), mul(g, sub(g, h, h_lo), I(g, (int64_t)g->Bc * g->dv)));
        do_panel(g, V_DIRECT, pargs, I(g, 0), Rv, pos0, off, k0, nk, g->Bd, fptr(g, hs, I(g, g->off_on)), vst, NULL);
        cg_loop_end(c, &H, NULL);
        cg_loop_end(c, &KB, NULL);
        return;
    }
    cg_loop KB;
    cg_loop_begin(c, &KB, key_lo, key_hi, I(g, g->Bd), 0, NULL);
    LLVMValueRef k0 = KB.iv;
    LLVMValueRef nk = imin(g, I(g, g->Bd), sub(g, key_hi, k0));
    if (!g->rope) {
        LLVMValueRef fa[8] = { A, S, ts, b, h_lo, h_hi, k0, nk };
        call_void(g, g->f_stage_pack_k, fa, 8);
        call_void(g, g->f_stage_pack_v, fa, 8);
    } else {
        LLVMValueRef stage_args[9] = { A, PL, S, ts, b, h_lo, h_hi, k0, nk };
        call_void(g, g->f_stage_k, stage_args, 9);
        if (!g->k->v_in_k) call_void(g, g->f_stage_v, stage_args, 9);
    }
    cg_loop H;
    cg_loop_begin(c, &H, h_lo, h_hi, I(g, 1), 0, NULL);
    LLVMValueRef h = H.iv, hs = head_state(g, ts, h, h_lo), hsl = sub(g, h, h_lo);
    LLVMValueRef hk = mul(g, hsl, I(g, (int64_t)g->Bc * g->dq));
    LLVMValueRef kp = fptr(g, fptr(g, ts, I(g, g->off_kp)), mul(g, hsl, I(g, (int64_t)g->pack_rows * g->dq)));
    LLVMValueRef vpk = fptr(g, fptr(g, ts, I(g, g->off_vp)), mul(g, hsl, I(g, (int64_t)g->pack_rows * g->dv)));
    if (g->rope) {
        LLVMValueRef kst_h = fptr(g, fptr(g, ts, I(g, g->off_kst)), hk);
        LLVMValueRef pk_args[4] = { kst_h, I(g, g->dq), nk, kp };
        call_void(g, g->f_pack_k, pk_args, 4);
        LLVMValueRef vp = kst_h, vrs = I(g, g->dq);
        if (!g->k->v_in_k) {
            vp = fptr(g, fptr(g, ts, I(g, g->off_vst)), mul(g, hsl, I(g, (int64_t)g->Bc * g->dv)));
            vrs = I(g, g->dv);
        }
        LLVMValueRef pv_args[4] = { vp, vrs, nk, vpk };
        call_void(g, g->f_pack_v, pv_args, 4);
    }
    LLVMValueRef pargs[SB_N];
    head_sargs(g, pargs, A, PL, S, ts, hs, b, h, hk, pos0, k0, nk, prow);
    pargs[SB_K] = kp;
    do_panel(g, V_PACKED, pargs, I(g, 0), Rv, pos0, off, k0, nk, g->Bd, fptr(g, hs, I(g, g->off_oT)), vpk,
             I(g, (int64_t)g->dv * g->pack));
    cg_loop_end(c, &H, NULL);
    cg_loop_end(c, &KB, NULL);
}

/* void store_rows(A, S, b, pos0, h, m, l, O^T, Rv): the item's finished rows of kv head
 * h (row r is query position pos0 + r / g, head h g + r % g). Optimised: it touches
 * rows x d_v elements, and the item driver that calls it is not. Rows in whole groups
 * of W, where output rows are dense, go a W x W block of O^T at a time, transposed in
 * registers, so each output row is written a vector at a time (scalar, the stores were
 * most of this function's time, 5-7 % of a seq 512-1024 prefill). */
static void emit_store_rows(kgen *g) {
    cg *c = &g->c;
    LLVMTypeRef ps[9] = { g->t_pargs, g->t_pi64, c->t_i64, c->t_i64, c->t_i64, c->t_pf32, c->t_pf32, c->t_pf32, c->t_i64 };
    g->f_rows = cg_function(c, "store_rows", c->t_void, ps, 9, false);
    warm_fn(g, g->f_rows);
    begin_fn(g, g->f_rows);
    LLVMValueRef A = param(g, 0), S = param(g, 1), b = param(g, 2), pos0 = param(g, 3), h = param(g, 4);
    LLVMValueRef m = param(g, 5), l = param(g, 6), oT = param(g, 7), Rv = param(g, 8);
    int W = g->W, so = g->abi.o;
    LLVMValueRef r_scalar = I(g, 0);
    if (g->vec_rows && g->dv % W == 0) {
        LLVMValueRef dense = icmp(g, LLVMIntEQ, stride(g, S, so, 3), I(g, 1));
        r_scalar = sel(g, dense, mul(g, sdiv(g, Rv, I(g, W)), I(g, W)), I(g, 0));
        LLVMValueRef od = slot_data(g, A, so);
        LLVMValueRef obs = entry_alloca(g, c->t_i64, W), invs = entry_alloca(g, c->t_f32, W);
        cg_loop RB;
        cg_loop_begin(c, &RB, I(g, 0), r_scalar, I(g, W), 0, NULL);
        /* Each row's output offset, 1 / l and lse: a rolled loop (W unrolled copies of
         * the row arithmetic and the lse's log cost more to compile than they save). */
        cg_loop J;
        cg_loop_begin(c, &J, I(g, 0), I(g, W), I(g, 1), 0, NULL);
        LLVMValueRef r = add(g, RB.iv, J.iv);
        LLVMValueRef pos = add(g, pos0, sdiv(g, r, I(g, g->G)));
        LLVMValueRef head = add(g, mul(g, h, I(g, g->G)), srem(g, r, I(g, g->G)));
        LLVMValueRef lv = ldf(g, fptr(g, l, r));
        LLVMValueRef has = LLVMBuildFCmp(BLD, LLVMRealOGT, lv, cg_f32(c, 0.0), "");
        stf(g, sel(g, has, LLVMBuildFDiv(BLD, cg_f32(c, 1.0), lv, ""), cg_f32(c, 0.0)), fptr(g, invs, J.iv));
        cg_store(c, row_base(g, S, so, b, pos, head), cg_gep(c, c->t_i64, obs, J.iv), 8);
        store_row_lse(g, A, S, b, pos, head, ldf(g, fptr(g, m, r)), lv);
        cg_loop_end(c, &J, NULL);
        cg_loop D;
        cg_loop_begin(c, &D, I(g, 0), I(g, g->dv), I(g, W), 0, NULL);
        LLVMValueRef v[64];
        for (int i = 0; i < W; i++)
            v[i] = ldv(g, fptr(g, oT, add(g, mul(g, add(g, D.iv, I(g, i)), I(g, g->R_pad)), RB.iv)));
        cg_transpose(c, v);
        for (int j = 0; j < W; j++)
            store_elem(g, vfmul(g, v[j], cg_splat(c, ldf(g, fptr(g, invs, I(g, j))))), od, add(g, ld64(g, obs, j), D.iv));
        cg_loop_end(c, &D, NULL);
        cg_loop_end(c, &RB, NULL);
    }
    cg_loop R;
    cg_loop_begin(c, &R, r_scalar, Rv, I(g, 1), 0, NULL);
    LLVMValueRef r = R.iv;
    LLVMValueRef pos = add(g, pos0, sdiv(g, r, I(g, g->G)));
    LLVMValueRef head = add(g, mul(g, h, I(g, g->G)), srem(g, r, I(g, g->G)));
    LLVMValueRef lv = ldf(g, fptr(g, l, r)), mv = ldf(g, fptr(g, m, r));
    LLVMValueRef has = LLVMBuildFCmp(BLD, LLVMRealOGT, lv, cg_f32(c, 0.0), "");
    LLVMValueRef inv = sel(g, has, LLVMBuildFDiv(BLD, cg_f32(c, 1.0), lv, ""), cg_f32(c, 0.0));
    store_row_output(g, A, S, b, pos, head, mv, lv, fptr(g, oT, r), I(g, g->R_pad), inv);
    cg_loop_end(c, &R, NULL);
    LLVMBuildRetVoid(BLD);
}

/* void compute_item(A, PL, S, item, thread): one (q-block, batch, kv heads, key split).
 * Not optimised (its O3 and instruction selection cost a third of a module's compile
 * time): it only sequences the calls, and what touches many elements is a call too. */
static void emit_compute(kgen *g) {
    cg *c = &g->c;
    const ir_kernel *k = g->k;
    LLVMTypeRef ps[5] = { g->t_pargs, g->t_pi64, g->t_pi64, c->t_i64, c->t_i64 };
    g->f_compute = cg_function(c, "compute_item", c->t_void, ps, 5, false);
    cold_fn(g, g->f_compute);
    begin_fn(g, g->f_compute);
    LLVMValueRef A = param(g, 0), PL = param(g, 1), S = param(g, 2), item = param(g, 3), thread = param(g, 4);
    LLVMValueRef B = ld64(g, PL, PL_B), SQ = ld64(g, PL, PL_SQ), SK = ld64(g, PL, PL_SK), off = ld64(g, PL, PL_OFF);
    LLVMValueRef nq = ld64(g, PL, PL_NQ), nkb = ld64(g, PL, PL_NKB), nsplit = ld64(g, PL, PL_NSPLIT);
    LLVMValueRef chunk = ld64(g, PL, PL_CHUNK), HG = ld64(g, PL, PL_HG);
    /* item -> (batch; group of HG kv heads; split; q-block, heavy first). Q-blocks are
     * innermost so that the threads sweep one head's K/V together while it is in the
     * last-level cache (with q-blocks outermost, each q-block read every head's K/V from
     * DRAM again). */
    LLVMValueRef hs_n = mul(g, sdiv(g, I(g, g->HKV), HG), nsplit);
    LLVMValueRef qb = sub(g, sub(g, nq, I(g, 1)), srem(g, item, nq));
    LLVMValueRef rest = sdiv(g, item, nq);
    LLVMValueRef b = sdiv(g, rest, hs_n), rem2 = srem(g, rest, hs_n);
    LLVMValueRef h_lo = mul(g, sdiv(g, rem2, nsplit), HG), sp = srem(g, rem2, nsplit);
    LLVMValueRef h_hi = add(g, h_lo, HG);
    LLVMValueRef pos0 = mul(g, qb, I(g, g->Br));
    LLVMValueRef npos = imin(g, I(g, g->Br), sub(g, SQ, pos0));
    LLVMValueRef Rv = mul(g, npos, I(g, g->G));
    LLVMValueRef Rused = imin(g, I(g, g->R_pad), mul(g, cdiv(g, Rv, I(g, g->RPw)), I(g, g->RPw)));
    LLVMValueRef ts = cg_bitcast_ptr(c, ws_bytes_ptr(g, A, mul(g, thread, I(g, g->T_floats * 4))), c->t_pf32);
    LLVMValueRef rows = cg_bitcast_ptr(c, fptr(g, ts, I(g, g->off_rows)), g->t_pi64);
    {
        cg_loop R;
        cg_loop_begin(c, &R, I(g, 0), I(g, g->R_pad), I(g, 1), 0, NULL);
        cg_store(c, add(g, add(g, pos0, off), sdiv(g, R.iv, I(g, g->G))), cg_gep(c, c->t_i64, rows, R.iv), 8);
        cg_store(c, srem(g, R.iv, I(g, g->G)), cg_gep(c, c->t_i64, rows, add(g, R.iv, I(g, g->R_pad))), 8);
        cg_loop_end(c, &R, NULL);
    }
    /* Packed decode: one query position, lane = row * pack + key parity. */
    LLVMValueRef packed = LLVMConstInt(c->t_i1, 0, 0);
    LLVMValueRef prow = cg_gep(c, c->t_i64, rows, I(g, 2 * (int64_t)g->R_pad));
    LLVMValueRef direct = LLVMConstInt(c->t_i1, 0, 0);
    if (g->pack > 1) {
        packed = icmp(g, LLVMIntEQ, npos, I(g, 1));
        if (g->direct) {
            /* The direct kernels read dense rows; other views take the blocked path. */
            packed = LLVMBuildAnd(BLD, packed, LLVMBuildAnd(BLD, icmp(g, LLVMIntEQ, stride(g, S, g->abi.k, 3), I(g, 1)),
                                                            icmp(g, LLVMIntEQ, stride(g, S, g->abi.v, 3), I(g, 1)), ""), "");
            direct = packed;
        }
        for (int lane = 0; lane < g->W; lane++) {
            cg_store(c, add(g, pos0, off), cg_gep(c, c->t_i64, prow, I(g, lane)), 8);
            cg_store(c, I(g, lane / g->pack), cg_gep(c, c->t_i64, prow, I(g, g->W + lane)), 8);
            cg_store(c, I(g, lane % g->pack), cg_gep(c, c->t_i64, prow, I(g, 2 * g->W + lane)), 8);
        }
    }

    /* Per head: Q^T staged, m = -inf, l = 0, O^T = 0 on the rows panels touch. */
    {
        cg_loop H;
        cg_loop_begin(c, &H, h_lo, h_hi, I(g, 1), 0, NULL);
        LLVMValueRef hs = head_state(g, ts, H.iv, h_lo);
        LLVMValueRef sq_args[9] = { A, PL, S, ts, hs, b, H.iv, pos0, npos };
        call_void(g, g->f_stage_q, sq_args, 9);
        if (g->pack > 1) {
            /* Each row's Q^T column repeated in its `pack` lanes. */
            LLVMBasicBlockRef jp = cg_if_begin(c, packed);
            LLVMValueRef mask[64];
            for (int lane = 0; lane < g->W; lane++) mask[lane] = cg_i32(c, lane / g->pack);
            LLVMValueRef qT = fptr(g, hs, I(g, g->off_qT));
            cg_loop D;
            cg_loop_begin(c, &D, I(g, 0), I(g, g->dq), I(g, 1), 0, NULL);
            LLVMValueRef at = fptr(g, qT, mul(g, D.iv, I(g, g->R_pad)));
            LLVMValueRef v = cg_vload(c, at);
            cg_vstore(c, LLVMBuildShuffleVector(BLD, v, LLVMGetUndef(c->t_vf), LLVMConstVector(mask, (unsigned)g->W), ""), at);
            cg_loop_end(c, &D, NULL);
            cg_if_end(c, jp);
        }
        if (g->direct) {
            /* Q rows [G2][d_qk] (padding rows 0; row r is lane r * pack of the repeated
             * Q^T above) and O = 0 for the direct path. */
            LLVMBasicBlockRef jd = cg_if_begin(c, direct);
            LLVMValueRef qT = fptr(g, hs, I(g, g->off_qT)), qn = fptr(g, hs, I(g, g->off_qn));
            LLVMValueRef on = fptr(g, hs, I(g, g->off_on));
            cg_loop D;
            cg_loop_begin(c, &D, I(g, 0), I(g, g->dq), I(g, 1), 0, NULL);
            for (int r = 0; r < g->G2; r++) {
                LLVMValueRef v = r < g->G ? ldf(g, fptr(g, qT, add(g, mul(g, D.iv, I(g, g->R_pad)), I(g, (int64_t)r * g->pack)))) : cg_f32(c, 0.0);
                stf(g, v, fptr(g, qn, add(g, I(g, (int64_t)r * g->dq), D.iv)));
            }
            cg_loop_end(c, &D, NULL);
            cg_loop Z;
            cg_loop_begin(c, &Z, I(g, 0), I(g, (int64_t)g->G * g->dv), I(g, 1), 0, NULL);
            stf(g, cg_f32(c, 0.0), fptr(g, on, Z.iv));
            cg_loop_end(c, &Z, NULL);
            cg_if_end(c, jd);
        }
        LLVMValueRef m = fptr(g, hs, I(g, g->off_m)), l = fptr(g, hs, I(g, g->off_l)), oT = fptr(g, hs, I(g, g->off_oT));
        cg_loop L;
        cg_loop_begin(c, &L, I(g, 0), Rused, I(g, 1), 0, NULL);
        stf(g, cg_f32(c, -INFINITY), fptr(g, m, L.iv));
        stf(g, cg_f32(c, 0.0), fptr(g, l, L.iv));
        cg_loop_end(c, &L, NULL);
        cg_loop D;
        cg_loop_begin(c, &D, I(g, 0), I(g, g->dv), I(g, 1), 0, NULL);
        LLVMValueRef orow = cg_bitcast_ptr(c, fptr(g, oT, mul(g, D.iv, I(g, g->R_pad))), c->t_pi8);
        LLVMBuildMemSet(BLD, orow, LLVMConstInt(c->t_i8, 0, 0), mul(g, Rused, I(g, 4)), 4);
        cg_loop_end(c, &D, NULL);
        cg_loop_end(c, &H, NULL);
    }

    /* Key blocks of this split, cut to the mask band of the item's q range. */
    LLVMValueRef kb_lo = mul(g, sp, chunk), kb_hi = imin(g, nkb, add(g, kb_lo, chunk));
    const ir_mask_band *band = &k->band;
    LLVMValueRef qa = add(g, pos0, off), qz = sub(g, add(g, add(g, pos0, npos), off), I(g, 1));
    if (band->has_band && band->band_hi != INT64_MAX) {
        LLVMValueRef kmin = imax(g, sub(g, qa, I(g, band->band_hi)), I(g, 0));
        kb_lo = imax(g, kb_lo, sdiv(g, kmin, I(g, g->Bc)));
    }
    if (band->has_band && band->band_lo != INT64_MIN) {
        LLVMValueRef kmax = sub(g, qz, I(g, band->band_lo));
        LLVMValueRef lim = sel(g, icmp(g, LLVMIntSLT, kmax, I(g, 0)), I(g, 0), add(g, sdiv(g, kmax, I(g, g->Bc)), I(g, 1)));
        kb_hi = imin(g, kb_hi, lim);
    }
    if (g->mask_false) kb_hi = kb_lo;

    if (g->pack > 1) {
        LLVMBasicBlockRef pk = cg_block(c, "packed_keys"), bl = cg_block(c, "blocked_keys"), kdone = cg_block(c, "keys_done");
        LLVMBuildCondBr(BLD, packed, pk, bl);
        LLVMPositionBuilderAtEnd(BLD, pk);
        emit_packed_keys(g, A, PL, S, ts, b, h_lo, h_hi, mul(g, kb_lo, I(g, g->Bc)), imin(g, SK, mul(g, kb_hi, I(g, g->Bc))),
                         pos0, off, Rv, prow);
        LLVMBuildBr(BLD, kdone);
        LLVMPositionBuilderAtEnd(BLD, bl);
        emit_blocked_keys(g, A, PL, S, ts, b, h_lo, h_hi, kb_lo, kb_hi, pos0, off, Rv, rows);
        LLVMBuildBr(BLD, kdone);
        LLVMPositionBuilderAtEnd(BLD, kdone);
    } else {
        emit_blocked_keys(g, A, PL, S, ts, b, h_lo, h_hi, kb_lo, kb_hi, pos0, off, Rv, rows);
    }

    /* Finish each head: normalised rows, or this split's partial state for the merge. */
    cg_loop HF;
    cg_loop_begin(c, &HF, h_lo, h_hi, I(g, 1), 0, NULL);
    LLVMValueRef h = HF.iv;
    LLVMValueRef hs = head_state(g, ts, h, h_lo);
    LLVMValueRef m = fptr(g, hs, I(g, g->off_m)), l = fptr(g, hs, I(g, g->off_l));
    LLVMValueRef oT = fptr(g, hs, I(g, g->off_oT));
    if (g->direct) {
        /* Direct: the lanes of a row share m; l sums them, O[r] becomes column r of O^T
         * (in place as below). The staged fold then sees one lane per row. */
        LLVMBasicBlockRef jd = cg_if_begin(c, direct);
        LLVMValueRef on = fptr(g, hs, I(g, g->off_on));
        cg_loop R;
        cg_loop_begin(c, &R, I(g, 0), Rv, I(g, 1), 0, NULL);
        LLVMValueRef l0 = mul(g, R.iv, I(g, g->pack));
        LLVMValueRef M = ldf(g, fptr(g, m, l0)), L = cg_f32(c, 0.0);
        for (int p = 0; p < g->pack; p++) L = vfadd(g, L, ldf(g, fptr(g, l, add(g, l0, I(g, p)))));
        cg_loop D;
        cg_loop_begin(c, &D, I(g, 0), I(g, g->dv), I(g, 1), 0, NULL);
        stf(g, ldf(g, fptr(g, on, add(g, mul(g, R.iv, I(g, g->dv)), D.iv))), fptr(g, oT, add(g, mul(g, D.iv, I(g, g->R_pad)), R.iv)));
        cg_loop_end(c, &D, NULL);
        stf(g, M, fptr(g, m, R.iv));
        stf(g, L, fptr(g, l, R.iv));
        cg_loop_end(c, &R, NULL);
        cg_if_end(c, jd);
    }
    if (g->pack > 1 && !g->direct) {
        /* Fold the `pack` lanes of each row into the row (a log-sum-exp merge in place:
         * row r < lane r * pack, so only lanes already folded are overwritten). */
        LLVMBasicBlockRef jf = cg_if_begin(c, packed);
        LLVMValueRef wbuf = fptr(g, ts, I(g, g->off_w));
        cg_loop R;
        cg_loop_begin(c, &R, I(g, 0), Rv, I(g, 1), 0, NULL);
        LLVMValueRef l0 = mul(g, R.iv, I(g, g->pack));
        LLVMValueRef M = cg_f32(c, -INFINITY);
        for (int p = 0; p < g->pack; p++) M = cg_fmax(c, M, ldf(g, fptr(g, m, add(g, l0, I(g, p)))));
        LLVMValueRef mu = sel(g, LLVMBuildFCmp(BLD, LLVMRealOEQ, M, cg_f32(c, -INFINITY), ""), cg_f32(c, 0.0), M);
        LLVMValueRef L = cg_f32(c, 0.0);
        for (int p = 0; p < g->pack; p++) {
            LLVMValueRef w = vm_exp2_softmax(c, vfsub(g, ldf(g, fptr(g, m, add(g, l0, I(g, p)))), mu));
            stf(g, w, fptr(g, wbuf, I(g, p)));
            L = cg_fma(c, w, ldf(g, fptr(g, l, add(g, l0, I(g, p)))), L);
        }
        cg_loop D;
        cg_loop_begin(c, &D, I(g, 0), I(g, g->dv), I(g, 1), 0, NULL);
        LLVMValueRef orow = fptr(g, oT, mul(g, D.iv, I(g, g->R_pad)));
        LLVMValueRef acc = cg_f32(c, 0.0);
        for (int p = 0; p < g->pack; p++)
            acc = cg_fma(c, ldf(g, fptr(g, wbuf, I(g, p))), ldf(g, fptr(g, orow, add(g, l0, I(g, p)))), acc);
        stf(g, acc, fptr(g, orow, R.iv));
        cg_loop_end(c, &D, NULL);
        stf(g, M, fptr(g, m, R.iv));
        stf(g, L, fptr(g, l, R.iv));
        cg_loop_end(c, &R, NULL);
        cg_if_end(c, jf);
    }
    LLVMBasicBlockRef whole = cg_block(c, "whole"), partial = cg_block(c, "partial"), done = cg_block(c, "done");
    LLVMBuildCondBr(BLD, icmp(g, LLVMIntEQ, nsplit, I(g, 1)), whole, partial);
    LLVMPositionBuilderAtEnd(BLD, whole);
    LLVMValueRef rows_args[9] = { A, S, b, pos0, h, m, l, oT, Rv };
    call_void(g, g->f_rows, rows_args, 9);
    LLVMBuildBr(BLD, done);
    LLVMPositionBuilderAtEnd(BLD, partial);
    {
        LLVMValueRef slot = add(g, mul(g, add(g, mul(g, add(g, mul(g, qb, B), b), I(g, g->HKV)), h), nsplit), sp);
        int64_t slot_bytes = (int64_t)(2 + g->dv) * g->R_pad * 4;
        LLVMValueRef dst = ws_bytes_ptr(g, A, add(g, ld64(g, PL, PL_PARTOFF), mul(g, slot, I(g, slot_bytes))));
        LLVMValueRef srcs[3] = { m, l, oT };
        int64_t sizes[3] = { (int64_t)g->R_pad * 4, (int64_t)g->R_pad * 4, (int64_t)g->dv * g->R_pad * 4 };
        int64_t at = 0;
        for (int i = 0; i < 3; i++) {
            LLVMValueRef d = LLVMBuildInBoundsGEP2(BLD, c->t_i8, dst, (LLVMValueRef[]){ I(g, at) }, 1, "");
            LLVMBuildMemCpy(BLD, d, 4, cg_bitcast_ptr(c, srcs[i], c->t_pi8), 4, I(g, sizes[i]));
            at += sizes[i];
        }
    }
    LLVMBuildBr(BLD, done);
    LLVMPositionBuilderAtEnd(BLD, done);
    cg_loop_end(c, &HF, NULL);
    LLVMBuildRetVoid(BLD);
}

/* void merge_item(A, PL, S, item, thread): combines the splits of one (q-block, batch,
 * kv head): m = max m_s, w_s = 2^(m_s - m), o = sum w_s O_s / sum w_s l_s. */
static void emit_merge(kgen *g) {
    cg *c = &g->c;
    LLVMTypeRef ps[5] = { g->t_pargs, g->t_pi64, g->t_pi64, c->t_i64, c->t_i64 };
    g->f_merge = cg_function(c, "merge_item", c->t_void, ps, 5, false);
    cold_fn(g, g->f_merge);
    begin_fn(g, g->f_merge);
    LLVMValueRef A = param(g, 0), PL = param(g, 1), S = param(g, 2), item = param(g, 3), thread = param(g, 4);
    LLVMValueRef B = ld64(g, PL, PL_B), SQ = ld64(g, PL, PL_SQ), nq = ld64(g, PL, PL_NQ), nsplit = ld64(g, PL, PL_NSPLIT);
    LLVMValueRef per = mul(g, B, I(g, g->HKV));
    LLVMValueRef qb = sub(g, sub(g, nq, I(g, 1)), sdiv(g, item, per));
    LLVMValueRef rem = srem(g, item, per);
    LLVMValueRef b = sdiv(g, rem, I(g, g->HKV)), h = srem(g, rem, I(g, g->HKV));
    LLVMValueRef pos0 = mul(g, qb, I(g, g->Br));
    LLVMValueRef npos = imin(g, I(g, g->Br), sub(g, SQ, pos0));
    LLVMValueRef Rv = mul(g, npos, I(g, g->G));
    LLVMValueRef ts = cg_bitcast_ptr(c, ws_bytes_ptr(g, A, mul(g, thread, I(g, g->T_floats * 4))), c->t_pf32);
    LLVMValueRef wbuf = fptr(g, ts, I(g, g->off_w));
    int64_t slot_floats = (int64_t)(2 + g->dv) * g->R_pad;
    LLVMValueRef slot0 = mul(g, add(g, mul(g, add(g, mul(g, qb, B), b), I(g, g->HKV)), h), nsplit);
    LLVMValueRef part = cg_bitcast_ptr(c, ws_bytes_ptr(g, A, add(g, ld64(g, PL, PL_PARTOFF), mul(g, slot0, I(g, slot_floats * 4)))), c->t_pf32);
    LLVMValueRef SF = I(g, slot_floats);

    cg_loop R;
    cg_loop_begin(c, &R, I(g, 0), Rv, I(g, 1), 0, NULL);
    LLVMValueRef r = R.iv;
    LLVMValueRef init_m = cg_f32(c, -INFINITY);
    cg_loop M1;
    cg_loop_begin(c, &M1, I(g, 0), nsplit, I(g, 1), 1, &init_m);
    LLVMValueRef ms = ldf(g, fptr(g, part, add(g, mul(g, M1.iv, SF), r)));
    LLVMValueRef mx = cg_fmax(c, M1.carried[0], ms);
    cg_loop_end(c, &M1, &mx);
    LLVMValueRef M = M1.carried[0];
    LLVMValueRef mu = sel(g, LLVMBuildFCmp(BLD, LLVMRealOEQ, M, cg_f32(c, -INFINITY), ""), cg_f32(c, 0.0), M);
    LLVMValueRef init_l = cg_f32(c, 0.0);
    cg_loop M2;
    cg_loop_begin(c, &M2, I(g, 0), nsplit, I(g, 1), 1, &init_l);
    LLVMValueRef sb = add(g, mul(g, M2.iv, SF), r);
    LLVMValueRef w = vm_exp2_softmax(c, vfsub(g, ldf(g, fptr(g, part, sb)), mu));
    stf(g, w, fptr(g, wbuf, M2.iv));
    LLVMValueRef lsum = cg_fma(c, w, ldf(g, fptr(g, part, add(g, sb, I(g, g->R_pad)))), M2.carried[0]);
    cg_loop_end(c, &M2, &lsum);
    LLVMValueRef L = M2.carried[0];
    LLVMValueRef has = LLVMBuildFCmp(BLD, LLVMRealOGT, L, cg_f32(c, 0.0), "");
    LLVMValueRef inv = sel(g, has, LLVMBuildFDiv(BLD, cg_f32(c, 1.0), L, ""), cg_f32(c, 0.0));
    /* Combined row into the sT scratch (contiguous), then written like a whole item. */
    LLVMValueRef row = fptr(g, ts, I(g, g->off_sT));
    cg_loop D;
    cg_loop_begin(c, &D, I(g, 0), I(g, g->dv), I(g, 1), 0, NULL);
    LLVMValueRef zero = cg_f32(c, 0.0);
    cg_loop M3;
    cg_loop_begin(c, &M3, I(g, 0), nsplit, I(g, 1), 1, &zero);
    LLVMValueRef ov = ldf(g, fptr(g, part, add(g, add(g, mul(g, M3.iv, SF), I(g, 2 * (int64_t)g->R_pad)),
                                               add(g, mul(g, D.iv, I(g, g->R_pad)), r))));
    LLVMValueRef acc = cg_fma(c, ldf(g, fptr(g, wbuf, M3.iv)), ov, M3.carried[0]);
    cg_loop_end(c, &M3, &acc);
    stf(g, M3.carried[0], fptr(g, row, D.iv));
    cg_loop_end(c, &D, NULL);
    LLVMValueRef pos = add(g, pos0, sdiv(g, r, I(g, g->G)));
    LLVMValueRef head = add(g, mul(g, h, I(g, g->G)), srem(g, r, I(g, g->G)));
    store_row_output(g, A, S, b, pos, head, M, L, row, I(g, 1), inv);
    cg_loop_end(c, &R, NULL);
    LLVMBuildRetVoid(BLD);
}

/* ---------------------------------------------------------------- exported functions */

static LLVMValueRef plan_and_strides(kgen *g, LLVMValueRef A, LLVMValueRef *S_out) {
    LLVMValueRef PL = entry_alloca(g, g->c.t_i64, PL_N);
    LLVMValueRef a[3] = { A, PL, NULL };
    call_void(g, g->f_plan, a, 2);
    if (S_out) {
        LLVMValueRef S = entry_alloca(g, g->c.t_i64, g->abi.n_slots * 4);
        a[2] = S;
        call_void(g, g->f_strides, a, 3);
        *S_out = S;
    }
    return PL;
}

static void emit_exports(kgen *g) {
    cg *c = &g->c;
    char name[256];
    /* int64_t attnc_NAME_workspace_size(const args *) */
    cpu_symbol(g->k, "_workspace_size", name, sizeof name);
    LLVMValueRef fw = cg_function(c, name, c->t_i64, &g->t_pargs, 1, true);
    cold_fn(g, fw);
    begin_fn(g, fw);
    LLVMBuildRet(BLD, ld64(g, plan_and_strides(g, param(g, 0), NULL), PL_WS));

    /* int64_t attnc_NAME_num_items(const args *, int32_t phase) */
    cpu_symbol(g->k, "_num_items", name, sizeof name);
    LLVMTypeRef pn[2] = { g->t_pargs, c->t_i32 };
    LLVMValueRef fn_n = cg_function(c, name, c->t_i64, pn, 2, true);
    cold_fn(g, fn_n);
    begin_fn(g, fn_n);
    {
        LLVMValueRef PL = plan_and_strides(g, param(g, 0), NULL);
        LLVMValueRef ph = param(g, 1);
        LLVMValueRef v = I(g, 0);
        for (int p = 0; p < CPU_PHASES; p++)
            v = sel(g, LLVMBuildICmp(BLD, LLVMIntEQ, ph, cg_i32(c, p), ""), ld64(g, PL, PL_ITEMS0 + p), v);
        LLVMBuildRet(BLD, v);
    }

    /* void attnc_NAME_run_items(const args *, int32_t phase, int64_t begin, int64_t end, int32_t thread) */
    cpu_symbol(g->k, "_run_items", name, sizeof name);
    LLVMTypeRef pr[5] = { g->t_pargs, c->t_i32, c->t_i64, c->t_i64, c->t_i32 };
    LLVMValueRef fr = cg_function(c, name, c->t_void, pr, 5, true);
    cold_fn(g, fr);
    begin_fn(g, fr);
    {
        LLVMValueRef A = param(g, 0), S;
        LLVMValueRef PL = plan_and_strides(g, A, &S);
        LLVMValueRef thread = LLVMBuildSExt(BLD, param(g, 4), c->t_i64, "");
        LLVMValueRef fns[3] = { g->f_table, g->f_compute, g->f_merge };
        LLVMBasicBlockRef out = cg_block(c, "out");
        LLVMBasicBlockRef cases[3];
        for (int p = 0; p < 3; p++) cases[p] = cg_block(c, "phase");
        LLVMValueRef sw = LLVMBuildSwitch(BLD, param(g, 1), out, 3);
        for (int p = 0; p < 3; p++) {
            LLVMAddCase(sw, cg_i32(c, p), cases[p]);
            LLVMPositionBuilderAtEnd(BLD, cases[p]);
            cg_loop L;
            cg_loop_begin(c, &L, param(g, 2), imin(g, param(g, 3), ld64(g, PL, PL_ITEMS0 + p)), I(g, 1), 0, NULL);
            LLVMValueRef a5[5] = { A, PL, S, L.iv, thread };
            call_void(g, fns[p], a5, p == 0 ? 4 : 5);
            cg_loop_end(c, &L, NULL);
            LLVMBuildBr(BLD, out);
        }
        LLVMPositionBuilderAtEnd(BLD, out);
        LLVMBuildRetVoid(BLD);
    }

    /* int32_t attnc_NAME(args *): validates, allocates the workspace if none is given,
     * runs every phase on the calling thread. */
    cpu_symbol(g->k, "", name, sizeof name);
    LLVMValueRef fd = cg_function(c, name, c->t_i32, &g->t_pargs, 1, true);
    cold_fn(g, fd);
    begin_fn(g, fd);
    {
        LLVMValueRef A = param(g, 0);
        LLVMBasicBlockRef ok = cg_block(c, "ok");
        LLVMBasicBlockRef fail_null = cg_block(c, "null"), fail_size = cg_block(c, "size");
        LLVMBasicBlockRef fail_ws = cg_block(c, "ws"), fail_pos = cg_block(c, "pos");
        LLVMValueRef any_null = LLVMConstInt(c->t_i1, 0, 0);
        for (int s = 0; s < g->abi.n_slots; s++)
            if (!g->abi.optional[s]) any_null = LLVMBuildOr(BLD, any_null, LLVMBuildIsNull(BLD, slot_data(g, A, s), ""), "");
        LLVMBasicBlockRef c2 = cg_block(c, "sizes");
        LLVMBuildCondBr(BLD, any_null, fail_null, c2);
        LLVMPositionBuilderAtEnd(BLD, c2);
        LLVMValueRef bad_size = LLVMConstInt(c->t_i1, 0, 0);   /* outside [0, IR_MAX_LENGTH], as unsigned */
        for (int f = 0; f < 3; f++)
            bad_size = LLVMBuildOr(BLD, bad_size, icmp(g, LLVMIntUGT, afield(g, A, f, c->t_i64), I(g, IR_MAX_LENGTH)), "");
        LLVMBasicBlockRef c3 = cg_block(c, "positions");
        LLVMBuildCondBr(BLD, bad_size, fail_size, c3);
        LLVMPositionBuilderAtEnd(BLD, c3);
        LLVMValueRef badpos = LLVMConstInt(c->t_i1, 0, 0);
        if (g->explicit_pos) badpos = icmp(g, LLVMIntSGT, afield(g, A, 1, c->t_i64), afield(g, A, 2, c->t_i64));
        LLVMBuildCondBr(BLD, badpos, fail_pos, ok);
        LLVMPositionBuilderAtEnd(BLD, ok);
        LLVMValueRef PL = plan_and_strides(g, A, NULL);
        LLVMValueRef need = ld64(g, PL, PL_WS);
        LLVMValueRef wsf = LLVMBuildStructGEP2(BLD, g->t_args, A, 6, "");
        LLVMValueRef wbf = LLVMBuildStructGEP2(BLD, g->t_args, A, 7, "");
        LLVMValueRef given = cg_load(c, c->t_pi8, wsf, 8);
        LLVMBasicBlockRef own = cg_block(c, "alloc"), check = cg_block(c, "check"), run = cg_block(c, "run");
        LLVMBuildCondBr(BLD, LLVMBuildIsNull(BLD, given, ""), own, check);
        LLVMPositionBuilderAtEnd(BLD, check);
        LLVMBuildCondBr(BLD, icmp(g, LLVMIntSLT, cg_load(c, c->t_i64, wbf, 8), need), fail_ws, run);
        LLVMPositionBuilderAtEnd(BLD, own);
        LLVMValueRef mem = LLVMBuildCall2(BLD, LLVMGlobalGetValueType(g->f_malloc), g->f_malloc,
                                          (LLVMValueRef[]){ add(g, need, I(g, 64)) }, 1, "");
        LLVMBasicBlockRef own_ok = cg_block(c, "alloc_ok");
        LLVMBuildCondBr(BLD, LLVMBuildIsNull(BLD, mem, ""), fail_ws, own_ok);
        LLVMPositionBuilderAtEnd(BLD, own_ok);
        LLVMValueRef mi = LLVMBuildPtrToInt(BLD, mem, c->t_i64, "");
        LLVMValueRef aligned = LLVMBuildAnd(BLD, add(g, mi, I(g, 63)), I(g, ~(int64_t)63), "");
        cg_store(c, LLVMBuildIntToPtr(BLD, aligned, c->t_pi8, ""), wsf, 8);
        cg_store(c, need, wbf, 8);
        LLVMBuildBr(BLD, run);
        LLVMPositionBuilderAtEnd(BLD, run);
        LLVMValueRef owned = LLVMBuildPhi(BLD, c->t_pi8, "");
        LLVMValueRef ov[2] = { LLVMConstNull(c->t_pi8), mem };
        LLVMBasicBlockRef ob[2] = { check, own_ok };
        LLVMAddIncoming(owned, ov, ob, 2);
        for (int p = 0; p < CPU_PHASES; p++) {
            LLVMValueRef a[5] = { A, cg_i32(c, p), I(g, 0), ld64(g, PL, PL_ITEMS0 + p), cg_i32(c, 0) };
            call_void(g, fr, a, 5);
        }
        LLVMBasicBlockRef do_free = cg_block(c, "free"), done = cg_block(c, "done");
        LLVMBuildCondBr(BLD, LLVMBuildIsNull(BLD, owned, ""), done, do_free);
        LLVMPositionBuilderAtEnd(BLD, do_free);
        cg_store(c, LLVMConstNull(c->t_pi8), wsf, 8);
        cg_store(c, I(g, 0), wbf, 8);
        LLVMBuildCall2(BLD, LLVMGlobalGetValueType(g->f_free), g->f_free, &owned, 1, "");
        LLVMBuildBr(BLD, done);
        LLVMPositionBuilderAtEnd(BLD, done);
        LLVMBuildRet(BLD, cg_i32(c, CPU_OK));
        LLVMPositionBuilderAtEnd(BLD, fail_null);
        LLVMBuildRet(BLD, cg_i32(c, CPU_ERR_NULL));
        LLVMPositionBuilderAtEnd(BLD, fail_size);
        LLVMBuildRet(BLD, cg_i32(c, CPU_ERR_SIZE));
        LLVMPositionBuilderAtEnd(BLD, fail_ws);
        LLVMBuildRet(BLD, cg_i32(c, CPU_ERR_WORKSPACE));
        LLVMPositionBuilderAtEnd(BLD, fail_pos);
        LLVMBuildRet(BLD, cg_i32(c, CPU_ERR_POSITIONS));
    }
}

/* ---------------------------------------------------------------- module */

static void emit_globals(kgen *g) {
    cg *c = &g->c;
    const ir_rope *r = &g->k->rope;
    int n = g->P > 0 ? g->P : 1;
    LLVMValueRef fv[1024], av[1024];
    LLVMValueRef *f = n <= 1024 ? fv : NULL, *a = n <= 1024 ? av : NULL;
    for (int j = 0; j < n && f; j++) {
        f[j] = cg_f64(c, g->P > 0 ? r->inv_freq[j] : 0.0);
        a[j] = cg_i32(c, g->P > 0 && r->pair_axis ? r->pair_axis[j] : 0);
    }
    LLVMTypeRef tf = LLVMArrayType(c->t_f64, (unsigned)n), ta = LLVMArrayType(c->t_i32, (unsigned)n);
    g->g_inv_freq = LLVMAddGlobal(c->mod, tf, "rope_inv_freq");
    LLVMSetInitializer(g->g_inv_freq, LLVMConstArray(c->t_f64, f, (unsigned)n));
    g->g_pair_axis = LLVMAddGlobal(c->mod, ta, "rope_pair_axis");
    LLVMSetInitializer(g->g_pair_axis, LLVMConstArray(c->t_i32, a, (unsigned)n));
    LLVMValueRef gs[2] = { g->g_inv_freq, g->g_pair_axis };
    for (int i = 0; i < 2; i++) {
        LLVMSetGlobalConstant(gs[i], 1);
        LLVMSetLinkage(gs[i], LLVMPrivateLinkage);
        LLVMSetUnnamedAddress(gs[i], LLVMGlobalUnnamedAddr);
    }
    LLVMTypeRef mt = LLVMFunctionType(c->t_pi8, &c->t_i64, 1, 0);
    g->f_malloc = LLVMAddFunction(c->mod, "malloc", mt);
    LLVMTypeRef ft = LLVMFunctionType(c->t_void, &c->t_pi8, 1, 0);
    g->f_free = LLVMAddFunction(c->mod, "free", ft);
}

void cpu_kernel_workspace_terms(const ir_kernel *k, const cpu_target *t, int64_t *thread_bytes, int64_t *split_row_bytes,
                                int *positions_per_item) {
    kgen gen;
    memset(&gen, 0, sizeof gen);
    gen.k = k;
    gen.c.tgt = t;
    layout(&gen);
    *thread_bytes = gen.T_floats * 4;
    *split_row_bytes = (int64_t)(2 + gen.dv) * gen.R_pad * 4;
    *positions_per_item = gen.Br;
}

LLVMModuleRef cpu_kernel_emit(const ir_kernel *k, const cpu_target *t, LLVMContextRef ctx, char *err, size_t errlen) {
    const char *why = cpu_kernel_unsupported(k, t);
    if (why) {
        snprintf(err, errlen, "kernel '%s': %s", k->name, why);
        return NULL;
    }
    if (k->rope.layout != IR_ROPE_NONE && k->rope.n_pairs > 1024) {
        snprintf(err, errlen, "kernel '%s': more than 1024 rotary pairs are not supported on the cpu target", k->name);
        return NULL;
    }
    char modname[256];
    cpu_symbol(k, "", modname, sizeof modname);
    LLVMModuleRef mod = LLVMModuleCreateWithNameInContext(modname, ctx);
    kgen gen;
    memset(&gen, 0, sizeof gen);
    kgen *g = &gen;
    g->k = k;
    cg_init(&g->c, ctx, mod, t, k);
    cpu_kernel_abi(k, &g->abi);
    layout(g);
    cg *c = &g->c;
    g->t_args = cg_args_type(c, modname, g->abi.n_slots, &g->t_slot);
    g->t_pargs = LLVMPointerType(g->t_args, 0);
    g->t_pi64 = LLVMPointerType(c->t_i64, 0);

    emit_globals(g);
    emit_plan(g);
    emit_strides(g);
    emit_table(g);
    emit_stage_q(g);
    emit_stage_k(g);
    emit_stage_v(g);
    int first = g->wide ? V_WIDE : V_NARROW, last = g->wide ? V_WIDE : g->pack > 1 && !g->direct ? V_PACKED : V_NARROW;
    for (int v = first; v <= last; v++) {
        emit_s_block(g, v);
        emit_pv(g, v);
    }
    if (g->direct) {
        emit_s_block(g, V_DIRECT);
        emit_pv_direct(g);
    }
    if (g->pack > 1 && !g->direct) {
        if (g->rope) {
            g->f_pack_k = emit_pack(g, g->dq, "pack_k");
            g->f_pack_v = emit_pack(g, g->dv, "pack_v");
        } else {
            g->f_stage_pack_k = emit_stage_pack(g, false);
            g->f_stage_pack_v = emit_stage_pack(g, true);
        }
    }
    emit_store_rows(g);
    emit_compute(g);
    emit_merge(g);
    emit_exports(g);
    cg_dispose(c);

    return cg_verified(mod, k, err, errlen);
}
