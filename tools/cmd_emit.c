/* attnc emit / attnc build: hand one kernel to a backend's emitter. */
#include <stdio.h>
#include <string.h>
#include "codegen/cuda/cuda_backend.h"
#include "tools/commands.h"
#ifdef ATTNC_HAVE_LLVM
#include "codegen/llvm/cpu_backend.h"
#endif

typedef struct emit_args {
    const char *path, *kernel, *target, *out_dir;
} emit_args;

static bool parse_emit_args(const char *cmd, int argc, char **argv, emit_args *a, bool need_dir) {
    memset(a, 0, sizeof *a);
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--target") == 0 && i + 1 < argc) a->target = argv[++i];
        else if (strncmp(argv[i], "--target=", 9) == 0) a->target = argv[i] + 9;
        else if (strcmp(argv[i], "--kernel") == 0 && i + 1 < argc) a->kernel = argv[++i];
        else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) a->out_dir = argv[++i];
        else if (argv[i][0] != '-' && !a->path) a->path = argv[i];
        else {
            fprintf(stderr, "attnc %s: unexpected argument '%s'\n", cmd, argv[i]);
            return false;
        }
    }
    if (!a->path || !a->target || (need_dir && !a->out_dir)) {
        fprintf(stderr, "attnc %s: usage: attnc %s --target TARGET FILE [--kernel NAME]%s\n", cmd, cmd,
                need_dir ? " -o DIR" : "");
        return false;
    }
    return true;
}

/* Picks the kernel: --kernel, or the only kernel of the file. */
static const ir_kernel *pick_kernel(const char *cmd, const ir_module *m, const emit_args *a) {
    if (a->kernel) {
        const ir_kernel *k = ir_module_find(m, a->kernel);
        if (!k) fprintf(stderr, "attnc %s: no kernel '%s' in %s\n", cmd, a->kernel, a->path);
        return k;
    }
    if (m->n_kernels == 1) return m->kernels[0];
    fprintf(stderr, "attnc %s: %s has %d kernels; choose one with --kernel NAME\n", cmd, a->path, m->n_kernels);
    return NULL;
}

/* "cuda" or "cuda:sm_90a" -> arch ("sm_80" when omitted); NULL when not a CUDA target. */
static const char *cuda_arch(const char *target) {
    if (strcmp(target, "cuda") == 0) return "sm_80";
    if (strncmp(target, "cuda:", 5) == 0) return target + 5;
    return NULL;
}

static int emit_or_build(const char *cmd, int argc, char **argv, bool build) {
    emit_args a;
    if (!parse_emit_args(cmd, argc, argv, &a, build)) return 2;
    arena ar;
    arena_init(&ar);
    ir_module *m = NULL;
    int s = load_spec(a.path, &ar, &m, NULL, NULL);
    if (s) { arena_free(&ar); return s; }
    const ir_kernel *k = pick_kernel(cmd, m, &a);
    if (!k) { arena_free(&ar); return 2; }
    char err[4096] = "";
    bool ok;
    const char *arch = cuda_arch(a.target);
    if (arch) {
        ok = build ? cuda_build(k, arch, a.out_dir, err, sizeof err) : cuda_emit_source(k, arch, stdout, err, sizeof err);
    } else if ((!build && strcmp(a.target, "llvm") == 0) || (build && strcmp(a.target, "cpu") == 0)) {
#ifdef ATTNC_HAVE_LLVM
        ok = build ? cpu_build(k, a.out_dir, err, sizeof err) : cpu_emit_llvm_ir(k, stdout, err, sizeof err);
#else
        snprintf(err, sizeof err, "this attnc was built without LLVM, so target '%s' is unavailable; "
                 "rebuild with the LLVM development files installed", a.target);
        ok = false;
#endif
    } else {
        snprintf(err, sizeof err, "unknown target '%s'; use %s", a.target,
                 build ? "cpu or cuda:sm_80 / cuda:sm_90a" : "llvm or cuda[:sm_80|:sm_90a]");
        ok = false;
    }
    if (!ok) fprintf(stderr, "attnc %s: %s\n", cmd, err);
    arena_free(&ar);
    return ok ? 0 : 2;
}

int cmd_emit(int argc, char **argv) { return emit_or_build("emit", argc, argv, false); }
int cmd_build(int argc, char **argv) { return emit_or_build("build", argc, argv, true); }
