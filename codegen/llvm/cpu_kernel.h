/* The CPU kernel skeletons (cpu_kernel.c) and the binary interface of what they export,
 * shared by the JIT launcher, `attnc build`'s C header and the tests.
 *
 * A kernel NAME exports four C functions over one argument struct:
 *   int64_t attnc_NAME_workspace_size(const attnc_NAME_args *a);
 *   int64_t attnc_NAME_num_items(const attnc_NAME_args *a, int32_t phase);
 *   void    attnc_NAME_run_items(const attnc_NAME_args *a, int32_t phase,
 *                                int64_t begin, int64_t end, int32_t thread);
 *   int32_t attnc_NAME(attnc_NAME_args *a);       serial driver, returns CPU_ERR_*
 * Phases run in order 0 (RoPE tables), 1 (attention), 2 (split-KV merge); items of one
 * phase may run on any threads 0 .. n_threads-1 in any order. */
#ifndef ATTNC_CPU_KERNEL_H
#define ATTNC_CPU_KERNEL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <llvm-c/Core.h>
#include "ir/ir.h"
#include "ir/signature.h"
#include "codegen/llvm/cpu_target.h"

enum { CPU_PHASES = 3 };

/* Return codes of attnc_NAME(). */
enum {
    CPU_OK = 0,
    CPU_ERR_NULL = 1,        /* a required tensor's data pointer is NULL */
    CPU_ERR_SIZE = 2,        /* negative batch or sequence length */
    CPU_ERR_WORKSPACE = 3,   /* workspace smaller than attnc_NAME_workspace_size, or malloc failed */
    CPU_ERR_POSITIONS = 4,   /* explicit RoPE positions need seq_q <= seq_k */
};

/* One tensor: data and element strides (all four 0 = contiguous). */
typedef struct cpu_tensor_arg {
    void *data;
    int64_t strides[4];
} cpu_tensor_arg;

/* The argument struct's fixed head; the tensor slots follow in signature order
 * (ir_signature: q, k, [v], [positions], inputs..., o, lse). */
typedef struct cpu_args {
    int64_t batch, seq_q, seq_k;
    int32_t n_threads;              /* threads that will call run_items (ids 0 .. n-1); < 1 means 1 */
    int32_t flags;                  /* reserved, 0 */
    const double *rope_inv_freq;    /* NULL: the kernel's own frequencies (dynamic NTK from seq_k) */
    void *workspace;                /* workspace_size bytes, 64-byte aligned for speed */
    int64_t workspace_bytes;
    cpu_tensor_arg t[];
} cpu_args;

/* Slot layout of a kernel: names in signature order (batch/seq lengths do not matter). */
typedef struct cpu_abi {
    int n_slots;
    const char *name[SIG_MAX_TENSORS];
    bool optional[SIG_MAX_TENSORS];
    int q, k, v, positions, first_input, o, lse;   /* slot indices, -1 when absent */
} cpu_abi;
void cpu_kernel_abi(const ir_kernel *k, cpu_abi *abi);

/* Symbol names: attnc_NAME, attnc_NAME_workspace_size, ... (kind "" for the driver). */
void cpu_symbol(const ir_kernel *k, const char *suffix, char *out, size_t outlen);

typedef int64_t (*cpu_workspace_fn)(const cpu_args *);
typedef int64_t (*cpu_num_items_fn)(const cpu_args *, int32_t);
typedef void (*cpu_run_items_fn)(const cpu_args *, int32_t, int64_t, int64_t, int32_t);
typedef int32_t (*cpu_driver_fn)(cpu_args *);

/* The three entry points every generated module exports (attention and recurrences alike),
 * looked up in a JIT that holds it (cpu_backend.c). False with a message when one is missing. */
typedef struct cpu_entries {
    cpu_workspace_fn workspace;
    cpu_num_items_fn num_items;
    cpu_run_items_fn run_items;
} cpu_entries;
struct cpu_jit;
bool cpu_lookup_entries(struct cpu_jit *jit, const ir_kernel *k, cpu_entries *out, char *err, size_t errlen);

/* Why a kernel cannot be compiled for the CPU (NULL when it can): recurrences, f16
 * without F16C, and the like. */
const char *cpu_kernel_unsupported(const ir_kernel *k, const cpu_target *t);

/* Builds the kernel's module in ctx (unoptimised). Returns NULL with a message. */
LLVMModuleRef cpu_kernel_emit(const ir_kernel *k, const cpu_target *t, LLVMContextRef ctx,
                              char *err, size_t errlen);

/* The workspace in closed form (what attnc_NAME_workspace_size computes): n_threads x
 * thread_bytes + RoPE tables + (only when keys are split) batch x heads_kv x
 * ceil(seq_q / positions_per_item) x splits x split_row_bytes. */
void cpu_kernel_workspace_terms(const ir_kernel *k, const cpu_target *t, int64_t *thread_bytes,
                                int64_t *split_row_bytes, int *positions_per_item);

/* Tile shapes chosen for a target (also reported by the benchmark). */
typedef struct cpu_tiles {
    int lanes;          /* W */
    int s_keys_wide, s_vecs_wide;   /* S^T micro-tile: keys x (vectors of W query rows) */
    int s_keys_narrow;              /* one vector of rows */
    int pv_cols_wide, pv_cols_narrow;
    int block_keys;                 /* Bc */
    int rows_target;                /* query rows (positions x group heads) per work item */
} cpu_tiles;
cpu_tiles cpu_tiles_for(const cpu_target *t);

#endif
