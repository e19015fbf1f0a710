#!/usr/bin/env bash
# Writes the flex/bison outputs to .devgen/ (git-ignored) so a machine without flex and
# bison (the GPU machines) can build: cmake -DATTNC_PARSER_SOURCES=$PWD/.devgen ...
set -eu
cd "$(dirname "$0")/.."
mkdir -p .devgen
bison -Wall -Wno-yacc --defines=.devgen/parser.h -o .devgen/parser.c dsl/parser.y
flex --header-file=.devgen/lexer.h -o .devgen/lexer.c dsl/lexer.l
git rev-parse --short HEAD >.devgen/COMMIT 2>/dev/null || true
echo "parser sources in .devgen/"
