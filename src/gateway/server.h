#pragma once
// The gateway server behind `tokenpool serve`: an OpenAI-compatible proxy on Boost.Beast/Asio
// with C++20 coroutines and HTTP/1.1 keep-alive on both sides (an idle-connection pool per
// backend instance).
//
// Request path for POST /v1/chat/completions and /v1/completions:
//   Bearer key -> tenant (SHA-256) -> parse -> estimate -> route -> TokenPool::Admit
//   -> queued: wait on a timer until a Dispatch admits it, its deadline passes, or the client
//      leaves -> the backend instance with the least outstanding tokens -> proxy (streaming
//   chunk by chunk) -> settle with the backend's usage and feed the estimator.
// Also GET /v1/models, GET /health, and on the admin listener (when configured) GET
// /admin/pools with its own bearer token. Details and what is not done yet: docs/gateway.md.
//
//   Result<GatewayConfig> c = LoadGatewayConfigFile("gateway.yaml");
//   Status s = RunGateway(*c, stdout);      // blocks until SIGINT or SIGTERM
//
// Thread-safety: everything runs on one io_context on the calling thread (this slice uses one
// core); the core objects are touched only between co_awaits on that thread.

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

#include "gateway/config.h"
#include "tokenpool/status.h"

namespace tokenpool::gateway {

// Validates and builds the pools, binds, prints one line (flushed) to `out`:
//   "tokenpool serve listening on HOST:PORT admin=HOST:PORT"   (admin=off when not configured)
// and serves until SIGINT or SIGTERM, then drains: stops accepting, closes idle connections,
// lets requests in flight finish for up to limits.drain_timeout_s (a second signal stops at
// once). Errors: a config the core refuses (InvalidArgument), or
// an address that cannot be bound (Unavailable).
// `on_ready`, when set, is called with the bound ports (admin: 0 when off) after that line,
// before serving.
// With `reload_path`, SIGHUP re-reads that file and applies its tenants and entitlements
// (GatewayState::Reload); a file that does not load or is refused leaves the running config
// as it was. The outcome is one line on stderr.
Status RunGateway(const GatewayConfig& config, std::FILE* out,
                  const std::function<void(uint16_t port, uint16_t admin_port)>& on_ready = {},
                  const std::string& reload_path = "");

}  // namespace tokenpool::gateway
