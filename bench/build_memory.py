#!/usr/bin/env python3
"""Peak memory and wall time of `attnc build` for one kernel, per example kernel.

Issue 3's target: `attnc build --target cpu` of one kernel peaks at <= 200 MB. Each
build runs in its own process with an empty kernel cache; its peak resident set size
comes from the kernel's accounting of that child (os.wait4), not from sampling.
Prints JSON lines (and appends them to --out FILE).

Usage: bench/build_memory.py [--attnc build/attnc] [--target cpu] [--out FILE] [SPEC ...]
       (default: every examples/*.attn; kernels are read from each spec's `kernel NAME [: family] {`)
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time

TARGET_MB = 200.0


def kernels_of(path):
    with open(path) as f:
        return re.findall(r"^\s*kernel\s+(\w+)\s*(?::\s*\w+\s*)?\{", f.read(), re.M)


def build_once(attnc, target, spec, kernel, workdir):
    """Runs one build; returns (exit status, peak RSS in kB, wall ms, stderr)."""
    env = dict(os.environ, ATTNC_CACHE_DIR=os.path.join(workdir, "cache-" + kernel))
    out_dir = os.path.join(workdir, "out-" + kernel)
    t0 = time.perf_counter()
    p = subprocess.Popen([attnc, "build", "--target", target, "--kernel", kernel, spec, "-o", out_dir],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(p.pid, 0)
    wall_ms = (time.perf_counter() - t0) * 1e3
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, usage.ru_maxrss, wall_ms, err


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    ap = argparse.ArgumentParser()
    ap.add_argument("--attnc", default=os.path.join(root, "build", "attnc"))
    ap.add_argument("--target", default="cpu")
    ap.add_argument("--out")
    ap.add_argument("specs", nargs="*")
    a = ap.parse_args()
    specs = a.specs or sorted(glob.glob(os.path.join(root, "examples", "*.attn")))
    out = open(a.out, "a") if a.out else None
    failed = 0
    with tempfile.TemporaryDirectory(prefix="attnc-build-mem-") as work:
        for spec in specs:
            for kernel in kernels_of(spec):
                rc, rss_kb, wall_ms, err = build_once(a.attnc, a.target, spec, kernel, work)
                row = {"bench": "build_memory", "target": a.target, "kernel": kernel,
                       "spec": os.path.basename(spec), "rc": rc, "max_rss_mb": round(rss_kb / 1024, 1),
                       "wall_ms": round(wall_ms, 1), "target_mb": TARGET_MB,
                       "target_met": rc == 0 and rss_kb / 1024 <= TARGET_MB}
                if rc != 0:
                    row["error"] = err.strip().splitlines()[-1] if err.strip() else "exit %d" % rc
                    failed += 1
                line = json.dumps(row)
                print(line)
                if out:
                    out.write(line + "\n")
    if out:
        out.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
