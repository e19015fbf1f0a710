#!/usr/bin/env python3
"""Behaviour of `attnc run`: random inputs and --check, lengths for decode kernels and
recurrences, output files and dtypes, determinism of --seed, and the messages for
every kind of bad input (missing, misshapen, wrong dtype, unknown or misspelt names,
Fortran-order files, unknown targets, bad options).

usage: check_run_cli.py --attnc PATH/attnc --root SOURCE_DIR
"""
import argparse
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError:
    sys.stderr.write("check_run_cli.py: numpy is required (pip install numpy); this is a failure, not a skip\n")
    sys.exit(1)

failures = []
checks = 0


def expect(cond, what, detail=""):
    global checks
    checks += 1
    if not cond:
        failures.append(what)
        sys.stderr.write("FAIL: %s\n%s\n" % (what, detail))


def run(attnc, *args, cwd=None):
    p = subprocess.run([attnc, "run"] + [str(a) for a in args], cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True)
    return p.returncode, p.stdout, p.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--attnc", required=True)
    ap.add_argument("--root", required=True)
    a = ap.parse_args()
    ex = lambda name: os.path.join(a.root, "examples", name)
    attnc = a.attnc
    with tempfile.TemporaryDirectory(prefix="attnc_cli_") as d:
        p = lambda name: os.path.join(d, name)

        # random inputs, self-check, output files in f64 by default for ref
        rc, out, err = run(attnc, ex("phi2.attn"), "--batch", 2, "--seq", 17, "--check", "--out", p("o.npy"),
                           "--out-lse", p("lse.npy"))
        expect(rc == 0 and "check: PASS" in out and "batch 2, seq_q 17, seq_k 17" in out, "phi2 random run", out + err)
        if rc == 0:
            o, lse = np.load(p("o.npy")), np.load(p("lse.npy"))
            expect(o.shape == (2, 17, 32, 80) and o.dtype == np.float64, "o.npy shape/dtype", str(o.shape))
            expect(lse.shape == (2, 17, 32) and np.isfinite(lse).all(), "lse.npy shape and finite")
            expect(np.abs(o).max() > 0, "o not all zero")

        # --out-dtype f32; seq_q and seq_k separately (bottom-right alignment, masked rows)
        rc, out, err = run(attnc, ex("phi2.attn"), "--seq-q", 6, "--seq-k", 3, "--out", p("o32.npy"), "--out-lse",
                           p("lse32.npy"), "--out-dtype", "f32", "--check")
        expect(rc == 0 and "3 fully masked rows" not in out, "phi2 seq_q > seq_k run", out + err)
        if rc == 0:
            o, lse = np.load(p("o32.npy")), np.load(p("lse32.npy"))
            expect(o.dtype == np.float32 and o.shape == (1, 6, 32, 80), "f32 output file")
            expect(np.isneginf(lse[0, :3]).all() and (o[0, :3] == 0).all() and np.isfinite(lse[0, 3:]).all(),
                   "rows before every key: zero output, lse -inf", str(lse[0, :, 0]))
            expect("96 fully masked rows" in out, "self-check counts masked rows (3 rows x 32 heads)", out)

        # decode kernels: --seq is the cache length, one query
        rc, out, err = run(attnc, ex("llama3_8b.attn"), "--kernel", "llama3_8b_decode", "--seq", 40, "--check")
        expect(rc == 0 and "seq_q 1, seq_k 40" in out, "decode lengths", out + err)

        # recurrences: state output, determinism of the seed
        rc, out, err = run(attnc, ex("retnet.attn"), "--seq", 9, "--out-state", p("st.npy"), "--check", "--seed", 7)
        expect(rc == 0 and "batch 1, seq 9" in out, "retnet run", out + err)
        if rc == 0:
            st = np.load(p("st.npy"))
            expect(st.shape == (1, 8, 64, 128) and st.dtype == np.float64, "state_out file", str(st.shape))
        rc2, out2, _ = run(attnc, ex("retnet.attn"), "--seq", 9, "--seed", 7)
        rc3, out3, _ = run(attnc, ex("retnet.attn"), "--seq", 9, "--seed", 8)
        line = lambda s: [l for l in s.splitlines() if "checksum" in l]
        expect(rc2 == 0 and line(out) == line(out2), "same seed, same result")
        expect(rc3 == 0 and line(out) != line(out3), "other seed, other result")
        rc, out, err = run(attnc, ex("retnet.attn"), "--seq-q", 3, "--seq-k", 5)
        expect(rc == 2 and "must agree" in err, "recurrence with seq_q != seq_k", err)
        rc, out, err = run(attnc, ex("retnet.attn"), "--out-lse", p("x.npy"))
        expect(rc == 2 and "no lse" in err, "--out-lse on a recurrence", err)
        rc, out, err = run(attnc, ex("phi2.attn"), "--out-state", p("x.npy"))
        expect(rc == 2 and "no state" in err, "--out-state on softmax", err)

        # kernel choice
        rc, out, err = run(attnc, ex("llama3_8b.attn"))
        expect(rc == 2 and "--kernel" in err and "llama3_8b_decode" in err, "several kernels need --kernel", err)
        rc, out, err = run(attnc, ex("llama3_8b.attn"), "--kernel", "llama3_8b_decod")
        expect(rc == 2 and "did you mean 'llama3_8b_decode'" in err, "kernel did-you-mean", err)

        # inputs from files: shapes come from q and k
        rng = np.random.default_rng(1)
        bf = lambda shape: (rng.standard_normal(shape).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
        np.save(p("q.npy"), bf((2, 3, 32, 128)))
        np.save(p("k.npy"), bf((2, 11, 8, 128)))
        np.save(p("v.npy"), bf((2, 11, 8, 128)))
        llama = ex("llama3_8b.attn")
        rc, out, err = run(attnc, llama, "--kernel", "llama3_8b", "--in", "q=" + p("q.npy"), "--in", "k=" + p("k.npy"),
                           "--in", "v=" + p("v.npy"), "--out", p("o2.npy"), "--check")
        expect(rc == 0 and "batch 2, seq_q 3, seq_k 11" in out, "lengths from the files", out + err)
        rc, out, err = run(attnc, llama, "--kernel", "llama3_8b", "--in", "q=" + p("q.npy"))
        expect(rc == 2 and "missing --in k=FILE.npy: expected bf16 [2, seq_k, 8, 128] (batch, seq_k, heads_kv, d_qk)" in err
               and "missing --in v=FILE.npy" in err, "missing inputs named with expected shapes", err)
        np.save(p("k_bad.npy"), bf((2, 11, 8, 64)))
        rc, out, err = run(attnc, llama, "--kernel", "llama3_8b", "--in", "q=" + p("q.npy"), "--in", "k=" + p("k_bad.npy"),
                           "--in", "v=" + p("v.npy"))
        expect(rc == 2 and "tensor 'k': expected shape [2, 11, 8, 128] (batch, seq_k, heads_kv, d_qk), got [2, 11, 8, 64]"
               in err, "wrong shape message", err)
        np.save(p("q32.npy"), rng.standard_normal((2, 3, 32, 128)).astype(np.float32))
        rc, out, err = run(attnc, llama, "--kernel", "llama3_8b", "--in", "q=" + p("q32.npy"), "--in", "k=" + p("k.npy"),
                           "--in", "v=" + p("v.npy"))
        expect(rc == 2 and "tensor 'q': expected bf16 (uint16 bit patterns), got f32 (float32)" in err,
               "wrong dtype message", err)
        rc, out, err = run(attnc, llama, "--kernel", "llama3_8b", "--in", "q=" + p("q.npy"), "--in", "k=" + p("k.npy"),
                           "--in", "vv=" + p("v.npy"))
        expect(rc == 2 and "unknown tensor 'vv'; did you mean 'v'?" in err and "missing" not in err, "unknown input name", err)
        np.save(p("qf.npy"), np.asfortranarray(bf((2, 3, 32, 128))))
        rc, out, err = run(attnc, llama, "--kernel", "llama3_8b", "--in", "q=" + p("qf.npy"), "--in", "k=" + p("k.npy"),
                           "--in", "v=" + p("v.npy"))
        expect(rc == 2 and "Fortran-order" in err, "Fortran-order input", err)
        rc, out, err = run(attnc, llama, "--kernel", "llama3_8b", "--in", "o=" + p("q.npy"), "--in", "q=" + p("q.npy"),
                           "--in", "k=" + p("k.npy"), "--in", "v=" + p("v.npy"))
        expect(rc == 2 and "'o' is an output" in err, "an output given as input", err)

        # declared inputs with a document mask: reading from files, i32 ids
        docs = ex("doc_mask.attn")
        f32 = lambda shape: rng.standard_normal(shape).astype(np.float32)
        np.save(p("dq.npy"), f32((1, 7, 16, 64)))
        np.save(p("dk.npy"), f32((1, 7, 4, 64)))
        np.save(p("dv.npy"), f32((1, 7, 4, 64)))
        np.save(p("doc.npy"), np.array([[0, 0, 1, 1, 1, 2, 2]], np.int32))
        rc, out, err = run(attnc, docs, "--kernel", "packed_docs", "--in", "q=" + p("dq.npy"), "--in", "k=" + p("dk.npy"),
                           "--in", "v=" + p("dv.npy"), "--in", "doc=" + p("doc.npy"), "--check")
        expect(rc == 0 and "check: PASS" in out, "document mask from files", out + err)
        np.save(p("doc64.npy"), np.array([[0, 0, 1, 1, 1, 2, 2]], np.int64))
        rc, out, err = run(attnc, docs, "--kernel", "packed_docs", "--in", "q=" + p("dq.npy"), "--in", "k=" + p("dk.npy"),
                           "--in", "v=" + p("dv.npy"), "--in", "doc=" + p("doc64.npy"))
        expect(rc == 2 and "unsupported dtype '<i8'" in err, "int64 ids rejected with the fix", err)

        # bad options and targets, a spec with errors
        rc, out, err = run(attnc, ex("phi2.attn"), "--target", "tpu")
        expect(rc != 0 and "unknown target 'tpu'" in err, "unknown target", err)
        rc, out, err = run(attnc, ex("phi2.attn"), "--seq", "-3")
        expect(rc == 2 and "--seq" in err, "negative length", err)
        rc, out, err = run(attnc, ex("phi2.attn"), "--out-dtype", "f16")
        expect(rc == 2 and "--out-dtype" in err, "bad --out-dtype", err)
        rc, out, err = run(attnc, ex("phi2.attn"), "--in", "q")
        expect(rc == 2 and "NAME=FILE.npy" in err, "malformed --in", err)
        rc, out, err = run(attnc)
        expect(rc == 2 and "usage" in err, "no spec file", err)
        with open(p("bad.attn"), "w") as f:
            f.write("kernel bad {\n    heads q = 32, kv = 7\n    dims 64\n}\n")
        rc, out, err = run(attnc, p("bad.attn"))
        expect(rc == 1 and "bad.attn:2:" in err, "spec errors give exit 1 with diagnostics", err)
    print("check_run_cli: %d checks, %d failed" % (checks, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
