/* The attnc CLI's subcommands; tools/attnc.c dispatches. Each returns the exit status:
 * 0 success, 1 the input had errors (diagnostics printed), 2 bad usage or I/O failure. */
#ifndef ATTNC_COMMANDS_H
#define ATTNC_COMMANDS_H
#include <stdbool.h>
#include <stdint.h>
#include "ir/ir.h"
#include "attnc/tensor.h"

int cmd_check(int argc, char **argv);   /* tools/attnc.c */
int cmd_ir(int argc, char **argv);      /* tools/attnc.c */
int cmd_run(int argc, char **argv);     /* tools/cmd_run.c */
int cmd_emit(int argc, char **argv);    /* tools/cmd_emit.c (backends) */
int cmd_build(int argc, char **argv);   /* tools/cmd_build.c (backends) */
int cmd_cache(int argc, char **argv);   /* tools/cmd_cache.c */

/* Reads a spec file, parses, checks and runs the IR pipeline; prints diagnostics to
 * stderr. On success *out_mod is the module (in arena a). Returns the exit status. */
int load_spec(const char *path, arena *a, ir_module **out_mod, const char *dump_after, FILE *dump);

/* Runs a kernel on a target ("ref", "cpu", "cuda[:smXX]"): tools/targets.c. Each backend
 * adds its branch there. Returns false with a message in err. */
bool run_on_target(const char *target, const ir_kernel *k, int64_t batch, int64_t seq_q, int64_t seq_k,
                   attnc_tensor *tensors, int n_tensors, char *err, size_t errlen);

#endif
