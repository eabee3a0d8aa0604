#!/usr/bin/env python3
"""Instructions per request by library, from a callgrind file of run_gateway_profile.sh.

Sums callgrind_annotate's exclusive figures of each function into a bucket by its name (Beast,
Asio, simdjson, prometheus, the estimator, tokenpool::parse, tokenpool::gateway, the rest of
tokenpool, libc, std) and divides by the requests served.
Usage: PROFILE_KEEP=DIR PROFILE_TARGETS=tokenpool PROFILE_KINDS=plain \\
           bash bench/gateway/run_gateway_profile.sh   # prints "N requests"
       bench/gateway/profile_by_library.py DIR/tokenpool-plain.cg N
"""
import collections
import re
import subprocess
import sys


def bucket(f: str) -> str:
    if 'boost::beast' in f.split('(')[0] or 'beast::' in f[:120]:
        return 'beast'
    if 'boost::asio' in f[:150] or 'awaitable' in f[:100]:
        return 'asio'
    for key, name in (('simdjson', 'simdjson'), ('prometheus', 'prometheus'),
                      ('estimator', 'estimator'), ('tokenpool::parse', 'parse'),
                      ('tokenpool::gateway', 'gateway'), ('tokenpool::', 'core'),
                      ('libc.so', 'libc')):
        if key in f:
            return name
    return 'std' if 'std::' in f[:40] else 'other'


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    path, requests = sys.argv[1], int(sys.argv[2])
    text = subprocess.run(['callgrind_annotate', '--threshold=100', path], check=True,
                          capture_output=True, text=True).stdout
    sums = collections.Counter()
    started = False
    for line in text.splitlines():
        m = re.match(r'\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)', line)
        if not m:
            continue
        if not started:  # the first such line is PROGRAM TOTALS
            started = True
            continue
        sums[bucket(m.group(2))] += int(m.group(1).replace(',', ''))
    for name, n in sums.most_common():
        print(f'{name:12s} {n // requests:7,d}')
    print(f'{"total":12s} {sum(sums.values()) // requests:7,d}')


if __name__ == '__main__':
    main()
