/* Recurrence kernels for the CPU (see cpu_recur.h): the module, its exports, and the work
 * item that runs a batch row's block of heads through the sequence.
 *
 * Work items are (batch row, block of heads), independent (each head carries its own
 * state through the chunks in order), scheduled dynamically by the pool in phase 1: all
 * heads of a row in one item, or blocks of them when threads outnumber rows (make_plan).
 * An item picks its form at run time: chunkwise for whole chunks (cpu_recur_chunk.c) with
 * the states in scratch, heads inside the chunk loop so each chunk's q and k are staged
 * once per group, then the step form (cpu_recur_scan.c) for a short tail; or the step
 * form alone, reading state_in and writing state_out directly (decode) when their rows
 * are contiguous.
 *
 * Workspace: n_threads x (T floats of chunk scratch, fixed by the dims and chunk: about
 * 2 C d_k + 4 C d_v' + 2 C^2 floats for scalar decays, 7 C d_k + 2 C d_v' + C^2 for decays
 * per key dim, d_v' = d_v (+1 with normalize); plus d_k x d_v' floats per head of the
 * item). Nothing else is allocated per launch. */
#include <stdio.h>
#include <string.h>
#include "codegen/llvm/cpu_recur_internal.h"

static int64_t rup(int64_t a, int64_t m) { return (a + m - 1) / m * m; }

/* ---------------------------------------------------------------- support */

static bool expr_ok(const ir_expr *e, bool feature) {
    if (!e) return true;
    if (e->op == IR_VAR && !(feature ? e->var == IR_VAR_X : e->var == IR_VAR_HEAD)) return false;
    if (e->op == IR_INPUT && (feature || e->n_args != 0)) return false;
    for (int i = 0; i < e->n_args; i++)
        if (!expr_ok(e->args[i], feature)) return false;
    return true;
}

const char *cpu_recur_unsupported(const ir_kernel *k, const cpu_target *t) {
    if (k->family != IR_RECURRENCE) return "not a recurrence";
    if (k->dtype == IR_F16 && t->x86 && !t->f16c)
        return "f16 tensors need F16C on the cpu target (this machine lacks it); use bf16 or f32";
    if (k->n_inputs > 16) return "more than 16 declared inputs are not supported on the cpu target";
    if (k->heads_q <= 0 || k->groups <= 0 || k->heads_q % k->groups != 0 || k->d_qk <= 0 || k->d_v <= 0)
        return "inconsistent heads, groups or dims";
    if (k->chunk < 16 || k->chunk > 1024 || k->chunk % 16 != 0) return "the chunk length must be a multiple of 16 in [16, 1024]";
    if (k->normalize && k->decay_kind == IR_DECAY_STATE) return "normalize needs a decay that does not vary along v";
    if (!expr_ok(k->decay, false) || !expr_ok(k->log_decay, false) || !expr_ok(k->v_scale, false) ||
        !expr_ok(k->skip, false) || !expr_ok(k->feature, true))
        return "a recurrence expression reads something other than head, x or its inputs at the current point";
    return NULL;
}

/* ---------------------------------------------------------------- configuration */

static bool reads_axis(const ir_kernel *k, const ir_expr *e, ir_axis ax) {
    if (!e) return false;
    if (e->op == IR_INPUT && e->input >= 0 && e->input < k->n_inputs)
        for (int a = 0; a < k->inputs[e->input].n_axes; a++)
            if (k->inputs[e->input].axes[a] == ax) return true;
    for (int i = 0; i < e->n_args; i++)
        if (reads_axis(k, e->args[i], ax)) return true;
    return false;
}

static void configure(rgen *g, const ir_kernel *k, const cpu_target *t) {
    g->k = k;
    g->H = k->heads_q;
    g->G = k->groups;
    g->N = k->d_qk;
    g->P = k->d_v;
    g->P1 = k->d_v + (k->normalize ? 1 : 0);
    g->W = t->lanes;
    g->C = k->chunk;
    g->Npad = (int)rup(g->N, g->W);
    g->Pp = (int)rup(g->P1, g->W);
    g->Cpad = (int)rup(g->C, g->W);
    /* Accumulators: AVX-512 12 x 2 zmm of 32 registers, otherwise 6 x 2 of 16. */
    g->R = t->lanes >= 16 ? 12 : 6;
    g->NV = 2;
    g->sub = 16;
    g->EB = t->lanes >= 16 ? 8 : 4;
    g->chunked = k->decay_kind != IR_DECAY_STATE;
    g->vdecay = k->decay_kind == IR_DECAY_KEY_VECTOR;
    g->lam_table = k->decay_kind == IR_DECAY_STATE && !reads_axis(k, k->decay, IR_AXIS_TOKEN);
    int64_t off = 0;
#define TAKE(field, n) do { g->field = off; off += rup((n), 16); } while (0)
    int64_t Np = g->Npad, Pp = g->Pp, Cp = g->Cpad;
    TAKE(o_zero, Pp > 2 * Np ? Pp : 2 * Np);
    TAKE(o_q, Np);
    TAKE(o_k, Np);
    TAKE(o_v, Pp);
    TAKE(o_lam, k->decay_kind == IR_DECAY_STATE ? Np * Pp : Np);
    TAKE(o_orow, Pp);
    TAKE(o_w, Np);
    TAKE(o_lit, Np * Pp);
    if (g->chunked) {
        TAKE(o_Kr, Cp * Np);
        TAKE(o_V, Cp * Pp);
        TAKE(o_Sc, Cp * Cp);
        TAKE(o_O, Cp * Pp);
        if (!g->vdecay) TAKE(o_Sraw, Cp * Cp);
        if (g->vdecay) {
            TAKE(o_Qr, Cp * Np);
            TAKE(o_fj, Np);
            TAKE(o_Ar, 2 * Cp * Np);
            TAKE(o_QdT, Np * Cp);
            TAKE(o_Kx, Cp * Np);
            TAKE(o_QtT, Np * Cp);
            TAKE(o_esr, Np);
        } else {
            TAKE(o_QT, Np * Cp);
            TAKE(o_Vd, Cp * Pp);
            TAKE(o_Vs, Cp * Pp);
            TAKE(o_A, 2 * Cp);
            TAKE(o_es, Cp);
        }
    }
#undef TAKE
    g->T = off;
    g->SF = rup(Np * Pp, 16);
}

