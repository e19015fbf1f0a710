/* The recurrence kernels' own JIT launcher (cpu_recur.h), for tests and the benchmark:
 * it can force a form (args.flags) and a thread count, and accepts f64 views for every
 * output (o, state_out, norm_out), computing into temporaries of the kernel's dtypes.
 * A compiled kernel owns its thread pools and workspace; no process-wide state. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <llvm-c/Core.h>
#include "codegen/llvm/cpu_kernel.h"
#include "codegen/llvm/cpu_recur.h"
#include "ir/signature.h"
#include "runtime/llvm/cpu_jit.h"
#include "runtime/llvm/cpu_split.h"
#include "runtime/tensor_access.h"
#include "runtime/threadpool.h"

enum { MAX_POOL = 64 };

struct cpu_recur_compiled {
    cpu_jit *jit;
    cpu_workspace_fn workspace;
    cpu_num_items_fn num_items;
    cpu_run_items_fn run_items;
    cpu_driver_fn driver;
    pthread_mutex_t lock;           /* one launch at a time: workspace and pools are shared */
    attnc_pool *pools[MAX_POOL + 1];
    void *ws;
    int64_t ws_cap;
};

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

cpu_recur_compiled *cpu_recur_compile(const ir_kernel *k, double *ms_out, char *err, size_t errlen) {
    cpu_target t;
    if (!cpu_target_host(&t, err, errlen)) return NULL;
    return cpu_recur_compile_for(k, &t, ms_out, err, errlen);
}

cpu_recur_compiled *cpu_recur_compile_for(const ir_kernel *k, const cpu_target *target, double *ms_out, char *err,
                                          size_t errlen) {
    double t0 = now_ms();
    cpu_target t = *target;
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef m = cpu_recur_emit(k, &t, ctx, err, errlen);
    LLVMMemoryBufferRef objs[CPU_SPLIT_MAX];
    int n = m ? cpu_split_compile(m, &t, cpu_split_default_parts(), objs, err, errlen) : 0;
    LLVMContextDispose(ctx);
    cpu_jit *jit = n ? cpu_jit_create_from_objects(&t, objs, n, err, errlen) : NULL;
    if (!jit) return NULL;
    cpu_recur_compiled *ck = calloc(1, sizeof *ck);
    if (!ck) {
        snprintf(err, errlen, "out of memory");
        cpu_jit_destroy(jit);
        return NULL;
    }
    ck->jit = jit;
    pthread_mutex_init(&ck->lock, NULL);
    cpu_entries e;
    char name[300];
    cpu_symbol(k, "", name, sizeof name);
    if (cpu_lookup_entries(jit, k, &e, err, errlen)) {
        ck->workspace = e.workspace, ck->num_items = e.num_items, ck->run_items = e.run_items;
        ck->driver = (cpu_driver_fn)cpu_jit_lookup(jit, name, err, errlen);
    }
    if (!ck->driver) {
        cpu_recur_free(ck);
        return NULL;
    }
    if (ms_out) *ms_out = now_ms() - t0;
    return ck;
}

void cpu_recur_free(cpu_recur_compiled *ck) {
    if (!ck) return;
    cpu_jit_destroy(ck->jit);
    for (int i = 0; i <= MAX_POOL; i++)
        if (ck->pools[i]) attnc_pool_destroy(ck->pools[i]);
    pthread_mutex_destroy(&ck->lock);
    free(ck->ws);
    free(ck);
}

typedef struct pool_ctx {
    cpu_run_items_fn run;
    const cpu_args *args;
    int phase;
} pool_ctx;

static void pool_cb(void *ctx, int64_t begin, int64_t end, int thread) {
    pool_ctx *pc = ctx;
    pc->run(pc->args, pc->phase, begin, end, thread);
}

/* An output given as an f64 view: computed into a contiguous temporary first. */
typedef struct widen_out {
    attnc_tensor *view;
    attnc_tensor tmp;
} widen_out;

static void widen_back(widen_out *w) {
    int64_t count = tensor_count(&w->tmp);
    int64_t idx[ATTNC_MAX_DIMS] = { 0 };
    for (int64_t e = 0; e < count; e++) {
        tensor_store(w->view, tensor_offset(w->view, idx), tensor_load(&w->tmp, tensor_offset(&w->tmp, idx)));
        for (int d = w->tmp.ndim - 1; d >= 0; d--) {
            if (++idx[d] < w->tmp.shape[d]) break;
            idx[d] = 0;
        }
    }
}

static bool launch(cpu_recur_compiled *ck, const ir_kernel *k, int n_threads, int form, bool driver, int64_t batch,
                   int64_t seq, attnc_tensor *tensors, int n_tensors, char *err, size_t errlen);

bool cpu_recur_launch(cpu_recur_compiled *ck, const ir_kernel *k, int n_threads, int form, int64_t batch,
                      int64_t seq, attnc_tensor *tensors, int n_tensors, char *err, size_t errlen) {
    return launch(ck, k, n_threads, form, false, batch, seq, tensors, n_tensors, err, errlen);
}

bool cpu_recur_call_driver(cpu_recur_compiled *ck, const ir_kernel *k, int form, int64_t batch, int64_t seq,
                           attnc_tensor *tensors, int n_tensors, char *err, size_t errlen) {
    return launch(ck, k, 1, form, true, batch, seq, tensors, n_tensors, err, errlen);
}

