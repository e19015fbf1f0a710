/* Recurrence kernels for the CUDA backend: dispatch by plan form, and the device helpers all
 * forms share (spec expressions, element loads with the feature map, state and normaliser
 * hand-off, the chunk's cumulative log2-decay table). The kernels themselves live in
 * cuda_recur_step.c, cuda_recur_chunk.c and cuda_recur_mma.c (cuda_recur.h says which). */
#include <stdio.h>
#include "codegen/cuda/cuda_emit.h"
#include "codegen/cuda/cuda_expr.h"
#include "codegen/cuda/cuda_recur.h"

bool cuda_emit_recurrence(FILE *out, const ir_kernel *k, const cuda_plan *p, char *err, size_t errlen);

#define E(...) fprintf(out, __VA_ARGS__)

/* Spec expressions as device functions of (t, head, batch, seq, k index, v index). */
static void emit_expressions(FILE *out, const ir_kernel *k) {
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
    if (k->decay) cuda_emit_expr_function(out, k, k->decay, "attnc_decay", params, &names);
    if (k->log_decay) cuda_emit_expr_function(out, k, k->log_decay, "attnc_log_decay", params, &names);
    if (k->feature) cuda_emit_expr_function(out, k, k->feature, "attnc_feature", params, &names);
    if (k->v_scale) cuda_emit_expr_function(out, k, k->v_scale, "attnc_vscale", params, &names);
    if (k->skip) cuda_emit_expr_function(out, k, k->skip, "attnc_skip", params, &names);
}

static void emit_helpers(FILE *out, const ir_kernel *k) {
    E("ATTNC_DEVICE float ld_elem(u64 base, i64 off) { return ELEM_TO_F(LDG((const elem_t *)base + off)); }\n");
    /* Λ itself (step form) and log2 Λ (chunk forms). A zero decay becomes 2^-127: ex2 flushes
       it to 0 (ftz) while the table's sums stay finite; a NaN stays NaN. A negative decay has
       no logarithm: the chunk forms need Λ >= 0, as every decay in the examples is. */
    E("ATTNC_DEVICE float rec_decay(const attnc_args *A, int t, int head, int batch, int seq, int a, int e) {\n");
    if (k->decay) E("    return attnc_decay(A, 0.f, t, head, batch, seq, a, e);\n");
    else E("    (void)A; (void)t; (void)head; (void)batch; (void)seq; (void)a; (void)e;\n    return 1.f;\n");
    E("}\n");
    E("ATTNC_DEVICE float rec_log2decay(const attnc_args *A, int t, int head, int batch, int seq, int a, int e) {\n");
    if (k->log_decay) E("    const float l = attnc_log_decay(A, 0.f, t, head, batch, seq, a, e) * LOG2E;\n");
    else E("    const float l = log2f(rec_decay(A, t, head, batch, seq, a, e));\n");
    E("    return l < -127.f ? -127.f : l;\n}\n");
    const char *phi = k->feature ? "attnc_feature(A, x, t, head, batch, seq, a, 0)" : "x";
    E("ATTNC_DEVICE float rec_q(const attnc_args *A, int batch, int t, int head, int seq, int a) {\n"
      "    const float x = ld_elem(A->q, (i64)batch * A->q_st[0] + (i64)t * A->q_st[1] + (i64)(head / PERG) * A->q_st[2] + (i64)a * A->q_st[3]);\n"
      "    (void)seq;\n"
      "    return %s;\n}\n", phi);
    E("ATTNC_DEVICE float rec_k(const attnc_args *A, int batch, int t, int head, int seq, int a) {\n"
      "    const float x = ld_elem(A->k, (i64)batch * A->k_st[0] + (i64)t * A->k_st[1] + (i64)(head / PERG) * A->k_st[2] + (i64)a * A->k_st[3]);\n"
      "    (void)seq;\n"
      "    return %s;\n}\n", phi);
    E("ATTNC_DEVICE float rec_v(const attnc_args *A, int batch, int t, int head, int e) {\n"
      "    return ld_elem(A->v, (i64)batch * A->v_st[0] + (i64)t * A->v_st[1] + (i64)head * A->v_st[2] + (i64)e * A->v_st[3]);\n}\n");
    E("ATTNC_DEVICE float rec_vs(const attnc_args *A, int batch, int t, int head, int seq, int e) {\n");
    if (k->v_scale) E("    return attnc_vscale(A, 0.f, t, head, batch, seq, 0, e);\n");
    else E("    (void)A; (void)batch; (void)t; (void)head; (void)seq; (void)e;\n    return 1.f;\n");
    E("}\n");
    E("ATTNC_DEVICE float rec_skip(const attnc_args *A, int batch, int t, int head, int seq, int e) {\n");
    if (k->skip) E("    return attnc_skip(A, 0.f, t, head, batch, seq, 0, e);\n");
    else E("    (void)A; (void)batch; (void)t; (void)head; (void)seq; (void)e;\n    return 0.f;\n");
    E("}\n");
    E("ATTNC_DEVICE void rec_put_o(const attnc_args *A, int batch, int t, int head, int e, float o) {\n"
      "    STG((elem_t *)A->o + (i64)batch * A->o_st[0] + (i64)t * A->o_st[1] + (i64)head * A->o_st[2] + (i64)e * A->o_st[3], F_TO_ELEM(o));\n}\n");
    /* State hand-off: state_in absent = zeros; state_out may be the same memory as state_in
       (in place): every kernel reads an element before any thread writes it (see the forms). */
    /* byte address of state element (a, e): integer arithmetic, so a kernel may step it
       along a row without a multiply per element, whether or not the pointer is set */
    E("ATTNC_DEVICE u64 rec_state_addr(u64 base, const i64 *st, int batch, int head, int a, int e) {\n"
      "    return base + 4 * (u64)((i64)batch * st[0] + (i64)head * st[1] + (i64)a * st[2] + (i64)e * st[3]);\n}\n"
      "ATTNC_DEVICE float rec_state_in(const attnc_args *A, int batch, int head, int a, int e) {\n"
      "    return A->state_in ? LDG((const float *)rec_state_addr(A->state_in, A->sin_st, batch, head, a, e)) : 0.f;\n}\n"
      "ATTNC_DEVICE void rec_put_state(const attnc_args *A, int batch, int head, int a, int e, float s) {\n"
      "    if (A->state_out) STG((float *)rec_state_addr(A->state_out, A->sout_st, batch, head, a, e), s);\n}\n"
      "ATTNC_DEVICE float rec_norm_in(const attnc_args *A, int batch, int head, int a) {\n"
      "    return A->norm_in ? LDG((const float *)A->norm_in + (i64)batch * A->nin_st[0] + (i64)head * A->nin_st[1] + (i64)a * A->nin_st[2]) : 0.f;\n}\n"
      "ATTNC_DEVICE void rec_put_norm(const attnc_args *A, int batch, int head, int a, float z) {\n"
      "    if (A->norm_out) STG((float *)A->norm_out + (i64)batch * A->nout_st[0] + (i64)head * A->nout_st[1] + (i64)a * A->nout_st[2], z);\n}\n\n");
}

