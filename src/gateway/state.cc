#include "gateway/state.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cstdlib>
#include <optional>
#include <string>

#include "gateway/json_values.h"
#include "gateway/sha256.h"
#include "tokenpool/capacity.h"
#include "tokenpool/profile.h"

namespace tokenpool::gateway {
namespace {

// PickBackend's order of a slot at `now` (PoolState::pick_key): its outstanding tokens plus
// 0 when healthy with KV room (usage below max_kv, or not known: -1), kNoRoom when healthy
// without, kUnavailable when retired or marked unhealthy.
int64_t PickKey(const Backend& b, Time now, double max_kv) {
  if (b.retired || b.unhealthy_until > now) return b.outstanding_tokens + PoolState::kUnavailable;
  return b.outstanding_tokens + (b.load.kv_usage < max_kv ? 0 : PoolState::kNoRoom);
}

}  // namespace

Result<std::unique_ptr<GatewayState>> GatewayState::Create(const GatewayConfig& config,
                                                           const Clock& clock) {
  InitSha256();  // not on the first request
  std::unique_ptr<GatewayState> s(new GatewayState(config, clock));
  s->file_entitlements_ = config.entitlements;
  Result<std::unique_ptr<TokenEstimator>> est =
      MakeEstimator(config.estimator_mode, config.estimator);
  if (!est.ok()) return est.status();
  s->estimator_ = std::move(*est);
  Result<std::unique_ptr<Router>> router = MakeRouter(config.router_mode, config.router);
  if (!router.ok()) return router.status();
  s->router_ = std::move(*router);

  // "FILE:LINE" where the entry has a line (the admin API's have none).
  const auto at = [&config](int line) {
    return line > 0 ? config.source + ":" + std::to_string(line) : config.source;
  };
  s->pools_.reserve(config.pools.size());
  for (const PoolSpec& spec : config.pools) {
    Result<InstanceProfile> prof = FindProfile(spec.profile);
    if (!prof.ok()) return prof.status();
    InstanceProfile p = spec.max_model_len > 0 ? WithMaxModelLen(*prof, spec.max_model_len) : *prof;
    if (Status v = p.Validate(); !v.ok()) {
      return InvalidArgument(at(spec.line) + ": pools[" + spec.name + "]: " + v.message());
    }
    PoolConfig pc;
    pc.name = spec.name;
    // The default workload shape (Azure conversation trace): the token_rate a replica carries
    // at capacity; kv_tokens and concurrency do not depend on it.
    pc.replica_capacity = ReplicaCapacity(p, WorkloadShape{});
    pc.min_replicas = spec.min_replicas;
    pc.max_replicas = spec.max_replicas;
    pc.initial_replicas = static_cast<int32_t>(spec.backends.size());
    Result<std::unique_ptr<TokenPool>> pool = TokenPool::Create(pc, clock);
    if (!pool.ok()) {
      return InvalidArgument(at(spec.line) + ": pools[" + spec.name +
                             "]: " + pool.status().message());
    }
    PoolState ps;
    ps.spec = spec;
    ps.max_model_len = p.max_model_len;
    ps.pool = std::move(*pool);
    for (const BackendUrl& u : spec.backends) {
      Backend b;
      b.url = u;
      ps.backends.push_back(std::move(b));
    }
    ps.serving = static_cast<int>(ps.backends.size());
    s->pools_.push_back(std::move(ps));
    s->autoscalers_.emplace_back(AutoscaleConfig{});
  }
  for (size_t i = 0; i < s->pools_.size(); ++i) {
    s->model_pools_[s->pools_[i].spec.model].push_back(static_cast<int>(i));
  }
  for (auto& [model, list] : s->model_pools_) {
    std::stable_sort(list.begin(), list.end(), [&](int a, int b) {
      return s->pools_[static_cast<size_t>(a)].max_model_len <
             s->pools_[static_cast<size_t>(b)].max_model_len;
    });
  }
  for (size_t t = 0; t < config.tenants.size(); ++t) {
    for (const std::string& k : config.tenants[t].key_sha256) {
      s->tenant_by_key_[k] = static_cast<int>(t);
    }
  }
  for (size_t i = 0; i < config.entitlements.size(); ++i) {
    const EntitlementEntry& e = config.entitlements[i];
    for (PoolState& ps : s->pools_) {
      if (ps.spec.name != e.pool) continue;
      Result<EntitlementRef> ref = ps.pool->AddEntitlement(e.spec);
      if (!ref.ok()) {
        // The core names the entitlement "entitlements[NAME]: "; here the entry, its tenant
        // and pool instead (an admin change drops the entry's index: admin.cc Apply).
        std::string reason = ref.status().message();
        if (const std::string core = "entitlements[" + e.spec.name + "]: ";
            reason.starts_with(core)) {
          reason.erase(0, core.size());
        }
        return InvalidArgument(at(e.line) + ": entitlements[" + std::to_string(i) +
                               "]: tenant \"" + e.tenant + "\" on pool \"" + e.pool +
                               "\": " + reason);
      }
      ps.by_tenant[e.tenant] = {*ref, e.spec.cls};
    }
  }
  return s;
}

std::string_view BearerToken(std::string_view authorization) {
  constexpr std::string_view kBearer = "bearer ";
  if (authorization.size() < kBearer.size()) return {};
  for (size_t i = 0; i < kBearer.size(); ++i) {
    const char c = authorization[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != kBearer[i]) return {};
  }
  std::string_view key = authorization.substr(kBearer.size());
  while (!key.empty() && key.front() == ' ') key.remove_prefix(1);
  while (!key.empty() && key.back() == ' ') key.remove_suffix(1);
  return key;
}

int GatewayState::FindTenant(std::string_view authorization) const {
  const std::string_view key = BearerToken(authorization);
  if (key.empty()) return -1;
  auto it = tenant_by_key_.find(Sha256Hex(key));
  return it == tenant_by_key_.end() ? -1 : it->second;
}

RoutePlan GatewayState::Plan(const RequestFeatures& f, int tenant,
                             std::string_view category) const {
  RoutePlan plan;
  auto it = model_pools_.find(f.model);
  if (it == model_pools_.end()) {
    plan.status = 404;
    plan.message = "The model `" + f.model + "` does not exist or you do not have access to it.";
    plan.error_type = "invalid_request_error";
    plan.error_code = "model_not_found";
    return plan;
  }
  plan.category = Categorize(f, category);
  plan.estimate = estimator_->Estimate(f, plan.category);
  // The router chooses among the pools the tenant is entitled on: a spill to a pool it has no
  // entitlement on would turn a passing saturation into a 403. Only when none of those fits
  // does it route over all of the model's pools (a 400 when none fits at all, else the pool
  // that would, which the caller refuses with 403 no_entitlement).
  RoutePool route_pools[8];
  const PoolState::TenantEntitlement* ents[8];  // the tenant's on each (nullptr: none)
  int index[8];                                 // route_pools[i] is the model's index[i]-th pool
  const size_t n = std::min<size_t>(it->second.size(), 8);
  size_t entitled = 0;
  for (size_t i = 0; i < n; ++i) {
    ents[i] = tenant >= 0 ? Lookup(it->second[i], tenant) : nullptr;
    if (ents[i] != nullptr) index[entitled++] = static_cast<int>(i);
  }
  const auto fill = [&](size_t count) {
    for (size_t i = 0; i < count; ++i) {
      const PoolState& ps = pools_[static_cast<size_t>(it->second[static_cast<size_t>(index[i])])];
      route_pools[i] = RoutePool{.name = ps.spec.name,
                                 .max_model_len = ps.max_model_len,
                                 .utilization = ps.pool->Utilization(),
                                 .queued = ps.pool->QueueLength()};
    }
    return std::span<const RoutePool>(route_pools, count);
  };
  RouteDecision d;
  if (entitled > 0) d = router_->Route(plan.estimate.routing_budget, fill(entitled));
  if (!d.ok()) {
    for (size_t i = 0; i < n; ++i) index[i] = static_cast<int>(i);
    d = router_->Route(plan.estimate.routing_budget, fill(n));
  }
  if (d.ok()) {  // back to the model's numbering; a pool's role is its place among them all
    d.pool = index[d.pool];
    if (d.reason == RouteReason::kShort || d.reason == RouteReason::kLong) {
      d.reason = d.pool == 0 ? RouteReason::kShort : RouteReason::kLong;
    }
  }
  plan.reason = d.reason;
  if (!d.ok()) {
    plan.status = 400;
    plan.message = NoPoolFitsMessage(plan.estimate.routing_budget, fill(n));
    plan.error_type = "invalid_request_error";
    plan.error_code = "context_length_exceeded";
    return plan;
  }
  if (const PoolState::TenantEntitlement* e = ents[static_cast<size_t>(d.pool)]; e != nullptr) {
    plan.ref = e->ref;
    plan.cls = e->cls;
  }
  plan.pool = it->second[static_cast<size_t>(d.pool)];
  // The reservation holds the conservative prompt estimate: KV is what overload costs. With
  // n (or best_of) choices the prompt is held once and each choice may reach the output
  // reserve, as vLLM generates and counts them; the route is by one sequence's length.
  plan.cost = RequestCost{.prompt = Tokens(plan.estimate.routing_prompt_tokens),
                          .output = Tokens(plan.estimate.output_reserve * f.sequences)};
  return plan;
}

EntitlementRef GatewayState::Entitlement(int pool, int tenant) const {
  const PoolState::TenantEntitlement* e = Lookup(pool, tenant);
  return e == nullptr ? EntitlementRef{} : e->ref;
}

EntitlementClass GatewayState::Class(int pool, int tenant) const {
  const PoolState::TenantEntitlement* e = Lookup(pool, tenant);
  return e != nullptr ? e->cls : EntitlementClass::kElastic;
}

const PoolState::TenantEntitlement* GatewayState::Lookup(int pool, int tenant) const {
  const PoolState& ps = pools_[static_cast<size_t>(pool)];
  auto it = ps.by_tenant.find(config_.tenants[static_cast<size_t>(tenant)].name);
  return it == ps.by_tenant.end() ? nullptr : &it->second;
}

void GatewayState::MarkUnhealthy(int pool, int backend, Time now) {
  PoolState& ps = pools_[static_cast<size_t>(pool)];
  ps.backends[static_cast<size_t>(backend)].unhealthy_until = now + UnhealthyFor();
  ps.recount_at = Time::Zero();
  UpdateServingCapacity(pool, now);
}

int GatewayState::ActiveBackends(int pool) const {
  int n = 0;
  for (const Backend& b : pools_[static_cast<size_t>(pool)].backends) n += b.retired ? 0 : 1;
  return n;
}

bool GatewayState::UpdateServingCapacity(int pool, Time now) {
  PoolState& ps = pools_[static_cast<size_t>(pool)];
  // Called on every request: the instances are counted again only when a mark lapses or
  // something changed (recount_at reset), not by a loop over them each time.
  if (now < ps.recount_at) return false;
  int healthy = 0;
  Time next = Time::Max();
  const double max_kv = config_.backend_metrics.max_kv_usage;
  ps.pick_key.resize(ps.backends.size());
  size_t i = 0;
  for (const Backend& b : ps.backends) {
    ps.pick_key[i++] = PickKey(b, now, max_kv);
    if (b.retired) continue;
    if (b.unhealthy_until <= now) {
      ++healthy;
    } else {
      next = std::min(next, b.unhealthy_until);
    }
  }
  ps.recount_at = next;
  if (healthy == ps.serving) return false;
  const bool grew = healthy > ps.serving;
  ps.serving = healthy;
  ps.pool->SetCapacity(ps.pool->config().replica_capacity * static_cast<double>(healthy));
  return grew;
}

int GatewayState::PickBackend(int pool, Time now) const {
  const PoolState& ps = pools_[static_cast<size_t>(pool)];
  int64_t best_key = PoolState::kUnavailable;
  int best = -1;
  const auto consider = [&](int64_t key, size_t index) {
    if (key < best_key) {  // ties: the lowest index
      best_key = key;
      best = static_cast<int>(index);
    }
  };
  if (now < ps.recount_at && ps.pick_key.size() == ps.backends.size()) {
    // No unhealthy mark has lapsed since the recount that built the stored keys: one load and
    // compare per slot instead of a walk over the deque's Backend records.
    for (size_t i = 0; i < ps.pick_key.size(); ++i) consider(ps.pick_key[i], i);
  } else {
    const double max_kv = config_.backend_metrics.max_kv_usage;
    size_t i = 0;
    for (const Backend& b : ps.backends) consider(PickKey(b, now, max_kv), i++);
  }
  return best;
}

void GatewayState::RecordBackendMetrics(int pool, int backend, const BackendLoad* load, Time now) {
  Backend& b = pools_[static_cast<size_t>(pool)].backends[static_cast<size_t>(backend)];
  if (b.retired) return;  // retired while it was being read
  if (load == nullptr) {
    b.unhealthy_until = now + UnhealthyFor();
  } else {
    b.load = *load;
    b.load_at = now;
    b.unhealthy_until = Time::Zero();
  }
  pools_[static_cast<size_t>(pool)].recount_at = Time::Zero();
  UpdateServingCapacity(pool, now);
}

BackendLoad ParseVllmMetrics(std::string_view text) {
  // Only the few gauges below matter; most of a vLLM exposition is histogram buckets. A line
  // is looked at only when it starts with one of the names (followed by '{' or ' ').
  constexpr std::string_view kKv = "vllm:kv_cache_usage_perc";
  constexpr std::string_view kKvOld = "vllm:gpu_cache_usage_perc";
  constexpr std::string_view kRunning = "vllm:num_requests_running";
  constexpr std::string_view kWaiting = "vllm:num_requests_waiting";
  BackendLoad l;
  double kv = -1, running = 0, waiting = 0;
  bool have_running = false, have_waiting = false;
  const auto is = [](std::string_view line, std::string_view name) {
    return line.size() > name.size() && line.starts_with(name) &&
           (line[name.size()] == '{' || line[name.size()] == ' ');
  };
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (!line.starts_with("vllm:")) continue;
    const int which = is(line, kKv) || is(line, kKvOld) ? 0
                      : is(line, kRunning)              ? 1
                      : is(line, kWaiting)              ? 2
                                                        : -1;
    if (which < 0) continue;
    const size_t sp = line.rfind(' ');
    if (sp == std::string_view::npos || sp + 1 >= line.size()) continue;
    const std::string value(line.substr(sp + 1));
    char* end = nullptr;
    const double v = std::strtod(value.c_str(), &end);
    if (end == value.c_str()) continue;
    l.found = true;
    if (which == 0) {
      kv = std::max(kv, v);
    } else if (which == 1) {
      running += v;
      have_running = true;
    } else {
      waiting += v;
      have_waiting = true;
    }
  }
  l.kv_usage = kv;
  l.running = have_running ? running : -1;
  l.waiting = have_waiting ? waiting : -1;
  return l;
}

