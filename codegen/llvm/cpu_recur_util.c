/* Helpers of the recurrence generator: tensor element access (any dtype, any strides,
 * partial rows), spec expressions at a (token, head, k, v) point through the backend's one
 * expression emitter, and small vector building blocks (transpose, horizontal sum). */
#include <math.h>
#include <string.h>
#include "codegen/llvm/cpu_recur_internal.h"

LLVMValueRef rg_stride(rgen *g, const ritem *it, int slot, int d) {
    LLVMValueRef p = cg_gep(&g->c, g->c.t_i64, it->ST, rI(g, slot * 4 + d));
    return cg_load(&g->c, g->c.t_i64, p, 8);
}

LLVMValueRef rg_offset(rgen *g, const ritem *it, int slot, LLVMValueRef i0, LLVMValueRef i1, LLVMValueRef i2,
                       LLVMValueRef i3) {
    LLVMValueRef idx[4] = { i0, i1, i2, i3 }, off = rI(g, 0);
    for (int d = 0; d < 4; d++)
        if (idx[d]) off = radd(g, off, rmul(g, idx[d], rg_stride(g, it, slot, d)));
    return off;
}

LLVMValueRef rg_lanes_below(rgen *g, LLVMValueRef n) {
    return LLVMBuildICmp(RB(g), LLVMIntSLT, cg_iota64(&g->c), cg_splat(&g->c, n), "");
}

static LLVMTypeRef vptr_type(rgen *g) { return LLVMPointerType(g->c.t_vf, 0); }

LLVMValueRef rg_mload(rgen *g, LLVMValueRef fptr, LLVMValueRef mask) {
    cg *c = &g->c;
    LLVMValueRef p = LLVMBuildBitCast(RB(g), fptr, vptr_type(g), "");
    LLVMTypeRef over[2] = { c->t_vf, vptr_type(g) };
    LLVMValueRef args[4] = { p, cg_i32(c, 4), mask, LLVMConstNull(c->t_vf) };
    return cg_call_intrinsic(c, "llvm.masked.load", over, 2, args, 4);
}

void rg_mstore(rgen *g, LLVMValueRef v, LLVMValueRef fptr, LLVMValueRef mask) {
    cg *c = &g->c;
    LLVMValueRef p = LLVMBuildBitCast(RB(g), fptr, vptr_type(g), "");
    LLVMTypeRef over[2] = { c->t_vf, vptr_type(g) };
    LLVMValueRef args[4] = { v, p, cg_i32(c, 4), mask };
    cg_call_intrinsic(c, "llvm.masked.store", over, 2, args, 4);
}

/* ---------------------------------------------------------------- dtype rows */

typedef enum { K_F32, K_BF16, K_F16 } elem_kind;

static elem_kind kind_of(rgen *g, bool f32_data) {
    if (f32_data) return K_F32;
    return g->k->dtype == IR_BF16 ? K_BF16 : g->k->dtype == IR_F16 ? K_F16 : K_F32;
}

static LLVMTypeRef elem_type(rgen *g, elem_kind k) {
    return k == K_F32 ? g->c.t_f32 : k == K_BF16 ? g->c.t_i16 : g->c.t_f16;
}

static LLVMValueRef widen(rgen *g, elem_kind k, LLVMValueRef v) {
    cg *c = &g->c;
    if (k == K_F32) return v;
    if (k == K_F16) return LLVMBuildFPExt(RB(g), v, c->t_vf, "");
    /* bf16: the bits are the high half of an f32, exactly. */
    LLVMValueRef w = LLVMBuildZExt(RB(g), v, c->t_vi32, "");
    w = LLVMBuildShl(RB(g), w, cg_splat(c, cg_i32(c, 16)), "");
    return LLVMBuildBitCast(RB(g), w, c->t_vf, "");
}

