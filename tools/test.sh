#!/usr/bin/env bash
# Builds and runs every test: the plain build, the same suite under ASan+UBSan, and a
# bounded libFuzzer run of the parser and checker. Exit status 0 only if all pass.
set -euo pipefail
cd "$(dirname "$0")/.."
ATTNC_SETUP_ONLY=1 bash tools/setup.sh
py="$(command -v python3)"
jobs="$(nproc)"

echo "== tests (build/)"
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== CPU backend and API tests against LLVM 19 (opaque pointers only; build-llvm19/)"
if ! command -v llvm-config-19 >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq llvm-19-dev >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq llvm-19-dev >/dev/null 2>&1; } || true
fi
if command -v llvm-config-19 >/dev/null; then
  cmake -S . -B build-llvm19 -DCMAKE_BUILD_TYPE=Release -DLLVM_CONFIG="$(command -v llvm-config-19)" \
    -DPython3_EXECUTABLE="$py" >/dev/null
  cmake --build build-llvm19 -j"$jobs" >/dev/null
  ctest --test-dir build-llvm19 --output-on-failure -j"$jobs" -R 'cpu|api|aot|cache'
else
  echo "skipped: llvm-19-dev could not be installed here, so only the LLVM that setup.sh found was tested"
fi

echo "== tests under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/); tests labelled slow (long interpreter runs) are left to the plain build above"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DATTNC_SANITIZE=ON -DPython3_EXECUTABLE="$py" >/dev/null
cmake --build build-asan -j"$jobs" >/dev/null
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE slow

echo "== fuzzing the parser and checker (build-fuzz/)"
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DATTNC_FUZZ=ON -DATTNC_LLVM=OFF \
  -DPython3_EXECUTABLE="$py" >/dev/null
cmake --build build-fuzz -j"$jobs" --target fuzz_check >/dev/null
corpus=$(mktemp -d)
cp examples/*.attn "$corpus"/
cp tests/diag/*.attn "$corpus"/ 2>/dev/null || true
log="$corpus.log"
set +e
./build-fuzz/tests/fuzz_check -max_total_time="${ATTNC_FUZZ_SECONDS:-60}" -max_len=4096 -timeout=10 \
  -print_final_stats=1 "$corpus" >"$log" 2>&1
rc=$?
set -e
grep -E 'stat::number_of_executed_units|Done [0-9]+ runs' "$log" || true
if [ "$rc" -ne 0 ]; then tail -n 60 "$log"; echo "fuzzer found a failure (exit $rc)"; exit 1; fi
rm -rf "$corpus" "$log"
echo "all test stages passed"
