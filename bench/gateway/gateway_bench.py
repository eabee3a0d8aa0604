#!/usr/bin/env python3
"""The gateway's cost, side by side with its peers, in one run (issue 6 deliverable 10, issue 7
deliverable 4).

Targets in front of the same `tokenpool mock --instant` (no simulated compute, so every
microsecond measured is the proxy's or the client's):
  direct     the mock itself
  nginx      nginx as a plain keep-alive reverse proxy (upstream keepalive, HTTP/1.1,
             proxy_buffering off so that SSE streams through), one worker process
  portkey    (with --portkey) the Portkey AI gateway from npm (bench/peers/portkey, pure JS,
             one node process), routed to the mock with x-portkey-provider: openai and
             x-portkey-custom-host
  tokenpool  `tokenpool serve` with token pools, the estimator and the router on every request,
             one worker (workers: 1), its request log on (to a file), like nginx's access log

Placement (taskset): the proxy under test on its own CPU; the mock and the client share the
other. Runs are interleaved (direct, nginx, tokenpool, then again) so that drift of a shared
machine hits all three alike; each figure is the median over the rounds.

Measured per target:
  * maximum throughput: wrk, 1 thread, C keep-alive connections, non-streaming chat;
  * added latency: `tokenpool load` open loop (Poisson) at 1,000 and 5,000 req/s, streaming
    chat with include_usage; P50 and P99 end to end minus the direct run's, per round;
  * CPU per request of the proxy: its threads' time on a CPU (/proc/PID/task/*/schedstat)
    over the fixed-rate run divided by the requests completed.

Usage: bench/gateway/run_gateway_bench.sh [build-dir] [rounds] [seconds]
                                  [--mock-with-proxy] [--busy-poll-us=N]
       bench/peers/run_peers_bench.sh [build-dir] [rounds] [seconds]     (adds --portkey)
"""
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_configs  # noqa: E402  (beside this script)

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
PORTKEY = "--portkey" in sys.argv[1:]
# --busy-poll-us=N adds a target: tokenpool with `busy_poll_us: N` (its workers poll for N us
# after their last event before they block; docs/gateway.md, "Busy polling").
BUSY_POLL_US = next((int(a.split("=", 1)[1]) for a in sys.argv[1:]
                     if a.startswith("--busy-poll-us=")), 0)
if BUSY_POLL_US >= 50000:
    print(f"gateway_bench: busy_poll_us {BUSY_POLL_US}: the gateway polls through its own 50 ms "
          "timer while clients are connected and never goes idle; each wait for the targets "
          "to settle then takes its full 30 s", file=sys.stderr)
BUILD = ARGS[0] if len(ARGS) > 0 else "build"
ROUNDS = int(ARGS[1]) if len(ARGS) > 1 else 3
SECONDS = float(ARGS[2]) if len(ARGS) > 2 else 8
RATES = [1000, 5000]
CONNECTIONS = 64
BIN = os.path.join(BUILD, "src", "cli", "tokenpool")
KEY = "sk-bench"
GOAL_P50_ADDED_US = 100
GOAL_P99_ADDED_US = 1000

ncpu = os.cpu_count() or 1
# --mock-with-proxy: for the latency runs the mock moves to the proxy's CPU, the client alone on
# the other. Direct, the client's request and the answer then cross CPUs once each way, and
# through a proxy as often (client <-> proxy), the proxy <-> mock hops staying on one CPU; by
# default (mock with the client) a proxied request crosses four times and a direct one never.
# On a VM each crossing to a CPU that went idle costs tens of us (bench/gateway/wake_latency.py),
# which the default placement counts as the proxy's. Max throughput keeps the default placement.
MOCK_WITH_PROXY = "--mock-with-proxy" in sys.argv[1:]
PROXY_CPU = "1" if ncpu > 1 else "0"
REST_CPU = "0"


def die(msg):
    print("gateway_bench: " + msg, file=sys.stderr)
    sys.exit(1)


for tool in ("wrk", "nginx", "taskset"):
    if shutil.which(tool) is None and not os.path.exists("/usr/sbin/" + tool):
        die(f"{tool} not found (scripts/install-deps.sh installs it)")
if not os.access(BIN, os.X_OK):
    die(f"{BIN} not found; build first (scripts/build.sh)")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

