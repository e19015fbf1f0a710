/* The `rope` clause: layout, base, rotary dims, context-extension scaling, multi-axis
 * sections, explicit positions and ReRoPE, checked against the head dims and written into
 * ir_rope. The frequency plan itself is the plan-rope pass's job (ir_rope_plan). */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include "frontend/check_internal.h"

typedef struct alias { const char *from, *to; } alias;

static const char *suggest(const char *name, const char *const *words, int n, const alias *t, int nt) {
    for (int i = 0; i < nt; i++)
        if (strcmp(t[i].from, name) == 0) return t[i].to;
    return closest_name(name, words, n);
}

enum { P_FACTOR, P_ORIGINAL, P_BETA_FAST, P_BETA_SLOW, P_MSCALE, P_LOW, P_HIGH, P_COUNT };

typedef struct scaling_form {
    const char *name;
    ir_rope_scaling kind;
    const char *usage;
    int n;
    param ps[4 + 1];
    int slot[5];          /* which P_ value each param fills */
} scaling_form;

#define REQ(n) {n, true, true, true}
#define OPT(n) {n, false, true, true}
static const scaling_form scalings[] = {
    {"linear", IR_SCALE_LINEAR, "scaling = linear(factor = 4)", 1, {REQ("factor")}, {P_FACTOR}},
    {"ntk", IR_SCALE_NTK, "scaling = ntk(factor = 4)", 1, {REQ("factor")}, {P_FACTOR}},
    {"dynamic_ntk", IR_SCALE_DYNAMIC_NTK, "scaling = dynamic_ntk(factor = 4, original = 4096)", 2,
     {REQ("factor"), REQ("original")}, {P_FACTOR, P_ORIGINAL}},
    {"yarn", IR_SCALE_YARN, "scaling = yarn(factor = 40, original = 4096, beta_fast = 32, beta_slow = 1, mscale = 1)", 5,
     {REQ("factor"), REQ("original"), OPT("beta_fast"), OPT("beta_slow"), OPT("mscale")},
     {P_FACTOR, P_ORIGINAL, P_BETA_FAST, P_BETA_SLOW, P_MSCALE}},
    {"llama3", IR_SCALE_LLAMA3, "scaling = llama3(factor = 8, low = 1, high = 4, original = 8192)", 4,
     {REQ("factor"), OPT("low"), OPT("high"), OPT("original")}, {P_FACTOR, P_LOW, P_HIGH, P_ORIGINAL}},
};
#undef REQ
#undef OPT
enum { N_SCALINGS = sizeof scalings / sizeof scalings[0] };

static const char *const option_names[] = {"base", "dims", "scaling", "sections", "positions", "rerope"};
enum { N_OPTIONS = sizeof option_names / sizeof option_names[0] };

typedef struct rope_state {
    ir_rope r;
    const ast_node *seen[N_OPTIONS];      /* where each option was given */
    const ast_node *dims_node, *sections_node, *rerope_node;
    bool dims_given;
    bool scaling_ok;
} rope_state;

