/* One chunk of the chunkwise parallel form (tokens [c0, c0 + L), L <= C; rows past L are
 * zero padding with decay 1), in two parts: what the heads of a group share (q and k,
 * staged once; for scalar decays also the raw scores), then each head. With A_t the
 * cumulative log2-decay from the chunk start:
 *   O_t   = 2^(A_t) (q_t S_prev) + sum_{i<=t} (q_t . k_i) 2^(A_t - A_i) v_i
 *   S_new = 2^(A_end) S_prev + sum_i k_i^T 2^(A_end - A_i) v_i
 * Scalar decays (none / per head / per token and head): ScT = K Q^T on the causal half,
 * shared by the heads of a group, then per head O from two GEMM phases (Q S, plus ScT^T V
 * with the decay mask folded into V and O rows, or applied elementwise for long decays)
 * and the state from one (K^T (V scaled per row)).
 * Decay per key dim (GLA): the factor varies with the key dim a, so it moves into the
 * operands; to keep every exponent <= 0 the chunk is cut into sub-blocks of `sub` tokens:
 * for queries in sub-block J and keys before it, q is scaled by 2^(A_t - B_J) and k by
 * 2^(B_J - A_i), B_J the cumulative sum just before J (both factors <= 1 for decays <= 1);
 * pairs inside J factor the same way while the decay across J stays above 2^-86 (k's
 * factor is then at most 2^86), else they use the exact product of the per-token decays
 * from i+1 to t, built as a running product along i (never an overflow). */
#include "codegen/llvm/cpu_recur_internal.h"

static LLVMValueRef f64p(rgen *g, LLVMValueRef fptr) { return cg_bitcast_ptr(&g->c, fptr, g->c.t_pf64); }
static LLVMValueRef dgep(rgen *g, LLVMValueRef dptr, LLVMValueRef i) { return cg_gep(&g->c, g->c.t_f64, dptr, i); }
static LLVMValueRef vdptr(rgen *g, LLVMValueRef dptr) { return cg_bitcast_ptr(&g->c, dptr, LLVMPointerType(g->t_vd, 0)); }
static LLVMValueRef ld_vd(rgen *g, LLVMValueRef dptr) { return cg_load(&g->c, g->t_vd, vdptr(g, dptr), 8); }
static void st_vd(rgen *g, LLVMValueRef v, LLVMValueRef dptr) { cg_store(&g->c, v, vdptr(g, dptr), 8); }
static LLVMValueRef to_vf(rgen *g, LLVMValueRef vd) { return LLVMBuildFPTrunc(RB(g), vd, g->c.t_vf, ""); }

/* q and k rows of token c0 + tl (zero when tl >= L), feature-mapped, lanes [a0, a0 + W):
 * whole contiguous vectors directly, anything else lane by lane. */
static void load_qk(rgen *g, const ritem *it, LLVMValueRef c0, LLVMValueRef L, LLVMValueRef tl, LLVMValueRef a0,
                    LLVMValueRef *qv, LLVMValueRef *kv) {
    cg *c = &g->c;
    int sq = g->abi.q, sk = g->abi.k;
    LLVMValueRef t = radd(g, c0, tl);
    LLVMValueRef valid = rcmp(g, LLVMIntSLT, tl, L);
    LLVMValueRef nval = rsel(g, valid, rsub(g, rI(g, g->N), a0), rI(g, 0));
    LLVMValueRef qs = rg_stride(g, it, sq, 3), ks = rg_stride(g, it, sk, 3);
    LLVMValueRef qo = rg_offset(g, it, sq, it->b, t, it->grp, a0), ko = rg_offset(g, it, sk, it->b, t, it->grp, a0);
    LLVMValueRef fast = LLVMBuildAnd(RB(g), rcmp(g, LLVMIntSGE, nval, rI(g, g->W)),
                                     LLVMBuildAnd(RB(g), rcmp(g, LLVMIntEQ, qs, rI(g, 1)), rcmp(g, LLVMIntEQ, ks, rI(g, 1)), ""), "");
    LLVMBasicBlockRef bf = cg_block(c, "qk_fast"), bs = cg_block(c, "qk_slow"), join = cg_block(c, "qk_join");
    LLVMBuildCondBr(RB(g), fast, bf, bs);
    LLVMPositionBuilderAtEnd(RB(g), bf);
    LLVMValueRef fq = rg_feature(g, rg_load_contig(g, it->data[sq], false, qo));
    LLVMValueRef fk = rg_feature(g, rg_load_contig(g, it->data[sk], false, ko));
    LLVMBasicBlockRef bf_end = LLVMGetInsertBlock(RB(g));
    LLVMBuildBr(RB(g), join);
    LLVMPositionBuilderAtEnd(RB(g), bs);
    LLVMValueRef sqv = rg_load_row(g, it->data[sq], false, qo, qs, nval);
    LLVMValueRef skv = rg_load_row(g, it->data[sk], false, ko, ks, nval);
    if (g->k->feature) {
        LLVMValueRef live = rg_lanes_below(g, nval);
        sqv = rsel(g, live, rg_feature(g, sqv), LLVMConstNull(c->t_vf));
        skv = rsel(g, live, rg_feature(g, skv), LLVMConstNull(c->t_vf));
    }
    LLVMBasicBlockRef bs_end = LLVMGetInsertBlock(RB(g));
    LLVMBuildBr(RB(g), join);
    LLVMPositionBuilderAtEnd(RB(g), join);
    LLVMValueRef vals[2];
    LLVMBasicBlockRef bbs[2] = { bf_end, bs_end };
    *qv = LLVMBuildPhi(RB(g), c->t_vf, "");
    vals[0] = fq; vals[1] = sqv;
    LLVMAddIncoming(*qv, vals, bbs, 2);
    *kv = LLVMBuildPhi(RB(g), c->t_vf, "");
    vals[0] = fk; vals[1] = skv;
    LLVMAddIncoming(*kv, vals, bbs, 2);
}

