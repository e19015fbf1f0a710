/* The CUDA backend's expression emitter: IR DAG -> straight-line CUDA C. */
#include "codegen/cuda/cuda_expr.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void cuda_format_float(char *buf, size_t len, double v) {
    if (isnan(v)) snprintf(buf, len, "ATTNC_NAN");
    else if (isinf(v)) snprintf(buf, len, v > 0 ? "ATTNC_INF" : "(-ATTNC_INF)");
    else snprintf(buf, len, "%.9ef", v);
}

/* Memo of emitted nodes: DAG node -> SSA index. Linear search is fine for spec-sized DAGs. */
typedef struct memo {
    const ir_expr **node;
    int n, cap;
} memo;

static int memo_find(const memo *m, const ir_expr *e) {
    for (int i = 0; i < m->n; i++)
        if (m->node[i] == e) return i;
    return -1;
}

static int memo_add(memo *m, const ir_expr *e) {
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 32;
        const ir_expr **grown = realloc(m->node, (size_t)m->cap * sizeof *grown);
        if (!grown) abort();   /* out of memory while emitting: nothing sensible remains */
        m->node = grown;
    }
    m->node[m->n] = e;
    return m->n++;
}

static const char *ctype(ir_type t) {
    return t == IR_T_BOOL ? "bool" : t == IR_T_INT ? "int" : "float";
}

/* Each input dimension: which index and what extent. */
static int input_dims(const ir_kernel *k, const ir_input *in, const char **extent, int *axis_of) {
    int n = 0;
    for (int a = 0; a < in->n_axes; a++) {
        switch (in->axes[a]) {
        case IR_AXIS_TOKEN: axis_of[n] = -1; extent[n++] = "batch"; axis_of[n] = IR_AXIS_TOKEN; extent[n++] = "seq"; break;
        case IR_AXIS_HEAD: axis_of[n] = IR_AXIS_HEAD; extent[n++] = "HQ"; break;
        case IR_AXIS_K: axis_of[n] = IR_AXIS_K; extent[n++] = "DQK"; break;
        case IR_AXIS_V: axis_of[n] = IR_AXIS_V; extent[n++] = "DVR"; break;
        }
    }
    (void)k;
    return n;
}

typedef struct emitter {
    FILE *out;
    const ir_kernel *k;
    const cuda_expr_names *names;
    memo m;
} emitter;

static int emit_node(emitter *em, const ir_expr *e);

static void emit_input_read(emitter *em, const ir_expr *e, int id) {
    const ir_kernel *k = em->k;
    const ir_input *in = &k->inputs[e->input];
    const char *extent[8];
    int axis_of[8];
    int nd = input_dims(k, in, extent, axis_of);
    int args[4] = {0};
    for (int i = 0; i < e->n_args; i++) args[i] = emit_node(em, e->args[i]);
    FILE *out = em->out;
    const char *A = em->names->args;
    const char *seq = em->names->var[IR_VAR_SEQ_K] ? em->names->var[IR_VAR_SEQ_K] : "0";
    /* index expression per dim, and a guard that keeps every index inside its extent */
    fprintf(out, "    i64 o%d = 0; bool ok%d = true;\n", id, id);
    int arg = 0;
    for (int d = 0; d < nd; d++) {
        char idx[64], ext[96];
        if (strcmp(extent[d], "batch") == 0) {
            snprintf(idx, sizeof idx, "%s", em->names->var[IR_VAR_BATCH] ? em->names->var[IR_VAR_BATCH] : "0");
            snprintf(ext, sizeof ext, "%s->batch", A);
        } else {
            if (e->n_args == 0) {
                /* recurrence: the current index of that axis, as the caller names it */
                const char *imp = em->names->implicit[axis_of[d]];
                snprintf(idx, sizeof idx, "%s", imp ? imp : "0");
            } else {
                snprintf(idx, sizeof idx, "t%d", args[arg++]);
            }
            if (strcmp(extent[d], "seq") == 0) snprintf(ext, sizeof ext, "(i64)(%s)", seq);
            else snprintf(ext, sizeof ext, "%s", extent[d]);
        }
        fprintf(out, "    ok%d = ok%d && (i64)(%s) >= 0 && (i64)(%s) < %s; o%d += (i64)(%s) * %s->in_st[%d][%d];\n",
                id, id, idx, idx, ext, id, idx, A, e->input, d);
    }
    if (in->scalar == IR_S_I32)
        fprintf(out, "    const int t%d = ok%d ? LDG((const int *)%s->in_ptr[%d] + o%d) : 0;\n", id, id, A, e->input, id);
    else
        fprintf(out, "    const float t%d = ok%d ? LDG((const float *)%s->in_ptr[%d] + o%d) : 0.0f;\n", id, id, A, e->input, id);
}