cpu_recur_info cpu_recur_describe(const ir_kernel *k, const cpu_target *t) {
    rgen g;
    memset(&g, 0, sizeof g);
    configure(&g, k, t);
    cpu_recur_info info = { g.W, g.R, g.NV, g.C, g.vdecay ? g.sub : 0, g.Npad, g.Pp };
    return info;
}

/* ---------------------------------------------------------------- arguments */

static LLVMValueRef param(rgen *g, int i) { return LLVMGetParam(g->c.fn, (unsigned)i); }

static LLVMValueRef afield(rgen *g, LLVMValueRef A, int idx, LLVMTypeRef t) {
    return cg_load(&g->c, t, LLVMBuildStructGEP2(RB(g), g->t_args, A, (unsigned)idx, ""), 8);
}

static LLVMValueRef slot_field(rgen *g, LLVMValueRef A, int s, int field, int d) {
    LLVMValueRef idx[5] = { rI(g, 0), cg_i32(&g->c, 8), cg_i32(&g->c, s), cg_i32(&g->c, field), cg_i32(&g->c, d) };
    return LLVMBuildInBoundsGEP2(RB(g), g->t_args, A, idx, field == 0 ? 4 : 5, "");
}

static LLVMValueRef slot_data(rgen *g, LLVMValueRef A, int s) {
    return cg_load(&g->c, g->c.t_pi8, slot_field(g, A, s, 0, 0), 8);
}

/* Shape of a slot (batch and seq from the args). */
static int slot_shape(rgen *g, LLVMValueRef B, LLVMValueRef SQ, int s, LLVMValueRef *dims) {
    const cpu_abi *a = &g->abi;
    if (s == a->q || s == a->k) { dims[0] = B; dims[1] = SQ; dims[2] = rI(g, g->G); dims[3] = rI(g, g->N); return 4; }
    if (s == a->v || s == a->o) { dims[0] = B; dims[1] = SQ; dims[2] = rI(g, g->H); dims[3] = rI(g, g->P); return 4; }
    if (s == g->s_state_in || s == g->s_state_out) {
        dims[0] = B; dims[1] = rI(g, g->H); dims[2] = rI(g, g->N); dims[3] = rI(g, g->P); return 4;
    }
    if (s == g->s_norm_in || s == g->s_norm_out) { dims[0] = B; dims[1] = rI(g, g->H); dims[2] = rI(g, g->N); return 3; }
    const ir_input *in = &g->k->inputs[s - a->first_input];
    int n = 0;
    for (int i = 0; i < in->n_axes && n < 4; i++) {
        switch (in->axes[i]) {
        case IR_AXIS_TOKEN: dims[n++] = B; if (n < 4) dims[n++] = SQ; break;
        case IR_AXIS_HEAD: dims[n++] = rI(g, g->H); break;
        case IR_AXIS_K: dims[n++] = rI(g, g->N); break;
        case IR_AXIS_V: dims[n++] = rI(g, g->P); break;
        }
    }
    return n;
}

/* ST[slot * 4 + d]: the given strides, or the contiguous ones when all four are 0. */
static void emit_strides(rgen *g, LLVMValueRef A, LLVMValueRef ST) {
    LLVMValueRef B = rmax(g, afield(g, A, 0, g->c.t_i64), rI(g, 0));
    LLVMValueRef SQ = rmax(g, afield(g, A, 1, g->c.t_i64), rI(g, 0));
    for (int s = 0; s < g->abi.n_slots; s++) {
        LLVMValueRef dims[4] = { 0 }, contig[4], raw[4], any = rI(g, 0), st = rI(g, 1);
        int n = slot_shape(g, B, SQ, s, dims);
        for (int d = 3; d >= 0; d--) {
            if (d >= n) { contig[d] = rI(g, 0); continue; }
            contig[d] = st;
            st = rmul(g, st, dims[d]);
        }
        for (int d = 0; d < 4; d++) {
            raw[d] = cg_load(&g->c, g->c.t_i64, slot_field(g, A, s, 1, d), 8);
            any = LLVMBuildOr(RB(g), any, raw[d], "");
        }
        LLVMValueRef zero = rcmp(g, LLVMIntEQ, any, rI(g, 0));
        for (int d = 0; d < 4; d++)
            cg_store(&g->c, rsel(g, zero, contig[d], raw[d]), cg_gep(&g->c, g->c.t_i64, ST, rI(g, s * 4 + d)), 8);
    }
}

/* ---------------------------------------------------------------- items */

static void begin_fn(rgen *g, LLVMValueRef fn) {
    g->c.fn = fn;
    LLVMPositionBuilderAtEnd(RB(g), LLVMAppendBasicBlockInContext(g->c.ctx, fn, "entry"));
}

/* The item's values from (A, ST, b, h, X), the first five parameters of every item
 * function (X: the thread's scratch). */
static void prologue(rgen *g, ritem *it) {
    cg *c = &g->c;
    memset(it, 0, sizeof *it);
    it->A = param(g, 0);
    it->ST = param(g, 1);
    it->b = param(g, 2);
    it->h = param(g, 3);
    it->X = param(g, 4);
    it->seq = rmax(g, afield(g, it->A, 1, c->t_i64), rI(g, 0));
    it->grp = rdiv(g, it->h, rI(g, g->H / g->G));
    for (int s = 0; s < g->abi.n_slots; s++) it->data[s] = slot_data(g, it->A, s);
    const ir_kernel *k = g->k;
    if (k->decay_kind == IR_DECAY_HEAD) {
        it->lam_h = rg_eval(g, it, k->decay, NULL, NULL, NULL, -1);
        it->ell_h = rg_log2_decay(g, it, NULL, NULL, -1);
    }
    if (k->skip && !reads_axis(k, k->skip, IR_AXIS_V)) it->skip_h = rg_eval(g, it, k->skip, NULL, NULL, NULL, -1);
}