static void check_scaling(kcheck *kc, rope_state *st, const ast_node *v) {
    static const alias aliases[] = {{"dynamic", "dynamic_ntk"}, {"ntk_aware", "ntk"}, {"llama31", "llama3"},
                                    {"llama3_1", "llama3"}, {"yarn_scaling", "yarn"}};
    const char *names[N_SCALINGS];
    for (int i = 0; i < N_SCALINGS; i++) names[i] = scalings[i].name;
    if (v->kind != AST_CALL && v->kind != AST_IDENT) {
        diag_error(kc->d, v->loc, "scaling is a call such as 'yarn(factor = 40, original = 4096)'; the kinds are linear, "
                   "ntk, dynamic_ntk, yarn and llama3");
        return;
    }
    const char *name = v->name ? v->name : "";
    const scaling_form *f = NULL;
    for (int i = 0; i < N_SCALINGS; i++)
        if (strcmp(scalings[i].name, name) == 0) f = &scalings[i];
    src_loc name_loc = v->kind == AST_CALL ? v->name_loc : v->loc;
    if (!f) {
        const char *s = suggest(name, names, N_SCALINGS, aliases, sizeof aliases / sizeof aliases[0]);
        if (s) diag_error(kc->d, name_loc, "unknown RoPE scaling '%s'; did you mean '%s'?", name, s);
        else diag_error(kc->d, name_loc, "unknown RoPE scaling '%s'; use linear, ntk, dynamic_ntk, yarn or llama3", name);
        return;
    }
    if (v->kind == AST_IDENT) {
        diag_error(kc->d, v->loc, "%s scaling needs its parameters; write e.g. '%s'", name, f->usage);
        return;
    }
    const ast_node *vals[5];
    int n_items = v->items ? v->n_items : 0;
    bool ok = bind_args(kc, name, v->name_loc, f->usage, v->items, n_items, f->ps, f->n, vals);
    double p[P_COUNT] = {[P_FACTOR] = 1, [P_ORIGINAL] = 0, [P_BETA_FAST] = 32, [P_BETA_SLOW] = 1, [P_MSCALE] = 1,
                         [P_LOW] = 1, [P_HIGH] = 4};
    if (f->kind == IR_SCALE_LLAMA3) p[P_ORIGINAL] = 8192;
    const ast_node *node[P_COUNT] = {NULL};
    static const char *const what[P_COUNT] = {"the scaling factor", "the original context length", "yarn's beta_fast",
                                             "yarn's beta_slow", "yarn's mscale", "llama3's low", "llama3's high"};
    for (int i = 0; i < f->n; i++) {
        if (!vals[i]) continue;
        int s = f->slot[i];
        node[s] = vals[i];
        if (!const_real(kc, vals[i], what[s], &p[s])) { ok = false; node[s] = NULL; }
    }
    char b0[32], b1[32];
    if (node[P_FACTOR] && p[P_FACTOR] < 1) {
        diag_error(kc->d, node[P_FACTOR]->loc, "the %s factor must be at least 1 (it stretches the context), got %s", name,
                   fmt_num(p[P_FACTOR], b0, sizeof b0));
        ok = false;
    }
    if (node[P_ORIGINAL] && p[P_ORIGINAL] <= 0) {
        diag_error(kc->d, node[P_ORIGINAL]->loc, "the original context length must be positive, got %s; e.g. 'original = 4096'",
                   fmt_num(p[P_ORIGINAL], b0, sizeof b0));
        ok = false;
    }
    if (f->kind == IR_SCALE_YARN) {
        if (node[P_BETA_SLOW] && p[P_BETA_SLOW] <= 0) {
            diag_error(kc->d, node[P_BETA_SLOW]->loc, "yarn's beta_slow must be positive, got %s (the default is 1)",
                       fmt_num(p[P_BETA_SLOW], b0, sizeof b0));
            ok = false;
        } else if (p[P_BETA_FAST] <= p[P_BETA_SLOW]) {
            const ast_node *at = node[P_BETA_FAST] ? node[P_BETA_FAST] : node[P_BETA_SLOW] ? node[P_BETA_SLOW] : v;
            diag_error(kc->d, at->loc, "yarn's beta_fast (%s) must be greater than beta_slow (%s); the defaults are 32 and 1",
                       fmt_num(p[P_BETA_FAST], b0, sizeof b0), fmt_num(p[P_BETA_SLOW], b1, sizeof b1));
            ok = false;
        }
        if (node[P_MSCALE] && p[P_MSCALE] <= 0) {
            diag_error(kc->d, node[P_MSCALE]->loc, "yarn's mscale must be positive, got %s (DeepSeek-V2 uses 0.707)",
                       fmt_num(p[P_MSCALE], b0, sizeof b0));
            ok = false;
        }
    }
    if (f->kind == IR_SCALE_LLAMA3) {
        if (node[P_LOW] && p[P_LOW] <= 0) {
            diag_error(kc->d, node[P_LOW]->loc, "llama3's low must be positive, got %s (Llama-3.1 uses 1)",
                       fmt_num(p[P_LOW], b0, sizeof b0));
            ok = false;
        } else if (p[P_HIGH] <= p[P_LOW]) {
            const ast_node *at = node[P_HIGH] ? node[P_HIGH] : node[P_LOW] ? node[P_LOW] : v;
            diag_error(kc->d, at->loc, "llama3's high (%s) must be greater than low (%s); Llama-3.1 uses low = 1, high = 4",
                       fmt_num(p[P_HIGH], b0, sizeof b0), fmt_num(p[P_LOW], b1, sizeof b1));
            ok = false;
        }
    }
    st->r.scaling = f->kind;
    st->r.factor = p[P_FACTOR];
    st->r.original = p[P_ORIGINAL];
    if (f->kind == IR_SCALE_YARN) {
        st->r.beta_fast = p[P_BETA_FAST];
        st->r.beta_slow = p[P_BETA_SLOW];
        st->r.mscale = p[P_MSCALE];
    }
    if (f->kind == IR_SCALE_LLAMA3) {
        st->r.low_freq_factor = p[P_LOW];
        st->r.high_freq_factor = p[P_HIGH];
    }
    st->scaling_ok = ok;
}

