#!/usr/bin/env bash
# The coroutine frames Asio could not recycle during three keep-alive requests to the demo:
# gdb breaks on memalign (Asio's aligned_new; its per-thread cache takes no block above
# 1,020 bytes) and prints each size with the function that allocated it (a ramp inlined into
# its caller is named by the caller). Frames of the backend /metrics reads are left out.
# Usage: bench/gateway/frame_sizes.sh [build-dir]        (needs gdb and curl; port 8080 free)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${1:-build}/src/cli/tokenpool"
tmp=$(mktemp -d)
"$bin" serve --demo >"$tmp/demo.out" 2>"$tmp/demo.err" &
gw=$!
trap 'kill $gw 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do grep -q "listening on" "$tmp/demo.out" && break; sleep 0.05; done
cat >"$tmp/gdb.cmds" <<'EOF'
set pagination off
break memalign
commands
silent
printf "ALLOC %lu\n", $rsi
bt 3
cont
end
cont
EOF
timeout 25 gdb -p "$gw" -batch -x "$tmp/gdb.cmds" >"$tmp/gdb.out" 2>&1 &
sleep 7
u=http://127.0.0.1:8080/v1/chat/completions
curl -s -o /dev/null -o /dev/null -o /dev/null "$u" "$u" "$u" -H 'Authorization: Bearer tp-demo-key' \
  -d '{"model":"llama-3-8b","messages":[{"role":"user","content":"Hello!"}],"max_tokens":3}'
wait %2 || true
python3 - "$tmp/gdb.out" <<'EOF'
import re, sys
from collections import Counter
count = Counter()
for block in open(sys.argv[1]).read().split("ALLOC ")[1:]:
    size = int(block.split("\n")[0])
    frame2 = next((l for l in block.split("\n") if l.startswith("#2")), "?")
    frame2 = frame2.replace("tokenpool::gateway::(anonymous namespace)::", "")
    if "Scrape" in frame2:
        continue
    m = re.search(r" in (\S+?)\(", frame2)
    count[(size, (m.group(1) if m else frame2)[-50:])] += 1
print("count  bytes  allocated in")
for (size, where), n in sorted(count.items(), key=lambda kv: -kv[0][0]):
    print(f"{n:5d}  {size:5d}  {where}")
EOF
