/* attnc cache ls|clear: the on-disk kernel cache (runtime/kernel_cache.h) seen from the
 * shell. Entries are recognised by the file name kernel_cache_entry_path gives a key (32
 * hex digits and the cache's suffix), so this file knows nothing of the entry format. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "runtime/kernel_cache.h"
#include "tools/commands.h"

static const char cache_usage[] =
    "usage: attnc cache ls [--dir DIR]     list the compiled kernels in the cache\n"
    "       attnc cache clear [--dir DIR]  remove them\n"
    "The cache is DIR, else $ATTNC_CACHE_DIR, else $XDG_CACHE_HOME/attnc, else ~/.cache/attnc.\n";

/* Temporary files of a writer that died are removed by clear once this old. */
enum { STALE_TMP_SECONDS = 600 };

/* The file-name suffix of entries: the entry path of an all-zero key, less dir and hex. */
static void entry_suffix(const kernel_cache *c, char *out, size_t len) {
    kernel_cache_key zero;
    memset(&zero, 0, sizeof zero);
    memset(zero.hex, '0', 32);
    char path[1200];
    kernel_cache_entry_path(c, &zero, path, sizeof path);
    const char *p = path + strlen(c->dir);
    if (*p == '/') p++;
    snprintf(out, len, "%s", p + 32);
}

static bool is_entry(const char *name, const char *suffix) {
    size_t n = strlen(name);
    if (n != 32 + strlen(suffix) || strcmp(name + 32, suffix) != 0) return false;
    for (int i = 0; i < 32; i++)
        if (!strchr("0123456789abcdef", name[i])) return false;
    return true;
}

int cmd_cache(int argc, char **argv) {
    const char *sub = argc > 0 ? argv[0] : NULL, *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) dir = argv[++i];
        else {
            fprintf(stderr, "attnc cache: unexpected argument '%s'\n%s", argv[i], cache_usage);
            return 2;
        }
    }
    bool ls = sub && strcmp(sub, "ls") == 0, clear = sub && strcmp(sub, "clear") == 0;
    if (!ls && !clear) {
        if (sub) fprintf(stderr, "attnc cache: unknown subcommand '%s'\n", sub);
        fputs(cache_usage, sub ? stderr : stdout);
        return sub ? 2 : 0;
    }
    kernel_cache c;
    char err[1200];
    if (!kernel_cache_open(&c, dir, err, sizeof err)) {
        fprintf(stderr, "attnc cache: %s\n", err);
        return 2;
    }
    char suffix[64];
    entry_suffix(&c, suffix, sizeof suffix);
    DIR *d = opendir(c.dir);
    if (!d) {
        fprintf(stderr, "attnc cache: cannot read %s: %s\n", c.dir, strerror(errno));
        return 2;
    }
    int entries = 0, removed = 0, failed = 0;
    long long bytes = 0;
    time_t now = time(NULL);
    if (ls) printf("%s\n", c.dir);
    for (struct dirent *e; (e = readdir(d));) {
        bool entry = is_entry(e->d_name, suffix), tmp = strncmp(e->d_name, ".tmp-", 5) == 0;
        if (!entry && !tmp) continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", c.dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (ls) {
            if (!entry) continue;
            char when[32];
            strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&st.st_mtime));
            printf("  %.32s  %10lld bytes  %s\n", e->d_name, (long long)st.st_size, when);
            entries++;
            bytes += st.st_size;
        } else if (entry || now - st.st_mtime > STALE_TMP_SECONDS) {
            if (remove(path) == 0) removed++;
            else {
                fprintf(stderr, "attnc cache: cannot remove %s: %s\n", path, strerror(errno));
                failed++;
            }
        }
    }
    closedir(d);
    if (ls) printf("%d entr%s, %lld bytes\n", entries, entries == 1 ? "y" : "ies", bytes);
    else printf("%s: removed %d file%s\n", c.dir, removed, removed == 1 ? "" : "s");
    return failed ? 2 : 0;
}