/* A token's row of one head is 1/heads of the token's data, so rows of consecutive
 * tokens are far apart and the hardware prefetchers, which stop at page boundaries, miss
 * most of them: the staging loops ask for them ahead, a few at a time (a burst of
 * prefetches would stall on the miss buffers). q and k: the next chunk's (staged once
 * per chunk); v and per-token inputs: the next head's in this chunk (heads are the inner
 * loop; a chunk ahead would not stay in L2); o: this head's, for writing. */
static void prefetch_qk(rgen *g, const ritem *it, LLVMValueRef c0, LLVMValueRef tl) {
    LLVMValueRef t = radd(g, radd(g, c0, rI(g, g->C)), tl);
    rg_prefetch_row(g, it->data[g->abi.q], false, rg_offset(g, it, g->abi.q, it->b, t, it->grp, NULL), g->N, false);
    rg_prefetch_row(g, it->data[g->abi.k], false, rg_offset(g, it, g->abi.k, it->b, t, it->grp, NULL), g->N, false);
}

static void prefetch_vo(rgen *g, const ritem *it, LLVMValueRef c0, LLVMValueRef tl) {
    const ir_kernel *k = g->k;
    LLVMValueRef t = radd(g, c0, tl), h1 = radd(g, it->h, rI(g, 1));
    rg_prefetch_row(g, it->data[g->abi.v], false, rg_offset(g, it, g->abi.v, it->b, t, h1, NULL), g->P, false);
    rg_prefetch_row(g, it->data[g->abi.o], false, rg_offset(g, it, g->abi.o, it->b, t, it->h, NULL), g->P, true);
    for (int i = 0; i < k->n_inputs; i++) {
        const ir_input *in = &k->inputs[i];
        int slot = g->abi.first_input + i, d = 0, n = 1;
        bool tok = false;
        LLVMValueRef off = rI(g, 0);
        for (int a = 0; a < in->n_axes && d < 4; a++) {
            LLVMValueRef idx = rI(g, 0);
            if (in->axes[a] == IR_AXIS_TOKEN) {
                tok = true;
                off = radd(g, off, rmul(g, it->b, rg_stride(g, it, slot, d++)));
                idx = t;
            } else if (in->axes[a] == IR_AXIS_HEAD) {
                idx = h1;
            } else {
                n = in->axes[a] == IR_AXIS_K ? g->N : g->P;   /* the row: the innermost axis */
            }
            if (d < 4) off = radd(g, off, rmul(g, idx, rg_stride(g, it, slot, d++)));
        }
        if (tok) rg_prefetch_row(g, it->data[slot], true, off, n, false);
    }
}

/* V [Cpad][Pp]: values times the value scale, the ones column for z, zero padding. */
static void stage_v(rgen *g, const ritem *it, LLVMValueRef c0, LLVMValueRef L) {
    cg *c = &g->c;
    LLVMValueRef V = rscr(g, it, g->o_V);
    cg_loop T;
    cg_loop_begin(c, &T, rI(g, 0), rI(g, g->Cpad), rI(g, 1), 0, NULL);
    LLVMValueRef tl = T.iv, t = radd(g, c0, tl);
    prefetch_vo(g, it, c0, tl);
    LLVMValueRef valid = rcmp(g, LLVMIntSLT, tl, L);
    LLVMValueRef tc = rmin(g, t, rsub(g, it->seq, rI(g, 1)));   /* inputs are read in bounds */
    LLVMValueRef vs = g->k->v_scale ? cg_splat(c, rg_eval(g, it, g->k->v_scale, tc, NULL, NULL, -1)) : NULL;
    cg_loop E;
    cg_loop_begin(c, &E, rI(g, 0), rI(g, g->Pp), rI(g, g->W), 0, NULL);
    LLVMValueRef nval = rsel(g, valid, rsub(g, rI(g, g->P), E.iv), rI(g, 0));
    LLVMValueRef vv = rg_load_row(g, it->data[g->abi.v], false, rg_offset(g, it, g->abi.v, it->b, t, it->h, E.iv),
                                  rg_stride(g, it, g->abi.v, 3), nval);
    if (vs) vv = rfmul(g, vv, vs);
    if (g->k->normalize) {
        LLVMValueRef is_one = LLVMBuildICmp(RB(g), LLVMIntEQ, cg_iota64(c), cg_splat(c, rsub(g, rI(g, g->P), E.iv)), "");
        is_one = LLVMBuildAnd(RB(g), is_one, cg_splat(c, valid), "");
        vv = rsel(g, is_one, cg_vf32(c, 1.0), vv);
    }
    cg_vstore(c, vv, rfp(g, V, radd(g, rmul(g, tl, rI(g, g->Pp)), E.iv)));
    cg_loop_end(c, &E, NULL);
    cg_loop_end(c, &T, NULL);
}

