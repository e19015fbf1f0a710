/* CUDA C emission: constants, argument block, expressions, RoPE helpers and the kernel
 * skeletons (cuda-kernels.md). The skeleton text is written once against the primitive
 * names of cuda_prelude.c so the CPU simulator executes exactly what NVRTC compiles. */
#include "codegen/cuda/cuda_emit.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "codegen/cuda/cuda_args.h"
#include "codegen/cuda/cuda_expr.h"
#include "codegen/cuda/fragment_index.h"

#define E(...) fprintf(out, __VA_ARGS__)

static double kernel_scale(const ir_kernel *k) {
    if (k->scale_value != 0) return k->scale_value;
    double s = (k->scale && k->scale->op == IR_CONST) ? k->scale->value : 1.0 / sqrt((double)k->d_qk);
    if (k->rope.planned && k->rope.attn_factor > 0) s *= k->rope.attn_factor;
    return s;
}

static bool has_rope(const ir_kernel *k) { return k->rope.layout != IR_ROPE_NONE && k->rope.dim_hi > k->rope.dim_lo; }

static const char *elem_ctype(ir_dtype t) { return t == IR_F32 ? "float" : "u16"; }

static void emit_constants(FILE *out, const ir_kernel *k, const cuda_plan *p) {
    E("/* kernel '%s': %s, %s, heads %d/%d, d_qk %d, d_v %d */\n", k->name,
      k->family == IR_SOFTMAX ? "softmax attention" : "recurrence", k->phase == IR_DECODE ? "decode" : "prefill",
      k->heads_q, k->heads_kv, k->d_qk, k->d_v);
    E("enum {\n");
    E("    HQ = %d, HKV = %d, GQA = %d, DQK = %d, DVR = %d, PACK = %d, HGRP = %d,\n", k->heads_q,
      k->heads_kv > 0 ? k->heads_kv : k->heads_q, k->heads_kv > 0 ? k->heads_q / k->heads_kv : 1, k->d_qk, k->d_v,
      p->pack, k->heads_q / (p->pack > 0 ? p->pack : 1));
    if (p->kind == CUDA_KIND_MMA) {
        E("    D = %d, DV = %d, DVC = %d, WR = %d, WC = %d, NT = %d, BR = %d, BC = %d, STAGES = %d, VINK = %d,\n",
          p->d, p->dvp, p->dvc, p->wr, p->wc, p->threads, p->br, p->bc, p->stages, p->v_in_k);
        E("    VCW = %d,\n", p->wc > 1 ? p->dvc : (p->v_in_k ? p->d : p->dvp));
        E("    VW = %d, SM_Q = %d, SM_K = %d, SM_KS = %d, SM_V = %d, SM_VS = %d, SMEM_BYTES = %d,\n",
          p->v_in_k ? p->d : p->dvp, p->smem_q, p->smem_k, p->smem_k_stage, p->smem_v, p->smem_v_stage, p->smem_bytes);
    } else if (p->kind == CUDA_KIND_SIMT) {
        E("    ROWS = %d, NT = %d, NQ = %d, NV = %d,\n", p->rows_per_cta, p->threads, (k->d_qk + 31) / 32,
          (k->d_v + 31) / 32);
    }
    int npair = has_rope(k) ? (k->rope.dim_hi - k->rope.dim_lo) / 2 : 0;
    E("    NPAIR = %d, ROPE_LO = %d, ROPE_INTERLEAVED = %d\n};\n", npair, has_rope(k) ? k->rope.dim_lo : 0,
      k->rope.layout == IR_ROPE_INTERLEAVED);
    double scale = kernel_scale(k);
    E("#define SCALE %.9ef\n", scale);
    E("#define LOG2E 1.442695041f\n#define LN2 0.6931471806f\n");
    E("#define SCALE_LOG2E %.9ef\n", scale * 1.4426950408889634);
    if (k->dtype == IR_F32) {
        E("#define ELEM_TO_F(x) (x)\n#define F_TO_ELEM(x) (x)\n");
    } else if (k->dtype == IR_F16) {
        E("#define ELEM_TO_F(x) f16_to_f(x)\n#define F_TO_ELEM(x) f_to_f16(x)\n"
          "#define MMA(d, a, b) mma_f16(d, a, b)\n#define PACK2(lo, hi) pack_f16(lo, hi)\n");
    } else {
        E("#define ELEM_TO_F(x) bf16_to_f(x)\n#define F_TO_ELEM(x) f_to_bf16(x)\n"
          "#define MMA(d, a, b) mma_bf16(d, a, b)\n#define PACK2(lo, hi) pack_bf16(lo, hi)\n");
    }
    E("typedef %s elem_t;\n\n", elem_ctype(k->dtype));
}

/* ---------------------------------------------------------------- expressions */

static const char *expr_params =
    "const attnc_args *A, float score, int q_idx, int kv_idx, int head, int batch, int seq_q, int seq_k";

static void emit_expressions(FILE *out, const ir_kernel *k) {
    cuda_expr_names names = {{0}, "A", {0}};
    names.var[IR_VAR_SCORE] = "score";
    names.var[IR_VAR_Q_IDX] = "q_idx";
    names.var[IR_VAR_KV_IDX] = "kv_idx";
    names.var[IR_VAR_HEAD] = "head";
    names.var[IR_VAR_BATCH] = "batch";
    names.var[IR_VAR_SEQ_Q] = "seq_q";
    names.var[IR_VAR_SEQ_K] = "seq_k";
    if (k->score_mod) {
        E("/* score modifier */\n");
        cuda_emit_expr_function(out, k, k->score_mod, "attnc_score_mod", expr_params, &names);
    }
    if (k->mask) {
        E("/* mask predicate */\n");
        cuda_emit_expr_function(out, k, k->mask, "attnc_mask", expr_params, &names);
    }
    E("/* mask interval classification of a tile: 0 all false, 1 all true, 2 mixed */\n");
    cuda_emit_mask_class_function(out, k, k->mask, "attnc_mask_class");
}

/* ---------------------------------------------------------------- RoPE helpers */

static bool rope_dynamic(const ir_kernel *k) { return k->rope.scaling == IR_SCALE_DYNAMIC_NTK; }

static void emit_rope(FILE *out, const ir_kernel *k) {
    if (!has_rope(k)) return;
    const ir_rope *r = &k->rope;
    int npair = (r->dim_hi - r->dim_lo) / 2;
    E("/* RoPE plan: %s pairs over dims [%d, %d)%s%s */\n", r->layout == IR_ROPE_INTERLEAVED ? "interleaved" : "half",
      r->dim_lo, r->dim_hi, r->explicit_positions ? ", positions input" : "", rope_dynamic(k) ? ", dynamic NTK" : "");
    if (!rope_dynamic(k)) {
        E("ATTNC_CONSTANT double attnc_rope_inv_freq[NPAIR] = {");
        for (int j = 0; j < npair; j++) E("%s%.17g", j ? ", " : "", r->inv_freq ? r->inv_freq[j] : 0.0);
        E("};\n");
        E("ATTNC_DEVICE double rope_freq(const attnc_args *A, int j) { (void)A; return attnc_rope_inv_freq[j]; }\n");
    } else {
        E("ATTNC_DEVICE double rope_freq(const attnc_args *A, int j) { return A->rope_freq[j]; }\n");
    }
    E("ATTNC_CONSTANT int attnc_rope_axis[NPAIR] = {");
    for (int j = 0; j < npair; j++) E("%s%d", j ? ", " : "", r->pair_axis ? r->pair_axis[j] : 0);
    E("};\n");
    E("ATTNC_DEVICE int rope_dim0(int j) { return ROPE_INTERLEAVED ? ROPE_LO + 2 * j : ROPE_LO + j; }\n");
    E("ATTNC_DEVICE int rope_dim1(int j) { return ROPE_INTERLEAVED ? ROPE_LO + 2 * j + 1 : ROPE_LO + j + NPAIR; }\n");
    /* Position of token `tok` on the axis of pair j: the positions input (row tok of the key
       sequence; queries use their q_idx row), or the index itself. */
    E("ATTNC_DEVICE i64 rope_pos(const attnc_args *A, int batch, int tok, int j) {\n");
    if (r->explicit_positions) {
        E("    if (tok < 0 || (i64)tok >= A->seq_k) return tok;\n");
        E("    return LDG((const int *)A->pos + (i64)batch * A->pos_st[0] + (i64)tok * A->pos_st[1] + "
          "(i64)attnc_rope_axis[j] * A->pos_st[2]);\n");
    } else {
        E("    (void)A; (void)batch; (void)j;\n    return tok;\n");
    }
    E("}\n\n");
}

