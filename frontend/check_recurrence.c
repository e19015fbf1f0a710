/* Recurrence kernels: heads and groups, state dims, and the body clauses. `update` and
 * `output` are fixed forms, matched structurally: only the value scale E of
 * `outer(k, E * v)` and the skip D of `q @ S + D * v` are free expressions. */
#include <stdio.h>
#include <string.h>
#include "frontend/check_internal.h"

static bool is_ident(const ast_node *n, const char *name) {
    return n && n->kind == AST_IDENT && n->name && strcmp(n->name, name) == 0;
}

void check_recurrence_heads(kcheck *kc, const ast_clause *cl) {
    for (int i = 0; cl->args && i < cl->n_args; i++) {
        const ast_node *a = cl->args[i];
        if (a && a->kind == AST_NAMED && a->name && (strcmp(a->name, "q") == 0 || strcmp(a->name, "kv") == 0)) {
            diag_error(kc->d, a->name_loc, "a recurrence has one head count: write 'heads 8' (q and k may share heads "
                       "through 'groups = G')");
            return;
        }
    }
    static const param ps[] = {{"the head count", true, true, false}, {"groups", false, false, true}};
    const ast_node *v[2];
    bool ok = bind_args(kc, "heads", cl->loc, "heads 8, groups = 1", cl->args, cl->n_args, ps, 2, v);
    int n = 0, g = 0;
    bool n_ok = v[0] && const_int(kc, v[0], "the number of heads", 1, 4096, &n);
    bool g_ok = true;
    if (v[1]) g_ok = const_int(kc, v[1], "the number of groups", 1, 4096, &g);
    else g = n;
    if (n_ok && g_ok && n % g != 0) {
        const ast_node *at = NULL;
        for (int i = 0; cl->args && i < cl->n_args; i++)
            if (cl->args[i] && cl->args[i]->kind == AST_NAMED && cl->args[i]->a == v[1]) at = cl->args[i];
        diag_error(kc->d, at ? at->loc : v[1]->loc, "groups (%d) must divide heads (%d); use a divisor of %d such as %d",
                   g, n, n, nearest_divisor(n, g));
        g_ok = false;
    }
    kc->k->heads_q = kc->k->heads_kv = n;
    kc->k->groups = g;
    kc->shape_ok = ok && n_ok && g_ok && kc->k->d_qk > 0;
}

void check_recurrence_dims(kcheck *kc, const ast_clause *cl) {
    static const param ps[] = {{"k", true, false, true}, {"v", true, false, true}};
    const ast_node *v[2];
    bool ok = bind_args(kc, "dims", cl->loc, "dims k = 128, v = 64", cl->args, cl->n_args, ps, 2, v);
    int dk = 0, dv = 0;
    ok = (v[0] && const_int(kc, v[0], "the k dim (state rows)", 1, 1024, &dk)) && ok;
    ok = (v[1] && const_int(kc, v[1], "the v dim (state columns)", 1, 1024, &dv)) && ok;
    kc->k->d_qk = dk;
    kc->k->d_v = dv;
    kc->shape_ok = ok && kc->k->heads_q > 0;
}

/* ---------------------------------------------------------------- products */

enum { MAX_FACTORS = 16 };

/* Flattens a * b * c into factors (left to right); a factor list that would overflow
 * keeps the rest as one factor. */
static int factors(const ast_node *n, const ast_node **out, int count) {
    if (n && n->kind == AST_BINARY && n->op == OP_MUL && n->a && n->b && count + 2 <= MAX_FACTORS) {
        count = factors(n->a, out, count);
        return factors(n->b, out, count);
    }
    if (count < MAX_FACTORS) out[count++] = n;
    return count;
}

/* Splits a product into the one `v` factor and the rest, lowered at w and multiplied.
 * *scale = NULL when v stands alone. Returns false after reporting. */
static bool value_term(kcheck *kc, const ast_node *n, expr_where w, const char *what, const char *form,
                       ir_expr **scale) {
    const ast_node *fs[MAX_FACTORS];
    int nf = factors(n, fs, 0), v_at = -1;
    *scale = NULL;
    for (int i = 0; i < nf; i++) {
        if (!is_ident(fs[i], "v")) continue;
        if (v_at >= 0) {
            diag_error(kc->d, fs[i]->loc, "'v' appears twice in %s; write it once, as '%s'", what, form);
            return false;
        }
        v_at = i;
    }
    if (v_at < 0) {
        diag_error(kc->d, n->loc, "%s must be 'v' times a scale, as in '%s'", what, form);
        return false;
    }
    bool ok = true;
    ir_expr *prod = NULL;
    for (int i = 0; i < nf; i++) {
        if (i == v_at) continue;
        ir_expr *e = lower_expr(kc, fs[i], w, what);
        if (!e) { ok = false; continue; }
        if (e->type == IR_T_BOOL) {
            char q[96];
            diag_error(kc->d, fs[i]->loc, "%s must be a number, but %s is a boolean", what,
                       quote_src(kc, fs[i]->loc, "this factor", q, sizeof q));
            ok = false;
            continue;
        }
        if (ok) {
            prod = prod ? ir_binary(kc->a, IR_MUL, prod, e) : e;
            prod->loc = fs[i]->loc;
        }
    }
    if (!ok) return false;
    if (prod) *scale = ir_unary(kc->a, IR_TO_FLOAT, prod);
    return true;
}

