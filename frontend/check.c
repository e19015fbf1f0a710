/* The checker: gives the generic AST its meaning. Per kernel: the family, the clause set
 * (unknown, repeated, wrong-family clauses), then each clause in a fixed order (shape
 * first, so later clauses can check against heads and dims), lowering what is valid into
 * an ir_kernel. A kernel with any error is left out of the module; every error of the
 * file is reported in one run. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "frontend/check_internal.h"

static const struct { const char *name; clause_id id; int family; } clause_table[] = {
    {"heads", CL_HEADS, FAM_BOTH}, {"dims", CL_DIMS, FAM_BOTH}, {"dtype", CL_DTYPE, FAM_BOTH},
    {"phase", CL_PHASE, FAM_BOTH}, {"inputs", CL_INPUTS, FAM_BOTH},
    {"scale", CL_SCALE, FAM_SOFTMAX}, {"latent", CL_LATENT, FAM_SOFTMAX}, {"rope", CL_ROPE, FAM_SOFTMAX},
    {"score", CL_SCORE, FAM_SOFTMAX}, {"mask", CL_MASK, FAM_SOFTMAX},
    {"decay", CL_DECAY, FAM_RECURRENCE}, {"feature", CL_FEATURE, FAM_RECURRENCE},
    {"normalize", CL_NORMALIZE, FAM_RECURRENCE}, {"update", CL_UPDATE, FAM_RECURRENCE},
    {"output", CL_OUTPUT, FAM_RECURRENCE}, {"chunk", CL_CHUNK, FAM_RECURRENCE},
};
enum { N_CLAUSES = sizeof clause_table / sizeof clause_table[0] };

/* Names people bring from other tools, mapped to ours (did-you-mean cannot guess these). */
typedef struct alias { const char *from, *to; } alias;

static const char *lookup_alias(const alias *t, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(t[i].from, name) == 0) return t[i].to;
    return NULL;
}

/* did-you-mean over `words`, then over the alias table. */
static const char *suggest(const char *name, const char *const *words, int n, const alias *t, int nt) {
    const char *a = lookup_alias(t, nt, name);
    return a ? a : closest_name(name, words, n);
}

int nearest_divisor(int n, int m) {
    int best = 1;
    for (int d = 1; d <= n; d++)
        if (n % d == 0 && abs(d - m) < abs(best - m)) best = d;
    return best;
}

const ast_node *single_arg(kcheck *kc, const ast_clause *cl, const char *usage) {
    if (cl->n_args < 1 || !cl->args || !cl->args[0]) {
        diag_error(kc->d, cl->loc, "'%s' needs an argument; write e.g. '%s'", cl->keyword, usage);
        return NULL;
    }
    if (cl->n_args > 1 && cl->args[1]) {
        bool cond = strcmp(cl->keyword, "mask") == 0;
        diag_error(kc->d, cl->args[1]->loc, "'%s' takes one argument, got %d; %s", cl->keyword, cl->n_args,
                   cond ? "combine conditions with '&&'" : "remove the extra ones");
    }
    return cl->args[0];
}

/* The `name = value` argument node itself (for carets spanning the whole argument). */
static const ast_node *named_arg(const ast_clause *cl, const char *name) {
    if (!cl->args) return NULL;
    for (int i = 0; i < cl->n_args; i++)
        if (cl->args[i] && cl->args[i]->kind == AST_NAMED && cl->args[i]->name && strcmp(cl->args[i]->name, name) == 0)
            return cl->args[i];
    return NULL;
}

/* ---------------------------------------------------------------- shape */

