"""An independent float64 numpy implementation of the attention family attnc compiles.

Written from the formulas in design/variants.md and dsl/README.md, not from attnc's C
code, so that agreement with the interpreter (ir/interp.c) means two readings of the
specification agree. Where the C interpreter computes things one way, this file
deliberately takes another where the mathematics allows:

- softmax attention is vectorised over (batch, head, query, key) with einsum;
- ReRoPE scores use the expansion  (R(r·f) q)·k = cos(r f)(q0 k0 + q1 k1) + sin(r f)(q0 k1 - q1 k0)
  per pair instead of rotating q for every (query, key);
- recurrences use the quadratic ("attention with a decay mask") form
  o_t = Σ_{i<=t} φ(q_t)ᵀ (D_ti ⊙ φ(k_i)) (s_i v_i), D_ti = Π_{r=i+1..t} Λ_r,
  plus the initial state carried by Π_{r<=t} Λ_r, instead of the sequential scan.

Nothing here imports or calls attnc.
"""
import math

import numpy as np

# ----------------------------------------------------------------------------- dtypes


def bf16_bits_from_f32(x):
    """float32 -> bfloat16 bit patterns (uint16), round to nearest even (no NaNs here)."""
    b = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    b = b + 0x7FFF + ((b >> 16) & 1)
    return (b >> 16).astype(np.uint16)


def bf16_bits_to_f64(bits):
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32).astype(np.float64)


# ----------------------------------------------------------------------------- RoPE


