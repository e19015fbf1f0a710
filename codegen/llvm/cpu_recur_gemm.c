/* The register-blocked micro-GEMM of the chunkwise recurrence: C (+)= A B over tiles of
 * R rows x NV vectors (12 accumulators on AVX2, 24 on AVX-512), A broadcast element by
 * element, B loaded a vector at a time, the reduction loop unrolled by four with every
 * accumulator an SSA value (phis, no stack). One or two reduction phases feed the same
 * accumulators (O = (Q S) * decay + P V), optionally with a per-row scale between them;
 * causal variants bound the reduction (kk <= row) or the columns (col >= row) per tile.
 * Rows left over after whole tiles run as one shorter tile; columns left over after
 * whole NV-blocks as one narrower block. */
#include <stdio.h>
#include "codegen/llvm/cpu_recur_internal.h"

enum { UNROLL = 4, MAXACC = 64 };

static LLVMValueRef splat_load(rgen *g, LLVMValueRef p) { return cg_splat(&g->c, rldf(g, p)); }

/* One reduction step at kk for a rows x nv block. */
static void step(rgen *g, const rg_phase *ph, LLVMValueRef Ab, LLVMValueRef Bb, LLVMValueRef kk, int rows, int nv,
                 LLVMValueRef *acc) {
    LLVMValueRef bv[8];
    LLVMValueRef brow = rfp(g, Bb, rmul(g, kk, rI(g, ph->b_ks)));
    for (int v = 0; v < nv; v++) bv[v] = cg_vload(&g->c, rfpc(g, brow, (int64_t)v * g->W));
    LLVMValueRef arow = rfp(g, Ab, rmul(g, kk, rI(g, ph->a_ks)));
    for (int r = 0; r < rows; r++) {
        LLVMValueRef a = splat_load(g, rfpc(g, arow, (int64_t)r * ph->a_rs));
        for (int v = 0; v < nv; v++) acc[r * nv + v] = cg_fma(&g->c, a, bv[v], acc[r * nv + v]);
    }
}

static void block(rgen *g, const rg_gemm_spec *s, LLVMValueRef r0, int rows, LLVMValueRef cv, int nv) {
    cg *c = &g->c;
    int n = rows * nv;
    LLVMValueRef acc[MAXACC];
    LLVMValueRef col = rmul(g, cv, rI(g, g->W));
    LLVMValueRef crow = rfp(g, s->Cm, radd(g, rmul(g, r0, rI(g, s->c_rs)), col));
    for (int r = 0; r < rows; r++) {
        LLVMValueRef scale = s->init_scale ? cg_splat(c, s->init_scale) : NULL;
        if (s->init_scale_rows) scale = splat_load(g, rfp(g, s->init_scale_rows, radd(g, r0, rI(g, r))));
        for (int v = 0; v < nv; v++) {
            LLVMValueRef x = LLVMConstNull(c->t_vf);
            if (s->init_load) {
                x = cg_vload(c, rfpc(g, crow, (int64_t)r * s->c_rs + (int64_t)v * g->W));
                if (scale) x = rfmul(g, x, scale);
            }
            acc[r * nv + v] = x;
        }
    }
    for (int p = 0; p < s->n_phases; p++) {
        const rg_phase *ph = &s->ph[p];
        LLVMValueRef K = ph->K;
        if (ph->causal) K = rmin(g, K, radd(g, r0, rI(g, rows)));
        LLVMValueRef Kmain = LLVMBuildAnd(RB(g), K, rI(g, ~(int64_t)(UNROLL - 1)), "");
        LLVMValueRef Ab = rfp(g, ph->A, rmul(g, r0, rI(g, ph->a_rs)));
        LLVMValueRef Bb = rfp(g, ph->B, col);
        cg_loop L;
        cg_loop_begin(c, &L, rI(g, 0), Kmain, rI(g, UNROLL), n, acc);
        LLVMValueRef cur[MAXACC];
        for (int i = 0; i < n; i++) cur[i] = L.carried[i];
        for (int u = 0; u < UNROLL; u++) step(g, ph, Ab, Bb, radd(g, L.iv, rI(g, u)), rows, nv, cur);
        cg_loop_end(c, &L, cur);
        for (int i = 0; i < n; i++) acc[i] = L.carried[i];
        cg_loop R;
        cg_loop_begin(c, &R, Kmain, K, rI(g, 1), n, acc);
        for (int i = 0; i < n; i++) cur[i] = R.carried[i];
        step(g, ph, Ab, Bb, R.iv, rows, nv, cur);
        cg_loop_end(c, &R, cur);
        for (int i = 0; i < n; i++) acc[i] = R.carried[i];
        LLVMValueRef scale = p == 0 ? s->mid_scale : NULL;
        if (p == s->n_phases - 1 && s->post_scale) scale = s->post_scale;
        if (scale) {
            for (int r = 0; r < rows; r++) {
                LLVMValueRef m = splat_load(g, rfp(g, scale, radd(g, r0, rI(g, r))));
                for (int v = 0; v < nv; v++) acc[r * nv + v] = rfmul(g, acc[r * nv + v], m);
            }
        }
    }
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < nv; v++)
            cg_vstore(c, acc[r * nv + v], rfpc(g, crow, (int64_t)r * s->c_rs + (int64_t)v * g->W));
}

