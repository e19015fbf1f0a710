#!/usr/bin/env bash
# Diagnostic test: `attnc check tests/diag/NAME.attn` must exit 1 and print exactly
# tests/diag/NAME.expected on stderr. Run from the source root (paths are printed as given).
# Usage: run_one.sh ATTNC NAME        (ATTNC_UPDATE_DIAG=1 rewrites the .expected file)
set -u
attnc=$1 name=$2
spec=tests/diag/$name.attn expected=tests/diag/$name.expected
err=$(mktemp)
trap 'rm -f "$err"' EXIT
"$attnc" check "$spec" >/dev/null 2>"$err"
status=$?
if [ "${ATTNC_UPDATE_DIAG:-0}" = 1 ]; then cp "$err" "$expected"; echo "updated $expected"; fi
if [ $status -ne 1 ]; then
  echo "attnc check $spec exited $status; expected 1 (errors found)"
  cat "$err"
  exit 1
fi
if [ ! -f "$expected" ]; then echo "missing $expected"; exit 1; fi
if ! diff -u "$expected" "$err"; then
  echo "diagnostics of $spec differ from $expected (review, then ATTNC_UPDATE_DIAG=1 to accept)"
  exit 1
fi