/* ---------------------------------------------------------------- tensor-core kernel */

/* True when the copy of a rows × width tile by nt threads is affine in the iteration: chunk
   tid + it·nt lands at the row, column and shared offset of chunk tid plus those of chunk
   it·nt. Checked here over every (tid, it) with the same index functions the kernel pastes,
   so a loader may compute one base per thread and add per-iteration constants. */
static bool copy_affine(int rows, int width, int nt) {
    const int total = rows * width / 8;
    for (int q = 0; q < total; q++) {
        const int tid = q % nt, q0 = q - tid;
        const int r = copy_chunk_row(q, rows, width), c = copy_chunk_col(q, rows, width);
        const int rt = copy_chunk_row(tid, rows, width), ct = copy_chunk_col(tid, rows, width);
        const int ri = copy_chunk_row(q0, rows, width), ci = copy_chunk_col(q0, rows, width);
        if (r != rt + ri || c != ct + ci) return false;
        if (smem_tile_offset(r, c, rows, width) !=
            smem_tile_offset(rt, ct, rows, width) + smem_tile_offset(ri, ci, rows, width))
            return false;
    }
    return true;
}

static void emit_mma_helpers(FILE *out, const ir_kernel *k, const cuda_plan *p) {
    /* Tile loads: cp.async 16 B chunks into the swizzled layout; rows past the sequence and
       columns past the real head dim are zero-filled (src-size 0), never read. The affine
       form leaves NVVM and ptxas a fraction of the code of the general one (Llama-3 prefill:
       about a quarter fewer PTX instructions), which is most of what a cold compile costs. */
    const bool q_affine = copy_affine(p->br, p->d, p->threads);
    E("ATTNC_DEVICE void load_q_tile(const attnc_args *A, u32 dst, int row0, int rows_total, int batch, int head0) {\n"
      "    const int tid = attnc_tid_opaque();\n"
      "%s"
      "    const u16 *base = (const u16 *)A->q;\n"
      "    #pragma unroll%s\n"
      "    for (int it = 0; it < (BR * D / 8 + NT - 1) / NT; ++it) {\n"
      "%s"
      "            const bool ok = R < rows_total && c < DQK;\n"
      "            const u16 *src = base;\n"
      "            if (ok) {\n"
      "                const int s = packed_row_seq(R, PACK), h = head0 + packed_row_head(R, PACK);\n"
      "                src = base + (i64)batch * A->q_st[0] + (i64)s * A->q_st[1] + (i64)h * A->q_st[2] + c;\n"
      "            }\n"
      "            cp_async16(%s, src, ok ? 16 : 0);\n"
      "        }\n"
      "    }\n"
      "}\n\n",
      q_affine ? "    const int r0 = copy_chunk_row(tid, BR, D), c0 = copy_chunk_col(tid, BR, D);\n"
                 "    const u32 d0 = dst + (u32)smem_tile_offset(r0, c0, BR, D);\n" : "",
      q_affine ? "" : " 8",
      q_affine ? "        if ((BR * D / 8) % NT == 0 || tid + it * NT < BR * D / 8) {\n"
                 "            const int dr = copy_chunk_row(it * NT, BR, D), dc = copy_chunk_col(it * NT, BR, D);\n"
                 "            const int R = row0 + r0 + dr, c = c0 + dc;\n"
               : "        const int q = tid + it * NT;\n"
                 "        if ((BR * D / 8) % NT == 0 || q < BR * D / 8) {\n"
                 "            const int r = copy_chunk_row(q, BR, D), c = copy_chunk_col(q, BR, D);\n"
                 "            const int R = row0 + r;\n",
      q_affine ? "d0 + (u32)smem_tile_offset(dr, dc, BR, D)" : "dst + (u32)smem_tile_offset(r, c, BR, D)");
    const char *tensors[2] = {"k", "v"};
    for (int t = 0; t < (k->v_in_k ? 1 : 2); t++) {
        const char *w = t == 0 ? "D" : "DV";
        const char *wr = t == 0 ? "DQK" : "DVR";
        const char *x = tensors[t];
        const char *tid = p->hoist_loads ? "ATTNC_TID" : "attnc_tid_opaque()";
        if (copy_affine(p->bc, t == 0 ? p->d : p->dvp, p->threads))
            E("ATTNC_DEVICE void load_%s_tile(const attnc_args *A, u32 dst, int n, int batch, int kvh) {\n"
              "    const int tid = %s;\n"
              "    const int r0 = copy_chunk_row(tid, BC, %s), c0 = copy_chunk_col(tid, BC, %s);\n"
              "    const u32 d0 = dst + (u32)smem_tile_offset(r0, c0, BC, %s);\n"
              "    const int key0 = n * BC + r0, seq_k = (int)A->seq_k;\n"
              "    const u16 *base = (const u16 *)A->%s;\n"
              "    const u16 *src0 = base + (i64)batch * A->%s_st[0] + (i64)key0 * A->%s_st[1] + (i64)kvh * A->%s_st[2] + c0;\n"
              "    #pragma unroll\n"
              "    for (int it = 0; it < (BC * %s / 8 + NT - 1) / NT; ++it) {\n"
              "        if ((BC * %s / 8) %% NT == 0 || tid + it * NT < BC * %s / 8) {\n"
              "            const int dr = copy_chunk_row(it * NT, BC, %s), dc = copy_chunk_col(it * NT, BC, %s);\n"
              "            const bool ok = key0 + dr < seq_k && c0 + dc < %s;\n"
              "            cp_async16(d0 + (u32)smem_tile_offset(dr, dc, BC, %s), ok ? src0 + (i64)dr * A->%s_st[1] + dc : base, ok ? 16 : 0);\n"
              "        }\n"
              "    }\n"
              "}\n\n",
              x, tid, w, w, w, x, x, x, x, w, w, w, w, w, wr, w, x);
        else
            E("ATTNC_DEVICE void load_%s_tile(const attnc_args *A, u32 dst, int n, int batch, int kvh) {\n"
              "    const int tid = %s;\n"
              "    const u16 *base = (const u16 *)A->%s;\n"
              "    const int seq_k = (int)A->seq_k;\n"
              "    #pragma unroll 8\n"
              "    for (int it = 0; it < (BC * %s / 8 + NT - 1) / NT; ++it) {\n"
              "        const int q = tid + it * NT;\n"
              "        if ((BC * %s / 8) %% NT == 0 || q < BC * %s / 8) {\n"
              "            const int r = copy_chunk_row(q, BC, %s), c = copy_chunk_col(q, BC, %s);\n"
              "            const int key = n * BC + r;\n"
              "            const bool ok = key < seq_k && c < %s;\n"
              "            const u16 *src = ok ? base + (i64)batch * A->%s_st[0] + (i64)key * A->%s_st[1] + (i64)kvh * A->%s_st[2] + c : base;\n"
              "            cp_async16(dst + (u32)smem_tile_offset(r, c, BC, %s), src, ok ? 16 : 0);\n"
              "        }\n"
              "    }\n"
              "}\n\n",
              x, tid, x, w, w, w, w, w, wr, x, x, x, w);
    }
    if (has_rope(k)) {
        /* Rotates pair j of row r of a tile in place (rotation in f32, one rounding back). */
        E("ATTNC_DEVICE void rope_rotate_smem(const attnc_args *A, u32 tile, int rows, int r, int j, i64 pos) {\n"
          "    float sn, cs;\n"
          "    attnc_rope_cs((double)pos, rope_freq(A, j), &sn, &cs);\n"
          "    const u32 a0 = tile + (u32)smem_tile_offset(r, rope_dim0(j), rows, D);\n"
          "    const u32 a1 = tile + (u32)smem_tile_offset(r, rope_dim1(j), rows, D);\n"
          "    const float x0 = ELEM_TO_F(lds_u16(a0)), x1 = ELEM_TO_F(lds_u16(a1));\n"
          "    sts_u16(a0, F_TO_ELEM(x0 * cs - x1 * sn));\n"
          "    sts_u16(a1, F_TO_ELEM(x0 * sn + x1 * cs));\n"
          "}\n\n");
    }
}

