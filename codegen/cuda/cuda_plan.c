/* Tile plan selection for the CUDA skeletons. */
#include "codegen/cuda/cuda_plan.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "runtime/nvrtc.h"

int cuda_arch_smem_limit(int cc) {
    /* CUDA C++ Programming Guide, shared memory per compute capability (opt-in maximum). */
    switch (cc) {
    case 80: case 87: return 163 * 1024;
    case 86: case 89: case 120: case 121: return 99 * 1024;
    case 90: case 100: case 103: return 227 * 1024;
    default: return cc >= 90 ? 227 * 1024 : cc >= 80 ? 99 * 1024 : 64 * 1024;
    }
}

static int round_up(int x, int m) { return (x + m - 1) / m * m; }

/* Register model (cuda-kernels.md §4), per thread with one m16 tile per warp:
 * O = dvc/2, S = bc/2, Q fragments = d/4 when resident, plus fragment temporaries, the
 * softmax state and addressing. Calibrated against ptxas reports of the emitted kernels. */
static int estimate_regs(int d, int dvc, int bc, bool q_in_regs) {
    return dvc / 2 + bc / 2 + (q_in_regs ? d / 4 : 0) + 88;
}

enum { REG_BUDGET = 240 };

static int mma_smem(const cuda_plan *p, int bc, int stages) {
    int q = p->br * p->d * 2;
    int k = bc * p->d * 2;
    int v = p->v_in_k ? 0 : bc * p->dvp * 2;
    return q + stages * (k + v);
}

static void mma_layout(cuda_plan *p) {
    p->smem_q = 0;
    p->smem_k = p->br * p->d * 2;
    p->smem_k_stage = p->bc * p->d * 2;
    p->smem_v = p->smem_k + p->stages * p->smem_k_stage;
    p->smem_v_stage = p->v_in_k ? 0 : p->bc * p->dvp * 2;
    p->smem_bytes = mma_smem(p, p->bc, p->stages);
    p->est_regs = estimate_regs(p->d, p->dvc, p->bc, p->q_in_regs);
    /* The staged epilogue reuses the tile buffers, so it never adds shared memory: a row
       stride of dvp + 8 elements puts a quad's fragment stores in distinct banks; the LSE of
       each row follows the rows. Where it would not fit, the registers store to global. */
    p->out_stride = p->dvp + 8;
    int out_bytes = p->br * p->out_stride * (p->splitkv ? 4 : 2) + 4 * p->br;
    p->stage_out = out_bytes <= p->smem_bytes;
}

