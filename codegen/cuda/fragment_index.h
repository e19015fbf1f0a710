/* The per-lane index functions of the tensor-core kernels as C code (for the simulator and
 * tests); the text itself lives in fragment_index.inc, which the generator also pastes into
 * every emitted CUDA source. */
#ifndef ATTNC_FRAGMENT_INDEX_H
#define ATTNC_FRAGMENT_INDEX_H
#ifndef FRAG_FN
#define FRAG_FN static inline
#endif
#define FRAG_TEXT(...) __VA_ARGS__
#include "codegen/cuda/fragment_index.inc"
#undef FRAG_TEXT
#endif