static void emit_band_bounds(FILE *out, const ir_kernel *k) {
    /* Key tiles that can hold a visible key: the band q - kv in [lo, hi] bounds them. */
    if (k->band.has_band) {
        if (k->band.band_hi != INT64_MAX)
            E("    { const i64 first = (i64)q_lo - (i64)(%lldll); if (first > 0) n_lo = (int)(first / BC); }\n",
              (long long)k->band.band_hi);
        if (k->band.band_lo != INT64_MIN)
            E("    { const i64 last = (i64)q_hi - (i64)(%lldll); if (last < (i64)seq_k - 1) n_hi = last < 0 ? -1 : (int)(last / BC); }\n",
              (long long)k->band.band_lo);
    }
}

/* Epilogue without staging: each thread stores its accumulator fragments (plans whose
   tile buffers cannot hold O). */
static void emit_direct_epilogue(FILE *out, const cuda_plan *p) {
    E("    #pragma unroll\n"
      "    for (int r = 0; r < 2; ++r) {\n"
      "        const int R = row0 + tile_acc_row(0, wr, WR, lane, 2 * r);\n"
      "        if (R >= rows_total) continue;\n"
      "        const int s = packed_row_seq(R, PACK), head = row_h[r];\n");
    if (p->splitkv)
        E("        if (n_splits > 1) {\n"
          "            float *dst = (float *)A.ws_o + ((((i64)split * A.batch + batch) * HQ + head) * seq_q + s) * DVR;\n"
          "            #pragma unroll\n"
          "            for (int j = 0; j < DVC / 8; ++j)\n"
          "                #pragma unroll\n"
          "                for (int h = 0; h < 2; ++h) {\n"
          "                    const int col = wc * DVC + tile_acc_col(j, lane, 2 * r + h);\n"
          "                    if (WC * DVC <= DVR || col < DVR) STG(dst + col, acc_o[j][2 * r + h] * inv[r]);\n"
          "                }\n"
          "            if (wc == 0 && (lane & 3) == 0)\n"
          "                STG((float *)A.ws_lse + (((i64)split * A.batch + batch) * HQ + head) * seq_q + s, lse[r]);\n"
          "            continue;\n"
          "        }\n");
    /* One 64-bit base per row, then constant column offsets times the stride; the column
       test folds away when the warps' columns do not pass d_v. */
    E("        const i64 ost = A.o_st[3];\n"
      "        const int col0 = wc * DVC + tile_acc_col(0, lane, 2 * r);\n"
      "        elem_t *dst = (elem_t *)A.o + (i64)batch * A.o_st[0] + (i64)s * A.o_st[1] + (i64)head * A.o_st[2] + (i64)col0 * ost;\n"
      "        #pragma unroll\n"
      "        for (int j = 0; j < DVC / 8; ++j)\n"
      "            #pragma unroll\n"
      "            for (int h = 0; h < 2; ++h) {\n"
      "                const int col = wc * DVC + tile_acc_col(j, lane, 2 * r + h);\n"
      "                if (WC * DVC <= DVR || col < DVR) STG(dst + (i64)(col - col0) * ost, F_TO_ELEM(acc_o[j][2 * r + h] * inv[r]));\n"
      "            }\n"
      "        if (wc == 0 && (lane & 3) == 0 && A.lse)\n"
      "            STG((float *)A.lse + (i64)batch * A.lse_st[0] + (i64)s * A.lse_st[1] + (i64)head * A.lse_st[2], lse[r]);\n"
      "    }\n");
}

/* Epilogue through shared memory: fragments go to a padded row-major tile over the (now idle)
   tile buffers, then the CTA copies rows out, consecutive threads on consecutive columns, 8
   bytes per store where O is dense. Besides coalescing, this keeps the unrolled part to
   shared-memory stores at constant offsets: NVVM spent as long on 64-bit strided global
   addresses of 2 × DVC/8 unrolled stores per row as on the rest of an MLA decode kernel.
   Split-KV plans stage f32 (the partials stay f32); others stage the element type, the
   output's own rounding. */
static void emit_staged_epilogue(FILE *out, const cuda_plan *p) {
    const bool f32 = p->splitkv;
    const int esz = f32 ? 4 : 2, ocw = 16 / esz;
    E("    enum { OSTR = %d, OESZ = %d, OCW = %d, OCH = (DVR + OCW - 1) / OCW };\n", p->out_stride, esz, ocw);
    E("    bar_sync();   /* every warp is done with the tiles; no copy is in flight */\n"
      "    const u32 sO = sbase, sL = sbase + (u32)(BR * OSTR * OESZ);\n"
      "    #pragma unroll\n"
      "    for (int r = 0; r < 2; ++r) {\n"
      "        const int rl = tile_acc_row(0, wr, WR, lane, 2 * r);\n"
      "        #pragma unroll\n"
      "        for (int j = 0; j < DVC / 8; ++j) {\n"
      "            const u32 a = sO + (u32)(OESZ * (rl * OSTR + wc * DVC + tile_acc_col(j, lane, 2 * r)));\n"
      "            %s(a, %sacc_o[j][2 * r] * inv[r], acc_o[j][2 * r + 1] * inv[r])%s;\n"
      "        }\n"
      "        if (wc == 0 && (lane & 3) == 0) sts_f32(sL + (u32)(4 * rl), lse[r]);\n"
      "    }\n"
      "    bar_sync();\n"
      "    const int rows_here = rows_total - row0 < BR ? rows_total - row0 : BR;\n"
      "    const i64 ost = A.o_st[3];\n"
      "    #pragma unroll 1\n"
      "    for (int e = tid; e < rows_here * OCH; e += NT) {\n"
      "        const int r = e / OCH, c = (e %% OCH) * OCW, R = row0 + r;\n"
      "        const int s = packed_row_seq(R, PACK), head = head0 + packed_row_head(R, PACK);\n",
      f32 ? "sts_f32x2" : "sts_u32", f32 ? "" : "PACK2(", f32 ? "" : ")");
    if (f32) {
        E("        float v[4];\n"
          "        lds_f32x4(sO + (u32)(OESZ * (r * OSTR + c)), v);\n"
          "        if (n_splits > 1) {\n"
          "            float *dst = (float *)A.ws_o + ((((i64)split * A.batch + batch) * HQ + head) * seq_q + s) * DVR + c;\n"
          "            #pragma unroll\n"
          "            for (int i = 0; i < 4; ++i)\n"
          "                if (c + i < DVR) STG(dst + i, v[i]);\n"
          "            continue;\n"
          "        }\n"
          "        elem_t *dst = (elem_t *)A.o + (i64)batch * A.o_st[0] + (i64)s * A.o_st[1] + (i64)head * A.o_st[2] + (i64)c * ost;\n"
          "        if (ost == 1 && c + 4 <= DVR && ((u64)dst & 7) == 0) {\n"
          "            STG((u64 *)dst, (u64)PACK2(v[0], v[1]) | (u64)PACK2(v[2], v[3]) << 32);\n"
          "        } else {\n"
          "            #pragma unroll\n"
          "            for (int i = 0; i < 4; ++i)\n"
          "                if (c + i < DVR) STG(dst + (i64)i * ost, F_TO_ELEM(v[i]));\n"
          "        }\n");
    } else {
        E("        u32 w[4];\n"
          "        lds_u32x4(sO + (u32)(OESZ * (r * OSTR + c)), w);\n"
          "        elem_t *dst = (elem_t *)A.o + (i64)batch * A.o_st[0] + (i64)s * A.o_st[1] + (i64)head * A.o_st[2] + (i64)c * ost;\n"
          "        if (ost == 1 && c + 8 <= DVR && ((u64)dst & 7) == 0) {\n"
          "            STG((u64 *)dst, (u64)w[0] | (u64)w[1] << 32);\n"
          "            STG((u64 *)dst + 1, (u64)w[2] | (u64)w[3] << 32);\n"
          "        } else {\n"
          "            #pragma unroll\n"
          "            for (int i = 0; i < 8; ++i)\n"
          "                if (c + i < DVR) STG(dst + (i64)i * ost, (elem_t)(w[i >> 1] >> (16 * (i & 1))));\n"
          "        }\n");
    }
    E("    }\n"
      "    for (int r = tid; r < rows_here; r += NT) {\n"
      "        const int R = row0 + r, s = packed_row_seq(R, PACK), head = head0 + packed_row_head(R, PACK);\n"
      "        const float l = lds_f32(sL + (u32)(4 * r));\n");
    if (f32)
        E("        if (n_splits > 1) {\n"
          "            STG((float *)A.ws_lse + (((i64)split * A.batch + batch) * HQ + head) * seq_q + s, l);\n"
          "            continue;\n"
          "        }\n");
    E("        if (A.lse) STG((float *)A.lse + (i64)batch * A.lse_st[0] + (i64)s * A.lse_st[1] + (i64)head * A.lse_st[2], l);\n"
      "    }\n");
}

