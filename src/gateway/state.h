#pragma once
// GatewayState: the core objects behind `tokenpool serve` and the decisions of the request path
// that do not touch the network: key -> tenant, body -> features -> estimate -> pool, the
// TokenPools themselves, and the backend instances with their outstanding tokens. The server
// (server.cc) owns one and calls it between its co_awaits.
//
//   auto state = GatewayState::Create(config, clock).value();
//   int tenant = state->FindTenant(req[http::field::authorization]);   // -1: 401
//   RoutePlan plan = state->Plan(features);                            // !plan.ok(): 4xx
//   Decision d = state->pool(plan.pool).pool->Admit(ref, plan.cost, cookie);
//
// Thread-safety: not synchronized; TokenPool and the estimator are single-threaded by contract.
// The server (server.cc) calls it under its lock, with these exceptions, which its design rests
// on: the shape of each pool's `backends` (the deque only grows at the back) and each slot's
// `url`, `retired` and `generation` are written only by Reload, on the server's worker 0, which
// may read them without the lock (the /metrics scrape); a slot's `url` does not change while
// requests are in flight on it (in_flight > 0), so a request reads its own instance's URL
// without the lock; pool names, models and API keys never change.

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gateway/config.h"
#include "tokenpool/autoscale.h"
#include "tokenpool/clock.h"
#include "tokenpool/estimator.h"
#include "tokenpool/real_clock.h"
#include "tokenpool/request_features.h"
#include "tokenpool/router.h"
#include "tokenpool/token_pool.h"

namespace tokenpool::gateway {

// What a backend's vLLM /metrics says (ParseVllmMetrics).
struct BackendLoad {
  bool found = false;    // any of the gauges below was present
  double kv_usage = -1;  // vllm:kv_cache_usage_perc (or the older gpu_cache_usage_perc), max
                         // over engines; -1: not exported
  double running = -1;   // vllm:num_requests_running, summed over engines
  double waiting = -1;   // vllm:num_requests_waiting, summed
};

// The load gauges of a vLLM (or `tokenpool mock`) /metrics text exposition.
BackendLoad ParseVllmMetrics(std::string_view text);

struct Backend {
  BackendUrl url;
  int64_t outstanding_tokens = 0;  // estimated tokens of requests in flight on it
  uint32_t in_flight = 0;
  // After a failed connect or /metrics read the instance gets no new requests until then.
  Time unhealthy_until = Time::Zero();
  BackendLoad load;             // the last /metrics read that succeeded
  Time load_at = Time::Zero();  // when (Zero: never)
  // Taken out of its pool by a reload: no new requests, no /metrics reads, no capacity; the
  // requests in flight on it finish. The slot is reused by a later reload (the same URL again
  // at once, another one once nothing is in flight on it).
  bool retired = false;
  // Changes whenever the slot is retired, listed again or takes another URL: a worker's idle
  // connections of another generation are closed instead of reused (Server::IdleOf).
  uint64_t generation = 0;
};

struct PoolState {
  PoolSpec spec;
  int64_t max_model_len = 0;  // effective: the spec's or the profile's
  std::unique_ptr<TokenPool> pool;
  // Slots, retired ones included (Backend::retired). A deque: a reload appends without moving
  // the others, so a request may keep a pointer to its instance's URL outside the lock.
  std::deque<Backend> backends;
  int serving = 0;  // healthy instances the pool's capacity counts (UpdateServingCapacity)
  // When `serving` must be counted again: the earliest lapse of an unhealthy mark, or Zero
  // after any change of health or backends.
  Time recount_at = Time::Zero();
  // PickBackend's fast path, one entry per slot: outstanding_tokens plus a penalty that orders
  // the slots as PickBackend's rule does (0: healthy with KV room; kNoRoom: healthy without;
  // kUnavailable: unhealthy or retired). Rebuilt by UpdateServingCapacity's recount and kept
  // current by AddOutstanding; valid while the clock is before recount_at, since no unhealthy
  // mark lapses before then and every change of health, KV room or slots resets recount_at.
  std::vector<int64_t> pick_key;
  static constexpr int64_t kNoRoom = int64_t{1} << 52;
  static constexpr int64_t kUnavailable = int64_t{1} << 61;
  // The only way a slot's outstanding tokens change (a request taken or let go).
  void AddOutstanding(size_t slot, int64_t tokens) {
    backends[slot].outstanding_tokens += tokens;
    if (slot < pick_key.size()) pick_key[slot] += tokens;
  }
  // A request of `tokens` estimated tokens taken by, or gone from, the slot.
  void Enter(size_t slot, int64_t tokens) {
    AddOutstanding(slot, tokens);
    ++backends[slot].in_flight;
  }
  void Leave(size_t slot, int64_t tokens) {
    AddOutstanding(slot, -tokens);
    --backends[slot].in_flight;
  }
  // Each tenant's entitlement on the pool and its class: one lookup on the request path.
  struct TenantEntitlement {
    EntitlementRef ref;
    EntitlementClass cls = EntitlementClass::kElastic;
  };
  std::unordered_map<std::string, TenantEntitlement> by_tenant;
};

// Where a request goes, or the error that refuses it before admission.
struct RoutePlan {
  int status = 200;  // 200: routed; else the HTTP status of the refusal (400, 404)
  std::string message;
  std::string_view error_type;
  std::string_view error_code;
  int pool = -1;
  EntitlementRef ref;  // the tenant's entitlement on `pool` (invalid: it has none)
  EntitlementClass cls = EntitlementClass::kElastic;  // its class (when ref is valid)
  RouteReason reason = RouteReason::kNoPoolFits;
  TokenEstimate estimate;
  // The request's estimator category (views into the request's features and category header),
  // kept for the learning at settle time: categorized once per request, not twice.
  Category category;
  RequestCost cost;
  bool ok() const { return status == 200; }
};

// The credentials of an `Authorization: Bearer KEY` header value: KEY without the spaces
// around it; empty when the scheme is not Bearer (RFC 9110: matched without case) or no key.
std::string_view BearerToken(std::string_view authorization);

class GatewayState {
 public:
  // Builds every pool (capacity from the profile at max_model_len, replicas = backends) and
  // adds every entitlement through the pool's entitlement admission. The clock must outlive it.
  static Result<std::unique_ptr<GatewayState>> Create(const GatewayConfig& config,
                                                      const Clock& clock);