static LLVMValueRef narrow(rgen *g, elem_kind k, LLVMValueRef v) {
    cg *c = &g->c;
    if (k == K_F32) return v;
    LLVMTypeRef vh = LLVMVectorType(elem_type(g, k), (unsigned)g->W);
    if (k == K_F16) return LLVMBuildFPTrunc(RB(g), v, vh, "");
    /* Round to nearest even; NaN stays a quiet NaN. */
    LLVMValueRef bits = LLVMBuildBitCast(RB(g), v, c->t_vi32, "");
    LLVMValueRef sh = cg_splat(c, cg_i32(c, 16));
    LLVMValueRef lsb = LLVMBuildAnd(RB(g), LLVMBuildLShr(RB(g), bits, sh, ""), cg_splat(c, cg_i32(c, 1)), "");
    LLVMValueRef r = LLVMBuildAdd(RB(g), LLVMBuildAdd(RB(g), bits, cg_splat(c, cg_i32(c, 0x7fff)), ""), lsb, "");
    LLVMValueRef h = LLVMBuildTrunc(RB(g), LLVMBuildLShr(RB(g), r, sh, ""), vh, "");
    LLVMValueRef nan = LLVMBuildFCmp(RB(g), LLVMRealUNO, v, v, "");
    return LLVMBuildSelect(RB(g), nan, cg_splat(c, LLVMConstInt(c->t_i16, 0x7fc0, 0)), h, "");
}

/* Vector of element pointers base + off + lane * stride. */
static LLVMValueRef lane_ptrs(rgen *g, LLVMValueRef typed_base, LLVMTypeRef et, LLVMValueRef off, LLVMValueRef stride) {
    cg *c = &g->c;
    LLVMValueRef idx = LLVMBuildAdd(RB(g), cg_splat(c, off),
                                    LLVMBuildMul(RB(g), cg_iota64(c), cg_splat(c, stride), ""), "");
    return LLVMBuildGEP2(RB(g), et, typed_base, &idx, 1, "");
}

LLVMValueRef rg_load_contig(rgen *g, LLVMValueRef base_i8, bool f32_data, LLVMValueRef off) {
    elem_kind k = kind_of(g, f32_data);
    LLVMTypeRef et = elem_type(g, k), vt = LLVMVectorType(et, (unsigned)g->W);
    LLVMValueRef base = cg_bitcast_ptr(&g->c, base_i8, LLVMPointerType(et, 0));
    LLVMValueRef p = LLVMBuildBitCast(RB(g), LLVMBuildGEP2(RB(g), et, base, &off, 1, ""), LLVMPointerType(vt, 0), "");
    return widen(g, k, cg_load(&g->c, vt, p, k == K_F32 ? 4 : 2));
}

void rg_store_contig(rgen *g, LLVMValueRef base_i8, bool f32_data, LLVMValueRef off, LLVMValueRef v) {
    elem_kind k = kind_of(g, f32_data);
    LLVMTypeRef et = elem_type(g, k), vt = LLVMVectorType(et, (unsigned)g->W);
    LLVMValueRef base = cg_bitcast_ptr(&g->c, base_i8, LLVMPointerType(et, 0));
    LLVMValueRef p = LLVMBuildBitCast(RB(g), LLVMBuildGEP2(RB(g), et, base, &off, 1, ""), LLVMPointerType(vt, 0), "");
    cg_store(&g->c, narrow(g, k, v), p, k == K_F32 ? 4 : 2);
}

LLVMValueRef rg_load_row(rgen *g, LLVMValueRef base_i8, bool f32_data, LLVMValueRef off, LLVMValueRef stride,
                         LLVMValueRef nvalid) {
    cg *c = &g->c;
    elem_kind k = kind_of(g, f32_data);
    LLVMTypeRef et = elem_type(g, k), vt = LLVMVectorType(et, (unsigned)g->W);
    LLVMValueRef base = cg_bitcast_ptr(c, base_i8, LLVMPointerType(et, 0));
    unsigned align = k == K_F32 ? 4 : 2;
    LLVMValueRef fast = LLVMBuildAnd(RB(g), rcmp(g, LLVMIntEQ, stride, rI(g, 1)),
                                     rcmp(g, LLVMIntSGE, nvalid, rI(g, g->W)), "");
    rg_ifv f;
    rg_ifv_begin(g, &f, fast);
    LLVMValueRef p = LLVMBuildBitCast(RB(g), LLVMBuildGEP2(RB(g), et, base, &off, 1, ""), LLVMPointerType(vt, 0), "");
    rg_ifv_else(g, &f, widen(g, k, cg_load(c, vt, p, align)));
    LLVMValueRef ptrs = lane_ptrs(g, base, et, off, stride);
    LLVMTypeRef over[2] = { vt, LLVMTypeOf(ptrs) };
    LLVMValueRef args[4] = { ptrs, cg_i32(c, (int32_t)align), rg_lanes_below(g, nvalid), LLVMConstNull(vt) };
    LLVMValueRef slow = widen(g, k, cg_call_intrinsic(c, "llvm.masked.gather", over, 2, args, 4));
    return rg_ifv_end(g, &f, slow);
}

