#!/usr/bin/env bash
# The main job: check every example spec, run Llama-3-8B on the reference interpreter and
# compare it with an independent numpy implementation, then run it on the CPU backend
# (when built) against the interpreter and show its speed.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
attnc="$(cd "$build" && pwd)/attnc"

echo "== attnc check examples/*.attn"
"$attnc" check examples/*.attn

echo
echo "== reference interpreter (float64) on Llama-3-8B, batch 1, seq 128, self-checks"
"$attnc" run examples/llama3_8b.attn --kernel llama3_8b --target ref --batch 1 --seq 128 --seed 1 --check

echo
echo "== interpreter vs an independent numpy implementation (tests/ref/reference.py)"
for spec in llama3_8b:llama3_8b deepseek_v2:deepseek_v2_decode qwen2_vl_7b:qwen2_vl_7b mamba2_2_7b:mamba2_2_7b; do
  python3 tests/ref/check_example.py --attnc "$attnc" --file "examples/${spec%%:*}.attn" --kernel "${spec##*:}"
done

if "$attnc" run examples/llama3_8b.attn --kernel llama3_8b --target cpu --batch 1 --seq 16 >/dev/null 2>&1; then
  echo
  echo "== CPU backend (LLVM JIT) on Llama-3-8B, batch 1, seq 1024, checked against the interpreter"
  "$attnc" run examples/llama3_8b.attn --kernel llama3_8b --target cpu --batch 1 --seq 1024 --seed 1 --check
fi