/* One output vector at column e: contiguous (whole vectors, unit inner strides) or any. */
static void output_vec(rgen *g, const ritem *it, LLVMValueRef t, LLVMValueRef orow, LLVMValueRef rden, LLVMValueRef e,
                       bool contig) {
    cg *c = &g->c;
    int so = g->abi.o, sv = g->abi.v;
    LLVMValueRef o = cg_vload(c, rfp(g, orow, e));
    if (rden) o = LLVMBuildFDiv(RB(g), o, rden, "");
    LLVMValueRef nval = rsub(g, rI(g, g->P), e);
    if (g->k->skip) {
        LLVMValueRef d = it->skip_h ? cg_splat(c, it->skip_h) : rg_eval(g, it, g->k->skip, NULL, NULL, e, IR_AXIS_V);
        LLVMValueRef off = rg_offset(g, it, sv, it->b, t, it->h, e);
        LLVMValueRef vraw = contig ? rg_load_contig(g, it->data[sv], false, off)
                                   : rg_load_row(g, it->data[sv], false, off, rg_stride(g, it, sv, 3), nval);
        o = cg_fma(c, d, vraw, o);
    }
    LLVMValueRef off = rg_offset(g, it, so, it->b, t, it->h, e);
    if (contig) rg_store_contig(g, it->data[so], false, off, o);
    else rg_store_row(g, it->data[so], false, off, rg_stride(g, it, so, 3), nval, o);
}

void rg_store_output(rgen *g, const ritem *it, LLVMValueRef t, LLVMValueRef orow, LLVMValueRef den) {
    cg *c = &g->c;
    int W = g->W, nfull = g->P / W;
    LLVMValueRef rden = den ? cg_splat(c, den) : NULL;
    if (nfull > 0) {
        LLVMValueRef fast = rcmp(g, LLVMIntEQ, rg_stride(g, it, g->abi.o, 3), rI(g, 1));
        if (g->k->skip) fast = LLVMBuildAnd(RB(g), fast, rcmp(g, LLVMIntEQ, rg_stride(g, it, g->abi.v, 3), rI(g, 1)), "");
        LLVMBasicBlockRef bf = cg_block(c, "out_fast"), bs = cg_block(c, "out_any"), join = cg_block(c, "out_join");
        LLVMBuildCondBr(RB(g), fast, bf, bs);
        for (int pass = 0; pass < 2; pass++) {
            LLVMPositionBuilderAtEnd(RB(g), pass == 0 ? bf : bs);
            cg_loop E;
            cg_loop_begin(c, &E, rI(g, 0), rI(g, (int64_t)nfull * W), rI(g, W), 0, NULL);
            output_vec(g, it, t, orow, rden, E.iv, pass == 0);
            cg_loop_end(c, &E, NULL);
            LLVMBuildBr(RB(g), join);
        }
        LLVMPositionBuilderAtEnd(RB(g), join);
    }
    if (g->P % W) output_vec(g, it, t, orow, rden, rI(g, (int64_t)nfull * W), false);
}

/* Scratch S (and its z column) from state_in / norm_in, or zeros. */
static void load_state(rgen *g, const ritem *it, LLVMValueRef S) {
    cg *c = &g->c;
    int W = g->W;
    int si = g->s_state_in;
    LLVMValueRef have = LLVMBuildIsNotNull(RB(g), it->data[si], "");
    cg_loop A;
    cg_loop_begin(c, &A, rI(g, 0), rI(g, g->Npad), rI(g, 1), 0, NULL);
    cg_loop E;
    cg_loop_begin(c, &E, rI(g, 0), rI(g, g->Pp), rI(g, W), 0, NULL);
    rg_ifv f;
    rg_ifv_begin(g, &f, LLVMBuildAnd(RB(g), have, rcmp(g, LLVMIntSLT, A.iv, rI(g, g->N)), ""));
    LLVMValueRef v = rg_load_row(g, it->data[si], true, rg_offset(g, it, si, it->b, it->h, A.iv, E.iv),
                                 rg_stride(g, it, si, 3), rsub(g, rI(g, g->P), E.iv));
    rg_ifv_else(g, &f, v);
    v = rg_ifv_end(g, &f, LLVMConstNull(c->t_vf));
    cg_vstore(c, v, rfp(g, S, radd(g, rmul(g, A.iv, rI(g, g->Pp)), E.iv)));
    cg_loop_end(c, &E, NULL);
    cg_loop_end(c, &A, NULL);
    if (!g->k->normalize) return;
    int ni = g->s_norm_in;
    LLVMValueRef zin = LLVMBuildIsNotNull(RB(g), it->data[ni], "");
    LLVMValueRef zp = cg_bitcast_ptr(c, it->data[ni], c->t_pf32);
    cg_loop Z;
    cg_loop_begin(c, &Z, rI(g, 0), rI(g, g->N), rI(g, 1), 0, NULL);
    rg_ifv f2;
    rg_ifv_begin(g, &f2, zin);
    LLVMValueRef z = rldf(g, rfp(g, zp, rg_offset(g, it, ni, it->b, it->h, Z.iv, NULL)));
    rg_ifv_else(g, &f2, z);
    z = rg_ifv_end(g, &f2, cg_f32(c, 0.0));
    rstf(g, z, rfp(g, S, radd(g, rmul(g, Z.iv, rI(g, g->Pp)), rI(g, g->P))));
    cg_loop_end(c, &Z, NULL);
}

/* state_out / norm_out from scratch S, when given. */
static void store_state(rgen *g, const ritem *it, LLVMValueRef S) {
    cg *c = &g->c;
    int W = g->W;
    int so = g->s_state_out;
    LLVMBasicBlockRef join = cg_if_begin(c, LLVMBuildIsNotNull(RB(g), it->data[so], ""));
    cg_loop A;
    cg_loop_begin(c, &A, rI(g, 0), rI(g, g->N), rI(g, 1), 0, NULL);
    cg_loop E;
    cg_loop_begin(c, &E, rI(g, 0), rI(g, rup(g->P, W)), rI(g, W), 0, NULL);
    LLVMValueRef v = cg_vload(c, rfp(g, S, radd(g, rmul(g, A.iv, rI(g, g->Pp)), E.iv)));
    rg_store_row(g, it->data[so], true, rg_offset(g, it, so, it->b, it->h, A.iv, E.iv), rg_stride(g, it, so, 3),
                 rsub(g, rI(g, g->P), E.iv), v);
    cg_loop_end(c, &E, NULL);
    cg_loop_end(c, &A, NULL);
    cg_if_end(c, join);
    if (!g->k->normalize) return;
    int no = g->s_norm_out;
    LLVMBasicBlockRef j2 = cg_if_begin(c, LLVMBuildIsNotNull(RB(g), it->data[no], ""));
    LLVMValueRef zp = cg_bitcast_ptr(c, it->data[no], c->t_pf32);
    cg_loop Z;
    cg_loop_begin(c, &Z, rI(g, 0), rI(g, g->N), rI(g, 1), 0, NULL);
    LLVMValueRef z = rldf(g, rfp(g, S, radd(g, rmul(g, Z.iv, rI(g, g->Pp)), rI(g, g->P))));
    rstf(g, z, rfp(g, zp, rg_offset(g, it, no, it->b, it->h, Z.iv, NULL)));
    cg_loop_end(c, &Z, NULL);
    cg_if_end(c, j2);
}

