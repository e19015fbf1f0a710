"""Times attnc's CUDA kernels under plan overrides ($ATTNC_CUDA_PLAN: bc, stages, wr, wc,
splits) on one GPU, so tile choices are picked from measurements. Each configuration
gets a fresh context (the plan is made when a kernel is compiled); outputs are checked
against the default plan's before timing.

    python3 bench/gpu/plan_sweep.py --lib build-gpu/libattnc.so --out sweep.jsonl
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import attnc_ctypes as A  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

# (spec file, kernel, batch, seq_q, seq_k, heads_q, heads_kv, d_qk, d_v, v_in_k, what is counted, overrides)
CASES = [
    ("llama3_decode.attn", "llama3_decode", 32, 1, 32768, 32, 8, 128, 128, False, "bytes",
     ["", "splits=1", "splits=2", "splits=4", "splits=8", "splits=16", "stages=1", "bc=32", "bc=128",
      "bc=32,splits=8", "bc=128,splits=4", "wc=2", "wc=2,splits=4", "hoist=1", "splits=12", "stages=1,splits=8"]),
    ("deepseek_mla_decode.attn", "deepseek_mla_decode", 64, 1, 8192, 128, 1, 576, 512, True, "bytes",
     ["", "splits=1", "splits=2", "splits=4", "splits=8", "bc=32", "wr=2", "wr=4", "wc=2", "wc=4", "wr=2,wc=2",
      "wr=4,wc=2", "stages=1"]),
    ("llama3_prefill.attn", "llama3_prefill_causal", 4, 4096, 4096, 32, 8, 128, 128, False, "flops",
     ["", "bc=32", "bc=128", "wr=8", "wr=2", "stages=1", "wr=8,bc=32", "qregs=0", "wr=4,bc=128", "hoist=1",
      "hoist=1,bc=128", "hoist=1,stages=1"]),
    ("llama3_prefill_rope.attn", "llama3_prefill_causal_rope", 4, 4096, 4096, 32, 8, 128, 128, False, "flops",
     [""]),
    ("gemma2_local.attn", "gemma2_local", 1, 16384, 16384, 16, 8, 256, 256, False, "flops",
     ["", "bc=32", "wr=8", "wr=2", "wc=2", "stages=1", "hoist=1", "wr=8,hoist=1"]),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--out")
    ap.add_argument("--only", help="comma-separated kernel names")
    ap.add_argument("--plans", help="comma-separated overrides to run (\"default\" for none); all by default")
    args = ap.parse_args()
    import torch
    import triton.testing as tt
    A.load(args.lib)
    out = open(args.out, "w") if args.out else None
    dev = torch.cuda.get_device_name()
    only = set(args.only.split(",")) if args.only else None
    for (spec, kname, b, sq, sk, hq, hkv, dqk, dv, vink, unit, overrides) in CASES:
        if only and kname not in only:
            continue
        g = torch.Generator(device="cuda").manual_seed(1)
        q = torch.randn(b, sq, hq, dqk, device="cuda", dtype=torch.bfloat16, generator=g)
        k = torch.randn(b, sk, hkv, dqk, device="cuda", dtype=torch.bfloat16, generator=g)
        v = None if vink else torch.randn(b, sk, hkv, dv, device="cuda", dtype=torch.bfloat16, generator=g)
        ref = None
        if args.plans:
            overrides = ["" if x == "default" else x.replace(";", ",") for x in args.plans.split(",")]
        for ov in overrides:
            os.environ["ATTNC_CUDA_PLAN"] = ov
            rec = {"bench": "plan_sweep", "gpu": dev, "kernel": kname, "plan": ov or "default", "batch": b,
                   "seq_q": sq, "seq_k": sk}
            try:
                ctx = A.Context("cuda", cache_dir="")
                t0 = time.time()
                kern = ctx.compile_file(os.path.join(HERE, "specs", spec)).kernel(kname)
                rec["compile_s"] = round(time.time() - t0, 2)
                o = torch.full((b, sq, hq, dv), float("nan"), device="cuda", dtype=torch.bfloat16)
                ts = {"q": q, "k": k, "o": o}
                if v is not None:
                    ts["v"] = v
                fn = kern.bind(b, sq, sk, ts, stream=torch.cuda.current_stream().cuda_stream, device_pointers=True)
                fn()
                torch.cuda.synchronize()
                if ref is None:
                    ref = o.float().clone()
                err = ((o.float() - ref).norm() / ref.norm()).item()
                rec["rel_diff_vs_default"] = err
                ms = float(tt.do_bench(fn, warmup=25, rep=200, return_mode="median"))
                rec["ms"] = round(ms, 4)
                if unit == "bytes":
                    nbytes = b * sk * hkv * (dqk + (0 if vink else dv)) * 2
                    rec["gbps"] = round(nbytes / ms / 1e6, 1)
                else:
                    causal = "causal" in kname
                    win = 4096 if "gemma" in kname else None
                    if win:
                        avg = sum(min(i + 1, win) for i in range(0, sq, 64)) / len(range(0, sq, 64))
                    else:
                        avg = (sk + 1) / 2 if causal else sk
                    rec["tflops"] = round(2 * b * hq * sq * avg * (dqk + dv) / ms / 1e9, 1)
                if not (err < 2e-2):
                    rec["check_failed"] = True
                ctx.close()
            except Exception as e:  # a plan the skeleton cannot run: recorded, not fatal
                rec["skipped"] = str(e)[:300]
            line = json.dumps(rec)
            print(line, flush=True)
            if out:
                out.write(line + "\n")
                out.flush()


if __name__ == "__main__":
    main()
