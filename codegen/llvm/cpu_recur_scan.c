/* The recurrent step form, token by token, in the interpreter's order of operations:
 * decay, feature maps and value scale for the token, then S = decay * S + k (vs v) row by
 * row, z likewise, then o[e] = sum over a (ascending) of q[a] S[a][e], divided by q . z,
 * plus the skip. Vectorised along v (a pass over the rows per group of EB vectors, whose
 * output accumulators stay in registers); the state is read and written once per token.
 * This is the decode kernel (one token, state_in -> state_out, in place when they are the
 * same buffer), the tail of a prefill, the fallback for per-element decays, and the
 * benchmark's baseline. */
#include "codegen/llvm/cpu_recur_internal.h"

/* Per-row decay for the row loop: NULL (no decay), or a vector. */
static LLVMValueRef row_decay(rgen *g, const ritem *it, LLVMValueRef t, LLVMValueRef a, LLVMValueRef lam_tok,
                              int col) {
    cg *c = &g->c;
    switch (g->k->decay_kind) {
    case IR_DECAY_NONE: return NULL;
    case IR_DECAY_HEAD: case IR_DECAY_TOKEN_HEAD: return lam_tok;
    case IR_DECAY_KEY_VECTOR: return cg_splat(c, rldf(g, rfp(g, rscr(g, it, g->o_lam), a)));
    case IR_DECAY_STATE:
        if (g->lam_table)
            return cg_vload(c, rfp(g, rscr(g, it, g->o_lam), radd(g, rmul(g, a, rI(g, g->Pp)), rI(g, col))));
        return rg_eval(g, it, g->k->decay, t, a, rI(g, col), IR_AXIS_V);
    }
    return NULL;
}

/* The interpreter's loop nests as scalar IR for O3 to do with what it can: the decay as a
 * d_k x d_v array, the update element by element, each output element a sum over a in
 * order (a dependent chain O3 cannot reorder without fast-math). For the benchmark. */
static void literal_rows(rgen *g, const ritem *it, LLVMValueRef t, LLVMValueRef lam_tok, LLVMValueRef sS,
                         LLVMValueRef sRS, const rg_state_ref *dst, LLVMValueRef orow) {
    cg *c = &g->c;
    const ir_kernel *k = g->k;
    LLVMValueRef xq = rscr(g, it, g->o_q), xk = rscr(g, it, g->o_k), xv = rscr(g, it, g->o_v);
    LLVMValueRef lam = rscr(g, it, g->o_lit);
    LLVMValueRef lt = lam_tok ? LLVMBuildExtractElement(RB(g), lam_tok, cg_i32(c, 0), "") : NULL;
    cg_loop A;
    cg_loop_begin(c, &A, rI(g, 0), rI(g, g->N), rI(g, 1), 0, NULL);
    cg_loop E;
    cg_loop_begin(c, &E, rI(g, 0), rI(g, g->P), rI(g, 1), 0, NULL);
    LLVMValueRef l = cg_f32(c, 1.0);
    if (lt) l = lt;
    if (k->decay_kind == IR_DECAY_KEY_VECTOR) l = rldf(g, rfp(g, rscr(g, it, g->o_lam), A.iv));
    if (k->decay_kind == IR_DECAY_STATE) l = rg_eval(g, it, k->decay, t, A.iv, E.iv, -1);
    rstf(g, l, rfp(g, lam, radd(g, rmul(g, A.iv, rI(g, g->Pp)), E.iv)));
    cg_loop_end(c, &E, NULL);
    cg_loop_end(c, &A, NULL);
    cg_loop A2;
    cg_loop_begin(c, &A2, rI(g, 0), rI(g, g->N), rI(g, 1), 0, NULL);
    LLVMValueRef ka = rldf(g, rfp(g, xk, A2.iv));
    LLVMValueRef rs = rfp(g, sS, rmul(g, A2.iv, sRS)), rd = rfp(g, dst->S, rmul(g, A2.iv, dst->rs));
    cg_loop E2;
    cg_loop_begin(c, &E2, rI(g, 0), rI(g, g->P), rI(g, 1), 0, NULL);
    LLVMValueRef lv = rldf(g, rfp(g, lam, radd(g, rmul(g, A2.iv, rI(g, g->Pp)), E2.iv)));
    LLVMValueRef sn = rfadd(g, rfmul(g, lv, rldf(g, rfp(g, rs, E2.iv))), rfmul(g, ka, rldf(g, rfp(g, xv, E2.iv))));
    rstf(g, sn, rfp(g, rd, E2.iv));
    cg_loop_end(c, &E2, NULL);
    cg_loop_end(c, &A2, NULL);
    cg_loop E3;
    cg_loop_begin(c, &E3, rI(g, 0), rI(g, g->P), rI(g, 1), 0, NULL);
    LLVMValueRef z = cg_f32(c, 0.0);
    cg_loop A3;
    cg_loop_begin(c, &A3, rI(g, 0), rI(g, g->N), rI(g, 1), 1, &z);
    LLVMValueRef term = rfmul(g, rldf(g, rfp(g, xq, A3.iv)), rldf(g, rfp(g, dst->S, radd(g, rmul(g, A3.iv, dst->rs), E3.iv))));
    LLVMValueRef o = rfadd(g, A3.carried[0], term);
    cg_loop_end(c, &A3, &o);
    rstf(g, A3.carried[0], rfp(g, orow, E3.iv));
    cg_loop_end(c, &E3, NULL);
}

