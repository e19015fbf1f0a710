/* Dispatch of a kernel run to a target. The reference interpreter is always here; each
 * backend adds its own branch ("cpu", "cuda[:smXX]") when it is built in. */
#include <stdio.h>
#include <string.h>
#include "ir/interp.h"
#include "tools/commands.h"

bool run_on_target(const char *target, const ir_kernel *k, int64_t batch, int64_t seq_q, int64_t seq_k,
                   attnc_tensor *tensors, int n_tensors, char *err, size_t errlen) {
    if (strcmp(target, "ref") == 0)
        return interp_run(k, batch, seq_q, seq_k, tensors, n_tensors, err, errlen);
    if (strcmp(target, "cpu") == 0 || strncmp(target, "cuda", 4) == 0) {
        snprintf(err, errlen, "target '%s' is not available in this build", target);
        return false;
    }
    snprintf(err, errlen, "unknown target '%s'; use ref, cpu or cuda[:smXX]", target);
    return false;
}
