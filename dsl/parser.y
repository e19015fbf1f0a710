/* The DSL grammar: tokens -> the generic AST of frontend/ast.h. It knows only kernels,
 * clauses, arguments and expressions (dsl/README.md); the checker gives them meaning.
 *
 * Errors: a syntax error is reported in plain words ("unexpected ')' in the arguments of
 * clause 'rope'; expected an expression"), then the parser skips to the end of the
 * clause (or, in a kernel header, to the kernel's '}') and goes on, so one run reports
 * every error of a file. A kernel in which any error was found is left out of the AST,
 * so the checker never sees half-parsed kernels.
 *
 * Limits that keep every later recursive pass safe on hostile input: brackets nest at
 * most DSL_MAX_NESTING deep (the lexer stops there) and no expression tree is deeper
 * than DSL_MAX_NESTING (the clause is dropped with an error). */

%code top {
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
}

%code requires {
#include <stdbool.h>
#include <stddef.h>
#include "frontend/ast.h"

#ifndef YY_TYPEDEF_YY_SCANNER_T
#define YY_TYPEDEF_YY_SCANNER_T
typedef void *yyscan_t;
#endif

enum { DSL_MAX_NESTING = 200 };

typedef struct dsl_parse_ctx dsl_parse_ctx;

/* A number token: its value and whether it was written as an integer. */
typedef struct dsl_number { double value; bool is_int; } dsl_number;
/* An expression and the depth of its tree, to bound the depth of the AST. */
typedef struct dsl_expr { ast_node *node; int depth; } dsl_expr;
/* A growing argument list (arena memory; old arrays are simply abandoned). */
typedef struct dsl_node_vec { ast_node **items; int n, cap, depth; } dsl_node_vec;
}

%code provides {
/* An open ( or [ remembered by the lexer, for error context and unclosed-bracket notes. */
typedef struct dsl_group {
    int open;                   /* LPAREN or LBRACK */
    src_loc loc;
    size_t name_off, name_len;  /* f( or x[ : the name before it in the source, else len 0 */
} dsl_group;

/* Everything one parse needs: the parser's and the lexer's state (no globals). */
struct dsl_parse_ctx {
    arena *arena;
    diag_sink *diag;
    const char *src;
    size_t src_len;
    ast_file *file;
    ast_kernel **kernel_tail;

    /* Parser side. */
    ast_kernel *kernel;         /* the kernel whose body is being parsed, else NULL */
    int kernel_errors_before;   /* diag errors when that kernel started */
    ast_clause **clause_tail;
    const char *clause;         /* keyword of the clause being parsed, else NULL */

    /* Lexer side. */
    int line, col;              /* position of the next byte */
    size_t offset;
    int depth;                  /* open ( and [ */
    dsl_group groups[DSL_MAX_NESTING];
    bool in_header, in_body;    /* after 'kernel' before '{'; between '{' and '}' */
    src_loc body_open_loc;
    int stray_braces;           /* '{' inside a body, dropped with their '}' */
    bool stop;                  /* fatal lexical error: only end of file from now on */
    int pending;                /* token to return next (after an injected '}') */
    YYSTYPE pending_val;
    YYLTYPE pending_loc;
    enum { DSL_INJECT_NONE, DSL_INJECT_KERNEL, DSL_INJECT_EOF } injected;
                                /* the lookahead '}' was invented in place of this token */

    /* The lookahead token, as error messages need it. */
    size_t tok_off, tok_len;
    int tok_depth;              /* open brackets before it */
    bool tok_in_header;
    int last_kind;              /* kind of the last token returned (the lookahead) */
    int prev_kind;              /* the token before it, newlines skipped */
    int last_line, prev_line;   /* where the lookahead and the token before it end */
    size_t last_end_off;
    size_t stray_end_off;       /* end of the last stray character, to report runs once */
};

int yylex(YYSTYPE *yylval_param, YYLTYPE *yylloc_param, yyscan_t yyscanner);
/* lexer.l: scanner over ctx->src[0 .. ctx->src_len). */
int dsl_lex_begin(dsl_parse_ctx *ctx, yyscan_t *scanner);
void dsl_lex_end(yyscan_t scanner);
}