static bool check_softmax_heads(kcheck *kc, const ast_clause *cl) {
    static const param ps[] = {{"q", true, false, true}, {"kv", false, false, true}};
    const ast_node *v[2];
    bool ok = bind_args(kc, "heads", cl->loc, "heads q = 32, kv = 8", cl->args, cl->n_args, ps, 2, v);
    int q = 0, kv = 0;
    bool q_ok = v[0] && const_int(kc, v[0], "the number of q heads", 1, 4096, &q);
    bool kv_ok;
    if (!v[1] || (v[1]->kind == AST_IDENT && v[1]->name && strcmp(v[1]->name, "q") == 0)) {
        kv = q;          /* `kv = q` (or no kv) is multi-head attention */
        kv_ok = q_ok;
    } else {
        kv_ok = const_int(kc, v[1], "the number of kv heads", 1, 4096, &kv);
    }
    if (q_ok && kv_ok && q % kv != 0) {
        const ast_node *at = named_arg(cl, "kv");
        diag_error(kc->d, at ? at->loc : v[1]->loc, "kv heads (%d) must divide q heads (%d); use a divisor of %d such as %d",
                   kv, q, q, nearest_divisor(q, kv));
        kv_ok = false;
    }
    kc->k->heads_q = q;
    kc->k->heads_kv = kv;
    kc->k->groups = kv;
    return ok && q_ok && kv_ok;
}

typedef struct dims_result { int qk, v; const ast_node *qk_node, *v_node; } dims_result;

static bool check_softmax_dims(kcheck *kc, const ast_clause *cl, dims_result *r) {
    static const param ps[] = {{"qk", true, true, true}, {"v", false, false, true}};
    const ast_node *v[2];
    bool ok = bind_args(kc, "dims", cl->loc, "dims qk = 128, v = 128", cl->args, cl->n_args, ps, 2, v);
    r->qk_node = v[0];
    r->v_node = v[1];
    bool qk_ok = v[0] && const_int(kc, v[0], "the qk head dim", 1, 1024, &r->qk);
    bool v_ok = true;
    if (v[1]) v_ok = const_int(kc, v[1], "the v head dim", 1, 1024, &r->v);
    else r->v = r->qk;
    return ok && qk_ok && v_ok;
}

static bool check_latent(kcheck *kc, const ast_clause *cl, int *rank, int *rope) {
    static const param ps[] = {{"rank", true, false, true}, {"rope", true, false, true}};
    const ast_node *v[2];
    bool ok = bind_args(kc, "latent", cl->loc, "latent rank = 512, rope = 64", cl->args, cl->n_args, ps, 2, v);
    bool r_ok = v[0] && const_int(kc, v[0], "the latent rank", 1, 1024, rank);
    bool p_ok = v[1] && const_int(kc, v[1], "the latent rope part", 1, 1024, rope);
    if (p_ok && *rope % 2) {
        diag_error(kc->d, v[1]->loc, "the latent rope part has %d dims, an odd number; RoPE rotates pairs, so use %d or %d",
                   *rope, *rope - 1, *rope + 1);
        p_ok = false;
    }
    if (r_ok && p_ok && *rank + *rope > 1024) {
        diag_error(kc->d, cl->loc, "latent rank + rope = %d exceeds the largest head dim, 1024", *rank + *rope);
        r_ok = false;
    }
    return ok && r_ok && p_ok;
}