void rg_store_row(rgen *g, LLVMValueRef base_i8, bool f32_data, LLVMValueRef off, LLVMValueRef stride,
                  LLVMValueRef nvalid, LLVMValueRef v) {
    cg *c = &g->c;
    elem_kind k = kind_of(g, f32_data);
    LLVMTypeRef et = elem_type(g, k), vt = LLVMVectorType(et, (unsigned)g->W);
    LLVMValueRef base = cg_bitcast_ptr(c, base_i8, LLVMPointerType(et, 0));
    unsigned align = k == K_F32 ? 4 : 2;
    LLVMValueRef nv = narrow(g, k, v);
    LLVMValueRef fast = LLVMBuildAnd(RB(g), rcmp(g, LLVMIntEQ, stride, rI(g, 1)),
                                     rcmp(g, LLVMIntSGE, nvalid, rI(g, g->W)), "");
    LLVMBasicBlockRef bf = cg_block(c, "st_fast"), bs = cg_block(c, "st_slow"), join = cg_block(c, "st_join");
    LLVMBuildCondBr(RB(g), fast, bf, bs);
    LLVMPositionBuilderAtEnd(RB(g), bf);
    LLVMValueRef p = LLVMBuildBitCast(RB(g), LLVMBuildGEP2(RB(g), et, base, &off, 1, ""), LLVMPointerType(vt, 0), "");
    cg_store(c, nv, p, align);
    LLVMBuildBr(RB(g), join);
    LLVMPositionBuilderAtEnd(RB(g), bs);
    LLVMValueRef ptrs = lane_ptrs(g, base, et, off, stride);
    LLVMTypeRef over[2] = { vt, LLVMTypeOf(ptrs) };
    LLVMValueRef args[4] = { nv, ptrs, cg_i32(c, (int32_t)align), rg_lanes_below(g, nvalid) };
    cg_call_intrinsic(c, "llvm.masked.scatter", over, 2, args, 4);
    LLVMBuildBr(RB(g), join);
    LLVMPositionBuilderAtEnd(RB(g), join);
}

void rg_prefetch_row(rgen *g, LLVMValueRef base_i8, bool f32_data, LLVMValueRef off, int n_elems, bool write) {
    cg *c = &g->c;
    int es = kind_of(g, f32_data) == K_F32 ? 4 : 2;
    LLVMValueRef byte = rmul(g, off, rI(g, es));
    LLVMTypeRef over = c->t_pi8;
    for (int line = 0; line < (n_elems * es + 63) / 64; line++) {
        LLVMValueRef b = radd(g, byte, rI(g, (int64_t)line * 64));
        LLVMValueRef p = LLVMBuildGEP2(RB(g), c->t_i8, base_i8, &b, 1, "");
        LLVMValueRef args[4] = { p, cg_i32(c, write ? 1 : 0), cg_i32(c, 3), cg_i32(c, 1) };
        cg_call_intrinsic(c, "llvm.prefetch", &over, 1, args, 4);
    }
}

/* ---------------------------------------------------------------- if/else with a value */

void rg_ifv_begin(rgen *g, rg_ifv *f, LLVMValueRef cond) {
    LLVMBasicBlockRef then = cg_block(&g->c, "if_then");
    f->else_bb = cg_block(&g->c, "if_else");
    f->join = cg_block(&g->c, "if_join");
    LLVMBuildCondBr(RB(g), cond, then, f->else_bb);
    LLVMPositionBuilderAtEnd(RB(g), then);
}

void rg_ifv_else(rgen *g, rg_ifv *f, LLVMValueRef then_val) {
    f->then_val = then_val;
    f->then_end = LLVMGetInsertBlock(RB(g));
    LLVMBuildBr(RB(g), f->join);
    LLVMPositionBuilderAtEnd(RB(g), f->else_bb);
}

