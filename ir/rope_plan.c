/* RoPE planning: the per-pair angular frequencies (inv_freq), which position axis drives
 * each pair, and the attention factor, following the formulas HF transformers uses
 * (modeling_rope_utils: default, linear, dynamic, yarn, llama3) plus static NTK-aware
 * scaling. d is the rotary width (dim_hi - dim_lo), pair j has default frequency
 * base^(-2j/d). Computed in double. */
#include <math.h>
#include <string.h>
#include "ir/ir.h"

static int rope_pairs(const ir_rope *r) { return (r->dim_hi - r->dim_lo) / 2; }

/* 1 / base^(2j/d), written as HF does: 1 / (base ** (arange(0, d, 2) / d)). */
static void default_inv_freq(double base, int d, int pairs, double *out) {
    for (int j = 0; j < pairs; j++) out[j] = 1.0 / pow(base, (double)(2 * j) / d);
}

/* NTK-aware base: base * s^(d / (d - 2)). */
static double ntk_base(double base, double s, int d) { return base * pow(s, (double)d / (d - 2)); }

/* YaRN: the rotary dimension at which a wavelength completes num_rot turns within the
 * original context (inverse of the wavelength formula). */
static double yarn_correction_dim(double num_rot, int d, double base, double original) {
    return (d * log(original / (num_rot * 2 * M_PI))) / (2 * log(base));
}

static void yarn_inv_freq(const ir_rope *r, int d, int pairs, double *out) {
    double beta_fast = r->beta_fast != 0 ? r->beta_fast : 32;   /* HF: `or 32`, `or 1` */
    double beta_slow = r->beta_slow != 0 ? r->beta_slow : 1;
    double low = floor(yarn_correction_dim(beta_fast, d, r->base, r->original));
    double high = ceil(yarn_correction_dim(beta_slow, d, r->base, r->original));
    if (low < 0) low = 0;
    if (high > d - 1) high = d - 1;
    if (low == high) high += 0.001;   /* avoid a zero-width ramp */
    for (int j = 0; j < pairs; j++) {
        double pos_freq = pow(r->base, (double)(2 * j) / d);
        double extrapolation = 1.0 / pos_freq;
        double interpolation = 1.0 / (r->factor * pos_freq);
        double ramp = (j - low) / (high - low);
        ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
        double keep = 1 - ramp;   /* weight of the unscaled (extrapolated) frequency */
        out[j] = interpolation * (1 - keep) + extrapolation * keep;
    }
}

static void llama3_inv_freq(const ir_rope *r, int d, int pairs, double *out) {
    default_inv_freq(r->base, d, pairs, out);
    double low_wavelen = r->original / r->low_freq_factor;    /* longer waves: fully scaled */
    double high_wavelen = r->original / r->high_freq_factor;  /* shorter waves: untouched */
    for (int j = 0; j < pairs; j++) {
        double f = out[j], wavelen = 2 * M_PI / f;
        if (wavelen < high_wavelen) continue;
        if (wavelen > low_wavelen) { out[j] = f / r->factor; continue; }
        double smooth = (r->original / wavelen - r->low_freq_factor) / (r->high_freq_factor - r->low_freq_factor);
        out[j] = (1 - smooth) * f / r->factor + smooth * f;
    }
}

/* The frequencies that do not depend on the run (dynamic NTK: its unscaled base). */
static void static_inv_freq(const ir_rope *r, double *out) {
    int d = r->dim_hi - r->dim_lo, pairs = rope_pairs(r);
    switch (r->scaling) {
    case IR_SCALE_LINEAR:
        default_inv_freq(r->base, d, pairs, out);
        for (int j = 0; j < pairs; j++) out[j] /= r->factor;
        break;
    case IR_SCALE_NTK: default_inv_freq(ntk_base(r->base, r->factor, d), d, pairs, out); break;
    case IR_SCALE_YARN: yarn_inv_freq(r, d, pairs, out); break;
    case IR_SCALE_LLAMA3: llama3_inv_freq(r, d, pairs, out); break;
    default: default_inv_freq(r->base, d, pairs, out); break;   /* none, dynamic_ntk */
    }
}

/* YaRN scales cos and sin by t = 0.1 mscale ln(factor) + 1, so q·k, hence the softmax
 * scale, by t². */
static double attn_factor(const ir_rope *r) {
    if (r->scaling != IR_SCALE_YARN || !(r->factor > 1)) return 1.0;
    double mscale = r->mscale != 0 ? r->mscale : 1;
    double t = 0.1 * mscale * log(r->factor) + 1.0;
    return t * t;
}

void ir_rope_plan(ir_rope *r, arena *a) {
    int pairs = rope_pairs(r);
    if (r->layout == IR_ROPE_NONE || pairs <= 0) return;
    r->n_pairs = pairs;
    r->inv_freq = arena_calloc(a, (size_t)pairs, sizeof *r->inv_freq);
    r->pair_axis = arena_calloc(a, (size_t)pairs, sizeof *r->pair_axis);
    static_inv_freq(r, r->inv_freq);
    if (r->n_sections > 1) {
        int axis = 0, end = r->sections[0];
        for (int j = 0; j < pairs; j++) {
            while (j >= end && axis + 1 < r->n_sections) end += r->sections[++axis];
            r->pair_axis[j] = axis;
        }
    }
    r->attn_factor = attn_factor(r);
    r->planned = true;
}

void ir_rope_inv_freq_at(const ir_rope *r, int64_t seq_k, double *out) {
    int d = r->dim_hi - r->dim_lo, pairs = rope_pairs(r);
    if (pairs <= 0) return;
    if (r->scaling == IR_SCALE_DYNAMIC_NTK && (double)seq_k > r->original) {
        /* HF grows the base with the sequence: s = factor * len / original - (factor - 1) */
        double s = r->factor * (double)seq_k / r->original - (r->factor - 1);
        default_inv_freq(ntk_base(r->base, s, d), d, pairs, out);
        return;
    }
    if (r->planned && r->inv_freq && r->n_pairs == pairs) memcpy(out, r->inv_freq, (size_t)pairs * sizeof *out);
    else static_inv_freq(r, out);
}
