#!/usr/bin/env python3
"""Independent numpy reference for attnc's RoPE plans (ir/rope_plan.c).

Implements the rotary frequency formulas as HF transformers' modeling_rope_utils defines
them (default, linear, dynamic NTK, YaRN, Llama-3.1) plus static NTK-aware scaling, in
float64, and the M-RoPE pair-to-axis assignment.

    rope_reference.py                  print the reference tables of the model configs
    rope_reference.py --compare EXE    run `EXE --dump` (tests/unit/test_rope.c) and compare
                                       every table to 1e-12 relative; exit 1 on a mismatch

numpy is required: without it this exits with status 1 (the ctest fails, never skips).
"""
import math
import subprocess
import sys

try:
    import numpy as np
except ImportError:
    print("rope_reference.py: numpy is required (pip install numpy)", file=sys.stderr)
    sys.exit(1)

REL_TOL = 1e-12

# The configurations the C side must dump, with their parameters (public model configs).
EXPECTED = {
    "llama31": dict(scaling="llama3", base=500000, d=128, factor=8, low=1, high=4, original=8192),
    "llama32": dict(scaling="llama3", base=500000, d=64, factor=32, low=1, high=4, original=8192),
    "deepseek_v2_yarn": dict(scaling="yarn", base=10000, d=64, factor=40, original=4096,
                             beta_fast=32, beta_slow=1, mscale=0.707),
    "yarn_defaults": dict(scaling="yarn", base=1000000, d=128, factor=4, original=32768),
    "ntk": dict(scaling="ntk", base=10000, d=128, factor=4),
    "linear": dict(scaling="linear", base=10000, d=128, factor=4),
    "dynamic_ntk": dict(scaling="dynamic_ntk", base=10000, d=128, factor=2, original=2048),
    "mrope_qwen2vl": dict(scaling="none", base=1000000, d=128, sections=[16, 24, 24]),
    "neox_partial": dict(scaling="none", base=10000, d=24),
    "phi2_partial_dynamic": dict(scaling="dynamic_ntk", base=10000, d=32, factor=4, original=2048),
}


def default_inv_freq(base, d):
    """theta_j = base^(-2j/d), j < d/2 (HF: 1 / base ** (arange(0, d, 2) / d))."""
    exponents = np.arange(0, d, 2, dtype=np.float64) / d
    return 1.0 / np.power(np.float64(base), exponents)


def linear_inv_freq(base, d, factor):
    return default_inv_freq(base, d) / factor


def ntk_inv_freq(base, d, factor):
    """NTK-aware: the base grows to base * factor^(d / (d - 2))."""
    return default_inv_freq(base * factor ** (d / (d - 2)), d)


def dynamic_ntk_inv_freq(base, d, factor, original, seq_len):
    """HF _compute_dynamic_ntk_parameters with seq_len = max(seq_len, original)."""
    seq_len = max(seq_len, original)
    grown = base * ((factor * seq_len / original) - (factor - 1)) ** (d / (d - 2))
    return default_inv_freq(grown, d)


