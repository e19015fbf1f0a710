/* The recurrence emitter's parts (linear attention, RetNet, GLA, Mamba2/SSD, Mamba-1/S4D),
 * shared between cuda_recur.c (dispatch and the device helpers every form uses),
 * cuda_recur_step.c (recurrent step: decode, and the scan for per-state-element decays),
 * cuda_recur_chunk.c (chunkwise parallel, fp32 SIMT) and cuda_recur_mma.c (chunkwise
 * parallel, bf16 tensor cores). Internal to codegen/cuda.
 *
 * Conventions of the emitted code: decays are handled as log2 values (rec_log2decay) and
 * cumulative sums of them inside a chunk, always subtracted before ex2, so every factor the
 * kernels form is a true decay product Π Λ over a token range (never its inverse): no
 * overflow or underflow beyond what the products themselves have. A chunk's cumulative
 * table holds b(t) = Σ_{r = t0..t} log2 Λ_r (inclusive), so the decay from key i to token t
 * (i <= t) is ex2(b(t) - b(i)), from the chunk start to t is ex2(b(t)), and from key i to
 * the chunk end ex2(b(last) - b(i)). */
#ifndef ATTNC_CUDA_RECUR_H
#define ATTNC_CUDA_RECUR_H
#include <stdbool.h>
#include <stdio.h>
#include "ir/ir.h"
#include "codegen/cuda/cuda_plan.h"

/* The recurrent step kernel named `name`: one CTA per (batch, head), the state in
 * registers, tokens in order (cuda_recur_step.c). */
void cuda_recur_emit_step(FILE *out, const ir_kernel *k, const cuda_plan *p, const char *name);

/* The chunkwise kernels (entry p->fwd_name). */
void cuda_recur_emit_chunk_simt(FILE *out, const ir_kernel *k, const cuda_plan *p);
void cuda_recur_emit_chunk_mma(FILE *out, const ir_kernel *k, const cuda_plan *p);

/* Device helpers of both chunk forms: the cumulative log2-decay table of a chunk
 * (rec_decay_table) and its readers rec_cb / rec_seg / rec_cbv. */
void cuda_recur_emit_chunk_common(FILE *out, const ir_kernel *k, const cuda_plan *p);

#endif
