#include "util/diag.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void diag_init(diag_sink *d, const char *path, const char *src, size_t src_len) {
    memset(d, 0, sizeof *d);
    d->path = path ? path : "<string>";
    d->src = src;
    d->src_len = src_len;
    d->max_errors = 100;
}

void diag_free(diag_sink *d) {
    for (int i = 0; i < d->n_records; i++) free(d->records[i].message);
    free(d->records);
    d->records = NULL;
    d->n_records = d->cap_records = 0;
}

void diag_report(diag_sink *d, diag_severity sev, src_loc loc, const char *fmt, ...) {
    if (sev == DIAG_ERROR) d->n_errors++;
    if (d->n_records >= d->max_errors) return;
    if (d->n_records == d->cap_records) {
        int cap = d->cap_records ? 2 * d->cap_records : 8;
        diag_record *r = realloc(d->records, (size_t)cap * sizeof *r);
        if (!r) return;
        d->records = r;
        d->cap_records = cap;
    }
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *msg = malloc((size_t)(n < 0 ? 0 : n) + 1);
    if (!msg) { va_end(ap2); return; }
    vsnprintf(msg, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    d->records[d->n_records++] = (diag_record){sev, loc, msg};
}

static int loc_before(src_loc a, src_loc b) {
    return a.line < b.line || (a.line == b.line && a.col < b.col);
}

void diag_sort(diag_sink *d) {
    /* A note belongs to the record before it, so groups (a record and its notes) move
     * together, ordered by their head's location. Stable insertion sort over groups:
     * records are few, and equal locations keep report order. */
    int n = d->n_records;
    if (n < 2) return;
    diag_record *tmp = malloc((size_t)n * sizeof *tmp);
    int *head = malloc((size_t)n * sizeof *head);   /* group start indices, in sorted order */
    if (!tmp || !head) { free(tmp); free(head); return; }
    int groups = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && d->records[i].severity == DIAG_NOTE) continue;
        int j = groups++;
        while (j > 0 && loc_before(d->records[i].loc, d->records[head[j - 1]].loc)) {
            head[j] = head[j - 1];
            j--;
        }
        head[j] = i;
    }
    int out = 0;
    for (int g = 0; g < groups; g++) {
        int i = head[g];
        do tmp[out++] = d->records[i++];
        while (i < n && d->records[i].severity == DIAG_NOTE);
    }
    memcpy(d->records, tmp, (size_t)n * sizeof *tmp);
    free(tmp);
    free(head);
}

static const char *sev_name(diag_severity s) {
    return s == DIAG_ERROR ? "error" : s == DIAG_WARNING ? "warning" : "note";
}

/* Finds line `line` (1-based) of the source; returns its start and length. */
static const char *source_line(const diag_sink *d, int line, size_t *len) {
    if (!d->src || line < 1) return NULL;
    const char *p = d->src, *end = d->src + d->src_len;
    for (int l = 1; l < line; l++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) return NULL;
        p = nl + 1;
    }
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    *len = (size_t)((nl ? nl : end) - p);
    return p;
}

void diag_print(const diag_sink *d, FILE *out) {
    for (int i = 0; i < d->n_records; i++) {
        const diag_record *r = &d->records[i];
        if (r->loc.line > 0)
            fprintf(out, "%s:%d:%d: %s: %s\n", d->path, r->loc.line, r->loc.col, sev_name(r->severity), r->message);
        else
            fprintf(out, "%s: %s: %s\n", d->path, sev_name(r->severity), r->message);
        size_t len = 0;
        const char *ln = source_line(d, r->loc.line, &len);
        if (!ln) continue;
        fprintf(out, "  %.*s\n  ", (int)len, ln);
        int col = r->loc.col < 1 ? 1 : r->loc.col;
        for (int c = 1; c < col && (size_t)(c - 1) < len; c++) fputc(ln[c - 1] == '\t' ? '\t' : ' ', out);
        int width = 1;
        if (r->loc.end_line == r->loc.line && r->loc.end_col >= col) width = r->loc.end_col - col + 1;
        if ((size_t)(col - 1 + width) > len && len >= (size_t)col) width = (int)(len - (size_t)col + 1);
        fputc('^', out);
        for (int w = 1; w < width; w++) fputc('~', out);
        fputc('\n', out);
    }
}

static int edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return 99;
    int row[65];
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int prev = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int cur = row[j];
            int sub = prev + (a[i - 1] != b[j - 1]);
            int best = row[j] + 1 < row[j - 1] + 1 ? row[j] + 1 : row[j - 1] + 1;
            row[j] = sub < best ? sub : best;
            prev = cur;
        }
    }
    return row[lb];
}

const char *diag_closest(const char *name, const char *const *candidates, int n) {
    int limit = (int)strlen(name) / 3;
    if (limit < 1) limit = 1;
    if (limit > 3) limit = 3;
    const char *best = NULL;
    int best_d = limit + 1;
    for (int i = 0; i < n; i++) {
        int dist = edit_distance(name, candidates[i]);
        if (dist < best_d) { best_d = dist; best = candidates[i]; }
    }
    return best;
}
