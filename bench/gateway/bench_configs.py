#!/usr/bin/env python3
"""The configs the gateway benches share: the tokenpool gateway's, nginx's (a plain keep-alive
reverse proxy) and wrk's request, written once for gateway_bench.py (imported),
saturation.sh and run_gateway_profile.sh (command line).

Usage: bench_configs.py gateway MOCK_PORT MODEL KEY    the gateway's YAML, on stdout
       bench_configs.py nginx DIR MOCK_PORT PORT       nginx's config (files under DIR)
       bench_configs.py lua MODEL KEY [NAME=VALUE ...] wrk's script: the chat request
"""
import hashlib
import sys


def gateway_yaml(mock_port, model, key):
    """One pool; the mock stands for 64 replicas (the capacity model counts replicas, the mock is
    instant) of 1,024 tokens of context, 2.05M tokens/s in all (the pool's capacity in GET
    /admin/pools), and the tenant's guarantee is 2.0M of it. The wrk request is 49 tokens (the
    mock's usage: 33 prompt + 16 completion), so ~40,800 req/s fit, above what the mock serves
    directly. With 200K tokens/s (an earlier version) wrk was held to ~4,400 req/s; with 1.2M
    (8,192 tokens of context, 1.3M in all) the token-rate meter filled during some 5 s rounds
    and not others once the gateway passed 1.2M / 49 = ~24,500 req/s (gateway_bench.py with 5
    rounds at 69bae68: tokenpool 20,412 / 31,618 / 31,822 / 20,363 / 21,848 req/s): the figure
    then measured admission, not the gateway."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    url = f'"http://127.0.0.1:{mock_port}"'
    return f"""listen: {{host: 127.0.0.1, port: 0}}
workers: 1
models: [{model}]
pools:
  - {{name: main, model: {model}, profile: llama-3-8b-h100, max_model_len: 1024,
      backends: [{", ".join([url] * 64)}]}}
tenants:
  - {{name: bench, keys: [{digest}]}}
entitlements:
  - {{tenant: bench, pool: main, class: guaranteed,
      guarantee: {{token_rate: 2000000, kv_tokens: 1000000, concurrency: 2048}}}}
"""


def nginx_conf(tmp, mock_port, port):
    """One process, HTTP/1.1 upstream keepalive, proxy_buffering off (SSE streams through), an
    access log like tokenpool's request log; its files under `tmp`."""
    return f"""
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx.err warn;
events {{ worker_connections 8192; }}
http {{
  access_log {tmp}/nginx.access;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  keepalive_requests 1000000;
  upstream mock {{ server 127.0.0.1:{mock_port}; keepalive 256; keepalive_requests 1000000; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }}
  }}
}}
"""


def wrk_lua(model, key, headers=None):
    """A non-streaming chat request, 16 output tokens; `headers` are added (a peer's routing)."""
    lua = f"""wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
wrk.body = '{{"model":"{model}","messages":[{{"role":"system","content":"You are a helpful assistant."}},{{"role":"user","content":"Write a haiku about token pools and GPUs, please."}}],"max_tokens":16}}'
"""
    for k, v in (headers or {}).items():
        lua += f'wrk.headers["{k}"] = "{v}"\n'
    return lua


if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) == 4 and a[0] == "gateway":
        sys.stdout.write(gateway_yaml(int(a[1]), a[2], a[3]))
    elif len(a) == 4 and a[0] == "nginx":
        sys.stdout.write(nginx_conf(a[1], int(a[2]), int(a[3])))
    elif len(a) >= 3 and a[0] == "lua" and all("=" in h for h in a[3:]):
        sys.stdout.write(wrk_lua(a[1], a[2], dict(h.split("=", 1) for h in a[3:])))
    else:
        sys.exit(__doc__.split("\n\n", 1)[1])