static void emit_mma_kernel(FILE *out, const ir_kernel *k, const cuda_plan *p) {
    const bool rope = has_rope(k);
    emit_mma_helpers(out, k, p);
    E("ATTNC_KERNEL void ATTNC_LAUNCH_BOUNDS(NT, 1) %s(attnc_args A) {\n", p->fwd_name);
    E("    const int tid = ATTNC_TID, lane = tid & 31, warp = tid >> 5;\n"
      "    const int wr = warp %% WR, wc = warp / WR;\n"
      "    const int seq_q = (int)A.seq_q, seq_k = (int)A.seq_k, n_splits = (int)A.n_splits;\n"
      "    const int rows_total = seq_q * PACK;\n"
      "    const int n_mblk = (rows_total + BR - 1) / BR;\n"
      "    /* the last row blocks see the most keys under a causal mask: launch them first */\n"
      "    const int m_block = n_mblk - 1 - ATTNC_BID_X;\n"
      "    const int split = ATTNC_BID_Y;\n"
      "    const int batch = ATTNC_BID_Z / HGRP, head0 = (ATTNC_BID_Z %% HGRP) * PACK, kvh = head0 / GQA;\n"
      "    const int row0 = m_block * BR;\n"
      "    const int row_last = (row0 + BR < rows_total ? row0 + BR : rows_total) - 1;\n"
      "    const int q_lo = query_position(packed_row_seq(row0, PACK), seq_q, seq_k);\n"
      "    const int q_hi = query_position(packed_row_seq(row_last, PACK), seq_q, seq_k);\n"
      "    const int h_lo = head0, h_hi = head0 + (PACK > 1 ? PACK - 1 : 0);\n"
      "    (void)wc; (void)h_lo; (void)h_hi;\n"
      "    const u32 sbase = smem_base();\n"
      "    const u32 sQ = sbase + SM_Q, sK0 = sbase + SM_K, sV0 = sbase + SM_V;\n"
      "    (void)sV0;\n"
      "    int n_lo = 0, n_hi = (seq_k + BC - 1) / BC - 1;\n");
    emit_band_bounds(out, k);
    if (k->mask && !k->band.band_exact) {
        /* trim tiles the interval analysis proves invisible from both ends */
        E("    while (n_hi >= n_lo && attnc_mask_class(q_lo, q_hi, (i64)n_hi * BC, (i64)(n_hi * BC + BC < seq_k ? n_hi * BC + BC : seq_k) - 1, h_lo, h_hi, batch, seq_q, seq_k) == 0) --n_hi;\n"
          "    while (n_lo <= n_hi && attnc_mask_class(q_lo, q_hi, (i64)n_lo * BC, (i64)(n_lo * BC + BC < seq_k ? n_lo * BC + BC : seq_k) - 1, h_lo, h_hi, batch, seq_q, seq_k) == 0) ++n_lo;\n");
    }
    if (p->splitkv)
    E("    if (n_splits > 1) {\n"
      "        const int count = n_hi - n_lo + 1;\n"
      "        const int per = count > 0 ? (count + n_splits - 1) / n_splits : 0;\n"
      "        const int lo = n_lo + split * per;\n"
      "        n_hi = lo + per - 1 < n_hi ? lo + per - 1 : n_hi;\n"
      "        n_lo = lo;\n"
      "    }\n");
    E("    float acc_o[DVC / 8][4];\n"
      "    #pragma unroll\n"
      "    for (int j = 0; j < DVC / 8; ++j) { acc_o[j][0] = 0.f; acc_o[j][1] = 0.f; acc_o[j][2] = 0.f; acc_o[j][3] = 0.f; }\n"
      "    float row_m[2] = {-ATTNC_INF, -ATTNC_INF}, row_l[2] = {0.f, 0.f};\n");
    if (p->q_in_regs) E("    u32 qf[D / 16][4];\n");
    /* this thread's two rows (g and g + 8 of the warp's m16 tile): query position and head */
    E("    int row_q[2], row_h[2];\n"
      "    #pragma unroll\n"
      "    for (int r = 0; r < 2; ++r) {\n"
      "        const int R = row0 + tile_acc_row(0, wr, WR, lane, 2 * r);\n"
      "        row_q[r] = query_position(packed_row_seq(R, PACK), seq_q, seq_k);\n"
      "        row_h[r] = head0 + packed_row_head(R, PACK);\n"
      "    }\n"
      "    (void)row_q; (void)row_h;\n");
    /* No visible key: skip all loads; the epilogue writes O = 0 and LSE = -inf. */
    E("    if (n_lo <= n_hi) {\n");
    E("    load_q_tile(&A, sQ, row0, rows_total, batch, head0);\n"
      "    load_k_tile(&A, sK0, n_hi, batch, kvh);\n");
    if (p->stages == 2 && !p->v_in_k) E("    load_v_tile(&A, sV0, n_hi, batch, kvh);\n");
    E("    cp_async_commit();\n");
    E("    for (int n = n_hi; n >= n_lo; --n) {\n");
    if (p->stages == 2) {
        E("        const int stg = (n_hi - n) & 1;\n"
          "        const u32 sK = sK0 + (u32)(stg * SM_KS);\n");
        E(p->v_in_k ? "        const u32 sV = sK;\n" : "        const u32 sV = sV0 + (u32)(stg * SM_VS);\n");
        E("        cp_async_wait0();\n"
          "        bar_sync();   /* tile n landed for every thread; everyone is done with tile n+1 */\n"
          "        if (n > n_lo) {\n"
          "            load_k_tile(&A, sK0 + (u32)((stg ^ 1) * SM_KS), n - 1, batch, kvh);\n");
        if (!p->v_in_k) E("            load_v_tile(&A, sV0 + (u32)((stg ^ 1) * SM_VS), n - 1, batch, kvh);\n");
        E("        }\n"
          "        cp_async_commit();\n");
    } else {
        E("        const u32 sK = sK0;\n");
        E(p->v_in_k ? "        const u32 sV = sK;\n" : "        const u32 sV = sV0;\n");
        E("        cp_async_wait0();\n"
          "        bar_sync();   /* K[n] landed; everyone is done reading V[n+1] */\n");
        if (!p->v_in_k) E("        load_v_tile(&A, sV, n, batch, kvh);\n        cp_async_commit();\n");
    }
    E("        if (n == n_hi) {\n");
    if (rope) {
        E("            for (int e = tid; e < BR * NPAIR; e += NT) {\n"
          "                const int r = e / NPAIR, j = e %% NPAIR, R = row0 + r;\n"
          "                if (R < rows_total)\n"
          "                    rope_rotate_smem(&A, sQ, BR, r, j, rope_pos(&A, batch, query_position(packed_row_seq(R, PACK), seq_q, seq_k), j));\n"
          "            }\n"
          "            bar_sync();\n");
    }
    if (p->q_in_regs) {
        E("            #pragma unroll\n"
          "            for (int ks = 0; ks < D / 16; ++ks)\n"
          "                ldsm_x4(sQ + (u32)smem_frag_offset(16 * wr, 16 * ks, ldsm_a_row(lane), ldsm_a_col(lane), BR, D), qf[ks]);\n");
    }
    E("        }\n");
    if (rope) {
        int npair = (k->rope.dim_hi - k->rope.dim_lo) / 2, np2 = npair / 2;
        bool half2 = k->rope.layout == IR_ROPE_HALF && !k->rope.explicit_positions && npair % 2 == 0 && np2 > 0 &&
                     k->rope.dim_lo % 2 == 0 &&
                     ((p->threads >= np2 && p->threads % np2 == 0) || (np2 > p->threads && np2 % p->threads == 0));
        if (half2) {
            /* Half layout: pairs j and j+1 sit in adjacent columns on both sides (c0, c0+1
               and c0+NPAIR, c0+NPAIR+1), so a thread rotates two pairs with two 32-bit
               shared loads and stores; angles as below, one state per pair. */
            int jpt = np2 > p->threads ? np2 / p->threads : 1, rstep = np2 > p->threads ? 1 : p->threads / np2;
            E("        #pragma unroll\n"
              "        for (int jq = 0; jq < %d; ++jq) {\n"
              "            const int j = 2 * (%s), r0 = %s;\n"
              "            float sa, ca, sb, cb, dsa, dca, dsb, dcb;\n"
              "            attnc_rope_cs((double)(n * BC + r0), rope_freq(&A, j), &sa, &ca);\n"
              "            attnc_rope_cs((double)(n * BC + r0), rope_freq(&A, j + 1), &sb, &cb);\n"
              "            attnc_rope_cs(%d.0, rope_freq(&A, j), &dsa, &dca);\n"
              "            attnc_rope_cs(%d.0, rope_freq(&A, j + 1), &dsb, &dcb);\n"
              "            const int c0 = rope_dim0(j), c1 = rope_dim1(j);\n"
              "            for (int r = r0; r < BC; r += %d) {\n"
              "                if (n * BC + r < seq_k) {\n"
              "                    const u32 a0 = sK + (u32)smem_tile_offset(r, c0, BC, D), a1 = sK + (u32)smem_tile_offset(r, c1, BC, D);\n"
              "                    const u32 x = lds_u32(a0), y = lds_u32(a1);\n"
              "                    const float x0 = ELEM_TO_F((u16)(x & 0xffffu)), x1 = ELEM_TO_F((u16)(x >> 16));\n"
              "                    const float y0 = ELEM_TO_F((u16)(y & 0xffffu)), y1 = ELEM_TO_F((u16)(y >> 16));\n"
              "                    sts_u32(a0, PACK2(x0 * ca - y0 * sa, x1 * cb - y1 * sb));\n"
              "                    sts_u32(a1, PACK2(x0 * sa + y0 * ca, x1 * sb + y1 * cb));\n"
              "                }\n"
              "                const float sa2 = sa * dca + ca * dsa, sb2 = sb * dcb + cb * dsb;\n"
              "                ca = ca * dca - sa * dsa;\n"
              "                cb = cb * dcb - sb * dsb;\n"
              "                sa = sa2;\n"
              "                sb = sb2;\n"
              "            }\n"
              "        }\n"
              "        bar_sync();\n",
              jpt, jpt > 1 ? "tid + jq * NT" : "tid % (NPAIR / 2)", jpt > 1 ? "0" : "tid / (NPAIR / 2)", rstep, rstep,
              rstep);
        } else if (!k->rope.explicit_positions && npair > 0 &&
            ((p->threads >= npair && p->threads % npair == 0) || (npair > p->threads && npair % p->threads == 0))) {
            /* Every K tile is rotated once per query block, so this is hot: each thread keeps
               its pair(s) j for the whole tile and walks rows RSTEP apart, so the angle needs
               one accurate sincos per tile and then a rotation by RSTEP·f per row (f32,
               error ~1e-6 after BC rows), instead of a sincos per element. */
            int jpt = npair > p->threads ? npair / p->threads : 1, rstep = npair > p->threads ? 1 : p->threads / npair;
            E("        #pragma unroll\n"
              "        for (int jq = 0; jq < %d; ++jq) {\n"
              "            const int j = %s, r0 = %s;\n"
              "            float sn, cs, dsn, dcs;\n"
              "            attnc_rope_cs((double)(n * BC + r0), rope_freq(&A, j), &sn, &cs);\n"
              "            attnc_rope_cs(%d.0, rope_freq(&A, j), &dsn, &dcs);\n"
              "            const int c0 = rope_dim0(j), c1 = rope_dim1(j);\n"
              "            for (int r = r0; r < BC; r += %d) {\n"
              "                if (n * BC + r < seq_k) {\n"
              "                    const u32 a0 = sK + (u32)smem_tile_offset(r, c0, BC, D), a1 = sK + (u32)smem_tile_offset(r, c1, BC, D);\n"
              "                    const float x0 = ELEM_TO_F(lds_u16(a0)), x1 = ELEM_TO_F(lds_u16(a1));\n"
              "                    sts_u16(a0, F_TO_ELEM(x0 * cs - x1 * sn));\n"
              "                    sts_u16(a1, F_TO_ELEM(x0 * sn + x1 * cs));\n"
              "                }\n"
              "                const float sn2 = sn * dcs + cs * dsn;\n"
              "                cs = cs * dcs - sn * dsn;\n"
              "                sn = sn2;\n"
              "            }\n"
              "        }\n"
              "        bar_sync();\n",
              jpt, jpt > 1 ? "tid + jq * NT" : "tid % NPAIR", jpt > 1 ? "0" : "tid / NPAIR", rstep, rstep);
        } else {
            E("        for (int e = tid; e < BC * NPAIR; e += NT) {\n"
              "            const int r = e / NPAIR, j = e %% NPAIR, key = n * BC + r;\n"
              "            if (key < seq_k) rope_rotate_smem(&A, sK, BC, r, j, rope_pos(&A, batch, key, j));\n"
              "        }\n"
              "        bar_sync();\n");
        }
    }
    /* S = Q K^T */
    E("        float acc_s[BC / 8][4];\n"
      "        #pragma unroll\n"
      "        for (int nt = 0; nt < BC / 8; ++nt) { acc_s[nt][0] = 0.f; acc_s[nt][1] = 0.f; acc_s[nt][2] = 0.f; acc_s[nt][3] = 0.f; }\n"
      "        #pragma unroll\n"
      "        for (int ks = 0; ks < D / 16; ++ks) {\n");
    if (p->q_in_regs) E("            const u32 *qa = qf[ks];\n");
    else E("            u32 qa[4];\n"
           "            ldsm_x4(sQ + (u32)smem_frag_offset(16 * wr, 16 * ks, ldsm_a_row(lane), ldsm_a_col(lane), BR, D), qa);\n");
    E("            #pragma unroll\n"
      "            for (int np = 0; np < BC / 16; ++np) {\n"
      "                u32 kb[4];\n"
      "                ldsm_x4(sK + (u32)smem_frag_offset(16 * np, 16 * ks, ldsm_b_row(lane), ldsm_b_col(lane), BC, D), kb);\n"
      "                MMA(acc_s[2 * np], qa, kb);\n"
      "                MMA(acc_s[2 * np + 1], qa, kb + 2);\n"
      "            }\n"
      "        }\n");
    /* scores -> log2-domain logits; masked elements are assigned -inf (never added to),
       and only tiles the interval analysis cannot prove fully visible pay for the test */
    E("        const int kv0 = n * BC;\n"
      "        bool need_mask = kv0 + BC > seq_k;\n");
    if (k->mask)
        E("        need_mask = need_mask || attnc_mask_class(q_lo, q_hi, kv0, (kv0 + BC < seq_k ? kv0 + BC : seq_k) - 1, h_lo, h_hi, batch, seq_q, seq_k) != 1;\n");
    /* Without a score modifier (and with a positive scale) the raw scores stay as they are:
       the row max is taken on them and scaled once, and exp2(s·scale·log2e − m) becomes one
       FFMA into the MUFU, saving a multiply per score (max commutes with a positive
       scale, and rounding is monotonic, so the max is the same number). */
    const bool fused_scale = !k->score_mod && kernel_scale(k) > 0;
    const char *logit = k->score_mod
        ? "attnc_score_mod(&A, acc_s[nt][i] * SCALE, row_q[i >> 1], kv0 + tile_acc_col(nt, lane, i), row_h[i >> 1], batch, seq_q, seq_k) * LOG2E"
        : fused_scale ? "acc_s[nt][i]" : "acc_s[nt][i] * SCALE_LOG2E";
    E("        if (need_mask) {\n"
      "            #pragma unroll\n"
      "            for (int nt = 0; nt < BC / 8; ++nt)\n"
      "                #pragma unroll\n"
      "                for (int i = 0; i < 4; ++i) {\n"
      "                    const int kv_idx = kv0 + tile_acc_col(nt, lane, i);\n"
      "                    const bool keep = kv_idx < seq_k%s;\n"
      "                    acc_s[nt][i] = keep ? %s : -ATTNC_INF;\n"
      "                }\n"
      "        }%s",
      k->mask ? " && attnc_mask(&A, 0.f, row_q[i >> 1], kv_idx, row_h[i >> 1], batch, seq_q, seq_k)" : "", logit,
      fused_scale ? "\n" : " else {\n");
    if (!fused_scale)
        E("            #pragma unroll\n"
          "            for (int nt = 0; nt < BC / 8; ++nt)\n"
          "                #pragma unroll\n"
          "                for (int i = 0; i < 4; ++i) acc_s[nt][i] = %s;\n"
          "        }\n", logit);
    if (p->stages == 1 && !p->v_in_k) {
        E("        cp_async_wait0();\n"
          "        bar_sync();   /* V[n] landed; everyone is done reading K[n] */\n"
          "        if (n > n_lo) { load_k_tile(&A, sK0, n - 1, batch, kvh); cp_async_commit(); }\n");
    }
    /* online softmax (cuda-kernels.md §5): rows g (elements 0, 1) and g + 8 (2, 3) */
    E("        float mx[2] = {%s, %s};\n"
      "        #pragma unroll\n"
      "        for (int nt = 0; nt < BC / 8; ++nt) {\n"
      "            mx[0] = fmaxf(mx[0], fmaxf(acc_s[nt][0], acc_s[nt][1]));\n"
      "            mx[1] = fmaxf(mx[1], fmaxf(acc_s[nt][2], acc_s[nt][3]));\n"
      "        }\n"
      "        float alpha[2], msub[2];\n"
      "        #pragma unroll\n"
      "        for (int r = 0; r < 2; ++r) {\n"
      "            mx[r] = fmaxf(mx[r], shfl_xor(mx[r], 1));\n"
      "            mx[r] = fmaxf(mx[r], shfl_xor(mx[r], 2));\n"
      "%s"
      "            msub[r] = mx[r] == -ATTNC_INF ? 0.f : mx[r];   /* -inf - -inf would be NaN */\n"
      "            alpha[r] = ex2(row_m[r] - msub[r]);\n"
      "            row_m[r] = mx[r];\n"
      "        }\n"
      "        float lsum[2] = {0.f, 0.f};\n"
      "        #pragma unroll\n"
      "        for (int nt = 0; nt < BC / 8; ++nt) {\n"
      "            #pragma unroll\n"
      "            for (int i = 0; i < 4; ++i) {\n"
      "                acc_s[nt][i] = ex2(%s);\n"
      "                lsum[i >> 1] += acc_s[nt][i];\n"
      "            }\n"
      "        }\n",
      fused_scale ? "-ATTNC_INF" : "row_m[0]", fused_scale ? "-ATTNC_INF" : "row_m[1]",
      fused_scale ? "            mx[r] = fmaxf(row_m[r], mx[r] * SCALE_LOG2E);   /* raw tile max, scaled once */\n" : "",
      fused_scale ? "fmaf(acc_s[nt][i], SCALE_LOG2E, -msub[i >> 1])" : "acc_s[nt][i] - msub[i >> 1]");
    E(
      "        row_l[0] = row_l[0] * alpha[0] + lsum[0];\n"
      "        row_l[1] = row_l[1] * alpha[1] + lsum[1];\n"
      "        #pragma unroll\n"
      "        for (int j = 0; j < DVC / 8; ++j) {\n"
      "            acc_o[j][0] *= alpha[0]; acc_o[j][1] *= alpha[0];\n"
      "            acc_o[j][2] *= alpha[1]; acc_o[j][3] *= alpha[1];\n"
      "        }\n");
    /* O += P V with P repacked from the S accumulators (§1.1) */
    /* This warp's dv slice: whole 64-column pages when WC > 1, so it is itself a tile of
       width VCW starting 2 * BC * wc * DVC bytes in. */
    E("        const u32 sVc = sV + (u32)(2 * BC * wc * DVC);\n");
    E("        #pragma unroll\n"
      "        for (int kk = 0; kk < BC / 16; ++kk) {\n"
      "            u32 pa[4];\n"
      "            #pragma unroll\n"
      "            for (int r = 0; r < 4; ++r)\n"
      "                pa[r] = PACK2(acc_s[repack_tile(kk, r)][repack_acc(r, 0)], acc_s[repack_tile(kk, r)][repack_acc(r, 1)]);\n"
      "            #pragma unroll\n"
      "            for (int j = 0; j < DVC / 16; ++j) {\n"
      "                u32 vb[4];\n"
      "                ldsm_x4_t(sVc + (u32)smem_frag_offset(16 * kk, 16 * j, ldsm_bt_row(lane), ldsm_bt_col(lane), BC, VCW), vb);\n"
      "                MMA(acc_o[2 * j], pa, vb);\n"
      "                MMA(acc_o[2 * j + 1], pa, vb + 2);\n"
      "            }\n"
      "        }\n");
    if (p->stages == 1 && p->v_in_k) {
        E("        bar_sync();   /* everyone is done with the K/V tile before it is overwritten */\n"
          "        if (n > n_lo) { load_k_tile(&A, sK0, n - 1, batch, kvh); cp_async_commit(); }\n");
    }
    E("    }\n"
      "    }\n");
    /* epilogue */
    E("    float inv[2], lse[2];\n"
      "    #pragma unroll\n"
      "    for (int r = 0; r < 2; ++r) {\n"
      "        float l = row_l[r];\n"
      "        l += shfl_xor(l, 1);\n"
      "        l += shfl_xor(l, 2);\n"
      "        inv[r] = l > 0.f ? 1.f / l : 0.f;\n"
      "        lse[r] = l > 0.f ? row_m[r] * LN2 + logf(l) : -ATTNC_INF;\n"
      "    }\n");
    if (p->stage_out) emit_staged_epilogue(out, p);
    else emit_direct_epilogue(out, p);
    E("}\n\n");
}

