/* CPU model of the device primitives the emitted CUDA kernels use (cuda-kernels.md §7).
 *
 * The generator emits the same kernel text for NVRTC and for this simulator; only the
 * primitives differ. Here every CUDA thread of a CTA is a coroutine (ucontext) scheduled
 * round-robin on one OS thread; warp collectives (ldmatrix, mma, shfl) and __syncthreads
 * are rendezvous points where the last arriving lane executes the operation for the whole
 * warp from the literal PTX rules (not from fragment_index.inc, which is what is tested).
 *
 * Checks made while running:
 *   - shared memory starts poisoned (0xFF bytes: NaN in bf16/f16/f32); reading a byte nobody
 *     wrote is an error;
 *   - hazards per byte: a read needs the writer's data to be visible (same thread, or a
 *     barrier since the write became visible); a write must not race with a read or write of
 *     another thread in the same barrier interval; cp.async data exists only after the
 *     issuing thread's cp.async.wait_group retired its group, and is read by others only
 *     after a barrier; a byte with a copy in flight must not be read or written;
 *   - alignment and bounds of every shared and global access (global ranges registered by
 *     the harness), 16-byte rows for ldmatrix and cp.async;
 *   - convergence: all lanes of a warp at the same collective, all threads at the same
 *     barrier; a thread exiting while others wait is an error;
 *   - ldmatrix bank conflicts per 8-row phase (counted);
 *   - each coroutine stack is filled with 0xFF before the CTA runs, so locals read before
 *     written show up as NaN.
 * Test-only code: it keeps the current simulation in a file-scope pointer because the kernel
 * text (ATTNC_TID, ...) has no context argument. */
#ifndef ATTNC_SIM_PRIMS_H
#define ATTNC_SIM_PRIMS_H
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

typedef unsigned int u32;
typedef unsigned short u16;
typedef long long i64;
typedef unsigned long long u64;

#define ATTNC_DEVICE static inline __attribute__((unused))
#define FRAG_FN static inline __attribute__((unused))
#define ATTNC_KERNEL static
#define ATTNC_LAUNCH_BOUNDS(t, m)
#define ATTNC_CONSTANT static const
#define ATTNC_SIM_EXPORT __attribute__((visibility("default")))
#define ATTNC_INF INFINITY
#define ATTNC_NAN NAN
#define ATTNC_DINF ((double)INFINITY)

/* ---------------------------------------------------------------- state */

enum { SIM_RUNNABLE, SIM_WAIT_WARP, SIM_WAIT_BAR, SIM_EXITED };
enum { SIM_OP_LDSM, SIM_OP_LDSM_T, SIM_OP_MMA_BF16, SIM_OP_MMA_F16, SIM_OP_SHFL, SIM_OP_SYNCWARP };
enum { SIM_MAX_THREADS = 1024, SIM_STACK = 128 * 1024, SIM_MAX_GLOBALS = 32 };

typedef struct sim_copy {
    u32 dst;
    const unsigned char *src;
    int bytes;            /* bytes read from src; the rest of the 16 is zero-filled */
    int group;            /* commit group it belongs to (-1: not committed yet) */
} sim_copy;

typedef struct sim_thread {
    int tid, epoch, state, label;
    ucontext_t ctx;
    unsigned char *stack;
    sim_copy *cp;
    int n_cp, cap_cp;
    int groups;           /* committed groups so far */
} sim_thread;

typedef struct sim_warp {
    int arrived, label, op_count;
    u32 addr[32], a[32][4], b[32][2], r[32][4];
    float c[32][4], d[32][4], fv[32], fo[32];
    int m[32];
} sim_warp;

typedef struct sim_stats {
    long long ldsm, mma, cp_async, barriers, shfl, bank_conflict_phases, lds, sts, errors;
} sim_stats;

typedef struct sim_state {
    /* launch */
    void (*entry)(const void *);
    const void *args;
    int threads, warps;
    int bx, by, bz;
    /* shared memory and its shadow */
    unsigned char *smem;
    u32 smem_size;
    int *w_tid, *w_epoch, *r_tid, *r_epoch, *pending;
    /* threads */
    sim_thread th[SIM_MAX_THREADS];
    sim_warp *warp;
    int bar_arrived, bar_label, bar_count;
    ucontext_t sched;
    sim_thread *cur;
    /* global ranges */
    const unsigned char *g_lo[SIM_MAX_GLOBALS];
    size_t g_len[SIM_MAX_GLOBALS];
    int n_globals;
    unsigned char scratch[64];
    /* report */
    sim_stats stats;
    char *report;
    size_t report_len, report_used;
} sim_state;

