#!/usr/bin/env bash
# Installs what attnc needs on a Debian machine (as root), builds it, and runs the main job:
# check every example, run Llama-3-8B through the reference interpreter and compare it with
# an independent numpy implementation, then run it on the CPU backend where built.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v cmake >/dev/null || need+=(cmake)
command -v flex >/dev/null || need+=(flex)
command -v bison >/dev/null || need+=(bison)
command -v cc >/dev/null || need+=(build-essential)
command -v clang >/dev/null || need+=(clang)
[ -e /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a ] || \
  ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 || need+=(libclang-rt-dev)
command -v llvm-config >/dev/null && [ -d "$(llvm-config --includedir)/llvm-c" ] || need+=(llvm-dev)
command -v python3 >/dev/null || need+=(python3 python3-pip)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
# libLLVM's CMake-less link needs these on some images
for p in libzstd-dev zlib1g-dev libtinfo-dev libedit-dev libffi-dev libxml2-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || { export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq "$p" >/dev/null || true; }
done
if ! python3 -c 'import numpy' 2>/dev/null; then
  echo "== installing numpy"
  python3 -m pip install -q numpy 2>/dev/null || python3 -m pip install -q --break-system-packages numpy
fi

echo "== building (build/)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE="$(command -v python3)" >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

if [ "${ATTNC_SETUP_ONLY:-0}" = 1 ]; then exit 0; fi
bash tools/demo.sh build
