#!/usr/bin/env bash
# Writes the flex/bison outputs to .devgen/ (git-ignored) so a machine without flex and
# bison (the GPU machines) can build: cmake -DATTNC_PARSER_SOURCES=$PWD/.devgen ...
set -eu
cd "$(dirname "$0")/.."
mkdir -p .devgen
bison -Wall -Wno-yacc --defines=.devgen/parser.h -o .devgen/parser.c dsl/parser.y
flex --header-file=.devgen/lexer.h -o .devgen/lexer.c dsl/lexer.l
# the commit, marked "+dirty" when the tree has uncommitted changes to tracked files
{ git rev-parse --short HEAD && git diff --quiet HEAD -- || echo "+dirty"; } 2>/dev/null | paste -sd "" - >.devgen/COMMIT || true
echo "parser sources in .devgen/"