static bool plan_mma(const ir_kernel *k, cuda_plan *p, char *err, size_t errlen) {
    p->kind = CUDA_KIND_MMA;
    p->f16 = k->dtype == IR_F16;
    p->d = round_up(p->dqk, 16);
    /* dv slices of whole 64-column pages per warp column (cuda_emit relies on it), O <= 64 regs
       per slice beyond 256 columns */
    p->wc = (p->dv + 255) / 256;
    p->dvc = p->wc == 1 ? round_up(p->dv, 16) : round_up((p->dv + p->wc - 1) / p->wc, 64);
    p->dvp = p->wc * p->dvc;
    if (p->v_in_k && p->dvp > p->d) {
        snprintf(err, errlen, "kernel '%s': v (%d) read from k (%d) needs v <= qk after padding", k->name, p->dv, p->dqk);
        return false;
    }
    if (k->phase == IR_DECODE) {
        int rows = p->pack;                       /* one query position per kv group is the common case */
        p->wr = rows <= 16 ? 1 : rows <= 32 ? 2 : 4;
        /* a one-warp decode CTA splits d_v over two warps: twice the warps streaming K/V
           (H100, Llama-3 decode b32 at 32k: 2890 GB/s against 2665) */
        if (p->wc == 1 && p->dv >= 128) {
            p->wc = 2;
            p->dvc = round_up((p->dv + 1) / 2, 64);
            p->dvp = 2 * p->dvc;
            if (p->v_in_k && p->dvp > p->d) {
                p->wc = 1;
                p->dvc = round_up(p->dv, 16);
                p->dvp = p->dvc;
            }
        }
    } else {
        /* 8 warps of 16 rows up to d 256 (H100, Gemma-2 d 256: 155 TFLOP/s against 142 with 4) */
        p->wr = (p->d <= 256 && p->wc == 1) ? 8 : 4;
        /* prefill keeps the loaders' per-thread addresses in registers: fewer instructions
           per tile, no spills up to d 256 (H100, Llama-3 prefill 4k: 224 TFLOP/s against 194) */
        p->hoist_loads = true;
    }
    /* at most 8 warps: more would cap registers at 128 per thread */
    while (p->wr * p->wc > 8 && p->wr > 1) p->wr /= 2;
    p->br = 16 * p->wr;
    p->threads = 32 * p->wr * p->wc;
    const int bcs[] = {128, 64, 32, 16};
    /* decode streams K/V: 32-key tiles halve a CTA's shared memory so twice as many CTAs
       keep loads in flight (H100, Llama-3 decode at 32k: 2551 GB/s against 2090 with 64;
       bench/results/gpu-plan-sweep-2026-11-23.jsonl) */
    int bc_cap = k->phase == IR_DECODE ? 32 : (p->d <= 64 ? 128 : 64);
    p->bc = 0;
    for (int i = 0; i < 4 && !p->bc; i++) {
        int bc = bcs[i];
        if (bc > bc_cap) continue;
        for (int qr = 1; qr >= 0; qr--) {
            /* Q stays in registers only when that costs little (decode reads Q once anyway) */
            bool q_regs = qr && p->d <= 128;
            if (qr && !q_regs) continue;
            if (estimate_regs(p->d, p->dvc, bc, q_regs) > REG_BUDGET) continue;
            if (mma_smem(p, bc, 1) > p->smem_limit) continue;
            p->bc = bc;
            p->q_in_regs = q_regs;
            break;
        }
    }
    if (!p->bc) {
        snprintf(err, errlen, "kernel '%s': no tensor-core tile fits d_qk = %d, d_v = %d in %d KB of shared memory",
                 k->name, p->dqk, p->dv, p->smem_limit / 1024);
        return false;
    }
    p->stages = mma_smem(p, p->bc, 2) <= p->smem_limit ? 2 : 1;
    mma_layout(p);
    return true;
}

/* ---------------------------------------------------------------- recurrences */

static int align128(int x) { return (x + 127) & ~127; }

/* Step kernel: lanes take v columns (ncol groups of 32 per lane), warps split d_k; at most
   64 state registers per thread, so wide states get more warps (up to 8). Shared memory:
   two token buffers (q, k, per-key decay, v, v scale, per-warp partial outputs, q.z terms,
   scalar decay), double-buffered so a token needs two barriers. */
static void plan_recur_step(cuda_plan *p) {
    int ncol = (p->dv + 31) / 32;
    int warps = (p->dqk * ncol + 63) / 64;
    warps = warps < 4 ? 4 : warps > 8 ? 8 : warps;
    p->step_ncol = ncol;
    p->step_warps = warps;
    p->step_rpw = (p->dqk + warps - 1) / warps;
    p->step_threads = 32 * warps;
    int buf = 4 * (4 * p->dqk + 2 * 32 * ncol + warps * 32 * ncol + 4);
    p->step_smem = 2 * ((buf + 15) & ~15);
}