%code {
/* Locations are src_loc (inclusive end); an empty rule sits at the end of what precedes. */
#define YYLLOC_DEFAULT(Cur, Rhs, N)                                             \
    do {                                                                        \
        if (N) {                                                                \
            (Cur).line = YYRHSLOC(Rhs, 1).line;                                 \
            (Cur).col = YYRHSLOC(Rhs, 1).col;                                   \
            (Cur).end_line = YYRHSLOC(Rhs, N).end_line;                         \
            (Cur).end_col = YYRHSLOC(Rhs, N).end_col;                           \
        } else {                                                                \
            (Cur).line = (Cur).end_line = YYRHSLOC(Rhs, 0).end_line;            \
            (Cur).col = (Cur).end_col = YYRHSLOC(Rhs, 0).end_col;               \
        }                                                                       \
    } while (0)

static void yyerror(const YYLTYPE *loc, yyscan_t scanner, dsl_parse_ctx *ctx, const char *msg);
static ast_node *node_new(dsl_parse_ctx *ctx, ast_kind kind, src_loc loc);
static dsl_expr unary(dsl_parse_ctx *ctx, ast_op op, src_loc loc, dsl_expr a);
static dsl_expr binary(dsl_parse_ctx *ctx, ast_op op, src_loc loc, dsl_expr a, dsl_expr b);
static dsl_expr with_items(dsl_parse_ctx *ctx, ast_kind kind, src_loc loc, const char *name,
                           src_loc name_loc, const dsl_node_vec *items);
static dsl_node_vec *vec_push(dsl_parse_ctx *ctx, dsl_node_vec *v, dsl_expr e);
static void kernel_begin(dsl_parse_ctx *ctx, int errors_before, src_loc loc, const char *name,
                         src_loc name_loc, const char *family, src_loc family_loc);
static void kernel_end(dsl_parse_ctx *ctx);
static void clause_add(dsl_parse_ctx *ctx, const char *keyword, src_loc loc, const dsl_node_vec *args);
static void too_deep(dsl_parse_ctx *ctx, src_loc loc);

/* Drops the clause (error recovery) when an expression tree grows too deep. */
#define CHECK_DEPTH(e, loc) do { if ((e).depth > DSL_MAX_NESTING) { too_deep(ctx, (loc)); YYERROR; } } while (0)
}

%define api.pure full
%define api.location.type {src_loc}
%locations
/* 'custom' is 'detailed' (readable token names, exact expected sets) with our own
 * wording: the message names the clause or call being parsed. LAC makes the expected
 * set exact instead of what default reductions leave. */
%define parse.error custom
%define parse.lac full
%param {yyscan_t scanner}
%parse-param {dsl_parse_ctx *ctx}

%union {
    const char *name;
    dsl_number number;
    int errors_before;          /* KERNEL: diag errors before it */
    dsl_expr expr;
    dsl_node_vec *vec;
    int close;                  /* RBRACK or RPAREN */
}

%token END 0 "end of file"
%token <name> IDENT "name"
%token <number> NUMBER "number"
%token <errors_before> KERNEL "'kernel'"
%token NEWLINE "end of line"
%token SEMI "';'" COMMA "','" COLON "':'" QUESTION "'?'" ASSIGN "'='"
%token LPAREN "'('" RPAREN "')'" LBRACK "'['" RBRACK "']'" LBRACE "'{'" RBRACE "'}'"
%token OROR "'||'" ANDAND "'&&'" EQ "'=='" NE "'!='" LT "'<'" LE "'<='" GT "'>'" GE "'>='"
%token PLUS "'+'" MINUS "'-'" STAR "'*'" SLASH "'/'" IDIV "'//'" PERCENT "'%'" AT "'@'"
%token CARET "'^'" BANG "'!'"

/* Loosest first (dsl/README.md): ?:, ||, &&, == !=, < <= > >=, + -, * / // % @,
 * unary - + !, and ^ (right-associative, tighter than unary minus: -2^2 is -(2^2)). */
%right QUESTION COLON
%left OROR
%left ANDAND
%left EQ NE
%left LT LE GT GE
%left PLUS MINUS
%left STAR SLASH IDIV PERCENT AT
%precedence UNARY
%right CARET

%type <expr> expr primary arg
%type <vec> args_opt arglist
%type <name> family
%type <close> close

%expect 0

%%

file
    : %empty
    | file sep                  { yyerrok; }
    | file kernel
    | file error            /* junk outside kernels: skip to the next line or 'kernel' */
    ;