void rg_scan(rgen *g, const ritem *it, LLVMValueRef t0, LLVMValueRef t1, const rg_state_ref *src,
             const rg_state_ref *dst, bool literal) {
    cg *c = &g->c;
    const ir_kernel *k = g->k;
    int W = g->W, nvecP = (g->P + W - 1) / W;
    LLVMValueRef q = it->data[g->abi.q], kk = it->data[g->abi.k], v = it->data[g->abi.v];
    LLVMValueRef init[4] = { src->S, src->rs, src->z ? src->z : src->S, src->zs ? src->zs : rI(g, 0) };
    cg_loop T;
    cg_loop_begin(c, &T, t0, t1, rI(g, 1), 4, init);
    LLVMValueRef t = T.iv, sS = T.carried[0], sRS = T.carried[1], sZ = T.carried[2], sZS = T.carried[3];

    /* The token's features and value row, staged in scratch. */
    LLVMValueRef xq = rscr(g, it, g->o_q), xk = rscr(g, it, g->o_k), xv = rscr(g, it, g->o_v);
    {
        cg_loop A;
        cg_loop_begin(c, &A, rI(g, 0), rI(g, g->Npad), rI(g, W), 0, NULL);
        LLVMValueRef nval = rsub(g, rI(g, g->N), A.iv);
        LLVMValueRef live = rg_lanes_below(g, nval);
        LLVMValueRef qv = rg_load_row(g, q, false, rg_offset(g, it, g->abi.q, it->b, t, it->grp, A.iv),
                                      rg_stride(g, it, g->abi.q, 3), nval);
        LLVMValueRef kv = rg_load_row(g, kk, false, rg_offset(g, it, g->abi.k, it->b, t, it->grp, A.iv),
                                      rg_stride(g, it, g->abi.k, 3), nval);
        if (k->feature) {
            qv = rsel(g, live, rg_feature(g, qv), LLVMConstNull(c->t_vf));
            kv = rsel(g, live, rg_feature(g, kv), LLVMConstNull(c->t_vf));
        }
        cg_vstore(c, qv, rfp(g, xq, A.iv));
        cg_vstore(c, kv, rfp(g, xk, A.iv));
        if (k->decay_kind == IR_DECAY_KEY_VECTOR)
            cg_vstore(c, rg_eval(g, it, k->decay, t, A.iv, NULL, IR_AXIS_K), rfp(g, rscr(g, it, g->o_lam), A.iv));
        cg_loop_end(c, &A, NULL);
    }
    LLVMValueRef vs = k->v_scale ? rg_eval(g, it, k->v_scale, t, NULL, NULL, -1) : NULL;
    {
        cg_loop E;
        cg_loop_begin(c, &E, rI(g, 0), rI(g, (int64_t)nvecP * W), rI(g, W), 0, NULL);
        LLVMValueRef vv = rg_load_row(g, v, false, rg_offset(g, it, g->abi.v, it->b, t, it->h, E.iv),
                                      rg_stride(g, it, g->abi.v, 3), rsub(g, rI(g, g->P), E.iv));
        if (vs) vv = rfmul(g, vv, cg_splat(c, vs));
        cg_vstore(c, vv, rfp(g, xv, E.iv));
        cg_loop_end(c, &E, NULL);
    }
    LLVMValueRef lam_tok = NULL;
    if (k->decay_kind == IR_DECAY_HEAD) lam_tok = cg_splat(c, it->lam_h);
    if (k->decay_kind == IR_DECAY_TOKEN_HEAD) lam_tok = cg_splat(c, rg_eval(g, it, k->decay, t, NULL, NULL, -1));

    /* z = decay z + k and the denominator q . z. */
    LLVMValueRef den = NULL;
    if (k->normalize) {
        LLVMValueRef zero = cg_f32(c, 0.0);
        cg_loop Z;
        cg_loop_begin(c, &Z, rI(g, 0), rI(g, g->N), rI(g, 1), 1, &zero);
        LLVMValueRef a = Z.iv;
        LLVMValueRef zo = rldf(g, rfp(g, sZ, rmul(g, a, sZS)));
        LLVMValueRef ka = rldf(g, rfp(g, xk, a)), qa = rldf(g, rfp(g, xq, a));
        LLVMValueRef la = NULL;
        if (lam_tok) la = LLVMBuildExtractElement(RB(g), lam_tok, cg_i32(c, 0), "");
        if (k->decay_kind == IR_DECAY_KEY_VECTOR) la = rldf(g, rfp(g, rscr(g, it, g->o_lam), a));
        LLVMValueRef zn = la ? cg_fma(c, la, zo, ka) : rfadd(g, zo, ka);
        rstf(g, zn, rfp(g, dst->z, rmul(g, a, dst->zs)));
        LLVMValueRef d = cg_fma(c, qa, zn, Z.carried[0]);
        cg_loop_end(c, &Z, &d);
        den = Z.carried[0];
    }

    /* S rows, EB output vectors at a time. */
    LLVMValueRef orow = rscr(g, it, g->o_orow);
    if (literal) literal_rows(g, it, t, lam_tok, sS, sRS, dst, orow);
    for (int e0 = 0; !literal && e0 < nvecP; e0 += g->EB) {
        int nv = nvecP - e0 < g->EB ? nvecP - e0 : g->EB;
        LLVMValueRef vb[16], acc0[16], mask[16];
        for (int j = 0; j < nv; j++) {
            int col = (e0 + j) * W;
            vb[j] = cg_vload(c, rfpc(g, xv, col));
            acc0[j] = LLVMConstNull(c->t_vf);
            mask[j] = col + W > g->P ? rg_lanes_below(g, rI(g, g->P - col)) : NULL;
        }
        cg_loop A;
        cg_loop_begin(c, &A, rI(g, 0), rI(g, g->N), rI(g, 1), nv, acc0);
        LLVMValueRef a = A.iv;
        LLVMValueRef qa = cg_splat(c, rldf(g, rfp(g, xq, a))), ka = cg_splat(c, rldf(g, rfp(g, xk, a)));
        LLVMValueRef rs = rfp(g, sS, rmul(g, a, sRS)), rd = rfp(g, dst->S, rmul(g, a, dst->rs));
        LLVMValueRef acc[16];
        for (int j = 0; j < nv; j++) {
            int col = (e0 + j) * W;
            LLVMValueRef so = mask[j] ? rg_mload(g, rfpc(g, rs, col), mask[j]) : cg_vload(c, rfpc(g, rs, col));
            LLVMValueRef la = row_decay(g, it, t, a, lam_tok, col);
            LLVMValueRef sn = cg_fma(c, ka, vb[j], la ? rfmul(g, la, so) : so);
            if (mask[j]) rg_mstore(g, sn, rfpc(g, rd, col), mask[j]);
            else cg_vstore(c, sn, rfpc(g, rd, col));
            acc[j] = cg_fma(c, qa, sn, A.carried[j]);
        }
        cg_loop_end(c, &A, acc);
        for (int j = 0; j < nv; j++) cg_vstore(c, A.carried[j], rfpc(g, orow, (int64_t)(e0 + j) * W));
    }
    rg_store_output(g, it, t, orow, den);
    LLVMValueRef next[4] = { dst->S, dst->rs, dst->z ? dst->z : dst->S, dst->zs ? dst->zs : rI(g, 0) };
    cg_loop_end(c, &T, next);
}
