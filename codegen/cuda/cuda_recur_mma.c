/* The chunkwise parallel prefill on tensor cores (bf16/f16 kernels, sm_80+, decay none /
 * per head / per token and head: linear attention, RetNet, Mamba2's SSD). The algebra is
 * cuda_recur_chunk.c's; here every product is mma.sync.m16n8k16 with bf16 operands and f32
 * accumulators (cuda-kernels.md §1-2):
 *
 *   inter   O  = Q~ S_prev              A = Q~ tile (ldmatrix), B = bf16 copy of the f32 state
 *                                        (ldmatrix.trans); rows then scaled by Λ(t0..t)
 *   scores  P  = Q~ K~ᵀ ⊙ D            as FlashAttention's S = Q Kᵀ; D_ti = ex2(b(t) - b(i)) for
 *                                        i <= t, assigned 0 elsewhere
 *   intra   O += P V~                   P repacked from the accumulators (§1.1), V~ by ldmatrix.trans
 *   state   S  = Λ(chunk) S + K^ᵀ V~    A = K^ᵀ read from the [token][dim] tile with ldmatrix.trans
 *                                        (lane addresses of the non-transposed B operand), B = V~
 *
 * with Q~ = phi(q), K~ = phi(k), V~ = s ⊙ v, K^ = K~ scaled by Λ(i+1..last). Operands are
 * bf16 for f16 kernels too: the carried state can exceed f16's range, bf16 has f32's.
 *
 * Tiling: one CTA per (v slice of DVC columns, batch, head), 4 warps; a chunk is cut into
 * row blocks of 64 tokens (16 per warp) and key blocks of the same 64 tokens, so only the
 * diagonal key block needs the causal test. Shared memory: swizzled bf16 tiles for Q~, K~
 * (or K^), V~ and the state copy, the f32 master state, z, the chunk's log2-decay table.
 * Tiles are staged with plain loads (the feature map and the value scale are applied on
 * the way), not cp.async. In the state update warp w owns the d_k row tiles w, w + 4, ...
 *
 * In place: as in the SIMT form, each CTA reads its state columns before it writes them. */
#include <stdio.h>
#include "codegen/cuda/cuda_recur.h"

#define E(...) fprintf(out, __VA_ARGS__)

/* Key block staging with a per-key-dim decay: phi(k) for the exact diagonal, and the
   operand decayed to the last token of the key's sub-block (r_I, at most the chunk's last). */
#define KSTAGE_VEC \
    "                    if (a < DK) sts_u16(sKf + 2 * (row * DK + a), f_to_bf16(x));\n" \
    "                    const int r_i = tk + (row | 15) < tend - 1 ? tk + (row | 15) : tend - 1;\n" \
    "                    rec_put_tile(sK, row, a, RB, D, (t < tend && a < DK) ? x * ex2(rec_cbv(sB, t0, r_i, a) - rec_cbv(sB, t0, t, a)) : 0.f);\n"

/* S = Q K^T over the key sub-blocks np of the block */
#define SCORES_PLAIN \
    "                #pragma unroll\n" \
    "                for (int ks = 0; ks < D / 16; ++ks) {\n" \
    "                    u32 qa[4];\n" \
    "                    ldsm_x4(sQ + (u32)smem_frag_offset(16 * warp, 16 * ks, ldsm_a_row(lane), ldsm_a_col(lane), RB, D), qa);\n" \
    "                    #pragma unroll\n" \
    "                    for (int np = 0; np < RB / 16; ++np) {\n" \
    "                        u32 kb[4];\n" \
    "                        ldsm_x4(sK + (u32)smem_frag_offset(16 * np, 16 * ks, ldsm_b_row(lane), ldsm_b_col(lane), RB, D), kb);\n" \
    "                        mma_bf16(acc_s[2 * np], qa, kb);\n" \
    "                        mma_bf16(acc_s[2 * np + 1], qa, kb + 2);\n" \
    "                    }\n" \
    "                }\n"

/* Per key dim: key sub-block np against this warp's sub-block T: before T -> MMA with the
   bridged A fragment; T itself (diagonal block only) -> exact f32; after T -> zero. The
   branches depend on warp-uniform values only. */