def rope_inv_freq(rot_dim, base=10000.0, scaling=None, seq_k=None):
    """Angle per position unit for each of the rot_dim/2 pairs, and the factor the softmax
    scale is multiplied by (YaRN's temperature squared, else 1).

    scaling: None or a dict with 'kind' in linear, ntk, dynamic_ntk, yarn, llama3 and
    its parameters (factor, original, beta_fast, beta_slow, mscale, low, high)."""
    d = rot_dim
    j = np.arange(d // 2, dtype=np.float64)
    theta = base ** (-2.0 * j / d)               # θ_j = b^(-2j/d)
    if not scaling:
        return theta, 1.0
    kind = scaling["kind"]
    factor = float(scaling.get("factor", 1.0))
    if kind == "linear":                          # positions n -> n / κ
        return theta / factor, 1.0
    if kind == "ntk":                             # b' = b κ^(d/(d-2))
        return (base * factor ** (d / (d - 2.0))) ** (-2.0 * j / d), 1.0
    if kind == "dynamic_ntk":                     # NTK with κ grown from the run's length
        original = float(scaling["original"])
        if seq_k is None or seq_k <= original:
            return theta, 1.0
        kappa = factor * seq_k / original - (factor - 1.0)
        return (base * kappa ** (d / (d - 2.0))) ** (-2.0 * j / d), 1.0
    if kind == "yarn":
        original = float(scaling["original"])
        beta_fast = float(scaling.get("beta_fast", 32.0))
        beta_slow = float(scaling.get("beta_slow", 1.0))
        mscale = float(scaling.get("mscale", 1.0))

        # Pair index whose wavelength 2π/θ_j fits `rotations` turns into the original
        # context:  original / (2π b^(2j/d)) = rotations  solved for j.
        def pair_for(rotations):
            return d * math.log(original / (rotations * 2.0 * math.pi)) / (2.0 * math.log(base))

        lo = max(math.floor(pair_for(beta_fast)), 0)
        hi = min(math.ceil(pair_for(beta_slow)), d - 1)
        if lo == hi:
            hi += 0.001
        ramp = np.clip((j - lo) / (hi - lo), 0.0, 1.0)   # 0: keep θ (extrapolate), 1: θ/κ
        inv = theta * (1.0 - ramp) + (theta / factor) * ramp
        t = 0.1 * mscale * math.log(factor) + 1.0 if factor > 1.0 else 1.0
        return inv, t * t
    if kind == "llama3":
        original = float(scaling["original"])
        low, high = float(scaling.get("low", 1.0)), float(scaling.get("high", 4.0))
        wavelen = 2.0 * math.pi / theta
        out = theta.copy()
        long_waves = wavelen > original / low         # beyond the low-frequency wavelength
        out[long_waves] = theta[long_waves] / factor
        mid = (wavelen >= original / high) & ~long_waves
        smooth = (original / wavelen[mid] - low) / (high - low)
        out[mid] = (1.0 - smooth) * theta[mid] / factor + smooth * theta[mid]
        return out, 1.0
    raise ValueError("unknown RoPE scaling %r" % kind)


def rope_pairs(layout, lo, hi):
    """The two dims of every pair: half (lo+j, lo+j+P) or interleaved (lo+2j, lo+2j+1)."""
    p = (hi - lo) // 2
    j = np.arange(p)
    if layout == "half":
        return lo + j, lo + j + p
    if layout == "interleaved":
        return lo + 2 * j, lo + 2 * j + 1
    raise ValueError(layout)


def pair_axes(n_pairs, sections):
    """Axis of each pair: the section it falls in (all 0 without sections)."""
    if not sections or len(sections) <= 1:
        return np.zeros(n_pairs, dtype=np.int64)
    assert sum(sections) == n_pairs
    return np.repeat(np.arange(len(sections)), sections)


def rotate(x, pos, inv_freq, d0, d1, axes):
    """RoPE on x [B, T, H, D] at positions pos [B, T, A]: pair j turns by pos[.., axes[j]] θ_j."""
    ang = pos[:, :, axes].astype(np.float64) * inv_freq        # [B, T, P]
    c, s = np.cos(ang)[:, :, None, :], np.sin(ang)[:, :, None, :]
    out = x.copy()
    x0, x1 = x[..., d0], x[..., d1]
    out[..., d0] = x0 * c - x1 * s
    out[..., d1] = x0 * s + x1 * c
    return out


# ----------------------------------------------------------------------------- softmax attention


def softmax_attention(q, k, v, *, heads_kv, scale, d_v=None, v_in_k=False, rope=None, positions=None,
                      mask=None, score=None, inputs=None):
    """o [B, SQ, HQ, DV], lse [B, SQ, HQ] in float64.

    q [B, SQ, HQ, D]; k [B, SK, HKV, D]; v [B, SK, HKV, DV] (None with v_in_k: V is the first
    d_v dims of K). Query row r has q_idx = r + SK - SQ (bottom-right). rope: dict with layout,
    lo, hi, base, scaling, sections, rerope_window, rerope_leak; positions [B, SK, A] int or
    None (then q_idx / kv_idx on every axis). mask(ix) -> bool array and score(s, ix) ->
    float array take ix, a dict of broadcastable index arrays shaped [B, H, SQ, SK]
    (q_idx, kv_idx, head, batch, seq_q, seq_k) plus the declared inputs."""
    q = np.asarray(q, np.float64)
    k = np.asarray(k, np.float64)
    B, SQ, HQ, D = q.shape
    SK = k.shape[1]
    if v_in_k:
        v = k[..., :d_v]
    v = np.asarray(v, np.float64)
    group = HQ // heads_kv
    kv_of_head = np.arange(HQ) // group
    kh, vh = k[:, :, kv_of_head, :], v[:, :, kv_of_head, :]        # expand to query heads
    q_idx = np.arange(SQ) + SK - SQ
    kv_idx = np.arange(SK)

    scale_total = scale
    if rope is None:
        s = np.einsum("bqhd,bkhd->bhqk", q, kh)
    else:
        inv_freq, _ = rope_inv_freq(rope["hi"] - rope["lo"], rope.get("base", 10000.0), rope.get("scaling"), SK)
        d0, d1 = rope_pairs(rope["layout"], rope["lo"], rope["hi"])
        axes = pair_axes(len(inv_freq), rope.get("sections"))
        n_axes = max(1, len(rope.get("sections") or []))
        if positions is None:
            kpos = np.broadcast_to(kv_idx[None, :, None], (B, SK, n_axes))
            qpos = np.broadcast_to(q_idx[None, :, None], (B, SQ, n_axes))
        else:
            kpos = np.asarray(positions, np.int64)
            qpos = kpos[:, q_idx, :]
        window = rope.get("rerope_window", 0)
        if not window:
            s = np.einsum("bqhd,bkhd->bhqk", rotate(q, qpos, inv_freq, d0, d1, axes),
                          rotate(kh, kpos, inv_freq, d0, d1, axes))
        else:
            rotary = np.zeros(D, bool)
            rotary[d0] = rotary[d1] = True
            s = np.einsum("bqhd,bkhd->bhqk", q[..., ~rotary], kh[..., ~rotary])
            dist = (qpos[:, :, None, :] - kpos[:, None, :, :]).astype(np.float64)   # [B, SQ, SK, A]
            leak = rope.get("rerope_leak", 0)
            if leak:
                rel = np.where(dist <= window, dist, window + (dist - window) / leak)
            else:
                rel = np.minimum(dist, window)
            for j in range(len(inv_freq)):
                a0 = np.einsum("bqh,bkh->bhqk", q[..., d0[j]], kh[..., d0[j]]) + \
                    np.einsum("bqh,bkh->bhqk", q[..., d1[j]], kh[..., d1[j]])
                b0 = np.einsum("bqh,bkh->bhqk", q[..., d0[j]], kh[..., d1[j]]) - \
                    np.einsum("bqh,bkh->bhqk", q[..., d1[j]], kh[..., d0[j]])
                ang = (rel[..., axes[j]] * inv_freq[j])[:, None, :, :]
                s = s + np.cos(ang) * a0 + np.sin(ang) * b0
    s = s * scale_total

    ix = dict(inputs or {})
    ix.update(q_idx=q_idx[None, None, :, None], kv_idx=kv_idx[None, None, None, :],
              head=np.arange(HQ)[None, :, None, None], batch=np.arange(B)[:, None, None, None],
              seq_q=SQ, seq_k=SK, heads_q=HQ)
    if score is not None:
        s = np.broadcast_to(score(s, ix), s.shape).astype(np.float64)
    vis = np.ones(s.shape, bool) if mask is None else np.broadcast_to(mask(ix), s.shape)
    s = np.where(vis, s, -np.inf)
    m = s.max(axis=-1, keepdims=True)
    empty = ~np.isfinite(m)                                  # nothing visible (or all -inf)
    p = np.where(vis & ~empty, np.exp(s - np.where(empty, 0.0, m)), 0.0)
    l = p.sum(axis=-1)                                       # [B, H, SQ]
    o = np.einsum("bhqk,bkhd->bqhd", p, vh)
    with np.errstate(divide="ignore", invalid="ignore"):
        o = np.where((l > 0).transpose(0, 2, 1)[..., None], o / l.transpose(0, 2, 1)[..., None], 0.0)
        lse = np.where(l > 0, m[..., 0] + np.log(np.where(l > 0, l, 1.0)), -np.inf)
    return o, lse.transpose(0, 2, 1)


# ----------------------------------------------------------------------------- recurrences


def recurrence(q, k, v, *, heads, groups, decay=None, feature=None, normalize=False, v_scale=None, skip=None,
               state_in=None):
    """o [B, T, H, DV], state_out [B, H, DK, DV] in float64, by the quadratic form.

    q, k [B, T, G, DK]; v [B, T, H, DV]; head h reads group h // (H/G).
    decay: None (Λ = 1) or a 5-d array [B|1, T|1, H|1, DK|1, DV|1] (Λ_t; size-1 axes are
    where it does not vary). feature: elementwise φ or None. v_scale: [B, T, H] (s_t) or
    None. skip: broadcastable to [H, DV] or None. state_in: [B, H, DK, DV] or None. With
    normalize, z starts at 0 (the state carries S only)."""
    q = np.asarray(q, np.float64)
    k = np.asarray(k, np.float64)
    v = np.asarray(v, np.float64)
    B, T, G, DK = q.shape
    DV = v.shape[-1]
    grp = np.arange(heads) // (heads // groups)
    fq = feature(q[:, :, grp, :]) if feature else q[:, :, grp, :]     # [B, T, H, DK]
    fk = feature(k[:, :, grp, :]) if feature else k[:, :, grp, :]
    if decay is None:
        decay = np.ones((1, 1, 1, 1, 1))
    decay = np.asarray(decay, np.float64)
    assert decay.ndim == 5
    dk_, dv_ = decay.shape[3], decay.shape[4]
    lam = np.broadcast_to(decay, (B, T, heads, dk_, dv_))
    w = v * (np.asarray(v_scale, np.float64)[..., None] if v_scale is not None else 1.0)   # s_t v_t

    # D[t, i] = Π_{r=i+1..t} Λ_r for i <= t (0 above the diagonal), built row by row.
    Dm = np.zeros((B, T, T, heads, dk_, dv_))
    for t in range(T):
        Dm[:, t, t] = 1.0
        for i in range(t - 1, -1, -1):
            Dm[:, t, i] = Dm[:, t, i + 1] * lam[:, i + 1]
    P = np.cumprod(lam, axis=1)                                        # Π_{r<=t} Λ_r

    if dv_ == 1:
        # Λ constant along v: weights A[t, i] = Σ_k φq_t[k] D_ti[k] φk_i[k] (per head)
        if dk_ == 1:
            A = np.einsum("bthk,bihk->btih", fq, fk) * Dm[..., 0, 0]
        else:
            A = np.einsum("bthk,btihk,bihk->btih", fq, Dm[..., 0], fk)
        o = np.einsum("btih,bihv->bthv", A, w)
        if normalize:
            o = o / A.sum(axis=2)[..., None]                           # φq_t · z_t
        state = np.einsum("bihk,bihv->bhkv", Dm[:, T - 1, :, :, :, 0] * fk, w) if T else 0.0
    else:
        assert not normalize, "normalize needs a decay constant along v"
        o = np.einsum("bthk,btihkv,bihk,bihv->bthv", fq, Dm, fk, w)
        state = np.einsum("bihkv,bihk,bihv->bhkv", Dm[:, T - 1], fk, w) if T else 0.0
    if state_in is not None:
        S0 = np.asarray(state_in, np.float64)
        for t in range(T):
            carried = np.einsum("bhk,bhkv->bhv", fq[:, t], P[:, t] * S0)
            o[:, t] += carried / (A.sum(axis=2)[:, t, :, None] if normalize else 1.0)
        state = state + (P[:, T - 1] * S0 if T else S0)
    state = np.broadcast_to(state, (B, heads, DK, DV))
    if skip is not None:
        o = o + np.broadcast_to(skip, (heads, DV)) * v
    return o, state


# ----------------------------------------------------------------------------- small math helpers


def softplus(x):
    return np.logaddexp(0.0, x)


def elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))
