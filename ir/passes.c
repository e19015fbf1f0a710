/* The IR pass pipeline: a flat list of passes run in order over every kernel, each
 * optionally followed by a dump (`attnc ir --dump-after=PASS`). Every pass is idempotent,
 * so running the pipeline twice changes nothing. */
#include <string.h>
#include "ir/ir.h"
#include "ir/mask.h"

static bool pass_verify(ir_module *m, ir_kernel *k, diag_sink *d) {
    (void)m;
    return ir_verify_kernel(k, d);
}

/* Folds every expression slot; the softmax scale becomes scale_value. */
static bool pass_fold_constants(ir_module *m, ir_kernel *k, diag_sink *d) {
    arena *a = m->arena;
    k->scale = ir_fold(a, k->scale);
    k->score_mod = ir_fold(a, k->score_mod);
    k->mask = ir_fold(a, k->mask);
    k->decay = ir_fold(a, k->decay);
    k->log_decay = ir_fold(a, k->log_decay);
    k->feature = ir_fold(a, k->feature);
    k->v_scale = ir_fold(a, k->v_scale);
    k->skip = ir_fold(a, k->skip);
    if (k->family != IR_SOFTMAX) return true;
    if (!k->scale || k->scale->op != IR_CONST) {
        diag_error(d, k->scale ? k->scale->loc : k->loc,
                   "internal: kernel '%s': scale did not fold to a constant", k->name);
        return false;
    }
    /* An already planned RoPE has had its factor applied: keep it on a re-run. */
    k->scale_value = k->scale->value * (k->rope.planned ? k->rope.attn_factor : 1.0);
    return true;
}

/* Frequencies and axes of every rotary pair; YaRN's temperature joins the scale once. */
static bool pass_plan_rope(ir_module *m, ir_kernel *k, diag_sink *d) {
    (void)d;
    if (k->family != IR_SOFTMAX || k->rope.layout == IR_ROPE_NONE || k->rope.planned) return true;
    ir_rope_plan(&k->rope, m->arena);
    if (k->rope.planned) k->scale_value *= k->rope.attn_factor;
    return true;
}

/* score = scale·q·k, so multiplying q by the scale on load is always exact in meaning:
 * the backends do that and the `score` a modifier sees already includes the scale. */
static bool pass_fold_scale(ir_module *m, ir_kernel *k, diag_sink *d) {
    (void)m;
    (void)d;
    if (k->family == IR_SOFTMAX) k->scale_in_q = true;
    return true;
}

static bool pass_analyze_mask(ir_module *m, ir_kernel *k, diag_sink *d) {
    (void)m;
    (void)d;
    if (k->family == IR_SOFTMAX) k->band = ir_mask_find_band(k->mask);
    return true;
}

/* The strongest axis any input read by e has: V > K > TOKEN > none. Reading batch makes a
 * value vary beyond the head, like a token-dependent one. */
static ir_decay_kind decay_kind_of(const ir_kernel *k, const ir_expr *e) {
    if (!e) return IR_DECAY_HEAD;
    ir_decay_kind kind = IR_DECAY_HEAD;
    if (e->op == IR_VAR && e->var == IR_VAR_BATCH) kind = IR_DECAY_TOKEN_HEAD;
    if (e->op == IR_INPUT && e->input >= 0 && e->input < k->n_inputs) {
        const ir_input *in = &k->inputs[e->input];
        for (int a = 0; a < in->n_axes; a++) {
            ir_decay_kind ak = in->axes[a] == IR_AXIS_V ? IR_DECAY_STATE
                             : in->axes[a] == IR_AXIS_K ? IR_DECAY_KEY_VECTOR
                             : in->axes[a] == IR_AXIS_TOKEN ? IR_DECAY_TOKEN_HEAD : IR_DECAY_HEAD;
            if (ak > kind) kind = ak;
        }
    }
    for (int i = 0; i < e->n_args; i++) {
        ir_decay_kind ak = decay_kind_of(k, e->args[i]);
        if (ak > kind) kind = ak;
    }
    return kind;
}

static bool pass_classify_decay(ir_module *m, ir_kernel *k, diag_sink *d) {
    (void)m;
    (void)d;
    if (k->family != IR_RECURRENCE) return true;
    k->decay_kind = k->decay ? decay_kind_of(k, k->decay) : IR_DECAY_NONE;
    if (k->decay && k->decay->op == IR_EXP) k->log_decay = k->decay->args[0];
    return true;
}

static const ir_pass PASSES[] = {
    {"verify", "check the IR's structural invariants", pass_verify},
    {"fold-constants", "fold constant subexpressions; compute scale_value", pass_fold_constants},
    {"plan-rope", "compute RoPE frequencies and axes; apply attn_factor to the scale", pass_plan_rope},
    {"fold-scale", "apply the softmax scale to q on load (scale_in_q)", pass_fold_scale},
    {"analyze-mask", "find the band q_idx - kv_idx the mask implies", pass_analyze_mask},
    {"classify-decay", "classify a recurrence's decay; extract log_decay of exp(x)", pass_classify_decay},
    {"verify", "check the IR's structural invariants", pass_verify},
};

const ir_pass *ir_pass_list(int *n) {
    *n = (int)(sizeof PASSES / sizeof PASSES[0]);
    return PASSES;
}

bool ir_run_pipeline(ir_module *m, diag_sink *d, const char *dump_after, FILE *dump) {
    int n;
    const ir_pass *passes = ir_pass_list(&n);
    bool dump_all = dump && dump_after && strcmp(dump_after, "all") == 0;
    if (dump && dump_after && !dump_all) {
        bool known = false;
        for (int i = 0; i < n; i++) known |= strcmp(passes[i].name, dump_after) == 0;
        if (!known) {
            src_loc none = {0, 0, 0, 0};
            diag_error(d, none, "unknown pass '%s' to dump after; use all, verify, fold-constants, plan-rope, "
                       "fold-scale, analyze-mask or classify-decay", dump_after);
            return false;
        }
    }
    for (int i = 0; i < n; i++) {
        /* every kernel gets the pass, so one run reports the errors of all of them */
        bool ok = true;
        for (int j = 0; j < m->n_kernels; j++) ok &= passes[i].run(m, m->kernels[j], d);
        if (!ok) return false;   /* later passes may assume what this one checked */
        if (dump && (dump_all || (dump_after && strcmp(dump_after, passes[i].name) == 0))) {
            fprintf(dump, "# after %s\n", passes[i].name);
            ir_print_module(dump, m);
        }
    }
    return true;
}
