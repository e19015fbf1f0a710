/* The IR's text form: one kernel header line, then one field per line in a fixed order, so
 * golden files diff cleanly. Expressions print as prefix s-expressions, `(le kv_idx q_idx)`;
 * the types show through the constants (`1` int, `1.0` float, `true` bool) and the
 * explicit `(float x)` conversions. Numbers print in the shortest form that reads back to
 * the same double, so a dump is exact. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ir/ir.h"

/* Shortest %.Ng that strtod reads back bit-exactly; always distinguishable from an int. */
static void format_float(char *buf, size_t n, double v) {
    if (isnan(v)) { snprintf(buf, n, "nan"); return; }
    if (isinf(v)) { snprintf(buf, n, v < 0 ? "-inf" : "inf"); return; }
    if (v == floor(v) && fabs(v) < 1e16) {   /* integral: 500000.0, not 5e+05 */
        snprintf(buf, n, "%.1f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v && (v != 0 || signbit(strtod(buf, NULL)) == signbit(v))) break;
    }
    if (!strpbrk(buf, ".e")) {
        size_t len = strlen(buf);
        if (len + 3 <= n) memcpy(buf + len, ".0", 3);
    }
}

static void print_float(FILE *out, double v) {
    char buf[40];
    format_float(buf, sizeof buf, v);
    fputs(buf, out);
}

static void print_const(FILE *out, ir_type t, double v) {
    if (t == IR_T_BOOL) fputs(v != 0 ? "true" : "false", out);
    else if (t == IR_T_INT && fabs(v) < 9.2e18 && v == floor(v)) fprintf(out, "%lld", (long long)v);
    else print_float(out, v);
}

static const char *input_name(const ir_kernel *k, int input) {
    if (k && input >= 0 && input < k->n_inputs && k->inputs[input].name) return k->inputs[input].name;
    return NULL;
}

void ir_print_expr(FILE *out, const ir_kernel *k, const ir_expr *e) {
    if (!e) { fputs("<null>", out); return; }
    switch (e->op) {
    case IR_CONST: print_const(out, e->type, e->value); return;
    case IR_VAR: fputs(ir_var_name(e->var), out); return;
    case IR_INPUT: {
        /* softmax reads name[index, ...]; a recurrence reads name[] at the current indices */
        const char *name = input_name(k, e->input);
        if (name) fputs(name, out);
        else fprintf(out, "input#%d", e->input);
        fputc('[', out);
        for (int i = 0; i < e->n_args; i++) {
            if (i) fputs(", ", out);
            ir_print_expr(out, k, e->args[i]);
        }
        fputc(']', out);
        return;
    }
    default:
        fputc('(', out);
        fputs(ir_op_name(e->op), out);
        for (int i = 0; i < e->n_args; i++) {
            fputc(' ', out);
            ir_print_expr(out, k, e->args[i]);
        }
        fputc(')', out);
        return;
    }
}

static const char *family_name(ir_family f) {
    return f == IR_SOFTMAX ? "softmax" : f == IR_RECURRENCE ? "recurrence" : "?";
}
static const char *phase_name(ir_phase p) {
    return p == IR_PREFILL ? "prefill" : p == IR_DECODE ? "decode" : "?";
}
static const char *dtype_name(ir_dtype t) {
    return t == IR_F32 ? "f32" : t == IR_F16 ? "f16" : t == IR_BF16 ? "bf16" : "?";
}
static const char *axis_name(ir_axis a) {
    switch (a) {
    case IR_AXIS_TOKEN: return "token";
    case IR_AXIS_HEAD: return "head";
    case IR_AXIS_K: return "k";
    case IR_AXIS_V: return "v";
    }
    return "?";
}
static const char *layout_name(ir_rope_layout l) {
    return l == IR_ROPE_HALF ? "half" : l == IR_ROPE_INTERLEAVED ? "interleaved" : "none";
}
static const char *decay_kind_name(ir_decay_kind d) {
    switch (d) {
    case IR_DECAY_NONE: return "none";
    case IR_DECAY_HEAD: return "head";
    case IR_DECAY_TOKEN_HEAD: return "token_head";
    case IR_DECAY_KEY_VECTOR: return "key_vector";
    case IR_DECAY_STATE: return "state";
    }
    return "?";
}

static void print_field_expr(FILE *out, const ir_kernel *k, const char *field, const ir_expr *e,
                             const char *absent) {
    fprintf(out, "  %s ", field);
    if (e) ir_print_expr(out, k, e);
    else fputs(absent, out);
}

static void print_bound(FILE *out, int64_t v) {
    if (v == INT64_MIN) fputs("-inf", out);
    else if (v == INT64_MAX) fputs("inf", out);
    else fprintf(out, "%lld", (long long)v);
}

static void print_rope(FILE *out, const ir_rope *r) {
    if (r->layout == IR_ROPE_NONE) { fputs("  rope none\n", out); return; }
    fprintf(out, "  rope %s dims=[%d,%d) base=", layout_name(r->layout), r->dim_lo, r->dim_hi);
    print_float(out, r->base);
    fputs("\n    scaling ", out);
    switch (r->scaling) {
    case IR_SCALE_NONE: fputs("none", out); break;
    case IR_SCALE_LINEAR: fputs("linear factor=", out); print_float(out, r->factor); break;
    case IR_SCALE_NTK: fputs("ntk factor=", out); print_float(out, r->factor); break;
    case IR_SCALE_DYNAMIC_NTK:
        fputs("dynamic_ntk factor=", out); print_float(out, r->factor);
        fputs(" original=", out); print_float(out, r->original);
        break;
    case IR_SCALE_YARN:
        fputs("yarn factor=", out); print_float(out, r->factor);
        fputs(" original=", out); print_float(out, r->original);
        fputs(" beta_fast=", out); print_float(out, r->beta_fast);
        fputs(" beta_slow=", out); print_float(out, r->beta_slow);
        fputs(" mscale=", out); print_float(out, r->mscale);
        break;
    case IR_SCALE_LLAMA3:
        fputs("llama3 factor=", out); print_float(out, r->factor);
        fputs(" low=", out); print_float(out, r->low_freq_factor);
        fputs(" high=", out); print_float(out, r->high_freq_factor);
        fputs(" original=", out); print_float(out, r->original);
        break;
    default: fputs("?", out); break;
    }
    fputc('\n', out);
    if (r->n_sections > 0) {
        fputs("    sections [", out);
        for (int i = 0; i < r->n_sections && i < 4; i++) fprintf(out, i ? ",%d" : "%d", r->sections[i]);
        fputs("]\n", out);
    }
    fprintf(out, "    positions %s\n", r->explicit_positions ? "input" : "q_idx/kv_idx");
    if (r->rerope_window > 0) {
        fprintf(out, "    rerope window=%d", r->rerope_window);
        if (r->rerope_leak > 0) { fputs(" leak=", out); print_float(out, r->rerope_leak); }
        fputc('\n', out);
    }
    if (!r->planned) return;
    fprintf(out, "    plan pairs=%d attn_factor=", r->n_pairs);
    print_float(out, r->attn_factor);
    fputc('\n', out);
    /* %.9e: the table is derived data; nine digits keep goldens stable across libms */
    for (int j = 0; j < r->n_pairs && r->inv_freq; j++) {
        if (j % 4 == 0) fprintf(out, "    inv_freq[%d]", j);
        fprintf(out, " %.9e", r->inv_freq[j]);
        if (j % 4 == 3 || j == r->n_pairs - 1) fputc('\n', out);
    }
    if (r->pair_axis && r->n_pairs > 0) {
        /* run-length: axis*count */
        fputs("    pair_axis", out);
        int j = 0;
        while (j < r->n_pairs) {
            int run = 1;
            while (j + run < r->n_pairs && r->pair_axis[j + run] == r->pair_axis[j]) run++;
            fprintf(out, " %d*%d", r->pair_axis[j], run);
            j += run;
        }
        fputc('\n', out);
    }
}

void ir_print_kernel(FILE *out, const ir_kernel *k) {
    fprintf(out, "kernel %s %s phase=%s dtype=%s\n", k->name ? k->name : "<unnamed>",
            family_name(k->family), phase_name(k->phase), dtype_name(k->dtype));
    bool softmax = k->family == IR_SOFTMAX;
    if (softmax) fprintf(out, "  heads q=%d kv=%d\n", k->heads_q, k->heads_kv);
    else fprintf(out, "  heads q=%d groups=%d\n", k->heads_q, k->groups);
    fprintf(out, "  dims qk=%d v=%d\n", k->d_qk, k->d_v);
    if (softmax) {
        if (k->latent_rank > 0 || k->v_in_k)
            fprintf(out, "  latent rank=%d rope=%d%s\n", k->latent_rank, k->latent_rope,
                    k->v_in_k ? " v_in_k" : "");
        /* value is the softmax scale backends use (times rope attn_factor once planned);
         * in_q: fold-scale decided q is multiplied by value on load, so the `score` a
         * modifier sees already includes it */
        print_field_expr(out, k, "scale", k->scale, "none");
        fputs(" value=", out);
        print_float(out, k->scale_value);
        if (k->scale_in_q) fputs(" in_q", out);
        fputc('\n', out);
        print_rope(out, &k->rope);
        print_field_expr(out, k, "score", k->score_mod, "identity");
        fputc('\n', out);
        print_field_expr(out, k, "mask", k->mask, "none");
        fputc('\n', out);
        if (k->band.has_band) {
            if (k->band.band_lo > k->band.band_hi) fputs("  band empty", out);
            else {
                fputs("  band lo=", out);
                print_bound(out, k->band.band_lo);
                fputs(" hi=", out);
                print_bound(out, k->band.band_hi);
            }
            fputs(k->band.band_exact ? " exact\n" : " inexact\n", out);
        }
    }
    for (int i = 0; i < k->n_inputs; i++) {
        const ir_input *in = &k->inputs[i];
        fprintf(out, "  input %s[", in->name ? in->name : "?");
        for (int a = 0; a < in->n_axes && a < 4; a++) fprintf(out, a ? ", %s" : "%s", axis_name(in->axes[a]));
        fprintf(out, "]: %s\n", in->scalar == IR_S_I32 ? "i32" : "f32");
    }
    if (!softmax) {
        print_field_expr(out, k, "decay", k->decay, "none");
        fprintf(out, " kind=%s\n", decay_kind_name(k->decay_kind));
        if (k->log_decay) { print_field_expr(out, k, "log_decay", k->log_decay, "none"); fputc('\n', out); }
        print_field_expr(out, k, "feature", k->feature, "identity");
        fputc('\n', out);
        fprintf(out, "  normalize %s\n", k->normalize ? "yes" : "no");
        print_field_expr(out, k, "v_scale", k->v_scale, "none");
        fputc('\n', out);
        print_field_expr(out, k, "skip", k->skip, "none");
        fputc('\n', out);
        fprintf(out, "  chunk %d\n", k->chunk);
    }
}

void ir_print_module(FILE *out, const ir_module *m) {
    for (int i = 0; i < m->n_kernels; i++) {
        if (i) fputc('\n', out);
        ir_print_kernel(out, m->kernels[i]);
    }
}
