/* Diagnostics: the one error path of the compiler. Every stage reports into a sink;
 * nothing prints or exits by itself. Messages read "what is wrong; what would be right". */
#ifndef ATTNC_DIAG_H
#define ATTNC_DIAG_H
#include <stddef.h>
#include <stdio.h>

typedef struct src_loc {          /* 1-based; line 0 means "no location" */
    int line, col;
    int end_line, end_col;        /* inclusive end, for carets spanning a token */
} src_loc;

typedef enum { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE } diag_severity;

typedef struct diag_record {
    diag_severity severity;
    src_loc loc;
    char *message;                /* owned by the sink */
} diag_record;

typedef struct diag_sink {
    const char *path;             /* file name shown in messages ("<string>" for in-memory specs) */
    const char *src;              /* the source text, for the quoted line and caret; may be NULL */
    size_t src_len;
    diag_record *records;
    int n_records, cap_records;
    int n_errors;
    int max_errors;               /* stop recording after this many (0 = 100) */
} diag_sink;

void diag_init(diag_sink *d, const char *path, const char *src, size_t src_len);
void diag_free(diag_sink *d);
void diag_report(diag_sink *d, diag_severity sev, src_loc loc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define diag_error(d, loc, ...) diag_report((d), DIAG_ERROR, (loc), __VA_ARGS__)
#define diag_note(d, loc, ...)  diag_report((d), DIAG_NOTE, (loc), __VA_ARGS__)
/* Prints every record as  path:line:col: error: message  plus the source line and a caret. */
void diag_print(const diag_sink *d, FILE *out);
/* Sorts records by location (stable), so a file's errors print in source order. */
void diag_sort(diag_sink *d);

/* Edit distance for did-you-mean suggestions: the closest of candidates[] to name, or NULL
 * when none is within a third of the name's length (at least 1, at most 3). */
const char *diag_closest(const char *name, const char *const *candidates, int n);

#endif