/* dims = [lo, hi): evaluated here, checked against qk once every argument is read. */
static void check_dims_range(kcheck *kc, rope_state *st, const ast_node *v) {
    if (v->kind == AST_LIST && v->n_items == 2 && v->items) {
        char a[96], b[96];
        const char *ta = quote_src(kc, v->items[0]->loc, NULL, a, sizeof a);
        const char *tb = quote_src(kc, v->items[1]->loc, NULL, b, sizeof b);
        if (ta && tb)
            diag_error(kc->d, v->loc, "rotary dims are a half-open range: write [%.*s, %.*s) (the ')' leaves the upper "
                       "end out)", (int)strlen(ta) - 2, ta + 1, (int)strlen(tb) - 2, tb + 1);
        else
            diag_error(kc->d, v->loc, "rotary dims are a half-open range: write [lo, hi) (the ')' leaves hi out)");
        return;
    }
    if (v->kind != AST_INTERVAL || v->n_items != 2 || !v->items) {
        diag_error(kc->d, v->loc, "rotary dims are a half-open range of two numbers, e.g. 'dims = [0, 64)'");
        return;
    }
    int lo, hi;
    bool ok = const_int(kc, v->items[0], "the first rotary dim", -1000000000L, 1000000000L, &lo);
    ok = const_int(kc, v->items[1], "the end of the rotary dims", -1000000000L, 1000000000L, &hi) && ok;
    if (!ok) return;
    st->r.dim_lo = lo;
    st->r.dim_hi = hi;
    st->dims_given = true;
    st->dims_node = v;
}

static void check_sections(kcheck *kc, rope_state *st, const ast_node *v) {
    if (v->kind != AST_LIST || !v->items) {
        diag_error(kc->d, v->loc, "sections is a list of pair counts per position axis, e.g. 'sections = [16, 24, 24]'");
        return;
    }
    if (v->n_items == 0) {
        diag_error(kc->d, v->loc, "sections needs at least one entry, e.g. [16, 24, 24]");
        return;
    }
    if (v->n_items > 4) {
        diag_error(kc->d, v->loc, "M-RoPE takes at most 4 position axes, got %d sections", v->n_items);
        return;
    }
    bool ok = true;
    for (int i = 0; i < v->n_items; i++) {
        int s;
        if (const_int(kc, v->items[i], "a section (pairs per position axis)", 1, 1000000L, &s)) st->r.sections[i] = s;
        else ok = false;
    }
    if (!ok) return;
    st->r.n_sections = v->n_items;
    st->r.explicit_positions = true;
    st->sections_node = v;
}

static void check_rerope(kcheck *kc, rope_state *st, const ast_node *v) {
    static const param ps[] = {{"window", true, true, true}, {"leak", false, true, true}};
    const ast_node *vals[2];
    int n_items = v->items ? v->n_items : 0;
    bind_args(kc, "rerope", v->name_loc, "rerope(window = 512, leak = 16)", v->items, n_items, ps, 2, vals);
    int w;
    if (vals[0] && const_int(kc, vals[0], "the rerope window", 1, INT_MAX, &w)) st->r.rerope_window = w;
    double leak;
    if (vals[1] && const_real(kc, vals[1], "the rerope leak", &leak)) {
        char b[32];
        if (leak <= 1)
            diag_error(kc->d, vals[1]->loc, "the rerope leak must be greater than 1 (beyond the window, positions grow "
                       "1/leak as fast), got %s; e.g. 'leak = 16'", fmt_num(leak, b, sizeof b));
        else st->r.rerope_leak = leak;
    }
    st->rerope_node = v;
}

static int option_index(const char *name) {
    for (int i = 0; i < N_OPTIONS; i++)
        if (strcmp(option_names[i], name) == 0) return i;
    return -1;
}

static bool is_layout(const ast_node *n) {
    return n->kind == AST_IDENT && n->name && (strcmp(n->name, "half") == 0 || strcmp(n->name, "interleaved") == 0);
}

