#!/usr/bin/env python3
"""attnc's GPU benchmark: attnc's kernels (through the C API, bench/gpu/attnc_ctypes.py)
against torch SDPA (each backend) and FlexAttention, on Llama-3-8B prefill, a Gemma-2-9B
local layer, Llama-3-8B decode at 32k and DeepSeek-V2 absorbed-MLA decode, plus the
device's copy bandwidth. See bench/gpu/README.md.

    python3 bench/gpu/gpu_bench.py --lib build-gpu/libattnc.so --out gpu.jsonl [--quick]
    python3 bench/gpu/gpu_bench.py --lib build/libattnc.so --selftest      # no GPU needed
"""
import argparse
import datetime
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import traceback
import warnings
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SPECS = os.path.join(HERE, "specs")
sys.path.insert(0, HERE)
import attnc_ctypes as A  # noqa: E402

TOL = {"bf16": 2e-2, "f16": 1e-2, "f32": 1e-4}

# ------------------------------------------------------------------ cases


class Case:
    """One attention problem: shapes, what the kernel computes, which spec and kernel."""

    def __init__(self, bench, spec, kernel, batch, seq_q, seq_k, heads_q, heads_kv, d_qk, d_v, scale=None,
                 causal=False, window=None, softcap=None, mla=False, metric="tflops", rope_spec=None,
                 rope_kernel=None):
        self.bench, self.spec, self.kernel = bench, spec, kernel
        self.batch, self.seq_q, self.seq_k = batch, seq_q, seq_k
        self.heads_q, self.heads_kv, self.d_qk, self.d_v = heads_q, heads_kv, d_qk, d_v
        self.scale = scale if scale is not None else 1.0 / math.sqrt(d_qk)
        self.causal, self.window, self.softcap, self.mla = causal, window, softcap, mla
        self.metric = metric
        self.rope_spec, self.rope_kernel = rope_spec, rope_kernel
        self.dtype = "bf16"

    def shape_fields(self):
        return {"bench": self.bench, "kernel": self.kernel, "batch": self.batch, "seq_q": self.seq_q,
                "seq_k": self.seq_k, "heads_q": self.heads_q, "heads_kv": self.heads_kv, "d_qk": self.d_qk,
                "d_v": self.d_v, "causal": self.causal, "window": self.window, "softcap": self.softcap,
                "mla": self.mla, "scale": self.scale, "dtype": self.dtype}

    def label(self):
        s = "b%d sq%d sk%d" % (self.batch, self.seq_q, self.seq_k)
        if self.bench == "llama3-prefill":
            s += " causal" if self.causal else " full"
        return s

    def visible_keys(self):
        """Keys visible to all query rows together (bottom-right aligned, as attnc)."""
        total = 0
        for r in range(self.seq_q):
            qi = r + self.seq_k - self.seq_q
            hi = min(qi, self.seq_k - 1) if self.causal or self.window else self.seq_k - 1
            lo = max(0, qi - self.window + 1) if self.window else 0
            total += max(0, hi - lo + 1)
        return total

    def flops(self):
        """FA3's convention: 2 * b * h_q * s_q * avg_sk * (d_qk + d_v), avg_sk the mean number
        of keys a query sees (so masked-out work is not counted)."""
        return 2 * self.batch * self.heads_q * self.visible_keys() * (self.d_qk + self.d_v)

    def kv_bytes(self):
        """Bytes of K and V a decode step must read (bf16): the cache once."""
        if self.mla:
            return self.batch * self.seq_k * self.heads_kv * self.d_qk * 2
        return self.batch * self.seq_k * self.heads_kv * (self.d_qk + self.d_v) * 2


def cases(mode, only):
    """mode: "full", "quick" (smoke test) or "tiny" (the CPU selftest)."""
    P = "llama3_prefill.attn"
    out = []
    prefill = {"full": [(1024, 16), (4096, 4), (16384, 1)], "quick": [(1024, 2), (2048, 1)],
               "tiny": [(48, 2)]}[mode]
    for causal in (True, False):
        for s, b in prefill:
            out.append(Case("llama3-prefill", P, "llama3_prefill_causal" if causal else "llama3_prefill_full", b, s, s,
                            32, 8, 128, 128, causal=causal,
                            rope_spec="llama3_prefill_rope.attn" if causal else None,
                            rope_kernel="llama3_prefill_causal_rope" if causal else None))
    gemma = {"full": [(16384, 1), (4096, 4)], "quick": [(2048, 1)], "tiny": [(40, 1)]}[mode]
    for s, b in gemma:
        out.append(Case("gemma2-local", "gemma2_local.attn", "gemma2_local", b, s, s, 16, 8, 256, 256, scale=1 / 16,
                        causal=True, window=4096, softcap=50.0))
    b, sk = {"full": (32, 32768), "quick": (4, 4096), "tiny": (2, 100)}[mode]
    out.append(Case("llama3-decode", "llama3_decode.attn", "llama3_decode", b, 1, sk, 32, 8, 128, 128, causal=True,
                    metric="gbps"))
    b, sk = {"full": (64, 8192), "quick": (8, 2048), "tiny": (2, 70)}[mode]
    out.append(Case("mla-decode", "deepseek_mla_decode.attn", "deepseek_mla_decode", b, 1, sk, 128, 1, 576, 512,
                    scale=1 / math.sqrt(192), causal=True, mla=True, metric="gbps"))
    if only:
        out = [c for c in out if c.bench in only]
    return out


# ------------------------------------------------------------------ environment


