/* The AST: a deliberately generic shape. The grammar only knows kernels made of clauses,
 * each clause a keyword followed by a comma-separated argument list of expressions; the
 * checker (frontend/check.c) gives clauses and names their meaning. That keeps the parser
 * small and lets every misuse get a precise diagnostic instead of a syntax error. */
#ifndef ATTNC_AST_H
#define ATTNC_AST_H
#include <stdbool.h>
#include "util/arena.h"
#include "util/diag.h"

typedef enum ast_kind {
    AST_NUMBER,     /* num, is_int */
    AST_IDENT,      /* name */
    AST_UNARY,      /* op, a */
    AST_BINARY,     /* op, a, b */
    AST_TERNARY,    /* a ? b : c */
    AST_CALL,       /* name(items...)   callee is an identifier, its location is name_loc */
    AST_INDEX,      /* name[items...] */
    AST_LIST,       /* [items...] */
    AST_INTERVAL,   /* [items...)  half-open range, e.g. dims = [0, 24) */
    AST_NAMED,      /* name = a      (named argument) */
    AST_TYPED,      /* a : name      (type annotation, e.g. inputs seg[token]: i32) */
} ast_kind;

typedef enum ast_op {
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_IDIV /* // */, OP_MOD, OP_POW /* ^ */, OP_MATMUL /* @ */,
    OP_LT, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE, OP_AND, OP_OR,
    OP_NEG, OP_NOT, OP_PLUS,
} ast_op;

typedef struct ast_node ast_node;
struct ast_node {
    ast_kind kind;
    src_loc loc;            /* the whole node */
    src_loc name_loc;       /* CALL / INDEX / NAMED / TYPED: where the name is */
    ast_op op;
    double num;
    bool is_int;            /* NUMBER written without '.', exponent */
    const char *name;       /* IDENT, CALL, INDEX, NAMED, TYPED (the type name) */
    ast_node *a, *b, *c;
    ast_node **items;       /* CALL, INDEX, LIST, INTERVAL */
    int n_items;
};

typedef struct ast_clause ast_clause;
struct ast_clause {
    const char *keyword;
    src_loc loc;            /* the keyword */
    ast_node **args;
    int n_args;
    ast_clause *next;
};

typedef struct ast_kernel ast_kernel;
struct ast_kernel {
    const char *name;
    src_loc loc;            /* the 'kernel' keyword */
    src_loc name_loc;
    const char *family;     /* text after ':' ("recurrence", "attention") or NULL */
    src_loc family_loc;
    ast_clause *clauses;    /* in source order */
    ast_kernel *next;
};

typedef struct ast_file {
    ast_kernel *kernels;    /* in source order */
    int n_kernels;
} ast_file;

/* Parses src into an AST allocated in `a`. Syntax errors go to `d` (parsing resumes at
 * the next clause or kernel, so one run reports several). Returns NULL only when nothing
 * could be built; check d->n_errors for success. Reentrant: no global state. */
ast_file *dsl_parse(const char *src, size_t len, arena *a, diag_sink *d);

/* Debug/golden printer: one clause per line, expressions fully parenthesised. */
void ast_print(FILE *out, const ast_file *f);
void ast_print_expr(FILE *out, const ast_node *n);

#endif