/* Item function types: (args*, i64* strides, i64 b, i64 h, float* X, ...extra). */
static LLVMValueRef item_function(rgen *g, const char *name, int n_extra, const LLVMTypeRef *extra) {
    cg *c = &g->c;
    LLVMTypeRef ps[16] = { g->t_pargs, g->t_pi64, c->t_i64, c->t_i64, c->t_pf32 };
    for (int i = 0; i < n_extra; i++) ps[5 + i] = extra[i];
    LLVMValueRef fn = cg_function(c, name, c->t_void, ps, 5 + n_extra, false);
    cg_fn_attr(c, fn, "noinline");
    return fn;
}

/* void stage(A, ST, b, h, X, c0, L): the part of a chunk shared by h's group. */
static LLVMValueRef emit_stage_fn(rgen *g) {
    LLVMTypeRef ex[2] = { g->c.t_i64, g->c.t_i64 };
    LLVMValueRef fn = item_function(g, "stage", 2, ex);
    begin_fn(g, fn);
    ritem it;
    prologue(g, &it);
    rg_chunk_stage(g, &it, param(g, 5), param(g, 6));
    LLVMBuildRetVoid(RB(g));
    return fn;
}

/* void head(A, ST, b, h, X, c0, L, S): a chunk of head h, state S. */
static LLVMValueRef emit_head_fn(rgen *g) {
    LLVMTypeRef ex[3] = { g->c.t_i64, g->c.t_i64, g->c.t_pf32 };
    LLVMValueRef fn = item_function(g, "head", 3, ex);
    begin_fn(g, fn);
    ritem it;
    prologue(g, &it);
    rg_chunk_head(g, &it, param(g, 5), param(g, 6), param(g, 7));
    LLVMBuildRetVoid(RB(g));
    return fn;
}

/* void scan(A, ST, b, h, X, t0, t1, srcS, srcRS, srcZ, srcZS, dstS, dstRS, dstZ, dstZS) */
static LLVMValueRef emit_scan_fn(rgen *g, bool literal) {
    cg *c = &g->c;
    LLVMTypeRef ex[10] = { c->t_i64, c->t_i64, c->t_pf32, c->t_i64, c->t_pf32, c->t_i64,
                           c->t_pf32, c->t_i64, c->t_pf32, c->t_i64 };
    LLVMValueRef fn = item_function(g, literal ? "scan_literal" : "scan", 10, ex);
    begin_fn(g, fn);
    ritem it;
    prologue(g, &it);
    if (g->lam_table) {
        /* A per-element decay constant over tokens (S4D): once per head, not per token. */
        cg_loop A;
        cg_loop_begin(c, &A, rI(g, 0), rI(g, g->N), rI(g, 1), 0, NULL);
        cg_loop E;
        cg_loop_begin(c, &E, rI(g, 0), rI(g, g->Pp), rI(g, g->W), 0, NULL);
        LLVMValueRef lam = rg_eval(g, &it, g->k->decay, NULL, A.iv, E.iv, IR_AXIS_V);
        cg_vstore(c, lam, rfp(g, rscr(g, &it, g->o_lam), radd(g, rmul(g, A.iv, rI(g, g->Pp)), E.iv)));
        cg_loop_end(c, &E, NULL);
        cg_loop_end(c, &A, NULL);
    }
    rg_state_ref src = { param(g, 7), param(g, 8), param(g, 9), param(g, 10) };
    rg_state_ref dst = { param(g, 11), param(g, 12), param(g, 13), param(g, 14) };
    rg_scan(g, &it, param(g, 5), param(g, 6), &src, &dst, literal);
    LLVMBuildRetVoid(RB(g));
    return fn;
}

static void call(rgen *g, LLVMValueRef fn, LLVMValueRef *args, int n) {
    LLVMBuildCall2(RB(g), LLVMGlobalGetValueType(fn), fn, args, (unsigned)n, "");
}

/* A pointer offset that may start from NULL (selected away then): no inbounds. */
static LLVMValueRef fptr_at(rgen *g, LLVMValueRef base_i8, LLVMValueRef off) {
    LLVMValueRef p = cg_bitcast_ptr(&g->c, base_i8, g->c.t_pf32);
    return LLVMBuildGEP2(RB(g), g->c.t_f32, p, &off, 1, "");
}

typedef struct item_fns {
    LLVMValueRef stage, head, scan, scan_literal;
} item_fns;

/* A loop over the item's heads [h0, h1): hh, and its state in scratch. */
typedef struct head_loop {
    cg_loop L;
    LLVMValueRef hh, S;
    ritem it;                       /* the item's values with h = hh */
} head_loop;

static void heads_begin(rgen *g, const ritem *it, LLVMValueRef h0, LLVMValueRef h1, head_loop *hl) {
    cg_loop_begin(&g->c, &hl->L, h0, h1, rI(g, 1), 0, NULL);
    hl->hh = hl->L.iv;
    hl->S = rfp(g, it->X, radd(g, rI(g, g->T), rmul(g, rsub(g, hl->hh, h0), rI(g, g->SF))));
    hl->it = *it;
    hl->it.h = hl->hh;
}

static void heads_end(rgen *g, head_loop *hl) { cg_loop_end(&g->c, &hl->L, NULL); }

static LLVMValueRef scratch_z(rgen *g, LLVMValueRef S) { return rfpc(g, S, g->P); }

/* The step form over [t0, seq) for every head, on the scratch states. */
static void scan_scratch(rgen *g, const ritem *it, LLVMValueRef h0, LLVMValueRef h1, LLVMValueRef scan_fn,
                         LLVMValueRef t0) {
    head_loop hl;
    heads_begin(g, it, h0, h1, &hl);
    LLVMValueRef pp = rI(g, g->Pp), Z = scratch_z(g, hl.S);
    LLVMValueRef sa[15] = { it->A, it->ST, it->b, hl.hh, it->X, t0, it->seq, hl.S, pp, Z, pp, hl.S, pp, Z, pp };
    call(g, scan_fn, sa, 15);
    heads_end(g, &hl);
}