class Env:
    """Where the run happens: "cuda" (the benchmark) or "cpu" (the selftest's dry run of the
    same code on attnc's cpu target with host pointers)."""

    def __init__(self, torch, device, attnc_target, cache_dir=None):
        self.torch, self.device = torch, device
        self.device_pointers = device == "cuda"
        self.ctx, self.ctx_error = None, None
        try:
            self.ctx = A.Context(attnc_target, cache_dir=cache_dir)
        except Exception as e:  # keep going: the peers still run
            self.ctx_error = str(e)
        self.programs = {}
        self.flex = None
        self.sdpa_math, self.no_flex, self.copy_gbps, self.sdpa_gqa, self.seed = False, False, None, "auto", 0

    def stream(self):
        return self.torch.cuda.current_stream().cuda_stream if self.device == "cuda" else None

    def sync(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def free(self):
        import gc
        gc.collect()
        if self.device == "cuda":
            self.torch.cuda.empty_cache()

    def kernel(self, spec, name):
        if self.ctx is None:
            raise RuntimeError("attnc context: %s" % self.ctx_error)
        if spec not in self.programs:
            self.programs[spec] = self.ctx.compile_file(os.path.join(SPECS, spec))
        return self.programs[spec].kernel(name)

    def time_ms(self, fn):
        """Median milliseconds of fn(): triton's do_bench (25 ms warmup, 100 ms of repeats, L2
        flushed between calls) when triton imports, else CUDA events; perf_counter on cpu."""
        torch = self.torch
        if self.device != "cuda":
            fn()
            ts = []
            for _ in range(5):
                t0 = time.perf_counter()
                fn()
                ts.append((time.perf_counter() - t0) * 1e3)
            return statistics.median(ts), "perf_counter"
        try:
            import triton.testing as tt
        except Exception:
            tt = None
        if tt is not None:
            try:
                return float(tt.do_bench(fn, warmup=25, rep=100, return_mode="median")), "triton.do_bench"
            except TypeError:       # older triton: no return_mode
                r = tt.do_bench(fn, warmup=25, rep=100, quantiles=[0.5])
                return float(r[0] if isinstance(r, (list, tuple)) else r), "triton.do_bench"
        fn()
        torch.cuda.synchronize()
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        for _ in range(3):
            fn()
        e.record()
        torch.cuda.synchronize()
        est = max(s.elapsed_time(e) / 3, 1e-3)
        for _ in range(max(1, int(25 / est))):
            fn()
        n = max(10, min(10000, int(100 / est)))
        ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(n)]
        for a, b in ev:
            a.record()
            fn()
            b.record()
        torch.cuda.synchronize()
        return statistics.median(a.elapsed_time(b) for a, b in ev), "cuda-events"


# ------------------------------------------------------------------ inputs and reference


def make_inputs(env, c):
    torch = env.torch
    dt, dev = torch.bfloat16, env.device
    q = torch.randn(c.batch, c.seq_q, c.heads_q, c.d_qk, dtype=dt, device=dev)
    k = torch.randn(c.batch, c.seq_k, c.heads_kv, c.d_qk, dtype=dt, device=dev)
    v = None if c.mla else torch.randn(c.batch, c.seq_k, c.heads_kv, c.d_v, dtype=dt, device=dev)
    return q, k, v


def value_of(c, k, v):
    return k[..., :c.d_v] if c.mla else v


