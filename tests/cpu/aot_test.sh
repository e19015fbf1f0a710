#!/bin/sh
# Ahead-of-time test: build objects + headers with cpu_build (aot_gen), compile
# aot_main.c against them with the system C compiler and no attnc or LLVM library,
# run it. Usage: aot_test.sh AOT_GEN CC SOURCE_DIR WORK_DIR
set -e
gen=$1; cc=$2; src=$3; work=$4
rm -rf "$work"
mkdir -p "$work"
"$gen" "$src/tests/cpu/aot_kernels.attn" "$work"
"$cc" -std=c11 -O2 -Wall -Wextra -Werror -I"$work" "$src/tests/cpu/aot_main.c" "$work"/*.o -lm -lpthread -o "$work/aot_main"
"$work/aot_main"