/* Chunks [0, nch) with the states in scratch (heads inner: each chunk's q and k, and
 * for scalar decays its raw scores, are staged once per group), the step form for what
 * is left, then state_out. */
static void chunk_path(rgen *g, const ritem *it, LLVMValueRef h0, LLVMValueRef h1, LLVMValueRef nch, const item_fns *f) {
    cg *c = &g->c;
    LLVMValueRef seq = it->seq;
    head_loop hl;
    heads_begin(g, it, h0, h1, &hl);
    load_state(g, &hl.it, hl.S);
    heads_end(g, &hl);
    cg_loop CH;
    cg_loop_begin(c, &CH, rI(g, 0), nch, rI(g, 1), 0, NULL);
    LLVMValueRef c0 = rmul(g, CH.iv, rI(g, g->C));
    LLVMValueRef L = rmin(g, rI(g, g->C), rsub(g, seq, c0));
    heads_begin(g, it, h0, h1, &hl);
    LLVMValueRef first = LLVMBuildOr(RB(g), rcmp(g, LLVMIntEQ, hl.hh, h0),
                                     rcmp(g, LLVMIntEQ, LLVMBuildSRem(RB(g), hl.hh, rI(g, g->H / g->G), ""), rI(g, 0)), "");
    LLVMBasicBlockRef j = cg_if_begin(c, first);
    LLVMValueRef st[7] = { it->A, it->ST, it->b, hl.hh, it->X, c0, L };
    call(g, f->stage, st, 7);
    cg_if_end(c, j);
    LLVMValueRef ha[8] = { it->A, it->ST, it->b, hl.hh, it->X, c0, L, hl.S };
    call(g, f->head, ha, 8);
    heads_end(g, &hl);
    cg_loop_end(c, &CH, NULL);
    LLVMValueRef t0 = rmin(g, rmul(g, nch, rI(g, g->C)), seq);
    LLVMBasicBlockRef jt = cg_if_begin(c, rcmp(g, LLVMIntSLT, t0, seq));
    scan_scratch(g, it, h0, h1, f->scan, t0);
    cg_if_end(c, jt);
    heads_begin(g, it, h0, h1, &hl);
    store_state(g, &hl.it, hl.S);
    heads_end(g, &hl);
}

/* The step form alone, head by head: straight from state_in to state_out when their
 * rows are contiguous (decode), else through scratch (always for the literal form). */
static void step_path(rgen *g, const ritem *it, LLVMValueRef h0, LLVMValueRef h1, const item_fns *f,
                      LLVMValueRef literal) {
    cg *c = &g->c;
    const ir_kernel *k = g->k;
    int si = g->s_state_in, so = g->s_state_out;
    LLVMValueRef seq = it->seq, zero = rscr(g, it, g->o_zero);
    LLVMValueRef si_null = LLVMBuildIsNull(RB(g), it->data[si], ""), so_null = LLVMBuildIsNull(RB(g), it->data[so], "");
    LLVMValueRef in_ok = LLVMBuildOr(RB(g), si_null, rcmp(g, LLVMIntEQ, rg_stride(g, it, si, 3), rI(g, 1)), "");
    LLVMValueRef out_ok = LLVMBuildOr(RB(g), so_null, rcmp(g, LLVMIntEQ, rg_stride(g, it, so, 3), rI(g, 1)), "");
    LLVMValueRef direct = LLVMBuildAnd(RB(g), LLVMBuildAnd(RB(g), in_ok, out_ok, ""), rcmp(g, LLVMIntSGT, seq, rI(g, 0)), "");
    direct = LLVMBuildAnd(RB(g), direct, LLVMBuildNot(RB(g), literal, ""), "");
    LLVMBasicBlockRef b_direct = cg_block(c, "direct"), b_via = cg_block(c, "via_scratch"), b_done = cg_block(c, "step_done");
    LLVMBuildCondBr(RB(g), direct, b_direct, b_via);
    LLVMPositionBuilderAtEnd(RB(g), b_direct);
    {
        head_loop hl;
        heads_begin(g, it, h0, h1, &hl);
        LLVMValueRef hh = hl.hh, S = hl.S, Z = scratch_z(g, S);
        LLVMValueRef srcS = rsel(g, si_null, zero, fptr_at(g, it->data[si], rg_offset(g, it, si, it->b, hh, NULL, NULL)));
        LLVMValueRef srcRS = rsel(g, si_null, rI(g, 0), rg_stride(g, it, si, 2));
        LLVMValueRef dstS = rsel(g, so_null, S, fptr_at(g, it->data[so], rg_offset(g, it, so, it->b, hh, NULL, NULL)));
        LLVMValueRef dstRS = rsel(g, so_null, rI(g, g->Pp), rg_stride(g, it, so, 2));
        LLVMValueRef srcZ = zero, srcZS = rI(g, 0), dstZ = Z, dstZS = rI(g, g->Pp);
        if (k->normalize) {
            int ni = g->s_norm_in, no = g->s_norm_out;
            LLVMValueRef ni_null = LLVMBuildIsNull(RB(g), it->data[ni], ""), no_null = LLVMBuildIsNull(RB(g), it->data[no], "");
            srcZ = rsel(g, ni_null, zero, fptr_at(g, it->data[ni], rg_offset(g, it, ni, it->b, hh, NULL, NULL)));
            srcZS = rsel(g, ni_null, rI(g, 0), rg_stride(g, it, ni, 2));
            dstZ = rsel(g, no_null, Z, fptr_at(g, it->data[no], rg_offset(g, it, no, it->b, hh, NULL, NULL)));
            dstZS = rsel(g, no_null, rI(g, g->Pp), rg_stride(g, it, no, 2));
        }
        LLVMValueRef sa[15] = { it->A, it->ST, it->b, hh, it->X, rI(g, 0), seq,
                                srcS, srcRS, srcZ, srcZS, dstS, dstRS, dstZ, dstZS };
        call(g, f->scan, sa, 15);
        heads_end(g, &hl);
    }
    LLVMBuildBr(RB(g), b_done);
    LLVMPositionBuilderAtEnd(RB(g), b_via);
    {
        head_loop hl;
        heads_begin(g, it, h0, h1, &hl);
        load_state(g, &hl.it, hl.S);
        heads_end(g, &hl);
        LLVMBasicBlockRef bl = cg_block(c, "literal"), bn = cg_block(c, "vectorised"), bj = cg_block(c, "scanned");
        LLVMBuildCondBr(RB(g), literal, bl, bn);
        LLVMPositionBuilderAtEnd(RB(g), bl);
        scan_scratch(g, it, h0, h1, f->scan_literal, rI(g, 0));
        LLVMBuildBr(RB(g), bj);
        LLVMPositionBuilderAtEnd(RB(g), bn);
        scan_scratch(g, it, h0, h1, f->scan, rI(g, 0));
        LLVMBuildBr(RB(g), bj);
        LLVMPositionBuilderAtEnd(RB(g), bj);
        heads_begin(g, it, h0, h1, &hl);
        store_state(g, &hl.it, hl.S);
        heads_end(g, &hl);
    }
    LLVMBuildBr(RB(g), b_done);
    LLVMPositionBuilderAtEnd(RB(g), b_done);
}

