#!/usr/bin/env bash
# Configures and builds tokenpool (Release) into ./build with 2 parallel jobs, which stays well
# under 24 GB of memory. Usage: scripts/build.sh [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
if [ ! -f build/CMakeCache.txt ]; then
  cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
fi
cmake --build build --parallel "${TOKENPOOL_JOBS:-2}"