/* ---------------------------------------------------------------- body */

static void input_axes_used(const ir_kernel *k, const ir_expr *e, bool used[4]) {
    if (!e) return;
    if (e->op == IR_INPUT && e->input >= 0 && e->input < k->n_inputs) {
        const ir_input *in = &k->inputs[e->input];
        for (int i = 0; i < in->n_axes; i++) used[in->axes[i]] = true;
    }
    for (int i = 0; i < e->n_args && i < 4; i++) input_axes_used(k, e->args[i], used);
}

static void check_decay(kcheck *kc, const ast_clause *cl) {
    const ast_node *n = single_arg(kc, cl, "decay exp(dt * A)");
    if (!n) return;
    ir_expr *e = lower_expr(kc, n, EX_DECAY, "the decay");
    if (!e) return;
    if (e->type == IR_T_BOOL) {
        char q[96];
        diag_error(kc->d, n->loc, "the decay must be a number (a factor in (0, 1] per step), but %s is a boolean",
                   quote_src(kc, n->loc, "this expression", q, sizeof q));
        return;
    }
    ir_kernel *k = kc->k;
    k->decay = ir_unary(kc->a, IR_TO_FLOAT, e);
    bool used[4] = {false, false, false, false};
    input_axes_used(k, e, used);
    kc->decay_has_v = used[IR_AXIS_V];
    if (used[IR_AXIS_V]) k->decay_kind = IR_DECAY_STATE;
    else if (used[IR_AXIS_K]) k->decay_kind = IR_DECAY_KEY_VECTOR;
    else if (used[IR_AXIS_TOKEN]) k->decay_kind = IR_DECAY_TOKEN_HEAD;
    else k->decay_kind = IR_DECAY_HEAD;
}

static void check_feature(kcheck *kc, const ast_clause *cl) {
    const ast_node *n = single_arg(kc, cl, "feature elu(x) + 1");
    if (!n) return;
    ir_expr *e = lower_expr(kc, n, EX_FEATURE, "the feature map");
    if (!e) return;
    char q[96];
    if (e->type == IR_T_BOOL) {
        diag_error(kc->d, n->loc, "the feature map must be a number, but %s is a boolean",
                   quote_src(kc, n->loc, "this expression", q, sizeof q));
        return;
    }
    if (!ir_expr_uses_var(e, IR_VAR_X)) {
        diag_error(kc->d, n->loc, "the feature map %s does not use 'x'; it is applied to each element x of q and k, "
                   "e.g. 'feature elu(x) + 1'", quote_src(kc, n->loc, "", q, sizeof q));
        return;
    }
    kc->k->feature = ir_unary(kc->a, IR_TO_FLOAT, e);
}

static void check_normalize(kcheck *kc, const ast_clause *cl) {
    if (cl->n_args > 0 && cl->args && cl->args[0]) {
        diag_error(kc->d, cl->args[0]->loc, "normalize takes no arguments; write 'normalize' alone");
        return;
    }
    if (kc->decay_has_v) {
        diag_error(kc->d, cl->loc, "normalize cannot be used with a decay that has a v axis: the normaliser "
                   "z_t = decay * z_(t-1) + k_t is a vector over k, so the decay must not vary along v");
        return;
    }
    kc->k->normalize = true;
}

static bool is_outer(const ast_node *n) {
    return n && n->kind == AST_CALL && n->name && strcmp(n->name, "outer") == 0;
}

