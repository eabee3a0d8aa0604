#!/usr/bin/env bash
# The core, the engine model and the simulator must not read the wall clock, sleep, spawn
# threads or do I/O: time comes in through a Clock. This grep keeps it that way.
set -euo pipefail
cd "$(dirname "$0")/.."
dirs=()
for d in src/core src/engine src/sim include/tokenpool; do [ -d "$d" ] && dirs+=("$d"); done
pattern='steady_clock|system_clock|high_resolution_clock|std::this_thread|sleep_for|sleep_until|usleep|[^_]time\(|gettimeofday|clock_gettime|std::thread|<fstream>|<iostream>|fopen'
hits=$(grep -RnE "$pattern" "${dirs[@]}" --include='*.h' --include='*.cc' \
  | grep -v 'include/tokenpool/real_clock.h' || true)
if [ -n "$hits" ]; then
  echo "check-purity: wall clock, threads or I/O found in the pure core:" >&2
  echo "$hits" >&2
  exit 1
fi
