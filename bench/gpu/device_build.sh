#!/usr/bin/env bash
# Builds attnc on the GPU machine (no flex/bison/LLVM there): the parser sources come
# pre-generated in .devgen/ (made on the dev machine by tools/pregen.sh). Prints what the
# machine has, then leaves the build in build-gpu/.
set -u
echo "== machine"; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
nvcc --version 2>&1 | tail -1
for t in flex bison llvm-config ninja cmake compute-sanitizer ncu python3; do printf '%s: %s\n' "$t" "$(command -v $t || echo none)"; done
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B build-gpu "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DATTNC_LLVM=OFF \
      -DATTNC_PARSER_SOURCES="$PWD/.devgen" >build-gpu.log 2>&1 || { tail -30 build-gpu.log; exit 1; }
cmake --build build-gpu -j16 >>build-gpu.log 2>&1 || { tail -40 build-gpu.log; exit 1; }
echo "== built"
