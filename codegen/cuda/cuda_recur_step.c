/* The recurrent step kernel: decode (one token, state in, state out), decode-phase kernels
 * with a few tokens, launches of a prefill kernel with seq <= 1, and the scan form of
 * per-state-element decays (Mamba-1, S4D), whose prefill has no matmul form.
 *
 * One CTA per (batch, head). Lane l of every warp owns v columns l, l + 32, ... (ST_NC of
 * them); warp w owns the d_k rows [w * ST_RPW, (w + 1) * ST_RPW). The thread's slice of the
 * state lives in registers for the whole launch, so HBM sees the state exactly once in and
 * once out, in coalesced 128-byte rows (a warp reads 32 consecutive columns of one row).
 * Per token: the threads stage phi(q), phi(k), the key decays, v and s * v in shared memory
 * (barrier), update their state elements and their partial o_e = Σ_a phi(q)_a S[a][e]
 * (barrier), and warp 0 adds the ST_W partials, normalises, adds the skip term and stores.
 * The token buffers alternate, so the next token's staging overlaps warp 0's epilogue and a
 * token costs two barriers.
 *
 * In place (state_out == state_in, norm_out == norm_in): every state element is read and
 * written by the same thread (read before the first token, written after the last), and z
 * entries likewise, and no other CTA touches this (batch, head): safe. */
#include <stdio.h>
#include "codegen/cuda/cuda_recur.h"

#define E(...) fprintf(out, __VA_ARGS__)