/* ---------------------------------------------------------------- SIMT kernel */

static void emit_simt_kernel(FILE *out, const ir_kernel *k, const cuda_plan *p) {
    const bool rope = has_rope(k);
    const ir_rope *rp = &k->rope;
    E("ATTNC_DEVICE float ld_elem(u64 base, i64 off) { return ELEM_TO_F(LDG((const elem_t *)base + off)); }\n\n");
    if (rope) {
        /* Relative form: score = q . R(-rel * f) k with rel = pos_q - pos_k per axis, which is
           what rotating q and k by their absolute positions gives, and what ReRoPE clips. */
        E("ATTNC_DEVICE float rope_k_elem(const attnc_args *A, u64 kb, i64 koff, i64 kst, int e, int batch, int q_tok, int k_tok) {\n"
          "    if (e < ROPE_LO || e >= ROPE_LO + 2 * NPAIR) return ld_elem(kb, koff + (i64)e * kst);\n"
          "    const int j = ROPE_INTERLEAVED ? (e - ROPE_LO) / 2 : (e - ROPE_LO) %% NPAIR;\n"
          "    const bool second = ROPE_INTERLEAVED ? ((e - ROPE_LO) & 1) : (e - ROPE_LO) >= NPAIR;\n"
          "    const double rel0 = (double)(rope_pos(A, batch, q_tok, j) - rope_pos(A, batch, k_tok, j));\n");
        if (rp->rerope_window > 0) {
            if (rp->rerope_leak > 0)
                E("    const double rel = rel0 < %d.0 ? rel0 : %d.0 + (rel0 - %d.0) / %.17g;\n", rp->rerope_window,
                  rp->rerope_window, rp->rerope_window, rp->rerope_leak);
            else
                E("    const double rel = rel0 < %d.0 ? rel0 : %d.0;\n", rp->rerope_window, rp->rerope_window);
        } else {
            E("    const double rel = rel0;\n");
        }
        E("    float sn, cs;\n"
          "    attnc_rope_cs(-rel, rope_freq(A, j), &sn, &cs);\n"
          "    const float k0 = ld_elem(kb, koff + (i64)rope_dim0(j) * kst), k1 = ld_elem(kb, koff + (i64)rope_dim1(j) * kst);\n"
          "    return second ? k0 * sn + k1 * cs : k0 * cs - k1 * sn;\n"
          "}\n\n");
    }
    E("ATTNC_KERNEL void ATTNC_LAUNCH_BOUNDS(NT, 1) %s(attnc_args A) {\n", p->fwd_name);
    E("    const int warp = ATTNC_TID >> 5, lane = ATTNC_TID & 31;\n"
      "    const int seq_q = (int)A.seq_q, seq_k = (int)A.seq_k, n_splits = (int)A.n_splits;\n"
      "    const int s = ATTNC_BID_X * ROWS + warp;\n"
      "    const int split = ATTNC_BID_Y;\n"
      "    const int batch = ATTNC_BID_Z / HQ, head = ATTNC_BID_Z %% HQ, kvh = head / GQA;\n"
      "    if (s >= seq_q) return;   /* whole warps only: this kernel has no block barrier */\n"
      "    const int q_idx = query_position(s, seq_q, seq_k);\n"
      "    const i64 qoff = (i64)batch * A.q_st[0] + (i64)s * A.q_st[1] + (i64)head * A.q_st[2];\n"
      "    float qv[NQ], ov[NV];\n"
      "    #pragma unroll\n"
      "    for (int i = 0; i < NQ; ++i) { const int e = lane + 32 * i; qv[i] = e < DQK ? ld_elem(A.q, qoff + (i64)e * A.q_st[3]) : 0.f; }\n"
      "    #pragma unroll\n"
      "    for (int i = 0; i < NV; ++i) ov[i] = 0.f;\n"
      "    float m = -ATTNC_INF, l = 0.f;\n"
      "    int lo = 0, hi = seq_k - 1;\n");
    if (k->band.has_band) {
        if (k->band.band_hi != INT64_MAX)
            E("    { const i64 b = (i64)q_idx - (i64)(%lldll); if (b > lo) lo = b > seq_k ? seq_k : (int)b; }\n", (long long)k->band.band_hi);
        if (k->band.band_lo != INT64_MIN)
            E("    { const i64 b = (i64)q_idx - (i64)(%lldll); if (b < hi) hi = b < -1 ? -1 : (int)b; }\n", (long long)k->band.band_lo);
    }
    E("    if (n_splits > 1) {\n"
      "        const int count = hi - lo + 1;\n"
      "        const int per = count > 0 ? (count + n_splits - 1) / n_splits : 0;\n"
      "        const int l0 = lo + split * per;\n"
      "        hi = l0 + per - 1 < hi ? l0 + per - 1 : hi;\n"
      "        lo = l0;\n"
      "    }\n");
    const char *vptr = k->v_in_k ? "A.k" : "A.v";
    const char *vst = k->v_in_k ? "A.k_st" : "A.v_st";
    E("    for (int kv_idx = lo; kv_idx <= hi; ++kv_idx) {\n"
      "        const i64 koff = (i64)batch * A.k_st[0] + (i64)kv_idx * A.k_st[1] + (i64)kvh * A.k_st[2];\n"
      "        float part = 0.f;\n"
      "        #pragma unroll\n"
      "        for (int i = 0; i < NQ; ++i) {\n"
      "            const int e = lane + 32 * i;\n"
      "            if (e < DQK) part += qv[i] * %s;\n"
      "        }\n",
      rope ? "rope_k_elem(&A, A.k, koff, A.k_st[3], e, batch, q_idx, kv_idx)" : "ld_elem(A.k, koff + (i64)e * A.k_st[3])");
    E("        #pragma unroll\n"
      "        for (int o = 16; o > 0; o >>= 1) part += shfl_xor(part, o);\n");
    if (k->score_mod)
        E("        float x = attnc_score_mod(&A, part * SCALE, q_idx, kv_idx, head, batch, seq_q, seq_k) * LOG2E;\n");
    else
        E("        float x = part * SCALE_LOG2E;\n");
    if (k->mask) E("        if (!attnc_mask(&A, 0.f, q_idx, kv_idx, head, batch, seq_q, seq_k)) x = -ATTNC_INF;\n");
    E("        if (x == -ATTNC_INF) continue;   /* warp-uniform: every lane holds the same x */\n"
      "        const float m_new = fmaxf(m, x);\n"
      "        const float alpha = ex2(m - m_new), pr = ex2(x - m_new);\n"
      "        l = l * alpha + pr;\n"
      "        m = m_new;\n"
      "        const i64 voff = (i64)batch * %s[0] + (i64)kv_idx * %s[1] + (i64)kvh * %s[2];\n"
      "        #pragma unroll\n"
      "        for (int i = 0; i < NV; ++i) {\n"
      "            const int e = lane + 32 * i;\n"
      "            ov[i] = ov[i] * alpha + (e < DVR ? pr * ld_elem(%s, voff + (i64)e * %s[3]) : 0.f);\n"
      "        }\n"
      "    }\n",
      vst, vst, vst, vptr, vst);
    E("    const float inv = l > 0.f ? 1.f / l : 0.f;\n"
      "    const float lse = l > 0.f ? m * LN2 + logf(l) : -ATTNC_INF;\n"
      "    #pragma unroll\n"
      "    for (int i = 0; i < NV; ++i) {\n"
      "        const int e = lane + 32 * i;\n"
      "        if (e < DVR) {\n"
      "            if (n_splits > 1)\n"
      "                STG((float *)A.ws_o + ((((i64)split * A.batch + batch) * HQ + head) * seq_q + s) * DVR + e, ov[i] * inv);\n"
      "            else\n"
      "                STG((elem_t *)A.o + (i64)batch * A.o_st[0] + (i64)s * A.o_st[1] + (i64)head * A.o_st[2] + (i64)e * A.o_st[3], F_TO_ELEM(ov[i] * inv));\n"
      "        }\n"
      "    }\n"
      "    if (lane == 0) {\n"
      "        if (n_splits > 1)\n"
      "            STG((float *)A.ws_lse + (((i64)split * A.batch + batch) * HQ + head) * seq_q + s, lse);\n"
      "        else if (A.lse)\n"
      "            STG((float *)A.lse + (i64)batch * A.lse_st[0] + (i64)s * A.lse_st[1] + (i64)head * A.lse_st[2], lse);\n"
      "    }\n"
      "}\n\n");
}

