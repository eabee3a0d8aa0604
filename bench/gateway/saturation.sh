#!/usr/bin/env bash
# Where the maximum-throughput bench's ceiling is: nginx and tokenpool (and optionally a second
# tokenpool binary, B) in front of one `tokenpool mock --instant`, placed as gateway_bench.py
# places them (wrk and the mock on CPU 0, the proxy alone on CPU 1), interleaved rounds of wrk
# (1 thread, 64 keep-alive connections, the same non-streaming chat request). Per round and
# target: req/s, and per request the proxy's user and system CPU, the mock's and wrk's (both on
# CPU 0), and CPU 0's idle share (/proc/PID/stat, /proc/stat). When CPU 0 is never idle, the
# client and the mock, not the proxy, set the maximum.
# With PROXY_CPU_PERCENT=N each proxy runs in a cgroup of its own limited to N% of one CPU
# (CFS quota, 10 ms period; cgroup v1 or v2, as root): the proxy, not the client and the mock,
# then sets the maximum, and req/s compares what each proxy serves with the same CPU.
# Usage: [PROXY_CPU_PERCENT=N] bench/gateway/saturation.sh [build-dir] [rounds] [seconds] [B-binary]
#        (needs wrk, nginx, taskset, /usr/bin/time; as gateway_bench.py)
set -euo pipefail
cd "$(dirname "$0")/../.."
A="${1:-build}/src/cli/tokenpool"
ROUNDS="${2:-3}"
SECS="${3:-5}"
B="${4:-}"
for tool in wrk nginx taskset /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "saturation.sh: $tool is needed" >&2; exit 1; }
done
T=$(mktemp -d)
pids=()
groups=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$T"
      for g in "${groups[@]}"; do rmdir "$g" 2>/dev/null || true; done' EXIT
PROXY_CPU_PERCENT=${PROXY_CPU_PERCENT:-}
if [ -n "$PROXY_CPU_PERCENT" ] && ! [[ "$PROXY_CPU_PERCENT" =~ ^[1-9][0-9]?$ ]]; then
  echo "saturation.sh: PROXY_CPU_PERCENT must be an integer in [1, 99]," \
    "got '$PROXY_CPU_PERCENT'" >&2
  exit 1
fi
# limit_cpu PID NAME: moves the process (all its threads) into a new cgroup with
# PROXY_CPU_PERCENT% of one CPU; nothing without PROXY_CPU_PERCENT.
limit_cpu() {
  [ -z "$PROXY_CPU_PERCENT" ] && return 0
  local quota=$((PROXY_CPU_PERCENT * 100)) g
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then  # v2
    grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control ||
      echo +cpu >/sys/fs/cgroup/cgroup.subtree_control
    g=/sys/fs/cgroup/tokenpool-bench-$2-$$
    mkdir "$g" && echo "$quota 10000" >"$g/cpu.max"
  else
    g=/sys/fs/cgroup/cpu/tokenpool-bench-$2-$$
    mkdir "$g" && echo 10000 >"$g/cpu.cfs_period_us" && echo "$quota" >"$g/cpu.cfs_quota_us"
  fi || {
    echo "saturation.sh: cannot make the cgroup $g (root and a cpu controller needed)" >&2
    exit 1
  }
  groups+=("$g")
  echo "$1" >"$g/cgroup.procs"
}
wait_line() { for _ in $(seq 200); do grep -q "listening on" "$1" && return 0; sleep 0.05; done; echo "no start: $1" >&2; cat "$1" >&2; exit 1; }
port_of() { grep -o 'listening on [0-9.]*:[0-9]*' "$1" | head -1 | sed 's/.*://'; }

