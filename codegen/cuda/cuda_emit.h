/* CUDA C emission for one IR kernel: prelude, constants, argument block, inlined
 * expressions and the skeleton the plan picked (tensor-core attention, SIMT attention,
 * split-KV merge, recurrence). sim = true emits the same kernels against the CPU
 * simulator's primitives instead of PTX. */
#ifndef ATTNC_CUDA_EMIT_H
#define ATTNC_CUDA_EMIT_H
#include <stdbool.h>
#include <stdio.h>
#include "ir/ir.h"
#include "codegen/cuda/cuda_plan.h"

void cuda_emit_prelude(FILE *out, bool sim);
const char *cuda_fragment_index_text(void);

/* Opens and closes the conditional around the code of one entry point (cuda_plan_parts):
 * "#if !defined(ATTNC_PART) || ATTNC_PART == part" ... "#endif". */
void cuda_emit_part_begin(FILE *out, int part);
void cuda_emit_part_end(FILE *out);

/* Emits the whole translation unit. Returns false with a message for kernels the backend
 * cannot express (never for a plan cuda_plan_make accepted). */
bool cuda_emit_kernel_source(const ir_kernel *k, const cuda_plan *p, bool sim, FILE *out, char *err, size_t errlen);

/* The source as a malloc'd string (for NVRTC and the cache). */
char *cuda_emit_kernel_string(const ir_kernel *k, const cuda_plan *p, bool sim, char *err, size_t errlen);

#endif