static void check_softmax_shape(kcheck *kc, bool lenient) {
    ir_kernel *k = kc->k;
    const ast_clause *heads = kc->clause[CL_HEADS], *dims = kc->clause[CL_DIMS], *latent = kc->clause[CL_LATENT];
    bool heads_ok = false, dims_ok = false;
    if (heads) heads_ok = check_softmax_heads(kc, heads);
    else if (lenient) kc->incomplete = true;
    else
        diag_error(kc->d, kc->ast->name_loc, "kernel '%s' has no 'heads' clause; add e.g. 'heads q = 32, kv = 8'",
                   kc->ast->name);
    dims_result dr = {0, 0, NULL, NULL};
    bool have_dims = dims && check_softmax_dims(kc, dims, &dr);
    if (latent) {
        int R = 0, P = 0;
        bool lat_ok = check_latent(kc, latent, &R, &P);
        if (lat_ok && have_dims) {
            char b[32];
            if (R > dr.qk) {
                if (dr.qk > P)
                    diag_error(kc->d, dr.qk_node->loc,
                               "the latent rank (%d) is larger than the qk head dim (%d); K rows are [latent ; rope part], "
                               "so qk = rank + rope: use rank = %d, or drop 'dims' (latent implies qk = %d)",
                               R, dr.qk, dr.qk - P, R + P);
                else
                    diag_error(kc->d, dr.qk_node->loc,
                               "the latent rank (%d) is larger than the qk head dim (%d); K rows are [latent ; rope part], "
                               "so qk = rank + rope: drop 'dims' (latent implies qk = %d)", R, dr.qk, R + P);
                lat_ok = false;
            } else if (R + P != dr.qk) {
                diag_error(kc->d, dr.qk_node->loc,
                           "qk = %d disagrees with latent rank + rope = %d + %d = %d; drop 'dims' (latent implies it) or "
                           "make them agree", dr.qk, R, P, R + P);
                lat_ok = false;
            }
            if (dr.v_node && dr.v != R) {
                diag_error(kc->d, dr.v_node->loc,
                           "v = %d disagrees with the latent rank %d (V is the first rank dims of K); write v = %s or "
                           "drop 'dims'", dr.v, R, fmt_num(R, b, sizeof b));
                lat_ok = false;
            }
        }
        if (!kc->clause[CL_SCALE])
            diag_error(kc->d, latent->loc,
                       "a kernel with 'latent' needs an explicit 'scale': MLA's softmax scale is 1/sqrt(qk_nope + qk_rope) "
                       "of the model before absorption, e.g. 'scale 1 / sqrt(128 + %d)' for DeepSeek-V2, not 1/sqrt(%d)",
                       P, R + P);
        k->latent_rank = R;
        k->latent_rope = P;
        k->d_qk = R + P;
        k->d_v = R;
        k->v_in_k = true;
        dims_ok = lat_ok && (!dims || have_dims);
    } else if (dims) {
        k->d_qk = dr.qk;
        k->d_v = dr.v;
        dims_ok = have_dims;
    } else if (lenient) {
        kc->incomplete = true;
    } else {
        diag_error(kc->d, kc->ast->name_loc,
                   "kernel '%s' has no 'dims' clause; add the head dims, e.g. 'dims qk = 128, v = 128' "
                   "(or 'latent rank = 512, rope = 64' for MLA)", kc->ast->name);
    }
    kc->dims_ok = dims_ok;
    kc->shape_ok = heads_ok && dims_ok;
}

/* ---------------------------------------------------------------- simple clauses */

static void check_dtype(kcheck *kc, const ast_clause *cl) {
    static const char *const names[] = {"f32", "bf16", "f16"};
    static const ir_dtype types[] = {IR_F32, IR_BF16, IR_F16};
    static const alias aliases[] = {
        {"float32", "f32"}, {"fp32", "f32"}, {"float", "f32"}, {"bfloat16", "bf16"}, {"float16", "f16"},
        {"fp16", "f16"}, {"half", "f16"},
    };
    const ast_node *n = single_arg(kc, cl, "dtype bf16");
    if (!n) return;
    if (n->kind != AST_IDENT || !n->name) {
        diag_error(kc->d, n->loc, "dtype is a type name: f32, bf16 or f16");
        return;
    }
    for (int i = 0; i < 3; i++)
        if (strcmp(n->name, names[i]) == 0) { kc->k->dtype = types[i]; return; }
    const char *s = suggest(n->name, names, 3, aliases, sizeof aliases / sizeof aliases[0]);
    if (s) diag_error(kc->d, n->loc, "unknown dtype '%s'; did you mean '%s'?", n->name, s);
    else diag_error(kc->d, n->loc, "unknown dtype '%s'; use f32, bf16 or f16", n->name);
}

static void check_phase(kcheck *kc, const ast_clause *cl) {
    static const char *const names[] = {"prefill", "decode"};
    static const alias aliases[] = {{"decoding", "decode"}, {"generate", "decode"}, {"prompt", "prefill"}};
    const ast_node *n = single_arg(kc, cl, "phase decode");
    if (!n) return;
    if (n->kind != AST_IDENT || !n->name) {
        diag_error(kc->d, n->loc, "phase is 'prefill' or 'decode'");
        return;
    }
    if (strcmp(n->name, "prefill") == 0) { kc->k->phase = IR_PREFILL; return; }
    if (strcmp(n->name, "decode") == 0) { kc->k->phase = IR_DECODE; return; }
    const char *s = suggest(n->name, names, 2, aliases, sizeof aliases / sizeof aliases[0]);
    if (s) diag_error(kc->d, n->loc, "unknown phase '%s'; did you mean '%s'?", n->name, s);
    else diag_error(kc->d, n->loc, "unknown phase '%s'; use 'prefill' or 'decode'", n->name);
}