LLVMValueRef rg_ifv_end(rgen *g, rg_ifv *f, LLVMValueRef else_val) {
    LLVMBasicBlockRef else_end = LLVMGetInsertBlock(RB(g));
    LLVMBuildBr(RB(g), f->join);
    LLVMMoveBasicBlockAfter(f->join, else_end);
    LLVMPositionBuilderAtEnd(RB(g), f->join);
    LLVMValueRef phi = LLVMBuildPhi(RB(g), LLVMTypeOf(else_val), "");
    LLVMValueRef vals[2] = { f->then_val, else_val };
    LLVMBasicBlockRef bbs[2] = { f->then_end, else_end };
    LLVMAddIncoming(phi, vals, bbs, 2);
    return phi;
}

/* ---------------------------------------------------------------- expressions */

static bool has_axis(const ir_input *in, ir_axis a) {
    for (int i = 0; i < in->n_axes; i++)
        if (in->axes[i] == a) return true;
    return false;
}

static void inputs_used(const ir_expr *e, bool *used) {
    if (!e) return;
    if (e->op == IR_INPUT && e->input >= 0 && e->input < 16) used[e->input] = true;
    for (int i = 0; i < e->n_args; i++) inputs_used(e->args[i], used);
}

/* A copy of e in which the inputs with map[i] >= 0 are read as the variable map[i]. */
static ir_expr *rewrite(rgen *g, const ir_expr *e, const int *map) {
    if (e->op == IR_INPUT && e->input >= 0 && e->input < 16 && map[e->input] >= 0)
        return ir_var_ref(&g->ar, (ir_var)map[e->input]);
    ir_expr *n = arena_alloc(&g->ar, sizeof *n);
    *n = *e;
    for (int i = 0; i < e->n_args; i++) n->args[i] = rewrite(g, e->args[i], map);
    return n;
}

/* Element offset of input i at the point, the lanes axis at its start index. Returns the
 * element stride along the lanes axis in *lane_stride (0 when the input lacks it). */
static LLVMValueRef input_offset(rgen *g, const ritem *it, int i, LLVMValueRef t, LLVMValueRef kidx,
                                 LLVMValueRef vidx, int lanes, LLVMValueRef *lane_stride) {
    const ir_input *in = &g->k->inputs[i];
    int slot = g->abi.first_input + i, d = 0;
    LLVMValueRef off = rI(g, 0);
    *lane_stride = rI(g, 0);
    for (int a = 0; a < in->n_axes && d < 4; a++) {
        LLVMValueRef idx;
        switch (in->axes[a]) {
        case IR_AXIS_TOKEN:
            off = radd(g, off, rmul(g, it->b, rg_stride(g, it, slot, d++)));
            idx = t ? t : rI(g, 0);
            break;
        case IR_AXIS_HEAD: idx = it->h; break;
        case IR_AXIS_K: idx = kidx ? kidx : rI(g, 0); break;
        default: idx = vidx ? vidx : rI(g, 0); break;
        }
        if (d >= 4) break;
        LLVMValueRef st = rg_stride(g, it, slot, d++);
        if ((int)in->axes[a] == lanes) *lane_stride = st;
        off = radd(g, off, rmul(g, idx, st));
    }
    return off;
}

static LLVMValueRef eval_scalar(rgen *g, const ritem *it, const ir_expr *e, LLVMValueRef t, LLVMValueRef kidx,
                                LLVMValueRef vidx) {
    cg_env env;
    memset(&env, 0, sizeof env);
    env.var[IR_VAR_HEAD] = it->h;
    env.batch = it->b;
    env.seq_k = it->seq;
    bool used[16] = { false };
    inputs_used(e, used);
    for (int i = 0; i < g->k->n_inputs && i < 16; i++) {
        if (!used[i]) continue;
        LLVMValueRef ls;
        LLVMValueRef off = input_offset(g, it, i, t, kidx, vidx, -1, &ls);
        /* The emitter reads an index-free input at element 0 of its data pointer (f32 and
         * i32 elements are both 4 bytes). */
        LLVMValueRef byte = rmul(g, off, rI(g, 4));
        env.in_data[i] = LLVMBuildGEP2(RB(g), g->c.t_i8, it->data[g->abi.first_input + i], &byte, 1, "");
        for (int d = 0; d < 4; d++) env.in_stride[i][d] = rI(g, 0);
    }
    LLVMValueRef v = cg_expr(&g->c, e, &env);
    if (LLVMTypeOf(v) == g->c.t_i64) v = LLVMBuildSIToFP(RB(g), v, g->c.t_f32, "");
    else if (LLVMTypeOf(v) == g->c.t_i1) v = LLVMBuildUIToFP(RB(g), v, g->c.t_f32, "");
    return v;
}

