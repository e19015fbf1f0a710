/* Builds the kernels of tests/cpu/aot_kernels.attn with cpu_build (object + header per
 * kernel) into the directory given as argv[1], for aot_main.c to link without LLVM. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "codegen/llvm/cpu_backend.h"
#include "frontend/frontend.h"
#include "ir/ir.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: aot_gen SPEC OUT_DIR\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", argv[1]);
        return 2;
    }
    char *src = malloc(1 << 16);
    size_t len = fread(src, 1, (1 << 16) - 1, f);
    fclose(f);
    src[len] = 0;
    arena a;
    arena_init(&a);
    diag_sink d;
    diag_init(&d, argv[1], src, len);
    ir_module *m = frontend_compile(src, len, &a, &d);
    int status = 0;
    if (d.n_errors || !ir_run_pipeline(m, &d, NULL, NULL)) {
        diag_print(&d, stderr);
        status = 1;
    }
    for (int i = 0; !status && i < m->n_kernels; i++) {
        char err[512];
        if (!cpu_build(m->kernels[i], argv[2], err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            status = 1;
        }
    }
    diag_free(&d);
    arena_free(&a);
    free(src);
    return status;
}
