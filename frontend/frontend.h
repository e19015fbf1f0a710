/* The frontend: source text -> checked IR module. parse (dsl/) -> check + lower (here). */
#ifndef ATTNC_FRONTEND_H
#define ATTNC_FRONTEND_H
#include "frontend/ast.h"
#include "ir/ir.h"

/* Checks names, types and shapes of every kernel and lowers the valid ones to IR.
 * All errors of the file go to d (sorted by location by the caller if wanted). Returns
 * the module (possibly with fewer kernels than the file when some had errors); never
 * NULL. Expressions are folded to constants where the spec fixes them. */
ir_module *frontend_check(const ast_file *f, arena *a, diag_sink *d);

/* parse + check. d must have been initialised with the source (for carets). */
ir_module *frontend_compile(const char *src, size_t len, arena *a, diag_sink *d);

#endif
