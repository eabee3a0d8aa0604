#!/usr/bin/env bash
# Where the proxies' kernel time goes, per request: nginx and tokenpool (and optionally a second
# tokenpool binary, B) in front of one `tokenpool mock --instant`, placed as saturation.sh
# places them (wrk and the mock on CPU 0, the proxy alone on CPU 1), no CPU limit. For each
# proxy in turn: wrk for SECS seconds under `perf record -e cpu-clock -c 250000 -C 1` (CPU 1's
# samples, one per 250 us of CPU time), then the proxy's own samples (by PID) split user /
# kernel, in microseconds per
# request, the kernel symbols whose share differs most between the proxies, and the TCP
# segments received per request over the whole machine (/proc/net/snmp InSegs: a proxy that
# split or added segments would show here); then a second wrk run of SECS seconds under `perf
# stat` of the system-call tracepoints, for the proxy's system calls per request at full speed
# (strace slows a proxy down enough to change how much each read finds).
# Usage: bench/gateway/kernel_profile.sh [build-dir] [seconds] [B-binary]
#        (needs perf, wrk, nginx, taskset; as root for the kernel's symbols)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
SECS=${2:-5}
B=${3:-}
A="$build/src/cli/tokenpool"
[ -x "$A" ] || { echo "kernel_profile: $A not found; build first" >&2; exit 1; }
for tool in perf wrk nginx taskset; do
  command -v "$tool" >/dev/null || { echo "kernel_profile: $tool not found" >&2; exit 1; }
done
T=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$T"; }
trap cleanup EXIT
source bench/gateway/targets.sh
start_targets
insegs() { awk '/^Tcp:/{if(!h){for(i=1;i<=NF;i++) if($i=="InSegs") c=i; h=1} else print $c}' /proc/net/snmp; }
for n in $names; do
  taskset -c 0 wrk -t1 -c64 -d1s -s "$T/p.lua" "http://127.0.0.1:${PORT[$n]}" >/dev/null
  s0=$(insegs)
  perf record -q -e cpu-clock -c 250000 -C 1 -o "$T/$n.data" -- \
    taskset -c 0 wrk -t1 -c64 -d"${SECS}s" -s "$T/p.lua" "http://127.0.0.1:${PORT[$n]}" \
    >"$T/$n.wrk" 2>&1
  s1=$(insegs)
  awk '/requests in/{print $1}' "$T/$n.wrk" >"$T/$n.req"
  echo $((s1 - s0)) >"$T/$n.segs"
  perf report -i "$T/$n.data" --pid "${PID[$n]}" --sort dso,sym -n -q 2>/dev/null |
    awk '{print $2, $3, $NF}' >"$T/$n.syms"
  events=""
  for c in recvfrom recvmsg read sendmsg sendto writev write epoll_wait epoll_ctl getsockopt \
    timerfd_settime; do
    events="$events,syscalls:sys_enter_$c"
  done
  perf stat -x, -e "raw_syscalls:sys_enter$events" -p "${PID[$n]}" -o "$T/$n.stat" -- \
    taskset -c 0 wrk -t1 -c64 -d"${SECS}s" -s "$T/p.lua" "http://127.0.0.1:${PORT[$n]}" \
    >"$T/$n.wrk2" 2>&1
  awk '/requests in/{print $1}' "$T/$n.wrk2" >"$T/$n.req2"
done
python3 - "$T" $names <<'PY'
import sys
T, names = sys.argv[1], sys.argv[2:]
label = {"nginx": "nginx", "A": "tokenpool", "B": "tokenpool (B)"}
data = {}
for n in names:
    req = int(open(f"{T}/{n}.req").read())
    segs = int(open(f"{T}/{n}.segs").read())
    user = kern = 0
    syms = {}
    for line in open(f"{T}/{n}.syms"):
        p = line.split()
        if len(p) < 3:
            continue
        count, dso, sym = int(p[0]), p[1], p[2]
        if dso == "[kernel.kallsyms]":
            kern += count
            syms[sym] = syms.get(sym, 0) + count
        else:
            user += count
    us = lambda c: c * 250 / req
    data[n] = {k: us(v) for k, v in syms.items()}
    print(f"{label[n]}: {req:,} requests; per request: user {us(user):.2f} us, kernel "
          f"{us(kern):.2f} us; TCP segments received {segs / req:.2f}")
    req2 = int(open(f"{T}/{n}.req2").read())
    calls = []
    for line in open(f"{T}/{n}.stat"):
        p = line.strip().split(",")
        if len(p) < 3 or not p[0].replace(".", "").isdigit():
            continue
        name = p[2].split(":")[-1].replace("sys_enter_", "")
        if name == "sys_enter":
            name = "all"
        if float(p[0]) / req2 >= 0.005:
            calls.append(f"{name} {float(p[0]) / req2:.2f}")
    print(f"  system calls per request ({req2:,} requests): " + ", ".join(calls))
base = data["nginx"]
for n in names[1:]:
    d = data[n]
    rows = sorted(((d.get(k, 0) - base.get(k, 0), k) for k in set(d) | set(base)), reverse=True)
    print(f"kernel symbols, {label[n]} minus nginx, us per request (largest both ways):")
    for diff, k in rows[:12] + rows[-6:]:
        print(f"  {diff:+.3f} {k} (nginx {base.get(k, 0):.3f}, {label[n]} {d.get(k, 0):.3f})")
PY
