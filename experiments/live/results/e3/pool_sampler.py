import json, re, sys, time, urllib.request
log, out, token = sys.argv[1], sys.argv[2], sys.argv[3]
port = None
for _ in range(1200):
    try:
        m = re.search(r"tokenpool serve listening on .*admin=[^:]+:(\d+)", open(log).read())
        if m: port = m.group(1); break
    except FileNotFoundError: pass
    time.sleep(0.1)
if not port: sys.exit("no banner")
t0 = time.time()
with open(out, "w") as f:
    fails = 0
    while fails < 5:
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/admin/pools", headers={"Authorization": f"Bearer {token}"})
            d = json.load(urllib.request.urlopen(req, timeout=2)); fails = 0
            p = d["pools"][0]
            f.write(json.dumps({"wall": round(time.time(), 3), "capacity": p["capacity"], "replicas": p["replicas"], "queued": p["queued"],
                                "healthy": [b["healthy"] for b in p["backends"]]}) + "\n"); f.flush()
        except Exception as e:
            fails += 1
        time.sleep(1)
