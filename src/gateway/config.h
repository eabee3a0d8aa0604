#pragma once
// Gateway configuration: the YAML file of `tokenpool serve --config FILE`, read and validated
// once at the edge into plain structs. Only this file's .cc knows yaml-cpp.
//
//   Result<GatewayConfig> c = LoadGatewayConfigFile("gateway.yaml");
//   if (!c.ok()) ...   // "gateway.yaml:14: tenants[1].keys[0]: must be 64 hex characters (sha256)"
//
// Every error names the file, the line, the field path and the rule. API keys are stored as
// SHA-256 hex digests (`echo -n KEY | sha256sum`); the config never holds a key in clear and
// the gateway never logs one. The format is described in docs/gateway.md.
//
// Thread-safety: plain values.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenpool/entitlement.h"
#include "tokenpool/estimator.h"
#include "tokenpool/router.h"
#include "tokenpool/status.h"

namespace tokenpool::gateway {

struct Listener {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  // 0: any free port (printed on start)
  // `GET /metrics` on this listener (the main one's `listen.metrics`; the admin listener always
  // serves it, behind its token). Off: the per-tenant series (names, usage) are not shown to
  // every client that can reach the API.
  bool metrics = true;
};

struct BackendUrl {
  std::string host;
  uint16_t port = 0;
  std::string authority;  // "host:port", as the Host header and URLs carry it
};

struct PoolSpec {
  std::string name;           // unique: "short"
  std::string model;          // a configured model
  std::string profile;        // a built-in instance profile (tokenpool/profile.h)
  int64_t max_model_len = 0;  // 0: the profile's
  int32_t min_replicas = 1;
  int32_t max_replicas = 1;
  std::vector<BackendUrl> backends;  // one per running replica
  // The key the pool's servers want (vLLM's --api-key), sent upstream as "Authorization:
  // Bearer <key>". Read at load from the environment variable that `api_key_env` names, so
  // that no secret sits in the file; never logged or shown by the admin API. Empty: none.
  std::string api_key_env;
  std::string api_key;
  int line = 0;  // where the file has it, for errors found past the parse (0: unknown)
};

struct TenantSpec {
  std::string name;
  std::vector<std::string> key_sha256;  // lower-case hex digests
};

struct EntitlementEntry {
  std::string tenant;
  std::string pool;
  EntitlementSpec spec;  // spec.name = spec.tenant = tenant
  int line = 0;          // where the file has it (0: the admin API's), for errors past the parse
  // The entitlement itself: the same entry moved to another line is the same.
  bool operator==(const EntitlementEntry& o) const {
    return tenant == o.tenant && pool == o.pool && spec == o.spec;
  }
};

struct Limits {
  // 16 KiB of request headers: nginx's large_client_header_buffers default is 4 x 8 KiB.
  uint32_t max_header_bytes = 16 * 1024;
  // 16 MiB: the request parser's own limit (parse/request_parser.h).
  uint64_t max_body_bytes = uint64_t{16} << 20;
  // Upstream time limit: for a non-streaming request the whole exchange, for a streaming one
  // each wait for the next bytes. 600 s: a 32K-token answer at ~18 ms/token, non-streaming.
  double upstream_timeout_s = 600;
  // A client connection is closed when no complete request arrives within this time after the
  // previous one (or after connecting): 75 s, nginx's keepalive_timeout; it also bounds how
  // slowly a client may send one request.
  double client_idle_timeout_s = 75;
  // A write to a client that the socket does not take at once must be taken whole within this
  // time (60 s, nginx's send_timeout), else the connection is closed: a client that stops
  // reading a stream would otherwise hold its reservation, and the backend's KV, until it
  // closed (and a drain would wait for it).
  double send_timeout_s = 60;
  // Graceful shutdown: after SIGTERM/SIGINT, requests in flight get this long to finish. 25 s:
  // Kubernetes sends SIGKILL 30 s after SIGTERM by default.
  double drain_timeout_s = 25;
};

// Each backend's vLLM /metrics, read in the background: its KV usage steers instance picking,
// a failed read marks it unhealthy (GatewayState::kUnhealthyFor) before a request finds out.
struct BackendMetrics {
  // 1 s: Prometheus scrapes vLLM every 5-15 s; routing wants fresher load. 0 turns it off.
  double interval_s = 1;
  // An instance whose KV cache is fuller than this gets new requests only when none has room.
  // 0.95: vLLM preempts (recomputes) sequences when it runs out; a little headroom avoids it.
  double max_kv_usage = 0.95;
};

struct GatewayConfig {
  std::string source;  // file name, for messages
  Listener listen;
  // I/O threads, each with its own io_context and SO_REUSEPORT listener; 0: one per hardware
  // thread (std::thread::hardware_concurrency).
  int32_t workers = 0;
  // Busy polling: after its last event a worker keeps polling its sockets (epoll_wait with a
  // zero timeout) for this many microseconds before it blocks. 0 (the default) blocks at once.
  // For virtual machines, where waking an idle vCPU costs tens of microseconds per hop (HAProxy's
  // `busy-polling` answers the same problem); it spends CPU for latency. docs/gateway.md.
  int64_t busy_poll_us = 0;
  // The token pools' clock runs this many times faster than wall time (RealClock's scale): for
  // a gateway in front of engines that run K times faster than real ones (`tokenpool mock
  // --speedup K`, the live experiments). Every time the core keeps is model time: capacity in
  // tokens per model second, rate windows, entitlement SLOs and queue waits, health back-off.
  // What a client sees is converted back to wall time (a queued request's wait, retry-after,
  // the x-ratelimit-* headers); the gateway's own limits (timeouts, drain) and its metrics
  // stay wall time. 1 (the default) is real time. docs/gateway.md, "Time scale".
  double time_scale = 1.0;
  // One structured line per finished request (spdlog, stderr): request id, tenant, pool, class,
  // status, outcome, tokens and times. Keys are never logged.
  bool log_requests = true;
  Listener admin{.host = "127.0.0.1", .port = 0};
  bool admin_enabled = false;
  std::string admin_token_sha256;
  // admin.state_file: where the entitlement changes made through the admin API are kept, so
  // that they outlive a restart as they outlive a reload (docs/gateway.md, "Admin API"). Empty:
  // in memory only.
  std::string admin_state_file;
  std::vector<std::string> models;
  std::vector<PoolSpec> pools;
  std::vector<TenantSpec> tenants;
  std::vector<EntitlementEntry> entitlements;
  std::string estimator_mode = std::string(kDefaultEstimatorMode);
  EstimatorConfig estimator;
  std::string router_mode = "spillover";
  RouterConfig router;
  Limits limits;
  BackendMetrics backend_metrics;
};

// Parses and validates; `source` names the file in messages.
Result<GatewayConfig> ParseGatewayConfig(std::string_view yaml_text, const std::string& source);
// Reads the file, then ParseGatewayConfig with its base name as the source.
Result<GatewayConfig> LoadGatewayConfigFile(const std::string& path);

// Where the entitlement of (tenant, pool) is in `list`: its index, or list.size() when absent.
size_t EntitlementIndex(const std::vector<EntitlementEntry>& list, std::string_view tenant,
                        std::string_view pool);
// Whether the config has a tenant, a pool, of that name.
bool HasTenant(const GatewayConfig& c, std::string_view name);
bool HasPool(const GatewayConfig& c, std::string_view name);

// One entry of `entitlements` (YAML or JSON: the admin API's body), checked with the same rules
// as in a file; references to tenants and pools are not checked here.
Result<EntitlementEntry> ParseEntitlementEntry(std::string_view text, const std::string& source);

// "http://127.0.0.1:8001" (an optional trailing '/'); https is refused.
Result<BackendUrl> ParseBackendUrl(std::string_view url);

}  // namespace tokenpool::gateway