void cuda_recur_emit_chunk_common(FILE *out, const ir_kernel *k, const cuda_plan *p) {
    (void)p;
    ir_decay_kind dk = k->decay_kind;
    /* The table of one chunk [t0, t0 + n): per token (Mamba2) or per token and key dim (GLA).
       Per token: every thread evaluates some log2 decays, then warp 0 scans: each lane sums a
       contiguous segment, an xor-butterfly gives every lane the exclusive prefix of the
       segment sums, and the lane rewrites its segment as inclusive sums. Per key dim: one
       thread per dim walks the tokens. Both end with a barrier. */
    E("ATTNC_DEVICE void rec_decay_table(const attnc_args *A, u32 sB, int t0, int n, int batch, int head, int seq, int tid, int nthreads) {\n");
    if (dk == IR_DECAY_TOKEN_HEAD) {
        E("    for (int i = tid; i < n; i += nthreads) sts_f32(sB + 4 * i, rec_log2decay(A, t0 + i, head, batch, seq, 0, 0));\n"
          "    bar_sync();\n"
          "    if ((tid >> 5) == 0) {\n"
          "        const int lane = tid & 31, seg = (n + 31) >> 5, lo = lane * seg, hi = lo + seg < n ? lo + seg : n;\n"
          "        float run = 0.f;\n"
          "        for (int i = lo; i < hi; ++i) run += lds_f32(sB + 4 * i);\n"
          "        float pre = 0.f, tot = run;\n"
          "        #pragma unroll\n"
          "        for (int d = 1; d < 32; d <<= 1) {\n"
          "            const float o = shfl_xor(tot, d);\n"
          "            if (lane & d) pre += o;\n"
          "            tot += o;\n"
          "        }\n"
          "        for (int i = lo; i < hi; ++i) { pre += lds_f32(sB + 4 * i); sts_f32(sB + 4 * i, pre); }\n"
          "    }\n"
          "    bar_sync();\n");
    } else if (dk == IR_DECAY_KEY_VECTOR) {
        E("    for (int i = tid; i < n * DK; i += nthreads) sts_f32(sB + 4 * i, rec_log2decay(A, t0 + i / DK, head, batch, seq, i %% DK, 0));\n"
          "    bar_sync();\n"
          "    for (int a = tid; a < DK; a += nthreads) {\n"
          "        float c = 0.f;\n"
          "        for (int r = 0; r < n; ++r) { c += lds_f32(sB + 4 * (r * DK + a)); sts_f32(sB + 4 * (r * DK + a), c); }\n"
          "    }\n"
          "    bar_sync();\n");
    }
    E("    (void)A; (void)sB; (void)t0; (void)n; (void)batch; (void)head; (void)seq; (void)tid; (void)nthreads;\n}\n");
    /* b(t) since the chunk start, inclusive; and b(t) - b(i) for t >= i. A per-head
       constant needs no table: (t - i) * lh is exact in the count. */
    E("ATTNC_DEVICE float rec_cb(u32 sB, int t0, int t, float lh) {\n");
    if (dk == IR_DECAY_TOKEN_HEAD) E("    (void)lh;\n    return lds_f32(sB + 4 * (t - t0));\n");
    else if (dk == IR_DECAY_HEAD) E("    (void)sB;\n    return (float)(t - t0 + 1) * lh;\n");
    else E("    (void)sB; (void)t0; (void)t; (void)lh;\n    return 0.f;\n");
    E("}\n");
    E("ATTNC_DEVICE float rec_seg(u32 sB, int t0, int t, int i, float lh) {\n");
    if (dk == IR_DECAY_TOKEN_HEAD) E("    (void)lh;\n    return lds_f32(sB + 4 * (t - t0)) - lds_f32(sB + 4 * (i - t0));\n");
    else if (dk == IR_DECAY_HEAD) E("    (void)sB; (void)t0;\n    return (float)(t - i) * lh;\n");
    else E("    (void)sB; (void)t0; (void)t; (void)i; (void)lh;\n    return 0.f;\n");
    E("}\n");
    if (dk == IR_DECAY_KEY_VECTOR)
        E("ATTNC_DEVICE float rec_cbv(u32 sB, int t0, int t, int a) { return lds_f32(sB + 4 * ((t - t0) * DK + a)); }\n");
    E("\n");
}