/* ---------------------------------------------------------------- split-KV merge */

static void emit_merge_kernel(FILE *out, const cuda_plan *p) {
    /* One warp per (batch, head, query) row; partial O_s are already normalised by their
       own l_s, so O = sum_s exp(LSE_s - LSE) O_s (cuda-kernels.md §6). The warp reduces the
       LSE over splits in its lanes, then walks the splits once with one weight per split
       and each lane's columns in registers: MU splits per step keep MU * MCOLS loads in
       flight, and the loop stays rolled so NVVM and ptxas see a small body. */
    E("enum { MCOLS = (DVR + 31) / 32, MU = MCOLS >= 16 ? 1 : 16 / MCOLS };\n");
    E("ATTNC_KERNEL void ATTNC_LAUNCH_BOUNDS(128, 1) %s(attnc_args A) {\n", p->merge_name);
    E("    const int warp = ATTNC_TID >> 5, lane = ATTNC_TID & 31;\n"
      "    const i64 rows = A.batch * HQ * A.seq_q;\n"
      "    const i64 row = (i64)ATTNC_BID_X * 4 + warp;\n"
      "    if (row >= rows) return;   /* uniform per warp: the shuffles below see whole warps */\n"
      "    const int seq_q = (int)A.seq_q, n_splits = (int)A.n_splits;\n"
      "    const i64 bh = row / seq_q;   /* the one run-time division; HQ is a constant */\n"
      "    const int s = (int)(row - bh * seq_q), head = (int)(bh %% HQ), batch = (int)(bh / HQ);\n"
      "    const float *ws_lse = (const float *)A.ws_lse + row, *ws_o = (const float *)A.ws_o + row * DVR + lane;\n"
      "    float mx = -ATTNC_INF;\n"
      "    #pragma unroll 1\n"
      "    for (int sp = lane; sp < n_splits; sp += 32) mx = fmaxf(mx, LDG(ws_lse + (i64)sp * rows));\n"
      "    #pragma unroll\n"
      "    for (int m = 16; m >= 1; m >>= 1) mx = fmaxf(mx, shfl_xor(mx, m));\n"
      "    float z = 0.f;\n"
      "    #pragma unroll 1\n"
      "    for (int sp = lane; sp < n_splits; sp += 32)\n"
      "        if (mx != -ATTNC_INF) z += ex2((LDG(ws_lse + (i64)sp * rows) - mx) * LOG2E);\n"
      "    #pragma unroll\n"
      "    for (int m = 16; m >= 1; m >>= 1) z += shfl_xor(z, m);\n"
      "    const float lse = (mx == -ATTNC_INF || !(z > 0.f)) ? -ATTNC_INF : mx + logf(z);\n"
      "    float acc[MCOLS];\n"
      "    #pragma unroll\n"
      "    for (int c = 0; c < MCOLS; ++c) acc[c] = 0.f;\n"
      "    if (lse != -ATTNC_INF) {\n"
      "        #pragma unroll MU\n"
      "        for (int sp = 0; sp < n_splits; ++sp) {\n"
      "            /* a split that saw no key has weight 0: skip its partial, whatever it holds */\n"
      "            const float w = ex2((LDG(ws_lse + (i64)sp * rows) - lse) * LOG2E);\n"
      "            const float *src = ws_o + (i64)sp * rows * DVR;\n"
      "            #pragma unroll\n"
      "            for (int c = 0; c < MCOLS; ++c)\n"
      "                if (lane + 32 * c < DVR) {\n"
      "                    const float x = LDG(src + 32 * c);\n"
      "                    acc[c] = w > 0.f ? fmaf(w, x, acc[c]) : acc[c];\n"
      "                }\n"
      "        }\n"
      "    }\n"
      "    elem_t *dst = (elem_t *)A.o + (i64)batch * A.o_st[0] + (i64)s * A.o_st[1] + (i64)head * A.o_st[2];\n"
      "    #pragma unroll\n"
      "    for (int c = 0; c < MCOLS; ++c)\n"
      "        if (lane + 32 * c < DVR) STG(dst + (i64)(lane + 32 * c) * A.o_st[3], F_TO_ELEM(acc[c]));\n"
      "    if (lane == 0 && A.lse)\n"
      "        STG((float *)A.lse + (i64)batch * A.lse_st[0] + (i64)s * A.lse_st[1] + (i64)head * A.lse_st[2], lse);\n"
      "}\n\n");
}