static void unknown_option(kcheck *kc, const char *name, src_loc loc) {
    static const alias aliases[] = {{"theta", "base"}, {"rope_theta", "base"}, {"rotary_dims", "dims"},
                                    {"mrope_section", "sections"}, {"scaling_factor", "scaling"}};
    const char *s = suggest(name, option_names, N_OPTIONS, aliases, sizeof aliases / sizeof aliases[0]);
    if (s) diag_error(kc->d, loc, "unknown rope argument '%s'; did you mean '%s'?", name, s);
    else diag_error(kc->d, loc, "unknown rope argument '%s'; rope takes base, dims, scaling, sections, positions and "
                    "rerope(...)", name);
}

/* Records that option `opt` was given at n; false (after reporting) when it already was. */
static bool first_time(kcheck *kc, rope_state *st, int opt, const ast_node *n, src_loc loc) {
    if (st->seen[opt]) {
        diag_error(kc->d, loc, "'%s' is given twice in rope; give it once", option_names[opt]);
        return false;
    }
    st->seen[opt] = n;
    return true;
}

static void check_option(kcheck *kc, rope_state *st, const ast_node *n, bool layout_set) {
    const char *name = n->name ? n->name : "";
    if (is_layout(n)) {
        if (layout_set) diag_error(kc->d, n->loc, "the RoPE layout is given twice; give one, as the first argument");
        else diag_error(kc->d, n->loc, "the RoPE layout must be the first rope argument: 'rope %s, ...'", name);
        return;
    }
    switch (n->kind) {
    case AST_IDENT:
        if (strcmp(name, "positions") == 0) {
            if (first_time(kc, st, 4, n, n->loc)) st->r.explicit_positions = true;
        } else if (strcmp(name, "rerope") == 0) {
            diag_error(kc->d, n->loc, "rerope needs a window: 'rerope(window = 512)' (and optionally 'leak = 16')");
        } else {
            unknown_option(kc, name, n->loc);
        }
        return;
    case AST_NAMED: {
        int opt = option_index(name);
        if (opt < 0) { unknown_option(kc, name, n->name_loc); return; }
        if (opt == 4) {
            diag_error(kc->d, n->loc, "'positions' is a flag and takes no value; write 'positions' alone");
            return;
        }
        if (opt == 5) {
            diag_error(kc->d, n->loc, "rerope is written as a call: 'rerope(window = 512, leak = 16)'");
            return;
        }
        if (!first_time(kc, st, opt, n, n->name_loc) || !n->a) return;
        if (opt == 0) {
            double b;
            if (!const_real(kc, n->a, "the rope base", &b)) return;
            if (b <= 0) {
                char buf[32];
                diag_error(kc->d, n->a->loc, "the rope base must be positive, got %s; the default is 10000",
                           fmt_num(b, buf, sizeof buf));
                return;
            }
            st->r.base = b;
        } else if (opt == 1) {
            check_dims_range(kc, st, n->a);
        } else if (opt == 2) {
            check_scaling(kc, st, n->a);
        } else {
            check_sections(kc, st, n->a);
        }
        return;
    }
    case AST_CALL:
        if (strcmp(name, "rerope") == 0) {
            if (first_time(kc, st, 5, n, n->name_loc)) check_rerope(kc, st, n);
            return;
        }
        for (int i = 0; i < N_SCALINGS; i++)
            if (strcmp(scalings[i].name, name) == 0) {
                diag_error(kc->d, n->loc, "name the scaling: 'scaling = %s(...)'", name);
                return;
            }
        unknown_option(kc, name, n->name_loc);
        return;
    default:
        diag_error(kc->d, n->loc, "unexpected rope argument; rope takes a layout, then base = B, dims = [lo, hi), "
                   "scaling = S, sections = [a, b, c], positions, rerope(window = W)");
        return;
    }
}

