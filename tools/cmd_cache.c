/* attnc cache ls|rm|clear: the on-disk kernel cache (runtime/kernel_cache.h) seen from the
 * shell. kernel_cache_list finds the entries and reads what each records (kernel name,
 * target), so this file knows nothing of the entry format. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "runtime/kernel_cache.h"
#include "tools/commands.h"

static const char cache_usage[] =
    "usage: attnc cache ls [--dir DIR]             list the compiled kernels in the cache:\n"
    "                                              key, kernel, target, size, age\n"
    "       attnc cache rm KEY|KERNEL [--dir DIR]  remove the entries with that key or kernel name\n"
    "       attnc cache clear [--dir DIR]          remove every entry\n"
    "The cache is DIR, else $ATTNC_CACHE_DIR, else $XDG_CACHE_HOME/attnc, else ~/.cache/attnc.\n";

/* Temporary files of a writer that died are removed by clear once this old. */
enum { STALE_TMP_SECONDS = 600 };

static void format_age(int64_t seconds, char *out, size_t len) {
    if (seconds < 0) seconds = 0;
    if (seconds < 120) snprintf(out, len, "%llds", (long long)seconds);
    else if (seconds < 2 * 3600) snprintf(out, len, "%lldm", (long long)(seconds / 60));
    else if (seconds < 2 * 86400) snprintf(out, len, "%lldh", (long long)(seconds / 3600));
    else snprintf(out, len, "%lldd", (long long)(seconds / 86400));
}

static int list(const kernel_cache_entry_info *v, int n) {
    long long bytes = 0;
    time_t now = time(NULL);
    int name_w = 6, target_w = 6;
    for (int i = 0; i < n; i++) {
        int nl = (int)strlen(v[i].name), tl = (int)strlen(v[i].target);
        if (nl > name_w) name_w = nl;
        if (tl > target_w) target_w = tl;
    }
    if (n > 0)
        printf("  %-32s  %-*s  %-*s  %16s  %s\n", "key", name_w, "kernel", target_w, "target", "size", "age");
    for (int i = 0; i < n; i++) {
        const kernel_cache_entry_info *e = &v[i];
        char age[32];
        format_age((int64_t)now - e->mtime, age, sizeof age);
        const char *name = e->name[0] ? e->name : e->header_ok ? "-" : "(invalid)";
        const char *target = e->target[0] ? e->target : "-";
        printf("  %s  %-*s  %-*s  %10lld bytes  %s\n", e->key.hex, name_w, name, target_w, target,
               (long long)e->bytes, age);
        bytes += e->bytes;
    }
    printf("%d entr%s, %lld bytes\n", n, n == 1 ? "y" : "ies", bytes);
    return 0;
}

int cmd_cache(int argc, char **argv) {
    const char *sub = argc > 0 ? argv[0] : NULL, *dir = NULL, *what = NULL;
    bool ls = sub && strcmp(sub, "ls") == 0, clear = sub && strcmp(sub, "clear") == 0,
         rm = sub && strcmp(sub, "rm") == 0;
    if (!ls && !clear && !rm) {
        if (sub) fprintf(stderr, "attnc cache: unknown subcommand '%s'\n", sub);
        fputs(cache_usage, sub ? stderr : stdout);
        return sub ? 2 : 0;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) dir = argv[++i];
        else if (rm && !what && argv[i][0] != '-') what = argv[i];
        else {
            fprintf(stderr, "attnc cache: unexpected argument '%s'\n%s", argv[i], cache_usage);
            return 2;
        }
    }
    if (rm && !what) {
        fprintf(stderr, "attnc cache rm: name a key or a kernel\n%s", cache_usage);
        return 2;
    }
    kernel_cache c;
    char err[1200];
    if (!kernel_cache_open(&c, dir, err, sizeof err)) {
        fprintf(stderr, "attnc cache: %s\n", err);
        return 2;
    }
    kernel_cache_entry_info *v = NULL;
    int n = 0;
    if (!kernel_cache_list(&c, &v, &n, err, sizeof err)) {
        fprintf(stderr, "attnc cache: %s\n", err);
        return 2;
    }
    if (ls) {
        printf("%s\n", c.dir);
        list(v, n);
        free(v);
        return 0;
    }
    int removed = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        if (rm && strcmp(v[i].key.hex, what) != 0 && strcmp(v[i].name, what) != 0) continue;
        if (kernel_cache_remove(&c, &v[i].key)) removed++;
        else {
            fprintf(stderr, "attnc cache: cannot remove the entry %s\n", v[i].key.hex);
            failed++;
        }
    }
    free(v);
    if (clear) removed += kernel_cache_remove_stale(&c, STALE_TMP_SECONDS, &failed);
    if (rm && removed == 0 && failed == 0) {
        fprintf(stderr, "attnc cache rm: no entry with key or kernel '%s' in %s\n", what, c.dir);
        return 1;
    }
    printf("%s: removed %d file%s\n", c.dir, removed, removed == 1 ? "" : "s");
    return failed ? 2 : 0;
}
