/* Kernel argument block: host packing and the matching device definition. */
#include "codegen/cuda/cuda_args.h"
#include <string.h>

int cuda_args_n_inputs(const ir_kernel *k) { return k->n_inputs > 0 ? k->n_inputs : 1; }

int cuda_args_n_freq(const ir_kernel *k) {
    int n = (k->rope.layout != IR_ROPE_NONE) ? (k->rope.dim_hi - k->rope.dim_lo) / 2 : 0;
    return n > 0 ? n : 1;
}

size_t cuda_args_size(const ir_kernel *k) {
    int n_in = cuda_args_n_inputs(k);
    return sizeof(cuda_args_fixed) + (size_t)n_in * 8 * 5 + (size_t)cuda_args_n_freq(k) * 8;
}

void cuda_args_pack(const ir_kernel *k, const cuda_args_fixed *fixed, const uint64_t *in_ptr,
                    const int64_t (*in_st)[4], const double *freq, unsigned char *blob) {
    size_t at = 0;
    memset(blob, 0, cuda_args_size(k));
    memcpy(blob, fixed, sizeof *fixed);
    at += sizeof *fixed;
    int n_in = cuda_args_n_inputs(k);
    for (int i = 0; i < n_in; i++, at += 8)
        if (in_ptr && i < k->n_inputs) memcpy(blob + at, &in_ptr[i], 8);
    for (int i = 0; i < n_in; i++, at += 32)
        if (in_st && i < k->n_inputs) memcpy(blob + at, in_st[i], 32);
    int n_freq = cuda_args_n_freq(k);
    for (int i = 0; i < n_freq; i++, at += 8)
        if (freq) memcpy(blob + at, &freq[i], 8);
}

void cuda_args_emit_struct(FILE *out, const ir_kernel *k) {
    fprintf(out,
            "typedef struct attnc_args {\n"
            "    u64 q, k, v, o, lse, pos, ws_o, ws_lse, state_in, state_out;\n"
            "    i64 q_st[4], k_st[4], v_st[4], o_st[4];\n"
            "    i64 lse_st[4], pos_st[4], sin_st[4], sout_st[4];\n"
            "    i64 batch, seq_q, seq_k, n_splits;\n"
            "    u64 norm_in, norm_out;\n"
            "    i64 nin_st[4], nout_st[4];\n"
            "    u64 in_ptr[%d];\n"
            "    i64 in_st[%d][4];\n"
            "    double rope_freq[%d];\n"
            "} attnc_args;\n\n",
            cuda_args_n_inputs(k), cuda_args_n_inputs(k), cuda_args_n_freq(k));
}
