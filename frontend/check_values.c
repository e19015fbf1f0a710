/* Constant arguments: a small evaluator over lowered IR (the checker must know heads,
 * dims, scale and rope parameters itself, whatever later passes fold), integer/real
 * argument checks with their messages, and named/positional argument binding. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "frontend/check_internal.h"

/* One swap of neighbouring letters ("hlaf", "dco") is a typo even in a short name,
 * where the edit-distance limit of diag_closest (a third of the length) is too tight. */
static bool one_swap(const char *a, const char *b) {
    size_t n = strlen(a);
    if (n != strlen(b) || n < 2) return false;
    size_t i = 0;
    while (i < n && a[i] == b[i]) i++;
    return i + 1 < n && a[i] == b[i + 1] && a[i + 1] == b[i] && strcmp(a + i + 2, b + i + 2) == 0;
}

const char *closest_name(const char *name, const char *const *candidates, int n) {
    for (int i = 0; i < n; i++)
        if (one_swap(name, candidates[i])) return candidates[i];
    return diag_closest(name, candidates, n);
}

const char *fmt_num(double v, char *buf, size_t n) {
    if (v == 0) v = 0;   /* no "-0" */
    if (isfinite(v) && v == floor(v) && fabs(v) < 1e15) snprintf(buf, n, "%.0f", v);
    else snprintf(buf, n, "%g", v);
    return buf;
}

/* Reports a constant subexpression without a real value at its location. */
static ce_result no_value(kcheck *kc, const ir_expr *e, const char *why) {
    char q[96];
    diag_error(kc->d, e->loc, "%s %s", quote_src(kc, e->loc, "this constant expression", q, sizeof q), why);
    return CE_ERROR;
}

ce_result const_eval(kcheck *kc, const ir_expr *e, double *out) {
    if (!e) return CE_ERROR;
    if (e->op == IR_CONST) { *out = e->value; return CE_CONST; }
    if (e->op == IR_SELECT && e->n_args == 3) {
        /* A constant condition picks one branch; the other is never evaluated. */
        double c;
        ce_result rc = const_eval(kc, e->args[0], &c);
        if (rc == CE_CONST) return const_eval(kc, c != 0 ? e->args[1] : e->args[2], out);
        if (rc == CE_ERROR) return CE_ERROR;
    }
    double v[4] = {0, 0, 0, 0};
    ce_result arg_r[4] = {CE_CONST, CE_CONST, CE_CONST, CE_CONST};
    ce_result r = CE_CONST;
    int n = e->n_args < 0 ? 0 : e->n_args > 4 ? 4 : e->n_args;
    for (int i = 0; i < n; i++) {
        arg_r[i] = const_eval(kc, e->args[i], &v[i]);
        if (arg_r[i] == CE_ERROR) r = CE_ERROR;
        else if (arg_r[i] == CE_VARIABLE && r == CE_CONST) r = CE_VARIABLE;
    }
    if (e->op == IR_VAR || e->op == IR_INPUT) return r == CE_ERROR ? CE_ERROR : CE_VARIABLE;
    /* A constant zero divisor is wrong whatever the dividend is. */
    if ((e->op == IR_DIV || e->op == IR_IDIV || e->op == IR_MOD) && n == 2 &&
        arg_r[1] == CE_CONST && v[1] == 0)
        return no_value(kc, e, "divides by zero; the divisor must be nonzero");
    if (r != CE_CONST) return r;

    char b0[32], b1[128];
    double x = v[0], y = v[1], res;
    switch (e->op) {
    case IR_NEG: res = -x; break;
    case IR_NOT: res = !x; break;
    case IR_EXP: res = exp(x); break;
    case IR_LOG:
        if (x <= 0) {
            snprintf(b1, sizeof b1, "is not a real number: the logarithm needs a positive argument, got %s",
                     fmt_num(x, b0, sizeof b0));
            return no_value(kc, e, b1);
        }
        res = log(x);
        break;
    case IR_TANH: res = tanh(x); break;
    case IR_SQRT:
        if (x < 0) {
            snprintf(b1, sizeof b1, "is not a real number: the square root needs an argument >= 0, got %s",
                     fmt_num(x, b0, sizeof b0));
            return no_value(kc, e, b1);
        }
        res = sqrt(x);
        break;
    case IR_ABS: res = fabs(x); break;
    case IR_FLOOR: res = floor(x); break;
    case IR_TO_FLOAT: res = x; break;
    case IR_ADD: res = x + y; break;
    case IR_SUB: res = x - y; break;
    case IR_MUL: res = x * y; break;
    case IR_DIV: res = x / y; break;
    case IR_IDIV: res = floor(x / y); break;
    case IR_MOD: res = x - y * floor(x / y); break;
    case IR_POW:
        if (x < 0 && y != floor(y))
            return no_value(kc, e, "is not a real number: a negative base needs an integer exponent");
        if (x == 0 && y < 0)
            return no_value(kc, e, "is infinite: zero to a negative power; use a nonzero base");
        res = pow(x, y);
        break;
    case IR_MIN: res = x < y ? x : y; break;
    case IR_MAX: res = x > y ? x : y; break;
    case IR_LT: res = x < y; break;
    case IR_LE: res = x <= y; break;
    case IR_GT: res = x > y; break;
    case IR_GE: res = x >= y; break;
    case IR_EQ: res = x == y; break;
    case IR_NE: res = x != y; break;
    case IR_AND: res = x != 0 && y != 0; break;
    case IR_OR: res = x != 0 || y != 0; break;
    case IR_SELECT: res = x != 0 ? v[1] : v[2]; break;
    default: return CE_VARIABLE;
    }
    if (isnan(res)) return no_value(kc, e, "is not a real number; check the arguments");
    if (e->type == IR_T_INT && fabs(res) > 9007199254740992.0)
        return no_value(kc, e, "overflows the exact integer range (beyond 2^53); use smaller values or a float");
    if (isinf(res))
        return no_value(kc, e, "overflows: its value is beyond the largest 64-bit float (about 1.8e308)");
    *out = res;
    return CE_CONST;
}