static void check_scale(kcheck *kc, const ast_clause *cl) {
    const ast_node *n = single_arg(kc, cl, "scale 1 / sqrt(128)");
    double v;
    if (!n || !const_real(kc, n, "the scale", &v)) return;
    if (v <= 0) {
        char b[32];
        diag_error(kc->d, n->loc, "the scale must be positive, got %s; e.g. 'scale 1 / sqrt(128)'", fmt_num(v, b, sizeof b));
        return;
    }
    kc->k->scale = ir_const(kc->a, IR_T_FLOAT, v);
    kc->k->scale->loc = n->loc;
    kc->k->scale_value = v;
}

static void check_score(kcheck *kc, const ast_clause *cl) {
    const ast_node *n = single_arg(kc, cl, "score 50 * tanh(score / 50)");
    if (!n) return;
    ir_expr *e = lower_expr(kc, n, EX_SCORE, "the score");
    if (!e) return;
    if (e->type == IR_T_BOOL) {
        char q[96];
        diag_error(kc->d, n->loc,
                   "%s is a boolean; a score must be a number: put conditions in 'mask', or choose a value with "
                   "'select(c, a, b)'", quote_src(kc, n->loc, "this expression", q, sizeof q));
        return;
    }
    kc->k->score_mod = ir_unary(kc->a, IR_TO_FLOAT, e);
}

static void check_mask(kcheck *kc, const ast_clause *cl) {
    const ast_node *n = single_arg(kc, cl, "mask causal");
    if (!n) return;
    ir_expr *e = lower_expr(kc, n, EX_MASK, "the mask");
    if (!e) return;
    if (e->type != IR_T_BOOL) {
        char q[96], raw[96];
        const char *quoted = quote_src(kc, n->loc, "this expression", q, sizeof q);
        if (quoted == q) {
            snprintf(raw, sizeof raw, "%.*s", (int)strlen(q) - 2, q + 1);
            diag_error(kc->d, n->loc, "a mask must be a boolean, but %s is %s; compare it, e.g. '%s > 0'", quoted,
                       type_phrase(e->type), raw);
        } else {
            diag_error(kc->d, n->loc, "a mask must be a boolean, but %s is %s; use a comparison such as "
                       "'q_idx - kv_idx < 4096'", quoted, type_phrase(e->type));
        }
        return;
    }
    kc->k->mask = e;
}

/* ---------------------------------------------------------------- inputs */

static void poison(kcheck *kc, const char *name) {
    if (name && !is_reserved_name(name) && kc->n_poisoned < 16) kc->poisoned[kc->n_poisoned++] = name;
}