def yarn_inv_freq(base, d, factor, original, beta_fast=0, beta_slow=0, mscale=0):
    """HF _compute_yarn_parameters (truncate=True). Returns (inv_freq, attn_factor) where
    attn_factor = t^2 multiplies the softmax scale, t = 0.1 mscale ln(factor) + 1."""
    beta_fast = beta_fast or 32
    beta_slow = beta_slow or 1
    mscale = mscale or 1

    def dim_for_rotations(n_rot):
        # the dimension whose wavelength fits n_rot turns into the original context
        return d * math.log(original / (n_rot * 2 * math.pi)) / (2 * math.log(base))

    low = max(math.floor(dim_for_rotations(beta_fast)), 0)
    high = min(math.ceil(dim_for_rotations(beta_slow)), d - 1)
    if low == high:
        high += 0.001
    pos_freqs = np.power(np.float64(base), np.arange(0, d, 2, dtype=np.float64) / d)
    extrapolated = 1.0 / pos_freqs
    interpolated = 1.0 / (factor * pos_freqs)
    ramp = np.clip((np.arange(d // 2, dtype=np.float64) - low) / (high - low), 0.0, 1.0)
    extrapolation_weight = 1.0 - ramp
    inv = interpolated * (1.0 - extrapolation_weight) + extrapolated * extrapolation_weight
    t = 0.1 * mscale * math.log(factor) + 1.0 if factor > 1 else 1.0
    return inv, t * t


def llama3_inv_freq(base, d, factor, low, high, original):
    """HF _compute_llama3_parameters: keep short wavelengths, divide long ones by the
    factor, blend linearly in original/wavelen between them."""
    inv = default_inv_freq(base, d)
    wavelen = 2 * math.pi / inv
    low_wavelen = original / low
    high_wavelen = original / high
    out = np.where(wavelen > low_wavelen, inv / factor, inv)
    smooth = (original / wavelen - low) / (high - low)
    blended = (1 - smooth) * out / factor + smooth * out
    medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
    return np.where(medium, blended, out)


def pair_axes(n_pairs, sections):
    axes = np.zeros(n_pairs, dtype=np.int64)
    if len(sections) > 1:
        bounds = np.cumsum(sections)
        for j in range(n_pairs):
            axes[j] = int(np.searchsorted(bounds, j, side="right"))
    return axes


def reference(p, seq_lens=()):
    """(inv_freq, attn_factor, pair_axis, {seq_k: inv_freq}) for parameters p."""
    d, base, s = p["d"], p["base"], p["scaling"]
    attn = 1.0
    if s == "none":
        inv = default_inv_freq(base, d)
    elif s == "linear":
        inv = linear_inv_freq(base, d, p["factor"])
    elif s == "ntk":
        inv = ntk_inv_freq(base, d, p["factor"])
    elif s == "dynamic_ntk":
        inv = default_inv_freq(base, d)
    elif s == "yarn":
        inv, attn = yarn_inv_freq(base, d, p["factor"], p["original"], p.get("beta_fast", 0),
                                  p.get("beta_slow", 0), p.get("mscale", 0))
    elif s == "llama3":
        inv = llama3_inv_freq(base, d, p["factor"], p["low"], p["high"], p["original"])
    else:
        raise ValueError("unknown scaling " + s)
    at = {}
    for n in seq_lens:
        if s == "dynamic_ntk":
            at[n] = dynamic_ntk_inv_freq(base, d, p["factor"], p["original"], n)
        else:
            at[n] = inv
    return inv, attn, pair_axes(d // 2, p.get("sections", [])), at


def parse_dump(text):
    cases, cur = {}, None
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        key, rest = words[0], words[1:]
        if key == "case":
            cur = {"at": {}}
            cases[rest[0]] = cur
        elif key == "end":
            cur = None
        elif key == "at":
            cur["at"][int(rest[0])] = np.array([float(x) for x in rest[1:]])
        elif key in ("inv_freq", "pair_axis", "sections"):
            cur[key] = np.array([float(x) for x in rest])
        elif key in ("layout", "scaling"):
            cur[key] = rest[0]
        else:
            cur[key] = float(rest[0])
    return cases


def max_rel_err(got, want):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return math.inf
    return float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-300))) if got.size else 0.0


def compare(exe):
    out = subprocess.run([exe, "--dump"], check=True, capture_output=True, text=True).stdout
    dumped = parse_dump(out)
    failures = 0

    def fail(msg):
        nonlocal failures
        failures += 1
        print("FAIL " + msg)

    for name, p in EXPECTED.items():
        c = dumped.get(name)
        if c is None:
            fail(f"{name}: not dumped")
            continue
        d = int(c["dim_hi"] - c["dim_lo"])
        if d != p["d"] or c["scaling"] != p["scaling"] or c["base"] != p["base"]:
            fail(f"{name}: dumped d={d} scaling={c['scaling']} base={c['base']}, expected {p}")
            continue
        for key in ("factor", "original", "low", "high", "beta_fast", "beta_slow", "mscale"):
            if key in p and c[key] != p[key]:
                fail(f"{name}: {key} = {c[key]}, expected {p[key]}")
        if list(c["sections"]) != p.get("sections", []):
            fail(f"{name}: sections {list(c['sections'])}, expected {p.get('sections', [])}")
        inv, attn, axes, at = reference(p, sorted(c["at"]))
        checks = [("inv_freq", c["inv_freq"], inv), ("attn_factor", [c["attn_factor"]], [attn])]
        checks += [(f"inv_freq at seq_k={n}", c["at"][n], at[n]) for n in sorted(c["at"])]
        for what, got, want in checks:
            err = max_rel_err(got, want)
            if not err <= REL_TOL:
                fail(f"{name}: {what}: max relative error {err:.3g} > {REL_TOL}")
        if not np.array_equal(c["pair_axis"], axes):
            fail(f"{name}: pair_axis {c['pair_axis'].astype(int).tolist()}, expected {axes.tolist()}")
        print(f"ok   {name}: {d // 2} pairs, {len(c['at'])} dynamic lengths")
    for name in dumped:
        if name not in EXPECTED:
            fail(f"{name}: dumped but has no reference parameters")
    if "dynamic_ntk" in dumped and len(dumped["dynamic_ntk"]["at"]) < 3:
        fail("dynamic_ntk: fewer than 3 sequence lengths dumped")
    print(f"rope_reference: {len(EXPECTED)} configurations, {failures} failures")
    return 1 if failures else 0


def print_tables():
    for name, p in EXPECTED.items():
        inv, attn, axes, _ = reference(p)
        print(f"case {name}")
        print("attn_factor %.17g" % attn)
        print("inv_freq " + " ".join("%.17g" % x for x in inv))
        print("pair_axis " + " ".join(str(int(a)) for a in axes))
        print("end")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--compare":
        sys.exit(compare(sys.argv[2]))
    if len(sys.argv) == 1:
        sys.exit(print_tables())
    print(__doc__, file=sys.stderr)
    sys.exit(2)