void cuda_recur_emit_step(FILE *out, const ir_kernel *k, const cuda_plan *p, const char *name) {
    ir_decay_kind dk = k->decay_kind;
    bool scalar = dk == IR_DECAY_HEAD || dk == IR_DECAY_TOKEN_HEAD;
    int zn = (k->d_qk + p->step_threads - 1) / p->step_threads;
    E("/* recurrent step kernel %s */\n", name);
    E("enum { ST_W = %d, ST_RPW = %d, ST_NC = %d, ST_NT = %d, ST_VP = 32 * ST_NC, ST_ZN = %d,\n"
      "       ST_Q = 0, ST_K = ST_Q + 4 * DK, ST_L = ST_K + 4 * DK, ST_DZ = ST_L + 4 * DK, ST_V = ST_DZ + 4 * DK,\n"
      "       ST_WV = ST_V + 4 * ST_VP, ST_RED = ST_WV + 4 * ST_VP, ST_L0 = ST_RED + 4 * ST_W * ST_VP,\n"
      "       ST_BUF = (ST_L0 + 16 + 15) / 16 * 16 };\n",
      p->step_warps, p->step_rpw, p->step_ncol, p->step_threads, zn);
    E("ATTNC_KERNEL void ATTNC_LAUNCH_BOUNDS(ST_NT, 1) %s(attnc_args A) {\n", name);
    E("    const int tid = ATTNC_TID, lane = tid & 31, warp = tid >> 5;\n"
      "    const int batch = ATTNC_BID_Z / HQ, head = ATTNC_BID_Z %% HQ;\n"
      "    const int seq = (int)A.seq_q;\n"
      "    const u32 sb = smem_base();\n"
      "    const bool st_in = A.state_in != 0, st_out = A.state_out != 0;\n"
      "    float s[ST_NC][ST_RPW];\n"
      "    /* one address per column group, stepped down the rows: a 64-bit multiply per\n"
      "       element here doubled the step kernel's compile time */\n"
      "    #pragma unroll\n"
      "    for (int c = 0; c < ST_NC; ++c) {\n"
      "        u64 p = rec_state_addr(A.state_in, A.sin_st, batch, head, warp * ST_RPW, 32 * c + lane);\n"
      "        #pragma unroll\n"
      "        for (int r = 0; r < ST_RPW; ++r, p += 4 * (u64)A.sin_st[2]) {\n"
      "            const int a = warp * ST_RPW + r, e = 32 * c + lane;\n"
      "            s[c][r] = (st_in && a < DK && e < DVR) ? LDG((const float *)p) : 0.f;\n"
      "        }\n"
      "    }\n");
    if (k->normalize)
        E("    float z[ST_ZN];   /* z[i] is entry tid + i * ST_NT of the normaliser */\n"
          "    #pragma unroll\n"
          "    for (int i = 0; i < ST_ZN; ++i) z[i] = tid + i * ST_NT < DK ? rec_norm_in(&A, batch, head, tid + i * ST_NT) : 0.f;\n");
    E("    for (int t = 0; t < seq; ++t) {\n"
      "        const u32 buf = sb + (u32)((t & 1) * ST_BUF);\n"
      "        for (int a = tid; a < DK; a += ST_NT) {\n"
      "            sts_f32(buf + ST_Q + 4 * a, rec_q(&A, batch, t, head, seq, a));\n"
      "            sts_f32(buf + ST_K + 4 * a, rec_k(&A, batch, t, head, seq, a));\n");
    if (dk == IR_DECAY_KEY_VECTOR) E("            sts_f32(buf + ST_L + 4 * a, rec_decay(&A, t, head, batch, seq, a, 0));\n");
    E("        }\n"
      "        for (int e = tid; e < ST_VP; e += ST_NT) {\n"
      "            const float v = e < DVR ? rec_v(&A, batch, t, head, e) : 0.f;\n"
      "            sts_f32(buf + ST_V + 4 * e, v);\n"
      "            sts_f32(buf + ST_WV + 4 * e, e < DVR ? rec_vs(&A, batch, t, head, seq, e) * v : 0.f);\n"
      "        }\n");
    if (scalar) E("        if (tid == 0) sts_f32(buf + ST_L0, rec_decay(&A, t, head, batch, seq, 0, 0));\n");
    E("        bar_sync();   /* the token is staged */\n");
    if (scalar) E("        const float lam0 = lds_f32(buf + ST_L0);\n");
    if (k->normalize) {
        /* z_t = Λ_t z_{t-1} + phi(k_t) with Λ along k (not v); q.z summed by warp 0 below */
        const char *lz = scalar ? "lam0" : dk == IR_DECAY_KEY_VECTOR ? "lds_f32(buf + ST_L + 4 * a)" : "1.f";
        E("        #pragma unroll\n"
          "        for (int i = 0; i < ST_ZN; ++i) {\n"
          "            const int a = tid + i * ST_NT;\n"
          "            if (a < DK) {\n"
          "                z[i] = %s * z[i] + lds_f32(buf + ST_K + 4 * a);\n"
          "                sts_f32(buf + ST_DZ + 4 * a, lds_f32(buf + ST_Q + 4 * a) * z[i]);\n"
          "            }\n"
          "        }\n", lz);
    }
    const char *lam = dk == IR_DECAY_NONE ? "1.f"
                      : scalar ? "lam0"
                      : dk == IR_DECAY_KEY_VECTOR ? "lds_f32(buf + ST_L + 4 * a)"
                                                  : "rec_decay(&A, t, head, batch, seq, a, e)";
    E("        #pragma unroll\n"
      "        for (int c = 0; c < ST_NC; ++c) {\n"
      "            const int e = 32 * c + lane;\n"
      "            const float w = lds_f32(buf + ST_WV + 4 * e);\n"
      "            float acc = 0.f;\n"
      "            #pragma unroll\n"
      "            for (int r = 0; r < ST_RPW; ++r) {\n"
      "                const int a = warp * ST_RPW + r;\n"
      "                if (a < DK && e < DVR) {\n"
      "                    s[c][r] = %s * s[c][r] + lds_f32(buf + ST_K + 4 * a) * w;\n"
      "                    acc += lds_f32(buf + ST_Q + 4 * a) * s[c][r];\n"
      "                }\n"
      "            }\n"
      "            sts_f32(buf + ST_RED + 4 * (warp * ST_VP + e), acc);\n"
      "        }\n"
      "        bar_sync();   /* partial outputs are in */\n"
      "        if (warp == 0) {\n", lam);
    if (k->normalize)
        E("            float den = 0.f;\n"
          "            for (int a = lane; a < DK; a += 32) den += lds_f32(buf + ST_DZ + 4 * a);\n"
          "            #pragma unroll\n"
          "            for (int m = 1; m < 32; m <<= 1) den += shfl_xor(den, m);\n");
    E("            #pragma unroll\n"
      "            for (int c = 0; c < ST_NC; ++c) {\n"
      "                const int e = 32 * c + lane;\n"
      "                float o = 0.f;\n"
      "                #pragma unroll\n"
      "                for (int w = 0; w < ST_W; ++w) o += lds_f32(buf + ST_RED + 4 * (w * ST_VP + e));\n"
      "%s"
      "                if (e < DVR) rec_put_o(&A, batch, t, head, e, o + rec_skip(&A, batch, t, head, seq, e) * lds_f32(buf + ST_V + 4 * e));\n"
      "            }\n"
      "        }\n"
      "    }\n",
      k->normalize ? "                o /= den;\n" : "");
    E("    #pragma unroll\n"
      "    for (int c = 0; c < ST_NC; ++c) {\n"
      "        u64 p = rec_state_addr(A.state_out, A.sout_st, batch, head, warp * ST_RPW, 32 * c + lane);\n"
      "        #pragma unroll\n"
      "        for (int r = 0; r < ST_RPW; ++r, p += 4 * (u64)A.sout_st[2]) {\n"
      "            const int a = warp * ST_RPW + r, e = 32 * c + lane;\n"
      "            if (st_out && a < DK && e < DVR) STG((float *)p, s[c][r]);\n"
      "        }\n"
      "    }\n");
    if (k->normalize)
        E("    #pragma unroll\n"
          "    for (int i = 0; i < ST_ZN; ++i)\n"
          "        if (tid + i * ST_NT < DK) rec_put_norm(&A, batch, head, tid + i * ST_NT, z[i]);\n");
    E("}\n\n");
}