static void tile(rgen *g, const rg_gemm_spec *s, LLVMValueRef r0, int rows) {
    int NV = g->NV, nblk = s->nvec / NV, tail = s->nvec % NV;
    if (nblk > 0) {
        LLVMValueRef start = rI(g, 0);
        if (s->causal_cols) start = rmin(g, rdiv(g, r0, rI(g, (int64_t)g->W * NV)), rI(g, nblk));
        cg_loop L;
        cg_loop_begin(&g->c, &L, start, rI(g, nblk), rI(g, 1), 0, NULL);
        block(g, s, r0, rows, rmul(g, L.iv, rI(g, NV)), NV);
        cg_loop_end(&g->c, &L, NULL);
    }
    if (tail) block(g, s, r0, rows, rI(g, (int64_t)nblk * NV), tail);
}

static void gemm_body(rgen *g, const rg_gemm_spec *s) {
    int R = g->R;
    LLVMValueRef Mfull = rmul(g, rdiv(g, s->M, rI(g, R)), rI(g, R));
    cg_loop L;
    cg_loop_begin(&g->c, &L, rI(g, 0), Mfull, rI(g, R), 0, NULL);
    tile(g, s, L.iv, R);
    cg_loop_end(&g->c, &L, NULL);
    /* The rows left over: one tile of exactly that many rows. */
    LLVMBasicBlockRef done = cg_block(&g->c, "rem_done");
    LLVMValueRef sw = LLVMBuildSwitch(RB(g), rsub(g, s->M, Mfull), done, (unsigned)(R - 1));
    for (int r = 1; r < R; r++) {
        LLVMBasicBlockRef bb = cg_block(&g->c, "rem");
        LLVMAddCase(sw, rI(g, r), bb);
        LLVMPositionBuilderAtEnd(RB(g), bb);
        tile(g, s, Mfull, r);
        LLVMBuildBr(RB(g), done);
    }
    LLVMPositionBuilderAtEnd(RB(g), done);
}

/* Each GEMM is a function of its own (shapes and flags constant, operands as
 * parameters): smaller functions for the optimiser, and profiles that name them. */
void rg_gemm(rgen *g, const rg_gemm_spec *s) {
    cg *c = &g->c;
    enum { NP = 12 };
    LLVMTypeRef pf = c->t_pf32, i64 = c->t_i64;
    LLVMTypeRef pt[NP] = { pf, pf, i64, pf, pf, i64, pf, i64, c->t_f32, pf, pf, pf };
    LLVMValueRef av[NP] = {
        s->ph[0].A, s->ph[0].B, s->ph[0].K,
        s->n_phases > 1 ? s->ph[1].A : LLVMConstNull(pf), s->n_phases > 1 ? s->ph[1].B : LLVMConstNull(pf),
        s->n_phases > 1 ? s->ph[1].K : rI(g, 0),
        s->Cm, s->M, s->init_scale ? s->init_scale : cg_f32(c, 1.0),
        s->init_scale_rows ? s->init_scale_rows : LLVMConstNull(pf), s->mid_scale ? s->mid_scale : LLVMConstNull(pf),
        s->post_scale ? s->post_scale : LLVMConstNull(pf) };
    char name[32];
    snprintf(name, sizeof name, "gemm%d", g->n_gemm++);
    LLVMValueRef fn = cg_function(c, name, c->t_void, pt, NP, false);
    cg_fn_attr(c, fn, "noinline");
    for (int i = 0; i < NP; i++)
        if (LLVMGetTypeKind(pt[i]) == LLVMPointerTypeKind) cg_param_attr(c, fn, i, "nocapture");
    LLVMBasicBlockRef back = LLVMGetInsertBlock(RB(g));
    LLVMValueRef caller = c->fn;
    c->fn = fn;
    LLVMPositionBuilderAtEnd(RB(g), LLVMAppendBasicBlockInContext(c->ctx, fn, "entry"));
    rg_gemm_spec in = *s;
    in.ph[0].A = LLVMGetParam(fn, 0);
    in.ph[0].B = LLVMGetParam(fn, 1);
    in.ph[0].K = LLVMGetParam(fn, 2);
    if (s->n_phases > 1) {
        in.ph[1].A = LLVMGetParam(fn, 3);
        in.ph[1].B = LLVMGetParam(fn, 4);
        in.ph[1].K = LLVMGetParam(fn, 5);
    }
    in.Cm = LLVMGetParam(fn, 6);
    in.M = LLVMGetParam(fn, 7);
    in.init_scale = s->init_scale ? LLVMGetParam(fn, 8) : NULL;
    in.init_scale_rows = s->init_scale_rows ? LLVMGetParam(fn, 9) : NULL;
    in.mid_scale = s->mid_scale ? LLVMGetParam(fn, 10) : NULL;
    in.post_scale = s->post_scale ? LLVMGetParam(fn, 11) : NULL;
    gemm_body(g, &in);
    LLVMBuildRetVoid(RB(g));
    c->fn = caller;
    LLVMPositionBuilderAtEnd(RB(g), back);
    LLVMBuildCall2(RB(g), LLVMGlobalGetValueType(fn), fn, av, NP, "");
}