  const GatewayConfig& config() const { return config_; }
  // The tenant index for an `Authorization: Bearer KEY` header value; -1 when missing or unknown.
  int FindTenant(std::string_view authorization) const;
  // Changes whenever the key -> tenant mapping may have changed (each applied Reload): a
  // caller that remembers a lookup checks it against this.
  uint64_t keys_generation() const { return keys_generation_; }
  const TenantSpec& tenant(int i) const { return config_.tenants[static_cast<size_t>(i)]; }

  // Estimate and route a parsed request of `tenant` (-1: none) among the model's pools it is
  // entitled on: 404 for an unknown model, 400 when it fits no pool. `category` is the
  // x-tokenpool-category header (empty: model + content class).
  RoutePlan Plan(const RequestFeatures& f, int tenant, std::string_view category = {}) const;
  // The tenant's entitlement on a pool (invalid when it has none).
  EntitlementRef Entitlement(int pool, int tenant) const;
  // The class of that entitlement (elastic when there is none).
  EntitlementClass Class(int pool, int tenant) const;
  // Among the healthy instances, the one with the least outstanding tokens among those with KV
  // room (usage below backend_metrics.max_kv_usage, or not known), else among all healthy
  // ones; -1 when none is healthy.
  int PickBackend(int pool, Time now) const;
  // A /metrics read of the instance: `load` on success (clears an unhealthy mark), or
  // nullptr on failure (marks it unhealthy).
  void RecordBackendMetrics(int pool, int backend, const BackendLoad* load, Time now);
  // The pool's capacity follows its serving instances: healthy ones x the replica capacity
  // (TokenPool::SetCapacity; guarantees are not re-checked, fair share absorbs a shortfall, as
  // in the paper's capacity drop). Called when health changes and on every backend read; a
  // mark that lapses with time is seen at the next call. Returns true when the capacity grew
  // (the caller dispatches the pool's queue).
  bool UpdateServingCapacity(int pool, Time now);
  // Instances of the pool, retired ones excluded.
  int ActiveBackends(int pool) const;
  // A connect to the instance failed: skip it for kUnhealthyFor.
  void MarkUnhealthy(int pool, int backend, Time now);
  // 5 s: a restarted backend gets traffic back within seconds, and while it is down each
  // gateway pays one failed connect per 5 s for it instead of one per request.
  // Wall time: with time_scale K it is K × 5 s on the pools' clock (UnhealthyFor), so that the
  // mark outlasts the next /metrics read (wall time too) at any K.
  static constexpr Duration kUnhealthyFor = Seconds(5);
  Duration UnhealthyFor() const { return ScaleDuration(kUnhealthyFor, config_.time_scale); }
  // Learns from the backend's usage.prompt_tokens; `category` is the request's plan's.
  void Observe(const RequestFeatures& f, const Category& category, int64_t prompt_tokens);

  const TokenEstimator& estimator() const { return *estimator_; }
  PoolState& pool(int i) { return pools_[static_cast<size_t>(i)]; }
  int pool_count() const { return static_cast<int>(pools_.size()); }