bool const_int(kcheck *kc, const ast_node *n, const char *what, long lo, long hi, int *out) {
    if (!n) return false;
    ir_expr *e = lower_expr(kc, n, EX_CONST, what);
    if (!e) return false;
    char q[96], b0[32], b1[32], b2[32];
    /* Quoted only on error paths: quoting scans the source for the line. */
#define QUOTED_VALUE quote_src(kc, n->loc, "the value", q, sizeof q)
    if (e->type == IR_T_BOOL) {
        diag_error(kc->d, n->loc, "%s must be an integer, but %s is a boolean", what, QUOTED_VALUE);
        return false;
    }
    double v;
    ce_result r = const_eval(kc, e, &v);
    if (r == CE_ERROR) return false;
    if (r == CE_VARIABLE) {
        diag_error(kc->d, n->loc, "%s must be a constant; %s depends on run-time values", what, QUOTED_VALUE);
        return false;
    }
    if (e->type == IR_T_FLOAT) {
        if (v == floor(v) && fabs(v) < 1e15) {
            if (n->kind == AST_NUMBER)
                diag_error(kc->d, n->loc, "%s must be an integer, but %s is a real number; write %s", what,
                           QUOTED_VALUE, fmt_num(v, b0, sizeof b0));
            else
                diag_error(kc->d, n->loc,
                           "%s must be an integer, but %s is a real number; write %s, or use '//' for integer division",
                           what, QUOTED_VALUE, fmt_num(v, b0, sizeof b0));
        } else {
            diag_error(kc->d, n->loc, "%s must be an integer, got %s", what, fmt_num(v, b0, sizeof b0));
        }
        return false;
    }
    if (v < (double)lo || v > (double)hi) {
        if (hi >= INT_MAX)
            diag_error(kc->d, n->loc, "%s must be a positive integer, got %s", what, fmt_num(v, b0, sizeof b0));
        else
            diag_error(kc->d, n->loc, "%s must be between %s and %s, got %s", what,
                       fmt_num((double)lo, b1, sizeof b1), fmt_num((double)hi, b2, sizeof b2),
                       fmt_num(v, b0, sizeof b0));
        return false;
    }
    *out = (int)v;
    return true;
#undef QUOTED_VALUE
}

