/* Dispatch of a kernel run to a target: the reference interpreter, the CPU backend when
 * built with LLVM, and the CUDA backend (always built; it loads libcuda at run time). */
#include <stdio.h>
#include <string.h>
#include "codegen/cuda/cuda_backend.h"
#include "ir/interp.h"
#include "tools/commands.h"
#ifdef ATTNC_HAVE_LLVM
#include "codegen/llvm/cpu_backend.h"
#endif

bool run_on_target(const char *target, const ir_kernel *k, int64_t batch, int64_t seq_q, int64_t seq_k,
                   attnc_tensor *tensors, int n_tensors, char *err, size_t errlen) {
    if (strcmp(target, "ref") == 0)
        return interp_run(k, batch, seq_q, seq_k, tensors, n_tensors, err, errlen);
    if (strcmp(target, "cpu") == 0) {
#ifdef ATTNC_HAVE_LLVM
        return cpu_run(k, batch, seq_q, seq_k, tensors, n_tensors, err, errlen);
#else
        snprintf(err, errlen, "target 'cpu' is not available: this attnc was built without LLVM; "
                 "install the LLVM development files (apt-get install llvm-dev) and rebuild");
        return false;
#endif
    }
    if (strcmp(target, "cuda") == 0)        /* the device's own architecture */
        return cuda_run(k, NULL, batch, seq_q, seq_k, tensors, n_tensors, err, errlen);
    if (strncmp(target, "cuda:", 5) == 0)
        return cuda_run(k, target + 5, batch, seq_q, seq_k, tensors, n_tensors, err, errlen);
    snprintf(err, errlen, "unknown target '%s'; use ref, cpu, cuda or cuda:sm_XX", target);
    return false;
}