tmp = tempfile.mkdtemp(prefix="tokenpool-gwbench-")
procs = []


def start(cmd, out_name, cpu):
    out = open(os.path.join(tmp, out_name), "w")
    p = subprocess.Popen(["taskset", "-c", cpu] + cmd, stdout=out, stderr=subprocess.STDOUT)
    procs.append(p)
    return p


def wait_for(path, pattern, what):
    for _ in range(200):
        with open(path) as f:
            m = re.search(pattern, f.read())
        if m:
            return m
        time.sleep(0.05)
    with open(path) as f:
        die(f"{what} did not start:\n" + f.read())


def stop_all():
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
    shutil.rmtree(tmp, ignore_errors=True)


def cpu_ns(pid):
    """Nanoseconds on a CPU of all threads of pid (live threads; ours do not exit mid-run)."""
    total = 0
    for f in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(f) as fh:
                total += int(fh.read().split()[0])
        except OSError:
            pass
    return total


def place(pid, cpu):
    """Pins every thread of a running process to one CPU."""
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            os.sched_setaffinity(int(os.path.basename(task)), {int(cpu)})
        except (OSError, ValueError):
            pass


def settle(pids, timeout=30):
    """Waits until the processes use under 5% of a CPU over 0.5 s: an overloaded target (Portkey
    at 5,000 req/s) must not still be working off its backlog while the next one is measured."""
    end = time.time() + timeout
    while time.time() < end:
        a = sum(cpu_ns(p) for p in pids)
        time.sleep(0.5)
        if sum(cpu_ns(p) for p in pids) - a < 0.05 * 0.5e9:
            return