static sim_state *sim_g;

static void sim_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sim_error(const char *fmt, ...) {
    sim_state *s = sim_g;
    s->stats.errors++;
    if (s->stats.errors > 20 || !s->report || s->report_used + 2 >= s->report_len) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    int n = snprintf(s->report + s->report_used, s->report_len - s->report_used,
                     "CTA (%d,%d,%d) thread %d: %s\n", s->bx, s->by, s->bz, s->cur ? s->cur->tid : -1, line);
    if (n > 0) s->report_used += (size_t)n < s->report_len - s->report_used ? (size_t)n : s->report_len - s->report_used - 1;
}

/* ---------------------------------------------------------------- scheduling */

#define ATTNC_TID (sim_g->cur->tid)
#define ATTNC_BID_X (sim_g->bx)
#define ATTNC_BID_Y (sim_g->by)
#define ATTNC_BID_Z (sim_g->bz)

static void sim_yield(void) {
    sim_thread *me = sim_g->cur;
    swapcontext(&me->ctx, &sim_g->sched);
}

static int sim_active_in_warp(int w) {
    int n = 0;
    for (int l = 0; l < 32; l++) {
        int t = 32 * w + l;
        if (t < sim_g->threads && sim_g->th[t].state != SIM_EXITED) n++;
    }
    return n;
}

static int sim_active_threads(void) {
    int n = 0;
    for (int t = 0; t < sim_g->threads; t++)
        if (sim_g->th[t].state != SIM_EXITED) n++;
    return n;
}

static void sim_execute_warp_op(int w);

static void sim_try_complete_warp(int w) {
    sim_warp *wp = &sim_g->warp[w];
    if (wp->arrived == 0 || wp->arrived < sim_active_in_warp(w)) return;
    if (wp->arrived < 32 && 32 * w + 32 <= sim_g->threads)
        sim_error("warp %d: %d of 32 lanes reached a .sync.aligned collective (others exited)", w, wp->arrived);
    sim_execute_warp_op(w);
    wp->arrived = 0;
    for (int l = 0; l < 32; l++) {
        int t = 32 * w + l;
        if (t < sim_g->threads && sim_g->th[t].state == SIM_WAIT_WARP) sim_g->th[t].state = SIM_RUNNABLE;
    }
}

/* Arrive at a warp collective with this lane's inputs already deposited. */
static void sim_warp_collective(int label) {
    sim_thread *me = sim_g->cur;
    int w = me->tid >> 5;
    sim_warp *wp = &sim_g->warp[w];
    if (wp->arrived == 0) wp->label = label;
    else if (wp->label != label)
        sim_error("warp %d: lanes at different collectives (%d vs %d): divergent .aligned op", w, wp->label, label);
    wp->arrived++;
    me->state = SIM_WAIT_WARP;
    sim_try_complete_warp(w);
    if (me->state == SIM_WAIT_WARP) sim_yield();
}

static void sim_try_complete_barrier(void) {
    sim_state *s = sim_g;
    if (s->bar_arrived == 0 || s->bar_arrived < sim_active_threads()) return;
    if (s->bar_arrived < s->threads) sim_error("__syncthreads reached by %d of %d threads (others exited)", s->bar_arrived, s->threads);
    s->bar_arrived = 0;
    s->stats.barriers++;
    for (int t = 0; t < s->threads; t++)
        if (s->th[t].state == SIM_WAIT_BAR) {
            s->th[t].state = SIM_RUNNABLE;
            s->th[t].epoch++;
        }
}

ATTNC_DEVICE void bar_sync(void) {
    sim_thread *me = sim_g->cur;
    sim_g->bar_arrived++;
    me->state = SIM_WAIT_BAR;
    sim_try_complete_barrier();
    if (me->state == SIM_WAIT_BAR) sim_yield();
}

ATTNC_DEVICE void warp_sync(void) { sim_warp_collective(SIM_OP_SYNCWARP); }

/* ---------------------------------------------------------------- shared memory model */

ATTNC_DEVICE u32 smem_base(void) { return 0; }

