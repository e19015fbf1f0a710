/* The chunkwise parallel prefill in fp32 SIMT (f32 kernels; bf16/f16 ones before sm_80 or
 * with a per-key-dim decay). variants.md §4: per chunk of CHUNK tokens starting at t0,
 *   o_t   = (phi(q_t) ⊙ Λ(t0..t)) S_prev + Σ_{i <= t in chunk} (phi(q_t) ⊙ Λ(i+1..t)) · phi(k_i) s_i v_i
 *   S_new = Λ(t0..last) ⊙ S_prev + Σ_i (phi(k_i) ⊙ Λ(i+1..last))ᵀ s_i v_i
 * (Λ(a..b) the product of the decays of tokens a..b, from the log2 table: cuda_recur.h).
 * With normalize, z rides along as S does with v ≡ 1 and divides o.
 *
 * Tiling: one CTA per (v slice of DVC columns, batch, head), 256 threads as a 16 x 16 grid
 * (ty, tx). A chunk is cut into row blocks of RB tokens; for row block r the CTA computes
 * the inter-chunk term from the f32 state in shared memory, then walks key blocks j <= r of
 * the same chunk: scores P = (Q K^T ⊙ decay mask) into shared memory, O += P V. Each thread
 * owns a TI x TJ register tile of O (rows ty + 16 i, columns tx + 16 j: conflict-free
 * shared reads) and a TI x TI tile of P. After the chunk's row blocks, the state update
 * walks the key blocks again with the keys pre-scaled by their decay to the chunk end; a
 * thread owns a TA x TJ tile of S. Row strides of the Q/K/P tiles are padded by one float
 * so column walks hit 16 different banks.
 *
 * In place: each CTA reads its own state columns before its first write to them (and with
 * normalize a single CTA per head owns z), so state_out may alias state_in. */
#include <stdio.h>
#include "codegen/cuda/cuda_recur.h"

#define E(...) fprintf(out, __VA_ARGS__)

