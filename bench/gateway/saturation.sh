#!/usr/bin/env bash
# Where the maximum-throughput bench's ceiling is: nginx and tokenpool (and optionally a second
# tokenpool binary, B) in front of one `tokenpool mock --instant`, placed as gateway_bench.py
# places them (wrk and the mock on CPU 0, the proxy alone on CPU 1), interleaved rounds of wrk
# (1 thread, 64 keep-alive connections, the same non-streaming chat request). Per round and
# target: req/s, and per request the proxy's user and system CPU, the mock's and wrk's (both on
# CPU 0), and CPU 0's idle share (/proc/PID/stat, /proc/stat). When CPU 0 is never idle, the
# client and the mock, not the proxy, set the maximum. At the end, the medians over the rounds
# (saturation_summary.py): per target req/s, CPU per request, and its per-round ratio to nginx.
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
source bench/gateway/targets.sh
start_targets limit_cpu
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
      "$mu1" "$ms1" "$wu" "$ws" "$i0" "$i1" <<'PY' | tee -a "$T/rounds.out"
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
echo
python3 "$(dirname "$0")/saturation_summary.py" "$T/rounds.out"