/* void item(A, ST, b, h0, X, h1): heads [h0, h1) of batch row b. */
static LLVMValueRef emit_item_fn(rgen *g, const item_fns *f) {
    cg *c = &g->c;
    LLVMValueRef fn = item_function(g, "item", 1, &c->t_i64);
    begin_fn(g, fn);
    ritem it;
    prologue(g, &it);
    LLVMValueRef h0 = it.h, h1 = param(g, 5);
    rg_zero(g, rscr(g, &it, g->o_zero), rup(g->Pp > 2 * g->Npad ? g->Pp : 2 * g->Npad, g->W));
    LLVMValueRef seq = it.seq;
    LLVMValueRef form = LLVMBuildAnd(RB(g), afield(g, it.A, 4, c->t_i32), cg_i32(c, 3), "");
    LLVMValueRef nch = rI(g, 0);
    if (g->chunked) {
        LLVMValueRef nfull = rdiv(g, seq, rI(g, g->C));
        LLVMValueRef tail = rsub(g, seq, rmul(g, nfull, rI(g, g->C)));
        LLVMValueRef is_chunk = LLVMBuildICmp(RB(g), LLVMIntEQ, form, cg_i32(c, CPU_RECUR_CHUNK), "");
        LLVMValueRef is_auto = LLVMBuildICmp(RB(g), LLVMIntEQ, form, cg_i32(c, CPU_RECUR_AUTO), "");
        LLVMValueRef long_tail = rcmp(g, LLVMIntSGE, rmul(g, tail, rI(g, 2)), rI(g, g->C));
        LLVMValueRef pad = LLVMBuildAnd(RB(g), LLVMBuildOr(RB(g), is_chunk, LLVMBuildAnd(RB(g), is_auto, long_tail, ""), ""),
                                        rcmp(g, LLVMIntSGT, tail, rI(g, 0)), "");
        nch = radd(g, nfull, LLVMBuildZExt(RB(g), pad, c->t_i64, ""));
        LLVMValueRef is_scan = LLVMBuildICmp(RB(g), LLVMIntEQ, form, cg_i32(c, CPU_RECUR_SCAN), "");
        LLVMValueRef is_lit = LLVMBuildICmp(RB(g), LLVMIntEQ, form, cg_i32(c, CPU_RECUR_LITERAL), "");
        nch = rsel(g, LLVMBuildOr(RB(g), is_scan, is_lit, ""), rI(g, 0), nch);
    }
    LLVMBasicBlockRef b_chunks = cg_block(c, "chunks"), b_step = cg_block(c, "step"), b_done = cg_block(c, "done");
    LLVMBuildCondBr(RB(g), rcmp(g, LLVMIntSGT, nch, rI(g, 0)), b_chunks, b_step);
    LLVMPositionBuilderAtEnd(RB(g), b_chunks);
    if (g->chunked) {
        chunk_path(g, &it, h0, h1, nch, f);
        LLVMBuildBr(RB(g), b_done);
    } else {
        LLVMBuildUnreachable(RB(g));   /* nch is 0 without the chunkwise form */
    }
    LLVMPositionBuilderAtEnd(RB(g), b_step);
    step_path(g, &it, h0, h1, f, LLVMBuildICmp(RB(g), LLVMIntEQ, form, cg_i32(c, CPU_RECUR_LITERAL), ""));
    LLVMBuildBr(RB(g), b_done);
    LLVMPositionBuilderAtEnd(RB(g), b_done);
    LLVMBuildRetVoid(RB(g));
    return fn;
}

/* ---------------------------------------------------------------- exports */

static LLVMValueRef alloca_entry(rgen *g, LLVMTypeRef t, int n) {
    LLVMBasicBlockRef cur = LLVMGetInsertBlock(RB(g));
    LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(g->c.fn);
    LLVMValueRef first = LLVMGetFirstInstruction(entry);
    if (first) LLVMPositionBuilderBefore(RB(g), first);
    else LLVMPositionBuilderAtEnd(RB(g), entry);
    LLVMValueRef a = LLVMBuildArrayAlloca(RB(g), t, rI(g, n), "");
    LLVMSetAlignment(a, 16);
    LLVMPositionBuilderAtEnd(RB(g), cur);
    return a;
}

static void cold(rgen *g, LLVMValueRef fn) {
    cg_fn_attr(&g->c, fn, "noinline");
    cg_fn_attr(&g->c, fn, "optnone");
}

static LLVMValueRef n_threads(rgen *g, LLVMValueRef A) {
    return rmax(g, LLVMBuildSExt(RB(g), afield(g, A, 3, g->c.t_i32), g->c.t_i64, ""), rI(g, 1));
}

/* How heads are split into items: one item per batch row takes all heads (q and k
 * staged once per group, rows of neighbouring heads read together); with more threads
 * than rows, blocks of heads, one item per thread (smaller blocks would stage q and k
 * once per block: measured slower at 2 threads than the imbalance they avoid). */
typedef struct plan {
    LLVMValueRef nb, hpi;           /* head blocks per row, heads per block */
} plan;