static bool sim_smem_range(u32 addr, u32 bytes, u32 align, const char *what) {
    if (addr % align) {
        sim_error("%s: shared address %u not %u-byte aligned", what, addr, align);
        return false;
    }
    if ((u64)addr + bytes > sim_g->smem_size) {
        sim_error("%s: shared access [%u, %u) beyond the %u bytes of dynamic shared memory", what, addr, addr + bytes,
                  sim_g->smem_size);
        return false;
    }
    return true;
}

/* A read of `bytes` at addr by thread tid. */
static void sim_shadow_read(int tid, int epoch, u32 addr, u32 bytes, const char *what) {
    sim_state *s = sim_g;
    for (u32 i = addr; i < addr + bytes; i++) {
        if (s->pending[i] >= 0) {
            sim_error("%s: byte %u read while thread %d's cp.async to it is in flight", what, i, s->pending[i]);
            return;
        }
        if (s->w_tid[i] < 0) {
            sim_error("%s: byte %u read but never written (poisoned)", what, i);
            return;
        }
        if (s->w_tid[i] != tid && s->w_epoch[i] >= epoch) {
            sim_error("%s: byte %u written by thread %d in this barrier interval (RAW without __syncthreads)", what, i,
                      s->w_tid[i]);
            return;
        }
        if (s->r_epoch[i] == epoch && s->r_tid[i] != tid) s->r_tid[i] = -2;
        else { s->r_tid[i] = tid; s->r_epoch[i] = epoch; }
    }
}

/* A write (or an issued copy) of `bytes` at addr by thread tid: no other thread may have read,
   written or have a copy in flight to it in the same barrier interval. */
static void sim_shadow_write_check(int tid, int epoch, u32 addr, u32 bytes, const char *what) {
    sim_state *s = sim_g;
    for (u32 i = addr; i < addr + bytes; i++) {
        if (s->pending[i] >= 0 && s->pending[i] != tid) {
            sim_error("%s: byte %u overwritten while thread %d's cp.async to it is in flight", what, i, s->pending[i]);
            return;
        }
        if (s->pending[i] == tid) {
            sim_error("%s: byte %u targeted by two in-flight copies of this thread", what, i);
            return;
        }
        if (s->r_epoch[i] == epoch && s->r_tid[i] != tid) {
            sim_error("%s: byte %u overwritten while thread %d read it in this barrier interval (WAR without __syncthreads)",
                      what, i, s->r_tid[i] == -2 ? -1 : s->r_tid[i]);
            return;
        }
        if (s->w_tid[i] >= 0 && s->w_tid[i] != tid && s->w_epoch[i] == epoch) {
            sim_error("%s: byte %u written by threads %d and %d in one barrier interval", what, i, s->w_tid[i], tid);
            return;
        }
    }
}

static void sim_shadow_written(int tid, int epoch, u32 addr, u32 bytes) {
    for (u32 i = addr; i < addr + bytes; i++) {
        sim_g->w_tid[i] = tid;
        sim_g->w_epoch[i] = epoch;
    }
}

