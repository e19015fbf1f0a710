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
    } else {
        p->wr = (p->d <= 128 && p->wc == 1) ? 8 : 4;
    }
    /* at most 8 warps: more would cap registers at 128 per thread */
    while (p->wr * p->wc > 8 && p->wr > 1) p->wr /= 2;
    p->br = 16 * p->wr;
    p->threads = 32 * p->wr * p->wc;
    const int bcs[] = {128, 64, 32, 16};
    int bc_cap = k->phase == IR_DECODE ? 64 : (p->d <= 64 ? 128 : 64);
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

bool cuda_plan_override(cuda_plan *p, const char *spec, char *err, size_t errlen) {
    if (p->kind != CUDA_KIND_MMA) {
        snprintf(err, errlen, "plan overrides apply to tensor-core plans only");
        return false;
    }
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
    if (k->family == IR_RECURRENCE) {
        p->kind = CUDA_KIND_RECUR;
        p->threads = p->recur_threads = 128;
        p->pack = 1;
        /* state, z, phi(q), phi(k), per-key decay, v, v scale, scalar decay: all f32 */
        p->smem_bytes = 4 * (p->dqk * p->dv + 4 * p->dqk + 2 * p->dv + 4);
        if (p->smem_bytes > p->smem_limit) {
            snprintf(err, errlen, "kernel '%s': a %d x %d f32 state (%d KB) does not fit in %s's %d KB of shared memory",
                     k->name, p->dqk, p->dv, p->smem_bytes / 1024, arch, p->smem_limit / 1024);
            return false;
        }
        return true;
    }
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
        g.gx = 1;
        g.gz = (unsigned)(batch * k->heads_q);
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

int cuda_plan_num_splits(const cuda_plan *p, const ir_kernel *k, long long batch, long long seq_q, long long seq_k,
                         int sm_count) {
    if (!p->splitkv || seq_k <= 0) return 1;
    int tile = p->kind == CUDA_KIND_MMA ? p->bc : 64;
    long long n_blocks = (seq_k + tile - 1) / tile;
    cuda_grid g = cuda_plan_fwd_grid(p, k, batch, seq_q, 1);
    long long ctas = (long long)g.gx * g.gz;
    /* small CTAs co-reside: count 2 slots per SM for <= 128 threads, as FlashAttention does */
    long long slots = (long long)(sm_count > 0 ? sm_count : 108) * (p->threads <= 128 ? 2 : 1);
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
    for (long long s = 1; s <= max_splits; s++) {
        /* a split count only counts when it changes the tiles per split */
        bool eligible = s == 1 || (n_blocks + s - 1) / s != (n_blocks + s - 2) / (s - 1);
        if (eligible && eff[s] >= 0.85 * best) return (int)s;
    }
    return 1;
}
