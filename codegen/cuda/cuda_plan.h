/* Tile plans for the CUDA kernels: which skeleton a kernel uses and, for the tensor-core
 * skeleton, the tile shape, warp layout, pipeline depth, shared-memory map and a register
 * estimate. Computed from the IR and the target arch alone, so the emitter, the launcher
 * and the simulator tests agree on it (cuda-kernels.md §4). */
#ifndef ATTNC_CUDA_PLAN_H
#define ATTNC_CUDA_PLAN_H
#include <stdbool.h>
#include <stddef.h>
#include "ir/ir.h"

typedef enum cuda_kernel_kind {
    CUDA_KIND_MMA,        /* bf16/f16 tensor cores: mma.sync + ldmatrix + cp.async (sm_80+) */
    CUDA_KIND_SIMT,       /* fp32 or fallback: one warp per query row, any dtype */
    CUDA_KIND_RECUR,      /* linear recurrence, one CTA per (batch, head), sequential in time */
} cuda_kernel_kind;

typedef enum cuda_recur_form {
    CUDA_RECUR_STEP,      /* recurrent form: state in registers, one token after another */
    CUDA_RECUR_CHUNK,     /* chunkwise parallel, fp32 SIMT */
    CUDA_RECUR_CHUNK_MMA, /* chunkwise parallel, bf16 tensor cores (mma.sync), f32 accumulation */
} cuda_recur_form;

typedef struct cuda_plan {
    cuda_kernel_kind kind;
    int cc;                      /* compute capability, e.g. 80, 90 */
    bool arch_specific;          /* sm_90a */
    int smem_limit;              /* max dynamic shared memory per CTA on this arch (bytes) */
    int threads;                 /* per CTA */
    int dqk, dv;                 /* real head dims */
    int pack;                    /* query heads packed into one tile's rows (GQA decode) */
    bool v_in_k;                 /* MLA: V is the first dv columns of K */
    bool splitkv;                /* decode: split-KV with a merge kernel, splits chosen at launch */
    int splits;                  /* split-KV: a fixed split count (override "splits=N"); 0 = by occupancy */

    /* CUDA_KIND_MMA */
    bool f16;                    /* f16 rather than bf16 operands */
    int d, dvp;                  /* dims padded to 16 (zero-filled columns) */
    int wr, wc;                  /* warp rows (16 query rows each) x warp columns (dv slices) */
    int br, bc;                  /* rows and keys per tile */
    int dvc;                     /* dv columns per warp column */
    int stages;                  /* K/V buffers: 1 (FA2 schedule) or 2 (ring) */
    bool q_in_regs;              /* Q fragments kept in registers for the whole loop */
    bool hoist_loads;            /* K/V loaders may keep per-thread addresses in registers
                                    (threadIdx.x visible to the compiler); off: recomputed per tile */
    bool stage_out;              /* epilogue: O (f32 for split-KV partials, else the element type)
                                    staged in shared memory over the tile buffers, then copied out
                                    row by row; off where it does not fit (override "stageo=0") */
    int out_stride;              /* staged row, in elements: dvp + 8 (conflict-free fragment stores) */
    int smem_q, smem_k, smem_v;  /* byte offsets of the regions */
    int smem_k_stage, smem_v_stage;
    int smem_bytes;              /* dynamic shared memory per CTA */
    int est_regs;                /* register estimate per thread */

    /* CUDA_KIND_SIMT */
    int rows_per_cta;            /* one warp per row */

    /* CUDA_KIND_RECUR (cuda_recur*.c). The fwd entry runs recur_form; chunk forms also carry
     * a step entry (step_name) that cuda_plan_uses_step picks for seq <= 1 launches. */
    cuda_recur_form recur_form;
    int chunk;                   /* the spec's chunk: tokens between materialised states */
    int rb;                      /* chunk forms: tokens per row block and per key block */
    int rdvc;                    /* chunk forms: v columns per CTA (grid.x = ceil(d_v / rdvc)) */
    int rd;                      /* chunk forms: d_qk as tiled (MMA: padded to 16) */
    int rsm_s, rsm_s16, rsm_z, rsm_q, rsm_k, rsm_v, rsm_p, rsm_b, rsm_den;   /* smem byte offsets */
    int rsm_vs;                  /* tensor cores: value scale s_i of the key block */
    int rsm_qf, rsm_kf;          /* tensor cores, per-key-dim decay: phi(q), phi(k) of the blocks (bf16) */
    int step_warps, step_rpw, step_ncol;   /* step kernel: warps split d_k into rows-per-warp slices,
                                              lanes take v columns, ncol column groups per lane */
    int step_threads, step_smem;
    bool step_for_one;           /* seq <= 1 launches the step kernel (override rstep=0 turns it off) */
    bool r_norm, r_decode, r_lowp;   /* the kernel's normalize, decode phase, bf16/f16 dtype */
    ir_decay_kind r_decay;
    char recur_note[160];        /* why the plan fell back to the step form for prefill, or "" */

    char fwd_name[128];          /* kernel entry points */
    char merge_name[128];
    char step_name[128];         /* recurrences: the step kernel (== fwd_name for the step form) */
} cuda_plan;