bool const_real(kcheck *kc, const ast_node *n, const char *what, double *out) {
    if (!n) return false;
    ir_expr *e = lower_expr(kc, n, EX_CONST, what);
    if (!e) return false;
    char q[96];
    if (e->type == IR_T_BOOL) {
        diag_error(kc->d, n->loc, "%s must be a number, but %s is a boolean", what,
                   quote_src(kc, n->loc, "the value", q, sizeof q));
        return false;
    }
    double v;
    ce_result r = const_eval(kc, e, &v);
    if (r == CE_ERROR) return false;
    if (r == CE_VARIABLE) {
        diag_error(kc->d, n->loc, "%s must be a constant; %s depends on run-time values", what,
                   quote_src(kc, n->loc, "the value", q, sizeof q));
        return false;
    }
    *out = v;
    return true;
}

/* "q, kv" for messages. */
static void list_names(const param *ps, int n_ps, bool named_only, char *buf, size_t n) {
    buf[0] = 0;
    size_t used = 0;
    for (int i = 0; i < n_ps; i++) {
        if (named_only && !ps[i].named) continue;
        int w = snprintf(buf + used, n - used, "%s%s", used ? ", " : "", ps[i].name);
        if (w < 0 || (size_t)w >= n - used) break;
        used += (size_t)w;
    }
}

bool bind_args(kcheck *kc, const char *owner, src_loc owner_loc, const char *usage,
               ast_node *const *args, int n_args, const param *ps, int n_ps, const ast_node **out) {
    enum { MAX_PARAMS = 8 };
    bool ok = true, seen_named = false, misplaced = false, suggested[MAX_PARAMS] = {false};
    const char *names[MAX_PARAMS];
    int n_named = 0;
    if (n_ps > MAX_PARAMS) n_ps = MAX_PARAMS;
    if (!args) n_args = 0;
    for (int i = 0; i < n_ps; i++) {
        out[i] = NULL;
        if (ps[i].named) names[n_named++] = ps[i].name;
    }
    bool any_positional = false;
    for (int i = 0; i < n_ps; i++) any_positional |= ps[i].positional;
    for (int i = 0; i < n_args; i++) {
        const ast_node *arg = args[i];
        if (!arg) continue;
        if (arg->kind == AST_NAMED) {
            seen_named = true;
            const char *name = arg->name ? arg->name : "";
            int p = -1;
            for (int j = 0; j < n_ps; j++)
                if (ps[j].named && strcmp(ps[j].name, name) == 0) p = j;
            if (p < 0) {
                const char *close = closest_name(name, names, n_named);
                if (close) {
                    diag_error(kc->d, arg->name_loc, "%s has no argument '%s'; did you mean '%s'?", owner, name, close);
                    for (int j = 0; j < n_ps; j++)
                        if (strcmp(ps[j].name, close) == 0) suggested[j] = true;
                } else {
                    char list[128];
                    list_names(ps, n_ps, true, list, sizeof list);
                    if (n_named)
                        diag_error(kc->d, arg->name_loc, "%s has no argument '%s'; its arguments are %s, e.g. '%s'",
                                   owner, name, list, usage);
                    else
                        diag_error(kc->d, arg->name_loc, "%s takes no named arguments; write e.g. '%s'", owner, usage);
                }
                ok = false;
            } else if (out[p]) {
                diag_error(kc->d, arg->name_loc, "'%s' is given twice; give it once", name);
                ok = false;
            } else {
                out[p] = arg->a;
            }
            continue;
        }
        if (!any_positional) {
            diag_error(kc->d, arg->loc, "%s takes named arguments; write e.g. '%s'", owner, usage);
            ok = false;
            misplaced = true;
            continue;
        }
        if (seen_named) {
            diag_error(kc->d, arg->loc, "a positional argument cannot follow named ones; name it, e.g. '%s'", usage);
            ok = false;
            misplaced = true;
            continue;
        }
        int p = -1;
        for (int j = 0; j < n_ps && p < 0; j++)
            if (ps[j].positional && !out[j]) p = j;
        if (p < 0) {
            diag_error(kc->d, arg->loc, "too many arguments for %s; write e.g. '%s'", owner, usage);
            ok = false;
            continue;
        }
        out[p] = arg;
    }
    /* A misplaced argument was probably meant for the missing one: one error is enough. */
    for (int j = 0; j < n_ps && !misplaced; j++) {
        if (!ps[j].required || out[j] || suggested[j]) continue;
        if (ps[j].named)
            diag_error(kc->d, owner_loc, "%s needs '%s = ...'; write e.g. '%s'", owner, ps[j].name, usage);
        else
            diag_error(kc->d, owner_loc, "%s needs %s; write e.g. '%s'", owner, ps[j].name, usage);
        ok = false;
    }
    return ok;
}