static void check_input_decl(kcheck *kc, const ast_node *arg, int cap) {
    static const char *const axis_names[] = {"token", "head", "k", "v"};
    ir_kernel *k = kc->k;
    const ast_node *decl = arg;
    const char *type_name = NULL;
    src_loc type_loc = arg->loc;
    if (decl->kind == AST_TYPED) {
        type_name = decl->name ? decl->name : "";
        type_loc = decl->name_loc;
        decl = decl->a;
        if (!decl) return;
    }
    if (decl->kind == AST_IDENT && decl->name) {
        diag_error(kc->d, decl->loc, "input '%s' needs its axes in brackets, e.g. '%s[token]' or '%s[head]'", decl->name,
                   decl->name, decl->name);
        poison(kc, decl->name);
        return;
    }
    if (decl->kind != AST_INDEX || !decl->name) {
        diag_error(kc->d, decl->loc, "expected an input declaration such as 'doc[token]: i32' or 'bias[head]'");
        return;
    }
    const char *name = decl->name;
    bool ok = true;
    if (is_reserved_name(name)) {
        if (strcmp(name, "positions") == 0)
            diag_error(kc->d, decl->name_loc,
                       "'positions' is reserved for RoPE position ids; request them with 'rope ..., positions' and name "
                       "this input differently");
        else
            diag_error(kc->d, decl->name_loc, "'%s' is a reserved name (a tensor, index variable or built-in); give the "
                       "input another name", name);
        return;
    }
    for (int i = 0; i < k->n_inputs; i++)
        if (strcmp(k->inputs[i].name, name) == 0) {
            diag_error(kc->d, decl->name_loc, "input '%s' is declared twice; declare it once", name);
            diag_note(kc->d, k->inputs[i].loc, "'%s' is first declared here", name);
            return;
        }
    ir_input in = {.name = name, .loc = decl->name_loc, .scalar = IR_S_F32};
    int n_items = decl->items ? decl->n_items : 0;
    if (n_items == 0) {
        diag_error(kc->d, decl->loc, "input '%s' needs at least one axis, e.g. '%s[token]'", name, name);
        ok = false;
    } else if (n_items > 4) {
        diag_error(kc->d, decl->loc, "input '%s' has %d axes; at most 4 (token, head%s)", name, n_items,
                   kc->family == FAM_RECURRENCE ? ", k, v" : "");
        ok = false;
    }
    int n_axis_names = kc->family == FAM_RECURRENCE ? 4 : 2;
    for (int i = 0; ok && i < n_items; i++) {
        const ast_node *it = decl->items[i];
        if (!it) { ok = false; break; }
        if (it->kind != AST_IDENT || !it->name) {
            diag_error(kc->d, it->loc, "an axis is a name: %s", n_axis_names == 4 ? "token, head, k or v" : "token or head");
            ok = false;
            continue;
        }
        int ax = -1;
        for (int j = 0; j < 4; j++)
            if (strcmp(it->name, axis_names[j]) == 0) ax = j;
        if (ax >= n_axis_names) {
            diag_error(kc->d, it->loc, "axis '%s' exists only in recurrence kernels (one entry per %s dim); a softmax "
                       "input has 'token' and 'head' axes", it->name, ax == IR_AXIS_K ? "key" : "value");
            ok = false;
            continue;
        }
        if (ax < 0) {
            const char *close = closest_name(it->name, axis_names, n_axis_names);
            if (close) diag_error(kc->d, it->loc, "unknown axis '%s'; did you mean '%s'?", it->name, close);
            else diag_error(kc->d, it->loc, "unknown axis '%s'; the axes are %s", it->name,
                            n_axis_names == 4 ? "token, head, k and v" : "token and head");
            ok = false;
            continue;
        }
        for (int j = 0; j < in.n_axes; j++)
            if ((int)in.axes[j] == ax) {
                diag_error(kc->d, it->loc, "axis '%s' appears twice in '%s'; each axis at most once", it->name, name);
                ok = false;
            }
        if (in.n_axes < 4) in.axes[in.n_axes++] = (ir_axis)ax;
    }
    if (type_name) {
        static const char *const types[] = {"i32", "f32"};
        static const alias aliases[] = {{"int", "i32"}, {"int32", "i32"}, {"float", "f32"}, {"float32", "f32"}};
        if (strcmp(type_name, "i32") == 0) in.scalar = IR_S_I32;
        else if (strcmp(type_name, "f32") != 0) {
            const char *s = suggest(type_name, types, 2, aliases, sizeof aliases / sizeof aliases[0]);
            if (s) diag_error(kc->d, type_loc, "unknown input type '%s'; did you mean '%s'?", type_name, s);
            else diag_error(kc->d, type_loc, "unknown input type '%s'; an input is i32 or f32 (the default)", type_name);
            ok = false;
        }
    }
    if (ok && k->n_inputs >= 16) {
        diag_error(kc->d, decl->loc, "too many inputs: at most 16 per kernel");
        ok = false;
    }
    if (!ok || k->n_inputs >= cap) {
        poison(kc, name);
        return;
    }
    k->inputs[k->n_inputs++] = in;
}