/* Shared-memory map of the chunk forms; returns the total. */
static int recur_chunk_layout(cuda_plan *p) {
    bool mma = p->recur_form == CUDA_RECUR_CHUNK_MMA;
    int d = p->rd, dvc = p->rdvc, rb = p->rb, at = 0;
    p->rsm_s = at, at += align128(4 * d * dvc);                          /* f32 state (master) */
    p->rsm_s16 = at, at += mma ? align128(2 * d * dvc) : 0;              /* bf16 copy: B operand of Q S */
    p->rsm_z = at, at += p->r_norm ? align128(4 * d) : 0;             /* normaliser z */
    p->rsm_q = at, at += align128(mma ? 2 * rb * d : 4 * rb * (d + 1));  /* phi(q) of the row block */
    p->rsm_k = at, at += align128(mma ? 2 * rb * d : 4 * rb * (d + 1));  /* phi(k) of the key block */
    p->rsm_v = at, at += align128((mma ? 2 : 4) * rb * dvc);             /* s * v of the key block */
    p->rsm_p = at, at += mma ? 0 : align128(4 * rb * (rb + 1));          /* decayed scores (SIMT) */
    p->rsm_b = at;                                                       /* cumulative log2 decays */
    if (p->r_decay == IR_DECAY_TOKEN_HEAD) at += align128(4 * p->chunk);
    else if (p->r_decay == IR_DECAY_KEY_VECTOR) at += align128(4 * p->chunk * d);
    p->rsm_den = at, at += (mma && p->r_norm) ? align128(4 * rb) : 0;   /* q.z of the row block */
    p->rsm_vs = at, at += mma ? align128(4 * rb) : 0;
    bool vec_mma = mma && p->r_decay == IR_DECAY_KEY_VECTOR;           /* exact diagonal sub-blocks */
    p->rsm_qf = at, at += vec_mma ? align128(2 * rb * p->dqk) : 0;      /* bf16, plain [row][d_k] */
    p->rsm_kf = at, at += vec_mma ? align128(2 * rb * p->dqk) : 0;
    p->smem_bytes = at;
    return at;
}

/* Whether a chunk form fits: shared memory, and the register tiles the emitters unroll. */
static bool recur_chunk_fits(cuda_plan *p) {
    if (recur_chunk_layout(p) > p->smem_limit) return false;
    if (p->recur_form == CUDA_RECUR_CHUNK_MMA) {
        int mt_per_warp = (p->rd / 16 + 3) / 4;
        return p->rdvc <= 128 && mt_per_warp * p->rdvc / 2 <= 128 && p->rd <= 256;
    }
    int ta = (p->rd + 15) / 16;
    return p->rdvc <= 128 && ta * (p->rdvc / 16) <= 64;
}

static bool plan_recur_chunk(cuda_plan *p, cuda_recur_form form) {
    p->recur_form = form;
    int dvc_full = round_up(p->dv, 16);
    if (form == CUDA_RECUR_CHUNK_MMA) {
        p->rd = round_up(p->dqk, 16);
        p->rb = 64;
        p->threads = 128;
        /* normalize: one CTA owns z (norm_in/norm_out may alias), so every v column */
        int dvcs[] = {64, 32, 16};
        for (int i = 0; i < 3; i++) {
            p->rdvc = p->r_norm ? dvc_full : (dvc_full < dvcs[i] ? dvc_full : dvcs[i]);
            if (recur_chunk_fits(p)) return true;
            if (p->r_norm) break;
        }
        return false;
    }
    p->rd = p->dqk;
    p->threads = 256;
    int dvcs[] = {64, 32, 16}, rbs[] = {64, 32, 16};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            p->rdvc = p->r_norm ? dvc_full : (dvc_full < dvcs[i] ? dvc_full : dvcs[i]);
            p->rb = rbs[j];
            if (recur_chunk_fits(p)) return true;
        }
    return false;
}

static void recur_use_step(cuda_plan *p) {
    p->recur_form = CUDA_RECUR_STEP;
    p->threads = p->step_threads;
    p->smem_bytes = p->step_smem;
    p->rb = p->rdvc = p->rd = 0;
    snprintf(p->step_name, sizeof p->step_name, "%s", p->fwd_name);
}

