#!/usr/bin/env python3
"""What one message between two CPUs costs on this machine, apart from any proxy: the floor
under the gateway bench's added latency.

A parent on CPU 0 sends one byte over a Unix socket pair to a child on CPU 1, which echoes it;
the round trip is timed. Cases:
  gap 0        the next message follows at once: neither CPU has time to go idle;
  gap G us     the parent sleeps at least G us between messages (time.sleep oversleeps a
               little; 5,000 req/s is a mean gap of 200 us):
               both CPUs go idle between messages, as they do under the bench's open-loop load;
  ... polling  the child polls its socket (non-blocking reads in a loop) instead of blocking,
               so its CPU never idles: what `busy_poll_us` does for the gateway.

On a virtual machine an idle vCPU halts and is woken through the hypervisor; the difference
between the 'gap G' and 'gap 0' rows is what that costs per round trip, and the polling row
shows how much of it is the receiver's wake-up. Python's own overhead (a few us per call) is in
every row alike.

Then the stalls: a process on each CPU reads the clock in a loop for 5 s and counts the gaps
(time it was not running: the host ran something else, or the guest kernel did). Every request
crosses both CPUs, so a gap of G ms delays the requests in flight then by up to G ms, whatever
the proxy: a floor under P99.

Usage: bench/gateway/wake_latency.py [messages] [gap-us]
"""
import os
import socket
import statistics
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
GAP_US = int(sys.argv[2]) if len(sys.argv) > 2 else 200

if (os.cpu_count() or 1) < 2:
    sys.exit("wake_latency: needs two CPUs")


def run(gap_us, polling):
    a, b = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        a.close()
        os.sched_setaffinity(0, {1})
        if polling:
            b.setblocking(False)
        while True:
            try:
                d = b.recv(1)
            except BlockingIOError:
                continue
            if not d:
                os._exit(0)
            b.send(d)
    b.close()
    os.sched_setaffinity(0, {0})
    rtt = []
    for i in range(N + 100):
        if gap_us:
            time.sleep(gap_us / 1e6)
        t0 = time.perf_counter_ns()
        a.send(b"x")
        a.recv(1)
        if i >= 100:  # warm-up
            rtt.append((time.perf_counter_ns() - t0) / 1e3)
    a.close()
    os.waitpid(pid, 0)
    rtt.sort()
    return statistics.median(rtt), rtt[int(len(rtt) * 0.99)]


print(f"round trip of one byte, CPU 0 <-> CPU 1 (Unix socket pair), {N} messages")
print("| case | P50 us | P99 us |")
print("|---|---:|---:|")
rows = {}
for gap, polling in ((0, False), (GAP_US, False), (GAP_US, True)):
    name = f"gap {gap} us" + (", receiver polling" if polling else "")
    rows[(gap, polling)] = run(gap, polling)
    print(f"| {name} | {rows[(gap, polling)][0]:.1f} | {rows[(gap, polling)][1]:.1f} |", flush=True)
idle = rows[(GAP_US, False)][0] - rows[(0, False)][0]
saved = rows[(GAP_US, False)][0] - rows[(GAP_US, True)][0]
print(f"idle CPUs add {idle:.0f} us per round trip at P50; a polling receiver "
      f"saves {saved:.0f} us of it")


def stalls(cpu, secs, pipe_w):
    os.sched_setaffinity(0, {cpu})
    gaps = []
    start = last = time.perf_counter_ns()
    end = start + int(secs * 1e9)
    while last < end:
        t = time.perf_counter_ns()
        if t - last > 200_000:
            gaps.append(t - last)
        last = t
    os.write(pipe_w, (",".join(str(g) for g in gaps) + "\n").encode())
    os._exit(0)


print()
print("stalls: a process spinning on each CPU for 5 s, gaps between two clock reads")
print("| CPU | gaps > 0.2 ms | gaps > 1 ms | time lost | longest |")
print("|---|---:|---:|---:|---:|")
pipes = []
for cpu in (0, 1):
    r, w = os.pipe()
    if os.fork() == 0:
        os.close(r)
        stalls(cpu, 5, w)
    os.close(w)
    pipes.append((cpu, r))
for cpu, r in pipes:
    with os.fdopen(r) as f:
        line = f.read().strip()
    g = [int(x) / 1e3 for x in line.split(",") if x]
    print(f"| {cpu} | {len(g)} | {sum(1 for x in g if x > 1000)} | {sum(g) / 1e3:.1f} ms "
          f"({sum(g) / 5e4:.2f}%) | {max(g, default=0) / 1e3:.2f} ms |")
    os.wait()