static void store_outputs(rgen *g, const ritem *it, LLVMValueRef c0, LLVMValueRef L) {
    LLVMValueRef O = rscr(g, it, g->o_O);
    cg_loop T;
    cg_loop_begin(&g->c, &T, rI(g, 0), L, rI(g, 1), 0, NULL);
    LLVMValueRef orow = rfp(g, O, rmul(g, T.iv, rI(g, g->Pp)));
    LLVMValueRef den = g->k->normalize ? rldf(g, rfpc(g, orow, g->P)) : NULL;
    rg_store_output(g, it, radd(g, c0, T.iv), orow, den);
    cg_loop_end(&g->c, &T, NULL);
}

/* ---------------------------------------------------------------- scalar decays */

/* dst[i][t] = src[i][t] * 2^(A_t - A_i) for t >= i (no factor when A is NULL), 0 for
 * t < i; dst may be src. */
static void causal_mask(rgen *g, LLVMValueRef src, LLVMValueRef dst, LLVMValueRef Ad) {
    cg *c = &g->c;
    int W = g->W, Cp = g->Cpad;
    cg_loop I;
    cg_loop_begin(c, &I, rI(g, 0), rI(g, Cp), rI(g, 1), 0, NULL);
    LLVMValueRef i = I.iv, srow = rfp(g, src, rmul(g, i, rI(g, Cp))), drow = rfp(g, dst, rmul(g, i, rI(g, Cp)));
    LLVMValueRef first = rmul(g, rdiv(g, i, rI(g, W)), rI(g, W));
    cg_loop Z;
    cg_loop_begin(c, &Z, rI(g, 0), first, rI(g, W), 0, NULL);
    cg_vstore(c, LLVMConstNull(c->t_vf), rfp(g, drow, Z.iv));
    cg_loop_end(c, &Z, NULL);
    LLVMValueRef ai = Ad ? cg_splat(c, cg_load(c, c->t_f64, dgep(g, Ad, i), 8)) : NULL;
    cg_loop TV;
    cg_loop_begin(c, &TV, first, rI(g, Cp), rI(g, W), 0, NULL);
    LLVMValueRef s = cg_vload(c, rfp(g, srow, TV.iv));
    if (Ad) s = rfmul(g, s, rg_exp2(g, to_vf(g, rfsub(g, ld_vd(g, dgep(g, Ad, TV.iv)), ai))));
    LLVMValueRef tvec = LLVMBuildAdd(RB(g), cg_iota64(c), cg_splat(c, TV.iv), "");
    LLVMValueRef keep = LLVMBuildICmp(RB(g), LLVMIntSGE, tvec, cg_splat(c, i), "");
    cg_vstore(c, rsel(g, keep, s, LLVMConstNull(c->t_vf)), rfp(g, drow, TV.iv));
    cg_loop_end(c, &TV, NULL);
    cg_loop_end(c, &I, NULL);
}

/* Shared by the heads of a group: Q^T (W x W blocks transposed in registers), K rows, and
 * the raw scores Sraw[i][t] = k_i . q_t for t >= i, 0 below (the GEMM computes whole
 * vectors from the tile's first row on; the mask pass zeroes what lies below). */
static void stage_scalar(rgen *g, const ritem *it, LLVMValueRef c0, LLVMValueRef L) {
    cg *c = &g->c;
    int W = g->W, Cp = g->Cpad, Np = g->Npad;
    LLVMValueRef QT = rscr(g, it, g->o_QT), Kr = rscr(g, it, g->o_Kr), Sraw = rscr(g, it, g->o_Sraw);
    cg_loop TB;
    cg_loop_begin(c, &TB, rI(g, 0), rI(g, Cp), rI(g, W), 0, NULL);
    for (int j = 0; j < W; j++) prefetch_qk(g, it, c0, radd(g, TB.iv, rI(g, j)));
    cg_loop AV;
    cg_loop_begin(c, &AV, rI(g, 0), rI(g, Np), rI(g, W), 0, NULL);
    LLVMValueRef rows[64];
    for (int j = 0; j < W; j++) {
        LLVMValueRef tl = radd(g, TB.iv, rI(g, j)), kv;
        load_qk(g, it, c0, L, tl, AV.iv, &rows[j], &kv);
        cg_vstore(c, kv, rfp(g, Kr, radd(g, rmul(g, tl, rI(g, Np)), AV.iv)));
    }
    cg_transpose(&g->c, rows);
    for (int j = 0; j < W; j++)
        cg_vstore(c, rows[j], rfp(g, QT, radd(g, rmul(g, radd(g, AV.iv, rI(g, j)), rI(g, Cp)), TB.iv)));
    cg_loop_end(c, &AV, NULL);
    cg_loop_end(c, &TB, NULL);

    rg_gemm_spec sc = { .n_phases = 1, .Cm = Sraw, .c_rs = Cp, .M = rI(g, Cp), .nvec = Cp / W, .causal_cols = true };
    sc.ph[0] = (rg_phase){ .A = Kr, .a_rs = Np, .a_ks = 1, .B = QT, .b_ks = Cp, .K = rI(g, g->N) };
    rg_gemm(g, &sc);
    causal_mask(g, Sraw, Sraw, NULL);
}