void GatewayState::Observe(const RequestFeatures& f, const Category& category,
                           int64_t prompt_tokens) {
  estimator_->Observe(f, category, prompt_tokens);
}

namespace {

bool SameUrl(const BackendUrl& a, const BackendUrl& b) {
  return a.host == b.host && a.port == b.port;
}

bool SameBackends(const std::vector<BackendUrl>& a, const std::vector<BackendUrl>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), SameUrl);
}

// What a reload may not change: everything but tenants, entitlements and pools' backends and
// replica ranges.
std::string RestartOnlyDifference(const GatewayConfig& a, const GatewayConfig& b) {
  if (a.listen.host != b.listen.host || a.listen.port != b.listen.port ||
      a.listen.metrics != b.listen.metrics) {
    return "listen";
  }
  if (a.workers != b.workers) return "workers";
  if (a.busy_poll_us != b.busy_poll_us) return "busy_poll_us";
  if (a.time_scale != b.time_scale) return "time_scale";
  if (a.log_requests != b.log_requests) return "log";
  if (a.admin_enabled != b.admin_enabled || a.admin.host != b.admin.host ||
      a.admin.port != b.admin.port || a.admin_token_sha256 != b.admin_token_sha256 ||
      a.admin_state_file != b.admin_state_file) {
    return "admin";
  }
  if (a.models != b.models) return "models";
  if (a.pools.size() != b.pools.size()) return "pools";
  for (size_t i = 0; i < a.pools.size(); ++i) {
    const PoolSpec& p = a.pools[i];
    const PoolSpec& q = b.pools[i];
    if (p.name != q.name || p.model != q.model || p.profile != q.profile ||
        p.max_model_len != q.max_model_len || p.api_key_env != q.api_key_env ||
        p.api_key != q.api_key) {
      return "pools[" + std::to_string(i) + "]";
    }
  }
  if (a.estimator_mode != b.estimator_mode ||
      a.estimator.default_output_reserve != b.estimator.default_output_reserve ||
      a.estimator.linear.sample_after != b.estimator.linear.sample_after ||
      a.estimator.linear.sample_every != b.estimator.linear.sample_every) {
    return "estimator";
  }
  if (a.router_mode != b.router_mode || a.router.spill_utilization != b.router.spill_utilization) {
    return "router";
  }
  if (a.limits.max_header_bytes != b.limits.max_header_bytes ||
      a.limits.max_body_bytes != b.limits.max_body_bytes ||
      a.limits.upstream_timeout_s != b.limits.upstream_timeout_s ||
      a.limits.client_idle_timeout_s != b.limits.client_idle_timeout_s ||
      a.limits.send_timeout_s != b.limits.send_timeout_s ||
      a.limits.drain_timeout_s != b.limits.drain_timeout_s) {
    return "limits";
  }
  if (a.backend_metrics.interval_s != b.backend_metrics.interval_s ||
      a.backend_metrics.max_kv_usage != b.backend_metrics.max_kv_usage) {
    return "backend_metrics";
  }
  return "";
}

}  // namespace