taskset -c 0 "$A" mock --port 0 --instant >"$T/mock.out" 2>&1 &
MOCK=$!
pids+=("$MOCK")
wait_line "$T/mock.out"
mp=$(port_of "$T/mock.out")
model=$(grep -o 'model=[^ ]*' "$T/mock.out" | head -1 | sed 's/model=//')
# The configs of gateway_bench.py (bench_configs.py): 64 replicas of 1,024 tokens of context, a
# guarantee above what the mock can serve, the request log on (to a file).
python3 bench/gateway/bench_configs.py gateway "$mp" "$model" sk-bench >"$T/gw.yaml"
np=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 bench/gateway/bench_configs.py nginx "$T" "$mp" "$np" >"$T/nginx.conf"
taskset -c 1 nginx -p "$T" -c "$T/nginx.conf" >"$T/nginx.out" 2>&1 &
pids+=($!)
declare -A PORT PID
PORT[nginx]=$np
PID[nginx]=$!
limit_cpu "${PID[nginx]}" nginx
names="nginx"
for v in A B; do
  bin=${!v}
  [ -z "$bin" ] && continue
  taskset -c 1 "$bin" serve --config "$T/gw.yaml" >"$T/gw$v.out" 2>"$T/gw$v.err" &
  PID[$v]=$!
  pids+=($!)
  wait_line "$T/gw$v.out"
  limit_cpu "${PID[$v]}" "$v"
  PORT[$v]=$(port_of "$T/gw$v.out")
  names="$names $v"
done
python3 bench/gateway/bench_configs.py lua "$model" sk-bench >"$T/p.lua"
tck=$(getconf CLK_TCK)
cpu_of() { awk '{print $14, $15}' "/proc/$1/stat"; }
for n in $names; do taskset -c 0 wrk -t1 -c64 -d1s -s "$T/p.lua" "http://127.0.0.1:${PORT[$n]}" >/dev/null; done
[ -n "$PROXY_CPU_PERCENT" ] && echo "each proxy limited to ${PROXY_CPU_PERCENT}% of one CPU"
echo "target: req/s | per request: proxy user+sys, mock user+sys, wrk user+sys (us) | CPU 0 idle"
for r in $(seq "$ROUNDS"); do
  for n in $names; do
    read -r mu0 ms0 < <(cpu_of "$MOCK")
    read -r u0 s0 < <(cpu_of "${PID[$n]}")
    i0=$(awk '/^cpu0 /{print $5}' /proc/stat)
    /usr/bin/time -f "%U %S" -o "$T/wt" taskset -c 0 wrk -t1 -c64 -d"${SECS}s" -s "$T/p.lua" \
      "http://127.0.0.1:${PORT[$n]}" >"$T/w.out"
    i1=$(awk '/^cpu0 /{print $5}' /proc/stat)
    read -r u1 s1 < <(cpu_of "${PID[$n]}")
    read -r mu1 ms1 < <(cpu_of "$MOCK")
    read -r wu ws <"$T/wt"
    if grep -q Non-2xx "$T/w.out"; then echo "round $r $n: $(grep Non-2xx "$T/w.out")" >&2; exit 1; fi
    rps=$(awk '/Requests\/sec/{print $2}' "$T/w.out")
    tot=$(awk '/requests in/{print $1}' "$T/w.out")
    label=$n
    [ "$n" = A ] && label=tokenpool
    [ "$n" = B ] && label="tokenpool (B)"
    python3 - "$label" "$r" "$rps" "$tot" "$tck" "$SECS" "$u0" "$s0" "$u1" "$s1" "$mu0" "$ms0" \
      "$mu1" "$ms1" "$wu" "$ws" "$i0" "$i1" <<'PY'
import sys
a = sys.argv[1:]
label, r = a[0], a[1]
rps, tot, tck, secs = float(a[2]), float(a[3]), float(a[4]), float(a[5])
u0, s0, u1, s1, mu0, ms0, mu1, ms1 = map(float, a[6:14])
wu, ws, i0, i1 = map(float, a[14:18])
us = lambda ticks: ticks / tck * 1e6 / tot
print(f"round {r} {label}: {rps:,.0f} req/s | proxy {us(u1-u0):.1f}+{us(s1-s0):.1f} | "
      f"mock {us(mu1-mu0):.1f}+{us(ms1-ms0):.1f} | wrk {wu*1e6/tot:.1f}+{ws*1e6/tot:.1f} | "
      f"CPU 0 idle {(i1-i0)/tck/secs*100:.1f}%")
PY
  done
done