ATTNC_DEVICE u16 lds_u16(u32 a) {
    sim_thread *me = sim_g->cur;
    u16 v = 0xFFFF;
    sim_g->stats.lds++;
    if (!sim_smem_range(a, 2, 2, "ld.shared.u16")) return v;
    sim_shadow_read(me->tid, me->epoch, a, 2, "ld.shared.u16");
    memcpy(&v, sim_g->smem + a, 2);
    return v;
}
ATTNC_DEVICE void sts_u16(u32 a, u16 v) {
    sim_thread *me = sim_g->cur;
    sim_g->stats.sts++;
    if (!sim_smem_range(a, 2, 2, "st.shared.u16")) return;
    sim_shadow_write_check(me->tid, me->epoch, a, 2, "st.shared.u16");
    memcpy(sim_g->smem + a, &v, 2);
    sim_shadow_written(me->tid, me->epoch, a, 2);
}
ATTNC_DEVICE u32 lds_u32(u32 a) {
    sim_thread *me = sim_g->cur;
    u32 v = 0xFFFFFFFFu;
    sim_g->stats.lds++;
    if (!sim_smem_range(a, 4, 4, "ld.shared.u32")) return v;
    sim_shadow_read(me->tid, me->epoch, a, 4, "ld.shared.u32");
    memcpy(&v, sim_g->smem + a, 4);
    return v;
}
ATTNC_DEVICE void sts_u32(u32 a, u32 v) {
    sim_thread *me = sim_g->cur;
    sim_g->stats.sts++;
    if (!sim_smem_range(a, 4, 4, "st.shared.u32")) return;
    sim_shadow_write_check(me->tid, me->epoch, a, 4, "st.shared.u32");
    memcpy(sim_g->smem + a, &v, 4);
    sim_shadow_written(me->tid, me->epoch, a, 4);
}
ATTNC_DEVICE float lds_f32(u32 a) {
    sim_thread *me = sim_g->cur;
    float v = NAN;
    sim_g->stats.lds++;
    if (!sim_smem_range(a, 4, 4, "ld.shared.f32")) return v;
    sim_shadow_read(me->tid, me->epoch, a, 4, "ld.shared.f32");
    memcpy(&v, sim_g->smem + a, 4);
    return v;
}
ATTNC_DEVICE void sts_f32(u32 a, float v) {
    sim_thread *me = sim_g->cur;
    sim_g->stats.sts++;
    if (!sim_smem_range(a, 4, 4, "st.shared.f32")) return;
    sim_shadow_write_check(me->tid, me->epoch, a, 4, "st.shared.f32");
    memcpy(sim_g->smem + a, &v, 4);
    sim_shadow_written(me->tid, me->epoch, a, 4);
}
ATTNC_DEVICE void sts_f32x2(u32 a, float x, float y) {
    sim_thread *me = sim_g->cur;
    float v[2] = {x, y};
    sim_g->stats.sts++;
    if (!sim_smem_range(a, 8, 8, "st.shared.v2.f32")) return;
    sim_shadow_write_check(me->tid, me->epoch, a, 8, "st.shared.v2.f32");
    memcpy(sim_g->smem + a, v, 8);
    sim_shadow_written(me->tid, me->epoch, a, 8);
}
static inline void sim_lds16(u32 a, void *v, const char *what) {
    sim_thread *me = sim_g->cur;
    sim_g->stats.lds++;
    if (!sim_smem_range(a, 16, 16, what)) return;
    sim_shadow_read(me->tid, me->epoch, a, 16, what);
    memcpy(v, sim_g->smem + a, 16);
}
ATTNC_DEVICE void lds_f32x4(u32 a, float *v) {
    v[0] = v[1] = v[2] = v[3] = NAN;
    sim_lds16(a, v, "ld.shared.v4.f32");
}
ATTNC_DEVICE void lds_u32x4(u32 a, u32 *v) {
    v[0] = v[1] = v[2] = v[3] = 0xFFFFFFFFu;
    sim_lds16(a, v, "ld.shared.v4.u32");
}

/* ---------------------------------------------------------------- global memory model */

static void *sim_gcheck(const void *p, size_t bytes, int is_store) {
    sim_state *s = sim_g;
    const unsigned char *c = (const unsigned char *)p;
    if ((uintptr_t)c % bytes) {
        sim_error("global %s of %zu bytes at %p misaligned", is_store ? "store" : "load", bytes, p);
        return s->scratch;
    }
    for (int i = 0; i < s->n_globals; i++)
        if (c >= s->g_lo[i] && c + bytes <= s->g_lo[i] + s->g_len[i]) return (void *)c;
    sim_error("global %s of %zu bytes at %p outside every tensor passed to the kernel", is_store ? "store" : "load", bytes, p);
    memset(s->scratch, 0, sizeof s->scratch);
    return s->scratch;
}
#define LDG(p) (*(__typeof__(p))sim_gcheck((p), sizeof *(p), 0))
#define STG(p, v) (*(__typeof__(p))sim_gcheck((p), sizeof *(p), 1) = (v))

/* ---------------------------------------------------------------- cp.async */

ATTNC_DEVICE void cp_async16(u32 dst, const void *src, int bytes) {
    sim_thread *me = sim_g->cur;
    sim_g->stats.cp_async++;
    if (!sim_smem_range(dst, 16, 16, "cp.async dst")) return;
    if ((uintptr_t)src % 16) sim_error("cp.async src %p not 16-byte aligned", src);
    if (bytes < 0 || bytes > 16) sim_error("cp.async src-size %d outside [0, 16]", bytes);
    if (bytes > 0) sim_gcheck(src, (size_t)bytes, 0);
    sim_shadow_write_check(me->tid, me->epoch, dst, 16, "cp.async");
    if (me->n_cp == me->cap_cp) {
        me->cap_cp = me->cap_cp ? 2 * me->cap_cp : 64;
        me->cp = (sim_copy *)realloc(me->cp, (size_t)me->cap_cp * sizeof *me->cp);
    }
    sim_copy c = {dst, (const unsigned char *)src, bytes, -1};
    me->cp[me->n_cp++] = c;
    for (u32 i = dst; i < dst + 16; i++) sim_g->pending[i] = me->tid;
}