static bool plan_recur(const ir_kernel *k, cuda_plan *p, char *err, size_t errlen) {
    p->kind = CUDA_KIND_RECUR;
    p->pack = 1;
    p->chunk = k->chunk > 0 ? k->chunk : 64;
    if (k->groups <= 0 || k->heads_q % k->groups) {
        snprintf(err, errlen, "kernel '%s': groups (%d) must divide heads (%d)", k->name, k->groups, k->heads_q);
        return false;
    }
    if (p->dqk <= 0 || p->dv <= 0) {
        snprintf(err, errlen, "kernel '%s': state dims must be positive (k %d, v %d)", k->name, p->dqk, p->dv);
        return false;
    }
    if (k->normalize && k->decay_kind == IR_DECAY_STATE) {
        snprintf(err, errlen, "kernel '%s': normalize needs a decay that does not vary along v (z has d_k entries)", k->name);
        return false;
    }
    p->r_norm = k->normalize;
    p->r_decode = k->phase == IR_DECODE;
    p->r_lowp = k->dtype != IR_F32;
    p->r_decay = k->decay_kind;
    plan_recur_step(p);
    p->step_for_one = true;
    snprintf(p->step_name, sizeof p->step_name, "attnc_%s_step", k->name);
    if (p->step_smem > p->smem_limit || p->step_rpw * p->step_ncol > 128) {
        snprintf(err, errlen, "kernel '%s': a %d x %d state is too large for the CUDA recurrence kernels", k->name, p->dqk,
                 p->dv);
        return false;
    }
    p->recur_note[0] = 0;
    if (k->phase == IR_DECODE) {
        recur_use_step(p);
        return true;
    }
    if (k->decay_kind == IR_DECAY_STATE) {
        /* per-element decays (Mamba-1, S4D) have no matmul form: the step kernel scans */
        snprintf(p->recur_note, sizeof p->recur_note, "per-state-element decay: recurrent scan");
        recur_use_step(p);
        return true;
    }
    if (p->r_lowp && p->cc >= 80 && plan_recur_chunk(p, CUDA_RECUR_CHUNK_MMA)) return true;
    if (plan_recur_chunk(p, CUDA_RECUR_CHUNK)) return true;
    snprintf(p->recur_note, sizeof p->recur_note, "no chunk tile fits %d KB of shared memory: recurrent scan",
             p->smem_limit / 1024);
    recur_use_step(p);
    return true;
}

static bool recur_override(cuda_plan *p, const char *spec, char *err, size_t errlen) {
    const char *s = spec;
    int rb = 0, dvc = 0;
    int form = -1;
    while (s && *s) {
        char key[16], val[16];
        int used = 0;
        if (sscanf(s, " %15[a-z] = %15[a-z0-9]%n", key, val, &used) != 2) {
            snprintf(err, errlen, "bad plan override '%s'; expected key=value pairs such as form=chunk,rb=32", spec);
            return false;
        }
        if (!strcmp(key, "form") && !strcmp(val, "step")) form = CUDA_RECUR_STEP;
        else if (!strcmp(key, "form") && !strcmp(val, "chunk")) form = CUDA_RECUR_CHUNK;
        else if (!strcmp(key, "form") && !strcmp(val, "mma")) form = CUDA_RECUR_CHUNK_MMA;
        else if (!strcmp(key, "rb") && (!strcmp(val, "16") || !strcmp(val, "32") || !strcmp(val, "64"))) rb = atoi(val);
        else if (!strcmp(key, "dvc") && (!strcmp(val, "16") || !strcmp(val, "32") || !strcmp(val, "64") || !strcmp(val, "128")))
            dvc = atoi(val);
        else if (!strcmp(key, "rstep") && (!strcmp(val, "0") || !strcmp(val, "1"))) p->step_for_one = val[0] == '1';
        else {
            snprintf(err, errlen, "bad recurrence plan override %s=%s", key, val);
            return false;
        }
        s += used;
        while (*s == ',' || *s == ' ') s++;
    }
    if (form < 0) form = p->recur_form;
    if (form != CUDA_RECUR_STEP && (p->r_decode || p->r_decay == IR_DECAY_STATE)) {
        snprintf(err, errlen, "this recurrence has no chunk form (decode phase or per-state-element decay)");
        return false;
    }
    if (form == CUDA_RECUR_CHUNK_MMA && (!p->r_lowp || p->cc < 80)) {
        snprintf(err, errlen, "form=mma needs a bf16/f16 kernel on sm_80 or newer");
        return false;
    }
    if (form == CUDA_RECUR_STEP) {
        recur_use_step(p);
        return true;
    }
    if (form != (int)p->recur_form && !plan_recur_chunk(p, (cuda_recur_form)form)) {
        snprintf(err, errlen, "no %s chunk tile fits this recurrence", form == CUDA_RECUR_CHUNK_MMA ? "tensor-core" : "SIMT");
        return false;
    }
    if (!strcmp(p->step_name, p->fwd_name)) {   /* was the step form: the step kernel gets its own entry */
        size_t n = strlen(p->fwd_name);
        snprintf(p->step_name, sizeof p->step_name, "%.*s_step", (int)(n > 4 ? n - 4 : n), p->fwd_name);
    }
    if (rb) {
        if (form == CUDA_RECUR_CHUNK_MMA && rb != 64) {
            snprintf(err, errlen, "the tensor-core chunk form uses rb=64");
            return false;
        }
        p->rb = rb;
    }
    if (dvc) {
        if (p->r_norm && dvc < p->dv) {
            snprintf(err, errlen, "a normalised recurrence keeps every v column in one CTA (dvc >= %d)", p->dv);
            return false;
        }
        p->rdvc = dvc;
    }
    if (!recur_chunk_fits(p)) {
        snprintf(err, errlen, "recurrence plan override '%s' does not fit (%d bytes of shared memory, limit %d)", spec,
                 p->smem_bytes, p->smem_limit);
        return false;
    }
    return true;
}