try:
    # The mock.
    mock = start([BIN, "mock", "--port", "0", "--instant"], "mock.out", REST_CPU)
    m = wait_for(os.path.join(tmp, "mock.out"), r"listening on [0-9.]+:(\d+).*model=(\S+)", "mock")
    mock_port, model = int(m.group(1)), m.group(2)

    # nginx: a plain keep-alive reverse proxy, one process. It cannot print the port it bound
    # for port 0: pick a free one.
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    nginx_port = s.getsockname()[1]
    s.close()
    nginx_conf = os.path.join(tmp, "nginx.conf")
    with open(nginx_conf, "w") as f:
        f.write(bench_configs.nginx_conf(tmp, mock_port, nginx_port))
    nginx = start([NGINX, "-p", tmp, "-c", nginx_conf], "nginx.out", PROXY_CPU)

    # tokenpool serve: bench_configs.gateway_yaml says why its pool and guarantee are as they are.
    gw_conf = os.path.join(tmp, "gateway.yaml")
    with open(gw_conf, "w") as f:
        f.write(bench_configs.gateway_yaml(mock_port, model, KEY))
    portkey_headers = {}
    if PORTKEY:
        pk_dir = os.path.join("bench", "peers", "portkey")
        pk_js = os.path.join(pk_dir, "node_modules", "@portkey-ai", "gateway", "build",
                             "start-server.js")
        if not os.path.exists(pk_js):
            die(f"{pk_js} not found: run `npm ci` in {pk_dir}")
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        portkey_port = s.getsockname()[1]
        s.close()
        portkey = start(["node", pk_js, f"--port={portkey_port}", "--headless"], "portkey.out",
                        PROXY_CPU)
        wait_for(os.path.join(tmp, "portkey.out"), r"Ready for connections", "portkey")
        portkey_headers = {"x-portkey-provider": "openai",
                           "x-portkey-custom-host": f"http://127.0.0.1:{mock_port}/v1"}
    gw = start([BIN, "serve", "--config", gw_conf], "gateway.out", PROXY_CPU)
    gm = wait_for(os.path.join(tmp, "gateway.out"), r"listening on [0-9.]+:(\d+)", "gateway")
    gw_port = int(gm.group(1))
    if BUSY_POLL_US:
        busy_conf = os.path.join(tmp, "gateway-busy.yaml")
        with open(gw_conf) as f, open(busy_conf, "w") as g:
            g.write(f"busy_poll_us: {BUSY_POLL_US}\n" + f.read())
        gwb = start([BIN, "serve", "--config", busy_conf], "gateway-busy.out", PROXY_CPU)
        gbm = wait_for(os.path.join(tmp, "gateway-busy.out"), r"listening on [0-9.]+:(\d+)",
                       "gateway (busy polling)")
        gwb_port = int(gbm.group(1))
    time.sleep(0.3)
    if nginx.poll() is not None:
        with open(os.path.join(tmp, "nginx.out")) as f:
            die("nginx did not start:\n" + f.read())

    targets = {"direct": (mock_port, mock.pid), "nginx": (nginx_port, nginx.pid)}
    if PORTKEY:
        targets["portkey"] = (portkey_port, portkey.pid)
    targets["tokenpool"] = (gw_port, gw.pid)
    if BUSY_POLL_US:
        targets["tokenpool-busy"] = (gwb_port, gwb.pid)
    extra = {name: (portkey_headers if name == "portkey" else {}) for name in targets}

    def lua_for(name):
        path = os.path.join(tmp, f"post-{name}.lua")
        with open(path, "w") as f:
            f.write(bench_configs.wrk_lua(model, KEY, extra[name]))
        return path
    trace = os.path.join(tmp, "short.csv")
    with open(trace, "w") as f:
        f.write("num_prefill_tokens,num_decode_tokens\n")
        for i in range(200):
            f.write(f"{40 + (i * 37) % 120},{8 + (i * 11) % 24}\n")

    def wrk(name, port, secs):
        out = subprocess.run(["taskset", "-c", REST_CPU, "wrk", "-t1", f"-c{CONNECTIONS}",
                              f"-d{int(secs)}s", "-s", lua_for(name), f"http://127.0.0.1:{port}"],
                             capture_output=True, text=True, check=True).stdout
        rate = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
        bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if bad:
            die(f"wrk on port {port}: {bad.group(1)} non-2xx responses")
        return rate

    def load(name, port, rate, secs):
        js = os.path.join(tmp, "load.json")
        headers = []
        for k, v in extra[name].items():
            headers += ["--header", f"{k}: {v}"]
        r = subprocess.run(["taskset", "-c", REST_CPU, BIN, "load", "--target",
                        f"127.0.0.1:{port}", "--trace", trace, "--process", "poisson",
                        "--rate", str(rate), "--duration", str(secs), "--drain", "10", "--key",
                        f"bench={KEY}", "--model", model, "--json", js, "--quiet"] + headers,
                       capture_output=True, text=True)
        if r.returncode != 0:
            die(f"tokenpool load on port {port} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
        with open(js) as f:
            return json.load(f)

    results = {t: {"rps": [], **{r: {"p50": [], "p99": [], "cpu_us": [], "ok": [], "late": []}
                                 for r in RATES}} for t in targets}
    # Warm-up: connections, caches, the estimator's first samples.
    for name, (port, _) in targets.items():
        wrk(name, port, 1)
    for rnd in range(ROUNDS):
        for name, (port, pid) in targets.items():
            place(mock.pid, REST_CPU)
            settle([p for _, p in targets.values()])
            results[name]["rps"].append(wrk(name, port, SECONDS))
            if MOCK_WITH_PROXY:
                place(mock.pid, PROXY_CPU)
            for rate in RATES:
                settle([p for _, p in targets.values()])
                c0 = cpu_ns(pid)
                s = load(name, port, rate, SECONDS)
                c1 = cpu_ns(pid)
                g = max(s["groups"], key=lambda g: g["requests"])
                r = results[name][rate]
                r["p50"].append(g["e2e_ms"]["p50"])
                r["p99"].append(g["e2e_ms"]["p99"])
                r["ok"].append(g["ok"] / max(1, g["requests"]))
                r["late"].append(s["late"] + s["dropped"])
                r["cpu_us"].append((c1 - c0) / 1e3 / max(1, s["completed"]))
            print(f"round {rnd + 1}/{ROUNDS} {name}: {results[name]['rps'][-1]:,.0f} req/s max; "
                  + "; ".join(f"{rate}/s P50 {results[name][rate]['p50'][-1]:.3f} ms "
                              f"P99 {results[name][rate]['p99'][-1]:.3f} ms "
                              f"cpu {results[name][rate]['cpu_us'][-1]:.1f} us/req"
                              for rate in RATES), flush=True)

    med = statistics.median
    print()
    where = (f"the mock on CPU {PROXY_CPU} with the proxy for the latency runs, on CPU "
             f"{REST_CPU} for max throughput" if MOCK_WITH_PROXY else f"the mock on CPU {REST_CPU}")
    print(f"Proxies on CPU {PROXY_CPU}, clients on CPU {REST_CPU}, {where}; {ROUNDS} interleaved "
          f"rounds of {SECONDS:g} s; medians. Non-streaming max throughput (wrk, {CONNECTIONS} "
          "keep-alive connections); streaming open-loop latency (tokenpool load, Poisson).")
    print()
    print("| target | max req/s | vs nginx | rate | P50 e2e ms | P99 e2e ms | added P50 us | "
          "added P99 us | CPU us/req (proxy process) | ok | late+dropped |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    nginx_rps = med(results["nginx"]["rps"])
    for name in targets:
        rps = med(results[name]["rps"])
        for i, rate in enumerate(RATES):
            r = results[name][rate]
            d = results["direct"][rate]
            added50 = med([(a - b) * 1000 for a, b in zip(r["p50"], d["p50"])])
            added99 = med([(a - b) * 1000 for a, b in zip(r["p99"], d["p99"])])
            first = i == 0
            print(f"| {name if first else ''} | {f'{rps:,.0f}' if first else ''} | "
                  f"{f'{rps / nginx_rps:.2f}' if first else ''} | {rate:,}/s | "
                  f"{med(r['p50']):.3f} | {med(r['p99']):.3f} | "
                  f"{'-' if name == 'direct' else f'{added50:.0f}'} | "
                  f"{'-' if name == 'direct' else f'{added99:.0f}'} | "
                  f"{med(r['cpu_us']):.1f} | {med(r['ok']) * 100:.2f}% | {max(r['late'])} |")
    print()
    t = results["tokenpool"]
    a50 = med([(a - b) * 1000 for a, b in zip(t[5000]["p50"], results["direct"][5000]["p50"])])
    a99 = med([(a - b) * 1000 for a, b in zip(t[5000]["p99"], results["direct"][5000]["p99"])])
    tp_rps = med(t["rps"])
    print(f"goal: added P50 at 5,000 req/s < {GOAL_P50_ADDED_US} us: {a50:.0f} us "
          f"(ratio {a50 / GOAL_P50_ADDED_US:.2f}, <= 1 meets it)")
    print(f"goal: added P99 at 5,000 req/s < {GOAL_P99_ADDED_US} us: {a99:.0f} us "
          f"(ratio {a99 / GOAL_P99_ADDED_US:.2f}, <= 1 meets it)")
    if BUSY_POLL_US:
        b = results["tokenpool-busy"]
        b50 = med([(a - c) * 1000 for a, c in zip(b[5000]["p50"], results["direct"][5000]["p50"])])
        b99 = med([(a - c) * 1000 for a, c in zip(b[5000]["p99"], results["direct"][5000]["p99"])])
        print(f"  with busy_poll_us: {BUSY_POLL_US}: added P50 {b50:.0f} us (ratio "
              f"{b50 / GOAL_P50_ADDED_US:.2f}), added P99 {b99:.0f} us (ratio "
              f"{b99 / GOAL_P99_ADDED_US:.2f}); its CPU per request counts the polling")
    print(f"goal: throughput >= nginx: {tp_rps:,.0f} vs {nginx_rps:,.0f} req/s "
          f"(ratio {tp_rps / nginx_rps:.2f}, >= 1 meets it)")
    if PORTKEY:
        pk_rps = med(results["portkey"]["rps"])
        print(f"goal: throughput >= 20x Portkey's: {tp_rps:,.0f} vs {pk_rps:,.0f} req/s "
              f"(x{tp_rps / pk_rps:.1f}; ratio to the goal {tp_rps / pk_rps / 20:.2f}, >= 1 meets it)")
    print(f"CPU per request added over the mock alone at 5,000 req/s: tokenpool "
          f"{med(t[5000]['cpu_us']):.1f} us, nginx {med(results['nginx'][5000]['cpu_us']):.1f} us "
          f"(the proxy process's own time; the mock's is {med(results['direct'][5000]['cpu_us']):.1f}"
          " us)")
finally:
    stop_all()