static plan make_plan(rgen *g, LLVMValueRef A) {
    LLVMValueRef NT = n_threads(g, A), B = rmax(g, afield(g, A, 0, g->c.t_i64), rI(g, 1));
    LLVMValueRef want = rdiv(g, radd(g, NT, rsub(g, B, rI(g, 1))), B);
    LLVMValueRef nb = rsel(g, rcmp(g, LLVMIntSLE, NT, rI(g, 1)), rI(g, 1), rmin(g, want, rI(g, g->H)));
    nb = rmax(g, nb, rI(g, 1));
    LLVMValueRef hpi = rdiv(g, radd(g, rI(g, g->H), rsub(g, nb, rI(g, 1))), nb);
    plan p = { rdiv(g, radd(g, rI(g, g->H), rsub(g, hpi, rI(g, 1))), hpi), hpi };
    return p;
}

static LLVMValueRef n_items(rgen *g, LLVMValueRef A, const plan *p) {
    return rmul(g, rmax(g, afield(g, A, 0, g->c.t_i64), rI(g, 0)), p->nb);
}

/* Floats of one thread's scratch. */
static LLVMValueRef thread_floats(rgen *g, const plan *p) { return radd(g, rI(g, g->T), rmul(g, p->hpi, rI(g, g->SF))); }

static void emit_exports(rgen *g, LLVMValueRef f_item) {
    cg *c = &g->c;
    char name[300];
    cpu_symbol(g->k, "_workspace_size", name, sizeof name);
    LLVMValueRef fw = cg_function(c, name, c->t_i64, &g->t_pargs, 1, true);
    cold(g, fw);
    begin_fn(g, fw);
    {
        plan pl = make_plan(g, param(g, 0));
        LLVMBuildRet(RB(g), rmul(g, rmul(g, n_threads(g, param(g, 0)), thread_floats(g, &pl)), rI(g, 4)));
    }

    cpu_symbol(g->k, "_num_items", name, sizeof name);
    LLVMTypeRef pn[2] = { g->t_pargs, c->t_i32 };
    LLVMValueRef fni = cg_function(c, name, c->t_i64, pn, 2, true);
    cold(g, fni);
    begin_fn(g, fni);
    {
        plan pl = make_plan(g, param(g, 0));
        LLVMValueRef is1 = LLVMBuildICmp(RB(g), LLVMIntEQ, param(g, 1), cg_i32(c, 1), "");
        LLVMBuildRet(RB(g), rsel(g, is1, n_items(g, param(g, 0), &pl), rI(g, 0)));
    }

    cpu_symbol(g->k, "_run_items", name, sizeof name);
    LLVMTypeRef pr[5] = { g->t_pargs, c->t_i32, c->t_i64, c->t_i64, c->t_i32 };
    LLVMValueRef fr = cg_function(c, name, c->t_void, pr, 5, true);
    cold(g, fr);
    begin_fn(g, fr);
    {
        LLVMValueRef A = param(g, 0);
        LLVMBasicBlockRef run = cg_block(c, "run"), out = cg_block(c, "out");
        LLVMBuildCondBr(RB(g), LLVMBuildICmp(RB(g), LLVMIntEQ, param(g, 1), cg_i32(c, 1), ""), run, out);
        LLVMPositionBuilderAtEnd(RB(g), run);
        LLVMValueRef ST = alloca_entry(g, c->t_i64, g->abi.n_slots * 4);
        emit_strides(g, A, ST);
        plan pl = make_plan(g, A);
        LLVMValueRef thread = LLVMBuildSExt(RB(g), param(g, 4), c->t_i64, "");
        LLVMValueRef ws = cg_bitcast_ptr(c, afield(g, A, 6, c->t_pi8), c->t_pf32);
        LLVMValueRef X = rfp(g, ws, rmul(g, thread, thread_floats(g, &pl)));
        cg_loop L;
        cg_loop_begin(c, &L, param(g, 2), rmin(g, param(g, 3), n_items(g, A, &pl)), rI(g, 1), 0, NULL);
        LLVMValueRef b = rdiv(g, L.iv, pl.nb), hb = LLVMBuildSRem(RB(g), L.iv, pl.nb, "");
        LLVMValueRef h0 = rmul(g, hb, pl.hpi), h1 = rmin(g, radd(g, h0, pl.hpi), rI(g, g->H));
        LLVMValueRef args[6] = { A, ST, b, h0, X, h1 };
        call(g, f_item, args, 6);
        cg_loop_end(c, &L, NULL);
        LLVMBuildBr(RB(g), out);
        LLVMPositionBuilderAtEnd(RB(g), out);
        LLVMBuildRetVoid(RB(g));
    }

    /* int32_t attnc_NAME(args *): validates, allocates the workspace if none is given,
     * runs every item on the calling thread (thread 0). */
    LLVMTypeRef mt = LLVMFunctionType(c->t_pi8, &c->t_i64, 1, 0);
    LLVMValueRef f_malloc = LLVMAddFunction(c->mod, "malloc", mt);
    LLVMTypeRef ft = LLVMFunctionType(c->t_void, &c->t_pi8, 1, 0);
    LLVMValueRef f_free = LLVMAddFunction(c->mod, "free", ft);
    cpu_symbol(g->k, "", name, sizeof name);
    LLVMValueRef fd = cg_function(c, name, c->t_i32, &g->t_pargs, 1, true);
    cold(g, fd);
    begin_fn(g, fd);
    {
        LLVMValueRef A = param(g, 0);
        LLVMBasicBlockRef fail_null = cg_block(c, "null"), fail_size = cg_block(c, "size"), fail_ws = cg_block(c, "ws");
        LLVMValueRef any_null = LLVMConstInt(c->t_i1, 0, 0);
        for (int s = 0; s < g->abi.n_slots; s++)
            if (!g->abi.optional[s]) any_null = LLVMBuildOr(RB(g), any_null, LLVMBuildIsNull(RB(g), slot_data(g, A, s), ""), "");
        LLVMBasicBlockRef c2 = cg_block(c, "sizes");
        LLVMBuildCondBr(RB(g), any_null, fail_null, c2);
        LLVMPositionBuilderAtEnd(RB(g), c2);
        LLVMValueRef bad = LLVMConstInt(c->t_i1, 0, 0);
        for (int f = 0; f < 3; f++) bad = LLVMBuildOr(RB(g), bad, rcmp(g, LLVMIntSLT, afield(g, A, f, c->t_i64), rI(g, 0)), "");
        bad = LLVMBuildOr(RB(g), bad, rcmp(g, LLVMIntNE, afield(g, A, 1, c->t_i64), afield(g, A, 2, c->t_i64)), "");
        LLVMBasicBlockRef ok = cg_block(c, "ok");
        LLVMBuildCondBr(RB(g), bad, fail_size, ok);
        LLVMPositionBuilderAtEnd(RB(g), ok);
        plan pl = make_plan(g, A);
        LLVMValueRef need = rmul(g, rmul(g, n_threads(g, A), thread_floats(g, &pl)), rI(g, 4));
        LLVMValueRef wsf = LLVMBuildStructGEP2(RB(g), g->t_args, A, 6, "");
        LLVMValueRef wbf = LLVMBuildStructGEP2(RB(g), g->t_args, A, 7, "");
        LLVMValueRef given = cg_load(c, c->t_pi8, wsf, 8);
        LLVMBasicBlockRef own = cg_block(c, "alloc"), check = cg_block(c, "check"), run = cg_block(c, "run");
        LLVMBuildCondBr(RB(g), LLVMBuildIsNull(RB(g), given, ""), own, check);
        LLVMPositionBuilderAtEnd(RB(g), check);
        LLVMBuildCondBr(RB(g), rcmp(g, LLVMIntSLT, cg_load(c, c->t_i64, wbf, 8), need), fail_ws, run);
        LLVMPositionBuilderAtEnd(RB(g), own);
        LLVMValueRef mem = LLVMBuildCall2(RB(g), mt, f_malloc, (LLVMValueRef[]){ radd(g, need, rI(g, 64)) }, 1, "");
        LLVMBasicBlockRef own_ok = cg_block(c, "alloc_ok");
        LLVMBuildCondBr(RB(g), LLVMBuildIsNull(RB(g), mem, ""), fail_ws, own_ok);
        LLVMPositionBuilderAtEnd(RB(g), own_ok);
        LLVMValueRef mi = LLVMBuildPtrToInt(RB(g), mem, c->t_i64, "");
        LLVMValueRef aligned = LLVMBuildAnd(RB(g), radd(g, mi, rI(g, 63)), rI(g, ~(int64_t)63), "");
        cg_store(c, LLVMBuildIntToPtr(RB(g), aligned, c->t_pi8, ""), wsf, 8);
        cg_store(c, need, wbf, 8);
        LLVMBuildBr(RB(g), run);
        LLVMPositionBuilderAtEnd(RB(g), run);
        LLVMValueRef owned = LLVMBuildPhi(RB(g), c->t_pi8, "");
        LLVMValueRef ov[2] = { LLVMConstNull(c->t_pi8), mem };
        LLVMBasicBlockRef ob[2] = { check, own_ok };
        LLVMAddIncoming(owned, ov, ob, 2);
        LLVMValueRef a[5] = { A, cg_i32(c, 1), rI(g, 0), n_items(g, A, &pl), cg_i32(c, 0) };
        call(g, fr, a, 5);
        LLVMBasicBlockRef do_free = cg_block(c, "free"), done = cg_block(c, "done");
        LLVMBuildCondBr(RB(g), LLVMBuildIsNull(RB(g), owned, ""), done, do_free);
        LLVMPositionBuilderAtEnd(RB(g), do_free);
        cg_store(c, LLVMConstNull(c->t_pi8), wsf, 8);
        cg_store(c, rI(g, 0), wbf, 8);
        LLVMBuildCall2(RB(g), ft, f_free, &owned, 1, "");
        LLVMBuildBr(RB(g), done);
        LLVMPositionBuilderAtEnd(RB(g), done);
        LLVMBuildRet(RB(g), cg_i32(c, CPU_OK));
        LLVMPositionBuilderAtEnd(RB(g), fail_null);
        LLVMBuildRet(RB(g), cg_i32(c, CPU_ERR_NULL));
        LLVMPositionBuilderAtEnd(RB(g), fail_size);
        LLVMBuildRet(RB(g), cg_i32(c, CPU_ERR_SIZE));
        LLVMPositionBuilderAtEnd(RB(g), fail_ws);
        LLVMBuildRet(RB(g), cg_i32(c, CPU_ERR_WORKSPACE));
    }
}

