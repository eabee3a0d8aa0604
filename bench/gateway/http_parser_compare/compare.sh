#!/usr/bin/env bash
# Would a faster HTTP/1.1 parser close the gap to nginx? Parses wrk's benchmark request 100,000
# times with Beast's basic_parser (the gateway's) and with llhttp 8.1 (Node.js's parser; Debian
# 12's node-llhttp package ships its C sources), both built -O3 -march=haswell, and prints
# user-space instructions per request (valgrind --tool=callgrind) and wall time. A throwaway
# comparison: llhttp is not a dependency of the project.
# Usage: bench/gateway/http_parser_compare/compare.sh   (needs g++, valgrind, apt-get download)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
(cd "$T" && apt-get download node-llhttp >/dev/null 2>&1) || {
  echo "compare.sh: cannot download node-llhttp (apt-get download)" >&2
  exit 1
}
dpkg -x "$T"/node-llhttp_*.deb "$T/x"
src="$T/x/usr/share/llhttp"
inc="$T/x/usr/share/include/llhttp"
for f in api http llhttp; do gcc -O3 -march=haswell -c "$src/$f.c" -I"$inc" -o "$T/$f.o"; done
g++ -std=c++20 -O3 -march=haswell "$here/compare.cc" "$T"/api.o "$T"/http.o "$T"/llhttp.o \
  -I"$inc" -o "$T/compare"
for p in beast llhttp; do
  "$T/compare" "$p"
  n=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$T/compare" "$p" 2>&1 |
    awk '/Collected/{print $4}')
  echo "$p: $((n / 100000)) instructions per request (callgrind, the loop included)"
done