sep : NEWLINE | SEMI ;

nls : %empty | nls NEWLINE ;

kernel
    : kernel_head body RBRACE   { kernel_end(ctx); yyerrok; }
    | KERNEL error RBRACE       { ctx->kernel = NULL; ctx->clause = NULL; yyerrok; }  /* broken header: skip the kernel */
    ;

kernel_head
    : KERNEL IDENT family nls LBRACE  { kernel_begin(ctx, $1, @1, $2, @2, $3, @3); }
    ;

family
    : %empty                    { $$ = NULL; }
    | COLON IDENT               { $$ = $2; @$ = @2; }
    ;

/* Clauses separated by newlines or ';', blank lines anywhere; the last clause may be
 * followed directly by '}' (one-line kernels). Every clause start can take `error`. */
body
    : items
    | items clause
    ;

items
    : %empty
    | items sep
    | items clause sep          { yyerrok; }  /* a clause after an error is checked again */
    ;

clause
    : IDENT                     { ctx->clause = $1; }
      args_opt                  { clause_add(ctx, $1, @1, $3); ctx->clause = NULL; }
    | error                     { ctx->clause = NULL; }  /* skip to the end of the clause */
    ;

args_opt
    : %empty                    { $$ = NULL; }
    | arglist
    ;

/* A trailing comma continues the clause on the next line. */
arglist
    : arg                       { $$ = vec_push(ctx, NULL, $1); }
    | arglist COMMA nls arg     { $$ = vec_push(ctx, $1, $4); }
    ;

arg
    : expr
    | IDENT ASSIGN expr         {
                                    $$.node = node_new(ctx, AST_NAMED, @$);
                                    $$.node->name = $1;
                                    $$.node->name_loc = @1;
                                    $$.node->a = $3.node;
                                    $$.depth = $3.depth + 1;
                                    CHECK_DEPTH($$, @$);
                                }
    | expr COLON IDENT          {
                                    $$.node = node_new(ctx, AST_TYPED, @$);
                                    $$.node->name = $3;
                                    $$.node->name_loc = @3;
                                    $$.node->a = $1.node;
                                    $$.depth = $1.depth + 1;
                                    CHECK_DEPTH($$, @$);
                                }
    ;

expr
    : primary
    | MINUS expr %prec UNARY    { $$ = unary(ctx, OP_NEG, @$, $2); CHECK_DEPTH($$, @$); }
    | PLUS expr %prec UNARY     { $$ = unary(ctx, OP_PLUS, @$, $2); CHECK_DEPTH($$, @$); }
    | BANG expr %prec UNARY     { $$ = unary(ctx, OP_NOT, @$, $2); CHECK_DEPTH($$, @$); }
    | expr CARET expr           { $$ = binary(ctx, OP_POW, @$, $1, $3); CHECK_DEPTH($$, @$); }
    | expr STAR expr            { $$ = binary(ctx, OP_MUL, @$, $1, $3); CHECK_DEPTH($$, @$); }
    | expr SLASH expr           { $$ = binary(ctx, OP_DIV, @$, $1, $3); CHECK_DEPTH($$, @$); }
    | expr IDIV expr            { $$ = binary(ctx, OP_IDIV, @$, $1, $3); CHECK_DEPTH($$, @$); }
    | expr PERCENT expr         { $$ = binary(ctx, OP_MOD, @$, $1, $3); CHECK_DEPTH($$, @$); }
    | expr AT expr              { $$ = binary(ctx, OP_MATMUL, @$, $1, $3); CHECK_DEPTH($$, @$); }
    | expr PLUS expr            { $$ = binary(ctx, OP_ADD, @$, $1, $3); CHECK_DEPTH($$, @$); }
    | expr MINUS expr           { $$ = binary(ctx, OP_SUB, @$, $1, $3); CHECK_DEPTH($$, @$); }
    | expr LT expr              { $$ = binary(ctx, OP_LT, @$, $1, $3); CHECK_DEPTH($$, @$); }
    | expr LE expr              { $$ = binary(ctx, OP_LE, @$, $1, $3); CHECK_DEPTH($$, @$); }
    | expr GT expr              { $$ = binary(ctx, OP_GT, @$, $1, $3); CHECK_DEPTH($$, @$); }
    | expr GE expr              { $$ = binary(ctx, OP_GE, @$, $1, $3); CHECK_DEPTH($$, @$); }
    | expr EQ expr              { $$ = binary(ctx, OP_EQ, @$, $1, $3); CHECK_DEPTH($$, @$); }
    | expr NE expr              { $$ = binary(ctx, OP_NE, @$, $1, $3); CHECK_DEPTH($$, @$); }
    | expr ANDAND expr          { $$ = binary(ctx, OP_AND, @$, $1, $3); CHECK_DEPTH($$, @$); }
    | expr OROR expr            { $$ = binary(ctx, OP_OR, @$, $1, $3); CHECK_DEPTH($$, @$); }
    | expr QUESTION expr COLON expr {
                                    $$.node = node_new(ctx, AST_TERNARY, @$);
                                    $$.node->a = $1.node;
                                    $$.node->b = $3.node;
                                    $$.node->c = $5.node;
                                    int d = $1.depth > $3.depth ? $1.depth : $3.depth;
                                    $$.depth = 1 + (d > $5.depth ? d : $5.depth);
                                    CHECK_DEPTH($$, @$);
                                }
    ;