ATTNC_DEVICE void cp_async_commit(void) {
    sim_thread *me = sim_g->cur;
    for (int i = 0; i < me->n_cp; i++)
        if (me->cp[i].group < 0) me->cp[i].group = me->groups;
    me->groups++;   /* an empty group still counts */
}

/* cp.async.wait_group n: every committed group but the n most recent is complete; the data
   lands now, visible to this thread (others need a barrier). */
static void sim_cp_wait(int n) {
    sim_thread *me = sim_g->cur;
    int keep_from = me->groups - n;
    int j = 0;
    for (int i = 0; i < me->n_cp; i++) {
        sim_copy *c = &me->cp[i];
        if (c->group >= 0 && c->group < keep_from) {
            unsigned char buf[16] = {0};
            if (c->bytes > 0) memcpy(buf, sim_gcheck(c->src, (size_t)c->bytes, 0), (size_t)c->bytes);
            memcpy(sim_g->smem + c->dst, buf, 16);
            for (u32 b = c->dst; b < c->dst + 16; b++) sim_g->pending[b] = -1;
            sim_shadow_written(me->tid, me->epoch, c->dst, 16);
        } else {
            me->cp[j++] = *c;
        }
    }
    me->n_cp = j;
}
ATTNC_DEVICE void cp_async_wait0(void) { sim_cp_wait(0); }
ATTNC_DEVICE void cp_async_wait1(void) { sim_cp_wait(1); }

/* ---------------------------------------------------------------- numeric conversions */

static float sim_u2f(u32 u) { float f; memcpy(&f, &u, 4); return f; }
static u32 sim_f2u(float f) { u32 u; memcpy(&u, &f, 4); return u; }

ATTNC_DEVICE float bf16_to_f(u16 x) { return sim_u2f((u32)x << 16); }
ATTNC_DEVICE u16 f_to_bf16(float x) {   /* cvt.rn.bf16.f32: round to nearest even, NaN kept */
    u32 u = sim_f2u(x);
    if (isnan(x)) return (u16)((u >> 16) | 0x40);
    u32 lsb = (u >> 16) & 1;
    u += 0x7FFF + lsb;
    return (u16)(u >> 16);
}
ATTNC_DEVICE float f16_to_f(u16 h) {
    u32 sign = (u32)(h >> 15) << 31, exp = (h >> 10) & 31, man = h & 1023;
    if (exp == 0) {
        float v = ldexpf((float)man, -24);
        return sign ? -v : v;
    }
    if (exp == 31) return sim_u2f(sign | 0x7F800000u | (man << 13));
    return sim_u2f(sign | ((exp + 112) << 23) | (man << 13));
}
ATTNC_DEVICE u16 f_to_f16(float x) {   /* round to nearest even */
    u32 u = sim_f2u(x), sign = (u >> 16) & 0x8000;
    float a = fabsf(x);
    if (isnan(x)) return (u16)(sign | 0x7E00);
    if (a >= 65520.f) return (u16)(sign | 0x7C00);
    if (a < ldexpf(1.f, -14)) {   /* subnormal: multiples of 2^-24 */
        float q = a * 16777216.f;
        float r = rintf(q);
        return (u16)(sign | (u16)r);
    }
    int e;
    float m = frexpf(a, &e);     /* a = m * 2^e, m in [0.5, 1) */
    float scaled = ldexpf(m, 11);   /* 11 significant bits */
    float r = rintf(scaled);
    if (r >= 2048.f) { r /= 2; e++; }
    u32 exp = (u32)(e - 1 + 15), man = (u32)r - 1024;
    if (exp >= 31) return (u16)(sign | 0x7C00);
    return (u16)(sign | (exp << 10) | man);
}

/* cvt.rn.bf16x2.f32 d, a, b: a goes to the UPPER half, b to the lower (PTX ISA, cvt). */
ATTNC_DEVICE u32 cvt_rn_bf16x2(float a, float b) { return ((u32)f_to_bf16(a) << 16) | f_to_bf16(b); }
ATTNC_DEVICE u32 cvt_rn_f16x2(float a, float b) { return ((u32)f_to_f16(a) << 16) | f_to_f16(b); }