/* Per head: V, the decay, O and the new state. With a decay, the intra-chunk weights
 * 2^(A_t - A_i) factor as 2^(A_t) 2^(-A_i) when the chunk's cumulative decay stays within
 * 2^+-100 (the usual case): V rows are scaled by 2^(-A_i) and O rows by 2^(A_t), and the
 * shared scores need no per-head pass (both factors come from rg_exp2_wide, accurate for
 * any exponent, so their product is as accurate as 2^ of the difference). Otherwise the
 * scores are masked elementwise with 2^ of the f64 difference, every exponent <= 0. */
static void head_scalar(rgen *g, const ritem *it, LLVMValueRef c0, LLVMValueRef L, LLVMValueRef S) {
    cg *c = &g->c;
    const ir_kernel *k = g->k;
    int W = g->W, Cp = g->Cpad, Np = g->Npad, Pp = g->Pp;
    bool decay = k->decay_kind != IR_DECAY_NONE;
    LLVMValueRef QT = rscr(g, it, g->o_QT), Kr = rscr(g, it, g->o_Kr), V = rscr(g, it, g->o_V);
    LLVMValueRef Sraw = rscr(g, it, g->o_Sraw), Sc = rscr(g, it, g->o_Sc), O = rscr(g, it, g->o_O);
    LLVMValueRef Vd = rscr(g, it, g->o_Vd), Vs = rscr(g, it, g->o_Vs), es = rscr(g, it, g->o_es);
    LLVMValueRef Ad = f64p(g, rscr(g, it, g->o_A));
    stage_v(g, it, c0, L);
    rg_gemm_spec so = { .n_phases = 2, .Cm = O, .c_rs = Pp, .M = L, .nvec = Pp / W };
    so.ph[0] = (rg_phase){ .A = QT, .a_rs = 1, .a_ks = Cp, .B = S, .b_ks = Pp, .K = rI(g, g->N) };
    so.ph[1] = (rg_phase){ .A = Sraw, .a_rs = 1, .a_ks = Cp, .B = V, .b_ks = Pp, .K = L, .causal = true };
    if (!decay) {
        rg_gemm(g, &so);
        store_outputs(g, it, c0, L);
        rg_gemm_spec ss = { .n_phases = 1, .Cm = S, .c_rs = Pp, .M = rI(g, g->N), .nvec = Pp / W, .init_load = true };
        ss.ph[0] = (rg_phase){ .A = Kr, .a_rs = 1, .a_ks = Np, .B = V, .b_ks = Pp, .K = L };
        rg_gemm(g, &ss);
        return;
    }

    /* Cumulative log2-decay in f64 (and its largest magnitude), 2^A_t. */
    LLVMValueRef init[2] = { cg_f64(c, 0.0), cg_f64(c, 0.0) };
    cg_loop T;
    cg_loop_begin(c, &T, rI(g, 0), rI(g, Cp), rI(g, 1), 2, init);
    LLVMValueRef tl = T.iv;
    LLVMValueRef ell = it->ell_h;
    if (!ell) ell = rg_log2_decay(g, it, rmin(g, radd(g, c0, tl), rsub(g, it->seq, rI(g, 1))), NULL, -1);
    ell = rsel(g, rcmp(g, LLVMIntSLT, tl, L), ell, cg_f32(c, 0.0));
    LLVMValueRef a = rfadd(g, T.carried[0], LLVMBuildFPExt(RB(g), ell, c->t_f64, ""));
    LLVMValueRef mag = cg_fmax(c, T.carried[1], cg_call_unary(c, "llvm.fabs", a));
    cg_store(c, a, dgep(g, Ad, tl), 8);
    rstf(g, rg_exp2_wide(g, rsel(g, LLVMBuildFCmp(RB(g), LLVMRealOLT, a, cg_f64(c, -126.0), ""), cg_f64(c, -126.0), a)),
         rfp(g, es, tl));
    LLVMValueRef nx[2] = { a, mag };
    cg_loop_end(c, &T, nx);
    LLVMValueRef a_end = T.carried[0];
    LLVMValueRef factored = LLVMBuildFCmp(RB(g), LLVMRealOLE, T.carried[1], cg_f64(c, 100.0), "");
    LLVMValueRef es_end = rg_exp2(g, LLVMBuildFPTrunc(RB(g), a_end, c->t_f32, ""));
    /* Vd = V 2^(A_end - A_i) for the state; Vs = V 2^(-A_i) when factored. */
    {
        cg_loop T2;
        cg_loop_begin(c, &T2, rI(g, 0), rI(g, Cp), rI(g, 1), 0, NULL);
        LLVMValueRef ai = cg_load(c, c->t_f64, dgep(g, Ad, T2.iv), 8);
        LLVMValueRef f = cg_splat(c, rg_exp2(g, LLVMBuildFPTrunc(RB(g), rfsub(g, a_end, ai), c->t_f32, "")));
        LLVMValueRef fs = cg_splat(c, rg_exp2_wide(g, rsel(g, factored, LLVMBuildFNeg(RB(g), ai, ""), cg_f64(c, 0.0))));
        cg_loop E;
        cg_loop_begin(c, &E, rI(g, 0), rI(g, Pp), rI(g, W), 0, NULL);
        LLVMValueRef off = radd(g, rmul(g, T2.iv, rI(g, Pp)), E.iv);
        LLVMValueRef v = cg_vload(c, rfp(g, V, off));
        cg_vstore(c, rfmul(g, v, f), rfp(g, Vd, off));
        cg_vstore(c, rfmul(g, v, fs), rfp(g, Vs, off));
        cg_loop_end(c, &E, NULL);
        cg_loop_end(c, &T2, NULL);
    }
    /* O = 2^(A_t) (Q S_prev + Sraw^T Vs), or 2^(A_t) (Q S_prev) + masked^T V. */
    LLVMBasicBlockRef bf = cg_block(c, "factored"), bm = cg_block(c, "masked"), join = cg_block(c, "o_done");
    LLVMBuildCondBr(RB(g), factored, bf, bm);
    LLVMPositionBuilderAtEnd(RB(g), bf);
    rg_gemm_spec sf = so;
    sf.ph[1].B = Vs;
    sf.post_scale = es;
    rg_gemm(g, &sf);
    LLVMBuildBr(RB(g), join);
    LLVMPositionBuilderAtEnd(RB(g), bm);
    causal_mask(g, Sraw, Sc, Ad);
    rg_gemm_spec sm = so;
    sm.ph[1].A = Sc;
    sm.mid_scale = es;
    rg_gemm(g, &sm);
    LLVMBuildBr(RB(g), join);
    LLVMPositionBuilderAtEnd(RB(g), join);
    store_outputs(g, it, c0, L);

    /* S = 2^(A_end) S + K^T (V 2^(A_end - A_i)). */
    rg_gemm_spec ss = { .n_phases = 1, .Cm = S, .c_rs = Pp, .M = rI(g, g->N), .nvec = Pp / W, .init_load = true,
                        .init_scale = es_end };
    ss.ph[0] = (rg_phase){ .A = Kr, .a_rs = 1, .a_ks = Np, .B = Vd, .b_ks = Pp, .K = L };
    rg_gemm(g, &ss);
}