static void check_inputs(kcheck *kc, const ast_clause *const *cls, int n_cls) {
    int cap = 0;
    for (int i = 0; i < n_cls; i++) {
        if (cls[i]->n_args <= 0 || !cls[i]->args)
            diag_error(kc->d, cls[i]->loc, "'inputs' needs declarations, e.g. 'inputs doc[token]: i32, bias[head]'");
        else cap += cls[i]->n_args;
    }
    if (cap == 0) return;
    kc->k->inputs = arena_calloc(kc->a, (size_t)cap, sizeof(ir_input));
    for (int i = 0; i < n_cls; i++) {
        if (cls[i]->n_args <= 0 || !cls[i]->args) continue;
        for (int j = 0; j < cls[i]->n_args; j++)
            if (cls[i]->args[j]) check_input_decl(kc, cls[i]->args[j], cap);
    }
}

/* ---------------------------------------------------------------- kernels */

static int clause_lookup(const char *kw) {
    for (int i = 0; i < N_CLAUSES; i++)
        if (strcmp(clause_table[i].name, kw) == 0) return i;
    return -1;
}

static void unknown_clause(kcheck *kc, const ast_clause *cl) {
    static const alias aliases[] = {
        {"head", "heads"}, {"dim", "dims"}, {"type", "dtype"}, {"rotary", "rope"}, {"input", "inputs"},
        {"softmax_scale", "scale"}, {"mla", "latent"}, {"normalise", "normalize"},
    };
    const char *mine[N_CLAUSES], *all[N_CLAUSES];
    int n_mine = 0;
    for (int i = 0; i < N_CLAUSES; i++) {
        all[i] = clause_table[i].name;
        if (clause_table[i].family & kc->family) mine[n_mine++] = clause_table[i].name;
    }
    const char *s = lookup_alias(aliases, sizeof aliases / sizeof aliases[0], cl->keyword);
    if (!s) s = closest_name(cl->keyword, mine, n_mine);
    if (!s) s = closest_name(cl->keyword, all, N_CLAUSES);
    if (s) {
        diag_error(kc->d, cl->loc, "unknown clause '%s'; did you mean '%s'?", cl->keyword, s);
    } else {
        char list[256];
        size_t used = 0;
        list[0] = 0;
        for (int i = 0; i < n_mine; i++) {
            int w = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", mine[i]);
            if (w < 0 || (size_t)w >= sizeof list - used) break;
            used += (size_t)w;
        }
        diag_error(kc->d, cl->loc, "unknown clause '%s'; a %s kernel's clauses are %s", cl->keyword,
                   kc->family == FAM_RECURRENCE ? "recurrence" : "softmax attention", list);
    }
}

/* Decides the family from the header; on an unknown family word, guesses from the clauses
 * so the rest of the kernel is still checked (and family mismatches are not reported). */
static bool kernel_family(kcheck *kc, bool *known) {
    const ast_kernel *ak = kc->ast;
    *known = true;
    if (!ak->family || strcmp(ak->family, "attention") == 0) { kc->family = FAM_SOFTMAX; return true; }
    if (strcmp(ak->family, "recurrence") == 0) { kc->family = FAM_RECURRENCE; return true; }
    static const char *const names[] = {"attention", "recurrence"};
    static const alias aliases[] = {
        {"softmax", "attention"}, {"mha", "attention"}, {"linear", "recurrence"}, {"ssm", "recurrence"},
        {"rnn", "recurrence"}, {"recurrent", "recurrence"}, {"mamba", "recurrence"}, {"linear_attention", "recurrence"},
    };
    const char *s = suggest(ak->family, names, 2, aliases, sizeof aliases / sizeof aliases[0]);
    if (s)
        diag_error(kc->d, ak->family_loc, "unknown kernel family '%s'; did you mean '%s'?", ak->family, s);
    else
        diag_error(kc->d, ak->family_loc,
                   "unknown kernel family '%s'; write ': attention' (softmax, the default) or ': recurrence' "
                   "(linear attention, state-space models)", ak->family);
    *known = false;
    kc->family = FAM_SOFTMAX;
    if (s) {
        kc->family = strcmp(s, "recurrence") == 0 ? FAM_RECURRENCE : FAM_SOFTMAX;
        return false;
    }
    /* Recurrence-only clauses, or `heads N` / `dims k = ...`, give a recurrence away. */
    for (const ast_clause *cl = ak->clauses; cl; cl = cl->next) {
        int i = cl->keyword ? clause_lookup(cl->keyword) : -1;
        if (i < 0) continue;
        if (clause_table[i].family == FAM_RECURRENCE) kc->family = FAM_RECURRENCE;
        const ast_node *a0 = cl->n_args > 0 && cl->args ? cl->args[0] : NULL;
        if (clause_table[i].id == CL_HEADS && a0 && a0->kind != AST_NAMED) kc->family = FAM_RECURRENCE;
        if (clause_table[i].id == CL_DIMS && a0 && a0->kind == AST_NAMED && a0->name && strcmp(a0->name, "k") == 0)
            kc->family = FAM_RECURRENCE;
    }
    return false;
}