bool cuda_plan_uses_step(const cuda_plan *p, long long seq_q) {
    if (p->kind != CUDA_KIND_RECUR) return false;
    return p->recur_form == CUDA_RECUR_STEP || (p->step_for_one && seq_q <= 1);
}

const char *cuda_plan_entry(const cuda_plan *p, long long seq_q) {
    return cuda_plan_uses_step(p, seq_q) ? p->step_name : p->fwd_name;
}

int cuda_plan_parts(const cuda_plan *p, const char *names[CUDA_MAX_PARTS]) {
    int n = 0;
    names[n++] = p->fwd_name;
    if (p->kind == CUDA_KIND_RECUR) {
        if (p->step_name[0] && strcmp(p->step_name, p->fwd_name) != 0) names[n++] = p->step_name;
    } else if (p->splitkv) {
        names[n++] = p->merge_name;
    }
    return n;
}

bool cuda_plan_override(cuda_plan *p, const char *spec, char *err, size_t errlen) {
    if (p->kind == CUDA_KIND_RECUR) return recur_override(p, spec, err, errlen);
    if (p->kind != CUDA_KIND_MMA) {
        snprintf(err, errlen, "plan overrides apply to tensor-core plans only");
        return false;
    }
    int stage_out = -1;   /* -1: as the layout allows */
    const char *s = spec;
    while (s && *s) {
        char key[16];
        int val, used = 0;
        if (sscanf(s, " %15[a-z] = %d%n", key, &val, &used) != 2) {
            snprintf(err, errlen, "bad plan override '%s'; expected key=value pairs such as bc=32,stages=1", spec);
            return false;
        }
        if (!strcmp(key, "bc") && (val == 16 || val == 32 || val == 64 || val == 128)) p->bc = val;
        else if (!strcmp(key, "stages") && (val == 1 || val == 2)) p->stages = val;
        else if (!strcmp(key, "qregs") && (val == 0 || val == 1)) p->q_in_regs = val;
        else if (!strcmp(key, "splits") && val >= 0 && val <= 1024) p->splits = val;
        else if (!strcmp(key, "hoist") && (val == 0 || val == 1)) p->hoist_loads = val;
        else if (!strcmp(key, "stageo") && (val == 0 || val == 1)) stage_out = val;
        else if (!strcmp(key, "wr") && val >= 1 && val <= 8) p->wr = val;
        else if (!strcmp(key, "wc") && val >= 1 && val <= 8) {
            int dvc = val == 1 ? round_up(p->dv, 16) : round_up((p->dv + val - 1) / val, 64);
            if (p->v_in_k && val > 1 && (p->d & ~63) < val * dvc) {
                snprintf(err, errlen, "wc=%d: the dv slices do not fit in whole pages of K", val);
                return false;
            }
            p->wc = val;
            p->dvc = dvc;
            p->dvp = val * dvc;
        } else {
            snprintf(err, errlen, "bad plan override %s=%d", key, val);
            return false;
        }
        s += used;
        while (*s == ',' || *s == ' ') s++;
    }
    p->br = 16 * p->wr;
    p->threads = 32 * p->wr * p->wc;
    mma_layout(p);
    if (stage_out == 0) p->stage_out = false;
    else if (stage_out == 1 && !p->stage_out) {
        snprintf(err, errlen, "plan override stageo=1: staging O needs more shared memory than the tiles use");
        return false;
    }
    if (p->smem_bytes > p->smem_limit) {
        snprintf(err, errlen, "plan override needs %d bytes of shared memory; the arch allows %d", p->smem_bytes, p->smem_limit);
        return false;
    }
    return true;
}