def reference(env, c, q, k, v):
    """float32 attention on the upcast inputs, (b, s_q, h_q, d_v): explicit matmul / mask /
    softmax / matmul per batch element and chunk of queries (no TF32), so one reference
    serves every spec (softcap, window, MLA) and its memory stays bounded."""
    torch = env.torch
    g = c.heads_q // c.heads_kv
    out = torch.empty(c.batch, c.seq_q, c.heads_q, c.d_v, dtype=torch.float32, device=env.device)
    chunk = max(1, min(c.seq_q, (1 << 27) // max(1, c.heads_q * c.seq_k)))
    kv_idx = torch.arange(c.seq_k, device=env.device)
    vv = value_of(c, k, v)
    for bi in range(c.batch):
        kt = k[bi].float().permute(1, 2, 0)            # (h_kv, d_qk, s_k)
        vt = vv[bi].float().permute(1, 0, 2)           # (h_kv, s_k, d_v)
        for r0 in range(0, c.seq_q, chunk):
            r1 = min(c.seq_q, r0 + chunk)
            n = r1 - r0
            qf = q[bi, r0:r1].float().reshape(n, c.heads_kv, g, c.d_qk).permute(1, 2, 0, 3)
            s = torch.matmul(qf.reshape(c.heads_kv, g * n, c.d_qk), kt).view(c.heads_kv, g, n, c.seq_k)
            s.mul_(c.scale)
            if c.softcap:
                s = torch.tanh(s / c.softcap) * c.softcap
            q_idx = (torch.arange(r0, r1, device=env.device) + (c.seq_k - c.seq_q))[:, None]
            vis = torch.ones(n, c.seq_k, dtype=torch.bool, device=env.device)
            if c.causal or c.window:
                vis &= kv_idx[None, :] <= q_idx
            if c.window:
                vis &= (q_idx - kv_idx[None, :]) < c.window
            s.masked_fill_(~vis, float("-inf"))
            p = torch.softmax(s, dim=-1).nan_to_num_(0.0)   # rows with no visible key: 0
            o = torch.matmul(p.view(c.heads_kv, g * n, c.seq_k), vt)
            out[bi, r0:r1] = o.view(c.heads_kv, g, n, c.d_v).permute(2, 0, 1, 3).reshape(n, c.heads_q, c.d_v)
            del s, p, o, qf
    return out


def rel_err(torch, o, ref):
    """||o - ref|| / ||ref|| over the whole tensor (float64 sums); inf when o has a NaN."""
    of = o.float()
    if bool(torch.isnan(of).any()):
        return float("inf")
    num = torch.linalg.vector_norm((of - ref).double()).item() if of.numel() < (1 << 28) else \
        math.sqrt(sum(torch.linalg.vector_norm((a.float() - b).double()).item() ** 2 for a, b in zip(o, ref)))
    den = torch.linalg.vector_norm(ref.double()).item() if ref.numel() < (1 << 28) else \
        math.sqrt(sum(torch.linalg.vector_norm(b.double()).item() ** 2 for b in ref))
    return num / den if den else float("inf")


# ------------------------------------------------------------------ implementations


def attnc_bind(env, c, kern, q, k, v, o):
    """A bound attnc launch, after checking the tensors against the kernel's signature."""
    sig = kern.signature(c.batch, c.seq_q, c.seq_k)
    given = {"q": q, "k": k, "o": o}
    if v is not None:
        given["v"] = v
    want = {"bf16": A.BF16}[c.dtype]
    names = set()
    for t in sig:
        names.add(t.name)
        if t.name not in given:
            if not t.optional:
                raise RuntimeError("kernel %s wants a tensor '%s' %s that the benchmark does not make"
                                   % (kern.name, t.name, t))
            continue
        shape = tuple(given[t.name].shape)
        if shape != t.shape or t.dtype != want:
            raise RuntimeError("kernel %s: '%s' is %s %s here, the signature says %s"
                               % (kern.name, t.name, c.dtype, shape, t))
    extra = set(given) - names
    if extra:
        raise RuntimeError("kernel %s takes no %s (signature: %s)" % (kern.name, sorted(extra), sig))
    return kern.bind(c.batch, c.seq_q, c.seq_k, given, stream=env.stream(), device_pointers=env.device_pointers)


def sdpa_variants(env, c, q, k, v):
    """The ways SDPA is called on this case, as dicts: suffix (of the impl name), note,
    build() -> (q, k, v, kwargs) for F.scaled_dot_product_attention, out(r) -> (b, s, h, d),
    kind: "gqa" (enable_gqa=True), "fallback" (used only when the "gqa" one failed) or
    None. SDPA takes (b, h, s, d): the inputs are transposed views of the (b, s, h, d)
    tensors, as HF models pass them."""
    if c.causal and c.seq_q != c.seq_k and c.seq_q > 1:
        raise RuntimeError("SDPA's is_causal is top-left aligned; this case needs bottom-right")
    # One query row with a bottom-right causal mask sees every key: is_causal=False.
    causal = c.causal and c.seq_q == c.seq_k and c.seq_q > 1
    vv = value_of(c, k, v)
    qt, kt, vt = q.transpose(1, 2), k.transpose(1, 2), vv.transpose(1, 2)
    g = c.heads_q // c.heads_kv
    base = dict(is_causal=causal, scale=c.scale)

    def bshd(r):
        return r.transpose(1, 2)
    out = []
    if c.mla:
        ke = kt.expand(c.batch, c.heads_q, c.seq_k, c.d_qk)
        out.append(dict(suffix="", kind=None, out=bshd,
                        note="k expanded over the %d heads (stride 0), v = k[..., :%d] (a view)" % (c.heads_q, c.d_v),
                        build=lambda: (qt, ke, ke[..., :c.d_v], dict(base))))
        if c.seq_q == 1:
            # The heads as the query rows of one MQA head, as FlashMLA-style kernels do.
            qf = q.reshape(c.batch, 1, c.heads_q, c.d_qk)
            out.append(dict(suffix="-folded", kind=None, out=lambda r: r.reshape(c.batch, 1, c.heads_q, c.d_v),
                            note="the %d query heads as %d query rows of one head: q (b, 1, %d, %d), k (b, 1, s_k, %d)"
                            % (c.heads_q, c.heads_q, c.heads_q, c.d_qk, c.d_qk),
                            build=lambda: (qf, kt, kt[..., :c.d_v], dict(base))))
    elif g == 1:
        out.append(dict(suffix="", kind=None, out=bshd, note="", build=lambda: (qt, kt, vt, dict(base))))
    else:
        if env.sdpa_gqa != "repeat":
            out.append(dict(suffix="", kind="gqa", out=bshd, note="enable_gqa=True",
                            build=lambda: (qt, kt, vt, dict(base, enable_gqa=True))))

        def repeated():
            kr = k.repeat_interleave(g, dim=2).transpose(1, 2)
            vr = vv.repeat_interleave(g, dim=2).transpose(1, 2)
            return qt, kr, vr, dict(base)
        if env.sdpa_gqa == "repeat":
            out.append(dict(suffix="", kind=None, out=bshd, build=repeated,
                            note="K/V repeat_interleave'd to %d heads outside the timing (--sdpa-gqa repeat)"
                            % c.heads_q))
        else:
            out.append(dict(suffix="", kind="fallback", out=bshd, build=repeated,
                            note="K/V repeat_interleave'd to %d heads outside the timing (enable_gqa=True failed: %%s)"
                            % c.heads_q))
    return out


def sdpa_backends(env):
    if env.device == "cuda":
        return [("sdpa-flash", "FLASH_ATTENTION"), ("sdpa-cudnn", "CUDNN_ATTENTION"),
                ("sdpa-efficient", "EFFICIENT_ATTENTION")] + ([("sdpa-math", "MATH")] if env.sdpa_math else [])
    return [("sdpa-flash", "FLASH_ATTENTION"), ("sdpa-math", "MATH")]


def short_error(e):
    s = "%s: %s" % (type(e).__name__, str(e).strip())
    s = " ".join(s.split())
    return s if len(s) <= 600 else s[:600] + "..."


def json_safe(rec):
    """inf / nan are not JSON: write them as strings."""
    return {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in rec.items()}


def run_sdpa(env, c, q, k, v, ref, emit):
    torch = env.torch
    import torch.nn.functional as F
    try:
        from torch.nn.attention import sdpa_kernel, SDPBackend
    except ImportError as e:
        emit({"impl": "sdpa", "skipped": "torch.nn.attention.sdpa_kernel: %s" % short_error(e)})
        return
    if c.softcap:
        emit({"impl": "sdpa", "skipped": "SDPA has no score modifier: it cannot soft-cap the logits"})
        return
    try:
        variants = sdpa_variants(env, c, q, k, v)
    except RuntimeError as e:
        emit({"impl": "sdpa", "skipped": str(e)})
        return
    for impl, backend in sdpa_backends(env):
        be = getattr(SDPBackend, backend, None)
        if be is None:
            emit({"impl": impl, "skipped": "this torch has no SDPBackend.%s" % backend})
            continue
        failures = []
        gqa_failed = None
        for var in variants:
            name, note = impl + var["suffix"], var["note"]
            if var["kind"] == "fallback":
                if gqa_failed is None:
                    continue                       # enable_gqa worked
                note = note % gqa_failed
            args = None
            caught = []
            try:
                qa, ka, va, kw = var["build"]()
                args = (qa, ka, va)
                with sdpa_kernel([be]):
                    # SDPA says why a backend refuses in warnings; keep them for the record.
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        r = F.scaled_dot_product_attention(qa, ka, va, **kw)
                    env.sync()
                    err = rel_err(torch, var["out"](r), ref)
                    del r
                    ms, how = env.time_ms(lambda: F.scaled_dot_product_attention(qa, ka, va, **kw))
                rec = {"impl": name, "ms": ms, "rel_err": err, "timer": how, "sdpa_backend": backend}
                if note:
                    rec["note"] = note
                if err > TOL[c.dtype]:
                    rec["check_failed"] = True
                emit(rec)
            except Exception as e:
                why = short_error(e)
                seen = []
                for w in caught or []:
                    m = re.sub(r"\s*\(Triggered internally at [^)]*\)\s*", " ", str(w.message))
                    m = " ".join(m.split())
                    if m and m not in seen:
                        seen.append(m)
                if seen:
                    why += " [torch warned: %s]" % " | ".join(x[:300] for x in seen[:4])
                if var["kind"] == "gqa":
                    gqa_failed = why
                else:
                    failures.append((name, note, why))
            finally:
                del args
                env.free()
        for name, note, why in failures:
            emit({"impl": name, "skipped": why, **({"note": note} if note else {})})


def compiled_flex(env):
    if env.flex is None:
        torch = env.torch
        from torch.nn.attention.flex_attention import flex_attention
        import torch._dynamo.config as dc
        # One compiled graph per shape and score/mask function: raise the recompile limit so
        # later cases are not silently left to the unfused eager fallback.
        for name in ("recompile_limit", "cache_size_limit"):
            try:
                if getattr(dc, name, None) is not None:
                    setattr(dc, name, 512)
            except Exception:
                pass
        env.flex = torch.compile(flex_attention, dynamic=False, fullgraph=True)
    return env.flex


def run_flex(env, c, q, k, v, ref, emit):
    torch = env.torch
    if env.no_flex:
        emit({"impl": "flex", "skipped": "--no-flex"})
        return
    try:
        from torch.nn.attention.flex_attention import create_block_mask
        flex = compiled_flex(env)
    except Exception as e:
        emit({"impl": "flex", "skipped": "FlexAttention unavailable: %s" % short_error(e)})
        return
    off = c.seq_k - c.seq_q
    W = c.window
    cap = c.softcap
    def softcap_mod(score, b, h, q_idx, kv_idx):
        return torch.tanh(score / cap) * cap

    def window_mask(b, h, q_idx, kv_idx):
        return (kv_idx <= q_idx + off) & (q_idx + off - kv_idx < W)

    def causal_mask(b, h, q_idx, kv_idx):
        return kv_idx <= q_idx + off
    score_mod = softcap_mod if cap else None
    mask_mod = None
    if c.visible_keys() < c.seq_q * c.seq_k:            # a mask that hides something
        mask_mod = window_mask if W else causal_mask
    vv = value_of(c, k, v)
    qt, kt, vt = q.transpose(1, 2), k.transpose(1, 2), vv.transpose(1, 2)
    note = "torch.compile(flex_attention, fullgraph=True); block mask made outside the timing"
    # Triton's default tiles can exceed shared memory at large head dims: one retry with
    # small tiles, said in the note.
    attempts = [(None, note), (dict(BLOCK_M=64, BLOCK_N=32, num_stages=1, num_warps=4),
                               note + "; kernel_options BLOCK_M 64, BLOCK_N 32, 1 stage, 4 warps after the defaults "
                                      "failed: %s")]
    first_error = None
    try:
        block_mask = None
        if mask_mod is not None:
            block_mask = create_block_mask(mask_mod, B=None, H=None, Q_LEN=c.seq_q, KV_LEN=c.seq_k, device=env.device)
    except Exception as e:
        emit({"impl": "flex", "skipped": "create_block_mask: " + short_error(e), "note": note})
        env.free()
        return
    for options, what in attempts:
        try:
            if first_error is not None:
                what = what % first_error
            kw = dict(score_mod=score_mod, block_mask=block_mask, scale=c.scale, enable_gqa=c.heads_q != c.heads_kv)
            if options:
                kw["kernel_options"] = options

            def fn():
                return flex(qt, kt, vt, **kw)
            t0 = time.perf_counter()
            r = fn()
            env.sync()
            compile_s = time.perf_counter() - t0
            err = rel_err(torch, r.transpose(1, 2), ref)
            del r
            ms, how = env.time_ms(fn)
            rec = {"impl": "flex", "ms": ms, "rel_err": err, "timer": how, "note": what,
                   "first_call_s": round(compile_s, 3)}
            if err > TOL[c.dtype]:
                rec["check_failed"] = True
            emit(rec)
            break
        except Exception as e:
            if first_error is None:
                first_error = short_error(e)
            else:
                emit({"impl": "flex", "skipped": "default tiles: %s; small tiles: %s" % (first_error, short_error(e)),
                      "note": note})
        finally:
            env.free()


def run_case(env, c, emit_raw, rope=True):
    """Every implementation on one case; emit_raw(record) gets each line."""
    torch = env.torch
    base = c.shape_fields()
    flops, nbytes = c.flops(), c.kv_bytes()
    base["flops"] = flops
    base["avg_sk"] = c.visible_keys() / c.seq_q
    if c.metric == "gbps":
        base["kv_bytes"] = nbytes
    state = {"attnc_ms": None}

    def emit(rec):
        full = dict(base)
        full.update(rec)
        ms = full.get("ms")
        if ms:
            full["tflops"] = flops / (ms * 1e-3) / 1e12
            if c.metric == "gbps":
                full["gbps"] = nbytes / (ms * 1e-3) / 1e9
                if env.copy_gbps:
                    full["frac_of_copy_bw"] = full["gbps"] / env.copy_gbps
            if full["impl"] != "attnc" and state["attnc_ms"]:
                full["speedup_vs_attnc"] = ms / state["attnc_ms"]
        emit_raw(full)

    torch.manual_seed(env.seed + zlib.crc32(("%s %s %s" % (c.bench, c.kernel, c.label())).encode()))
    q, k, v = make_inputs(env, c)
    ref = reference(env, c, q, k, v)
    o = torch.empty(c.batch, c.seq_q, c.heads_q, c.d_v, dtype=q.dtype, device=env.device)

    # attnc
    try:
        kern = env.kernel(c.spec, c.kernel)
        fn = attnc_bind(env, c, kern, q, k, v, o)
        o.fill_(float("nan"))
        fn()
        env.sync()
        err = rel_err(torch, o, ref)
        ms, how = env.time_ms(fn)
        state["attnc_ms"] = ms
        rec = {"impl": "attnc", "ms": ms, "rel_err": err, "timer": how}
        if err > TOL[c.dtype]:
            rec["check_failed"] = True
        emit(rec)
    except Exception as e:
        emit({"impl": "attnc", "skipped": short_error(e)})
    env.free()

    # attnc with the fused RoPE (timing only; the peers have no RoPE to compare with)
    if rope and c.rope_spec:
        try:
            kern = env.kernel(c.rope_spec, c.rope_kernel)
            fn = attnc_bind(env, c, kern, q, k, v, o)
            o.fill_(float("nan"))
            fn()
            env.sync()
            finite = not bool(torch.isnan(o).any()) and bool(torch.isfinite(o).all())
            ms, how = env.time_ms(fn)
            emit({"impl": "attnc+rope", "kernel": c.rope_kernel, "ms": ms, "rel_err": None, "finite": finite,
                  "timer": how, "note": "Llama-3.1 RoPE fused; no reference (the peers apply none)",
                  **({} if finite else {"check_failed": True})})
        except Exception as e:
            emit({"impl": "attnc+rope", "kernel": c.rope_kernel, "skipped": short_error(e)})
        env.free()

    run_sdpa(env, c, q, k, v, ref, emit)
    run_flex(env, c, q, k, v, ref, emit)
    del q, k, v, o, ref
    env.free()


def copy_bandwidth(env, nbytes):
    torch = env.torch
    src = torch.empty(nbytes, dtype=torch.uint8, device=env.device)
    src.random_(0, 255)
    bufs = [src, torch.empty_like(src)]
    del src
    ms, how = env.time_ms(lambda: bufs[1].copy_(bufs[0]))
    ok = bool(torch.equal(bufs[1][:1 << 20], bufs[0][:1 << 20]))
    bufs.clear()
    env.free()
    return {"bench": "copy", "impl": "torch.copy_", "bytes": 2 * nbytes, "ms": ms,
            "gbps": 2 * nbytes / (ms * 1e-3) / 1e9, "timer": how, "copied": ok,
            "note": "device-to-device copy_ of %d bytes; bytes = read + written" % nbytes}


# ------------------------------------------------------------------ header, table


def git_commit(root):
    try:
        gd = os.path.join(root, ".git")
        if os.path.isfile(gd):                               # a worktree: "gitdir: PATH"
            with open(gd) as f:
                gd = f.read().split("gitdir:", 1)[1].strip()
            gd = gd if os.path.isabs(gd) else os.path.join(root, gd)
        with open(os.path.join(gd, "HEAD")) as f:
            head = f.read().strip()
        if not head.startswith("ref:"):
            return head
        ref = head[4:].strip()
        common = gd
        if os.path.exists(os.path.join(gd, "commondir")):
            with open(os.path.join(gd, "commondir")) as f:
                common = os.path.normpath(os.path.join(gd, f.read().strip()))
        for base in (gd, common):
            p = os.path.join(base, ref)
            if os.path.exists(p):
                with open(p) as f:
                    return f.read().strip()
        with open(os.path.join(common, "packed-refs")) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[1] == ref:
                    return parts[0]
    except Exception:
        pass
    return None


def header(env, args):
    torch = env.torch
    h = {"header": True, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
         "commit": args.commit or git_commit(ROOT), "attnc_version": A.version(), "lib": os.path.abspath(args.lib),
         "attnc_target": env.ctx.target if env.ctx else None, "attnc_error": env.ctx_error,
         "attnc_cache_dir": env.ctx.cache_dir if env.ctx else None,
         "torch": torch.__version__, "torch_cuda": torch.version.cuda, "python": platform.python_version(),
         "host": platform.node(), "mode": args.mode, "device": env.device}
    try:
        import triton
        h["triton"] = triton.__version__
    except Exception:
        h["triton"] = None
    if env.device == "cuda":
        p = torch.cuda.get_device_properties(torch.cuda.current_device())
        h.update({"device_name": p.name, "sm_count": p.multi_processor_count, "capability": "%d.%d" % (p.major, p.minor),
                  "memory_gib": round(p.total_memory / 2 ** 30, 1), "cudnn": torch.backends.cudnn.version()})
        try:
            import ctypes
            v = ctypes.c_int()
            if ctypes.CDLL("libcuda.so.1").cuDriverGetVersion(ctypes.byref(v)) == 0:
                h["cuda_driver_api"] = "%d.%d" % (v.value // 1000, v.value % 1000 // 10)
        except Exception:
            pass
        try:
            r = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem,power.limit",
                                "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
            h["nvidia_smi"] = r.stdout.strip() or r.stderr.strip()
        except Exception as e:
            h["nvidia_smi"] = "unavailable: %s" % e
    else:
        h["device_name"] = platform.processor() or platform.machine()
    return h


def fmt_table(records):
    rows = [("bench", "shape", "impl", "ms", "TFLOP/s", "GB/s", "attnc x", "rel_err / note")]
    for r in records:
        if r.get("header"):
            continue
        shape = r.get("label", "")
        if r.get("skipped"):
            rows.append((r["bench"], shape, r["impl"], "-", "-", "-", "-", "skipped: " + r["skipped"][:70]))
            continue
        sp = r.get("speedup_vs_attnc")
        err = r.get("rel_err")
        note = ("%.1e" % err) if isinstance(err, float) else ""
        if r.get("check_failed"):
            note += " CHECK FAILED"
        if r.get("frac_of_copy_bw"):
            note += " %.0f%% of copy" % (100 * r["frac_of_copy_bw"])
        rows.append((r["bench"], shape, r["impl"], "%.3f" % r["ms"],
                     "%.1f" % r["tflops"] if r.get("tflops") is not None else "-",
                     "%.0f" % r["gbps"] if r.get("gbps") is not None else "-",
                     "%.2f" % sp if sp else "-", note.strip()))
    w = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(x).ljust(w[i]) for i, x in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * x for x in w))
    return "\n".join(lines) + "\n(attnc x = peer ms / attnc ms: > 1 means attnc is faster)"


# ------------------------------------------------------------------ the run


def run_bench(args, device):
    try:
        import torch
    except ImportError as e:
        sys.exit("gpu_bench: torch is needed (%s)" % e)
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_bench: torch sees no CUDA device (torch %s, built for CUDA %s)" % (torch.__version__,
                                                                                         torch.version.cuda))
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    A.load(args.lib)
    env = Env(torch, device, args.target if device == "cuda" else "cpu", args.cache_dir)
    env.sdpa_math, env.no_flex, env.copy_gbps = args.sdpa_math, args.no_flex, None
    env.sdpa_gqa, env.seed = args.sdpa_gqa, args.seed
    records = []
    out = open(args.out, "w") if args.out else None

    def emit(rec):
        records.append(rec)
        line = json.dumps(json_safe(rec), allow_nan=False)
        if out:
            out.write(line + "\n")
            out.flush()
        if not rec.get("header"):
            what = ("skipped: " + rec["skipped"][:100]) if rec.get("skipped") else \
                "%.3f ms%s" % (rec["ms"], ", rel_err %.1e" % rec["rel_err"] if isinstance(rec.get("rel_err"), float)
                               else "")
            print("  %-14s %-22s %-28s %s" % (rec.get("bench", ""), rec.get("label", ""), rec.get("impl", ""), what),
                  flush=True)

    emit(header(env, args))
    if env.ctx_error:
        print("gpu_bench: attnc's context failed (%s); the peers still run" % env.ctx_error, file=sys.stderr)
    only = set(args.bench.split(",")) if args.bench else None
    if not only or "copy" in only:
        try:
            rec = copy_bandwidth(env, args.copy_bytes)
            env.copy_gbps = rec["gbps"]
            emit(rec)
        except Exception as e:
            emit({"bench": "copy", "impl": "torch.copy_", "skipped": short_error(e)})
    for c in cases(args.mode, only):
        t0 = time.time()
        print("== %s %s (%s)" % (c.bench, c.label(), c.kernel), flush=True)
        try:
            run_case(env, c, lambda r, c=c: emit(dict(r, label=c.label())), rope=not args.no_rope)
        except Exception as e:      # the reference or the inputs: nothing of this case ran
            traceback.print_exc()
            emit(dict(c.shape_fields(), label=c.label(), impl="*", skipped="case failed: " + short_error(e)))
            env.free()
        print("   %.1f s" % (time.time() - t0), flush=True)
    if out:
        out.close()
    print()
    print(fmt_table(records))
    return records, env


