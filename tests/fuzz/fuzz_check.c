/* libFuzzer target: arbitrary bytes through the parser, the checker and the IR pipeline.
 * Any crash, leak, sanitizer report or verifier complaint about a module the checker
 * accepted is a bug. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "frontend/frontend.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1 << 16) return 0;
    char *src = malloc(size + 1);
    if (!src) return 0;
    memcpy(src, data, size);
    src[size] = 0;
    arena a;
    arena_init(&a);
    diag_sink d;
    diag_init(&d, "fuzz.attn", src, size);
    ir_module *m = frontend_compile(src, size, &a, &d);
    if (d.n_errors == 0) {
        diag_sink pd;
        diag_init(&pd, "fuzz.attn", src, size);
        ir_run_pipeline(m, &pd, NULL, NULL);
        /* The checker accepted it, so the IR must verify. */
        if (pd.n_errors) {
            diag_print(&pd, stderr);
            abort();
        }
        diag_free(&pd);
    }
    FILE *null = fopen("/dev/null", "w");
    if (null) { diag_print(&d, null); fclose(null); }
    diag_free(&d);
    arena_free(&a);
    free(src);
    return 0;
}