static int emit_node(emitter *em, const ir_expr *e) {
    int found = memo_find(&em->m, e);
    if (found >= 0) return found;
    int a[4] = {0};
    if (e->op != IR_INPUT)
        for (int i = 0; i < e->n_args; i++) a[i] = emit_node(em, e->args[i]);
    int id = memo_add(&em->m, e);
    FILE *out = em->out;
    const char *ty = ctype(e->type);
    const bool fl = e->type == IR_T_FLOAT;
    switch (e->op) {
    case IR_CONST: {
        char lit[64];
        if (e->type == IR_T_FLOAT) cuda_format_float(lit, sizeof lit, e->value);
        else if (e->type == IR_T_BOOL) snprintf(lit, sizeof lit, "%s", e->value != 0 ? "true" : "false");
        else snprintf(lit, sizeof lit, "%lld", (long long)e->value);
        fprintf(out, "    const %s t%d = %s;\n", ty, id, lit);
        break;
    }
    case IR_VAR: {
        const char *n = em->names->var[e->var];
        fprintf(out, "    const %s t%d = (%s)(%s);\n", ty, id, ty, n ? n : "0");
        break;
    }
    case IR_INPUT: emit_input_read(em, e, id); break;
    case IR_NEG: fprintf(out, "    const %s t%d = -t%d;\n", ty, id, a[0]); break;
    case IR_NOT: fprintf(out, "    const bool t%d = !t%d;\n", id, a[0]); break;
    case IR_EXP: fprintf(out, "    const float t%d = expf(t%d);\n", id, a[0]); break;
    case IR_LOG: fprintf(out, "    const float t%d = logf(t%d);\n", id, a[0]); break;
    case IR_TANH: fprintf(out, "    const float t%d = tanhf(t%d);\n", id, a[0]); break;
    case IR_SQRT: fprintf(out, "    const float t%d = sqrtf(t%d);\n", id, a[0]); break;
    case IR_ABS:
        if (fl) fprintf(out, "    const float t%d = fabsf(t%d);\n", id, a[0]);
        else fprintf(out, "    const int t%d = t%d < 0 ? -t%d : t%d;\n", id, a[0], a[0], a[0]);
        break;
    case IR_FLOOR: fprintf(out, "    const float t%d = floorf(t%d);\n", id, a[0]); break;
    case IR_TO_FLOAT: fprintf(out, "    const float t%d = (float)t%d;\n", id, a[0]); break;
    case IR_ADD: fprintf(out, "    const %s t%d = t%d + t%d;\n", ty, id, a[0], a[1]); break;
    case IR_SUB: fprintf(out, "    const %s t%d = t%d - t%d;\n", ty, id, a[0], a[1]); break;
    case IR_MUL: fprintf(out, "    const %s t%d = t%d * t%d;\n", ty, id, a[0], a[1]); break;
    case IR_DIV: fprintf(out, "    const float t%d = t%d / t%d;\n", id, a[0], a[1]); break;
    case IR_IDIV: fprintf(out, "    const int t%d = attnc_floordiv(t%d, t%d);\n", id, a[0], a[1]); break;
    case IR_MOD: fprintf(out, "    const int t%d = attnc_floormod(t%d, t%d);\n", id, a[0], a[1]); break;
    case IR_POW: fprintf(out, "    const float t%d = attnc_pow(t%d, t%d);\n", id, a[0], a[1]); break;
    case IR_MIN:
        if (fl) fprintf(out, "    const float t%d = fminf(t%d, t%d);\n", id, a[0], a[1]);
        else fprintf(out, "    const int t%d = t%d < t%d ? t%d : t%d;\n", id, a[0], a[1], a[0], a[1]);
        break;
    case IR_MAX:
        if (fl) fprintf(out, "    const float t%d = fmaxf(t%d, t%d);\n", id, a[0], a[1]);
        else fprintf(out, "    const int t%d = t%d > t%d ? t%d : t%d;\n", id, a[0], a[1], a[0], a[1]);
        break;
    case IR_LT: fprintf(out, "    const bool t%d = t%d < t%d;\n", id, a[0], a[1]); break;
    case IR_LE: fprintf(out, "    const bool t%d = t%d <= t%d;\n", id, a[0], a[1]); break;
    case IR_GT: fprintf(out, "    const bool t%d = t%d > t%d;\n", id, a[0], a[1]); break;
    case IR_GE: fprintf(out, "    const bool t%d = t%d >= t%d;\n", id, a[0], a[1]); break;
    case IR_EQ: fprintf(out, "    const bool t%d = t%d == t%d;\n", id, a[0], a[1]); break;
    case IR_NE: fprintf(out, "    const bool t%d = t%d != t%d;\n", id, a[0], a[1]); break;
    case IR_AND: fprintf(out, "    const bool t%d = t%d && t%d;\n", id, a[0], a[1]); break;
    case IR_OR: fprintf(out, "    const bool t%d = t%d || t%d;\n", id, a[0], a[1]); break;
    case IR_SELECT: fprintf(out, "    const %s t%d = t%d ? t%d : t%d;\n", ty, id, a[0], a[1], a[2]); break;
    case IR_OP_COUNT: break;
    }
    return id;
}