Status GatewayState::ApplyBackends(int pool, const PoolSpec& next) {
  const std::vector<BackendUrl>& urls = next.backends;
  PoolState& ps = pools_[static_cast<size_t>(pool)];
  // Each listed URL claims a slot of its own (a URL may be listed more than once: as many
  // slots): first an active one with that URL (kept), else a retired one (back, its requests
  // in flight still counted), so that a returning URL always finds its own slot.
  std::vector<bool> claimed(ps.backends.size(), false);
  const auto slot_of = [&](const BackendUrl& u, bool retired) -> int {
    int i = 0;
    for (const Backend& b : ps.backends) {
      if (!claimed[static_cast<size_t>(i)] && b.retired == retired && SameUrl(b.url, u)) return i;
      ++i;
    }
    return -1;
  };
  std::vector<const BackendUrl*> fresh;
  for (const BackendUrl& u : urls) {
    int i = slot_of(u, false);
    if (i < 0) i = slot_of(u, true);
    if (i < 0) {
      fresh.push_back(&u);
      continue;
    }
    claimed[static_cast<size_t>(i)] = true;
    Backend& b = ps.backends[static_cast<size_t>(i)];
    if (b.retired) {
      b.retired = false;
      b.unhealthy_until = Time::Zero();
      b.load = BackendLoad{};
      b.load_at = Time::Zero();
      ++b.generation;
    }
  }
  // The slots no URL claimed are retired; their requests in flight finish there.
  for (size_t i = 0; i < ps.backends.size(); ++i) {
    Backend& b = ps.backends[i];
    if (!claimed[i] && !b.retired) {
      b.retired = true;
      ++b.generation;
    }
  }
  // The new URLs: a retired slot nothing runs on any more, else a new slot.
  for (const BackendUrl* u : fresh) {
    auto it = std::find_if(ps.backends.begin(), ps.backends.end(),
                           [](const Backend& b) { return b.retired && b.in_flight == 0; });
    if (it == ps.backends.end()) {
      ps.backends.emplace_back();
      it = std::prev(ps.backends.end());
    }
    const uint64_t generation = it->generation + 1;
    *it = Backend{};
    it->url = *u;
    it->generation = generation;
  }
  // The config's validation keeps the backends within the range, and the trial (Reload) has
  // checked the guarantees at its maximum.
  const Status s =
      ps.pool->SetReplicaRange(next.min_replicas, next.max_replicas, ActiveBackends(pool));
  ps.serving = -1;  // capacity from the healthy ones again
  ps.recount_at = Time::Zero();
  UpdateServingCapacity(pool, clock_.Now());
  ps.spec.backends = urls;
  ps.spec.min_replicas = next.min_replicas;
  ps.spec.max_replicas = next.max_replicas;
  return s;
}

