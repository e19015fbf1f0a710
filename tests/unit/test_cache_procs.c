/* The cpu target's on-disk kernel cache across processes (issue 7):
 *   (a) 8 processes (this program, re-executed) compile the same kernel at once through the
 *       C API into a fresh cache directory: all agree with the "ref" target, exactly one
 *       valid entry is left (named, with a cpu target label, no temporary files), and a
 *       second round of 8 loads it: every child links it from the cache (cpu_compile_cached
 *       says so) and no child stores it again (the entry's inode and mtime are unchanged);
 *   (b) a truncated entry, an entry with one payload byte flipped, and an entry whose
 *       checksums hold but whose payload is no object file are each detected and rebuilt,
 *       with correct results;
 *   (c) `attnc cache ls` shows the entry's kernel and target; `attnc cache rm` removes it.
 * Usage: test_cache_procs [ATTNC_CLI] (default: the ATTNC_CLI the build defines). Exits 77
 * (skipped) where the build has no LLVM. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "attnc/attnc.h"
#include "check.h"
#include "runtime/kernel_cache.h"
#ifdef ATTNC_HAVE_LLVM
#include "codegen/llvm/cpu_runtime.h"
#include "frontend/frontend.h"
#endif

enum { PROCS = 8, B = 2, S = 21, HQ = 4, HKV = 2, D = 32 };

static const char KERNEL[] = "probe";
static const char SPEC[] =
    "kernel probe {\n"
    "    heads q = 4, kv = 2\n"
    "    dims  32\n"
    "    rope  half\n"
    "    mask  causal\n"
    "}\n";

/* Exit codes of a child. */
enum { CHILD_OK = 0, CHILD_MISMATCH = 1, CHILD_ERROR = 2, CHILD_NOT_FROM_CACHE = 3 };

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void fill(float *x, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) x[i] = (float)((double)(rng_next(&seed) >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

static attnc_tensor view(const char *name, int ndim, const int64_t *shape, void *data) {
    attnc_tensor t;
    memset(&t, 0, sizeof t);
    t.name = name;
    t.dtype = ATTNC_F32;
    t.ndim = ndim;
    for (int i = 0; i < ndim; i++) t.shape[i] = shape[i];
    t.data = data;
    return t;
}

typedef struct probe_data {
    float q[B * S * HQ * D], k[B * S * HKV * D], v[B * S * HKV * D], o[B * S * HQ * D], lse[B * S * HQ];
} probe_data;

/* Compiles the probe on a context and runs it on x. */
static bool run_probe(const char *target, const char *cache_dir, probe_data *x, char *why, size_t whylen) {
    attnc_options opts;
    attnc_options_init(&opts);
    opts.target = target;
    opts.cache_dir = cache_dir;
    opts.threads = 1;                  /* 8 processes on however few CPUs */
    attnc_context *ctx = NULL;
    attnc_program *prog = NULL;
    attnc_kernel *k = NULL;
    attnc_error err;
    bool ok = attnc_context_create(&opts, &ctx, &err) == ATTNC_OK &&
              attnc_compile_string(ctx, SPEC, 0, "probe.attn", &prog, &err) == ATTNC_OK &&
              attnc_kernel_get(prog, KERNEL, &k, &err) == ATTNC_OK;
    if (ok) {
        static const int64_t qs[] = { B, S, HQ, D }, ks[] = { B, S, HKV, D }, ls[] = { B, S, HQ };
        attnc_tensor t[5] = { view("q", 4, qs, x->q), view("k", 4, ks, x->k), view("v", 4, ks, x->v),
                              view("o", 4, qs, x->o), view("lse", 3, ls, x->lse) };
        ok = attnc_launch(k, B, S, S, t, 5, NULL, &err) == ATTNC_OK;
    }
    if (!ok) snprintf(why, whylen, "%s: %s: %s", target, attnc_status_name(err.code), err.message);
    attnc_program_destroy(prog);
    attnc_context_destroy(ctx);
    return ok;
}

#ifdef ATTNC_HAVE_LLVM
/* Whether this process links the probe from the cache without generating code: the CPU
 * backend's own report, for the same kernel the API compiles. */
static int linked_from_cache(const char *dir, char *why, size_t whylen) {
    arena a;
    arena_init(&a);
    diag_sink d;
    diag_init(&d, "probe.attn", SPEC, strlen(SPEC));
    ir_module *m = frontend_compile(SPEC, strlen(SPEC), &a, &d);
    if (d.n_errors == 0) ir_run_pipeline(m, &d, NULL, NULL);
    bool parsed = d.n_errors == 0 && m && m->n_kernels == 1;
    diag_free(&d);
    int rc = CHILD_ERROR;
    kernel_cache cache;
    if (parsed && kernel_cache_open(&cache, dir, why, whylen)) {
        cpu_cache_result res;
        cpu_compiled *ck = cpu_compile_cached(m->kernels[0], &cache, &res, why, whylen);
        if (ck) rc = res.from_cache && !res.stored ? CHILD_OK : CHILD_NOT_FROM_CACHE;
        if (rc == CHILD_NOT_FROM_CACHE) snprintf(why, whylen, "compiled instead of loading from the cache");
        cpu_compiled_free(ck);
    }
    arena_free(&a);
    return rc;
}
#endif

/* test_cache_procs --child DIR START_FD EXPECT_HIT: waits until START_FD reaches EOF (so the
 * children start together), then runs the probe on cpu through the cache in DIR and on
 * ref, and exits with CHILD_*. */
static int child_main(const char *dir, int start_fd, bool expect_hit) {
    char buf[16];
    while (start_fd >= 0 && read(start_fd, buf, sizeof buf) > 0) {}
    if (start_fd >= 0) close(start_fd);
    char why[2048] = "";
#ifdef ATTNC_HAVE_LLVM
    if (expect_hit) {
        int rc = linked_from_cache(dir, why, sizeof why);
        if (rc != CHILD_OK) {
            fprintf(stderr, "child %d: %s\n", (int)getpid(), why);
            return rc;
        }
    }
#else
    (void)expect_hit;
#endif
    static probe_data want, got;
    fill(want.q, sizeof want.q / 4, 1);
    fill(want.k, sizeof want.k / 4, 2);
    fill(want.v, sizeof want.v / 4, 3);
    memcpy(got.q, want.q, sizeof got.q);
    memcpy(got.k, want.k, sizeof got.k);
    memcpy(got.v, want.v, sizeof got.v);
    if (!run_probe("ref", "", &want, why, sizeof why) || !run_probe("cpu", dir, &got, why, sizeof why)) {
        fprintf(stderr, "child %d: %s\n", (int)getpid(), why);
        return CHILD_ERROR;
    }
    double worst = 0;
    for (size_t i = 0; i < sizeof got.o / 4; i++) worst = fmax(worst, fabs((double)got.o[i] - want.o[i]));
    for (size_t i = 0; i < sizeof got.lse / 4; i++) worst = fmax(worst, fabs((double)got.lse[i] - want.lse[i]));
    if (!(worst < 1e-4)) {
        fprintf(stderr, "child %d: cpu differs from ref by %g\n", (int)getpid(), worst);
        return CHILD_MISMATCH;
    }
    return CHILD_OK;
}

/* ---------------------------------------------------------------- the parent */

static const char *self_exe;

/* Starts n children at once (they wait on a pipe the parent then closes) and waits for
 * them; returns how many exited with CHILD_OK. */
static int run_children(int n, const char *dir, bool expect_hit) {
    int fds[2];
    if (pipe(fds) != 0) return 0;
    pid_t pids[PROCS];
    char fd_arg[16];
    snprintf(fd_arg, sizeof fd_arg, "%d", fds[0]);
    for (int i = 0; i < n; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            close(fds[1]);
            execl(self_exe, self_exe, "--child", dir, fd_arg, expect_hit ? "1" : "0", (char *)NULL);
            _exit(127);
        }
    }
    close(fds[0]);
    close(fds[1]);                     /* go */
    int good = 0;
    for (int i = 0; i < n; i++) {
        int status = 0;
        if (pids[i] < 0 || waitpid(pids[i], &status, 0) < 0) continue;
        int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        CHECK_MSG(rc == CHILD_OK, "child %d of %d (%s) exited with %d", i, n, expect_hit ? "expecting a hit" : "cold", rc);
        good += rc == CHILD_OK;
    }
    return good;
}

static int count_tmp(const char *dir) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | grep -c '^\\.tmp-'", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1) n = -1;
        pclose(p);
    }
    return n;
}

