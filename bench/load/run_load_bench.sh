#!/usr/bin/env bash
# Capacity of the open-loop generator: `tokenpool load` pinned to one CPU (taskset) sends
# streaming chat requests at fixed Poisson rates to `tokenpool mock --instant` pinned to another,
# and each run's JSON summary gives the achieved send rate, the late (> --late-ms behind) and
# dropped sends, the send lag (write start - due time), the generator's own CPU (getrusage) and
# its time runnable but waiting for a CPU (/proc/self/schedstat), and TTFT. Goal: 5,000 req/s on
# one core with no drops, few late sends, and a TTFT that does not grow with the rate (a
# generator that fell behind would add its own queueing to every latency).
# Prompts are the conv trace's lengths capped at 128 tokens and outputs at 16, so that the mock,
# which tokenizes every prompt on its one core, keeps up; the generator's cost per request is
# the HTTP exchange and the stream scan, not the prompt size.
# Usage: bench/load/run_load_bench.sh [build-dir] [seconds] [rates...]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
seconds=${2:-20}
shift $(( $# > 2 ? 2 : $# ))
rates=${*:-500 5000 10000}
bin="$build/src/cli/tokenpool"
trace=${TRACE:-../shared/traces/AzureLLMInferenceTrace_conv.csv}
[ -x "$bin" ] || { echo "run_load_bench: $bin not found; build first (scripts/build.sh)" >&2; exit 1; }
command -v taskset >/dev/null || { echo "run_load_bench: taskset not found" >&2; exit 1; }
ncpu=$(nproc)
load_cpu=${LOAD_CPU:-0}
mock_cpu=${MOCK_CPU:-$(( ncpu > 1 ? 1 : 0 ))}

tmp=$(mktemp -d)
out="$tmp/mock.out"
taskset -c "$mock_cpu" "$bin" mock --port 0 --instant >"$out" 2>&1 &
mock_pid=$!
trap 'kill "$mock_pid" 2>/dev/null || true; wait "$mock_pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 1 100); do
  grep -q "listening on" "$out" 2>/dev/null && break
  sleep 0.05
done
port=$(grep -o 'listening on [0-9.]*:[0-9]*' "$out" | sed 's/.*://')
[ -n "$port" ] || { echo "run_load_bench: mock did not start:" >&2; cat "$out" >&2; exit 1; }

for rate in $rates; do
  taskset -c "$load_cpu" "$bin" load --target "127.0.0.1:$port" --trace "$trace" \
    --process poisson --rate "$rate" --duration "$seconds" --max-prompt-tokens 128 \
    --max-output-tokens 16 --quiet --json "$tmp/load_$rate.json"
done

python3 - "$tmp" $rates <<'PY'
import json, sys
tmp, rates = sys.argv[1], sys.argv[2:]
print(f"{'target':>7} {'planned':>8} {'sent/s':>8} {'late':>6} {'dropped':>7} {'lag p50':>8} "
      f"{'lag p99':>8} {'lag max':>8} {'gen CPU':>8} {'CPU wait':>8} {'TTFT p50':>9} {'TTFT p99':>9}")
for r in rates:
    d = json.load(open(f"{tmp}/load_{r}.json"))
    a = d["groups"][-1]
    print(f"{r:>7} {d['planned']:>8} {d['achieved_rate_rps']:>8.0f} {d['late']:>6} {d['dropped']:>7} "
          f"{d['send_lag_ms']['p50']:>6.3f}ms {d['send_lag_ms']['p99']:>6.3f}ms "
          f"{d['send_lag_ms']['max']:>6.1f}ms {100 * d['cpu_share_of_one_core']:>7.0f}% "
          f"{d['cpu_wait_s']:>7.2f}s {a['ttft_ms']['p50']:>7.3f}ms {a['ttft_ms']['p99']:>7.3f}ms")
PY