/* Rotary dims against the head dim, sections against the pair count, and the combinations. */
static void check_rope_consistency(kcheck *kc, rope_state *st, const ast_clause *cl) {
    ir_kernel *k = kc->k;
    ir_rope *r = &st->r;
    int qk = k->d_qk;
    if (!kc->dims_ok || qk <= 0) return;   /* the dims have their own error */
    if (!st->dims_given) {
        if (k->v_in_k) { r->dim_lo = k->latent_rank; r->dim_hi = k->latent_rank + k->latent_rope; }
        else { r->dim_lo = 0; r->dim_hi = qk; }
        if ((r->dim_hi - r->dim_lo) % 2) {
            diag_error(kc->d, cl->loc, "the qk head dim %d is odd and RoPE rotates pairs; give even rotary dims, e.g. "
                       "'dims = [0, %d)'", qk, qk - 1);
            return;
        }
    } else {
        int lo = r->dim_lo, hi = r->dim_hi;
        src_loc at = st->dims_node->loc;
        if (lo >= hi) {
            diag_error(kc->d, at, "rotary dims [%d, %d) are empty; write [lo, hi) with lo < hi, e.g. [0, %d)", lo, hi, qk);
            return;
        }
        if (lo < 0 || hi > qk) {
            diag_error(kc->d, at, "rotary dims [%d, %d) do not fit the qk head dim %d; the range must lie inside [0, %d)",
                       lo, hi, qk, qk);
            return;
        }
        if ((hi - lo) % 2) {
            if (hi + 1 <= qk)
                diag_error(kc->d, at, "rotary dims [%d, %d) span %d dims, an odd number; RoPE rotates pairs, so use "
                           "[%d, %d) or [%d, %d)", lo, hi, hi - lo, lo, hi - 1, lo, hi + 1);
            else
                diag_error(kc->d, at, "rotary dims [%d, %d) span %d dims, an odd number; RoPE rotates pairs, so use "
                           "[%d, %d)", lo, hi, hi - lo, lo, hi - 1);
            return;
        }
    }
    int pairs = (r->dim_hi - r->dim_lo) / 2;
    if (st->sections_node) {
        int sum = 0;
        for (int i = 0; i < r->n_sections; i++) sum += r->sections[i];
        if (sum != pairs)
            diag_error(kc->d, st->sections_node->loc, "M-RoPE sections add up to %d pairs but rope dims [%d, %d) have %d "
                       "pairs; make them add up to %d", sum, r->dim_lo, r->dim_hi, pairs, pairs);
        if (st->rerope_node)
            diag_error(kc->d, st->rerope_node->loc, "rerope cannot be combined with multi-axis 'sections': ReRoPE clips "
                       "a single relative position; remove one of them");
    }
    if ((r->scaling == IR_SCALE_NTK || r->scaling == IR_SCALE_DYNAMIC_NTK) && pairs < 2)
        diag_error(kc->d, st->seen[2]->loc, "NTK scaling needs more than 2 rotary dims (base · factor^(d/(d-2)) is "
                   "undefined for d = 2); widen the rotary dims");
}

void check_rope(kcheck *kc, const ast_clause *cl) {
    int errors_before = kc->d->n_errors;
    rope_state st;
    memset(&st, 0, sizeof st);
    st.r.base = 10000;
    st.r.factor = 1;
    st.r.scaling = IR_SCALE_NONE;
    int n = cl->args ? cl->n_args : 0;
    if (n == 0) {
        diag_error(kc->d, cl->loc, "rope needs a layout: 'rope half' (pairs (j, j + P): GPT-NeoX, Llama in HF) or "
                   "'rope interleaved' (pairs (2j, 2j + 1): GPT-J)");
        return;
    }
    int start = 0;
    const ast_node *first = cl->args[0];
    if (is_layout(first)) {
        st.r.layout = strcmp(first->name, "half") == 0 ? IR_ROPE_HALF : IR_ROPE_INTERLEAVED;
        start = 1;
    } else if (first->kind == AST_IDENT && first->name && option_index(first->name) < 0) {
        static const char *const layouts[] = {"half", "interleaved"};
        static const alias aliases[] = {{"neox", "half"}, {"gpt_neox", "half"}, {"rotate_half", "half"},
                                        {"gptj", "interleaved"}, {"gpt_j", "interleaved"}, {"interleave", "interleaved"}};
        const char *s = suggest(first->name, layouts, 2, aliases, sizeof aliases / sizeof aliases[0]);
        if (s) diag_error(kc->d, first->loc, "unknown RoPE layout '%s'; did you mean '%s'?", first->name, s);
        else diag_error(kc->d, first->loc, "unknown RoPE layout '%s'; use 'half' (GPT-NeoX, Llama in HF) or "
                        "'interleaved' (GPT-J)", first->name);
        start = 1;
    } else {
        diag_error(kc->d, first->loc, "rope's first argument is the pair layout: write 'rope half, ...' (GPT-NeoX, "
                   "Llama in HF) or 'rope interleaved, ...' (GPT-J)");
    }
    for (int i = start; i < n; i++)
        if (cl->args[i]) check_option(kc, &st, cl->args[i], start == 1);
    check_rope_consistency(kc, &st, cl);
    if (kc->d->n_errors == errors_before) kc->k->rope = st.r;
}
