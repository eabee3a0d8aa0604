#!/usr/bin/env bash
# A 5-second live E2 point (load 1, token pools, speedup SPEEDUP or 1) as a smoke test: one mock replica
# pair, the gateway and the load generator on loopback; checks that every planned request has
# exactly one CSV row with an outcome, that the gateway's counters account for every request
# it answered, and that the pool holds nothing afterwards. ~15 s; not part of ctest.
# Usage: experiments/live/smoke.sh [path/to/tokenpool]
# Environment: SPEEDUP [1]: the mocks' --speedup K and the gateway's time_scale: K (the 5 model
# seconds then take 5 / K wall seconds).
set -euo pipefail
# A binary given by a relative path is found from where the script was started.
[[ $# -gt 0 ]] && TOKENPOOL=$(realpath -m -- "$1") && export TOKENPOOL
cd "$(dirname "$0")/../.."
source experiments/live/lib.sh
k=${SPEEDUP:-1}
d=$(mktemp -d)
trap 'live_stop_all; rm -rf "$d"' EXIT
$PY $LIVE/live.py scenario sim/scenarios/e2_bounded_latency.yaml "$d/s.yaml" "$d/w.yaml" \
  --speedup "$k" --set duration_s=5 --set warmup_s=0 --set drain_s=10 > /dev/null
for i in 0 1; do
  live_start_mock "$d/m$i.log" 0 --profile llama-3-8b-h100 --max-model-len 8192 \
    --speedup "$k" > /dev/null
  ports[$i]=$MOCK_PORT
done
$PY $LIVE/live.py gateway-config "$d/g.yaml" --ports "${ports[0]},${ports[1]}" \
  --tenants guaranteed,elastic,spot --admin-token "$ADMIN_TOKEN" --max-model-len 8192 \
  --time-scale "$k"
live_start_gateway "$d/g.log" "$d/g.yaml" > /dev/null
$PY $LIVE/live.py entitle "$ADMIN_PORT" "$ADMIN_TOKEN" "$d/s.yaml" > /dev/null
"$TP" load --target "127.0.0.1:$GW_PORT" --scenario "$d/w.yaml" --model "$MODEL" --drain 10 \
  --csv "$d/rows.csv" --json "$d/sum.json" --quiet
sleep 0.5
$PY - "$d" "$ADMIN_PORT" "$ADMIN_TOKEN" <<'PY'
import csv, json, sys
sys.path.insert(0, "experiments/live")
import live
d, port, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows = list(csv.DictReader(open(d + "/rows.csv")))
s = json.load(open(d + "/sum.json"))
fail = []
if len(rows) != s["planned"] or len({r["id"] for r in rows}) != len(rows):
    fail.append("rows %d, planned %d" % (len(rows), s["planned"]))
bad = [r for r in rows if r["outcome"] not in ("ok", "http_error", "transport", "timeout", "dropped", "generator", "bad_stream")]
if bad:
    fail.append("%d rows without an outcome" % len(bad))
answered = sum(1 for r in rows if r["status"] not in ("", "0"))
st, t = live.admin(port, token, "GET", "/admin/tenants")
decided = 0
for x in t["tenants"]:
    for e in x["entitlements"]:
        c = e["counters"]
        decided += sum(v for k, v in c["outcomes"].items() if k != "queued")
if decided != answered:
    fail.append("gateway decided %d requests, the client got %d answers" % (decided, answered))
st, p = live.admin(port, token, "GET", "/admin/pools")
in_use = p["pools"][0]["in_use"]
if in_use["concurrency"] != 0 or in_use["kv_tokens"] != 0:
    fail.append("pool still holds %s" % in_use)
ok = sum(1 for r in rows if r["outcome"] == "ok")
print("smoke: %d planned, %d rows, %d ok, %d answered by the gateway, %d admission decisions, "
      "pool in use %s" % (s["planned"], len(rows), ok, answered, decided, in_use))
if fail or ok == 0:
    print("FAIL: " + "; ".join(fail or ["nothing completed"]))
    sys.exit(1)
print("PASS")
PY
