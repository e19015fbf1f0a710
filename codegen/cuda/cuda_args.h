/* The kernel argument block: one struct passed by value to every emitted kernel. The host
 * fills it here; cuda_args_emit_struct prints the identical C definition into the emitted
 * source (all members are 8-byte, so both sides lay it out the same way). */
#ifndef ATTNC_CUDA_ARGS_H
#define ATTNC_CUDA_ARGS_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "ir/ir.h"

typedef struct cuda_args_fixed {
    uint64_t q, k, v, o, lse, pos, ws_o, ws_lse, state_in, state_out;   /* device addresses (0 = absent) */
    int64_t q_st[4], k_st[4], v_st[4], o_st[4];                           /* element strides */
    int64_t lse_st[4], pos_st[4], sin_st[4], sout_st[4];
    int64_t batch, seq_q, seq_k, n_splits;
    uint64_t norm_in, norm_out;                                           /* normalised recurrences: z [b, heads, d_qk] f32 */
    int64_t nin_st[4], nout_st[4];
} cuda_args_fixed;

/* Declared inputs and RoPE frequencies follow the fixed part:
 *   u64 in_ptr[n_in]; i64 in_st[n_in][4]; double rope_freq[n_freq];
 * with n_in and n_freq at least 1 (C has no empty arrays). */
int cuda_args_n_inputs(const ir_kernel *k);
int cuda_args_n_freq(const ir_kernel *k);
size_t cuda_args_size(const ir_kernel *k);

/* Writes the block into blob (cuda_args_size bytes). */
void cuda_args_pack(const ir_kernel *k, const cuda_args_fixed *fixed, const uint64_t *in_ptr,
                    const int64_t (*in_st)[4], const double *freq, unsigned char *blob);

/* Prints `typedef struct attnc_args {...} attnc_args;` for the emitted source. */
void cuda_args_emit_struct(FILE *out, const ir_kernel *k);

#endif
