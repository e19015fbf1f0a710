#!/usr/bin/env python3
"""Checks attnc's reference interpreter against the independent numpy implementation
(reference.py) on one example kernel: random inputs of awkward shapes are written as
.npy files, `attnc run --target ref` computes the kernel, and the outputs must agree with
reference.py to 1e-9 relative (elementwise |a - b| <= 1e-9 (|b| + rms(b))).

The python side does not parse the DSL: KERNELS below restates each example's mathematics
(heads, dims, RoPE, mask, score, inputs, decay ...). It must mirror examples/*.attn; a
kernel found in a spec without an entry here fails loudly, and a table that disagrees
with its spec shows up as a shape error from `attnc run` or as a numeric mismatch.

usage: check_example.py --attnc PATH/attnc --file SPEC.attn --kernel NAME [--keep DIR]
       check_example.py --list          (the kernels the table knows)
"""
import argparse
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError:
    sys.stderr.write("check_example.py: numpy is required for the reference tests (pip install numpy); "
                     "this is a failure, not a skip\n")
    sys.exit(1)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as ref  # noqa: E402

RTOL = 1e-9

# ----------------------------------------------------------------------------- input generators


def gen_segments(rng, B, T):
    """Packed documents: runs of equal ids, lengths 1 .. T/3 + 1."""
    out = np.zeros((B, T), np.int32)
    for b in range(B):
        t, doc = 0, 0
        while t < T:
            n = int(rng.integers(1, T // 3 + 2))
            out[b, t:t + n] = doc
            t, doc = t + n, doc + 1
    return out


def gen_mrope_positions(rng, B, T, axes):
    """Multimodal-like position ids: text runs (t = h = w) then an image grid where h, w
    vary and t stays, plus a random jump, per batch row."""
    pos = np.zeros((B, T, axes), np.int32)
    for b in range(B):
        base = int(rng.integers(0, 50))
        grid_w = int(rng.integers(2, 5))
        for i in range(T):
            if i < T // 3:                      # text
                pos[b, i, :] = base + i
            else:                               # image patches
                j = i - T // 3
                pos[b, i, 0] = base + T // 3
                pos[b, i, 1] = base + T // 3 + j // grid_w
                if axes > 2:
                    pos[b, i, 2] = base + T // 3 + j % grid_w
    return pos


def uniform(lo, hi):
    return lambda rng, shape: rng.uniform(lo, hi, shape).astype(np.float32)


def normal(s=1.0):
    return lambda rng, shape: (s * rng.standard_normal(shape)).astype(np.float32)


# ----------------------------------------------------------------------------- the table

def causal(ix):
    return ix["kv_idx"] <= ix["q_idx"]


def window(w):
    return lambda ix: causal(ix) & (ix["q_idx"] - ix["kv_idx"] < w)


def alibi(s, ix):
    slope = 2.0 ** (-8.0 * (ix["head"] + 1) / ix["heads_q"])
    return s + slope * (ix["kv_idx"] - ix["q_idx"])


def softcap(c):
    return lambda s, ix: c * np.tanh(s / c)


def doc_mask(ix):
    doc, b = ix["doc"], ix["batch"]
    return causal(ix) & (doc[b, ix["q_idx"]] == doc[b, ix["kv_idx"]])


LLAMA31 = dict(kind="llama3", factor=8, low=1, high=4, original=8192)
DSV2_YARN = dict(kind="yarn", factor=40, original=4096, beta_fast=32, beta_slow=1, mscale=0.707)
PREFILL_SHAPES = [(1, 1, 1), (2, 17, 17), (1, 65, 65), (2, 5, 33)]   # (batch, seq_q, seq_k)
DECODE_SHAPES = [(1, 1, 1), (2, 1, 17), (1, 1, 65), (2, 3, 40)]
REC_SHAPES = [(1, 1), (2, 17), (1, 65)]                            # (batch, seq)
# seq_q > seq_k: the first rows sit before every key, so a causal mask hides everything
MASKED_ROW_SHAPES = PREFILL_SHAPES + [(1, 9, 4)]


def softmax(hq, hkv, dqk, dv, dtype, scale=None, rope=None, mask=None, score=None, inputs=None, v_in_k=False,
            shapes=PREFILL_SHAPES):
    return dict(family="softmax", hq=hq, hkv=hkv, dqk=dqk, dv=dv, dtype=dtype,
                scale=scale if scale is not None else dqk ** -0.5, rope=rope, mask=mask, score=score,
                inputs=inputs or {}, v_in_k=v_in_k, shapes=shapes)


def recurrence(heads, groups, dk, dv, dtype, decay=None, feature=None, normalize=False, v_scale=None, skip=None,
               inputs=None, shapes=REC_SHAPES):
    return dict(family="recurrence", heads=heads, groups=groups, dk=dk, dv=dv, dtype=dtype, decay=decay,
                feature=feature, normalize=normalize, v_scale=v_scale, skip=skip, inputs=inputs or {},
                shapes=shapes)


def rope(layout, lo, hi, base=10000.0, scaling=None, sections=None, positions=False, window=0, leak=0):
    return dict(layout=layout, lo=lo, hi=hi, base=base, scaling=scaling, sections=sections,
                positions=positions or bool(sections), rerope_window=window, rerope_leak=leak)


# Inputs: name -> (shape kind, dtype, generator). Shape kinds: "token" [B, S], "head" [H],
# "token_head" [B, S, H], "token_head_k" [B, S, H, DK], "token_head_v" [B, S, H, DV],
# "head_v" [H, DV], "head_k_v" [H, DK, DV].
KERNELS = {
    # examples/llama3_8b.attn
    "llama3_8b": softmax(32, 8, 128, 128, "bf16", rope=rope("half", 0, 128, 500000.0, LLAMA31), mask=causal,
                         shapes=MASKED_ROW_SHAPES),
    "llama3_8b_decode": softmax(32, 8, 128, 128, "bf16", rope=rope("half", 0, 128, 500000.0, LLAMA31),
                                mask=causal, shapes=DECODE_SHAPES),
    # examples/mistral_7b.attn — a few queries at the end of 4100 keys cross the window
    "mistral_7b": softmax(32, 8, 128, 128, "bf16", rope=rope("half", 0, 128), mask=window(4096),
                          shapes=PREFILL_SHAPES + [(1, 3, 4100)]),
    # examples/gemma2_9b.attn
    "gemma2_9b_local": softmax(16, 8, 256, 256, "bf16", scale=1 / 16.0, rope=rope("half", 0, 256),
                               score=softcap(50.0), mask=window(4096), shapes=PREFILL_SHAPES + [(1, 2, 4099)]),
    "gemma2_9b_global": softmax(16, 8, 256, 256, "bf16", scale=1 / 16.0, rope=rope("half", 0, 256),
                                score=softcap(50.0), mask=causal, shapes=MASKED_ROW_SHAPES),
    # examples/gpt_neox_20b.attn
    "gpt_neox_20b": softmax(64, 64, 96, 96, "f16", rope=rope("half", 0, 24), mask=causal),
    # examples/phi2.attn
    "phi2": softmax(32, 32, 80, 80, "f32", rope=rope("half", 0, 32), mask=causal, shapes=MASKED_ROW_SHAPES),
    # examples/qwen2_vl_7b.attn — sections imply explicit positions
    "qwen2_vl_7b": softmax(28, 4, 128, 128, "bf16", rope=rope("half", 0, 128, 1e6, sections=[16, 24, 24]),
                           mask=causal),
    # examples/deepseek_v2.attn
    "deepseek_v2_prefill": softmax(128, 128, 192, 128, "bf16", scale=192 ** -0.5,
                                   rope=rope("interleaved", 128, 192, 10000.0, DSV2_YARN), mask=causal,
                                   shapes=[(1, 1, 1), (2, 17, 17), (1, 33, 33), (1, 5, 21)]),
    "deepseek_v2_decode": softmax(128, 1, 576, 512, "bf16", scale=192 ** -0.5, v_in_k=True,
                                  rope=rope("interleaved", 512, 576, 10000.0, DSV2_YARN), mask=causal,
                                  shapes=DECODE_SHAPES),
    # examples/rerope.attn — 600 keys put the oldest ones beyond the 512 window
    "llama_rerope": softmax(32, 32, 128, 128, "bf16", rope=rope("half", 0, 128, window=512), mask=causal,
                            shapes=[(1, 1, 1), (2, 17, 17), (1, 4, 600)]),
    "llama_leaky_rerope": softmax(32, 32, 128, 128, "bf16", rope=rope("half", 0, 128, window=512, leak=16),
                                  mask=causal, shapes=[(1, 1, 1), (2, 17, 17), (1, 4, 600)]),
    # examples/alibi.attn
    "bloom_alibi": softmax(32, 32, 128, 128, "bf16", score=alibi, mask=causal, shapes=MASKED_ROW_SHAPES),
    # examples/doc_mask.attn (seq_q <= seq_k: q_idx stays inside doc)
    "packed_docs": softmax(16, 4, 64, 64, "f32", rope=rope("half", 0, 64), mask=doc_mask,
                           inputs={"doc": ("token", "i32", gen_segments)}),
    "prefix_lm": softmax(8, 8, 64, 64, "f32", mask=lambda ix: (ix["kv_idx"] < 64) | causal(ix),
                         shapes=PREFILL_SHAPES + [(1, 80, 80), (1, 3, 70)]),
    # examples/mamba2_2_7b.attn: decay exp(-dt exp(A_log)), value scale dt, skip D
    "mamba2_2_7b": recurrence(80, 1, 128, 64, "bf16",
                              decay=lambda x: np.exp(-x["dt"] * np.exp(x["A_log"]))[..., None, None],
                              v_scale=lambda x: x["dt"], skip=lambda x: x["D"][:, None],
                              inputs={"dt": ("token_head", "f32", uniform(0.001, 0.1)),
                                      "A_log": ("head", "f32", uniform(-1.0, 1.5)),
                                      "D": ("head", "f32", normal())}),
    # examples/retnet.attn: gamma_h = 1 - 2^(-5 - h)
    "retnet": recurrence(8, 8, 64, 128, "f32",
                         decay=lambda x: (1 - 2.0 ** (-5.0 - np.arange(8)))[None, None, :, None, None]),
    # examples/gla.attn: alpha = exp(-softplus(-g) / 16) per key dim
    "gla": recurrence(4, 4, 64, 128, "f32", decay=lambda x: np.exp(-ref.softplus(-x["g"]) / 16)[..., None],
                      inputs={"g": ("token_head_k", "f32", normal(2.0))}),
    # examples/linear_elu.attn
    "linear_elu": recurrence(8, 8, 64, 64, "f32", feature=lambda x: ref.elu(x) + 1, normalize=True),
    # examples/s4d.attn: decay exp(-exp(log_dt) exp(A_log)) per state element (n, p), value scale exp(log_dt), skip D
    "s4d": recurrence(4, 1, 16, 32, "f32",
                      decay=lambda x: np.exp(-np.exp(x["log_dt"])[:, None, None] * np.exp(x["A_log"]))[None, None],
                      v_scale=lambda x: np.exp(x["log_dt"]), skip=lambda x: x["D"],
                      inputs={"A_log": ("head_k_v", "f32", uniform(-1.0, 1.0)),
                              "log_dt": ("head", "f32", uniform(-6.9, -2.3)),
                              "D": ("head_v", "f32", normal())}),

    # tests/ref/extra.attn
    "ref_rope_linear": softmax(4, 2, 32, 16, "f32", rope=rope("half", 0, 32, scaling=dict(kind="linear", factor=4)),
                               mask=causal, shapes=MASKED_ROW_SHAPES),
    "ref_rope_ntk": softmax(2, 1, 48, 24, "f16", rope=rope("interleaved", 8, 40, 20000.0, dict(kind="ntk", factor=8)),
                            mask=causal),
    "ref_rope_dynamic_ntk": softmax(2, 2, 32, 32, "f32",
                                    rope=rope("half", 0, 32, scaling=dict(kind="dynamic_ntk", factor=2, original=32)),
                                    mask=causal, shapes=[(1, 1, 1), (1, 17, 17), (2, 32, 32), (1, 5, 65), (2, 40, 40)]),
    "ref_rope_yarn": softmax(3, 1, 64, 32, "bf16", rope=rope("half", 0, 64, scaling=dict(kind="yarn", factor=16, original=64)),
                             mask=causal),
    "ref_rope_2d": softmax(2, 2, 32, 8, "f32", rope=rope("interleaved", 0, 32, sections=[8, 8])),
    "ref_local_docs": softmax(6, 3, 16, 12, "f32",
                              score=lambda s, ix: 5 * np.tanh((s + ix["bias"][ix["head"]]) / 5),
                              mask=lambda ix: (ix["doc"][ix["batch"], ix["q_idx"]] == ix["doc"][ix["batch"], ix["kv_idx"]])
                              & (np.abs(ix["q_idx"] - ix["kv_idx"]) < 8),
                              inputs={"doc": ("token", "i32", gen_segments), "bias": ("head", "f32", normal(2.0))}),
    "ref_state_decay": recurrence(2, 2, 4, 8, "f32",
                                  decay=lambda x: np.exp(-x["dt"][:, :, :, None, :] * np.exp(x["A_log"])[None, None]),
                                  inputs={"dt": ("token_head_v", "f32", uniform(0.01, 0.5)),
                                          "A_log": ("head_k_v", "f32", uniform(-2.0, 1.0))}),
    "ref_groups_feature": recurrence(4, 2, 16, 8, "f16", feature=lambda x: np.maximum(x, 0) + 0.5, normalize=True),
    "ref_skip_v": recurrence(3, 1, 8, 4, "f32", decay=lambda x: x["a"][..., None, None], v_scale=lambda x: x["s"],
                             skip=lambda x: x["D"],
                             inputs={"a": ("token_head", "f32", uniform(0.5, 1.0)), "s": ("token_head", "f32", uniform(0.1, 1.0)),
                                     "D": ("head_v", "f32", normal())}),
}

# ----------------------------------------------------------------------------- running


def to_dtype(x32, dtype):
    """(array to save, float64 values the kernel sees)."""
    if dtype == "bf16":
        bits = ref.bf16_bits_from_f32(x32)
        return bits, ref.bf16_bits_to_f64(bits)
    if dtype == "f16":
        h = x32.astype(np.float16)
        return h, h.astype(np.float64)
    return x32.astype(np.float32), x32.astype(np.float64)


def input_shape(kind, B, S, H, DK, DV):
    return {"token": (B, S), "head": (H,), "token_head": (B, S, H), "token_head_k": (B, S, H, DK),
            "token_head_v": (B, S, H, DV), "head_v": (H, DV), "head_k_v": (H, DK, DV)}[kind]


def compare(name, got, want):
    """Max abs and rel error; fails on NaN, on a shape mismatch, or beyond RTOL."""
    if got.shape != want.shape:
        return False, "%s: shape %s, expected %s" % (name, got.shape, want.shape)
    if np.isnan(got).any() or np.isnan(want).any():
        return False, "%s: NaN (attnc %d, reference %d)" % (name, np.isnan(got).sum(), np.isnan(want).sum())
    same = got == want                                       # equal infinities included
    fin = want[np.isfinite(want)]
    rms = float(np.sqrt(np.mean(fin ** 2))) if fin.size else 0.0
    with np.errstate(invalid="ignore"):
        err = np.where(same, 0.0, np.abs(got - want))
    rel = err / (np.abs(np.where(np.isfinite(want), want, 0)) + rms + 1e-300)
    bad = int((~same & ~(rel <= RTOL)).sum())
    msg = "%s max abs %.2e rel %.2e" % (name, float(err.max(initial=0)), float(rel.max(initial=0)))
    if bad:
        i = np.unravel_index(np.argmax(np.where(same, 0, rel)), rel.shape)
        msg += " -- %d elements beyond %.0e, worst at %s: attnc %r, reference %r" % (bad, RTOL, tuple(int(x) for x in i),
                                                                                   float(got[i]), float(want[i]))
    return bad == 0, msg


def run_attnc(attnc, spec, kernel, files, outs, workdir):
    cmd = [attnc, "run", spec, "--kernel", kernel, "--target", "ref", "--out-dtype", "f64"]
    for name, path in files.items():
        cmd += ["--in", "%s=%s" % (name, path)]
    for opt, path in outs.items():
        cmd += [opt, path]
    p = subprocess.run(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if p.returncode != 0:
        raise RuntimeError("attnc run failed (exit %d): %s\n%s%s" % (p.returncode, " ".join(cmd), p.stdout, p.stderr))


def check_softmax(attnc, spec, kernel, e, rng, workdir):
    ok = True
    for (B, SQ, SK) in e["shapes"]:
        files, arrays = {}, {}
        d_k = e["dqk"]
        shapes = {"q": (B, SQ, e["hq"], d_k), "k": (B, SK, e["hkv"], d_k), "v": (B, SK, e["hkv"], e["dv"])}
        if e["v_in_k"]:
            del shapes["v"]
        for name, shp in shapes.items():
            save, arrays[name] = to_dtype(rng.standard_normal(shp).astype(np.float32), e["dtype"])
            files[name] = os.path.join(workdir, name + ".npy")
            np.save(files[name], save)
        positions = None
        r = e["rope"]
        if r and r["positions"]:
            axes = max(1, len(r["sections"] or []))
            positions = gen_mrope_positions(rng, B, SK, axes)
            files["positions"] = os.path.join(workdir, "positions.npy")
            np.save(files["positions"], positions)
        inputs = {}
        for name, (kind, dt, gen) in e["inputs"].items():
            arr = gen(rng, B, SK) if kind == "token" and dt == "i32" else gen(rng, input_shape(kind, B, SK, e["hq"], d_k, e["dv"]))
            files[name] = os.path.join(workdir, name + ".npy")
            np.save(files[name], arr)
            inputs[name] = arr.astype(np.int64 if dt == "i32" else np.float64)
        scale = e["scale"]
        if r and r["scaling"]:
            scale *= ref.rope_inv_freq(r["hi"] - r["lo"], r["base"], r["scaling"], SK)[1]
        o_want, lse_want = ref.softmax_attention(
            arrays["q"], arrays["k"], arrays.get("v"), heads_kv=e["hkv"], scale=scale, d_v=e["dv"],
            v_in_k=e["v_in_k"], rope=r, positions=positions, mask=e["mask"], score=e["score"], inputs=inputs)
        outs = {"--out": os.path.join(workdir, "o.npy"), "--out-lse": os.path.join(workdir, "lse.npy")}
        run_attnc(attnc, spec, kernel, files, outs, workdir)
        o_got, lse_got = np.load(outs["--out"]), np.load(outs["--out-lse"])
        ok1, m1 = compare("o", o_got, o_want)
        ok2, m2 = compare("lse", lse_got, lse_want)
        masked = int(np.isneginf(lse_want).sum())
        print("  batch %d, seq_q %d, seq_k %d: %s; %s; %d fully masked rows: %s"
              % (B, SQ, SK, m1, m2, masked, "ok" if ok1 and ok2 else "FAIL"))
        ok = ok and ok1 and ok2
    return ok


def check_recurrence(attnc, spec, kernel, e, rng, workdir):
    ok = True
    H, G, DK, DV = e["heads"], e["groups"], e["dk"], e["dv"]
    for (B, S) in e["shapes"]:
        for with_state in ([False, True] if not e["normalize"] else [False]):
            files, arrays = {}, {}
            for name, shp in {"q": (B, S, G, DK), "k": (B, S, G, DK), "v": (B, S, H, DV)}.items():
                save, arrays[name] = to_dtype(rng.standard_normal(shp).astype(np.float32), e["dtype"])
                files[name] = os.path.join(workdir, name + ".npy")
                np.save(files[name], save)
            x = {}
            for name, (kind, dt, gen) in e["inputs"].items():
                arr = gen(rng, input_shape(kind, B, S, H, DK, DV))
                files[name] = os.path.join(workdir, name + ".npy")
                np.save(files[name], arr)
                x[name] = arr.astype(np.float64)
            state_in = None
            if with_state:
                s32 = (0.5 * rng.standard_normal((B, H, DK, DV))).astype(np.float32)
                files["state_in"] = os.path.join(workdir, "state_in.npy")
                np.save(files["state_in"], s32)
                state_in = s32.astype(np.float64)
            o_want, st_want = ref.recurrence(
                arrays["q"], arrays["k"], arrays["v"], heads=H, groups=G,
                decay=e["decay"](x) if e["decay"] else None, feature=e["feature"], normalize=e["normalize"],
                v_scale=e["v_scale"](x) if e["v_scale"] else None, skip=e["skip"](x) if e["skip"] else None,
                state_in=state_in)
            outs = {"--out": os.path.join(workdir, "o.npy"), "--out-state": os.path.join(workdir, "state.npy")}
            run_attnc(attnc, spec, kernel, files, outs, workdir)
            ok1, m1 = compare("o", np.load(outs["--out"]), o_want)
            ok2, m2 = compare("state", np.load(outs["--out-state"]), st_want)
            print("  batch %d, seq %d%s: %s; %s: %s" % (B, S, ", state_in" if with_state else "", m1, m2,
                                                       "ok" if ok1 and ok2 else "FAIL"))
            ok = ok and ok1 and ok2
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--attnc")
    ap.add_argument("--file")
    ap.add_argument("--kernel")
    ap.add_argument("--seed", type=int, default=20240611)
    ap.add_argument("--keep", help="write the .npy files here instead of a temporary directory")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    if a.list:
        print("\n".join(sorted(KERNELS)))
        return 0
    if not (a.attnc and a.file and a.kernel):
        ap.error("--attnc, --file and --kernel are required")
    e = KERNELS.get(a.kernel)
    if e is None:
        sys.stderr.write("check_example.py: no table entry for kernel '%s' (from %s); add one to KERNELS in %s "
                         "restating the spec's mathematics\n" % (a.kernel, a.file, os.path.abspath(__file__)))
        return 1
    rng = np.random.default_rng([a.seed, sum(map(ord, a.kernel))])
    print("ref.%s (%s): attnc interpreter vs numpy reference, rtol %.0e" % (a.kernel, a.file, RTOL))
    try:
        if a.keep:
            os.makedirs(a.keep, exist_ok=True)
            workdir = a.keep
            ok = (check_softmax if e["family"] == "softmax" else check_recurrence)(a.attnc, os.path.abspath(a.file),
                                                                                  a.kernel, e, rng, workdir)
        else:
            with tempfile.TemporaryDirectory(prefix="attnc_ref_") as workdir:
                ok = (check_softmax if e["family"] == "softmax" else check_recurrence)(
                    a.attnc, os.path.abspath(a.file), a.kernel, e, rng, workdir)
    except RuntimeError as err:
        sys.stderr.write("%s\n" % err)
        return 1
    print("ref.%s: %s" % (a.kernel, "PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
