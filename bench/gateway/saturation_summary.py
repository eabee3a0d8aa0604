#!/usr/bin/env python3
"""Medians of a saturation.sh run: per target, req/s, CPU per request (proxy user + sys) and
the median over rounds of its req/s divided by nginx's in the same round (interleaved rounds
cancel the host's drift better than a ratio of medians). Reads saturation.sh's output on
stdin or from the files named; the rounds of several runs are pooled.

Usage: bench/gateway/saturation_summary.py [saturation-output ...]
"""
import fileinput
import re
import statistics
import sys

LINE = re.compile(r"^round (\d+) (.+?): ([\d,]+) req/s \| proxy ([\d.]+)\+([\d.]+) \|")


def main() -> int:
    rounds: dict[tuple[str, int], dict[str, tuple[float, float, float]]] = {}
    order: list[str] = []
    for line in fileinput.input(sys.argv[1:]):
        m = LINE.match(line)
        if not m:
            continue
        r, name = (fileinput.filename(), int(m.group(1))), m.group(2)
        rps = float(m.group(3).replace(",", ""))
        rounds.setdefault(r, {})[name] = (rps, float(m.group(4)), float(m.group(5)))
        if name not in order:
            order.append(name)
    if not rounds:
        print("saturation_summary.py: no 'round N target: ... req/s | proxy U+S' lines",
              file=sys.stderr)
        return 1
    base = "nginx" if "nginx" in order else order[0]
    print(f"medians of {len(rounds)} rounds (ratio: per round, to {base} in the same round)")
    print(f"{'target':<16} {'req/s':>9} {'ratio':>7} {'user+sys us/req':>16} {'total':>7}")
    for name in order:
        got = [v[name] for v in rounds.values() if name in v]
        ratios = [v[name][0] / v[base][0] for v in rounds.values()
                  if name in v and base in v and v[base][0] > 0]
        rps = statistics.median(g[0] for g in got)
        user = statistics.median(g[1] for g in got)
        sys_ = statistics.median(g[2] for g in got)
        total = statistics.median(g[1] + g[2] for g in got)
        ratio = statistics.median(ratios) if ratios else float("nan")
        print(f"{name:<16} {rps:>9,.0f} {ratio:>7.3f} {user:>8.1f}+{sys_:<7.1f} {total:>7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