/* ---------------------------------------------------------------- entry points */

bool cuda_emit_recurrence(FILE *out, const ir_kernel *k, const cuda_plan *p, char *err, size_t errlen);

void cuda_emit_part_begin(FILE *out, int part) { E("#if !defined(ATTNC_PART) || ATTNC_PART == %d\n", part); }
void cuda_emit_part_end(FILE *out) { E("#endif\n\n"); }

bool cuda_emit_kernel_source(const ir_kernel *k, const cuda_plan *p, bool sim, FILE *out, char *err, size_t errlen) {
    if (has_rope(k) && !k->rope.planned) {
        snprintf(err, errlen, "kernel '%s': the RoPE plan is missing; run the IR pass pipeline (plan-rope) before emitting", k->name);
        return false;
    }
    E("/* Generated by attnc %s for %s (CUDA backend). Do not edit. */\n", ATTNC_VERSION, k->name);
    cuda_emit_prelude(out, sim);
    emit_constants(out, k, p);
    cuda_args_emit_struct(out, k);
    if (p->kind == CUDA_KIND_RECUR) {
        if (!cuda_emit_recurrence(out, k, p, err, errlen)) return false;
    } else {
        emit_expressions(out, k);
        emit_rope(out, k);
        cuda_emit_part_begin(out, 0);
        if (p->kind == CUDA_KIND_MMA) emit_mma_kernel(out, k, p);
        else emit_simt_kernel(out, k, p);
        cuda_emit_part_end(out);
        if (p->splitkv) {
            cuda_emit_part_begin(out, 1);
            emit_merge_kernel(out, p);
            cuda_emit_part_end(out);
        }
    }
    if (sim) {
        /* entry points for the simulator's launcher (tests/cuda/sim_prims.h) */
        E("ATTNC_SIM_EXPORT void attnc_sim_fwd(const void *args) { %s(*(const attnc_args *)args); }\n", p->fwd_name);
        if (p->splitkv && p->kind != CUDA_KIND_RECUR)
            E("ATTNC_SIM_EXPORT void attnc_sim_merge(const void *args) { %s(*(const attnc_args *)args); }\n", p->merge_name);
        if (p->kind == CUDA_KIND_RECUR && strcmp(p->step_name, p->fwd_name) != 0)
            E("ATTNC_SIM_EXPORT void attnc_sim_step(const void *args) { %s(*(const attnc_args *)args); }\n", p->step_name);
        E("ATTNC_SIM_EXPORT unsigned long attnc_sim_args_size(void) { return sizeof(attnc_args); }\n");
        if (p->kind != CUDA_KIND_RECUR)
            E("ATTNC_SIM_EXPORT int attnc_sim_mask_class(const i64 *r) { return attnc_mask_class(r[0], r[1], r[2], r[3], "
              "r[4], r[5], r[6], r[7], r[8]); }\n");
    }
    return true;
}

char *cuda_emit_kernel_string(const ir_kernel *k, const cuda_plan *p, bool sim, char *err, size_t errlen) {
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (!out) {
        snprintf(err, errlen, "out of memory while emitting CUDA source");
        return NULL;
    }
    bool ok = cuda_emit_kernel_source(k, p, sim, out, err, errlen);
    fclose(out);
    if (!ok) {
        free(buf);
        return NULL;
    }
    return buf;
}
