"""The README's "Three ways in" section, held to what it says: every command of its sh
blocks runs (from a scratch directory that sees examples/, with `attnc` the built CLI and a
scratch kernel cache) and succeeds; its cmake block is, line for line, in
examples/cmake_project/CMakeLists.txt (built from the installed tree by install.package);
its c block is, line for line, in examples/host/jit_host.c (run by api.jit_host.*)."""
import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--root", required=True)
ap.add_argument("--attnc", required=True)
ap.add_argument("--have-llvm", default="ON")
args = ap.parse_args()
args.attnc = os.path.abspath(args.attnc)
have_llvm = args.have_llvm.upper() in ("1", "ON", "TRUE", "YES")
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


readme = open(os.path.join(args.root, "README.md"), encoding="utf-8").read()
m = re.search(r"^## Three ways in\n(.*?)(?=^## )", readme, re.S | re.M)
if not m:
    print("FAIL: README.md has no '## Three ways in' section before another '## ' heading")
    sys.exit(1)
blocks = re.findall(r"^```(\w+)\n(.*?)^```", m.group(1), re.S | re.M)
kinds = [k for k, _ in blocks]
for want in ("sh", "cmake", "c"):
    if kinds.count(want) != 1:
        fail(f"expected exactly one ```{want} block in the section, found {kinds.count(want)}")


def contains_block(path, block):
    """True when the block's lines appear consecutively in the file."""
    lines = open(path, encoding="utf-8").read().split("\n")
    want = block.rstrip("\n").split("\n")
    return any(lines[i:i + len(want)] == want for i in range(len(lines) - len(want) + 1))


for kind, body in blocks:
    if kind == "cmake":
        path = os.path.join(args.root, "examples/cmake_project/CMakeLists.txt")
        if not contains_block(path, body):
            fail(f"the README's cmake block is not in {path} as written")
        else:
            print(f"cmake block: found verbatim in {path}")
    elif kind == "c":
        path = os.path.join(args.root, "examples/host/jit_host.c")
        if not contains_block(path, body):
            fail(f"the README's C block is not in {path} as written")
        else:
            print(f"c block: found verbatim in {path}")
    elif kind == "sh":
        with tempfile.TemporaryDirectory() as work:
            os.symlink(os.path.join(args.root, "examples"), os.path.join(work, "examples"))
            env = dict(os.environ, ATTNC_CACHE_DIR=os.path.join(work, "cache"))
            for line in body.splitlines():
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                argv = shlex.split(line)
                if argv[0] != "attnc":
                    fail(f"command does not start with attnc: {line}")
                    continue
                if "--target" in argv and argv[argv.index("--target") + 1] == "cpu" and not have_llvm:
                    print(f"not run (this build has no LLVM, so no cpu target): {line}")
                    continue
                p = subprocess.run([args.attnc, *argv[1:]], cwd=work, env=env, capture_output=True, text=True)
                if p.returncode != 0 and "cuda" in line and re.search(r"nvrtc", p.stderr, re.I) and \
                        re.search(r"cannot (load|open)|not found", p.stderr, re.I):
                    print(f"not run (no NVRTC here): {line}\n  {p.stderr.strip()}")
                    continue
                if p.returncode != 0:
                    fail(f"`{line}` exited {p.returncode}:\n{p.stdout}{p.stderr}")
                    continue
                print(f"ok: {line}")
                if "-o" in argv:
                    out = os.path.join(work, argv[argv.index("-o") + 1])
                    made = sorted(os.listdir(out)) if os.path.isdir(out) else []
                    kernel = "phi2" if "phi2" in line else None
                    if not made or (kernel and f"{kernel}.h" not in made):
                        fail(f"`{line}` wrote no header into {out}: {made}")
                    else:
                        print(f"  wrote {', '.join(made)}")
                if argv[1] == "check" and ": ok: kernel" not in p.stdout:
                    fail(f"`{line}` did not report its kernels: {p.stdout}")
                if argv[1] == "run" and "check: PASS" not in p.stdout:
                    fail(f"`{line}` did not pass its check: {p.stdout}")

print("readme:", "PASS" if not failures else f"{len(failures)} failures")
sys.exit(1 if failures else 0)