/* ---------------------------------------------------------------- module */

LLVMModuleRef cpu_recur_emit(const ir_kernel *k, const cpu_target *t, LLVMContextRef ctx, char *err, size_t errlen) {
    const char *why = cpu_recur_unsupported(k, t);
    if (why) {
        snprintf(err, errlen, "kernel '%s': %s", k->name, why);
        return NULL;
    }
    char modname[256];
    cpu_symbol(k, "", modname, sizeof modname);
    LLVMModuleRef mod = LLVMModuleCreateWithNameInContext(modname, ctx);
    rgen gen;
    memset(&gen, 0, sizeof gen);
    rgen *g = &gen;
    arena_init(&g->ar);
    cpu_kernel_abi(k, &g->abi);
    g->s_state_in = g->s_norm_in = g->s_state_out = g->s_norm_out = -1;
    for (int i = 0; i < g->abi.n_slots; i++) {
        const char *s = g->abi.name[i];
        if (!strcmp(s, "state_in")) g->s_state_in = i;
        else if (!strcmp(s, "norm_in")) g->s_norm_in = i;
        else if (!strcmp(s, "state_out")) g->s_state_out = i;
        else if (!strcmp(s, "norm_out")) g->s_norm_out = i;
    }
    configure(g, k, t);
    cg_init(&g->c, ctx, mod, t, k);
    cg *c = &g->c;
    g->t_args = cg_args_type(c, modname, g->abi.n_slots, &g->t_slot);
    g->t_pargs = LLVMPointerType(g->t_args, 0);
    g->t_pi64 = LLVMPointerType(c->t_i64, 0);
    g->t_vd = LLVMVectorType(c->t_f64, (unsigned)g->W);

    /* Per-element decays have no chunkwise form: their items always take the step form. */
    item_fns f = { g->chunked ? emit_stage_fn(g) : NULL, g->chunked ? emit_head_fn(g) : NULL, emit_scan_fn(g, false),
                   emit_scan_fn(g, true) };
    emit_exports(g, emit_item_fn(g, &f));
    cg_dispose(c);
    arena_free(&g->ar);

    return cg_verified(mod, k, err, errlen);
}