void cuda_emit_expr_function(FILE *out, const ir_kernel *k, const ir_expr *e, const char *fn_name,
                             const char *params, const cuda_expr_names *names) {
    emitter em = {out, k, names, {0}};
    fprintf(out, "ATTNC_DEVICE %s %s(%s) {\n", ctype(e->type), fn_name, params);
    /* Every parameter may go unused by a given expression. */
    for (int v = 0; v < IR_VAR_COUNT; v++)
        if (names->var[v] && !strchr(names->var[v], '(') && !strchr(names->var[v], '-'))
            fprintf(out, "    (void)%s;\n", names->var[v]);
    fprintf(out, "    (void)%s;\n", names->args);
    int r = emit_node(&em, e);
    fprintf(out, "    return t%d;\n}\n\n", r);
    free(em.m.node);
}

/* ---------------------------------------------------------------- interval classifier */

/* Interval form of a node: numbers as [lo, hi] doubles (infinite = unknown), booleans as
 * 0 (false), 1 (true), 2 (unknown). */
static int emit_iv(emitter *em, const ir_expr *e) {
    int found = memo_find(&em->m, e);
    if (found >= 0) return found;
    int a[4] = {0};
    if (e->op != IR_INPUT)
        for (int i = 0; i < e->n_args; i++) a[i] = emit_iv(em, e->args[i]);
    int id = memo_add(&em->m, e);
    FILE *out = em->out;
    const bool is_bool = e->type == IR_T_BOOL;
    if (is_bool) fprintf(out, "    int b%d;\n", id);
    else fprintf(out, "    double l%d, h%d;\n", id, id);
    switch (e->op) {
    case IR_CONST:
        if (is_bool) fprintf(out, "    b%d = %d;\n", id, e->value != 0);
        else {
            if (isfinite(e->value)) fprintf(out, "    l%d = h%d = %.17g;\n", id, id, e->value);
            else if (isinf(e->value)) fprintf(out, "    l%d = h%d = %sATTNC_DINF;\n", id, id, e->value < 0 ? "-" : "");
            else fprintf(out, "    l%d = -ATTNC_DINF; h%d = ATTNC_DINF;\n", id, id);
        }
        break;
    case IR_VAR:
        switch (e->var) {
        case IR_VAR_Q_IDX: fprintf(out, "    l%d = (double)q_lo; h%d = (double)q_hi;\n", id, id); break;
        case IR_VAR_KV_IDX: fprintf(out, "    l%d = (double)kv_lo; h%d = (double)kv_hi;\n", id, id); break;
        case IR_VAR_HEAD: fprintf(out, "    l%d = (double)h_lo; h%d = (double)h_hi;\n", id, id); break;
        case IR_VAR_BATCH: fprintf(out, "    l%d = h%d = (double)batch;\n", id, id); break;
        case IR_VAR_SEQ_Q: fprintf(out, "    l%d = h%d = (double)seq_q;\n", id, id); break;
        case IR_VAR_SEQ_K: fprintf(out, "    l%d = h%d = (double)seq_k;\n", id, id); break;
        default: fprintf(out, "    l%d = -ATTNC_DINF; h%d = ATTNC_DINF;\n", id, id); break;
        }
        break;
    case IR_NOT: fprintf(out, "    b%d = b%d == 2 ? 2 : 1 - b%d;\n", id, a[0], a[0]); break;
    case IR_AND:
        fprintf(out, "    b%d = (b%d == 0 || b%d == 0) ? 0 : (b%d == 1 && b%d == 1) ? 1 : 2;\n", id, a[0], a[1], a[0], a[1]);
        break;
    case IR_OR:
        fprintf(out, "    b%d = (b%d == 1 || b%d == 1) ? 1 : (b%d == 0 && b%d == 0) ? 0 : 2;\n", id, a[0], a[1], a[0], a[1]);
        break;
    case IR_LT: case IR_LE: case IR_GT: case IR_GE: {
        if (e->args[0]->type == IR_T_BOOL) { fprintf(out, "    b%d = 2;\n", id); break; }
        /* x < y: true when hx < ly, false when lx >= hy; the others by symmetry */
        int x = a[0], y = a[1];
        if (e->op == IR_GT || e->op == IR_GE) x = a[1], y = a[0];
        const char *lt = (e->op == IR_LT || e->op == IR_GT) ? "<" : "<=";
        const char *ge = (e->op == IR_LT || e->op == IR_GT) ? ">=" : ">";
        fprintf(out, "    b%d = (h%d %s l%d) ? 1 : (l%d %s h%d) ? 0 : 2;\n", id, x, lt, y, x, ge, y);
        break;
    }
    case IR_EQ: case IR_NE:
        if (e->args[0]->type == IR_T_BOOL) {
            fprintf(out, "    b%d = (b%d == 2 || b%d == 2) ? 2 : (b%d == b%d) ? %d : %d;\n", id, a[0], a[1], a[0], a[1],
                    e->op == IR_EQ, e->op != IR_EQ);
        } else {
            fprintf(out, "    b%d = (l%d == h%d && l%d == h%d && l%d == l%d) ? %d : (h%d < l%d || h%d < l%d) ? %d : 2;\n",
                    id, a[0], a[0], a[1], a[1], a[0], a[1], e->op == IR_EQ, a[0], a[1], a[1], a[0], e->op != IR_EQ);
        }
        break;
    case IR_SELECT:
        if (is_bool)
            fprintf(out, "    b%d = b%d == 1 ? b%d : b%d == 0 ? b%d : (b%d == b%d ? b%d : 2);\n", id, a[0], a[1], a[0],
                    a[2], a[1], a[2], a[1]);
        else
            fprintf(out, "    if (b%d == 1) { l%d = l%d; h%d = h%d; } else if (b%d == 0) { l%d = l%d; h%d = h%d; } "
                         "else { l%d = fmin(l%d, l%d); h%d = fmax(h%d, h%d); }\n",
                    a[0], id, a[1], id, a[1], a[0], id, a[2], id, a[2], id, a[1], a[2], id, a[1], a[2]);
        break;
    case IR_NEG: fprintf(out, "    l%d = -h%d; h%d = -l%d;\n", id, a[0], id, a[0]); break;
    case IR_TO_FLOAT: fprintf(out, "    l%d = l%d; h%d = h%d;\n", id, a[0], id, a[0]); break;
    case IR_FLOOR: fprintf(out, "    l%d = floor(l%d); h%d = floor(h%d);\n", id, a[0], id, a[0]); break;
    case IR_ABS:
        fprintf(out, "    if (l%d >= 0) { l%d = l%d; h%d = h%d; } else if (h%d <= 0) { l%d = -h%d; h%d = -l%d; } "
                     "else { l%d = 0; h%d = fmax(-l%d, h%d); }\n",
                a[0], id, a[0], id, a[0], a[0], id, a[0], id, a[0], id, id, a[0], a[0]);
        break;
    case IR_ADD: fprintf(out, "    l%d = l%d + l%d; h%d = h%d + h%d;\n", id, a[0], a[1], id, a[0], a[1]); break;
    case IR_SUB: fprintf(out, "    l%d = l%d - h%d; h%d = h%d - l%d;\n", id, a[0], a[1], id, a[0], a[1]); break;
    case IR_MIN: fprintf(out, "    l%d = fmin(l%d, l%d); h%d = fmin(h%d, h%d);\n", id, a[0], a[1], id, a[0], a[1]); break;
    case IR_MAX: fprintf(out, "    l%d = fmax(l%d, l%d); h%d = fmax(h%d, h%d);\n", id, a[0], a[1], id, a[0], a[1]); break;
    case IR_MUL:
        fprintf(out, "    attnc_iv_mul(l%d, h%d, l%d, h%d, &l%d, &h%d);\n", a[0], a[0], a[1], a[1], id, id);
        break;
    case IR_IDIV: /* floor division by a known positive constant is monotone */
        fprintf(out, "    if (l%d == h%d && l%d > 0 && l%d > -ATTNC_DINF && h%d < ATTNC_DINF) "
                     "{ l%d = floor(l%d / l%d); h%d = floor(h%d / l%d); } else { l%d = -ATTNC_DINF; h%d = ATTNC_DINF; }\n",
                a[1], a[1], a[1], a[0], a[0], id, a[0], a[1], id, a[0], a[1], id, id);
        break;
    case IR_DIV:
        fprintf(out, "    if (l%d == h%d && l%d > 0) { l%d = l%d / l%d; h%d = h%d / l%d; } "
                     "else { l%d = -ATTNC_DINF; h%d = ATTNC_DINF; }\n",
                a[1], a[1], a[1], id, a[0], a[1], id, a[0], a[1], id, id);
        break;
    case IR_MOD: /* x mod c, c > 0 constant: exact when x stays inside one period, else [0, c-1] */
        fprintf(out, "    if (l%d == h%d && l%d > 0 && l%d > -ATTNC_DINF && h%d < ATTNC_DINF) { "
                     "if (floor(l%d / l%d) == floor(h%d / l%d)) { l%d = l%d - l%d * floor(l%d / l%d); h%d = h%d - l%d * floor(h%d / l%d); } "
                     "else { l%d = 0; h%d = l%d - 1; } } else { l%d = -ATTNC_DINF; h%d = ATTNC_DINF; }\n",
                a[1], a[1], a[1], a[0], a[0],
                a[0], a[1], a[0], a[1], id, a[0], a[1], a[0], a[1], id, a[0], a[1], a[0], a[1],
                id, id, a[1], id, id);
        break;
    case IR_EXP: case IR_TANH: /* monotone increasing everywhere */
        fprintf(out, "    l%d = %s(l%d); h%d = %s(h%d);\n", id, e->op == IR_EXP ? "exp" : "tanh", a[0], id,
                e->op == IR_EXP ? "exp" : "tanh", a[0]);
        break;
    case IR_LOG: case IR_SQRT: /* monotone on their domain */
        fprintf(out, "    if (l%d > 0) { l%d = %s(l%d); h%d = %s(h%d); } else { l%d = -ATTNC_DINF; h%d = ATTNC_DINF; }\n",
                a[0], id, e->op == IR_LOG ? "log" : "sqrt", a[0], id, e->op == IR_LOG ? "log" : "sqrt", a[0], id, id);
        break;
    default: /* inputs, powers: unknown */
        if (is_bool) fprintf(out, "    b%d = 2;\n", id);
        else fprintf(out, "    l%d = -ATTNC_DINF; h%d = ATTNC_DINF;\n", id, id);
        break;
    }
    /* A NaN bound (inf - inf, 0 * inf) means nothing is known. */
    if (!is_bool) fprintf(out, "    if (!(l%d <= h%d)) { l%d = -ATTNC_DINF; h%d = ATTNC_DINF; }\n", id, id, id, id);
    return id;
}

void cuda_emit_mask_class_function(FILE *out, const ir_kernel *k, const ir_expr *mask, const char *fn_name) {
    static const cuda_expr_names none = {{0}, "A", {0}};
    emitter em = {out, k, &none, {0}};
    fprintf(out, "ATTNC_DEVICE int %s(i64 q_lo, i64 q_hi, i64 kv_lo, i64 kv_hi, i64 h_lo, i64 h_hi, "
                 "i64 batch, i64 seq_q, i64 seq_k) {\n", fn_name);
    fprintf(out, "    (void)q_lo; (void)q_hi; (void)kv_lo; (void)kv_hi; (void)h_lo; (void)h_hi; (void)batch; "
                 "(void)seq_q; (void)seq_k;\n");
    if (!mask) {
        fprintf(out, "    return 1;\n}\n\n");
        return;
    }
    int r = emit_iv(&em, mask);
    fprintf(out, "    return b%d;\n}\n\n", r);
    free(em.m.node);
}