/* `[a, b]` is a list and `[a, b)` a half-open interval: one rule, the closing token decides. */
primary
    : NUMBER                    {
                                    $$.node = node_new(ctx, AST_NUMBER, @$);
                                    $$.node->num = $1.value;
                                    $$.node->is_int = $1.is_int;
                                    $$.depth = 1;
                                }
    | IDENT                     {
                                    $$.node = node_new(ctx, AST_IDENT, @$);
                                    $$.node->name = $1;
                                    $$.depth = 1;
                                }
    | IDENT LPAREN args_opt RPAREN {
                                    $$ = with_items(ctx, AST_CALL, @$, $1, @1, $3);
                                    CHECK_DEPTH($$, @$);
                                }
    | IDENT LBRACK arglist close {
                                    if ($4 == RPAREN)
                                        diag_error(ctx->diag, @4, "the index of '%s' ends with ')'; close it with ']'", $1);
                                    $$ = with_items(ctx, AST_INDEX, @$, $1, @1, $3);
                                    CHECK_DEPTH($$, @$);
                                }
    | LBRACK args_opt close     {
                                    $$ = with_items(ctx, $3 == RPAREN ? AST_INTERVAL : AST_LIST, @$, NULL, @$, $2);
                                    CHECK_DEPTH($$, @$);
                                }
    | LPAREN expr RPAREN        { $$ = $2; }
    ;

close
    : RBRACK                    { $$ = RBRACK; }
    | RPAREN                    { $$ = RPAREN; }
    ;

%%

static ast_node *node_new(dsl_parse_ctx *ctx, ast_kind kind, src_loc loc) {
    ast_node *n = arena_alloc(ctx->arena, sizeof *n);
    n->kind = kind;
    n->loc = loc;
    return n;
}

static dsl_expr unary(dsl_parse_ctx *ctx, ast_op op, src_loc loc, dsl_expr a) {
    dsl_expr e = {node_new(ctx, AST_UNARY, loc), a.depth + 1};
    e.node->op = op;
    e.node->a = a.node;
    return e;
}

static dsl_expr binary(dsl_parse_ctx *ctx, ast_op op, src_loc loc, dsl_expr a, dsl_expr b) {
    dsl_expr e = {node_new(ctx, AST_BINARY, loc), 1 + (a.depth > b.depth ? a.depth : b.depth)};
    e.node->op = op;
    e.node->a = a.node;
    e.node->b = b.node;
    return e;
}

static dsl_expr with_items(dsl_parse_ctx *ctx, ast_kind kind, src_loc loc, const char *name,
                           src_loc name_loc, const dsl_node_vec *items) {
    dsl_expr e = {node_new(ctx, kind, loc), 1};
    if (name) {
        e.node->name = name;
        e.node->name_loc = name_loc;
    }
    if (items) {
        e.node->items = items->items;
        e.node->n_items = items->n;
        e.depth = items->depth + 1;
    }
    return e;
}