LLVMValueRef rg_eval(rgen *g, const ritem *it, const ir_expr *e, LLVMValueRef t, LLVMValueRef kidx,
                     LLVMValueRef vidx, int lanes) {
    cg *c = &g->c;
    if (lanes < 0) return eval_scalar(g, it, e, t, kidx, vidx);
    bool used[16] = { false };
    inputs_used(e, used);
    int ext = lanes == IR_AXIS_K ? g->N : g->P;
    LLVMValueRef lane0 = lanes == IR_AXIS_K ? kidx : vidx;
    /* Inputs that vary across the lanes become vector variables (x and score are free
     * in these expressions); more than two, or integer ones, are evaluated lane by lane. */
    int map[16], n_vec = 0;
    bool lane_by_lane = false;
    for (int i = 0; i < 16; i++) map[i] = -1;
    for (int i = 0; i < g->k->n_inputs && i < 16; i++) {
        if (!used[i] || !has_axis(&g->k->inputs[i], (ir_axis)lanes)) continue;
        if (g->k->inputs[i].scalar == IR_S_I32 || n_vec == 2) lane_by_lane = true;
        else map[i] = n_vec++ == 0 ? IR_VAR_X : IR_VAR_SCORE;
    }
    LLVMValueRef r;
    if (lane_by_lane) {
        r = LLVMGetUndef(c->t_vf);
        for (int j = 0; j < g->W; j++) {
            LLVMValueRef idx = rmin(g, radd(g, lane0, rI(g, j)), rI(g, ext - 1));
            LLVMValueRef s = eval_scalar(g, it, e, t, lanes == IR_AXIS_K ? idx : kidx, lanes == IR_AXIS_V ? idx : vidx);
            r = LLVMBuildInsertElement(RB(g), r, s, cg_i32(c, j), "");
        }
        return r;
    }
    cg_env env;
    memset(&env, 0, sizeof env);
    env.var[IR_VAR_HEAD] = it->h;
    env.batch = it->b;
    env.seq_k = it->seq;
    /* Lanes past the axis read its last element (clamped), never out of bounds. */
    LLVMValueRef lim = rsub(g, rI(g, ext - 1), lane0);
    LLVMValueRef lane_idx = cg_smin(c, cg_iota64(c), cg_splat(c, lim));
    for (int i = 0; i < g->k->n_inputs && i < 16; i++) {
        if (!used[i]) continue;
        LLVMValueRef ls;
        LLVMValueRef off = input_offset(g, it, i, t, kidx, vidx, lanes, &ls);
        LLVMValueRef data = it->data[g->abi.first_input + i];
        if (map[i] >= 0) {
            /* A whole contiguous vector when it can be, else a gather of clamped lanes. */
            LLVMValueRef fast = LLVMBuildAnd(RB(g), rcmp(g, LLVMIntEQ, ls, rI(g, 1)),
                                             rcmp(g, LLVMIntSGE, lim, rI(g, g->W - 1)), "");
            rg_ifv f;
            rg_ifv_begin(g, &f, fast);
            rg_ifv_else(g, &f, rg_load_contig(g, data, true, off));
            LLVMValueRef base = cg_bitcast_ptr(c, data, c->t_pf32);
            LLVMValueRef idx = LLVMBuildAdd(RB(g), cg_splat(c, off), LLVMBuildMul(RB(g), lane_idx, cg_splat(c, ls), ""), "");
            LLVMValueRef ptrs = LLVMBuildGEP2(RB(g), c->t_f32, base, &idx, 1, "");
            LLVMTypeRef over[2] = { c->t_vf, LLVMTypeOf(ptrs) };
            LLVMValueRef ones[64];
            for (int j = 0; j < g->W; j++) ones[j] = cg_true(c);
            LLVMValueRef args[4] = { ptrs, cg_i32(c, 4), LLVMConstVector(ones, (unsigned)g->W), LLVMGetUndef(c->t_vf) };
            env.var[map[i]] = rg_ifv_end(g, &f, cg_call_intrinsic(c, "llvm.masked.gather", over, 2, args, 4));
        } else {
            LLVMValueRef byte = rmul(g, off, rI(g, 4));
            env.in_data[i] = LLVMBuildGEP2(RB(g), c->t_i8, data, &byte, 1, "");
            for (int d = 0; d < 4; d++) env.in_stride[i][d] = rI(g, 0);
        }
    }
    const ir_expr *ee = n_vec ? rewrite(g, e, map) : e;
    r = cg_expr(c, ee, &env);
    if (!cg_is_vec(r)) {
        if (LLVMTypeOf(r) == c->t_i64) r = LLVMBuildSIToFP(RB(g), r, c->t_f32, "");
        r = cg_splat(c, r);
    }
    return r;
}