Status GatewayState::Reload(const GatewayConfig& next, bool* backends_changed) {
  if (backends_changed != nullptr) *backends_changed = false;
  if (std::string field = RestartOnlyDifference(config_, next); !field.empty()) {
    return FailedPrecondition(
        next.source + ": " + field +
        ": changed; only tenants, entitlements and pools' backends and replicas "
        "reload, the rest needs a restart");
  }
  // Promised = provisioned over the whole new set, on fresh pools.
  if (Result<std::unique_ptr<GatewayState>> trial = Create(next, clock_); !trial.ok()) {
    return trial.status();
  }
  // Each pool's entitlements, as one set (TokenPool::ReplaceEntitlements: checked as a whole,
  // so changes that trade a dimension between tenants apply in any order).
  std::vector<std::vector<EntitlementSpec>> specs(pools_.size());
  for (size_t p = 0; p < pools_.size(); ++p) {
    for (const EntitlementEntry& e : next.entitlements) {
      if (e.pool == pools_[p].spec.name) specs[p].push_back(e.spec);
    }
  }
  // A pool whose range grows holds more guarantees from now on: widened before the
  // entitlements change (and set exactly after them, with the backends). Every pool's new set
  // is checked before any is applied, and a failed check puts the ranges back: a refused
  // reload changes nothing.
  struct Range {
    int32_t min, max, replicas;
  };
  std::vector<std::optional<Range>> widened(pools_.size());
  const auto restore = [&] {
    for (size_t p = 0; p < pools_.size(); ++p) {
      if (!widened[p]) continue;
      (void)pools_[p].pool->SetReplicaRange(widened[p]->min, widened[p]->max, widened[p]->replicas);
      pools_[p].serving = -1;
      pools_[p].recount_at = Time::Zero();
    }
  };
  for (size_t p = 0; p < pools_.size(); ++p) {
    const PoolConfig& pc = pools_[p].pool->config();
    const PoolSpec& q = next.pools[p];
    if (q.max_replicas > pc.max_replicas) {
      const Range before{pc.min_replicas, pc.max_replicas, pools_[p].pool->Snapshot().replicas};
      Status s = pools_[p].pool->SetReplicaRange(std::min(pc.min_replicas, q.min_replicas),
                                                 q.max_replicas, before.replicas);
      // SetReplicaRange sets capacity from all replicas: from the healthy ones again at the
      // next request, even if a later step fails.
      pools_[p].serving = -1;
      pools_[p].recount_at = Time::Zero();
      if (!s.ok()) {
        restore();
        return s;
      }
      widened[p] = before;
    }
  }
  for (size_t p = 0; p < pools_.size(); ++p) {
    if (Status s = pools_[p].pool->CheckEntitlementSet(specs[p]); !s.ok()) {
      restore();
      return s;
    }
  }
  for (size_t p = 0; p < pools_.size(); ++p) {
    PoolState& ps = pools_[p];
    if (Status s = ps.pool->ReplaceEntitlements(specs[p]); !s.ok()) return s;  // checked above
    ps.by_tenant.clear();
    for (const EntitlementSpec& spec : specs[p]) {
      ps.by_tenant[spec.tenant] = {*ps.pool->Find(spec.name), spec.cls};
    }
  }
  for (size_t p = 0; p < pools_.size(); ++p) {
    const PoolSpec& q = next.pools[p];
    PoolSpec& running = config_.pools[p];
    const bool same_backends = SameBackends(running.backends, q.backends);
    if (same_backends && running.min_replicas == q.min_replicas &&
        running.max_replicas == q.max_replicas) {
      continue;
    }
    if (Status s = ApplyBackends(static_cast<int>(p), q); !s.ok()) return s;
    running.backends = q.backends;
    running.min_replicas = q.min_replicas;
    running.max_replicas = q.max_replicas;
    if (backends_changed != nullptr && !same_backends) *backends_changed = true;
  }
  config_.tenants = next.tenants;
  config_.entitlements = next.entitlements;
  tenant_by_key_.clear();
  ++keys_generation_;
  for (size_t t = 0; t < config_.tenants.size(); ++t) {
    for (const std::string& k : config_.tenants[t].key_sha256) {
      tenant_by_key_[k] = static_cast<int>(t);
    }
  }
  return Status::Ok();
}

