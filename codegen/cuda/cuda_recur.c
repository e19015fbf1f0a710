/* Recurrence kernels (linear attention, RetNet, GLA, Mamba2) for the CUDA backend: the
 * recurrent form, simple and exact in f32. One CTA per (batch, head) walks the tokens in
 * order with the d_k x d_v state in shared memory; per token the threads update the state
 * element-wise and then read it out per v column. Chunked tensor-core forms are future work. */
#include <stdio.h>
#include "codegen/cuda/cuda_emit.h"
#include "codegen/cuda/cuda_expr.h"

bool cuda_emit_recurrence(FILE *out, const ir_kernel *k, const cuda_plan *p, char *err, size_t errlen);

static bool reads_axis(const ir_kernel *k, const ir_expr *e, ir_axis axis) {
    if (!e) return false;
    if (e->op == IR_INPUT && e->input >= 0 && e->input < k->n_inputs)
        for (int i = 0; i < k->inputs[e->input].n_axes; i++)
            if (k->inputs[e->input].axes[i] == axis) return true;
    for (int i = 0; i < e->n_args; i++)
        if (reads_axis(k, e->args[i], axis)) return true;
    return false;
}

#define E(...) fprintf(out, __VA_ARGS__)

bool cuda_emit_recurrence(FILE *out, const ir_kernel *k, const cuda_plan *p, char *err, size_t errlen) {
    if (k->groups <= 0 || k->heads_q % k->groups) {
        snprintf(err, errlen, "kernel '%s': groups (%d) must divide heads (%d)", k->name, k->groups, k->heads_q);
        return false;
    }
    bool lam_k = reads_axis(k, k->decay, IR_AXIS_K), lam_v = reads_axis(k, k->decay, IR_AXIS_V);
    if (k->normalize && lam_v) {
        snprintf(err, errlen, "kernel '%s': normalize needs a decay that does not vary along v", k->name);
        return false;
    }
    cuda_expr_names names = {{0}, "A", {0}};
    names.var[IR_VAR_Q_IDX] = names.var[IR_VAR_KV_IDX] = "t";
    names.var[IR_VAR_HEAD] = "head";
    names.var[IR_VAR_BATCH] = "batch";
    names.var[IR_VAR_SEQ_Q] = names.var[IR_VAR_SEQ_K] = "seq";
    names.var[IR_VAR_X] = "x";
    names.implicit[IR_AXIS_TOKEN] = "t";
    names.implicit[IR_AXIS_HEAD] = "head";
    names.implicit[IR_AXIS_K] = "k_idx";
    names.implicit[IR_AXIS_V] = "v_idx";
    const char *params = "const attnc_args *A, float x, int t, int head, int batch, int seq, int k_idx, int v_idx";
    E("enum { GROUPS = %d, PERG = %d, RNT = %d, DK = %d,\n"
      "       SM_S = 0, SM_Z = 4 * DK * DVR, SM_FQ = SM_Z + 4 * DK, SM_FK = SM_FQ + 4 * DK, SM_LK = SM_FK + 4 * DK,\n"
      "       SM_VV = SM_LK + 4 * DK, SM_VS = SM_VV + 4 * DVR, SM_L0 = SM_VS + 4 * DVR };\n",
      k->groups, k->heads_q / k->groups, p->threads, k->d_qk);
    if (k->decay) cuda_emit_expr_function(out, k, k->decay, "attnc_decay", params, &names);
    if (k->feature) cuda_emit_expr_function(out, k, k->feature, "attnc_feature", params, &names);
    if (k->v_scale) cuda_emit_expr_function(out, k, k->v_scale, "attnc_vscale", params, &names);
    if (k->skip) cuda_emit_expr_function(out, k, k->skip, "attnc_skip", params, &names);
    E("ATTNC_DEVICE float ld_elem(u64 base, i64 off) { return ELEM_TO_F(LDG((const elem_t *)base + off)); }\n\n");
    const char *fq = k->feature ? "attnc_feature(&A, xq, t, head, batch, seq, a, 0)" : "xq";
    const char *fk = k->feature ? "attnc_feature(&A, xk, t, head, batch, seq, a, 0)" : "xk";
    E("ATTNC_KERNEL void ATTNC_LAUNCH_BOUNDS(RNT, 1) %s(attnc_args A) {\n", p->fwd_name);
    E("    const int tid = ATTNC_TID;\n"
      "    const int batch = ATTNC_BID_Z / HQ, head = ATTNC_BID_Z %% HQ, grp = head / PERG;\n"
      "    const int seq = (int)A.seq_q;\n"
      "    const u32 sb = smem_base();\n"
      "    for (int i = tid; i < DK * DVR; i += RNT) {\n"
      "        const int a = i / DVR, e = i %% DVR;\n"
      "        const float s0 = A.state_in ? LDG((const float *)A.state_in + (i64)batch * A.sin_st[0] + (i64)head * A.sin_st[1] + (i64)a * A.sin_st[2] + (i64)e * A.sin_st[3]) : 0.f;\n"
      "        sts_f32(sb + SM_S + 4 * i, s0);\n"
      "    }\n"
      "    for (int a = tid; a < DK; a += RNT) sts_f32(sb + SM_Z + 4 * a, 0.f);\n"
      "    bar_sync();\n"
      "    for (int t = 0; t < seq; ++t) {\n"
      "        for (int a = tid; a < DK; a += RNT) {\n"
      "            const float xq = ld_elem(A.q, (i64)batch * A.q_st[0] + (i64)t * A.q_st[1] + (i64)grp * A.q_st[2] + (i64)a * A.q_st[3]);\n"
      "            const float xk = ld_elem(A.k, (i64)batch * A.k_st[0] + (i64)t * A.k_st[1] + (i64)grp * A.k_st[2] + (i64)a * A.k_st[3]);\n"
      "            (void)xq; (void)xk;\n"
      "            sts_f32(sb + SM_FQ + 4 * a, %s);\n"
      "            sts_f32(sb + SM_FK + 4 * a, %s);\n",
      fq, fk);
    if (k->decay && lam_k && !lam_v) E("            sts_f32(sb + SM_LK + 4 * a, attnc_decay(&A, 0.f, t, head, batch, seq, a, 0));\n");
    E("        }\n"
      "        for (int e = tid; e < DVR; e += RNT) {\n"
      "            sts_f32(sb + SM_VV + 4 * e, ld_elem(A.v, (i64)batch * A.v_st[0] + (i64)t * A.v_st[1] + (i64)head * A.v_st[2] + (i64)e * A.v_st[3]));\n"
      "            sts_f32(sb + SM_VS + 4 * e, %s);\n"
      "        }\n",
      k->v_scale ? "attnc_vscale(&A, 0.f, t, head, batch, seq, 0, e)" : "1.f");
    if (k->decay && !lam_k && !lam_v) E("        if (tid == 0) sts_f32(sb + SM_L0, attnc_decay(&A, 0.f, t, head, batch, seq, 0, 0));\n");
    E("        bar_sync();\n");
    /* decay per element: only along the axes it reads */
    const char *lam = !k->decay ? "1.f"
                      : (lam_v ? "attnc_decay(&A, 0.f, t, head, batch, seq, a, e)"
                               : lam_k ? "lds_f32(sb + SM_LK + 4 * a)" : "lds_f32(sb + SM_L0)");
    E("        for (int i = tid; i < DK * DVR; i += RNT) {\n"
      "            const int a = i / DVR, e = i %% DVR;\n"
      "            const float lam = %s;\n"
      "            const float s = lam * lds_f32(sb + SM_S + 4 * i) + lds_f32(sb + SM_FK + 4 * a) * (lds_f32(sb + SM_VS + 4 * e) * lds_f32(sb + SM_VV + 4 * e));\n"
      "            sts_f32(sb + SM_S + 4 * i, s);\n"
      "        }\n",
      lam);
    if (k->normalize) {
        const char *lam0 = !k->decay ? "1.f"
                           : lam_k ? "lds_f32(sb + SM_LK + 4 * a)" : "lds_f32(sb + SM_L0)";
        E("        for (int a = tid; a < DK; a += RNT)\n"
          "            sts_f32(sb + SM_Z + 4 * a, %s * lds_f32(sb + SM_Z + 4 * a) + lds_f32(sb + SM_FK + 4 * a));\n", lam0);
    }
    E("        bar_sync();\n"
      "        for (int e = tid; e < DVR; e += RNT) {\n"
      "            float o = 0.f, den = 0.f;\n"
      "            for (int a = 0; a < DK; ++a) {\n"
      "                const float f = lds_f32(sb + SM_FQ + 4 * a);\n"
      "                o += f * lds_f32(sb + SM_S + 4 * (a * DVR + e));\n"
      "%s"
      "            }\n"
      "            (void)den;\n",
      k->normalize ? "                den += f * lds_f32(sb + SM_Z + 4 * a);\n" : "");
    if (k->normalize) E("            o /= den;\n");
    if (k->skip) E("            o += attnc_skip(&A, 0.f, t, head, batch, seq, 0, e) * lds_f32(sb + SM_VV + 4 * e);\n");
    E("            STG((elem_t *)A.o + (i64)batch * A.o_st[0] + (i64)t * A.o_st[1] + (i64)head * A.o_st[2] + (i64)e * A.o_st[3], F_TO_ELEM(o));\n"
      "        }\n"
      "        bar_sync();   /* the next token overwrites fq, fk, v */\n"
      "    }\n"
      "    if (A.state_out)\n"
      "        for (int i = tid; i < DK * DVR; i += RNT) {\n"
      "            const int a = i / DVR, e = i %% DVR;\n"
      "            STG((float *)A.state_out + (i64)batch * A.sout_st[0] + (i64)head * A.sout_st[1] + (i64)a * A.sout_st[2] + (i64)e * A.sout_st[3], lds_f32(sb + SM_S + 4 * i));\n"
      "        }\n"
      "}\n\n");
    return true;
}
