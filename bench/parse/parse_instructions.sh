#!/usr/bin/env bash
# Instructions per request parse (callgrind), the figure that timing on a shared VM cannot
# resolve: the difference between N and 3N parses of the chat body, divided by 2N, so that
# start-up and the body's construction cancel.
#   bash bench/parse/parse_instructions.sh [BUILD_DIR] [N] [BYTES]
# Compare two builds by running it on each (or on a saved copy of the bench binary:
# BENCH=path/to/request_parser_bench).
set -euo pipefail
build=${1:-build}
n=${2:-1000}
bytes=${3:-1024}
bench=${BENCH:-$build/bench/request_parser_bench}
command -v valgrind >/dev/null || { echo "parse_instructions.sh: needs valgrind (apt-get install valgrind)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
count() {
  valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$1" "$bench" --parse-loop "$1" "$bytes" 2>&1 |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
one=$(count "$n")
three=$(count $((3 * n)))
echo "$bench: $(( (three - one) / (2 * n) )) instructions per parse of a ${bytes}-byte chat body"
