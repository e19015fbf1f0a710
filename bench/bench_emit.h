/* JSON-line output for the benchmarks (stdout, and appended to --out FILE) and a
 * monotonic clock. Header-only: each benchmark is one executable. */
#ifndef ATTNC_BENCH_EMIT_H
#define ATTNC_BENCH_EMIT_H
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static FILE *g_out;                 /* --out FILE, appended to; NULL: stdout only */
static const char *g_note __attribute__((unused)) = "";   /* --note TEXT */

static void emit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void emit(const char *fmt, ...) {
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    printf("%s\n", line);
    fflush(stdout);
    if (g_out) {
        fprintf(g_out, "%s\n", line);
        fflush(g_out);
    }
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#endif