static bool launch(cpu_recur_compiled *ck, const ir_kernel *k, int n_threads, int form, bool driver, int64_t batch,
                   int64_t seq, attnc_tensor *tensors, int n_tensors, char *err, size_t errlen) {
    if (batch < 0 || seq < 0) {
        snprintf(err, errlen, "batch and sequence length must be >= 0, got batch %lld, seq %lld", (long long)batch,
                 (long long)seq);
        return false;
    }
    if (n_threads <= 0) {
        const char *env = getenv("ATTNC_CPU_THREADS");
        n_threads = env && atoi(env) > 0 ? atoi(env) : attnc_cpu_count();
    }
    if (n_threads > MAX_POOL) n_threads = MAX_POOL;
    sig_tensor sig[SIG_MAX_TENSORS];
    int n_sig = ir_signature(k, batch, seq, seq, sig);
    if (!sig_check(sig, n_sig, tensors, n_tensors, err, errlen)) return false;
    cpu_abi abi;
    cpu_kernel_abi(k, &abi);
    cpu_args *a = calloc(1, sizeof(cpu_args) + (size_t)abi.n_slots * sizeof(cpu_tensor_arg));
    widen_out wide[SIG_MAX_TENSORS];
    int n_wide = 0;
    bool ok = a != NULL;
    if (!ok) snprintf(err, errlen, "out of memory");
    if (ok) {
        a->batch = batch;
        a->seq_q = a->seq_k = seq;
        a->n_threads = n_threads;
        a->flags = form;
    }
    for (int s = 0; ok && s < abi.n_slots; s++) {
        attnc_tensor *t = (attnc_tensor *)sig_find(tensors, n_tensors, sig[s].name);
        if (!t) continue;
        if (!t->data) {
            if (sig[s].optional) continue;
            snprintf(err, errlen, "tensor '%s': data pointer is NULL", sig[s].name);
            ok = false;
            break;
        }
        int es = attnc_dtype_size(t->dtype);
        if ((uintptr_t)t->data % (uintptr_t)es != 0) {
            snprintf(err, errlen, "tensor '%s': data pointer is not aligned to its %d-byte elements", sig[s].name, es);
            ok = false;
            break;
        }
        if (t->dtype != sig[s].dtype) {   /* an f64 output view */
            widen_out *w = &wide[n_wide];
            w->view = t;
            w->tmp = *t;
            w->tmp.dtype = sig[s].dtype;
            memset(w->tmp.strides, 0, sizeof w->tmp.strides);
            int64_t count = tensor_count(t);
            w->tmp.data = calloc((size_t)(count > 0 ? count : 1), (size_t)attnc_dtype_size(sig[s].dtype));
            if (!w->tmp.data) {
                snprintf(err, errlen, "out of memory");
                ok = false;
                break;
            }
            n_wide++;
            a->t[s].data = w->tmp.data;
            continue;
        }
        a->t[s].data = t->data;
        memcpy(a->t[s].strides, t->strides, sizeof a->t[s].strides);
    }
    if (ok && driver) {
        /* The exported driver allocates its own workspace and runs on this thread. */
        int32_t rc = ck->driver(a);
        if (rc != CPU_OK) {
            snprintf(err, errlen, "attnc_%s returned %d", k->name, (int)rc);
            ok = false;
        }
    } else if (ok) {
        pthread_mutex_lock(&ck->lock);
        if (!ck->pools[n_threads]) ck->pools[n_threads] = attnc_pool_create(n_threads);
        attnc_pool *pool = ck->pools[n_threads];
        int64_t need = ck->workspace(a);
        if (need > ck->ws_cap) {
            free(ck->ws);
            ck->ws = aligned_alloc(64, (size_t)((need + 63) / 64 * 64));
            ck->ws_cap = ck->ws ? need : 0;
        }
        if (!pool) {
            snprintf(err, errlen, "cannot start %d worker threads", n_threads);
            ok = false;
        } else if (!ck->ws && need > 0) {
            snprintf(err, errlen, "out of memory for a %lld-byte workspace", (long long)need);
            ok = false;
        } else {
            a->workspace = ck->ws;
            a->workspace_bytes = ck->ws_cap;
            for (int p = 0; p < CPU_PHASES; p++) {
                pool_ctx pc = { ck->run_items, a, p };
                attnc_pool_run(pool, ck->num_items(a, p), pool_cb, &pc);
            }
        }
        pthread_mutex_unlock(&ck->lock);
    }
    for (int i = 0; i < n_wide; i++) {
        if (ok) widen_back(&wide[i]);
        free(wide[i].tmp.data);
    }
    free(a);
    return ok;
}

bool cpu_recur_run(const ir_kernel *k, int64_t batch, int64_t seq_q, int64_t seq_k,
                   attnc_tensor *tensors, int n_tensors, char *err, size_t errlen) {
    if (seq_q != seq_k) {
        snprintf(err, errlen, "kernel '%s' is a recurrence: seq_q and seq_k must be equal, got %lld and %lld", k->name,
                 (long long)seq_q, (long long)seq_k);
        return false;
    }
    cpu_recur_compiled *ck = cpu_recur_compile(k, NULL, err, errlen);
    if (!ck) return false;
    bool ok = cpu_recur_launch(ck, k, 0, CPU_RECUR_AUTO, batch, seq_q, tensors, n_tensors, err, errlen);
    cpu_recur_free(ck);
    return ok;
}

bool cpu_recur_emit_llvm_ir(const ir_kernel *k, FILE *out, char *err, size_t errlen) {
    cpu_target t;
    if (!cpu_target_host(&t, err, errlen)) return false;
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef m = cpu_recur_emit(k, &t, ctx, err, errlen);
    bool ok = m != NULL;
    if (ok) {
        LLVMSetTarget(m, t.triple);
        char *text = LLVMPrintModuleToString(m);
        ok = fputs(text, out) >= 0;
        if (!ok) snprintf(err, errlen, "cannot write the LLVM IR");
        LLVMDisposeMessage(text);
        LLVMDisposeModule(m);
    }
    LLVMContextDispose(ctx);
    return ok;
}