static void check_update(kcheck *kc, const ast_clause *cl) {
    bool has_decay = kc->clause[CL_DECAY] != NULL;
    const char *usage = has_decay ? "S = decay * S + outer(k, v)" : "S = S + outer(k, v)";
    const ast_node *n = single_arg(kc, cl, has_decay ? "update S = decay * S + outer(k, dt * v)"
                                                     : "update S = S + outer(k, v)");
    if (!n) return;
    if (n->kind != AST_NAMED || !n->name || strcmp(n->name, "S") != 0 || !n->a) {
        diag_error(kc->d, n->loc, "update assigns the state: write '%s' (with a value scale: 'outer(k, E * v)')", usage);
        return;
    }
    const ast_node *rhs = n->a;
    if (rhs->kind != AST_BINARY || rhs->op != OP_ADD || !rhs->a || !rhs->b) {
        diag_error(kc->d, rhs->loc, "the update is the decayed state plus a rank-1 write; write '%s'", usage);
        return;
    }
    const ast_node *state = rhs->a, *write = rhs->b;
    if (is_outer(state) && !is_outer(write)) { const ast_node *t = state; state = write; write = t; }
    bool ok = true;
    if (!is_outer(write)) {
        diag_error(kc->d, write->loc, "the write term of the update must be 'outer(k, v)' or 'outer(k, E * v)'");
        ok = false;
    }
    /* The state term: S, or decay * S in either order. */
    const ast_node *fs[MAX_FACTORS];
    int nf = factors(state, fs, 0);
    const ast_node *decay_ident = NULL;
    bool state_form = false;
    if (nf == 1 && is_ident(fs[0], "S")) state_form = true;
    else if (nf == 2 && ((is_ident(fs[0], "decay") && is_ident(fs[1], "S")) || (is_ident(fs[0], "S") && is_ident(fs[1], "decay")))) {
        state_form = true;
        decay_ident = is_ident(fs[0], "decay") ? fs[0] : fs[1];
    }
    if (!state_form) {
        diag_error(kc->d, state->loc, "the state term must be 'decay * S' or 'S'; write the decay itself in the 'decay' "
                   "clause");
        ok = false;
    } else if (decay_ident && !has_decay) {
        diag_error(kc->d, decay_ident->loc, "the update applies 'decay' but the kernel has no 'decay' clause; add one "
                   "(e.g. 'decay exp(dt * A)') or write 'S = S + outer(k, v)'");
        ok = false;
    } else if (!decay_ident && has_decay) {
        diag_error(kc->d, state->loc, "the kernel has a 'decay' clause but this update does not apply it; write "
                   "'S = decay * S + outer(...)'");
        ok = false;
    }
    if (!is_outer(write)) return;
    int n_items = write->items ? write->n_items : 0;
    if (n_items != 2) {
        diag_error(kc->d, write->loc, "outer takes 2 arguments, k and the value term, got %d; write 'outer(k, v)'", n_items);
        return;
    }
    if (!is_ident(write->items[0], "k")) {
        diag_error(kc->d, write->items[0]->loc, "the first argument of outer must be 'k' (the feature map, if any, is "
                   "applied to it implicitly)");
        ok = false;
    }
    ir_expr *scale = NULL;
    if (!value_term(kc, write->items[1], EX_VSCALE, "the value term of outer", "outer(k, dt * v)", &scale)) return;
    if (ok) kc->k->v_scale = scale;
}

static void check_output(kcheck *kc, const ast_clause *cl) {
    const ast_node *n = single_arg(kc, cl, "output q @ S + D * v");
    if (!n) return;
    const ast_node *main = n, *skip = NULL;
    if (n->kind == AST_BINARY && n->op == OP_ADD && n->a && n->b) {
        main = n->a;
        skip = n->b;
        if (skip->kind == AST_BINARY && skip->op == OP_MATMUL) { const ast_node *t = main; main = skip; skip = t; }
    }
    if (!(main->kind == AST_BINARY && main->op == OP_MATMUL && is_ident(main->a, "q") && is_ident(main->b, "S"))) {
        diag_error(kc->d, main->loc, "the output reads the state as 'q @ S'; write 'output q @ S' or "
                   "'output q @ S + D * v'");
        return;
    }
    if (!skip) return;
    ir_expr *d = NULL;
    if (!value_term(kc, skip, EX_SKIP, "the skip term", "D * v", &d)) return;
    kc->k->skip = d ? d : ir_const(kc->a, IR_T_FLOAT, 1.0);
}

static void check_chunk(kcheck *kc, const ast_clause *cl) {
    const ast_node *n = single_arg(kc, cl, "chunk 64");
    int c;
    if (!n || !const_int(kc, n, "the chunk length", 16, 1024, &c)) return;
    if (c % 16) {
        int lo = c / 16 * 16;
        diag_error(kc->d, n->loc, "the chunk length must be a multiple of 16, got %d; use %d or %d", c, lo, lo + 16);
        return;
    }
    kc->k->chunk = c;
}

void check_recurrence_body(kcheck *kc) {
    if (kc->clause[CL_DECAY]) check_decay(kc, kc->clause[CL_DECAY]);
    if (kc->clause[CL_FEATURE]) check_feature(kc, kc->clause[CL_FEATURE]);
    if (kc->clause[CL_NORMALIZE]) check_normalize(kc, kc->clause[CL_NORMALIZE]);
    if (kc->clause[CL_UPDATE]) check_update(kc, kc->clause[CL_UPDATE]);
    if (kc->clause[CL_OUTPUT]) check_output(kc, kc->clause[CL_OUTPUT]);
    if (kc->clause[CL_CHUNK]) check_chunk(kc, kc->clause[CL_CHUNK]);
}
