/* The AST printer: a canonical, fully parenthesised dump for tests and debugging.
 *
 *   kernel NAME [: FAMILY] {
 *     KEYWORD ARG, ARG
 *   }
 *
 * Operators print as "(a + b)", "(-a)", "(c ? a : b)"; calls f(a, b), indexes x[i],
 * lists [a, b], intervals [a, b); named arguments "name = a" and typed ones "a : type".
 * Integers print without a point; reals always with '.' or an exponent, so the dump
 * reads back as the same numbers. Depth is bounded by the parser (DSL_MAX_NESTING). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "frontend/ast.h"

static const char *op_text(ast_op op) {
    switch (op) {
    case OP_ADD: return "+";
    case OP_SUB: return "-";
    case OP_MUL: return "*";
    case OP_DIV: return "/";
    case OP_IDIV: return "//";
    case OP_MOD: return "%";
    case OP_POW: return "^";
    case OP_MATMUL: return "@";
    case OP_LT: return "<";
    case OP_LE: return "<=";
    case OP_GT: return ">";
    case OP_GE: return ">=";
    case OP_EQ: return "==";
    case OP_NE: return "!=";
    case OP_AND: return "&&";
    case OP_OR: return "||";
    case OP_NEG: return "-";
    case OP_NOT: return "!";
    case OP_PLUS: return "+";
    }
    return "?";
}

static void print_number(FILE *out, const ast_node *n) {
    char buf[64];
    if (n->is_int && fabs(n->num) < 1e18) {
        fprintf(out, "%.0f", n->num);
        return;
    }
    /* The shortest form that reads back as the same double. */
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, n->num);
        if (strtod(buf, NULL) == n->num) break;
    }
    if (!strpbrk(buf, ".eEni")) strcat(buf, ".0");
    fputs(buf, out);
}

static void print_items(FILE *out, ast_node *const *items, int n) {
    for (int i = 0; i < n; i++) {
        if (i) fputs(", ", out);
        ast_print_expr(out, items[i]);
    }
}

void ast_print_expr(FILE *out, const ast_node *n) {
    if (!n) {
        fputs("<null>", out);
        return;
    }
    switch (n->kind) {
    case AST_NUMBER:
        print_number(out, n);
        break;
    case AST_IDENT:
        fputs(n->name, out);
        break;
    case AST_UNARY:
        fprintf(out, "(%s", op_text(n->op));
        ast_print_expr(out, n->a);
        fputc(')', out);
        break;
    case AST_BINARY:
        fputc('(', out);
        ast_print_expr(out, n->a);
        fprintf(out, " %s ", op_text(n->op));
        ast_print_expr(out, n->b);
        fputc(')', out);
        break;
    case AST_TERNARY:
        fputc('(', out);
        ast_print_expr(out, n->a);
        fputs(" ? ", out);
        ast_print_expr(out, n->b);
        fputs(" : ", out);
        ast_print_expr(out, n->c);
        fputc(')', out);
        break;
    case AST_CALL:
        fprintf(out, "%s(", n->name);
        print_items(out, n->items, n->n_items);
        fputc(')', out);
        break;
    case AST_INDEX:
        fprintf(out, "%s[", n->name);
        print_items(out, n->items, n->n_items);
        fputc(']', out);
        break;
    case AST_LIST:
        fputc('[', out);
        print_items(out, n->items, n->n_items);
        fputc(']', out);
        break;
    case AST_INTERVAL:
        fputc('[', out);
        print_items(out, n->items, n->n_items);
        fputc(')', out);
        break;
    case AST_NAMED:
        fprintf(out, "%s = ", n->name);
        ast_print_expr(out, n->a);
        break;
    case AST_TYPED:
        ast_print_expr(out, n->a);
        fprintf(out, " : %s", n->name);
        break;
    }
}

void ast_print(FILE *out, const ast_file *f) {
    if (!f) return;
    for (const ast_kernel *k = f->kernels; k; k = k->next) {
        fprintf(out, "kernel %s", k->name);
        if (k->family) fprintf(out, " : %s", k->family);
        fputs(" {\n", out);
        for (const ast_clause *c = k->clauses; c; c = c->next) {
            fprintf(out, "  %s", c->keyword);
            for (int i = 0; i < c->n_args; i++) {
                fputs(i ? ", " : " ", out);
                ast_print_expr(out, c->args[i]);
            }
            fputc('\n', out);
        }
        fputs("}\n", out);
    }
}
