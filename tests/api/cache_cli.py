"""`attnc cache ls|clear` on a scratch cache directory: entries are listed with their size,
clear removes entries and stale temporary files but nothing else, --dir and
$ATTNC_CACHE_DIR both choose the directory, bad usage exits 2."""
import argparse
import os
import subprocess
import sys
import tempfile
import time

ap = argparse.ArgumentParser()
ap.add_argument("--attnc", required=True)
args = ap.parse_args()
args.attnc = os.path.abspath(args.attnc)
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(*argv, env=None):
    p = subprocess.run([args.attnc, *argv], capture_output=True, text=True, env=env)
    return p.returncode, p.stdout, p.stderr


with tempfile.TemporaryDirectory() as root:
    cache = os.path.join(root, "cache")
    # created on first use
    rc, out, err = run("cache", "ls", "--dir", cache)
    check(rc == 0 and os.path.isdir(cache), f"ls on a new directory: rc {rc}, {err}")
    check("0 entries" in out, f"empty cache listed as 0 entries: {out!r}")

    keys = ["0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"]
    for i, k in enumerate(keys):
        with open(os.path.join(cache, k + ".attnck"), "wb") as f:
            f.write(b"x" * (100 + i))
    fresh_tmp = os.path.join(cache, ".tmp-" + keys[0] + "-abcdef")
    stale_tmp = os.path.join(cache, ".tmp-" + keys[1] + "-ghijkl")
    other = os.path.join(cache, "notes.txt")
    for p in (fresh_tmp, stale_tmp, other):
        open(p, "w").close()
    old = time.time() - 3600
    os.utime(stale_tmp, (old, old))

    rc, out, err = run("cache", "ls", "--dir", cache)
    check(rc == 0, f"ls: rc {rc}, {err}")
    check(out.splitlines()[0] == cache, f"ls names the directory first: {out!r}")
    check(keys[0] in out and "100 bytes" in out and keys[1] in out and "101 bytes" in out,
          f"ls lists both entries with sizes: {out!r}")
    check("2 entries, 201 bytes" in out, f"ls totals: {out!r}")
    check("notes.txt" not in out and ".tmp-" not in out, f"ls lists only entries: {out!r}")

    env = dict(os.environ, ATTNC_CACHE_DIR=cache)
    rc, out, err = run("cache", "ls", env=env)
    check(rc == 0 and "2 entries" in out, f"$ATTNC_CACHE_DIR chooses the directory: {out!r} {err!r}")

    rc, out, err = run("cache", "clear", "--dir", cache)
    check(rc == 0 and "removed 3 files" in out, f"clear removes 2 entries + 1 stale temp file: {out!r} {err!r}")
    left = sorted(os.listdir(cache))
    check(left == sorted([os.path.basename(fresh_tmp), "notes.txt"]),
          f"clear keeps a writer's fresh temporary file and foreign files: {left}")
    rc, out, err = run("cache", "ls", "--dir", cache)
    check("0 entries" in out, f"empty after clear: {out!r}")

    rc, out, err = run("cache", "frobnicate")
    check(rc == 2 and "unknown subcommand 'frobnicate'" in err, f"unknown subcommand: rc {rc}, {err!r}")
    rc, out, err = run("cache", "ls", "--bogus")
    check(rc == 2 and "--bogus" in err, f"unknown option: rc {rc}, {err!r}")
    rc, out, err = run("cache")
    check(rc == 0 and "attnc cache ls" in out, f"bare `attnc cache` prints usage: {out!r}")
    blocker = os.path.join(root, "file")
    open(blocker, "w").close()
    rc, out, err = run("cache", "ls", "--dir", os.path.join(blocker, "sub"))
    check(rc == 2 and "cannot create" in err, f"uncreatable directory: rc {rc}, {err!r}")

print("cache_cli:", "PASS" if not failures else f"{len(failures)} failures")
sys.exit(1 if failures else 0)