bool cuda_emit_recurrence(FILE *out, const ir_kernel *k, const cuda_plan *p, char *err, size_t errlen) {
    if (k->groups <= 0 || k->heads_q % k->groups) {
        snprintf(err, errlen, "kernel '%s': groups (%d) must divide heads (%d)", k->name, k->groups, k->heads_q);
        return false;
    }
    if (k->normalize && k->decay_kind == IR_DECAY_STATE) {
        snprintf(err, errlen, "kernel '%s': normalize needs a decay that does not vary along v", k->name);
        return false;
    }
    static const char *const kinds[] = {"none", "per head", "per token and head", "per key dim", "per state element"};
    static const char *const forms[] = {"recurrent step", "chunkwise (SIMT, f32)", "chunkwise (tensor cores, bf16)"};
    E("/* recurrence: decay %s; fwd = %s%s%s */\n", kinds[k->decay_kind], forms[p->recur_form],
      p->recur_note[0] ? "; " : "", p->recur_note);
    E("enum { GROUPS = %d, PERG = %d, DK = %d, CHUNK = %d };\n", k->groups, k->heads_q / k->groups, k->d_qk, p->chunk);
    emit_expressions(out, k);
    emit_helpers(out, k);
    if (p->recur_form == CUDA_RECUR_STEP) {
        cuda_recur_emit_step(out, k, p, p->fwd_name);
        return true;
    }
    /* parts as cuda_plan_parts numbers them: the chunked fwd is 0, the step kernel 1 */
    cuda_emit_part_begin(out, 1);
    cuda_recur_emit_step(out, k, p, p->step_name);
    cuda_emit_part_end(out);
    cuda_emit_part_begin(out, 0);
    cuda_recur_emit_chunk_common(out, k, p);
    if (p->recur_form == CUDA_RECUR_CHUNK_MMA) cuda_recur_emit_chunk_mma(out, k, p);
    else cuda_recur_emit_chunk_simt(out, k, p);
    cuda_emit_part_end(out);
    return true;
}