bool cuda_plan_make(const ir_kernel *k, const char *arch, cuda_plan *p, char *err, size_t errlen) {
    memset(p, 0, sizeof *p);
    if (!nvrtc_parse_arch(arch, &p->cc, &p->arch_specific)) {
        snprintf(err, errlen, "bad CUDA architecture '%s'; expected sm_XX or sm_XXa such as sm_80 or sm_90a",
                 arch ? arch : "(null)");
        return false;
    }
    if (p->cc < 70) {
        snprintf(err, errlen, "CUDA architecture %s is too old; attnc needs sm_70 or newer (sm_80+ for tensor cores)", arch);
        return false;
    }
    p->smem_limit = cuda_arch_smem_limit(p->cc);
    p->dqk = k->d_qk;
    p->dv = k->d_v;
    p->v_in_k = k->v_in_k;
    snprintf(p->fwd_name, sizeof p->fwd_name, "attnc_%s_fwd", k->name);
    snprintf(p->merge_name, sizeof p->merge_name, "attnc_%s_merge", k->name);
    if (k->family == IR_RECURRENCE) return plan_recur(k, p, err, errlen);
    if (k->heads_kv <= 0 || k->heads_q % k->heads_kv != 0) {
        snprintf(err, errlen, "kernel '%s': heads_q (%d) must be a multiple of heads_kv (%d)", k->name, k->heads_q, k->heads_kv);
        return false;
    }
    if (p->dqk <= 0 || p->dv <= 0) {
        snprintf(err, errlen, "kernel '%s': head dims must be positive (qk %d, v %d)", k->name, p->dqk, p->dv);
        return false;
    }
    int group = k->heads_q / k->heads_kv;
    bool tensor_cores = k->dtype != IR_F32 && p->cc >= 80 && p->dqk % 8 == 0 && p->dv % 8 == 0 &&
                        p->dqk <= 576 && p->dv <= 512 && k->rope.rerope_window <= 0;
    p->pack = (k->phase == IR_DECODE && tensor_cores) ? group : 1;
    p->splitkv = k->phase == IR_DECODE;
    if (tensor_cores) {
        char sub[256];
        if (plan_mma(k, p, sub, sizeof sub)) {
            const char *ov = getenv("ATTNC_CUDA_PLAN");
            if (ov && *ov && !cuda_plan_override(p, ov, err, errlen)) return false;
            return true;
        }
        /* fall through to the SIMT path when no tile fits */
        p->pack = 1;
    }
    p->kind = CUDA_KIND_SIMT;
    p->rows_per_cta = 4;
    p->threads = 32 * p->rows_per_cta;
    p->smem_bytes = 0;   /* registers and shuffles only */
    return true;
}