static dsl_node_vec *vec_push(dsl_parse_ctx *ctx, dsl_node_vec *v, dsl_expr e) {
    if (!v) v = arena_alloc(ctx->arena, sizeof *v);
    if (v->n == v->cap) {
        int cap = v->cap ? 2 * v->cap : 4;
        ast_node **items = arena_calloc(ctx->arena, (size_t)cap, sizeof *items);
        if (v->n) memcpy(items, v->items, (size_t)v->n * sizeof *items);
        v->items = items;
        v->cap = cap;
    }
    v->items[v->n++] = e.node;
    if (e.depth > v->depth) v->depth = e.depth;
    return v;
}

static void too_deep(dsl_parse_ctx *ctx, src_loc loc) {
    diag_error(ctx->diag, loc, "expression nested more than %d levels deep; split it into simpler parts",
               DSL_MAX_NESTING);
}

static void kernel_begin(dsl_parse_ctx *ctx, int errors_before, src_loc loc, const char *name,
                         src_loc name_loc, const char *family, src_loc family_loc) {
    ast_kernel *k = arena_alloc(ctx->arena, sizeof *k);
    k->name = name;
    k->loc = loc;
    k->name_loc = name_loc;
    k->family = family;
    if (family) k->family_loc = family_loc;
    ctx->kernel = k;
    ctx->kernel_errors_before = errors_before;
    ctx->clause_tail = &k->clauses;
    ctx->clause = NULL;
}

/* A kernel joins the file only if no error was reported since its 'kernel' keyword. */
static void kernel_end(dsl_parse_ctx *ctx) {
    ast_kernel *k = ctx->kernel;
    ctx->kernel = NULL;
    ctx->clause = NULL;
    if (!k || ctx->diag->n_errors != ctx->kernel_errors_before) return;
    *ctx->kernel_tail = k;
    ctx->kernel_tail = &k->next;
    ctx->file->n_kernels++;
}

static void clause_add(dsl_parse_ctx *ctx, const char *keyword, src_loc loc, const dsl_node_vec *args) {
    if (!ctx->kernel) return;
    ast_clause *c = arena_alloc(ctx->arena, sizeof *c);
    c->keyword = keyword;
    c->loc = loc;
    if (args) {
        c->args = args->items;
        c->n_args = args->n;
    }
    *ctx->clause_tail = c;
    ctx->clause_tail = &c->next;
}

/* ---- Syntax error messages ------------------------------------------------------ */

typedef struct msg_buf { char text[640]; size_t len; } msg_buf;