void cuda_recur_emit_chunk_simt(FILE *out, const ir_kernel *k, const cuda_plan *p) {
    ir_decay_kind dk = k->decay_kind;
    bool scalar = dk == IR_DECAY_HEAD || dk == IR_DECAY_TOKEN_HEAD;
    bool vec = dk == IR_DECAY_KEY_VECTOR;
    bool norm = k->normalize;
    E("/* chunkwise prefill, fp32 SIMT */\n");
    E("enum { CT_NT = 256, RB = %d, DVC = %d, TI = RB / 16, TJ = DVC / 16, TA = (DK + 15) / 16, QST = DK + 1, PST = RB + 1,\n"
      "       CT_ZN = (DK + CT_NT - 1) / CT_NT,\n"
      "       SMR_S = %d, SMR_Z = %d, SMR_Q = %d, SMR_K = %d, SMR_V = %d, SMR_P = %d, SMR_B = %d, SMR_BYTES = %d };\n",
      p->rb, p->rdvc, p->rsm_s, p->rsm_z, p->rsm_q, p->rsm_k, p->rsm_v, p->rsm_p, p->rsm_b, p->smem_bytes);
    E("ATTNC_KERNEL void ATTNC_LAUNCH_BOUNDS(CT_NT, 1) %s(attnc_args A) {\n", p->fwd_name);
    E("    const int tid = ATTNC_TID, ty = tid >> 4, tx = tid & 15;\n"
      "    const int batch = ATTNC_BID_Z / HQ, head = ATTNC_BID_Z %% HQ, e0 = ATTNC_BID_X * DVC;\n"
      "    const int seq = (int)A.seq_q;\n"
      "    const u32 sb = smem_base();\n"
      "    const u32 sS = sb + SMR_S, sZ = sb + SMR_Z, sQ = sb + SMR_Q, sK = sb + SMR_K, sV = sb + SMR_V, sP = sb + SMR_P, sB = sb + SMR_B;\n"
      "    (void)sZ; (void)sB;\n");
    if (dk == IR_DECAY_HEAD) E("    const float lh = rec_log2decay(&A, 0, head, batch, seq, 0, 0);\n");
    else E("    const float lh = 0.f;\n");
    E("    (void)lh;\n");
    E("    for (int i = tid; i < DK * DVC; i += CT_NT) {\n"
      "        const int a = i / DVC, e = e0 + i %% DVC;\n"
      "        sts_f32(sS + 4 * i, e < DVR ? rec_state_in(&A, batch, head, a, e) : 0.f);\n"
      "    }\n");
    if (norm) E("    for (int a = tid; a < DK; a += CT_NT) sts_f32(sZ + 4 * a, rec_norm_in(&A, batch, head, a));\n");
    E("    bar_sync();\n");
    E("    for (int t0 = 0; t0 < seq; t0 += CHUNK) {\n"
      "        const int n = seq - t0 < CHUNK ? seq - t0 : CHUNK, tend = t0 + n, nb = (n + RB - 1) / RB;\n"
      "        rec_decay_table(&A, sB, t0, n, batch, head, seq, tid, CT_NT);\n"
      "        for (int rblk = 0; rblk < nb; ++rblk) {\n"
      "            const int tr = t0 + rblk * RB;\n"
      "            for (int i = tid; i < RB * DK; i += CT_NT) {\n"
      "                const int row = i / DK, a = i %% DK, t = tr + row;\n"
      "                sts_f32(sQ + 4 * (row * QST + a), t < tend ? rec_q(&A, batch, t, head, seq, a) : 0.f);\n"
      "            }\n"
      "            bar_sync();   /* Q block staged */\n"
      "            int tq[TI];\n"
      "            bool okq[TI];\n"
      "            float o[TI][TJ], den[TI];\n"
      "            #pragma unroll\n"
      "            for (int ii = 0; ii < TI; ++ii) {\n"
      "                tq[ii] = tr + ty + 16 * ii;\n"
      "                okq[ii] = tq[ii] < tend;\n"
      "                den[ii] = 0.f;\n"
      "                #pragma unroll\n"
      "                for (int jj = 0; jj < TJ; ++jj) o[ii][jj] = 0.f;\n"
      "            }\n");
    if (vec)
        E("            int tqc[TI];   /* rows past the chunk read the last valid row's decays (their output is dropped) */\n"
          "            #pragma unroll\n"
          "            for (int ii = 0; ii < TI; ++ii) tqc[ii] = okq[ii] ? tq[ii] : tend - 1;\n");
    /* inter-chunk term */
    E("            #pragma unroll 4\n"
      "            for (int a = 0; a < DK; ++a) {\n"
      "                float qv[TI], sv[TJ];\n"
      "                #pragma unroll\n"
      "                for (int ii = 0; ii < TI; ++ii) qv[ii] = lds_f32(sQ + 4 * ((ty + 16 * ii) * QST + a))%s;\n"
      "                #pragma unroll\n"
      "                for (int jj = 0; jj < TJ; ++jj) sv[jj] = lds_f32(sS + 4 * (a * DVC + tx + 16 * jj));\n"
      "                #pragma unroll\n"
      "                for (int ii = 0; ii < TI; ++ii)\n"
      "                    #pragma unroll\n"
      "                    for (int jj = 0; jj < TJ; ++jj) o[ii][jj] += qv[ii] * sv[jj];\n"
      "            }\n",
      vec ? " * ex2(rec_cbv(sB, t0, tqc[ii], a))" : "");
    if (scalar) {
        E("            float fq[TI];   /* decay from the chunk start through token t */\n"
          "            #pragma unroll\n"
          "            for (int ii = 0; ii < TI; ++ii) {\n"
          "                fq[ii] = okq[ii] ? ex2(rec_cb(sB, t0, tq[ii], lh)) : 0.f;\n"
          "                #pragma unroll\n"
          "                for (int jj = 0; jj < TJ; ++jj) o[ii][jj] *= fq[ii];\n"
          "            }\n");
    }
    if (norm) {
        /* this thread's share of phi(q_t) · (decayed z_prev): columns tx, tx + 16, ... */
        E("            #pragma unroll\n"
          "            for (int ii = 0; ii < TI; ++ii) {\n"
          "                float d = 0.f;\n"
          "                for (int a = tx; a < DK; a += 16) d += lds_f32(sQ + 4 * ((ty + 16 * ii) * QST + a))%s * lds_f32(sZ + 4 * a);\n"
          "                den[ii] += %s;\n"
          "            }\n",
          vec ? " * ex2(rec_cbv(sB, t0, tqc[ii], a))" : "", scalar ? "d * fq[ii]" : "d");
    }
    /* intra-chunk: key blocks j <= rblk */
    E("            for (int j = 0; j <= rblk; ++j) {\n"
      "                const int tk = t0 + j * RB;\n"
      "                bar_sync();   /* every thread is done with the previous K, V and P */\n"
      "                for (int i = tid; i < RB * DK; i += CT_NT) {\n"
      "                    const int row = i / DK, a = i %% DK, t = tk + row;\n"
      "                    sts_f32(sK + 4 * (row * QST + a), t < tend ? rec_k(&A, batch, t, head, seq, a) : 0.f);\n"
      "                }\n"
      "                for (int i = tid; i < RB * DVC; i += CT_NT) {\n"
      "                    const int row = i / DVC, t = tk + row, e = e0 + i %% DVC;\n"
      "                    sts_f32(sV + 4 * i, (t < tend && e < DVR) ? rec_vs(&A, batch, t, head, seq, e) * rec_v(&A, batch, t, head, e) : 0.f);\n"
      "                }\n"
      "                bar_sync();   /* K, V block staged */\n"
      "                int ik[TI];\n"
      "                #pragma unroll\n"
      "                for (int jj = 0; jj < TI; ++jj) ik[jj] = tk + tx + 16 * jj;\n"
      "                float pt[TI][TI];\n"
      "                #pragma unroll\n"
      "                for (int ii = 0; ii < TI; ++ii)\n"
      "                    #pragma unroll\n"
      "                    for (int jj = 0; jj < TI; ++jj) pt[ii][jj] = 0.f;\n");
    if (vec)
        E("                int ikc[TI];\n"
          "                #pragma unroll\n"
          "                for (int jj = 0; jj < TI; ++jj) ikc[jj] = ik[jj] < tend ? ik[jj] : tend - 1;\n");
    E("                #pragma unroll 4\n"
      "                for (int a = 0; a < DK; ++a) {\n"
      "                    float qv[TI], kv[TI];\n"
      "                    #pragma unroll\n"
      "                    for (int ii = 0; ii < TI; ++ii) qv[ii] = lds_f32(sQ + 4 * ((ty + 16 * ii) * QST + a));\n"
      "                    #pragma unroll\n"
      "                    for (int jj = 0; jj < TI; ++jj) kv[jj] = lds_f32(sK + 4 * ((tx + 16 * jj) * QST + a));\n");
    if (vec) {
        /* per key dim the decay sits inside the sum: exp2(b(t, a) - b(i, a)) elementwise, a
           difference of the chunk's cumulative sums (never an inverse decay); pairs i > t may
           overflow here, the select below drops them */
        E("                    float bq[TI], bk[TI];\n"
          "                    #pragma unroll\n"
          "                    for (int ii = 0; ii < TI; ++ii) bq[ii] = rec_cbv(sB, t0, tqc[ii], a);\n"
          "                    #pragma unroll\n"
          "                    for (int jj = 0; jj < TI; ++jj) bk[jj] = rec_cbv(sB, t0, ikc[jj], a);\n"
          "                    #pragma unroll\n"
          "                    for (int ii = 0; ii < TI; ++ii)\n"
          "                        #pragma unroll\n"
          "                        for (int jj = 0; jj < TI; ++jj) pt[ii][jj] += qv[ii] * kv[jj] * ex2(bq[ii] - bk[jj]);\n");
    } else {
        E("                    #pragma unroll\n"
          "                    for (int ii = 0; ii < TI; ++ii)\n"
          "                        #pragma unroll\n"
          "                        for (int jj = 0; jj < TI; ++jj) pt[ii][jj] += qv[ii] * kv[jj];\n");
    }
    E("                }\n");
    /* causal decay mask, assigned (never multiplied into a masked value) */
    const char *decayed = scalar ? "pt[ii][jj] * ex2(rec_seg(sB, t0, tq[ii], ik[jj], lh))" : "pt[ii][jj]";
    E("                #pragma unroll\n"
      "                for (int ii = 0; ii < TI; ++ii)\n"
      "                    #pragma unroll\n"
      "                    for (int jj = 0; jj < TI; ++jj) {\n"
      "                        const bool keep = ik[jj] <= tq[ii] && okq[ii];\n"
      "                        const float pv = keep ? %s : 0.f;\n"
      "%s"
      "                        sts_f32(sP + 4 * ((ty + 16 * ii) * PST + tx + 16 * jj), pv);\n"
      "                    }\n"
      "                bar_sync();   /* P block complete */\n"
      "                #pragma unroll 4\n"
      "                for (int i = 0; i < RB; ++i) {\n"
      "                    float pv[TI], vv[TJ];\n"
      "                    #pragma unroll\n"
      "                    for (int ii = 0; ii < TI; ++ii) pv[ii] = lds_f32(sP + 4 * ((ty + 16 * ii) * PST + i));\n"
      "                    #pragma unroll\n"
      "                    for (int jj = 0; jj < TJ; ++jj) vv[jj] = lds_f32(sV + 4 * (i * DVC + tx + 16 * jj));\n"
      "                    #pragma unroll\n"
      "                    for (int ii = 0; ii < TI; ++ii)\n"
      "                        #pragma unroll\n"
      "                        for (int jj = 0; jj < TJ; ++jj) o[ii][jj] += pv[ii] * vv[jj];\n"
      "                }\n"
      "            }\n",
      decayed, norm ? "                        den[ii] += pv;\n" : "");
    /* epilogue */
    if (norm)
        E("            #pragma unroll\n"
          "            for (int ii = 0; ii < TI; ++ii)   /* the 16 threads of a row (lanes differing in tx) */\n"
          "                #pragma unroll\n"
          "                for (int m = 1; m < 16; m <<= 1) den[ii] += shfl_xor(den[ii], m);\n");
    E("            #pragma unroll\n"
      "            for (int ii = 0; ii < TI; ++ii) {\n"
      "                if (!okq[ii]) continue;\n"
      "                #pragma unroll\n"
      "                for (int jj = 0; jj < TJ; ++jj) {\n"
      "                    const int e = e0 + tx + 16 * jj;\n"
      "                    if (e < DVR)\n"
      "                        rec_put_o(&A, batch, tq[ii], head, e, o[ii][jj]%s + rec_skip(&A, batch, tq[ii], head, seq, e) * rec_v(&A, batch, tq[ii], head, e));\n"
      "                }\n"
      "            }\n"
      "        }\n",
      norm ? " / den[ii]" : "");
    /* state update */
    E("        /* state update: S = Λ(chunk) ⊙ S + Σ_i (phi(k_i) ⊙ Λ(i+1..last))ᵀ s_i v_i */\n");
    if (scalar) E("        const float bl = rec_cb(sB, t0, tend - 1, lh), fl = ex2(bl);\n");
    E("        float acc[TA][TJ];\n"
      "        #pragma unroll\n"
      "        for (int ia = 0; ia < TA; ++ia) {\n"
      "            const int a = ty + 16 * ia;\n"
      "            #pragma unroll\n"
      "            for (int jj = 0; jj < TJ; ++jj)\n"
      "                acc[ia][jj] = a < DK ? lds_f32(sS + 4 * (a * DVC + tx + 16 * jj))%s : 0.f;\n"
      "        }\n",
      scalar ? " * fl" : vec ? " * ex2(rec_cbv(sB, t0, tend - 1, a))" : "");
    if (norm)
        E("        float zc[CT_ZN];\n"
          "        #pragma unroll\n"
          "        for (int i = 0; i < CT_ZN; ++i) {\n"
          "            const int a = tid + i * CT_NT;\n"
          "            zc[i] = a < DK ? lds_f32(sZ + 4 * a)%s : 0.f;\n"
          "        }\n",
          scalar ? " * fl" : vec ? " * ex2(rec_cbv(sB, t0, tend - 1, a))" : "");
    const char *kscale = scalar ? " * ex2(bl - rec_cb(sB, t0, t, lh))"
                         : vec ? " * ex2(rec_cbv(sB, t0, tend - 1, a) - rec_cbv(sB, t0, t, a))" : "";
    E("        for (int j = 0; j < nb; ++j) {\n"
      "            const int tk = t0 + j * RB;\n"
      "            bar_sync();   /* every thread is done with the previous K and V */\n"
      "            for (int i = tid; i < RB * DK; i += CT_NT) {\n"
      "                const int row = i / DK, a = i %% DK, t = tk + row;\n"
      "                sts_f32(sK + 4 * (row * QST + a), t < tend ? rec_k(&A, batch, t, head, seq, a)%s : 0.f);\n"
      "            }\n"
      "            for (int i = tid; i < RB * DVC; i += CT_NT) {\n"
      "                const int row = i / DVC, t = tk + row, e = e0 + i %% DVC;\n"
      "                sts_f32(sV + 4 * i, (t < tend && e < DVR) ? rec_vs(&A, batch, t, head, seq, e) * rec_v(&A, batch, t, head, e) : 0.f);\n"
      "            }\n"
      "            bar_sync();   /* decayed K and V staged */\n"
      "            #pragma unroll 4\n"
      "            for (int i = 0; i < RB; ++i) {\n"
      "                float kv[TA], vv[TJ];\n"
      "                #pragma unroll\n"
      "                for (int ia = 0; ia < TA; ++ia) kv[ia] = ty + 16 * ia < DK ? lds_f32(sK + 4 * (i * QST + ty + 16 * ia)) : 0.f;\n"
      "                #pragma unroll\n"
      "                for (int jj = 0; jj < TJ; ++jj) vv[jj] = lds_f32(sV + 4 * (i * DVC + tx + 16 * jj));\n"
      "                #pragma unroll\n"
      "                for (int ia = 0; ia < TA; ++ia)\n"
      "                    #pragma unroll\n"
      "                    for (int jj = 0; jj < TJ; ++jj) acc[ia][jj] += kv[ia] * vv[jj];\n"
      "            }\n",
      kscale);
    if (norm)
        E("            #pragma unroll\n"
          "            for (int i = 0; i < CT_ZN; ++i) {\n"
          "                const int a = tid + i * CT_NT;\n"
          "                if (a < DK)\n"
          "                    for (int r = 0; r < RB; ++r) zc[i] += lds_f32(sK + 4 * (r * QST + a));\n"
          "            }\n");
    E("        }\n"
      "        #pragma unroll\n"
      "        for (int ia = 0; ia < TA; ++ia) {\n"
      "            const int a = ty + 16 * ia;\n"
      "            if (a < DK)\n"
      "                #pragma unroll\n"
      "                for (int jj = 0; jj < TJ; ++jj) sts_f32(sS + 4 * (a * DVC + tx + 16 * jj), acc[ia][jj]);\n"
      "        }\n");
    if (norm)
        E("        #pragma unroll\n"
          "        for (int i = 0; i < CT_ZN; ++i)\n"
          "            if (tid + i * CT_NT < DK) sts_f32(sZ + 4 * (tid + i * CT_NT), zc[i]);\n");
    E("        bar_sync();   /* the new state is visible */\n"
      "    }\n"
      "    for (int i = tid; i < DK * DVC; i += CT_NT) {\n"
      "        const int a = i / DVC, e = e0 + i %% DVC;\n"
      "        if (e < DVR) rec_put_state(&A, batch, head, a, e, lds_f32(sS + 4 * i));\n"
      "    }\n");
    if (norm) E("    for (int a = tid; a < DK; a += CT_NT) rec_put_norm(&A, batch, head, a, lds_f32(sZ + 4 * a));\n");
    E("}\n\n");
}