# ------------------------------------------------------------------ selftest (no GPU)


def f32_to_bf16_bits(np, x):
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def bf16_bits_to_f32(np, b):
    return (np.ascontiguousarray(b).astype(np.uint32) << 16).view(np.float32)


def np_attention(np, q, k, v, scale, causal=False, window=None, softcap=None, d_v=None):
    """float64 reference: q (b, s_q, h_q, d), k (b, s_k, h_kv, d), v (b, s_k, h_kv, d_v) or
    None (MLA: v = k[..., :d_v]); bottom-right aligned masks. Returns (o, lse)."""
    q, k = q.astype(np.float64), k.astype(np.float64)
    v = k[..., :d_v] if v is None else v.astype(np.float64)
    b, sq, hq, _ = q.shape
    sk, hkv = k.shape[1], k.shape[2]
    g = hq // hkv
    qi = np.arange(sq)[:, None] + sk - sq
    kj = np.arange(sk)[None, :]
    vis = np.ones((sq, sk), bool)
    if causal or window:
        vis &= kj <= qi
    if window:
        vis &= qi - kj < window
    o = np.zeros((b, sq, hq, v.shape[-1]))
    lse = np.full((b, sq, hq), -np.inf)
    for bi in range(b):
        for h in range(hq):
            s = q[bi, :, h] @ k[bi, :, h // g].T * scale
            if softcap:
                s = softcap * np.tanh(s / softcap)
            s = np.where(vis, s, -np.inf)
            m = s.max(axis=1, keepdims=True)
            live = np.isfinite(m[:, 0])
            m = np.where(np.isfinite(m), m, 0)
            p = np.exp(s - m)
            den = p.sum(axis=1, keepdims=True)
            o[bi, :, h] = np.where(live[:, None], (p / np.where(den > 0, den, 1)) @ v[bi, :, h // g], 0)
            lse[bi, :, h] = np.where(live, np.log(np.where(den[:, 0] > 0, den[:, 0], 1)) + m[:, 0], -np.inf)
    return o, lse


def np_rel(np, a, b):
    return float(np.linalg.norm((a - b).ravel()) / np.linalg.norm(b.ravel()))


class Checker:
    def __init__(self):
        self.passed, self.failed = 0, 0

    def __call__(self, ok, what):
        print("  %s  %s" % ("ok  " if ok else "FAIL", what), flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        return ok


def selftest_numpy(args, check):
    import numpy as np
    A.load(args.lib)
    rng = np.random.default_rng(1)
    ctx = A.Context("cpu", cache_dir="")
    check(ctx.target == "cpu", "context target resolves to 'cpu' (got %r), version %s" % (ctx.target, A.version()))

    # 1. f32, GQA 4/2, bottom-right causal with a window and a soft-cap, s_q < s_k; q is a
    #    transposed view of (b, h, s, d) storage, k a slice of a wider buffer, o a strided
    #    slice of a larger buffer; lse read back.
    src = """kernel t {
        heads q = 4, kv = 2
        dims qk = 16, v = 8
        scale 0.3
        score softcap(score, 5)
        mask causal && q_idx - kv_idx < 6
    }"""
    prog = ctx.compile_string(src, "selftest_f32.attn")
    kern = prog.kernel("t")
    b, sq, sk = 2, 5, 11
    sig = {t.name: t for t in kern.signature(b, sq, sk)}
    check(list(sig) == ["q", "k", "v", "o", "lse"] and sig["q"].shape == (b, sq, 4, 16)
          and sig["k"].shape == (b, sk, 2, 16) and sig["v"].shape == (b, sk, 2, 8) and sig["o"].shape == (b, sq, 4, 8)
          and sig["lse"].shape == (b, sq, 4) and sig["lse"].optional and sig["o"].role == "output"
          and sig["q"].dim_names == ("batch", "seq_q", "heads_q", "d_qk") and sig["q"].dtype == A.F32,
          "signature of a GQA f32 kernel: %s" % list(sig.values()))
    qs = rng.standard_normal((b, 4, sq, 16)).astype(np.float32)
    q = qs.transpose(0, 2, 1, 3)                                    # (b, s, h, d), not contiguous
    kw = rng.standard_normal((b, sk, 2, 40)).astype(np.float32)
    k = kw[..., 3:19]                                               # strided slice
    v = rng.standard_normal((b, sk, 2, 8)).astype(np.float32)
    obuf = np.full((b, sq, 6, 12), np.nan, np.float32)
    o = obuf[:, :, 1:5, 2:10]
    lse = np.full((b, sq, 4), np.nan, np.float32)
    check(not q.flags.c_contiguous and not k.flags.c_contiguous and not o.flags.c_contiguous,
          "views are strided (q transposed, k and o sliced)")
    kern.launch(b, sq, sk, {"q": q, "k": k, "v": v, "o": o, "lse": lse})
    ro, rl = np_attention(np, q, k, v, 0.3, causal=True, window=6, softcap=5.0)
    e_o, e_l = np_rel(np, o, ro), np_rel(np, lse, rl)
    check(e_o < 1e-5 and e_l < 1e-5, "f32 strided launch matches numpy: o rel err %.1e, lse rel err %.1e" % (e_o, e_l))
    untouched = obuf.copy()
    untouched[:, :, 1:5, 2:10] = 0
    check(bool(np.isnan(untouched[:, :, :1]).all() and np.isnan(untouched[:, :, 5:]).all()
               and np.isnan(untouched[..., :2]).all() and np.isnan(untouched[..., 10:]).all()),
          "the strided output view wrote only its own elements")
    # Contiguous copies through the same kernel: same answer.
    o2 = np.full((b, sq, 4, 8), np.nan, np.float32)
    kern.launch(b, sq, sk, {"q": np.ascontiguousarray(q), "k": np.ascontiguousarray(k), "v": v, "o": o2})
    check(np_rel(np, o2, ro) < 1e-5, "contiguous launch (no lse) matches too")
    # The strides are what made the first launch right: the same memory read with
    # contiguous strides is another tensor.
    o3 = np.full((b, sq, 4, 8), np.nan, np.float32)
    lying = A.View(A.F32, q.shape, (sq * 4 * 16, 4 * 16, 16, 1), q.__array_interface__["data"][0], q)
    kern.launch(b, sq, sk, {"q": lying, "k": k, "v": v, "o": o3})
    check(np_rel(np, o3, ro) > 1e-2, "the transposed q read as contiguous gives another answer (the check can fail)")

    # 2. Errors come back as AttncError with the C API's code and message.
    def code_of(fn):
        try:
            fn()
        except A.AttncError as e:
            return e.code_name, e.message
        return None, ""
    c, m = code_of(lambda: kern.launch(b, sq, sk, {"q": q[:, :, :3], "k": k, "v": v, "o": o2}))
    check(c == "ATTNC_ERR_SHAPE" and "q" in m, "a wrong q shape raises ATTNC_ERR_SHAPE: %s" % m[:120])
    c, m = code_of(lambda: kern.launch(b, sq, sk, {"q": q, "k": k, "o": o2}))
    check(c == "ATTNC_ERR_MISSING_TENSOR" and "v" in m, "a missing v raises ATTNC_ERR_MISSING_TENSOR: %s" % m[:120])
    c, m = code_of(lambda: kern.launch(b, sq, sk, {"q": q.astype(np.float64), "k": k, "v": v, "o": o2}))
    check(c == "ATTNC_ERR_DTYPE", "an f64 input raises ATTNC_ERR_DTYPE: %s" % m[:120])
    c, m = code_of(lambda: kern.launch(b, sq, sk, {"q": q, "k": k, "v": v, "o": o2}, stream=1234))
    check(c == "ATTNC_ERR_INVALID_ARGUMENT", "a stream on the cpu target raises ATTNC_ERR_INVALID_ARGUMENT: %s" % m[:120])
    c, m = code_of(lambda: ctx.compile_string("kernel bad {\n  heads q = 32, kv = 7\n  dims 64\n}\n", "bad.attn"))
    check(c == "ATTNC_ERR_SPEC" and "bad.attn:2:" in m and "error:" in m,
          "a spec error raises ATTNC_ERR_SPEC with the diagnostics text: %s" % m.splitlines()[0][:120] if m else "none")
    c, m = code_of(lambda: prog.kernel("nope"))
    check(c == "ATTNC_ERR_UNKNOWN_KERNEL", "an unknown kernel raises ATTNC_ERR_UNKNOWN_KERNEL: %s" % m[:120])
    ws = kern.workspace(b, sq, sk)
    check(isinstance(ws, int) and ws >= 0, "the workspace query answers (%d bytes on the cpu target)" % ws)
    c, m = code_of(lambda: kern.workspace(-1, sq, sk))
    check(c == "ATTNC_ERR_INVALID_ARGUMENT", "a negative batch in the workspace query raises ATTNC_ERR_INVALID_ARGUMENT")
    c, m = code_of(lambda: A.Context("tpu"))
    check(c == "ATTNC_ERR_UNKNOWN_TARGET", "an unknown target raises ATTNC_ERR_UNKNOWN_TARGET")

    # 3. The benchmark's own specs on the cpu target, bf16 bit patterns from numpy, small
    #    lengths; the gemma case has s_k > 4096 so its window cuts.
    def bf16(x):
        bits = f32_to_bf16_bits(np, x)
        return bits, bf16_bits_to_f32(np, bits)
    specs = [
        ("llama3_prefill.attn", "llama3_prefill_causal", 2, 33, 33, dict(causal=True), 32, 8, 128, 128, 128 ** -0.5),
        ("llama3_prefill.attn", "llama3_prefill_full", 1, 20, 20, dict(), 32, 8, 128, 128, 128 ** -0.5),
        ("gemma2_local.attn", "gemma2_local", 1, 6, 4200, dict(causal=True, window=4096, softcap=50.0), 16, 8, 256,
         256, 1 / 16),
        ("llama3_decode.attn", "llama3_decode", 2, 1, 300, dict(causal=True), 32, 8, 128, 128, 128 ** -0.5),
        ("deepseek_mla_decode.attn", "deepseek_mla_decode", 2, 1, 90, dict(causal=True), 128, 1, 576, 512,
         192 ** -0.5),
    ]
    for spec, name, b, sq, sk, mask, hq, hkv, dqk, dv, scale in specs:
        kern = ctx.compile_file(os.path.join(SPECS, spec)).kernel(name)
        sig = {t.name: t for t in kern.signature(b, sq, sk)}
        mla = dv != dqk
        want = ["q", "k", "o", "lse"] if mla else ["q", "k", "v", "o", "lse"]
        ok = list(sig) == want and sig["q"].shape == (b, sq, hq, dqk) and sig["k"].shape == (b, sk, hkv, dqk) \
            and sig["o"].shape == (b, sq, hq, dv) and all(sig[n].dtype == A.BF16 for n in ("q", "k", "o")) \
            and (mla or sig["v"].shape == (b, sk, hkv, dv))
        check(ok, "%s: signature %s" % (name, list(sig.values()) if not ok else "as the benchmark builds it"))
        qb, qf = bf16(rng.standard_normal((b, sq, hq, dqk)))
        kb, kf = bf16(rng.standard_normal((b, sk, hkv, dqk)))
        views = {"q": A.View.of(qb, A.BF16), "k": A.View.of(kb, A.BF16)}
        vf = None
        if not mla:
            vb, vf = bf16(rng.standard_normal((b, sk, hkv, dv)))
            views["v"] = A.View.of(vb, A.BF16)
        ob = np.full((b, sq, hq, dv), 0x7FC0, np.uint16)             # bf16 NaN
        views["o"] = A.View.of(ob, A.BF16)
        kern.launch(b, sq, sk, views)
        ro, _ = np_attention(np, qf, kf, vf, scale, d_v=dv, **mask)
        got = bf16_bits_to_f32(np, ob)
        e = np_rel(np, got, ro) if not np.isnan(got).any() else float("inf")
        check(e < 1e-2, "%s (b %d, s_q %d, s_k %d) bf16 on the cpu target matches numpy: rel err %.1e"
              % (name, b, sq, sk, e))
        if name == "gemma2_local":
            ro_nowin, _ = np_attention(np, qf, kf, vf, scale, d_v=dv, causal=True, softcap=50.0)
            check(np_rel(np, got, ro_nowin) > 1e-2, "gemma2_local: the 4096-key window changes the result")
    ctx.close()


def selftest(args):
    print("== selftest: the C API through ctypes on the cpu target (numpy)")
    check = Checker()
    try:
        selftest_numpy(args, check)
    except Exception:
        traceback.print_exc()
        check(False, "numpy selftest raised")
    try:
        import torch
    except ImportError:
        torch = None
        print("== no torch here: the benchmark's own code path is not dry-run (pip install torch to do so)")
    if torch is not None:
        print("== dry run of the benchmark on the cpu (torch %s, attnc target cpu, tiny shapes)" % torch.__version__)
        import numpy as np
        # The torch reference against numpy's on one case with every modifier.
        env0 = Env(torch, "cpu", "cpu", "")
        c = Case("t", None, None, 2, 7, 19, 4, 2, 16, 8, scale=0.4, causal=True, window=9, softcap=3.0)
        q, k, v = make_inputs(env0, c)
        r = reference(env0, c, q, k, v).numpy()
        rn, _ = np_attention(np, q.float().numpy(), k.float().numpy(), v.float().numpy(), 0.4, causal=True, window=9,
                             softcap=3.0)
        check(np_rel(np, r, rn) < 1e-5, "bench reference() agrees with numpy (rel %.1e)" % np_rel(np, r, rn))
        c = Case("t", None, None, 2, 1, 13, 8, 1, 24, 16, scale=0.2, causal=True, mla=True)
        q, k, v = make_inputs(env0, c)
        r = reference(env0, c, q, k, v).numpy()
        rn, _ = np_attention(np, q.float().numpy(), k.float().numpy(), None, 0.2, causal=True, d_v=16)
        check(np_rel(np, r, rn) < 1e-5, "bench reference() on MLA agrees with numpy (rel %.1e)" % np_rel(np, r, rn))
        # The NaN poison is seen.
        bad = torch.zeros(2, 3)
        bad[1, 2] = float("nan")
        check(rel_err(torch, bad, torch.ones(2, 3)) == float("inf"), "rel_err of an output with a NaN is inf")
        # SDPA's GQA fallback (K/V repeat_interleave'd) when enable_gqa=True is refused, and
        # the forced --sdpa-gqa repeat.
        import torch.nn.functional as F
        c = Case("t", None, None, 1, 9, 9, 4, 2, 16, 16, causal=True)
        q, k, v = make_inputs(env0, c)
        ref = reference(env0, c, q, k, v)
        orig = F.scaled_dot_product_attention

        def refuse(*a, **kw):
            if kw.get("enable_gqa"):
                raise RuntimeError("selftest refuses enable_gqa")
            return orig(*a, **kw)
        recs = []
        F.scaled_dot_product_attention = refuse
        try:
            run_sdpa(env0, c, q, k, v, ref, recs.append)
        finally:
            F.scaled_dot_product_attention = orig
        ok = len(recs) == 2 and all("repeat_interleave" in r.get("note", "") and "selftest refuses enable_gqa"
                                    in r["note"] and r["rel_err"] < 2e-2 for r in recs)
        check(ok, "SDPA falls back to repeat_interleave'd K/V and says why: %s"
              % [(r["impl"], r.get("note"), r.get("rel_err")) for r in recs])
        # FlexAttention's retry with small tiles when the default tiles fail.
        real = compiled_flex(env0)

        def picky(*a, **kw):
            if "kernel_options" not in kw:
                raise RuntimeError("selftest: out of shared memory")
            return real(*a, **kw)
        env0.flex = picky
        recs = []
        run_flex(env0, c, q, k, v, ref, recs.append)
        check(len(recs) == 1 and "selftest: out of shared memory" in recs[0].get("note", "")
              and recs[0].get("rel_err", 1) < 2e-2, "FlexAttention retries with small tiles and says why: %s" % recs)
        def never(*a, **kw):
            raise RuntimeError("selftest: never")
        env0.flex = never
        recs = []
        run_flex(env0, c, q, k, v, ref, recs.append)
        check(len(recs) == 1 and recs[0].get("skipped", "").count("selftest: never") == 2,
              "FlexAttention failing twice is one skipped line with both reasons")
        env0.flex = real
        recs = []
        env0.sdpa_gqa = "repeat"
        run_sdpa(env0, c, q, k, v, ref, recs.append)
        check(len(recs) == 2 and all("--sdpa-gqa repeat" in r.get("note", "") and r["rel_err"] < 2e-2 for r in recs),
              "--sdpa-gqa repeat times repeat_interleave'd K/V")
        env0.ctx.close()
        ns = argparse.Namespace(**vars(args))
        ns.mode, ns.out = "tiny", args.out
        ns.copy_bytes = 1 << 24
        records, env = run_bench(ns, "cpu")
        heads = [r for r in records if r.get("header")]
        check(len(heads) == 1 and heads[0]["attnc_version"] == A.version() and heads[0]["attnc_target"] == "cpu",
              "one header line with attnc's version and target")
        atn = [r for r in records if r.get("impl") == "attnc"]
        n_cases = len(cases("tiny", None))
        check(len(atn) == n_cases, "an attnc line per case (%d of %d)" % (len(atn), n_cases))
        for r in atn:
            check(not r.get("skipped") and r["rel_err"] <= TOL["bf16"] and r["ms"] > 0,
                  "attnc %s %s: rel_err %s" % (r["bench"], r["label"], r.get("rel_err", r.get("skipped"))))
        rope = [r for r in records if r.get("impl") == "attnc+rope"]
        check(len(rope) >= 1 and all(r.get("finite") for r in rope), "attnc+rope lines ran and are finite")
        peers = [r for r in records if r.get("impl", "").startswith(("sdpa", "flex")) and not r.get("skipped")]
        check(len(peers) > 0 and all(r["rel_err"] <= TOL["bf16"] and r.get("speedup_vs_attnc") for r in peers),
              "%d peer lines ran, all within tolerance with a speedup_vs_attnc" % len(peers))
        skipped = [r for r in records if r.get("skipped")]
        for r in skipped:
            print("     (skipped: %s %s %s: %s)" % (r.get("bench"), r.get("label"), r["impl"], r["skipped"][:150]))
        if args.out:
            with open(args.out) as f:
                lines = [json.loads(line) for line in f]
            check(len(lines) == len(records), "--out has one JSON line per record (%d)" % len(lines))
    print("%d passed, %d failed" % (check.passed, check.failed))
    return 1 if check.failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lib", required=True, help="path to libattnc.so")
    ap.add_argument("--out", help="JSON-lines file to write (one record a line, a header first)")
    ap.add_argument("--quick", action="store_true", help="small shapes: a smoke test")
    ap.add_argument("--selftest", action="store_true",
                    help="no GPU: check the ctypes layer and the benchmark's code on attnc's cpu target")
    ap.add_argument("--target", default="cuda", help="attnc target (default cuda: this GPU's architecture)")
    ap.add_argument("--cache-dir", default=None, help="attnc kernel cache directory (default: attnc's)")
    ap.add_argument("--commit", help="the attnc commit to record (default: read from .git)")
    ap.add_argument("--bench", help="comma-separated subset: copy, llama3-prefill, gemma2-local, llama3-decode, "
                                    "mla-decode")
    ap.add_argument("--no-flex", action="store_true", help="skip FlexAttention (torch.compile takes a while)")
    ap.add_argument("--no-rope", action="store_true", help="skip the attnc+rope lines")
    ap.add_argument("--sdpa-math", action="store_true", help="also time SDPA's MATH backend (memory hungry)")
    ap.add_argument("--sdpa-gqa", choices=("auto", "repeat"), default="auto",
                    help="auto: enable_gqa=True, repeat_interleave'd K/V where a backend refuses it; "
                         "repeat: always repeat_interleave K/V (outside the timing)")
    ap.add_argument("--seed", type=int, default=0, help="added to each case's input seed")
    ap.add_argument("--copy-bytes", type=int, default=2 << 30, help="bytes of the copy-bandwidth tensor (2 GiB)")
    args = ap.parse_args()
    args.mode = "quick" if args.quick else "full"
    if args.selftest:
        sys.exit(selftest(args))
    run_bench(args, "cuda")


if __name__ == "__main__":
    main()