static void msg_add(msg_buf *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void msg_add(msg_buf *m, const char *fmt, ...) {
    if (m->len >= sizeof m->text - 1) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(m->text + m->len, sizeof m->text - m->len, fmt, ap);
    va_end(ap);
    if (n > 0) m->len += (size_t)n;
    if (m->len > sizeof m->text - 1) m->len = sizeof m->text - 1;
}

static bool is_binary_operator(yysymbol_kind_t s) {
    switch (s) {
    case YYSYMBOL_OROR: case YYSYMBOL_ANDAND: case YYSYMBOL_EQ: case YYSYMBOL_NE:
    case YYSYMBOL_LT: case YYSYMBOL_LE: case YYSYMBOL_GT: case YYSYMBOL_GE:
    case YYSYMBOL_PLUS: case YYSYMBOL_MINUS: case YYSYMBOL_STAR: case YYSYMBOL_SLASH:
    case YYSYMBOL_IDIV: case YYSYMBOL_PERCENT: case YYSYMBOL_AT: case YYSYMBOL_CARET:
    case YYSYMBOL_QUESTION:
        return true;
    default:
        return false;
    }
}

static bool is_expression_start(yysymbol_kind_t s) {
    return s == YYSYMBOL_IDENT || s == YYSYMBOL_NUMBER || s == YYSYMBOL_LPAREN || s == YYSYMBOL_LBRACK ||
           s == YYSYMBOL_MINUS || s == YYSYMBOL_PLUS || s == YYSYMBOL_BANG;
}

/* What a name would be at this spot, in the user's terms. */
static const char *name_role(const dsl_parse_ctx *ctx) {
    if (ctx->prev_kind == KERNEL) return "the kernel's name";
    if (ctx->tok_in_header && ctx->prev_kind == COLON) return "a kernel family such as 'recurrence'";
    if (ctx->prev_kind == COLON) return "a type name such as 'i32'";
    if (ctx->kernel && !ctx->clause && ctx->tok_depth == 0) return "a clause name";
    return "a name";
}

/* Turns bison's expected-token set into "an expression, ',' or end of line". */
static void describe_expected(const dsl_parse_ctx *ctx, msg_buf *m, const yysymbol_kind_t *exp, int n) {
    bool has[YYNTOKENS] = {false};
    for (int i = 0; i < n; i++)
        if (exp[i] >= 0 && exp[i] < YYNTOKENS) has[exp[i]] = true;
    bool expression = has[YYSYMBOL_NUMBER];
    bool operator = has[YYSYMBOL_STAR];
    bool end_of_line = has[YYSYMBOL_NEWLINE];
    bool name = !expression && has[YYSYMBOL_IDENT];

    if (expression)
        for (int s = 0; s < YYNTOKENS; s++)
            if (is_expression_start((yysymbol_kind_t)s)) has[s] = false;
    if (operator) {
        for (int s = 0; s < YYNTOKENS; s++)
            if (is_binary_operator((yysymbol_kind_t)s)) has[s] = false;
        has[YYSYMBOL_LPAREN] = has[YYSYMBOL_LBRACK] = false;  /* call / index after a name */
        /* ':' after a whole argument is a rare type annotation; list it only when it is
         * the ':' of a '?:' that must come. */
        if (has[YYSYMBOL_COMMA] || end_of_line || has[YYSYMBOL_RPAREN] || has[YYSYMBOL_RBRACK])
            has[YYSYMBOL_COLON] = false;
    }
    if (ctx->tok_in_header && has[YYSYMBOL_LBRACE]) end_of_line = false;  /* '{' may go on the next line */
    if (ctx->prev_kind == COMMA) end_of_line = false;                    /* the clause goes on */
    bool clause_start = ctx->kernel && !ctx->clause && ctx->tok_depth == 0 && name;
    if (clause_start) end_of_line = has[YYSYMBOL_SEMI] = false;          /* blank lines are fine */
    if (!ctx->kernel && has[YYSYMBOL_KERNEL]) end_of_line = false;       /* top level: only kernels */
    if (end_of_line) has[YYSYMBOL_SEMI] = has[YYSYMBOL_RBRACE] = has[YYSYMBOL_KERNEL] = has[YYSYMBOL_YYEOF] = false;
    if (has[YYSYMBOL_KERNEL]) has[YYSYMBOL_SEMI] = has[YYSYMBOL_YYEOF] = false;
    has[YYSYMBOL_NEWLINE] = has[YYSYMBOL_IDENT] = has[YYSYMBOL_NUMBER] = has[YYSYMBOL_YYerror] = false;

    const char *parts[YYNTOKENS + 4];
    int k = 0;
    if (expression) parts[k++] = "an expression";
    if (name) parts[k++] = name_role(ctx);
    for (int s = 0; s < YYNTOKENS; s++)
        if (has[s]) parts[k++] = yysymbol_name((yysymbol_kind_t)s);
    if (operator) parts[k++] = "an operator";
    if (end_of_line) parts[k++] = "end of line";
    if (k == 0) return;
    msg_add(m, "; expected ");
    for (int i = 0; i < k; i++)
        msg_add(m, "%s%s", i == 0 ? "" : i == k - 1 ? " or " : ", ", parts[i]);
}

/* Where the error is: the innermost call, index, list or parentheses, else the clause. */
static void describe_context(const dsl_parse_ctx *ctx, msg_buf *m) {
    if (ctx->tok_depth > 0 && ctx->tok_depth <= DSL_MAX_NESTING) {
        const dsl_group *g = &ctx->groups[ctx->tok_depth - 1];
        int nl = (int)g->name_len;
        const char *name = ctx->src + g->name_off;
        if (g->open == LPAREN && nl)
            msg_add(m, " in the arguments of '%.*s'", nl, name);
        else if (g->open == LPAREN)
            msg_add(m, " inside parentheses");
        else if (nl)
            msg_add(m, " in the index of '%.*s'", nl, name);
        else
            msg_add(m, " in the list");
    } else if (ctx->clause) {
        msg_add(m, " in the arguments of clause '%.40s'", ctx->clause);
    } else if (ctx->kernel) {
        msg_add(m, " in kernel '%.40s'", ctx->kernel->name);
    } else if (ctx->tok_in_header) {
        msg_add(m, " in the kernel header");
    } else {
        msg_add(m, " at the top level");
    }
}

static int yyreport_syntax_error(const yypcontext_t *yyctx, yyscan_t scanner, dsl_parse_ctx *ctx) {
    (void)scanner;
    if (ctx->stop) return 0;
    yysymbol_kind_t found = yypcontext_token(yyctx);
    if (found == YYSYMBOL_RBRACE && ctx->injected == DSL_INJECT_KERNEL) found = YYSYMBOL_KERNEL;
    if (found == YYSYMBOL_RBRACE && ctx->injected == DSL_INJECT_EOF) found = YYSYMBOL_YYEOF;

    msg_buf m = {{0}, 0};
    int tl = ctx->tok_len > 40 ? 40 : (int)ctx->tok_len;
    const char *text = ctx->src + ctx->tok_off;
    if (found == YYSYMBOL_IDENT)
        msg_add(&m, "unexpected name '%.*s%s'", tl, text, ctx->tok_len > 40 ? "..." : "");
    else if (found == YYSYMBOL_NUMBER)
        msg_add(&m, "unexpected number '%.*s%s'", tl, text, ctx->tok_len > 40 ? "..." : "");
    else
        msg_add(&m, "unexpected %s", yysymbol_name(found));
    describe_context(ctx, &m);

    yysymbol_kind_t expected[YYNTOKENS];
    int n = yypcontext_expected_tokens(yyctx, expected, YYNTOKENS);
    if (n > 0) describe_expected(ctx, &m, expected, n);
    diag_error(ctx->diag, *yypcontext_location(yyctx), "%s", m.text);
    /* This error belongs to the kernel being closed, not to the one whose 'kernel' waits. */
    if (ctx->injected == DSL_INJECT_KERNEL && ctx->pending == KERNEL)
        ctx->pending_val.errors_before = ctx->diag->n_errors;

    /* Running into the end of the kernel or file, or into the next line, inside brackets:
     * most likely a bracket was not closed, so show where it opened. */
    bool ends = found == YYSYMBOL_YYEOF || found == YYSYMBOL_RBRACE || found == YYSYMBOL_KERNEL;
    bool next_line = yypcontext_location(yyctx)->line > ctx->prev_line;
    if ((ends || next_line) && ctx->tok_depth > 0 && ctx->tok_depth <= DSL_MAX_NESTING) {
        const dsl_group *g = &ctx->groups[ctx->tok_depth - 1];
        diag_note(ctx->diag, g->loc, "the '%c' opened here is still open", g->open == LPAREN ? '(' : '[');
    }
    return 0;
}

static void yyerror(const YYLTYPE *loc, yyscan_t scanner, dsl_parse_ctx *ctx, const char *msg) {
    (void)scanner;
    if (ctx->stop) return;
    if (strcmp(msg, "memory exhausted") == 0)
        diag_error(ctx->diag, *loc, "the input is nested too deeply to parse; simplify the expression");
    else
        diag_error(ctx->diag, *loc, "%s", msg);
    ctx->stop = true;
}

/* The largest source we accept; keeps line, column and offset arithmetic far from overflow. */
#define DSL_MAX_SOURCE ((size_t)1 << 30)

ast_file *dsl_parse(const char *src, size_t len, arena *a, diag_sink *d) {
    const src_loc nowhere = {0, 0, 0, 0};
    if (!src) {
        src = "";
        len = 0;
    }
    if (len > DSL_MAX_SOURCE) {
        diag_error(d, nowhere, "the source is too large (%zu bytes); the limit is %zu bytes",
                   len, DSL_MAX_SOURCE);
        return NULL;
    }
    /* The context holds the bracket stack; it is a few kilobytes, so keep it off the stack. */
    dsl_parse_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        diag_error(d, nowhere, "out of memory");
        return NULL;
    }
    ctx->arena = a;
    ctx->diag = d;
    ctx->src = src;
    ctx->src_len = len;
    ctx->file = arena_alloc(a, sizeof *ctx->file);
    ctx->kernel_tail = &ctx->file->kernels;
    ctx->line = 1;
    ctx->col = 1;
    ast_file *file = ctx->file;
    yyscan_t scanner;
    if (dsl_lex_begin(ctx, &scanner) != 0) {
        diag_error(d, nowhere, "out of memory");
        free(ctx);
        return NULL;
    }
    yyparse(scanner, ctx);
    dsl_lex_end(scanner);
    free(ctx);
    return file;
}