static void defaults(ir_kernel *k, int family) {
    k->family = family == FAM_RECURRENCE ? IR_RECURRENCE : IR_SOFTMAX;
    k->phase = IR_PREFILL;
    k->dtype = IR_F32;
    k->chunk = 64;
    k->rope.layout = IR_ROPE_NONE;
    k->decay_kind = IR_DECAY_NONE;
}

static ir_kernel *check_kernel(arena *a, diag_sink *d, const ast_kernel *ak, bool lenient) {
    int errors_before = d->n_errors;
    kcheck kcs = {.a = a, .d = d, .ast = ak};
    kcheck *kc = &kcs;
    bool family_known;
    kernel_family(kc, &family_known);
    ir_kernel *k = arena_alloc(a, sizeof *k);
    kc->k = k;
    k->name = ak->name;
    k->loc = ak->name_loc;
    defaults(k, kc->family);

    int n_inputs = 0, n_clauses = 0;
    for (const ast_clause *cl = ak->clauses; cl; cl = cl->next) n_clauses++;
    const ast_clause **inputs = arena_calloc(a, (size_t)(n_clauses ? n_clauses : 1), sizeof *inputs);
    for (const ast_clause *cl = ak->clauses; cl; cl = cl->next) {
        if (!cl->keyword) continue;
        int i = clause_lookup(cl->keyword);
        if (i < 0) { unknown_clause(kc, cl); continue; }
        if (!(clause_table[i].family & kc->family)) {
            if (!family_known) continue;
            if (kc->family == FAM_RECURRENCE)
                diag_error(d, cl->loc, "'%s' is a softmax-attention clause and has no meaning in a recurrence; "
                           "remove it, or drop ': recurrence' from the kernel header", cl->keyword);
            else
                diag_error(d, cl->loc, "'%s' is a recurrence clause; declare the kernel as 'kernel %s : recurrence' "
                           "to use it", cl->keyword, ak->name);
            continue;
        }
        clause_id id = clause_table[i].id;
        if (id == CL_INPUTS) { inputs[n_inputs++] = cl; continue; }
        if (kc->clause[id]) {
            diag_error(d, cl->loc, "'%s' is given twice (first on line %d); a kernel has one '%s' clause%s", cl->keyword,
                       kc->clause[id]->loc.line, cl->keyword,
                       id == CL_MASK ? ": combine conditions with '&&'" : ", remove one");
            diag_note(d, kc->clause[id]->loc, "the first '%s' clause is here", cl->keyword);
            continue;
        }
        kc->clause[id] = cl;
    }

    if (kc->family == FAM_SOFTMAX) check_softmax_shape(kc, lenient);
    else {
        if (kc->clause[CL_HEADS]) check_recurrence_heads(kc, kc->clause[CL_HEADS]);
        else if (lenient) kc->incomplete = true;
        else diag_error(d, ak->name_loc, "kernel '%s' has no 'heads' clause; add e.g. 'heads 8'", ak->name);
        if (kc->clause[CL_DIMS]) check_recurrence_dims(kc, kc->clause[CL_DIMS]);
        else if (lenient) kc->incomplete = true;
        else diag_error(d, ak->name_loc, "kernel '%s' has no 'dims' clause; add e.g. 'dims k = 64, v = 64'", ak->name);
    }
    if (kc->clause[CL_DTYPE]) check_dtype(kc, kc->clause[CL_DTYPE]);
    if (kc->clause[CL_PHASE]) check_phase(kc, kc->clause[CL_PHASE]);
    check_inputs(kc, inputs, n_inputs);
    if (kc->family == FAM_SOFTMAX) {
        if (kc->clause[CL_SCALE]) check_scale(kc, kc->clause[CL_SCALE]);
        else if (k->d_qk > 0) {
            k->scale_value = 1.0 / sqrt((double)k->d_qk);
            k->scale = ir_const(a, IR_T_FLOAT, k->scale_value);
        }
        if (kc->clause[CL_ROPE]) check_rope(kc, kc->clause[CL_ROPE]);
        if (kc->clause[CL_SCORE]) check_score(kc, kc->clause[CL_SCORE]);
        if (kc->clause[CL_MASK]) check_mask(kc, kc->clause[CL_MASK]);
    } else {
        k->scale_value = 1.0;   /* no softmax scale; 1 keeps a shared printer or backend neutral */
        check_recurrence_body(kc);
    }
    return d->n_errors == errors_before && !kc->incomplete ? k : NULL;
}

