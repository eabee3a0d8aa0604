#!/usr/bin/env bash
# Throughput of `tokenpool mock --instant`: non-streaming chat completions per second on one core
# with HTTP/1.1 keep-alive, measured with wrk. The mock is pinned to one CPU and wrk to another
# (taskset) so that the figure is the mock's single-core rate. Prints the rate beside the goal of
# 30,000 req/s and the ratio measured / goal (>= 1.00 meets it). It also reads the mock's
# scheduler statistics (/proc/PID/schedstat: nanoseconds on a CPU and runnable but waiting)
# during the run: on a shared machine the mock's core is not all its own, and rate / CPU share
# is the mock's capacity per core of CPU time, printed with its own ratio.
# Usage: bench/mock/run_mock_bench.sh [build-dir] [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
seconds=${2:-10}
connections=${3:-64}
goal=30000
bin="$build/src/cli/tokenpool"
[ -x "$bin" ] || { echo "run_mock_bench: $bin not found; build first (scripts/build.sh)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "run_mock_bench: wrk not found (scripts/install-deps.sh)" >&2; exit 1; }
command -v taskset >/dev/null || { echo "run_mock_bench: taskset not found" >&2; exit 1; }
ncpu=$(nproc)
mock_cpu=0
wrk_cpu=$(( ncpu > 1 ? 1 : 0 ))

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
[ -n "$port" ] || { echo "run_mock_bench: mock did not start:" >&2; cat "$out" >&2; exit 1; }
model=$(grep -o 'model=[^ ]*' "$out" | sed 's/model=//')

# A short chat request (about 30 prompt tokens, 16 output tokens): the per-request overhead is
# what is measured, not the tokenizer on long prompts.
cat >"$tmp/post.lua" <<LUA
wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"$model","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Write a haiku about token pools and GPUs, please."}],"max_tokens":16}'
LUA
# Warm-up, then the measured run.
taskset -c "$wrk_cpu" wrk -t1 -c"$connections" -d1s -s "$tmp/post.lua" "http://127.0.0.1:$port" >/dev/null
sched() { cat "/proc/$mock_pid/schedstat"; }
s0=$(sched)
taskset -c "$wrk_cpu" wrk -t1 -c"$connections" -d"${seconds}s" -s "$tmp/post.lua" \
  "http://127.0.0.1:$port" | tee "$tmp/wrk.out"
s1=$(sched)
rate=$(awk '/Requests\/sec/ {print $2}' "$tmp/wrk.out")
errors=$(grep -E "Non-2xx|Socket errors" "$tmp/wrk.out" || true)
python3 - "$rate" "$goal" "$connections" "$s0" "$s1" "$seconds" <<'PY'
import sys
rate, goal, conns = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
a, b, secs = sys.argv[4].split(), sys.argv[5].split(), float(sys.argv[6])
share = (int(b[0]) - int(a[0])) / 1e9 / secs
waiting = (int(b[1]) - int(a[1])) / 1e9 / secs
print(f"mock --instant, non-streaming chat, 1 core, keep-alive, {conns} connections: "
      f"{rate:,.0f} req/s; goal {goal:,.0f} req/s; ratio {rate / goal:.2f}")
cap = rate / share if share > 0 else float("nan")
print(f"mock on a CPU {share:.2f} of the run, runnable but waiting for one {waiting:.2f}; "
      f"capacity per core (rate / CPU share): {cap:,.0f} req/s; ratio {cap / goal:.2f}")
PY
[ -z "$errors" ] || { echo "run_mock_bench: errors: $errors" >&2; exit 1; }