/* The one entry in the cache; false (with a check failure) unless there is exactly one. */
static bool the_entry(const kernel_cache *c, kernel_cache_entry_info *out) {
    kernel_cache_entry_info *v = NULL;
    int n = 0;
    char err[1200];
    bool ok = kernel_cache_list(c, &v, &n, err, sizeof err);
    CHECK_MSG(ok, "%s", err);
    CHECK_MSG(n == 1, "%d entries in the cache, want exactly 1", n);
    if (ok && n == 1) *out = v[0];
    free(v);
    return ok && n == 1;
}

static bool entry_loads(const kernel_cache *c, const kernel_cache_key *key, size_t *size) {
    void *data = NULL;
    bool corrupt = false;
    bool ok = kernel_cache_load(c, key, &data, size, &corrupt);
    free(data);
    return ok;
}

static bool stat_entry(const kernel_cache *c, const kernel_cache_key *key, struct stat *st) {
    char path[1200];
    kernel_cache_entry_path(c, key, path, sizeof path);
    return stat(path, st) == 0;
}

static bool same_file(const struct stat *a, const struct stat *b) {
    return a->st_ino == b->st_ino && a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Damages the entry one way, runs one child, and checks it was rebuilt. */
static void damaged_entry(const kernel_cache *c, const char *what, int how) {
    kernel_cache_entry_info e;
    if (!the_entry(c, &e)) return;
    char path[1200];
    kernel_cache_entry_path(c, &e.key, path, sizeof path);
    struct stat before;
    CHECK(stat(path, &before) == 0);
    static const char junk[] = "this is not an object file; a linker must refuse it, and the cache must rebuild it";
    if (how == 0) {
        CHECK(truncate(path, before.st_size / 2) == 0);
    } else if (how == 1) {
        int fd = open(path, O_RDWR);
        CHECK(fd >= 0);
        unsigned char ch = 0;
        off_t at = before.st_size - before.st_size / 3;
        CHECK(pread(fd, &ch, 1, at) == 1);
        ch ^= 0x10;
        CHECK(pwrite(fd, &ch, 1, at) == 1);
        close(fd);
    } else {
        char err[512];
        CHECK(kernel_cache_store_named(c, &e.key, KERNEL, "cpu:junk", junk, sizeof junk, err, sizeof err));
    }
    CHECK_MSG(run_children(1, c->dir, false) == 1, "a child failed after the entry was %s", what);
    kernel_cache_entry_info after;
    if (!the_entry(c, &after)) return;
    size_t size = 0;
    CHECK_MSG(entry_loads(c, &after.key, &size) && size != sizeof junk, "the %s entry was not rebuilt", what);
    CHECK(strcmp(after.key.hex, e.key.hex) == 0 && strcmp(after.name, KERNEL) == 0);
    /* and the rebuilt entry serves the next process */
    CHECK_MSG(run_children(1, c->dir, true) == 1, "the entry rebuilt after being %s is not loaded", what);
}

/* `attnc cache ls` names the kernel and its target; `attnc cache rm KERNEL` removes it. */
static void cli(const char *attnc, const kernel_cache *c) {
    char cmd[2600], out[8192];
    snprintf(cmd, sizeof cmd, "'%s' cache ls --dir '%s'", attnc, c->dir);
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[n] = 0;
    CHECK(p && pclose(p) == 0);
    CHECK_MSG(strstr(out, " probe ") && strstr(out, "cpu:") && strstr(out, "1 entry,"), "attnc cache ls: %s", out);
    snprintf(cmd, sizeof cmd, "'%s' cache rm probe --dir '%s' >/dev/null", attnc, c->dir);
    CHECK(system(cmd) == 0);
    kernel_cache_entry_info *v = NULL;
    int count = -1;
    char err[1200];
    CHECK(kernel_cache_list(c, &v, &count, err, sizeof err) && count == 0);
    free(v);
    snprintf(cmd, sizeof cmd, "'%s' cache rm probe --dir '%s' 2>/dev/null", attnc, c->dir);
    CHECK(WEXITSTATUS(system(cmd)) == 1);   /* nothing left to remove */
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "--child") == 0) return child_main(argv[2], atoi(argv[3]), argv[4][0] == '1');
    attnc_options o;
    attnc_options_init(&o);
    o.cache_dir = "";
    attnc_context *probe = NULL;
    attnc_error err;
    if (attnc_context_create(&o, &probe, &err) == ATTNC_ERR_TARGET_UNAVAILABLE) {
        printf("SKIP: the cpu target is unavailable in this build: %s\n", err.message);
        return 77;
    }
    attnc_context_destroy(probe);