ATTNC_DEVICE float ex2(float x) { return exp2f(x); }
ATTNC_DEVICE void attnc_sincos(float x, float *s, float *c) { *s = sinf(x); *c = cosf(x); }
ATTNC_DEVICE int attnc_tid_opaque(void) { return ATTNC_TID; }

/* ---------------------------------------------------------------- warp collectives */

ATTNC_DEVICE void ldsm_x4(u32 addr, u32 *r) {
    sim_thread *me = sim_g->cur;
    sim_warp *w = &sim_g->warp[me->tid >> 5];
    w->addr[me->tid & 31] = addr;
    sim_warp_collective(SIM_OP_LDSM);
    memcpy(r, w->r[me->tid & 31], 16);
}
ATTNC_DEVICE void ldsm_x4_t(u32 addr, u32 *r) {
    sim_thread *me = sim_g->cur;
    sim_warp *w = &sim_g->warp[me->tid >> 5];
    w->addr[me->tid & 31] = addr;
    sim_warp_collective(SIM_OP_LDSM_T);
    memcpy(r, w->r[me->tid & 31], 16);
}
ATTNC_DEVICE void sim_mma(float *d, const u32 *a, const u32 *b, int op) {
    sim_thread *me = sim_g->cur;
    sim_warp *w = &sim_g->warp[me->tid >> 5];
    int l = me->tid & 31;
    memcpy(w->a[l], a, 16);
    memcpy(w->b[l], b, 8);
    memcpy(w->c[l], d, 16);
    sim_warp_collective(op);
    memcpy(d, w->d[l], 16);
}
ATTNC_DEVICE void mma_bf16(float *d, const u32 *a, const u32 *b) { sim_mma(d, a, b, SIM_OP_MMA_BF16); }
ATTNC_DEVICE void mma_f16(float *d, const u32 *a, const u32 *b) { sim_mma(d, a, b, SIM_OP_MMA_F16); }
ATTNC_DEVICE float shfl_xor(float v, int m) {
    sim_thread *me = sim_g->cur;
    sim_warp *w = &sim_g->warp[me->tid >> 5];
    w->fv[me->tid & 31] = v;
    w->m[me->tid & 31] = m;
    sim_warp_collective(SIM_OP_SHFL);
    return w->fo[me->tid & 31];
}

/* ldmatrix.m8n8.x4(.trans).b16 [PTX]: matrix i takes its 8 row addresses from lanes
   8i..8i+7; register i of lane l gets, without .trans, M_i[l/4][2(l%4)] (low half) and
   M_i[l/4][2(l%4)+1] (high); with .trans M_i[2(l%4)][l/4] and M_i[2(l%4)+1][l/4]. */
static void sim_ldsm(sim_warp *w, int warp, bool trans) {
    sim_state *s = sim_g;
    s->stats.ldsm++;
    for (int i = 0; i < 4; i++) {
        /* bank groups of the 8 row reads of this phase */
        int seen[8] = {0}, worst = 0;
        for (int row = 0; row < 8; row++) {
            u32 a = w->addr[8 * i + row];
            int slot = (int)((a / 16) % 8);
            if (++seen[slot] > worst) worst = seen[slot];
        }
        if (worst > 1) s->stats.bank_conflict_phases++;
    }
    for (int i = 0; i < 4; i++)
        for (int row = 0; row < 8; row++) {
            u32 a = w->addr[8 * i + row];
            if (!sim_smem_range(a, 16, 16, trans ? "ldmatrix.trans row" : "ldmatrix row")) return;
        }
    for (int l = 0; l < 32; l++) {
        int tid = 32 * warp + l;
        sim_thread *t = &s->th[tid];
        for (int i = 0; i < 4; i++) {
            u16 lo, hi;
            u32 alo, ahi;
            if (!trans) {
                alo = w->addr[8 * i + (l >> 2)] + 2 * (2 * (l & 3));
                ahi = alo + 2;
            } else {
                alo = w->addr[8 * i + 2 * (l & 3)] + 2 * (l >> 2);
                ahi = w->addr[8 * i + 2 * (l & 3) + 1] + 2 * (l >> 2);
            }
            sim_shadow_read(tid, t->epoch, alo, 2, trans ? "ldmatrix.trans" : "ldmatrix");
            sim_shadow_read(tid, t->epoch, ahi, 2, trans ? "ldmatrix.trans" : "ldmatrix");
            memcpy(&lo, s->smem + alo, 2);
            memcpy(&hi, s->smem + ahi, 2);
            w->r[l][i] = (u32)lo | ((u32)hi << 16);
        }
    }
}