  // Hot reload of tenants, keys, entitlements and the pools' backends and replica ranges. `next`
  // must be valid (ParseGatewayConfig) and differ from the running config only in those; anything
  // else is refused (FailedPrecondition: needs a restart). The new entitlements are first checked
  // together on a fresh set of pools (promised = provisioned), then applied to the running
  // pools through their entitlement admission, keeping usage, queues and debt; removed
  // entitlements stop admitting at once and their open reservations settle normally. A pool's
  // new backends take requests at once; a removed one is retired (Backend::retired): its
  // requests in flight finish there. The pool's replicas and capacity follow. On error nothing
  // is applied, except in the unexpected case that a step the trial accepted fails (reported).
  // The caller dispatches every pool afterwards (queued requests of removed entitlements,
  // capacity added). *backends_changed (may be null) says whether any pool's backends changed.
  Status Reload(const GatewayConfig& next, bool* backends_changed = nullptr);

  // Entitlements changed through the admin API outlive reloads of the config file: the last
  // word on a (tenant, pool) stands until the file itself changes that entitlement.
  //
  // The admin API has applied (Reload) a change of (tenant, pool): to `entry`, or deleted
  // (nullptr). Remembered as an override of the file's entitlement, or forgotten when it
  // brings back exactly what the file says.
  void RecordAdminChange(const std::string& tenant, const std::string& pool,
                         const EntitlementEntry* entry);
  // A reload of the config file: `file` as loaded, with the admin API's overrides laid over its
  // entitlements, then Reload. An override is dropped, and the file's entitlement (or its
  // absence) taken, when the file changed that entitlement since the API did, or no longer has
  // its tenant or pool; *notes (may be null) gets one line for each. Refused as Reload is;
  // nothing changes then, the overrides included.
  Status ReloadFile(const GatewayConfig& file, bool* backends_changed = nullptr,
                    std::vector<std::string>* notes = nullptr);
  // Whether the entitlement of (tenant, pool) in force is the admin API's, not the file's.
  bool IsAdminOverride(const std::string& tenant, const std::string& pool) const;
  int admin_override_count() const { return static_cast<int>(admin_overrides_.size()); }

  // An entitlement the admin API changed: what it says now (nullopt: deleted) and what the
  // config file said when the API first changed it (nullopt: nothing), to tell at a reload
  // whether the file has changed it since.
  struct AdminOverride {
    std::optional<EntitlementEntry> entry;
    std::optional<EntitlementEntry> base;
    bool operator==(const AdminOverride&) const = default;
  };
  using EntitlementKey = std::pair<std::string, std::string>;  // tenant, pool
  using AdminOverrides = std::map<EntitlementKey, AdminOverride>;
  const AdminOverrides& admin_overrides() const { return admin_overrides_; }
  // At start: the overrides an earlier run saved (admin.state_file), laid over the running
  // config's entitlements as ReloadFile lays them over a reloaded file's (the ones the file has
  // changed since, or whose tenant or pool it no longer has, are dropped: *notes). Refused as
  // Reload is; none is kept then.
  Status RestoreAdminOverrides(AdminOverrides saved, std::vector<std::string>* notes = nullptr);

  // The autoscale signal for a pool from its snapshot (the core's Autoscaler, sampled now:
  // its scale-down stabilization follows how often this is read: each /metrics scrape and
  // each GET /admin/pools).
  int32_t DesiredReplicas(int pool, const PoolSnapshot& snap);

  std::string ModelsJson(int64_t created_unix) const;
  // {"pools":[{"name","model","max_model_len","replicas","capacity":{...},"in_use":{...},
  //   "queued","open_reservations","desired_replicas",
  //   "backends":[{"url","retired","outstanding_tokens","in_flight","healthy",...}]}]}
  // (a retired backend is listed while requests are in flight on it)
  std::string PoolsJson();

 private:
  // The tenant's entitlement and class on a pool; nullptr when it has none.
  const PoolState::TenantEntitlement* Lookup(int pool, int tenant) const;
  GatewayState(const GatewayConfig& config, const Clock& clock) : config_(config), clock_(clock) {}
  // Reload's step for one pool's backends (Backend::retired, Backend::generation) and replica
  // range.
  Status ApplyBackends(int pool, const PoolSpec& next);

  GatewayConfig config_;
  const Clock& clock_;
  std::vector<EntitlementEntry> file_entitlements_;  // as the config file last gave them
  AdminOverrides admin_overrides_;
  std::vector<PoolState> pools_;
  std::unordered_map<std::string, std::vector<int>> model_pools_;  // by max_model_len ascending
  std::unordered_map<std::string, int> tenant_by_key_;             // sha256 hex -> tenant
  uint64_t keys_generation_ = 0;
  std::unique_ptr<TokenEstimator> estimator_;
  std::vector<Autoscaler> autoscalers_;  // one per pool
  std::unique_ptr<Router> router_;
};

}  // namespace tokenpool::gateway