namespace {

std::optional<EntitlementEntry> FindEntry(const std::vector<EntitlementEntry>& list,
                                          const std::string& tenant, const std::string& pool) {
  const size_t i = EntitlementIndex(list, tenant, pool);
  if (i == list.size()) return std::nullopt;
  return list[i];
}

}  // namespace

void GatewayState::RecordAdminChange(const std::string& tenant, const std::string& pool,
                                     const EntitlementEntry* entry) {
  const EntitlementKey key{tenant, pool};
  auto it = admin_overrides_.find(key);
  std::optional<EntitlementEntry> base =
      it != admin_overrides_.end() ? it->second.base : FindEntry(file_entitlements_, tenant, pool);
  std::optional<EntitlementEntry> now;
  if (entry != nullptr) now = *entry;
  if (now == base) {  // back to what the file says
    if (it != admin_overrides_.end()) admin_overrides_.erase(it);
    return;
  }
  admin_overrides_[key] = AdminOverride{.entry = std::move(now), .base = std::move(base)};
}

Status GatewayState::ReloadFile(const GatewayConfig& file, bool* backends_changed,
                                std::vector<std::string>* notes) {
  GatewayConfig merged = file;
  AdminOverrides kept;
  for (const auto& [key, o] : admin_overrides_) {
    const auto& [tenant, pool] = key;
    const std::string what = "entitlement of tenant \"" + tenant + "\" on pool \"" + pool + "\"";
    if (!HasTenant(file, tenant) || !HasPool(file, pool)) {
      if (notes != nullptr) {
        notes->push_back(what + ": the admin API's change dropped: the file no longer has the " +
                         "tenant or the pool");
      }
      continue;
    }
    const std::optional<EntitlementEntry> in_file = FindEntry(file.entitlements, tenant, pool);
    if (in_file != o.base) {
      if (notes != nullptr) {
        notes->push_back(what + (in_file == o.entry
                                     ? ": the file now says what the admin API's change did; "
                                       "the change is the file's from now on"
                                     : ": the file changed it since the admin API did: the "
                                       "file's replaces the admin API's"));
      }
      continue;
    }
    std::vector<EntitlementEntry>& list = merged.entitlements;
    const size_t at = EntitlementIndex(list, tenant, pool);
    if (o.entry.has_value()) {
      if (at != list.size()) {
        list[at] = *o.entry;
      } else {
        list.push_back(*o.entry);
      }
    } else if (at != list.size()) {
      list.erase(list.begin() + static_cast<std::ptrdiff_t>(at));
    }
    kept.emplace(key, o);
  }
  if (Status s = Reload(merged, backends_changed); !s.ok()) {
    if (!kept.empty() && s.message().find(": entitlements[") != std::string::npos) {
      return Status(s.code(), s.message() + " (with " + std::to_string(kept.size()) +
                                  " entitlement(s) changed through the admin API laid over the "
                                  "file's)");
    }
    return s;
  }
  file_entitlements_ = file.entitlements;
  admin_overrides_ = std::move(kept);
  return Status::Ok();
}