LLVMValueRef rg_feature(rgen *g, LLVMValueRef x) {
    if (!g->k->feature) return x;
    cg_env env;
    memset(&env, 0, sizeof env);
    env.var[IR_VAR_X] = x;
    LLVMValueRef r = cg_expr(&g->c, g->k->feature, &env);
    return cg_is_vec(x) ? cg_splat(&g->c, r) : r;
}

LLVMValueRef rg_log2_decay(rgen *g, const ritem *it, LLVMValueRef t, LLVMValueRef kidx, int lanes) {
    cg *c = &g->c;
    LLVMValueRef x;
    if (g->k->log_decay) x = rg_eval(g, it, g->k->log_decay, t, kidx, NULL, lanes);
    else x = vm_log(c, rg_eval(g, it, g->k->decay, t, kidx, NULL, lanes));
    x = rfmul(g, x, cg_like(c, x, cg_f32(c, 1.4426950408889634)));
    /* NaN stays NaN (the comparison is false for it). */
    LLVMValueRef lo = cg_like(c, x, cg_f32(c, -150.0));
    return rsel(g, LLVMBuildFCmp(RB(g), LLVMRealOLT, x, lo, ""), lo, x);
}

LLVMValueRef rg_exp2(rgen *g, LLVMValueRef x) { return vm_exp2_softmax(&g->c, x); }

LLVMValueRef rg_exp2_wide(rgen *g, LLVMValueRef x) {
    cg *c = &g->c;
    bool vec = cg_is_vec(x);
    LLVMValueRef n = cg_call_unary(c, "llvm.nearbyint", x);
    LLVMValueRef r = LLVMBuildFPTrunc(RB(g), rfsub(g, x, n), vec ? c->t_vf : c->t_f32, "");
    LLVMValueRef ni = LLVMBuildFPToSI(RB(g), n, vec ? c->t_vi32 : c->t_i32, "");
    LLVMValueRef bits = LLVMBuildShl(RB(g), LLVMBuildAdd(RB(g), ni, cg_like(c, ni, cg_i32(c, 127)), ""),
                                     cg_like(c, ni, cg_i32(c, 23)), "");
    return rfmul(g, rg_exp2(g, r), LLVMBuildBitCast(RB(g), bits, vec ? c->t_vf : c->t_f32, ""));
}

LLVMValueRef rg_hsum(rgen *g, LLVMValueRef v) {
    cg *c = &g->c;
    for (int w = g->W / 2; w >= 1; w /= 2) {
        LLVMValueRef m[64];
        for (int i = 0; i < g->W; i++) m[i] = cg_i32(c, i < w ? i + w : i);
        LLVMValueRef hi = LLVMBuildShuffleVector(RB(g), v, LLVMGetUndef(c->t_vf), LLVMConstVector(m, (unsigned)g->W), "");
        v = rfadd(g, v, hi);
    }
    return LLVMBuildExtractElement(RB(g), v, cg_i32(c, 0), "");
}

void rg_zero(rgen *g, LLVMValueRef p, int64_t n) {
    cg_loop L;
    cg_loop_begin(&g->c, &L, rI(g, 0), rI(g, n), rI(g, g->W), 0, NULL);
    cg_vstore(&g->c, LLVMConstNull(g->c.t_vf), rfp(g, p, L.iv));
    cg_loop_end(&g->c, &L, NULL);
}
