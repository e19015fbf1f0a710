#!/usr/bin/env bash
# Golden IR test: `attnc ir SPEC` must print exactly tests/golden/NAME.ir.
# Usage: run_golden.sh ATTNC SPEC GOLDEN      (ATTNC_UPDATE_GOLDEN=1 rewrites the file)
set -u
attnc=$1 spec=$2 golden=$3
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$attnc" ir "$spec" >"$out"
status=$?
if [ $status -ne 0 ]; then echo "attnc ir $spec exited $status"; exit 1; fi
if [ "${ATTNC_UPDATE_GOLDEN:-0}" = 1 ]; then cp "$out" "$golden"; echo "updated $golden"; exit 0; fi
if ! diff -u "$golden" "$out"; then
  echo "IR of $spec differs from $golden (review, then ATTNC_UPDATE_GOLDEN=1 to accept)"
  exit 1
fi