#define SCORES_VEC \
    "                #pragma unroll\n" \
    "                for (int np = 0; np < RB / 16; ++np) {\n" \
    "                    const int kn = tk + 16 * np;\n" \
    "                    if (j == rblk && np == warp) {\n" \
    "                        #pragma unroll\n" \
    "                        for (int h = 0; h < 2; ++h)\n" \
    "                            #pragma unroll\n" \
    "                            for (int i = 0; i < 4; ++i) {\n" \
    "                                const int rk = 16 * np + tile_acc_col(h, lane, i), key = tk + rk, t = tq[i >> 1];\n" \
    "                                acc_s[2 * np + h][i] = (key <= t && t < tend) ? rec_diag_score(sQf, sKf, sB, t0, r0 + 8 * (i >> 1), t, rk, key) : 0.f;\n" \
    "                            }\n" \
    "                    } else if (j < rblk || np < warp) {\n" \
    "                        const int r_i = kn + 15 < tend - 1 ? kn + 15 : tend - 1;\n" \
    "                        #pragma unroll\n" \
    "                        for (int ks = 0; ks < D / 16; ++ks) {\n" \
    "                            u32 qa[4], kb[4];\n" \
    "                            ldsm_x4(sQ + (u32)smem_frag_offset(16 * warp, 16 * ks, ldsm_a_row(lane), ldsm_a_col(lane), RB, D), qa);\n" \
    "                            rec_bridge_a(qa, sB, t0, s_w, r_i, ks, lane);\n" \
    "                            ldsm_x4(sK + (u32)smem_frag_offset(16 * np, 16 * ks, ldsm_b_row(lane), ldsm_b_col(lane), RB, D), kb);\n" \
    "                            mma_bf16(acc_s[2 * np], qa, kb);\n" \
    "                            mma_bf16(acc_s[2 * np + 1], qa, kb + 2);\n" \
    "                        }\n" \
    "                    }\n" \
    "                }\n"

static bool reads_v_axis(const ir_kernel *k, const ir_expr *e) {
    if (!e) return false;
    if (e->op == IR_INPUT && e->input >= 0 && e->input < k->n_inputs)
        for (int i = 0; i < k->inputs[e->input].n_axes; i++)
            if (k->inputs[e->input].axes[i] == IR_AXIS_V) return true;
    for (int i = 0; i < e->n_args; i++)
        if (reads_v_axis(k, e->args[i])) return true;
    return false;
}