/* mma.m16n8k16.row.col.f32.{bf16,f16}: fragments per PTX "Matrix Fragments for
   mma.m16n8k16 with floating point type"; g = l/4, t = l%4.
   A (16x16): a0,a1 (g, 2t..2t+1) a2,a3 (g+8, 2t..) a4,a5 (g, 2t+8..) a6,a7 (g+8, 2t+8..);
   B (16x8):  b0,b1 (k = 2t..2t+1, n = g) b2,b3 (k = 2t+8..2t+9, n = g);
   C/D:       c0 (g, 2t) c1 (g, 2t+1) c2 (g+8, 2t) c3 (g+8, 2t+1). Low half = first element. */
static void sim_mma_exec(sim_warp *w, bool f16) {
    float A[16][16], B[16][8], C[16][8];
    sim_g->stats.mma++;
    for (int l = 0; l < 32; l++) {
        int g = l >> 2, t = l & 3;
        for (int e = 0; e < 8; e++) {
            u32 reg = w->a[l][e >> 1];
            u16 h = (e & 1) ? (u16)(reg >> 16) : (u16)(reg & 0xFFFF);
            int row = g + ((e >> 1) & 1) * 8, col = 2 * t + (e & 1) + ((e >> 2) & 1) * 8;
            A[row][col] = f16 ? f16_to_f(h) : bf16_to_f(h);
        }
        for (int e = 0; e < 4; e++) {
            u32 reg = w->b[l][e >> 1];
            u16 h = (e & 1) ? (u16)(reg >> 16) : (u16)(reg & 0xFFFF);
            int k = 2 * t + (e & 1) + (e >> 1) * 8;
            B[k][g] = f16 ? f16_to_f(h) : bf16_to_f(h);
        }
        for (int e = 0; e < 4; e++) C[g + 8 * (e >> 1)][2 * t + (e & 1)] = w->c[l][e];
    }
    for (int l = 0; l < 32; l++) {
        int g = l >> 2, t = l & 3;
        for (int e = 0; e < 4; e++) {
            int row = g + 8 * (e >> 1), col = 2 * t + (e & 1);
            double acc = C[row][col];
            for (int k = 0; k < 16; k++) acc += (double)A[row][k] * (double)B[k][col];
            w->d[l][e] = (float)acc;
        }
    }
}

static void sim_execute_warp_op(int warp) {
    sim_warp *w = &sim_g->warp[warp];
    w->op_count++;
    switch (w->label) {
    case SIM_OP_LDSM: sim_ldsm(w, warp, false); break;
    case SIM_OP_LDSM_T: sim_ldsm(w, warp, true); break;
    case SIM_OP_MMA_BF16: sim_mma_exec(w, false); break;
    case SIM_OP_MMA_F16: sim_mma_exec(w, true); break;
    case SIM_OP_SHFL:
        sim_g->stats.shfl++;
        for (int l = 0; l < 32; l++) {
            if (w->m[l] != w->m[0]) sim_error("shfl.xor lanes disagree on the lane mask");
            w->fo[l] = w->fv[l ^ (w->m[l] & 31)];
        }
        break;
    default: break;
    }
}

/* ---------------------------------------------------------------- launcher */

static void sim_thread_main(void) {
    sim_state *s = sim_g;
    s->entry(s->args);
    sim_thread *me = s->cur;
    if (me->n_cp) {
        sim_error("thread exits with %d cp.async copies never waited for", me->n_cp);
        me->n_cp = 0;
    }
    me->state = SIM_EXITED;
    /* an exit can complete a rendezvous the others wait at */
    sim_try_complete_warp(me->tid >> 5);
    if (s->bar_arrived) {
        sim_error("thread exited while %d threads wait at __syncthreads", s->bar_arrived);
        sim_try_complete_barrier();
    }
}

typedef struct attnc_sim_global {
    const void *ptr;
    size_t bytes;
} attnc_sim_global;