/* ---------------------------------------------------------------- decay per key dim */

/* dst rows (W x W blocks, transposed) of src rows [t0, t0 + n) scaled by 2^(Ar[t] - ref):
 * dstT[a][t] = src[t][a] * 2^(Ar[t][a] - ref[a]). */
static void scaled_transpose(rgen *g, LLVMValueRef src, LLVMValueRef Ar, LLVMValueRef ref, LLVMValueRef dstT,
                             LLVMValueRef t0, LLVMValueRef n) {
    cg *c = &g->c;
    int W = g->W, Np = g->Npad, Cp = g->Cpad;
    cg_loop TB;
    cg_loop_begin(c, &TB, t0, radd(g, t0, n), rI(g, W), 0, NULL);
    cg_loop AV;
    cg_loop_begin(c, &AV, rI(g, 0), rI(g, Np), rI(g, W), 0, NULL);
    LLVMValueRef rows[64];
    LLVMValueRef r = ld_vd(g, dgep(g, ref, AV.iv));
    for (int j = 0; j < W; j++) {
        LLVMValueRef off = radd(g, rmul(g, radd(g, TB.iv, rI(g, j)), rI(g, Np)), AV.iv);
        LLVMValueRef d = rfsub(g, ld_vd(g, dgep(g, Ar, off)), r);
        rows[j] = rfmul(g, cg_vload(c, rfp(g, src, off)), rg_exp2(g, to_vf(g, d)));
    }
    cg_transpose(&g->c, rows);
    for (int j = 0; j < W; j++)
        cg_vstore(c, rows[j], rfp(g, dstT, radd(g, rmul(g, radd(g, AV.iv, rI(g, j)), rI(g, Cp)), TB.iv)));
    cg_loop_end(c, &AV, NULL);
    cg_loop_end(c, &TB, NULL);
}

/* dst rows [r0, r1) = src rows scaled by 2^(ref - Ar[i]) (row layout). */
static void scaled_rows(rgen *g, LLVMValueRef src, LLVMValueRef Ar, LLVMValueRef ref, LLVMValueRef dst, LLVMValueRef r0,
                        LLVMValueRef r1) {
    cg *c = &g->c;
    int W = g->W, Np = g->Npad;
    cg_loop I;
    cg_loop_begin(c, &I, r0, r1, rI(g, 1), 0, NULL);
    cg_loop AV;
    cg_loop_begin(c, &AV, rI(g, 0), rI(g, Np), rI(g, W), 0, NULL);
    LLVMValueRef off = radd(g, rmul(g, I.iv, rI(g, Np)), AV.iv);
    LLVMValueRef d = rfsub(g, ld_vd(g, dgep(g, ref, AV.iv)), ld_vd(g, dgep(g, Ar, off)));
    cg_vstore(c, rfmul(g, cg_vload(c, rfp(g, src, off)), rg_exp2(g, to_vf(g, d))), rfp(g, dst, off));
    cg_loop_end(c, &AV, NULL);
    cg_loop_end(c, &I, NULL);
}

/* x rows [0, n) times f (a row of Npad floats). */
static void scale_rows(rgen *g, LLVMValueRef x, LLVMValueRef f, LLVMValueRef n) {
    cg *c = &g->c;
    cg_loop I;
    cg_loop_begin(c, &I, rI(g, 0), n, rI(g, 1), 0, NULL);
    cg_loop AV;
    cg_loop_begin(c, &AV, rI(g, 0), rI(g, g->Npad), rI(g, g->W), 0, NULL);
    LLVMValueRef p = rfp(g, x, radd(g, rmul(g, I.iv, rI(g, g->Npad)), AV.iv));
    cg_vstore(c, rfmul(g, cg_vload(c, p), cg_vload(c, rfp(g, f, AV.iv))), p);
    cg_loop_end(c, &AV, NULL);
    cg_loop_end(c, &I, NULL);
}