/* Builds the plan for kernel k on arch ("sm_80", "sm_90a", ...). Fails with a message for
 * kernels or archs the backend cannot handle. */
bool cuda_plan_make(const ir_kernel *k, const char *arch, cuda_plan *p, char *err, size_t errlen);

/* Tuning and test knob: "bc=32,stages=1,qregs=0,wr=4,wc=2,splits=8,hoist=1,stageo=0" overrides those fields of a
 * tensor-core plan and recomputes its shared-memory map (cuda_plan_make applies
 * $ATTNC_CUDA_PLAN this way). Recurrence plans take "form=step|chunk|mma" (the fwd form),
 * "rb=16|32|64", "dvc=16|32|64|128" and "rstep=0|1" (seq <= 1 through the step kernel).
 * Fails for values the skeleton cannot run. */
bool cuda_plan_override(cuda_plan *p, const char *spec, char *err, size_t errlen);

/* Max dynamic shared memory per CTA (opt-in) for a compute capability. */
int cuda_arch_smem_limit(int cc);

/* Launch geometry. n_splits only matters for split-KV plans. For a recurrence the geometry
 * is that of the entry cuda_plan_entry names for seq_q. */
typedef struct cuda_grid {
    unsigned gx, gy, gz, threads, smem;
} cuda_grid;

/* Recurrences: whether a launch with this length runs the step kernel (decode phase, the
 * step form, or seq_q <= 1), and the entry point it launches (fwd_name otherwise). */
bool cuda_plan_uses_step(const cuda_plan *p, long long seq_q);
const char *cuda_plan_entry(const cuda_plan *p, long long seq_q);

/* The module's entry points in part order: fwd_name first, then the merge (split-KV) or
 * the step kernel (chunked recurrences). Entry i is wrapped in "#if ATTNC_PART == i" (or
 * no ATTNC_PART), so each can be compiled as its own program, in parallel. Returns the
 * count (1 or 2). */
enum { CUDA_MAX_PARTS = 2 };
int cuda_plan_parts(const cuda_plan *p, const char *names[CUDA_MAX_PARTS]);
cuda_grid cuda_plan_fwd_grid(const cuda_plan *p, const ir_kernel *k, long long batch, long long seq_q,
                             int n_splits);
cuda_grid cuda_plan_merge_grid(const cuda_plan *p, const ir_kernel *k, long long batch, long long seq_q);

/* Split count for split-KV decode: the FlashAttention heuristic on the CTA count
 * (cuda-kernels.md §6); 1 when the grid already fills the device. */
int cuda_plan_num_splits(const cuda_plan *p, const ir_kernel *k, long long batch, long long seq_q,
                         long long seq_k, int sm_count);

#endif
