#!/usr/bin/env bash
# Everything attnc measures on a GPU machine, in one command (few, full runs: device time
# is scarce). Stages, all by default: tests sanitize bench recur compile; also: sweep.
#   bash bench/gpu/run.sh [stage...]      results and logs in $OUT (default ./gpu-out)
# The machine needs nvcc's toolkit (NVRTC), CMake and python3 with PyTorch; flex/bison
# are not needed when .devgen/ holds the generated parser (tools/pregen.sh makes it).
set -u
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
stages=${*:-tests sanitize bench recur compile}
has() { [[ " $stages " == *" $1 "* ]]; }
export ATTNC_CACHE_DIR=$PWD/build-gpu/kernel-cache
B=build-gpu
bash bench/gpu/device_build.sh || exit 1
# the GPU machine's copy of the tree may carry a stale .git: tools/pregen.sh records the real commit
commit=$(cat .devgen/COMMIT 2>/dev/null || git rev-parse --short HEAD 2>/dev/null || echo unknown)
status=0

if has tests; then
    echo "== gpu tests (ctest -L gpu)"
    (cd $B && ctest -L gpu --output-on-failure --timeout 500) >"$OUT/gpu-tests.log" 2>&1 || status=1
    grep -E "tests passed|tests failed|checks|Failed|SKIP" "$OUT/gpu-tests.log" | tail -8
fi

if has sanitize; then
    echo "== compute-sanitizer (memcheck, racecheck) on a prefill and a split-KV decode"
    for tool in memcheck racecheck; do
        for run in "llama3_8b --batch 1 --seq 300" "llama3_8b_decode --batch 2 --seq-q 1 --seq-k 3000"; do
            set -- $run
            k=$1; shift
            compute-sanitizer --tool $tool --error-exitcode 9 $B/attnc run examples/llama3_8b.attn --kernel $k \
                --target cuda "$@" --check >"$OUT/sanitize-$tool-$k.log" 2>&1
            rc=$?
            printf '%-10s %-18s rc %d  %s\n' $tool $k $rc "$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|max' "$OUT/sanitize-$tool-$k.log" | tr '\n' ' ' | cut -c1-150)"
            [ $rc -eq 0 ] || status=1
        done
    done
fi

if has bench; then
    echo "== attnc vs torch SDPA / FlexAttention"
    # two runs, each bounded, so a slow FlexAttention compile cannot take the other's results
    for part in "copy,llama3-prefill" "copy,gemma2-local,llama3-decode,mla-decode"; do
        name=${part#copy,}; name=${name%%,*}
        PYTHONUNBUFFERED=1 timeout ${BENCH_TIMEOUT:-280} python3 bench/gpu/gpu_bench.py --lib $B/libattnc.so \
            --commit "$commit" --bench "$part" --out "$OUT/gpu-bench-$name.jsonl" >"$OUT/gpu-bench-$name.log" 2>&1 || status=1
        if grep -q "^bench  *shape" "$OUT/gpu-bench-$name.log"; then sed -n '/^bench  *shape/,$p' "$OUT/gpu-bench-$name.log" | cut -c1-160
        else tail -25 "$OUT/gpu-bench-$name.log"; fi
    done
fi

if has sweep; then
    echo "== plan sweep (tile/split overrides, attnc only)"
    PYTHONUNBUFFERED=1 timeout ${SWEEP_TIMEOUT:-300} python3 bench/gpu/plan_sweep.py --lib $B/libattnc.so \
        --out "$OUT/plan-sweep.jsonl" >"$OUT/plan-sweep.log" 2>&1 || status=1
    python3 - "$OUT/plan-sweep.jsonl" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    v = r.get("gbps") or r.get("tflops")
    print("%-28s %-18s %8s %9s %s" % (r["kernel"], r["plan"], r.get("ms", "-"), v if v else "-",
          r.get("skipped", "")[:80] + (" CHECK FAILED" if r.get("check_failed") else "")))
PY
fi

if has recur; then
    echo "== recurrences (cuda_recur_bench)"
    $B/cuda_recur_bench >"$OUT/cuda-recur.jsonl" 2>"$OUT/cuda-recur.err" || status=1
    tail -12 "$OUT/cuda-recur.jsonl" | cut -c1-220
fi

if has compile; then
    echo "== compile latency (cuda_compile_bench)"
    rm -rf "$ATTNC_CACHE_DIR"
    $B/cuda_compile_bench >"$OUT/cuda-compile.jsonl" 2>"$OUT/cuda-compile.err" || status=1
    tail -6 "$OUT/cuda-compile.jsonl" | cut -c1-200
fi
exit $status