#ifndef ATTNC_HAVE_LLVM
    printf("SKIP: this build has no LLVM\n");
    return 77;
#endif
    static char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) {
        printf("SKIP: cannot find this program's path to re-execute it: %s\n", strerror(errno));
        return 77;
    }
    exe[len] = 0;
    self_exe = exe;

    char root[] = "/tmp/attnc-cache-procs-XXXXXX";
    CHECK(mkdtemp(root) != NULL);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/cache", root);
    kernel_cache c;
    char msg[1200];
    CHECK_MSG(kernel_cache_open(&c, dir, msg, sizeof msg), "%s", msg);

    /* (a) eight cold processes at once, then eight warm ones */
    CHECK(run_children(PROCS, dir, false) == PROCS);
    kernel_cache_entry_info e;
    if (the_entry(&c, &e)) {
        CHECK_MSG(strcmp(e.name, KERNEL) == 0, "entry named '%s'", e.name);
        CHECK_MSG(strncmp(e.target, "cpu:", 4) == 0, "entry target '%s'", e.target);
        CHECK(e.header_ok);
        size_t size = 0;
        CHECK(entry_loads(&c, &e.key, &size) && size > 0);
        CHECK_MSG(count_tmp(dir) == 0, "temporary files left in %s", dir);
        struct stat st1, st2;
        CHECK(stat_entry(&c, &e.key, &st1));
        CHECK(run_children(PROCS, dir, true) == PROCS);
        CHECK(stat_entry(&c, &e.key, &st2));
        CHECK_MSG(same_file(&st1, &st2), "the entry was stored again by a warm process");
        kernel_cache_entry_info e2;
        if (the_entry(&c, &e2)) CHECK(strcmp(e2.key.hex, e.key.hex) == 0);

        /* (b) damaged entries */
        damaged_entry(&c, "truncated", 0);
        damaged_entry(&c, "byte-flipped", 1);
        damaged_entry(&c, "replaced by a non-object", 2);
        CHECK(count_tmp(dir) == 0);

        /* (c) the CLI */
        const char *attnc = argc > 1 ? argv[1] : NULL;
#ifdef ATTNC_CLI
        if (!attnc) attnc = ATTNC_CLI;
#endif
        if (attnc) cli(attnc, &c);
        else printf("test_cache_procs: no attnc CLI given; `attnc cache` not checked\n");
    }

    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0);
    return check_status("test_cache_procs");
}
