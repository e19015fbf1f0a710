/* A strided tensor view: the one way tensors cross attnc's interfaces (interpreter,
 * backends, runtime, CLI). attnc never owns the memory a view points to. */
#ifndef ATTNC_TENSOR_H
#define ATTNC_TENSOR_H
#include <stdint.h>

typedef enum attnc_dtype {
    ATTNC_F32, ATTNC_F16, ATTNC_BF16 /* stored as uint16 bit patterns */, ATTNC_I32, ATTNC_F64
} attnc_dtype;

enum { ATTNC_MAX_DIMS = 4 };

typedef struct attnc_tensor {
    const char *name;           /* the signature name: "q", "k", "v", "o", "lse", "positions",
                                   "state_in", "state_out", or a declared input */
    attnc_dtype dtype;
    int ndim;
    int64_t shape[ATTNC_MAX_DIMS];
    int64_t strides[ATTNC_MAX_DIMS];  /* in elements; 0 in every slot means contiguous */
    void *data;
} attnc_tensor;

#endif
