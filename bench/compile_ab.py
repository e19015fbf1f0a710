#!/usr/bin/env python3
"""Side-by-side compile-latency A/B: runs two benchmark command lines alternately (A, B,
A, B, ...) so machine noise falls on both, and prints one JSON line per kernel with every
round's time and the ratio of the best times (B / A).

Both commands must print the JSON lines of cuda_compile_bench (a "kernel" and "cold_ms"
per record) or cpu_bench --only compile ("kernel" and "ms").

  python3 bench/compile_ab.py --rounds 3 --label-a one-program --label-b parts \\
      --a "build/cuda_compile_bench --arch sm_90a --cold-repeat 1 --one-program" \\
      --b "build/cuda_compile_bench --arch sm_90a --cold-repeat 1" \\
      --header '{"machine": "..."}'
"""
import argparse
import json
import shlex
import subprocess
import sys


def run(cmd):
    out = subprocess.run(shlex.split(cmd), check=True, capture_output=True, text=True).stdout
    times = {}
    for line in out.splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        t = r.get("cold_ms", r.get("ms"))
        if "kernel" in r and isinstance(t, (int, float)):
            key = r["kernel"] + ("@" + r["arch"] if "arch" in r else "")
            times[key] = (t, r)
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--label-a", default="a")
    ap.add_argument("--label-b", default="b")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--header", default="{}", help="JSON object merged into the header line")
    args = ap.parse_args()

    header = {"header": True, "a": args.label_a, "b": args.label_b, "a_cmd": args.a, "b_cmd": args.b,
              "rounds": args.rounds, "method": "a and b alternate each round; best_ms is the best round"}
    header.update(json.loads(args.header))
    print(json.dumps(header), flush=True)
    runs = {"a": [], "b": []}
    for _ in range(args.rounds):
        runs["a"].append(run(args.a))
        runs["b"].append(run(args.b))
    keys = [k for k in runs["a"][0] if all(k in r for r in runs["a"] + runs["b"])]
    for k in keys:
        ta = [r[k][0] for r in runs["a"]]
        tb = [r[k][0] for r in runs["b"]]
        rec = runs["b"][0][k][1]
        out = {"bench": "compile_ab", "kernel": rec["kernel"]}
        for f in ("arch", "kind"):
            if f in rec:
                out[f] = rec[f]
        out.update({args.label_a + "_ms": ta, args.label_b + "_ms": tb,
                    args.label_a + "_best_ms": min(ta), args.label_b + "_best_ms": min(tb),
                    "b_over_a": round(min(tb) / min(ta), 3)})
        for f in ("programs", "cubin_bytes"):
            if f in rec:
                out[args.label_b + "_" + f] = rec[f]
        print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