Status GatewayState::RestoreAdminOverrides(AdminOverrides saved, std::vector<std::string>* notes) {
  admin_overrides_ = std::move(saved);
  GatewayConfig file = config_;
  file.entitlements = file_entitlements_;
  Status s = ReloadFile(file, nullptr, notes);
  if (!s.ok()) admin_overrides_.clear();
  return s;
}

bool GatewayState::IsAdminOverride(const std::string& tenant, const std::string& pool) const {
  return admin_overrides_.count(EntitlementKey{tenant, pool}) != 0;
}

std::string GatewayState::ModelsJson(int64_t created_unix) const {
  boost::json::array data;
  for (const std::string& m : config_.models) {
    data.push_back(boost::json::object{
        {"id", m}, {"object", "model"}, {"created", created_unix}, {"owned_by", "tokenpool"}});
  }
  return boost::json::serialize(boost::json::object{{"object", "list"}, {"data", data}});
}

int32_t GatewayState::DesiredReplicas(int pool, const PoolSnapshot& snap) {
  PoolState& ps = pools_[static_cast<size_t>(pool)];
  return autoscalers_[static_cast<size_t>(pool)]
      .Recommend(clock_.Now(), snap, ps.pool->config())
      .desired;
}

std::string GatewayState::PoolsJson() {
  boost::json::array pools;
  for (PoolState& ps : pools_) {
    const PoolSnapshot snap = ps.pool->Snapshot();
    boost::json::array backends;
    for (const Backend& b : ps.backends) {
      if (b.retired && b.in_flight == 0) continue;
      backends.push_back(boost::json::object{
          {"url", "http://" + b.url.authority},
          {"retired", b.retired},
          {"outstanding_tokens", b.outstanding_tokens},
          {"healthy", b.unhealthy_until <= clock_.Now()},
          {"kv_usage", JsonNumber(b.load.kv_usage)},
          {"running", JsonNumber(b.load.running)},
          {"waiting", JsonNumber(b.load.waiting)},
          {"metrics_age_s",
           JsonNumber(b.load_at == Time::Zero() ? -1.0 : ToSeconds(clock_.Now() - b.load_at))},
          {"in_flight", b.in_flight}});
    }
    pools.push_back(boost::json::object{
        {"name", ps.spec.name},
        {"model", ps.spec.model},
        {"max_model_len", ps.max_model_len},
        {"replicas", snap.replicas},
        {"serving_replicas", ps.serving},
        {"capacity", ResourceVectorJson(snap.capacity)},
        {"in_use", ResourceVectorJson(snap.in_use)},
        {"queued", snap.queued},
        {"open_reservations", snap.open_reservations},
        {"desired_replicas", DesiredReplicas(static_cast<int>(&ps - pools_.data()), snap)},
        {"backends", backends}});
  }
  return boost::json::serialize(boost::json::object{{"pools", pools}});
}

}  // namespace tokenpool::gateway