/* Kernel names seen so far: an open-addressing hash set, so checking a file of many
 * kernels stays linear. */
typedef struct name_set {
    const ast_kernel **slot;
    size_t mask;
} name_set;

static size_t name_hash(const char *s) {
    size_t h = 1469598103934665603u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

/* Returns the kernel already holding this name, or inserts ak and returns NULL. */
static const ast_kernel *name_set_add(name_set *ns, const ast_kernel *ak, const char *name) {
    for (size_t i = name_hash(name) & ns->mask;; i = (i + 1) & ns->mask) {
        const ast_kernel *k = ns->slot[i];
        if (!k) { ns->slot[i] = ak; return NULL; }
        if (strcmp(k->name ? k->name : "", name) == 0) return k;
    }
}

static ir_module *check_file(const ast_file *f, arena *a, diag_sink *d, bool lenient) {
    ir_module *m = arena_alloc(a, sizeof *m);
    m->arena = a;
    size_t n = 0;
    for (const ast_kernel *ak = f ? f->kernels : NULL; ak; ak = ak->next) n++;
    if (n == 0) return m;
    m->kernels = arena_calloc(a, n, sizeof *m->kernels);
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    name_set seen = {arena_calloc(a, cap, sizeof *seen.slot), cap - 1};
    for (const ast_kernel *ak = f->kernels; ak; ak = ak->next) {
        const char *name = ak->name ? ak->name : "";
        const ast_kernel *first = name_set_add(&seen, ak, name);
        if (first) {
            diag_error(d, ak->name_loc, "kernel '%s' is already defined on line %d; kernel names are unique within a "
                       "file, rename one of them", name, first->name_loc.line);
            diag_note(d, first->name_loc, "the first kernel '%s' is here", name);
            ast_kernel dup = *ak;
            dup.name = name;
            (void)check_kernel(a, d, &dup, lenient);   /* still report its own errors; never added */
            continue;
        }
        ast_kernel named = *ak;
        named.name = name;
        ir_kernel *k = check_kernel(a, d, &named, lenient);
        if (k) m->kernels[m->n_kernels++] = k;
    }
    return m;
}

ir_module *frontend_check(const ast_file *f, arena *a, diag_sink *d) {
    return check_file(f, a, d, false);
}

ir_module *frontend_compile(const char *src, size_t len, arena *a, diag_sink *d) {
    int before = d->n_errors;
    ast_file *f = dsl_parse(src, len, a, d);
    /* After a syntax error a clause may be missing only because it did not parse: do not
     * also report it as missing. */
    return check_file(f, a, d, d->n_errors > before);
}