/* Runs one grid. Returns the number of errors; their text goes to report. */
ATTNC_SIM_EXPORT long long attnc_sim_launch(void (*entry)(const void *), unsigned gx, unsigned gy, unsigned gz,
                                            unsigned threads, unsigned smem_bytes, const void *args,
                                            const attnc_sim_global *globals, int n_globals, char *report,
                                            size_t report_len, long long *stats_out) {
    sim_state *s = (sim_state *)calloc(1, sizeof *s);
    if (!s) return -1;
    sim_g = s;
    s->entry = entry;
    s->args = args;
    s->threads = (int)threads;
    s->warps = ((int)threads + 31) / 32;
    s->report = report;
    s->report_len = report_len;
    if (report && report_len) report[0] = 0;
    if (threads == 0 || threads > SIM_MAX_THREADS) {
        sim_error("bad block size %u", threads);
        goto done;
    }
    for (int i = 0; i < n_globals && i < SIM_MAX_GLOBALS; i++) {
        s->g_lo[i] = (const unsigned char *)globals[i].ptr;
        s->g_len[i] = globals[i].bytes;
        s->n_globals++;
    }
    s->smem_size = smem_bytes;
    s->smem = (unsigned char *)malloc(smem_bytes + 16);
    s->w_tid = (int *)malloc((smem_bytes + 16) * sizeof(int));
    s->w_epoch = (int *)malloc((smem_bytes + 16) * sizeof(int));
    s->r_tid = (int *)malloc((smem_bytes + 16) * sizeof(int));
    s->r_epoch = (int *)malloc((smem_bytes + 16) * sizeof(int));
    s->pending = (int *)malloc((smem_bytes + 16) * sizeof(int));
    s->warp = (sim_warp *)calloc((size_t)s->warps, sizeof *s->warp);
    for (int t = 0; t < s->threads; t++) s->th[t].stack = (unsigned char *)malloc(SIM_STACK);
    for (unsigned bz = 0; bz < gz; bz++)
        for (unsigned by = 0; by < gy; by++)
            for (unsigned bx = 0; bx < gx; bx++) {
                s->bx = (int)bx, s->by = (int)by, s->bz = (int)bz;
                memset(s->smem, 0xFF, smem_bytes);
                for (u32 i = 0; i < smem_bytes; i++) {
                    s->w_tid[i] = -1, s->w_epoch[i] = -1, s->r_tid[i] = -1, s->r_epoch[i] = -1, s->pending[i] = -1;
                }
                s->bar_arrived = 0;
                memset(s->warp, 0, (size_t)s->warps * sizeof *s->warp);
                for (int t = 0; t < s->threads; t++) {
                    sim_thread *th = &s->th[t];
                    th->tid = t, th->epoch = 0, th->state = SIM_RUNNABLE, th->n_cp = 0, th->groups = 0;
                    memset(th->stack, 0xFF, SIM_STACK);   /* locals read before written: NaN */
                    getcontext(&th->ctx);
                    th->ctx.uc_stack.ss_sp = th->stack;
                    th->ctx.uc_stack.ss_size = SIM_STACK;
                    th->ctx.uc_link = &s->sched;
                    makecontext(&th->ctx, sim_thread_main, 0);
                }
                for (;;) {
                    bool ran = false, alive = false;
                    for (int t = 0; t < s->threads; t++) {
                        if (s->th[t].state != SIM_EXITED) alive = true;
                        if (s->th[t].state != SIM_RUNNABLE) continue;
                        ran = true;
                        s->cur = &s->th[t];
                        swapcontext(&s->sched, &s->th[t].ctx);
                        s->cur = NULL;
                    }
                    if (!alive) break;
                    if (!ran) {
                        sim_error("deadlock: threads wait at a barrier or collective that can never complete");
                        goto done;
                    }
                }
                if (s->stats.errors > 20) goto done;
            }
done:
    for (int t = 0; t < SIM_MAX_THREADS; t++) {
        free(s->th[t].stack);
        free(s->th[t].cp);
    }
    free(s->smem);
    free(s->w_tid);
    free(s->w_epoch);
    free(s->r_tid);
    free(s->r_epoch);
    free(s->pending);
    free(s->warp);
    long long errors = s->stats.errors;
    if (stats_out) {
        stats_out[0] = s->stats.ldsm, stats_out[1] = s->stats.mma, stats_out[2] = s->stats.cp_async;
        stats_out[3] = s->stats.barriers, stats_out[4] = s->stats.shfl, stats_out[5] = s->stats.bank_conflict_phases;
        stats_out[6] = s->stats.lds, stats_out[7] = s->stats.sts;
    }
    free(s);
    sim_g = NULL;
    return errors;
}

#endif
