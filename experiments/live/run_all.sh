#!/usr/bin/env bash
# Every live experiment, one after the other (not in parallel: they share the machine's cores
# and their timings would disturb each other): E2 (~13 min) then E3 (~6 min).
# Usage: experiments/live/run_all.sh [path/to/tokenpool]
set -euo pipefail
here=$(dirname "$0")
"$here/run_e2.sh" "$@"
"$here/run_e3.sh" "$@"