/* f = 2^(to - from) per key dim (rows of cumulative sums). */
static void row_factor(rgen *g, LLVMValueRef f, LLVMValueRef to, LLVMValueRef from) {
    cg_loop AV;
    cg_loop_begin(&g->c, &AV, rI(g, 0), rI(g, g->Npad), rI(g, g->W), 0, NULL);
    LLVMValueRef d = rfsub(g, ld_vd(g, dgep(g, to, AV.iv)), ld_vd(g, dgep(g, from, AV.iv)));
    cg_vstore(&g->c, rg_exp2(g, to_vf(g, d)), rfp(g, f, AV.iv));
    cg_loop_end(&g->c, &AV, NULL);
}

/* Shared by the heads of a group: q and k rows. */
static void stage_vector(rgen *g, const ritem *it, LLVMValueRef c0, LLVMValueRef L) {
    cg *c = &g->c;
    int W = g->W, Cp = g->Cpad, Np = g->Npad;
    LLVMValueRef Qr = rscr(g, it, g->o_Qr), Kr = rscr(g, it, g->o_Kr);
    cg_loop T;
    cg_loop_begin(c, &T, rI(g, 0), rI(g, Cp), rI(g, 1), 0, NULL);
    prefetch_qk(g, it, c0, T.iv);
    cg_loop AV;
    cg_loop_begin(c, &AV, rI(g, 0), rI(g, Np), rI(g, W), 0, NULL);
    LLVMValueRef qv, kv, off = radd(g, rmul(g, T.iv, rI(g, Np)), AV.iv);
    load_qk(g, it, c0, L, T.iv, AV.iv, &qv, &kv);
    cg_vstore(c, qv, rfp(g, Qr, off));
    cg_vstore(c, kv, rfp(g, Kr, off));
    cg_loop_end(c, &AV, NULL);
    cg_loop_end(c, &T, NULL);
}

/* Per head. K scaled to the current reference (Kx) is kept across sub-blocks: moving
 * the reference from B_(J-1) to B_J multiplies the rows already there by 2^(B_J - B_(J-1))
 * (<= 1), so only new rows need exponentials; at the end the same rows, moved to A_end,
 * are the keys of the state update. */