cuda_grid cuda_plan_fwd_grid(const cuda_plan *p, const ir_kernel *k, long long batch, long long seq_q, int n_splits) {
    cuda_grid g = {1, 1, 1, (unsigned)p->threads, (unsigned)p->smem_bytes};
    switch (p->kind) {
    case CUDA_KIND_MMA: {
        long long rows = seq_q * p->pack;
        g.gx = (unsigned)((rows + p->br - 1) / p->br);
        g.gy = (unsigned)(n_splits > 0 ? n_splits : 1);
        g.gz = (unsigned)(batch * (k->heads_q / p->pack));
        break;
    }
    case CUDA_KIND_SIMT:
        g.gx = (unsigned)((seq_q + p->rows_per_cta - 1) / p->rows_per_cta);
        g.gy = (unsigned)(n_splits > 0 ? n_splits : 1);
        g.gz = (unsigned)(batch * k->heads_q);
        break;
    case CUDA_KIND_RECUR:
        g.gz = (unsigned)(batch * k->heads_q);
        if (cuda_plan_uses_step(p, seq_q)) {
            g.threads = (unsigned)p->step_threads;
            g.smem = (unsigned)p->step_smem;
        } else {
            g.gx = (unsigned)((p->dv + p->rdvc - 1) / p->rdvc);
        }
        break;
    }
    return g;
}

cuda_grid cuda_plan_merge_grid(const cuda_plan *p, const ir_kernel *k, long long batch, long long seq_q) {
    (void)p;
    long long rows = batch * k->heads_q * seq_q;
    cuda_grid g = {(unsigned)((rows + 3) / 4), 1, 1, 128, 0};
    return g;
}

/* CTAs of a plan resident on one SM: shared memory (the driver reserves 1 KB per CTA and an
 * SM holds the opt-in maximum plus that KB), threads, and the register estimate. */
static long long resident_ctas(const cuda_plan *p) {
    long long r = 32;
    if (p->smem_bytes > 0 && p->smem_limit > 0) r = (p->smem_limit + 1024) / (p->smem_bytes + 1024);
    if (p->threads > 0 && 2048 / p->threads < r) r = 2048 / p->threads;
    if (p->est_regs > 0 && p->threads > 0 && 65536 / (p->est_regs * p->threads) < r) r = 65536 / (p->est_regs * p->threads);
    return r > 0 ? r : 1;
}

int cuda_plan_num_splits(const cuda_plan *p, const ir_kernel *k, long long batch, long long seq_q, long long seq_k,
                         int sm_count) {
    if (!p->splitkv || seq_k <= 0) return 1;
    int tile = p->kind == CUDA_KIND_MMA ? p->bc : 64;
    long long n_blocks = (seq_k + tile - 1) / tile;
    if (p->splits > 0) return (int)(p->splits < n_blocks ? p->splits : n_blocks);
    cuda_grid g = cuda_plan_fwd_grid(p, k, batch, seq_q, 1);
    long long ctas = (long long)g.gx * g.gz;
    /* a decode CTA streams K/V: every resident slot should hold one, so count them all */
    long long slots = (long long)(sm_count > 0 ? sm_count : 108) * resident_ctas(p);
    if (ctas >= slots * 8 / 10) return 1;
    long long max_splits = n_blocks < 128 ? n_blocks : 128;
    if (max_splits > slots) max_splits = slots;
    double best = 0, eff[129] = {0};
    for (long long s = 1; s <= max_splits; s++) {
        double waves = (double)(ctas * s) / (double)slots;
        double full = waves > (double)(long long)waves ? (double)((long long)waves + 1) : waves;
        eff[s] = waves / full;
        if (eff[s] > best) best = eff[s];
    }
    /* Decode streams K/V: beyond filling the slots, a second wave keeps loads in flight
       while the first one's stragglers finish (H100, Llama-3 decode b32 at 32k: 8 splits
       2675 GB/s, the one-wave choice 2551). So the smallest good split count with two or
       more waves, else the smallest good one. */
    long long first = 0;
    for (long long s = 1; s <= max_splits; s++) {
        /* a split count only counts when it changes the tiles per split */
        bool eligible = s == 1 || (n_blocks + s - 1) / s != (n_blocks + s - 2) / (s - 1);
        if (!eligible || eff[s] < 0.85 * best) continue;
        if (!first) first = s;
        if ((double)(ctas * s) >= 2.0 * (double)slots) return (int)s;
    }
    return first ? (int)first : 1;
}
