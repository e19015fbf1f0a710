/* attnc: the command-line driver. Subcommands live in tools/cmd_*.c; this file holds
 * main, the shared spec loader and the two front-end-only commands (check, ir). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "frontend/frontend.h"
#include "tools/commands.h"
#include "tools/spec_file.h"

int load_spec(const char *path, arena *a, ir_module **out_mod, const char *dump_after, FILE *dump) {
    size_t len = 0;
    char *src = spec_file_read(path, &len);
    if (!src) {
        fprintf(stderr, "attnc: cannot read '%s': %s\n", path, strerror(errno));
        return 2;
    }
    diag_sink d;
    diag_init(&d, path, src, len);
    ir_module *m = frontend_compile(src, len, a, &d);
    if (d.n_errors == 0) ir_run_pipeline(m, &d, dump_after, dump);
    diag_sort(&d);
    diag_print(&d, stderr);
    int status = d.n_errors ? 1 : 0;
    if (d.n_errors > d.n_records)
        fprintf(stderr, "%s: %d more errors not shown\n", path, d.n_errors - d.n_records);
    diag_free(&d);
    free(src);
    *out_mod = status ? NULL : m;
    return status;
}

static const char *family_name(const ir_kernel *k) {
    return k->family == IR_SOFTMAX ? "softmax" : "recurrence";
}

int cmd_check(int argc, char **argv) {
    bool quiet = false;
    int status = 0, files = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-q") == 0 || strcmp(argv[i], "--quiet") == 0) { quiet = true; continue; }
        if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "attnc check: unknown option '%s'; usage: attnc check [-q] FILE...\n", argv[i]);
            return 2;
        }
        files++;
        arena a;
        arena_init(&a);
        ir_module *m = NULL;
        int s = load_spec(argv[i], &a, &m, NULL, NULL);
        if (s == 0 && !quiet)
            for (int j = 0; j < m->n_kernels; j++)
                printf("%s: ok: kernel %s (%s, %s)\n", argv[i], m->kernels[j]->name, family_name(m->kernels[j]),
                       m->kernels[j]->phase == IR_DECODE ? "decode" : "prefill");
        if (s > status) status = s;
        arena_free(&a);
    }
    if (!files) {
        fprintf(stderr, "attnc check: no input files; usage: attnc check [-q] FILE...\n");
        return 2;
    }
    return status;
}

int cmd_ir(int argc, char **argv) {
    const char *path = NULL, *kernel = NULL, *dump_after = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--kernel") == 0 && i + 1 < argc) kernel = argv[++i];
        else if (strncmp(argv[i], "--dump-after=", 13) == 0) dump_after = argv[i] + 13;
        else if (strcmp(argv[i], "--dump-after") == 0 && i + 1 < argc) dump_after = argv[++i];
        else if (strcmp(argv[i], "--list-passes") == 0) {
            int n;
            const ir_pass *p = ir_pass_list(&n);
            for (int j = 0; j < n; j++) printf("%-16s %s\n", p[j].name, p[j].summary);
            return 0;
        } else if (argv[i][0] != '-' && !path) path = argv[i];
        else {
            fprintf(stderr, "attnc ir: unexpected argument '%s'; usage: attnc ir FILE [--kernel NAME] "
                            "[--dump-after=PASS|all] [--list-passes]\n", argv[i]);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "attnc ir: no input file; usage: attnc ir FILE [--kernel NAME] [--dump-after=PASS|all]\n");
        return 2;
    }
    if (dump_after && strcmp(dump_after, "all") != 0) {
        int n;
        const ir_pass *p = ir_pass_list(&n);
        bool known = false;
        for (int j = 0; j < n; j++) known |= strcmp(p[j].name, dump_after) == 0;
        if (!known) {
            const char *names[32];
            for (int j = 0; j < n && j < 32; j++) names[j] = p[j].name;
            const char *s = diag_closest(dump_after, names, n < 32 ? n : 32);
            fprintf(stderr, "attnc ir: unknown pass '%s'%s%s%s; `attnc ir --list-passes` lists them\n", dump_after,
                    s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
            return 2;
        }
    }
    arena a;
    arena_init(&a);
    ir_module *m = NULL;
    int s = load_spec(path, &a, &m, dump_after, stdout);
    if (s == 0 && !dump_after) {
        if (kernel) {
            ir_kernel *k = ir_module_find(m, kernel);
            if (!k) {
                fprintf(stderr, "attnc ir: no kernel '%s' in %s\n", kernel, path);
                s = 2;
            } else {
                ir_print_kernel(stdout, k);
            }
        } else {
            ir_print_module(stdout, m);
        }
    }
    arena_free(&a);
    return s;
}

static int usage(FILE *out, int status) {
    fputs("usage: attnc COMMAND [ARGS]\n"
          "  check FILE...                         check specs, print diagnostics\n"
          "  ir FILE [--kernel N] [--dump-after=P]  print the IR (after the pass pipeline, or after pass P / all)\n"
          "  run FILE --kernel N [--target ref|cpu|cuda] [--in NAME=F.npy]... [--out F.npy] [--check]\n"
          "                                        run a kernel on .npy or random inputs\n"
          "  emit --target llvm|cuda[:smXX] FILE --kernel N   print LLVM IR or CUDA C\n"
          "  build --target cpu|cuda:smXX FILE -o DIR [--kernel N]  object/cubin + C header\n"
          "  cache ls|rm KEY|KERNEL|clear [--dir DIR]  list, remove or empty the kernel cache\n"
          "  version\n", out);
    return status;
}

int main(int argc, char **argv) {
    if (argc < 2) return usage(stderr, 2);
    const char *cmd = argv[1];
    int n = argc - 2;
    char **rest = argv + 2;
    if (strcmp(cmd, "check") == 0) return cmd_check(n, rest);
    if (strcmp(cmd, "ir") == 0) return cmd_ir(n, rest);
    if (strcmp(cmd, "run") == 0) return cmd_run(n, rest);
    if (strcmp(cmd, "emit") == 0) return cmd_emit(n, rest);
    if (strcmp(cmd, "build") == 0) return cmd_build(n, rest);
    if (strcmp(cmd, "cache") == 0) return cmd_cache(n, rest);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("attnc %s\n", ATTNC_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) return usage(stdout, 0);
    fprintf(stderr, "attnc: unknown command '%s'\n", cmd);
    return usage(stderr, 2);
}