static void head_vector(rgen *g, const ritem *it, LLVMValueRef c0, LLVMValueRef L, LLVMValueRef S) {
    cg *c = &g->c;
    int W = g->W, Cp = g->Cpad, Np = g->Npad, Pp = g->Pp, sub = g->sub;
    LLVMValueRef Qr = rscr(g, it, g->o_Qr), Kr = rscr(g, it, g->o_Kr), V = rscr(g, it, g->o_V);
    LLVMValueRef Ar = f64p(g, rscr(g, it, g->o_Ar)), fj = rscr(g, it, g->o_fj);
    LLVMValueRef QdT = rscr(g, it, g->o_QdT), Kx = rscr(g, it, g->o_Kx);
    LLVMValueRef QtT = rscr(g, it, g->o_QtT), esr = rscr(g, it, g->o_esr), w = rscr(g, it, g->o_w);
    LLVMValueRef Sc = rscr(g, it, g->o_Sc), O = rscr(g, it, g->o_O);
    LLVMValueRef zero_d = f64p(g, rscr(g, it, g->o_zero));

    /* The f64 cumulative log2-decays. */
    {
        cg_loop T;
        cg_loop_begin(c, &T, rI(g, 0), rI(g, Cp), rI(g, 1), 0, NULL);
        LLVMValueRef tl = T.iv, valid = rcmp(g, LLVMIntSLT, tl, L);
        LLVMValueRef tc = rmin(g, radd(g, c0, tl), rsub(g, it->seq, rI(g, 1)));
        LLVMValueRef prev = rsel(g, rcmp(g, LLVMIntEQ, tl, rI(g, 0)), zero_d,
                                 dgep(g, Ar, rmul(g, rsub(g, tl, rI(g, 1)), rI(g, Np))));
        cg_loop AV;
        cg_loop_begin(c, &AV, rI(g, 0), rI(g, Np), rI(g, W), 0, NULL);
        LLVMValueRef off = radd(g, rmul(g, tl, rI(g, Np)), AV.iv);
        LLVMValueRef ell = rg_log2_decay(g, it, tc, AV.iv, IR_AXIS_K);
        LLVMValueRef live = LLVMBuildAnd(RB(g), rg_lanes_below(g, rsub(g, rI(g, g->N), AV.iv)), cg_splat(c, valid), "");
        ell = rsel(g, live, ell, LLVMConstNull(c->t_vf));
        LLVMValueRef a = rfadd(g, ld_vd(g, dgep(g, prev, AV.iv)), LLVMBuildFPExt(RB(g), ell, g->t_vd, ""));
        st_vd(g, a, dgep(g, Ar, off));
        cg_loop_end(c, &AV, NULL);
        cg_loop_end(c, &T, NULL);
    }
    stage_v(g, it, c0, L);
    LLVMValueRef a_end = dgep(g, Ar, rI(g, (int64_t)(Cp - 1) * Np));
    /* 2^(A_end) per key dim. */
    {
        cg_loop AV;
        cg_loop_begin(c, &AV, rI(g, 0), rI(g, Np), rI(g, W), 0, NULL);
        cg_vstore(c, rg_exp2(g, to_vf(g, ld_vd(g, dgep(g, a_end, AV.iv)))), rfp(g, esr, AV.iv));
        cg_loop_end(c, &AV, NULL);
    }

    /* Scores. */
    rg_zero(g, Sc, (int64_t)Cp * Cp);
    LLVMValueRef init[2] = { rI(g, 0), zero_d };
    cg_loop J;
    cg_loop_begin(c, &J, rI(g, 0), rI(g, Cp), rI(g, sub), 2, init);
    LLVMValueRef Jc = J.iv, kx_rows = J.carried[0], ref_prev = J.carried[1];
    LLVMValueRef is0 = rcmp(g, LLVMIntEQ, Jc, rI(g, 0));
    LLVMValueRef ref = rsel(g, is0, zero_d, dgep(g, Ar, rmul(g, rsub(g, Jc, rI(g, 1)), rI(g, Np))));
    /* When the decay inside J stays above 2^-86 (the usual case), the pairs inside J
     * factor like those before it (k then gets a factor >= 1, at most 2^86): one GEMM over
     * keys [0, Jc + sub), the pairs with i > t zeroed after. Otherwise the pairs inside J
     * take the running product. */
    LLVMValueRef last = dgep(g, Ar, rmul(g, radd(g, Jc, rI(g, sub - 1)), rI(g, Np)));
    LLVMValueRef lo0 = cg_splat(c, cg_f64(c, 0.0));
    cg_loop MN;
    cg_loop_begin(c, &MN, rI(g, 0), rI(g, Np), rI(g, W), 1, &lo0);
    LLVMValueRef dd = rfsub(g, ld_vd(g, dgep(g, last, MN.iv)), ld_vd(g, dgep(g, ref, MN.iv)));
    LLVMValueRef mn = rsel(g, LLVMBuildFCmp(RB(g), LLVMRealOLT, dd, MN.carried[0], ""), dd, MN.carried[0]);
    cg_loop_end(c, &MN, &mn);
    LLVMValueRef lo = LLVMBuildExtractElement(RB(g), MN.carried[0], cg_i32(c, 0), "");
    for (int j = 1; j < W; j++) {
        LLVMValueRef x = LLVMBuildExtractElement(RB(g), MN.carried[0], cg_i32(c, j), "");
        lo = rsel(g, LLVMBuildFCmp(RB(g), LLVMRealOLT, x, lo, ""), x, lo);
    }
    LLVMValueRef safe = LLVMBuildFCmp(RB(g), LLVMRealOGE, lo, cg_f64(c, -86.0), "");
    LLVMValueRef nrows = radd(g, Jc, rsel(g, safe, rI(g, sub), rI(g, 0)));
    scaled_transpose(g, Qr, Ar, ref, QtT, Jc, rI(g, sub));
    /* Q 2^(A_t) (for Q S_prev) = Q 2^(A_t - B_J) 2^(B_J), the last factor <= 1. */
    row_factor(g, fj, ref, zero_d);
    {
        cg_loop AR;
        cg_loop_begin(c, &AR, rI(g, 0), rI(g, Np), rI(g, 1), 0, NULL);
        LLVMValueRef f = cg_splat(c, rldf(g, rfp(g, fj, AR.iv)));
        for (int v = 0; v < sub / W; v++) {
            LLVMValueRef off = radd(g, radd(g, rmul(g, AR.iv, rI(g, Cp)), Jc), rI(g, (int64_t)v * W));
            cg_vstore(c, rfmul(g, cg_vload(c, rfp(g, QtT, off)), f), rfp(g, QdT, off));
        }
        cg_loop_end(c, &AR, NULL);
    }
    row_factor(g, fj, ref, ref_prev);
    scale_rows(g, Kx, fj, kx_rows);
    scaled_rows(g, Kr, Ar, ref, Kx, kx_rows, nrows);
    rg_gemm_spec sj = { .n_phases = 1, .Cm = rfp(g, Sc, Jc), .c_rs = Cp, .M = nrows, .nvec = sub / W };
    sj.ph[0] = (rg_phase){ .A = Kx, .a_rs = Np, .a_ks = 1, .B = rfp(g, QtT, Jc), .b_ks = Cp, .K = rI(g, g->N) };
    rg_gemm(g, &sj);
    LLVMBasicBlockRef b_fact = cg_block(c, "diag_factored"), b_chain = cg_block(c, "diag_chain");
    LLVMBasicBlockRef b_next = cg_block(c, "diag_done");
    LLVMBuildCondBr(RB(g), safe, b_fact, b_chain);
    LLVMPositionBuilderAtEnd(RB(g), b_fact);
    {
        cg_loop I;
        cg_loop_begin(c, &I, Jc, radd(g, Jc, rI(g, sub)), rI(g, 1), 0, NULL);
        for (int v = 0; v < sub / W; v++) {
            LLVMValueRef t0 = radd(g, Jc, rI(g, (int64_t)v * W));
            LLVMValueRef p = rfp(g, Sc, radd(g, rmul(g, I.iv, rI(g, Cp)), t0));
            LLVMValueRef tv = LLVMBuildAdd(RB(g), cg_iota64(c), cg_splat(c, t0), "");
            LLVMValueRef keep = LLVMBuildICmp(RB(g), LLVMIntSGE, tv, cg_splat(c, I.iv), "");
            cg_vstore(c, rsel(g, keep, cg_vload(c, p), LLVMConstNull(c->t_vf)), p);
        }
        cg_loop_end(c, &I, NULL);
    }
    LLVMBuildBr(RB(g), b_next);
    LLVMPositionBuilderAtEnd(RB(g), b_chain);
    /* Pairs inside J: w = q_t times the decays 2^(A_j - A_(j-1)) for j from i+1 to t,
     * multiplied in as i goes down. */
    {
        cg_loop TT;
        cg_loop_begin(c, &TT, Jc, radd(g, Jc, rI(g, sub)), rI(g, 1), 0, NULL);
        LLVMValueRef t = TT.iv;
        cg_loop CP;
        cg_loop_begin(c, &CP, rI(g, 0), rI(g, Np), rI(g, W), 0, NULL);
        cg_vstore(c, cg_vload(c, rfp(g, Qr, radd(g, rmul(g, t, rI(g, Np)), CP.iv))), rfp(g, w, CP.iv));
        cg_loop_end(c, &CP, NULL);
        cg_loop II;
        cg_loop_begin(c, &II, rI(g, 0), radd(g, rsub(g, t, Jc), rI(g, 1)), rI(g, 1), 0, NULL);
        LLVMValueRef i = rsub(g, t, II.iv);
        LLVMValueRef arow = dgep(g, Ar, rmul(g, i, rI(g, Np)));
        LLVMValueRef aprev = rsel(g, rcmp(g, LLVMIntEQ, i, rI(g, 0)), zero_d, dgep(g, Ar, rmul(g, rsub(g, i, rI(g, 1)), rI(g, Np))));
        LLVMValueRef z = LLVMConstNull(c->t_vf);
        cg_loop AV;
        cg_loop_begin(c, &AV, rI(g, 0), rI(g, Np), rI(g, W), 1, &z);
        LLVMValueRef off = radd(g, rmul(g, i, rI(g, Np)), AV.iv);
        LLVMValueRef wv = cg_vload(c, rfp(g, w, AV.iv));
        LLVMValueRef acc = cg_fma(c, wv, cg_vload(c, rfp(g, Kr, off)), AV.carried[0]);
        LLVMValueRef alpha = rg_exp2(g, to_vf(g, rfsub(g, ld_vd(g, dgep(g, arow, AV.iv)), ld_vd(g, dgep(g, aprev, AV.iv)))));
        cg_vstore(c, rfmul(g, wv, alpha), rfp(g, w, AV.iv));
        cg_loop_end(c, &AV, &acc);
        rstf(g, rg_hsum(g, AV.carried[0]), rfp(g, Sc, radd(g, rmul(g, i, rI(g, Cp)), t)));
        cg_loop_end(c, &II, NULL);
        cg_loop_end(c, &TT, NULL);
    }
    LLVMBuildBr(RB(g), b_next);
    LLVMPositionBuilderAtEnd(RB(g), b_next);
    LLVMValueRef next[2] = { nrows, ref };
    cg_loop_end(c, &J, next);
    /* Kx moved from the last reference to A_end: K 2^(A_end - A_i), the state's keys. */
    row_factor(g, fj, a_end, J.carried[1]);
    scale_rows(g, Kx, fj, J.carried[0]);
    scaled_rows(g, Kr, Ar, a_end, Kx, J.carried[0], rI(g, Cp));

    /* O = (Q 2^A) S_prev + ScT^T V;  S = 2^(A_end) S + (K 2^(A_end - A))^T V. */
    rg_gemm_spec so = { .n_phases = 2, .Cm = O, .c_rs = Pp, .M = L, .nvec = Pp / W };
    so.ph[0] = (rg_phase){ .A = QdT, .a_rs = 1, .a_ks = Cp, .B = S, .b_ks = Pp, .K = rI(g, g->N) };
    so.ph[1] = (rg_phase){ .A = Sc, .a_rs = 1, .a_ks = Cp, .B = V, .b_ks = Pp, .K = L, .causal = true };
    rg_gemm(g, &so);
    store_outputs(g, it, c0, L);
    rg_gemm_spec ss = { .n_phases = 1, .Cm = S, .c_rs = Pp, .M = rI(g, g->N), .nvec = Pp / W, .init_load = true,
                        .init_scale_rows = esr };
    ss.ph[0] = (rg_phase){ .A = Kx, .a_rs = 1, .a_ks = Np, .B = V, .b_ks = Pp, .K = L };
    rg_gemm(g, &ss);
}

void rg_chunk_stage(rgen *g, const ritem *it, LLVMValueRef c0, LLVMValueRef L) {
    if (g->vdecay) stage_vector(g, it, c0, L);
    else stage_scalar(g, it, c0, L);
}

void rg_chunk_head(rgen *g, const ritem *it, LLVMValueRef c0, LLVMValueRef L, LLVMValueRef S) {
    if (g->vdecay) head_vector(g, it, c0, L, S);
    else head_scalar(g, it, c0, L, S);
}