void cuda_recur_emit_chunk_mma(FILE *out, const ir_kernel *k, const cuda_plan *p) {
    ir_decay_kind dk = k->decay_kind;
    /* A value scale per token (Mamba2's dt) rides on the f32 scores and on the decayed keys
       of the state update, so V stays the exact input and each product sees one bf16
       rounding, as mamba_ssm's SSD kernels do. Not with normalize (z must not see it) nor
       for a scale that varies along v. */
    bool fold_vs = k->v_scale && !k->normalize && !reads_v_axis(k, k->v_scale);
    bool decays = dk == IR_DECAY_HEAD || dk == IR_DECAY_TOKEN_HEAD;
    bool vec = dk == IR_DECAY_KEY_VECTOR;
    bool norm = k->normalize;
    E("/* chunkwise prefill, tensor cores (bf16 operands, f32 accumulation) */\n");
    E("enum { MW = 4, MNT = 128, RB = %d, D = %d, DVC = %d, MTW = (D / 16 + MW - 1) / MW, MZN = (D + MNT - 1) / MNT,\n"
      "       SMR_S = %d, SMR_S16 = %d, SMR_Z = %d, SMR_Q = %d, SMR_K = %d, SMR_V = %d, SMR_B = %d, SMR_DEN = %d,\n"
      "       SMR_VS = %d, SMR_QF = %d, SMR_KF = %d, SMR_BYTES = %d };\n",
      p->rb, p->rd, p->rdvc, p->rsm_s, p->rsm_s16, p->rsm_z, p->rsm_q, p->rsm_k, p->rsm_v, p->rsm_b, p->rsm_den,
      p->rsm_vs, p->rsm_qf, p->rsm_kf, p->smem_bytes);
    /* staged tile loads: element (row, col) of a [rows][width] swizzled bf16 tile */
    E("ATTNC_DEVICE void rec_put_tile(u32 tile, int row, int col, int rows, int width, float x) {\n"
      "    sts_u16(tile + (u32)smem_tile_offset(row, col, rows, width), f_to_bf16(x));\n"
      "}\n");
    if (vec) {
        /* Per key dim (GLA), secondary chunking by 16-token sub-blocks: the Q tile holds phi(q)
           decayed from the token before its sub-block (s_T), the K tile phi(k) decayed to the
           last token of its sub-block (r_I); a pair of sub-blocks I < T bridges the gap with
           g(a) = ex2(b(s_T, a) - b(r_I, a)) <= 1 on the columns of the A fragment, in
           registers. Every exponent is a decay over a token range, never its inverse. The
           diagonal sub-blocks (I = T) are summed in f32 with each dim's exact decay
           (rec_diag_score). */
        E("ATTNC_DEVICE float rec_bv(u32 sB, int t0, int t, int a) { return (t >= t0 && a < DK) ? rec_cbv(sB, t0, t, a) : 0.f; }\n"
          "/* A fragment of k-step ks times g on its columns: g(c) = ex2(b(s, c) - b(r, c)), r < t0 meaning b = 0 */\n"
          "ATTNC_DEVICE void rec_bridge_a(u32 *qa, u32 sB, int t0, int s, int r, int ks, int lane) {\n"
          "    float g[4];\n"
          "    #pragma unroll\n"
          "    for (int c = 0; c < 4; ++c) {\n"
          "        const int a = 16 * ks + frag_a_col(lane, 2 * (c >> 1), c & 1);\n"
          "        g[c] = a < DK ? ex2(rec_bv(sB, t0, s, a) - rec_bv(sB, t0, r, a)) : 1.f;\n"
          "    }\n"
          "    #pragma unroll\n"
          "    for (int i = 0; i < 4; ++i) {   /* register i: columns frag_a_col(lane, i, 0 | 1) */\n"
          "        const float lo = bf16_to_f((u16)(qa[i] & 0xFFFFu)) * g[2 * (i >> 1)];\n"
          "        const float hi = bf16_to_f((u16)(qa[i] >> 16)) * g[2 * (i >> 1) + 1];\n"
          "        qa[i] = pack_bf16(lo, hi);\n"
          "    }\n"
          "}\n"
          "/* score of (row rq of the Q block, token t; row rk of the K block, key i), i <= t: f32 sum of\n"
          "   bf16 phi values with the exact decay of each dim */\n"
          "ATTNC_DEVICE float rec_diag_score(u32 sQf, u32 sKf, u32 sB, int t0, int rq, int t, int rk, int i) {\n"
          "    float s = 0.f;\n"
          "    for (int a = 0; a < DK; ++a)\n"
          "        s += bf16_to_f(lds_u16(sQf + 2 * (rq * DK + a))) * bf16_to_f(lds_u16(sKf + 2 * (rk * DK + a))) * ex2(rec_cbv(sB, t0, t, a) - rec_cbv(sB, t0, i, a));\n"
          "    return s;\n"
          "}\n");
    }
    E("ATTNC_KERNEL void ATTNC_LAUNCH_BOUNDS(MNT, 1) %s(attnc_args A) {\n", p->fwd_name);
    E("    const int tid = ATTNC_TID, lane = tid & 31, warp = tid >> 5;\n"
      "    const int batch = ATTNC_BID_Z / HQ, head = ATTNC_BID_Z %% HQ, e0 = ATTNC_BID_X * DVC;\n"
      "    const int seq = (int)A.seq_q;\n"
      "    const u32 sb = smem_base();\n"
      "    const u32 sS = sb + SMR_S, sS16 = sb + SMR_S16, sZ = sb + SMR_Z, sQ = sb + SMR_Q, sK = sb + SMR_K, sV = sb + SMR_V;\n"
      "    const u32 sB = sb + SMR_B, sDen = sb + SMR_DEN, sQf = sb + SMR_QF, sKf = sb + SMR_KF, sVs = sb + SMR_VS;\n"
      "    (void)sZ; (void)sB; (void)sDen; (void)sQf; (void)sKf; (void)sVs;\n");
    if (dk == IR_DECAY_HEAD) E("    const float lh = rec_log2decay(&A, 0, head, batch, seq, 0, 0);\n");
    else E("    const float lh = 0.f;\n");
    E("    (void)lh;\n"
      "    for (int i = tid; i < D * DVC; i += MNT) {\n"
      "        const int a = i / DVC, c = i %% DVC, e = e0 + c;\n"
      "        const float s0 = (a < DK && e < DVR) ? rec_state_in(&A, batch, head, a, e) : 0.f;\n"
      "        sts_f32(sS + 4 * i, s0);\n"
      "        rec_put_tile(sS16, a, c, D, DVC, s0);\n"
      "    }\n");
    if (norm) E("    for (int a = tid; a < D; a += MNT) sts_f32(sZ + 4 * a, a < DK ? rec_norm_in(&A, batch, head, a) : 0.f);\n");
    E("    bar_sync();\n"
      "    const int r0 = 16 * warp + (lane >> 2);   /* this lane's rows r0 and r0 + 8 of a row block */\n"
      "    for (int t0 = 0; t0 < seq; t0 += CHUNK) {\n"
      "        const int n = seq - t0 < CHUNK ? seq - t0 : CHUNK, tend = t0 + n, nb = (n + RB - 1) / RB;\n"
      "        rec_decay_table(&A, sB, t0, n, batch, head, seq, tid, MNT);\n"
      "        for (int rblk = 0; rblk < nb; ++rblk) {\n"
      "            const int tr = t0 + rblk * RB;\n"
      "            const int s_w = tr + 16 * warp - 1 < tend - 1 ? tr + 16 * warp - 1 : tend - 1;   /* s_T of this warp's rows */\n"
      "            (void)s_w;\n"
      "            bar_sync();   /* every warp is done with the previous Q block */\n"
      "            for (int i = tid; i < RB * D; i += MNT) {\n"
      "                const int row = i / D, a = i %% D, t = tr + row;\n"
      "                const float x = (t < tend && a < DK) ? rec_q(&A, batch, t, head, seq, a) : 0.f;\n");
    if (vec)
        E("                if (a < DK) sts_u16(sQf + 2 * (row * DK + a), f_to_bf16(x));\n"
          "                const int s_t = tr + (row & ~15) - 1;   /* the token before the row's sub-block */\n"
          "                rec_put_tile(sQ, row, a, RB, D, (t < tend && a < DK) ? x * ex2(rec_cbv(sB, t0, t, a) - rec_bv(sB, t0, s_t, a)) : 0.f);\n");
    else
        E("                rec_put_tile(sQ, row, a, RB, D, x);\n");
    E("            }\n"
      "            bar_sync();   /* Q block staged */\n");
    if (norm && vec)
        E("            if (tid < RB) {   /* (phi(q_t) * decay from the chunk start) . z_prev */\n"
          "                float d = 0.f;\n"
          "                if (tr + tid < tend)\n"
          "                    for (int a = 0; a < DK; ++a) d += bf16_to_f(lds_u16(sQf + 2 * (tid * DK + a))) * ex2(rec_cbv(sB, t0, tr + tid, a)) * lds_f32(sZ + 4 * a);\n"
          "                sts_f32(sDen + 4 * tid, d);\n"
          "            }\n"
          "            bar_sync();\n");
    else if (norm)
        E("            if (tid < RB) {   /* phi(q_t) . z_prev, from the operand actually used */\n"
          "                float d = 0.f;\n"
          "                for (int a = 0; a < DK; ++a) d += bf16_to_f(lds_u16(sQ + (u32)smem_tile_offset(tid, a, RB, D))) * lds_f32(sZ + 4 * a);\n"
          "                sts_f32(sDen + 4 * tid, d);\n"
          "            }\n"
          "            bar_sync();\n");
    E("            int tq[2];\n"
      "            bool okq[2];\n"
      "            float fq[2], den[2];\n"
      "            #pragma unroll\n"
      "            for (int r = 0; r < 2; ++r) {\n"
      "                tq[r] = tr + r0 + 8 * r;\n"
      "                okq[r] = tq[r] < tend;\n"
      "                fq[r] = okq[r] ? %s : 0.f;   /* decay from the chunk start through token t */\n"
      "                den[r] = %s;\n"
      "            }\n"
      "            (void)den;\n",
      decays ? "ex2(rec_cb(sB, t0, tq[r], lh))" : "1.f",
      norm ? "(lane & 3) == 0 ? fq[r] * lds_f32(sDen + 4 * (r0 + 8 * r)) : 0.f" : "0.f");
    /* inter term */
    E("            float acc_o[DVC / 8][4];\n"
      "            #pragma unroll\n"
      "            for (int j = 0; j < DVC / 8; ++j) { acc_o[j][0] = 0.f; acc_o[j][1] = 0.f; acc_o[j][2] = 0.f; acc_o[j][3] = 0.f; }\n"
      "            #pragma unroll\n"
      "            for (int ks = 0; ks < D / 16; ++ks) {\n"
      "                u32 qa[4];\n"
      "                ldsm_x4(sQ + (u32)smem_frag_offset(16 * warp, 16 * ks, ldsm_a_row(lane), ldsm_a_col(lane), RB, D), qa);\n"
      "%s"
      "                #pragma unroll\n"
      "                for (int j = 0; j < DVC / 16; ++j) {\n"
      "                    u32 sf[4];\n"
      "                    ldsm_x4_t(sS16 + (u32)smem_frag_offset(16 * ks, 16 * j, ldsm_bt_row(lane), ldsm_bt_col(lane), D, DVC), sf);\n"
      "                    mma_bf16(acc_o[2 * j], qa, sf);\n"
      "                    mma_bf16(acc_o[2 * j + 1], qa, sf + 2);\n"
      "                }\n"
      "            }\n"
      "            #pragma unroll\n"
      "            for (int j = 0; j < DVC / 8; ++j) {\n"
      "                acc_o[j][0] *= fq[0]; acc_o[j][1] *= fq[0];\n"
      "                acc_o[j][2] *= fq[1]; acc_o[j][3] *= fq[1];\n"
      "            }\n",
      vec ? "                rec_bridge_a(qa, sB, t0, s_w, t0 - 1, ks, lane);   /* decay chunk start -> s_T */\n" : "");
    /* intra term */
    E("            for (int j = 0; j <= rblk; ++j) {\n"
      "                const int tk = t0 + j * RB;\n"
      "                bar_sync();   /* every warp is done with the previous K and V */\n"
      "                for (int i = tid; i < RB * D; i += MNT) {\n"
      "                    const int row = i / D, a = i %% D, t = tk + row;\n"
      "                    const float x = (t < tend && a < DK) ? rec_k(&A, batch, t, head, seq, a) : 0.f;\n"
      "%s"
      "                }\n"
      "                for (int i = tid; i < RB * DVC; i += MNT) {\n"
      "                    const int row = i / DVC, c = i %% DVC, t = tk + row, e = e0 + c;\n"
      "                    rec_put_tile(sV, row, c, RB, DVC, (t < tend && e < DVR) ? %s : 0.f);\n"
      "                }\n"
      "%s"
      "                bar_sync();   /* K, V block staged */\n"
      "                float acc_s[RB / 8][4];\n"
      "                #pragma unroll\n"
      "                for (int nt = 0; nt < RB / 8; ++nt) { acc_s[nt][0] = 0.f; acc_s[nt][1] = 0.f; acc_s[nt][2] = 0.f; acc_s[nt][3] = 0.f; }\n"
      "%s"
      "                #pragma unroll\n"
      "                for (int nt = 0; nt < RB / 8; ++nt)\n"
      "                    #pragma unroll\n"
      "                    for (int i = 0; i < 4; ++i) {\n"
      "                        const int key = tk + tile_acc_col(nt, lane, i), t = tq[i >> 1];\n"
      "                        const bool keep = key <= t && t < tend;\n"
      "                        acc_s[nt][i] = keep ? %s : 0.f;\n"
      "%s"
      "                    }\n",
      vec ? KSTAGE_VEC : "                    rec_put_tile(sK, row, a, RB, D, x);\n",
      fold_vs ? "rec_v(&A, batch, t, head, e)" : "rec_vs(&A, batch, t, head, seq, e) * rec_v(&A, batch, t, head, e)",
      fold_vs ? "                if (tid < RB) sts_f32(sVs + 4 * tid, tk + tid < tend ? rec_vs(&A, batch, tk + tid, head, seq, 0) : 0.f);\n" : "",
      vec ? SCORES_VEC : SCORES_PLAIN,
      decays ? (fold_vs ? "acc_s[nt][i] * ex2(rec_seg(sB, t0, t, key, lh)) * lds_f32(sVs + 4 * (key - tk))" : "acc_s[nt][i] * ex2(rec_seg(sB, t0, t, key, lh))")
             : (fold_vs ? "acc_s[nt][i] * lds_f32(sVs + 4 * (key - tk))" : "acc_s[nt][i]"),
      norm ? "                        den[i >> 1] += acc_s[nt][i];\n" : "");
    E("                #pragma unroll\n"
      "                for (int kk = 0; kk < RB / 16; ++kk) {\n"
      "                    u32 pa[4];\n"
      "                    #pragma unroll\n"
      "                    for (int r = 0; r < 4; ++r)\n"
      "                        pa[r] = pack_bf16(acc_s[repack_tile(kk, r)][repack_acc(r, 0)], acc_s[repack_tile(kk, r)][repack_acc(r, 1)]);\n"
      "                    #pragma unroll\n"
      "                    for (int jv = 0; jv < DVC / 16; ++jv) {\n"
      "                        u32 vb[4];\n"
      "                        ldsm_x4_t(sV + (u32)smem_frag_offset(16 * kk, 16 * jv, ldsm_bt_row(lane), ldsm_bt_col(lane), RB, DVC), vb);\n"
      "                        mma_bf16(acc_o[2 * jv], pa, vb);\n"
      "                        mma_bf16(acc_o[2 * jv + 1], pa, vb + 2);\n"
      "                    }\n"
      "                }\n"
      "            }\n");
    /* epilogue */
    if (norm)
        E("            #pragma unroll\n"
          "            for (int r = 0; r < 2; ++r) {   /* the quad of lanes sharing a row */\n"
          "                den[r] += shfl_xor(den[r], 1);\n"
          "                den[r] += shfl_xor(den[r], 2);\n"
          "            }\n");
    E("            #pragma unroll\n"
      "            for (int r = 0; r < 2; ++r) {\n"
      "                if (!okq[r]) continue;\n"
      "                #pragma unroll\n"
      "                for (int j = 0; j < DVC / 8; ++j)\n"
      "                    #pragma unroll\n"
      "                    for (int h = 0; h < 2; ++h) {\n"
      "                        const int e = e0 + tile_acc_col(j, lane, 2 * r + h);\n"
      "                        if (e < DVR)\n"
      "                            rec_put_o(&A, batch, tq[r], head, e, acc_o[j][2 * r + h]%s + rec_skip(&A, batch, tq[r], head, seq, e) * rec_v(&A, batch, tq[r], head, e));\n"
      "                    }\n"
      "            }\n"
      "        }\n",
      norm ? " / den[r]" : "");
    /* state update */
    E("        const float bl = rec_cb(sB, t0, tend - 1, lh), fl = %s;\n"
      "        (void)bl;\n"
      "        float acc_st[MTW][DVC / 8][4];\n"
      "        #pragma unroll\n"
      "        for (int u = 0; u < MTW; ++u) {\n"
      "            const int mt = warp + MW * u;\n"
      "            #pragma unroll\n"
      "            for (int nt = 0; nt < DVC / 8; ++nt)\n"
      "                #pragma unroll\n"
      "                for (int i = 0; i < 4; ++i) {\n"
      "                    const int a = 16 * mt + frag_acc_row(lane, i), c = tile_acc_col(nt, lane, i);\n"
      "                    acc_st[u][nt][i] = mt < D / 16 ? lds_f32(sS + 4 * (a * DVC + c)) * %s : 0.f;\n"
      "                }\n"
      "        }\n",
      decays ? "ex2(bl)" : "1.f", vec ? "(a < DK ? ex2(rec_cbv(sB, t0, tend - 1, a)) : 1.f)" : "fl");
    if (norm)
        E("        float zc[MZN];\n"
          "        #pragma unroll\n"
          "        for (int i = 0; i < MZN; ++i) zc[i] = tid + i * MNT < D ? lds_f32(sZ + 4 * (tid + i * MNT)) * %s : 0.f;\n",
          vec ? "(tid + i * MNT < DK ? ex2(rec_cbv(sB, t0, tend - 1, tid + i * MNT)) : 1.f)" : "fl");
    E("        for (int j = 0; j < nb; ++j) {\n"
      "            const int tk = t0 + j * RB;\n"
      "            bar_sync();   /* every warp is done with the previous K and V */\n"
      "            for (int i = tid; i < RB * D; i += MNT) {\n"
      "                const int row = i / D, a = i %% D, t = tk + row;\n"
      "                rec_put_tile(sK, row, a, RB, D, (t < tend && a < DK) ? rec_k(&A, batch, t, head, seq, a)%s%s : 0.f);\n"
      "            }\n"
      "            for (int i = tid; i < RB * DVC; i += MNT) {\n"
      "                const int row = i / DVC, c = i %% DVC, t = tk + row, e = e0 + c;\n"
      "                rec_put_tile(sV, row, c, RB, DVC, (t < tend && e < DVR) ? %s : 0.f);\n"
      "            }\n"
      "            bar_sync();   /* decayed K and V staged */\n"
      "            #pragma unroll\n"
      "            for (int u = 0; u < MTW; ++u) {\n"
      "                const int mt = warp + MW * u;\n"
      "                if (mt < D / 16) {   /* warp-uniform */\n"
      "                    #pragma unroll\n"
      "                    for (int kt = 0; kt < RB / 16; ++kt) {\n"
      "                        u32 ka[4];\n"
      "                        ldsm_x4_t(sK + (u32)smem_frag_offset(16 * kt, 16 * mt, ldsm_b_row(lane), ldsm_b_col(lane), RB, D), ka);\n"
      "                        #pragma unroll\n"
      "                        for (int jv = 0; jv < DVC / 16; ++jv) {\n"
      "                            u32 vb[4];\n"
      "                            ldsm_x4_t(sV + (u32)smem_frag_offset(16 * kt, 16 * jv, ldsm_bt_row(lane), ldsm_bt_col(lane), RB, DVC), vb);\n"
      "                            mma_bf16(acc_st[u][2 * jv], ka, vb);\n"
      "                            mma_bf16(acc_st[u][2 * jv + 1], ka, vb + 2);\n"
      "                        }\n"
      "                    }\n"
      "                }\n"
      "            }\n",
      decays ? " * ex2(bl - rec_cb(sB, t0, t, lh))" : vec ? " * ex2(rec_cbv(sB, t0, tend - 1, a) - rec_cbv(sB, t0, t, a))" : "",
      fold_vs ? " * rec_vs(&A, batch, t, head, seq, 0)" : "",
      fold_vs ? "rec_v(&A, batch, t, head, e)" : "rec_vs(&A, batch, t, head, seq, e) * rec_v(&A, batch, t, head, e)");
    if (norm)
        E("            #pragma unroll\n"
          "            for (int i = 0; i < MZN; ++i) {\n"
          "                const int a = tid + i * MNT;\n"
          "                if (a < D)\n"
          "                    for (int r = 0; r < RB; ++r) zc[i] += bf16_to_f(lds_u16(sK + (u32)smem_tile_offset(r, a, RB, D)));\n"
          "            }\n");
    E("        }\n"
      "        #pragma unroll\n"
      "        for (int u = 0; u < MTW; ++u) {\n"
      "            const int mt = warp + MW * u;\n"
      "            if (mt < D / 16)\n"
      "                #pragma unroll\n"
      "                for (int nt = 0; nt < DVC / 8; ++nt)\n"
      "                    #pragma unroll\n"
      "                    for (int i = 0; i < 4; ++i) {\n"
      "                        const int a = 16 * mt + frag_acc_row(lane, i), c = tile_acc_col(nt, lane, i);\n"
      "                        sts_f32(sS + 4 * (a * DVC + c), acc_st[u][nt][i]);\n"
      "                        rec_put_tile(sS16, a, c, D, DVC, acc_st[u][nt][i]);\n"
      "                    }\n"
      "        }\n");
    if (norm)
        E("        #pragma unroll\n"
          "        for (int i = 0; i < MZN; ++i)\n"
          "            if (tid + i * MNT < D) sts_f32(sZ + 4 * (tid + i * MNT), zc[i]);\n");
    E("        bar_sync();   /* the new state is visible */\n"
      "    }\n"
      "    for (int i = tid; i < D * DVC; i += MNT) {\n"
      "        const int a = i / DVC, e = e0 + i %% DVC;\n"
      "        if (a < DK && e < DVR) rec_put_state(&A, batch, head, a, e, lds_f32(sS + 4 * i));\n"
      "    }\n");
    if (norm) E("    for (int a = tid; a < DK; a += MNT) rec_put_norm(&A, batch, head, a, lds_f32(sZ + 4 * a));\n");
    E("}\n\n");
}
