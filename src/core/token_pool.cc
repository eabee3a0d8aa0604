// TokenPool: see include/tokenpool/token_pool.h and docs/token-pools.md for the semantics.
#include "tokenpool/token_pool.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <unordered_set>
#include <utility>

namespace tokenpool {

namespace {

constexpr uint32_t kNone = UINT32_MAX;
// Tolerance for comparisons of sums of doubles (kv and concurrency are exact integers; the rate
// meter is continuous).
constexpr double kEps = 1e-9;

int64_t WindowIndex(Time now, int w) {
  return now.nanos() / QuotaWindowLength(static_cast<QuotaWindow>(w)).count();
}

}  // namespace

std::string_view AdmissionOutcomeName(AdmissionOutcome o) {
  switch (o) {
    case AdmissionOutcome::kAdmittedGuaranteed:
      return "admitted_guaranteed";
    case AdmissionOutcome::kAdmittedBurst:
      return "admitted_burst";
    case AdmissionOutcome::kQueued:
      return "queued";
    case AdmissionOutcome::kRejectedOverEntitlement:
      return "rejected_over_entitlement";
    case AdmissionOutcome::kRejectedPoolSaturated:
      return "rejected_pool_saturated";
    case AdmissionOutcome::kRejectedSpotShed:
      return "rejected_spot_shed";
    case AdmissionOutcome::kRejectedQueueFull:
      return "rejected_queue_full";
    case AdmissionOutcome::kRejectedQuota:
      return "rejected_quota";
    case AdmissionOutcome::kRejectedTooLarge:
      return "rejected_too_large";
    case AdmissionOutcome::kRejectedUnknownEntitlement:
      return "rejected_unknown_entitlement";
    case AdmissionOutcome::kExpired:
      return "expired";
    case AdmissionOutcome::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------------------------
// Internal state.

struct TokenPool::EntState {
  EntitlementSpec spec;
  uint32_t generation = 0;
  bool live = false;
  bool draining = false;
  ResourceVector g;  // effective guarantee (spec, or a leased share)
  ResourceVector b;  // effective burst cap
  double kv_used = 0;
  double conc_used = 0;
  double rate_level = 0;  // tokens in the meter
  Time rate_at;
  // Contribution to the pool aggregates, as of the last Retally.
  ResourceVector cached_u;
  ResourceVector cached_max;
  ResourceVector cached_unused;
  std::array<bool, kNumDims> cached_bursting{};
  double vtime = 0;  // fair-share virtual counter: charged tokens / weight
  uint32_t q_head = kNone;
  uint32_t q_tail = kNone;
  uint32_t q_len = 0;
  uint32_t heap_version = 0;
  uint64_t skip_round = 0;
  std::array<int64_t, kNumQuotaWindows> quota_used{};
  std::array<int64_t, kNumQuotaWindows> quota_window{};
  int64_t served = 0;
  uint32_t open = 0;
  AdmissionCounters counters;
};

struct TokenPool::ResSlot {
  uint32_t ent = 0;
  uint32_t generation = 0;
  bool open = false;
  RequestCost cost;
  Time start;
  std::array<int64_t, kNumQuotaWindows> quota_window{};
};

struct TokenPool::QNode {
  uint64_t cookie = 0;
  RequestCost cost;
  Time enqueued;
  Time expiry;          // Time::Max(): never expires (a guaranteed request within guarantee)
  Time order_deadline;  // enqueued + max_queue_wait: the EDF key
  uint64_t seq = 0;
  uint32_t ent = 0;
  uint32_t prev = kNone;
  uint32_t next = kNone;
  uint32_t generation = 0;
  bool live = false;
  bool within = false;  // within its guarantee when queued
};

// ---------------------------------------------------------------------------------------------
// Config and construction.

Status PoolConfig::Validate() const {
  const std::string where = "pools[" + (name.empty() ? std::string("?") : name) + "]";
  if (name.empty()) return InvalidArgument(where + ".name: must not be empty");
  for (Dim d : kAllDims) {
    if (!(replica_capacity[d] > 0) || !std::isfinite(replica_capacity[d])) {
      return InvalidArgument(where + ".replica_capacity." + std::string(DimName(d)) +
                             ": must be > 0 (zero capacity serves nothing), got " +
                             MessageNumber(replica_capacity[d]));
    }
  }
  if (min_replicas < 0) return InvalidArgument(where + ".min_replicas: must be >= 0");
  if (max_replicas < 1) return InvalidArgument(where + ".max_replicas: must be >= 1");
  if (max_replicas < min_replicas) {
    return InvalidArgument(where + ".max_replicas: must be >= min_replicas (" +
                           std::to_string(min_replicas) + "), got " + std::to_string(max_replicas));
  }
  if (initial_replicas < min_replicas || initial_replicas > max_replicas) {
    return InvalidArgument(where + ".initial_replicas: must be within [min_replicas, " +
                           "max_replicas] = [" + std::to_string(min_replicas) + ", " +
                           std::to_string(max_replicas) + "], got " +
                           std::to_string(initial_replicas));
  }
  if (rate_window <= Duration::zero()) return InvalidArgument(where + ".rate_window: must be > 0");
  if (!(lending_min >= 0 && lending_min <= lending_max && lending_max <= 1)) {
    return InvalidArgument(where + ".lending: must satisfy 0 <= lending_min <= lending_max <= 1");
  }
  if (!(lending_decrease > 0 && lending_decrease < 1)) {
    return InvalidArgument(where + ".lending_decrease: must be in (0, 1)");
  }
  if (!(lending_recovery_per_s >= 0)) {
    return InvalidArgument(where + ".lending_recovery_per_s: must be >= 0");
  }
  if (!(at_risk_fraction >= 0 && at_risk_fraction <= 1)) {
    return InvalidArgument(where + ".at_risk_fraction: must be in [0, 1]");
  }
  if (!(debt_cap_tokens >= 0)) return InvalidArgument(where + ".debt_cap_tokens: must be >= 0");
  if (max_queued < 1) return InvalidArgument(where + ".max_queued: must be >= 1");
  for (int c = 0; c < kNumClasses; ++c) {
    if (auto o = FindQueueOrder(order[c]); !o.ok()) {
      return InvalidArgument(where + ".order." +
                             std::string(EntitlementClassName(static_cast<EntitlementClass>(c))) +
                             ": " + o.status().message());
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<TokenPool>> TokenPool::Create(const PoolConfig& config, const Clock& clock) {
  if (Status s = config.Validate(); !s.ok()) return s;
  return std::unique_ptr<TokenPool>(new TokenPool(config, clock));
}

TokenPool::TokenPool(const PoolConfig& config, const Clock& clock)
    : config_(config), clock_(clock) {
  replicas_ = config.initial_replicas;
  capacity_ = config.replica_capacity * replicas_;
  max_capacity_ = config.replica_capacity * config.max_replicas;
  inv_window_s_ = 1.0 / ToSeconds(config.rate_window);
  const Time now = clock_.Now();
  rate_at_ = lambda_at_ = last_decrease_ = last_refresh_ = now;
  lambda_ = config.lending_max;
  for (int c = 0; c < kNumClasses; ++c) orders_[c] = FindQueueOrder(config.order[c]).value();
}

TokenPool::~TokenPool() = default;

// ---------------------------------------------------------------------------------------------
// Metering and aggregates.

void TokenPool::DecayPool(Time now) {
  if (now > rate_at_) {
    rate_level_ *= std::exp(-ToSeconds(now - rate_at_) * inv_window_s_);
    rate_at_ = now;
  }
}

void TokenPool::DecayEnt(EntState& e, Time now) {
  if (now > e.rate_at) {
    e.rate_level *= std::exp(-ToSeconds(now - e.rate_at) * inv_window_s_);
    e.rate_at = now;
  }
}

void TokenPool::Retally(EntState& e) {
  const ResourceVector u{e.rate_level * inv_window_s_, e.kv_used, e.conc_used};
  const bool spot = e.spec.cls == EntitlementClass::kSpot;
  for (Dim d : kAllDims) {
    const double mx = std::max(u[d], e.g[d]);
    const double unused = std::max(0.0, e.g[d] - u[d]);
    agg_max_ug_[d] += mx - e.cached_max[d];
    agg_unused_[d] += unused - e.cached_unused[d];
    e.cached_max[d] = mx;
    e.cached_unused[d] = unused;
    const bool bursting = u[d] > e.g[d] + kEps;
    const int i = static_cast<int>(d);
    if (bursting != e.cached_bursting[i]) {
      ResourceVector& w = spot ? spot_burst_w_ : burst_w_;
      w[d] += bursting ? e.spec.weight : -e.spec.weight;
      e.cached_bursting[i] = bursting;
    }
    if (spot) spot_used_[d] += u[d] - e.cached_u[d];
  }
  e.cached_u = u;
}

void TokenPool::DropContribution(EntState& e) {
  agg_max_ug_ -= e.cached_max;
  agg_unused_ -= e.cached_unused;
  const bool spot = e.spec.cls == EntitlementClass::kSpot;
  for (Dim d : kAllDims) {
    if (e.cached_bursting[static_cast<int>(d)])
      (spot ? spot_burst_w_ : burst_w_)[d] -= e.spec.weight;
    if (spot) spot_used_[d] -= e.cached_u[d];
  }
  e.cached_u = e.cached_max = e.cached_unused = ResourceVector{};
  e.cached_bursting = {};
}

void TokenPool::FreeEntitlement(uint32_t index) {
  EntState& e = ents_[index];
  retired_counters_[e.spec.tenant] += e.counters;
  DropContribution(e);
  e.live = false;
  free_ents_.push_back(index);
}

void TokenPool::RefreshAll(Time now) {
  DecayPool(now);
  agg_max_ug_ = agg_unused_ = burst_w_ = spot_burst_w_ = spot_used_ = ResourceVector{};
  double level = 0;
  for (EntState& e : ents_) {
    if (!e.live) continue;
    DecayEnt(e, now);
    level += e.rate_level;
    e.cached_u = e.cached_max = e.cached_unused = ResourceVector{};
    e.cached_bursting = {};
    Retally(e);
  }
  rate_level_ = level;  // removes floating drift between the pool meter and the sum
  last_refresh_ = now;
}

void TokenPool::Advance(Time now) {
  if (guaranteed_waiting_ > 0) {
    if (now - last_decrease_ >= config_.lending_adjust_interval) {
      lambda_ = std::max(config_.lending_min, lambda_ * config_.lending_decrease);
      last_decrease_ = now;
    }
  } else if (now > lambda_at_) {
    lambda_ = std::min(config_.lending_max,
                       lambda_ + config_.lending_recovery_per_s * ToSeconds(now - lambda_at_));
  }
  lambda_at_ = now;
  if (now - last_refresh_ >= config_.refresh_interval) RefreshAll(now);
}

ResourceVector TokenPool::CostVector(const RequestCost& c) const {
  const double total = static_cast<double>(c.Total().v);
  return {total * inv_window_s_, total, 1.0};
}

double TokenPool::BurstWeight(const EntState& e, Dim d) const {
  const bool spot = e.spec.cls == EntitlementClass::kSpot;
  const double others = (spot ? spot_burst_w_ : burst_w_)[d];
  return others + (e.cached_bursting[static_cast<int>(d)] ? 0.0 : e.spec.weight);
}

double TokenPool::Ceiling(const EntState& e, Dim d) const {
  const double w = e.spec.weight / std::max(BurstWeight(e, d), e.spec.weight);
  if (e.spec.cls == EntitlementClass::kSpot) {
    // Spot shares only what is left after everyone else's usage and held-back guarantees.
    const double spare = capacity_[d] - agg_max_ug_[d] + lambda_ * agg_unused_[d];
    const double pool = std::max(0.0, spare + spot_used_[d]);
    return std::min(e.b[d], pool * w);
  }
  // Burst pool: capacity above all guarantees, plus the lent share of unused guarantees.
  const double pool = std::max(0.0, capacity_[d] - sum_g_[d] + lambda_ * agg_unused_[d]);
  return std::min(e.b[d], e.g[d] + pool * w);
}

bool TokenPool::WithinGuarantee(const EntState& e, const ResourceVector& c) const {
  if (e.spec.cls == EntitlementClass::kSpot) return false;
  return (e.cached_u + c).AllLe(e.g + ResourceVector{kEps, kEps, kEps});
}

TokenPool::FitResult TokenPool::TryFit(const EntState& e, const ResourceVector& c,
                                       bool in_order) const {
  // Spot is shed first: while guaranteed or elastic work waits on the pool (work that waits on
  // its own entitlement's cap does not need what spot would take).
  if (e.spec.cls == EntitlementClass::kSpot && (blocked_band_ < 2 || guaranteed_waiting_ > 0)) {
    return {Fit::kBlockedShed, Dim::kConcurrency};
  }
  const ResourceVector used{rate_level_ * inv_window_s_, kv_used_, conc_used_};
  for (Dim d : kAllDims) {
    if (used[d] + c[d] > capacity_[d] + kEps) return {Fit::kBlockedPool, d};
  }
  if (WithinGuarantee(e, c)) return {Fit::kWithin, Dim::kConcurrency};
  const ResourceVector u = e.cached_u;
  const ResourceVector u2 = u + c;
  for (Dim d : kAllDims) {
    // The static cap B is exact. The dynamic ceiling admits while usage is below it, so a
    // request may cross it by its own size (with whole slots, a weight share of 2.67 slots means
    // 3, not 2). A request taken from the queue in fair-share order is not held back by it: the
    // queue order already is the weighted share, and a ceiling that binds the most-owed tenant
    // would make the service gap grow without bound.
    if (u2[d] > e.b[d] + kEps || (!in_order && u[d] >= Ceiling(e, d) - kEps)) {
      return {Fit::kBlockedEntitlement, d};
    }
  }
  for (Dim d : kAllDims) {
    // term(x) = x + (1 - lambda) max(0, G - x): what e holds plus what is kept back for it.
    auto term = [&](double x) { return x + (1 - lambda_) * std::max(0.0, e.g[d] - x); };
    const double spare = capacity_[d] - agg_max_ug_[d] + lambda_ * agg_unused_[d];
    if (term(u2[d]) - term(u[d]) > spare + kEps) return {Fit::kBlockedPool, d};
  }
  return {Fit::kBurst, Dim::kConcurrency};
}

bool TokenPool::QuotaAllows(EntState& e, int64_t tokens, Time now, Duration* retry) const {
  for (int w = 0; w < kNumQuotaWindows; ++w) {
    const int64_t limit = e.spec.quotas.limit[w];
    if (limit == 0) continue;
    const int64_t idx = WindowIndex(now, w);
    if (e.quota_window[w] != idx) {
      e.quota_window[w] = idx;
      e.quota_used[w] = 0;
    }
    if (e.quota_used[w] + tokens > limit) {
      const int64_t len = QuotaWindowLength(static_cast<QuotaWindow>(w)).count();
      *retry = Duration((idx + 1) * len - now.nanos());
      return false;
    }
  }
  return true;
}

Duration TokenPool::RetryAfter(const EntState& e, const ResourceVector& c, Dim dim,
                               Time now) const {
  (void)now;
  double wait_s = 0;
  if (dim == Dim::kTokenRate) {
    // Time for the meter to decay enough: level * exp(-t / W) <= limit * W - cost.
    const double window_s = ToSeconds(config_.rate_window);
    const double cost = c.token_rate * window_s;
    auto decay_wait = [&](double level, double limit_rate) {
      const double target = limit_rate * window_s - cost;
      if (target <= 0) return window_s;
      return level > target ? window_s * std::log(level / target) : 0.0;
    };
    wait_s = std::max(decay_wait(rate_level_, capacity_.token_rate),
                      decay_wait(e.rate_level, Ceiling(e, Dim::kTokenRate)));
  } else {
    wait_s = mean_hold_s_;  // a held slot or KV frees after about one mean holding time
  }
  return Seconds(std::clamp(wait_s, 0.001, 3600.0));
}

// ---------------------------------------------------------------------------------------------
// Entitlement admission.

TokenPool::EntState* TokenPool::Get(EntitlementRef ref) {
  if (!ref.valid() || ref.index >= ents_.size()) return nullptr;
  EntState& e = ents_[ref.index];
  if (!e.live || e.generation != ref.generation) return nullptr;
  return &e;
}

Status TokenPool::CheckGuarantees(const EntitlementSpec& spec, const EntState* replacing) const {
  ResourceVector sum = spec.guarantee;
  for (const EntState& e : ents_) {
    if (!e.live || e.draining || &e == replacing) continue;
    sum += e.spec.guarantee;
  }
  for (Dim d : kAllDims) {
    if (sum[d] > max_capacity_[d] + kEps) {
      return FailedPrecondition(
          "entitlements[" + spec.name + "]: sum of guarantees would exceed pool \"" + config_.name +
          "\" at max_replicas=" + std::to_string(config_.max_replicas) + " on " +
          std::string(DimName(d)) + " by " + MessageNumber(sum[d] - max_capacity_[d]) + " (sum " +
          MessageNumber(sum[d]) + " > capacity " + MessageNumber(max_capacity_[d]) + ")");
    }
  }
  return Status::Ok();
}

Result<EntitlementRef> TokenPool::AddEntitlement(const EntitlementSpec& spec) {
  if (Status s = spec.Validate(); !s.ok()) return s;
  if (by_name_.count(spec.name) != 0) {
    return AlreadyExists("entitlements[" + spec.name + "]: already exists in pool \"" +
                         config_.name + "\"");
  }
  if (Status s = CheckGuarantees(spec, nullptr); !s.ok()) return s;
  return Insert(spec);
}

EntitlementRef TokenPool::Insert(const EntitlementSpec& spec) {
  uint32_t index;
  if (!free_ents_.empty()) {
    index = free_ents_.back();
    free_ents_.pop_back();
  } else {
    index = static_cast<uint32_t>(ents_.size());
    ents_.emplace_back();
  }
  EntState& e = ents_[index];
  const uint32_t generation = e.generation + 1;
  const uint32_t heap_version = e.heap_version + 1;
  e = EntState{};
  e.generation = generation;
  e.heap_version = heap_version;
  e.live = true;
  e.spec = spec;
  e.g = spec.guarantee;
  e.b = spec.burst;
  e.rate_at = clock_.Now();
  e.vtime = v_floor_;  // a newcomer starts at the reference: no banked credit
  sum_g_ += e.g;
  Retally(e);
  by_name_.emplace(spec.name, index);
  return EntitlementRef{index, generation};
}

Status TokenPool::UpdateEntitlement(EntitlementRef ref, const EntitlementSpec& spec) {
  EntState* e = Get(ref);
  if (e == nullptr || e->draining) return NotFound("entitlement: unknown or removed");
  if (Status s = spec.Validate(); !s.ok()) return s;
  if (spec.name != e->spec.name && by_name_.count(spec.name) != 0) {
    return AlreadyExists("entitlements[" + spec.name + "]: already exists in pool \"" +
                         config_.name + "\"");
  }
  if (Status s = CheckGuarantees(spec, e); !s.ok()) return s;
  Change(ref.index, spec);
  return Status::Ok();
}

void TokenPool::Change(uint32_t index, const EntitlementSpec& spec) {
  EntState* e = &ents_[index];
  const Time now = clock_.Now();
  DecayEnt(*e, now);
  if (spec.name != e->spec.name) {
    by_name_.erase(e->spec.name);
    by_name_.emplace(spec.name, index);
  }
  if (spec.cls != e->spec.cls && e->q_len > 0) {
    queued_by_class_[static_cast<int>(e->spec.cls)] -= e->q_len;
    queued_by_class_[static_cast<int>(spec.cls)] += e->q_len;
  }
  // Drop the old contribution fully (class and weight may change), then add the new one.
  DropContribution(*e);
  sum_g_ -= e->g;
  e->spec = spec;
  e->g = spec.guarantee;
  e->b = spec.burst;
  sum_g_ += e->g;
  Retally(*e);
  PushHeaps(index, now);
}

Status TokenPool::CheckEntitlementSet(std::span<const EntitlementSpec> specs) const {
  ResourceVector sum;
  std::unordered_set<std::string_view> names;
  for (const EntitlementSpec& spec : specs) {
    if (Status s = spec.Validate(); !s.ok()) return s;
    if (!names.insert(spec.name).second) {
      return AlreadyExists("entitlements[" + spec.name + "]: twice in pool \"" + config_.name +
                           "\"");
    }
    sum += spec.guarantee;
  }
  for (Dim d : kAllDims) {
    if (sum[d] > max_capacity_[d] + kEps) {
      return FailedPrecondition(
          "entitlements: sum of guarantees would exceed pool \"" + config_.name +
          "\" at max_replicas=" + std::to_string(config_.max_replicas) + " on " +
          std::string(DimName(d)) + " by " + MessageNumber(sum[d] - max_capacity_[d]) + " (sum " +
          MessageNumber(sum[d]) + " > capacity " + MessageNumber(max_capacity_[d]) + ")");
    }
  }
  return Status::Ok();
}

Status TokenPool::ReplaceEntitlements(std::span<const EntitlementSpec> specs) {
  if (Status s = CheckEntitlementSet(specs); !s.ok()) return s;
  std::unordered_set<std::string_view> wanted;
  for (const EntitlementSpec& spec : specs) wanted.insert(spec.name);
  for (const EntitlementRef ref : Entitlements()) {
    if (wanted.count(ents_[ref.index].spec.name) == 0) (void)RemoveEntitlement(ref);
  }
  // Each step unchecked: the whole set fits, whatever the sums on the way.
  for (const EntitlementSpec& spec : specs) {
    auto it = by_name_.find(spec.name);
    if (it != by_name_.end()) {
      Change(it->second, spec);
    } else {
      (void)Insert(spec);
    }
  }
  return Status::Ok();
}

Status TokenPool::RemoveEntitlement(EntitlementRef ref) {
  EntState* e = Get(ref);
  if (e == nullptr || e->draining) return NotFound("entitlement: unknown or already removed");
  by_name_.erase(e->spec.name);
  while (e->q_head != kNone) {  // refused as cancelled (Dispatch's events), counted as Cancel
    const uint32_t node = e->q_head;
    cancelled_cookies_.push_back(nodes_[node].cookie);
    ++counters_.outcomes[static_cast<int>(AdmissionOutcome::kCancelled)];
    ++e->counters.outcomes[static_cast<int>(AdmissionOutcome::kCancelled)];
    Unlink(node);
  }
  e->draining = true;
  sum_g_ -= e->g;
  e->g = ResourceVector{};
  e->b = ResourceVector{};
  Retally(*e);
  if (e->open == 0) FreeEntitlement(ref.index);
  return Status::Ok();
}

Result<EntitlementRef> TokenPool::Find(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  if (it == by_name_.end()) {
    return NotFound("entitlement \"" + std::string(name) + "\" not found in pool \"" +
                    config_.name + "\"");
  }
  return EntitlementRef{it->second, ents_[it->second].generation};
}

std::vector<EntitlementRef> TokenPool::Entitlements() const {
  std::vector<EntitlementRef> out;
  for (uint32_t i = 0; i < ents_.size(); ++i) {
    if (ents_[i].live && !ents_[i].draining) out.push_back({i, ents_[i].generation});
  }
  return out;
}

std::vector<EntitlementRef> TokenPool::DrainingEntitlements() const {
  std::vector<EntitlementRef> out;
  for (uint32_t i = 0; i < ents_.size(); ++i) {
    if (ents_[i].live && ents_[i].draining) out.push_back({i, ents_[i].generation});
  }
  return out;
}

Status TokenPool::SetLease(EntitlementRef ref, const ResourceVector& guarantee,
                           const ResourceVector& burst) {
  EntState* e = Get(ref);
  if (e == nullptr || e->draining) return NotFound("entitlement: unknown or removed");
  if (guarantee.AnyNegative() || !guarantee.AllLe(burst)) {
    return InvalidArgument("lease: must satisfy 0 <= guarantee <= burst on every dimension");
  }
  DecayEnt(*e, clock_.Now());
  sum_g_ += guarantee - e->g;
  e->g = guarantee;
  e->b = burst;
  Retally(*e);
  return Status::Ok();
}

Status TokenPool::SetReplicas(int32_t n) {
  if (n < config_.min_replicas || n > config_.max_replicas) {
    return OutOfRange("pools[" + config_.name + "].replicas: must be within [" +
                      std::to_string(config_.min_replicas) + ", " +
                      std::to_string(config_.max_replicas) + "], got " + std::to_string(n));
  }
  replicas_ = n;
  capacity_ = config_.replica_capacity * n;
  return Status::Ok();
}

Status TokenPool::SetReplicaRange(int32_t min_replicas, int32_t max_replicas, int32_t replicas) {
  PoolConfig next = config_;
  next.min_replicas = min_replicas;
  next.max_replicas = max_replicas;
  next.initial_replicas = replicas;
  if (Status s = next.Validate(); !s.ok()) return s;
  const ResourceVector max_capacity = next.replica_capacity * max_replicas;
  ResourceVector sum;
  for (const EntState& e : ents_) {
    if (e.live && !e.draining) sum += e.spec.guarantee;
  }
  for (Dim d : kAllDims) {
    if (sum[d] > max_capacity[d] + kEps) {
      return FailedPrecondition(
          "pools[" + config_.name + "].max_replicas: " + std::to_string(max_replicas) +
          " cannot hold the guarantees in force on " + std::string(DimName(d)) + ": short by " +
          MessageNumber(sum[d] - max_capacity[d]) + " (sum " + MessageNumber(sum[d]) +
          " > capacity " + MessageNumber(max_capacity[d]) + ")");
    }
  }
  config_.min_replicas = min_replicas;
  config_.max_replicas = max_replicas;
  max_capacity_ = max_capacity;
  replicas_ = replicas;
  capacity_ = config_.replica_capacity * replicas;
  return Status::Ok();
}

void TokenPool::SetCapacity(const ResourceVector& capacity) {
  capacity_ = ResourceVector::Max(capacity, ResourceVector{});
}

// ---------------------------------------------------------------------------------------------
// Request admission.

void TokenPool::ChargeService(EntState& e, double tokens) {
  e.vtime += tokens / e.spec.weight;
  e.served += static_cast<int64_t>(tokens);
}

Reservation TokenPool::Take(uint32_t ent_index, const RequestCost& cost, Time now, bool at_risk) {
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  EntState& e = ents_[ent_index];
  ResSlot& s = slots_[slot];
  s.ent = ent_index;
  s.open = true;
  s.cost = cost;
  s.start = now;
  const double total = static_cast<double>(cost.Total().v);
  e.kv_used += total;
  e.conc_used += 1;
  e.rate_level += total;
  kv_used_ += total;
  conc_used_ += 1;
  rate_level_ += total;
  for (int w = 0; w < kNumQuotaWindows; ++w) {
    s.quota_window[w] = e.quota_window[w];
    if (e.spec.quotas.limit[w] != 0) e.quota_used[w] += cost.Total().v;
  }
  // The reference moves with service in debt order only: a low-weight tenant served early
  // because it was at risk can be far ahead in virtual time, and with it as the reference a
  // tenant that starts queueing (lifted to v_floor_ - debt_cap / w) or a newcomer (starting at
  // v_floor_) waited until the others caught up (a probe: weight 0.001 beside 1, a newcomer
  // starved for 60-90 s).
  if (e.spec.cls == EntitlementClass::kElastic && !at_risk) v_floor_ = std::max(v_floor_, e.vtime);
  ChargeService(e, total);
  ++e.open;
  ++open_reservations_;
  Retally(e);
  return Reservation(this, slot, s.generation);
}

Decision TokenPool::Admit(EntitlementRef ref, const RequestCost& cost, uint64_t cookie) {
  Decision d;
  const Time now = clock_.Now();
  EntState* ep = Get(ref);
  if (ep == nullptr || ep->draining) {
    d.outcome = AdmissionOutcome::kRejectedUnknownEntitlement;
    ++counters_.outcomes[static_cast<int>(d.outcome)];
    return d;
  }
  EntState& e = *ep;
  Advance(now);
  auto finish = [&](AdmissionOutcome o) {
    d.outcome = o;
    ++counters_.outcomes[static_cast<int>(o)];
    ++e.counters.outcomes[static_cast<int>(o)];
    return std::move(d);
  };
  const ResourceVector c = CostVector(cost);
  for (Dim dim : kAllDims) {
    if (c[dim] > e.b[dim] + kEps || c[dim] > max_capacity_[dim] + kEps) {
      d.limiting_dim = dim;
      return finish(AdmissionOutcome::kRejectedTooLarge);
    }
  }
  if (!QuotaAllows(e, cost.Total().v, now, &d.retry_after)) {
    return finish(AdmissionOutcome::kRejectedQuota);
  }
  DecayPool(now);
  DecayEnt(e, now);
  Retally(e);

  const int band = static_cast<int>(e.spec.cls);
  const bool within = WithinGuarantee(e, c);
  // It queues behind work of its band or above that waits on the pool (strict priority, and
  // the band's order), and behind its own entitlement's queue (FIFO); else it is tried. Work
  // queued only on its own entitlement's cap holds no one back (it made a near-idle pool refuse
  // "saturated"). A request within its guarantee is tried whatever waits: the guarantee is
  // capacity kept for it (a guaranteed tenant's requests waited behind another tenant's queued
  // burst, with the pool half idle).
  const bool behind = e.q_len > 0 || (blocked_band_ <= band && !within);
  FitResult fit{Fit::kBlockedPool, Dim::kConcurrency};
  if (!behind || e.spec.cls == EntitlementClass::kSpot) {
    fit = TryFit(e, c, /*in_order=*/false);
    if (fit.fit == Fit::kWithin || fit.fit == Fit::kBurst) {
      d.reservation = Take(ref.index, cost, now);
      return finish(fit.fit == Fit::kWithin ? AdmissionOutcome::kAdmittedGuaranteed
                                            : AdmissionOutcome::kAdmittedBurst);
    }
  }
  // It waits, or is refused. A guaranteed request within its guarantee always waits.
  const bool never_refuse = within && e.spec.cls == EntitlementClass::kGuaranteed;
  d.limiting_dim = fit.dim;
  if (fit.fit == Fit::kBlockedShed) {
    d.retry_after = Seconds(std::clamp(mean_hold_s_, 0.001, 3600.0));
    return finish(AdmissionOutcome::kRejectedSpotShed);
  }
  if (!never_refuse) {
    if (e.spec.slo.max_queue_wait <= Duration::zero()) {
      d.retry_after = RetryAfter(e, c, fit.dim, now);
      return finish(fit.fit == Fit::kBlockedEntitlement ? AdmissionOutcome::kRejectedOverEntitlement
                                                        : AdmissionOutcome::kRejectedPoolSaturated);
    }
    if (queued_total_ >= config_.max_queued) {
      d.retry_after = Seconds(std::clamp(mean_hold_s_, 0.001, 3600.0));
      return finish(AdmissionOutcome::kRejectedQueueFull);
    }
  }
  if (!behind && fit.fit == Fit::kBlockedPool) blocked_band_ = std::min(blocked_band_, band);
  Enqueue(e, ref.index, cost, cookie, now, within, &d);
  return finish(AdmissionOutcome::kQueued);
}

// ---------------------------------------------------------------------------------------------
// Queue.

void TokenPool::LiftOnBacklog(EntState& e) {
  if (e.spec.cls != EntitlementClass::kElastic) return;
  // No banked credit beyond the cap: like VTC's counter lift.
  e.vtime = std::max(e.vtime, v_floor_ - config_.debt_cap_tokens / e.spec.weight);
}

void TokenPool::Enqueue(EntState& e, uint32_t ent_index, const RequestCost& cost, uint64_t cookie,
                        Time now, bool within, Decision* d) {
  uint32_t node;
  if (!free_nodes_.empty()) {
    node = free_nodes_.back();
    free_nodes_.pop_back();
  } else {
    node = static_cast<uint32_t>(nodes_.size());
    nodes_.emplace_back();
  }
  QNode& n = nodes_[node];
  n.cookie = cookie;
  n.cost = cost;
  n.enqueued = now;
  n.order_deadline = now + e.spec.slo.max_queue_wait;
  const bool never_expires = within && e.spec.cls == EntitlementClass::kGuaranteed;
  n.expiry = never_expires ? Time::Max() : n.order_deadline;
  n.seq = enqueue_seq_++;
  n.ent = ent_index;
  n.live = true;
  n.within = within;
  n.next = kNone;
  n.prev = e.q_tail;
  if (e.q_tail != kNone) nodes_[e.q_tail].next = node;
  e.q_tail = node;
  if (e.q_head == kNone) e.q_head = node;
  ++e.q_len;
  ++queued_by_class_[static_cast<int>(e.spec.cls)];
  ++queued_total_;
  if (within) ++guaranteed_waiting_;
  queued_cost_ += CostVector(cost);
  if (n.expiry != Time::Max()) {
    expiry_.push_back({n.expiry.nanos(), node, n.generation});
    std::push_heap(expiry_.begin(), expiry_.end(), [](const ExpiryEntry& a, const ExpiryEntry& b) {
      return a.deadline_ns > b.deadline_ns;
    });
  }
  if (e.q_len == 1) {
    ++backlogged_ents_;
    LiftOnBacklog(e);
    PushHeaps(ent_index, now);
  }
  d->ticket = QueueTicket{node, n.generation};
  d->deadline = n.expiry;
}

void TokenPool::Unlink(uint32_t node) {
  QNode& n = nodes_[node];
  EntState& e = ents_[n.ent];
  const bool was_head = e.q_head == node;
  if (n.prev != kNone)
    nodes_[n.prev].next = n.next;
  else
    e.q_head = n.next;
  if (n.next != kNone)
    nodes_[n.next].prev = n.prev;
  else
    e.q_tail = n.prev;
  --e.q_len;
  --queued_by_class_[static_cast<int>(e.spec.cls)];
  --queued_total_;
  if (n.within) --guaranteed_waiting_;
  queued_cost_ -= CostVector(n.cost);
  n.live = false;
  ++n.generation;
  free_nodes_.push_back(node);
  if (e.q_len == 0) {
    --backlogged_ents_;
    ++e.heap_version;  // invalidates its heap entries
    queued_cost_ = queued_total_ == 0 ? ResourceVector{} : queued_cost_;
  } else if (was_head) {
    PushHeaps(n.ent, clock_.Now());
  }
}

void TokenPool::PushHeaps(uint32_t ent_index, Time now) {
  (void)now;
  EntState& e = ents_[ent_index];
  ++e.heap_version;
  if (e.q_len == 0) return;
  const QNode& head = nodes_[e.q_head];
  const double prio = -static_cast<double>(e.spec.priority);
  auto push = [&](Heap& h, double k1, double k2) {
    h.push_back({k1, k2, ent_index, e.heap_version});
    std::push_heap(h.begin(), h.end(), HeapEntryGreater());
  };
  const int band = static_cast<int>(e.spec.cls);
  const QueueHead view{e.vtime, head.order_deadline, head.enqueued, head.seq};
  push(band_heaps_[band], prio, orders_[band]->Key(view));
  if (e.spec.cls == EntitlementClass::kElastic) {
    const double wait_s = ToSeconds(e.spec.slo.max_queue_wait);
    push(heap_risk_, head.enqueued.seconds() + (1 - config_.at_risk_fraction) * wait_s, 0);
  }
  const size_t limit = 4 * static_cast<size_t>(backlogged_ents_) + 64;
  size_t entries = heap_risk_.size();
  for (const Heap& h : band_heaps_) entries += h.size();
  if (entries > 4 * limit) {
    CompactHeaps();
  }
}

void TokenPool::CompactHeaps() {
  auto compact = [&](Heap& h) {
    std::erase_if(h, [&](const HeapEntry& x) {
      const EntState& e = ents_[x.ent];
      return !e.live || e.q_len == 0 || x.version != e.heap_version;
    });
    std::make_heap(h.begin(), h.end(), HeapEntryGreater());
  };
  for (Heap& h : band_heaps_) compact(h);
  compact(heap_risk_);
}

// Finds the next entitlement of `band` to serve, popping stale entries. Entitlements skipped in
// this Dispatch round (blocked by their own ceiling) are popped and remembered for re-push.
bool TokenPool::PeekBand(int band, Time now, uint32_t* ent_index) {
  auto top_valid = [&](Heap& h, uint32_t* out) {
    while (!h.empty()) {
      const HeapEntry& x = h.front();
      EntState& e = ents_[x.ent];
      const bool stale = !e.live || e.q_len == 0 || x.version != e.heap_version;
      if (!stale && e.skip_round != dispatch_round_) {
        *out = x.ent;
        return true;
      }
      std::pop_heap(h.begin(), h.end(), HeapEntryGreater());
      h.pop_back();
    }
    return false;
  };
  switch (band) {
    case 0:
      return top_valid(band_heaps_[0], ent_index);
    case 1: {
      uint32_t owed;
      if (!top_valid(band_heaps_[1], &owed)) return false;
      // An at-risk request goes first, but its tenant may run at most debt_cap_tokens ahead of
      // the most-owed backlogged tenant: it repays later, and under sustained overload (when
      // every request is at risk) the order stays weighted instead of becoming FIFO.
      // Priority first: an at-risk request of a lower priority does not pass the top's (under
      // sustained overload every request is at risk, and priority had stopped counting).
      uint32_t risky;
      if (top_valid(heap_risk_, &risky) && heap_risk_.front().k1 <= now.seconds()) {
        const EntState& r = ents_[risky];
        if (r.spec.priority >= ents_[owed].spec.priority &&
            r.spec.weight * (r.vtime - ents_[owed].vtime) <= config_.debt_cap_tokens) {
          *ent_index = risky;
          at_risk_pick_ = risky != owed;
          return true;
        }
      }
      *ent_index = owed;
      at_risk_pick_ = false;
      return true;
    }
    default:
      return top_valid(band_heaps_[2], ent_index);
  }
}

bool TokenPool::Cancel(QueueTicket ticket) {
  if (!ticket.valid() || ticket.node >= nodes_.size()) return false;
  QNode& n = nodes_[ticket.node];
  if (!n.live || n.generation != ticket.generation) return false;
  EntState& e = ents_[n.ent];
  ++counters_.outcomes[static_cast<int>(AdmissionOutcome::kCancelled)];
  ++e.counters.outcomes[static_cast<int>(AdmissionOutcome::kCancelled)];
  Unlink(ticket.node);
  return true;
}

size_t TokenPool::Dispatch(std::vector<QueueEvent>* events) {
  const Time now = clock_.Now();
  Advance(now);
  DecayPool(now);
  const size_t before = events->size();
  for (uint64_t cookie : cancelled_cookies_) {
    QueueEvent ev;
    ev.cookie = cookie;
    ev.outcome = AdmissionOutcome::kCancelled;
    events->push_back(std::move(ev));
  }
  cancelled_cookies_.clear();

  // Expire what has waited past its deadline.
  auto later = [](const ExpiryEntry& a, const ExpiryEntry& b) {
    return a.deadline_ns > b.deadline_ns;
  };
  while (!expiry_.empty() && expiry_.front().deadline_ns <= now.nanos()) {
    const ExpiryEntry x = expiry_.front();
    std::pop_heap(expiry_.begin(), expiry_.end(), later);
    expiry_.pop_back();
    QNode& n = nodes_[x.node];
    if (!n.live || n.generation != x.generation) continue;
    EntState& e = ents_[n.ent];
    QueueEvent ev;
    ev.cookie = n.cookie;
    ev.outcome = AdmissionOutcome::kExpired;
    ev.waited = now - n.enqueued;
    ev.retry_after = Seconds(std::clamp(mean_hold_s_, 0.001, 3600.0));
    ++counters_.outcomes[static_cast<int>(AdmissionOutcome::kExpired)];
    ++e.counters.outcomes[static_cast<int>(AdmissionOutcome::kExpired)];
    Unlink(x.node);
    events->push_back(std::move(ev));
  }

  // Admit in band order while requests fit. A request blocked by the pool stops everything
  // below it (strict priority); one blocked by its own ceiling only skips its entitlement. In
  // the guaranteed band, a burst request blocked by the pool lets the band's requests within
  // their guarantees past (their capacity is kept for them), no other burst request, and then
  // stops the bands below.
  const uint64_t round = ++dispatch_round_;  // skip marker unique to this call
  skipped_.clear();
  bool stop = false;
  blocked_band_ = kNumClasses;
  for (int band = 0; band < kNumClasses && !stop; ++band) {
    uint32_t idx;
    bool burst_blocked = false;
    while (PeekBand(band, now, &idx)) {
      const bool at_risk = std::exchange(at_risk_pick_, false);
      EntState& e = ents_[idx];
      const uint32_t node = e.q_head;
      const RequestCost cost = nodes_[node].cost;
      DecayEnt(e, now);
      Retally(e);
      const FitResult fit = TryFit(e, CostVector(cost), /*in_order=*/true);
      // Guaranteed band only: there a guarantee is a promise kept whatever waits; in the
      // elastic band the debt order decides, guarantees included (when capacity drops below
      // them, fair share absorbs the shortfall: E3's equal shares through the outage).
      const bool blocked_burst =
          band == 0 && fit.fit == Fit::kBlockedPool && !WithinGuarantee(e, CostVector(cost));
      if (blocked_burst || (burst_blocked && fit.fit == Fit::kBurst)) {
        burst_blocked = true;
        e.skip_round = round;
        skipped_.push_back({0, 0, idx, 0});
        continue;
      }
      if (fit.fit == Fit::kWithin || fit.fit == Fit::kBurst) {
        QueueEvent ev;
        ev.cookie = nodes_[node].cookie;
        ev.waited = now - nodes_[node].enqueued;
        Duration retry{};
        if (!QuotaAllows(e, cost.Total().v, now, &retry)) {
          ev.outcome = AdmissionOutcome::kRejectedQuota;
          ev.retry_after = retry;
        } else {
          ev.outcome = fit.fit == Fit::kWithin ? AdmissionOutcome::kAdmittedGuaranteed
                                               : AdmissionOutcome::kAdmittedBurst;
          ev.reservation = Take(idx, cost, now, at_risk);
          ++counters_.dispatched;
          ++e.counters.dispatched;
        }
        // After Take: the next head is keyed once, with the counter the charge just moved.
        Unlink(node);
        ++counters_.outcomes[static_cast<int>(ev.outcome)];
        ++e.counters.outcomes[static_cast<int>(ev.outcome)];
        events->push_back(std::move(ev));
        continue;
      }
      if (fit.fit == Fit::kBlockedEntitlement) {
        e.skip_round = round;
        skipped_.push_back({0, 0, idx, 0});
        continue;
      }
      stop = true;
      break;
    }
    if (burst_blocked) stop = true;
    if (stop) blocked_band_ = band;
  }
  ++dispatch_round_;  // no entitlement is skipped outside this loop
  for (const HeapEntry& s : skipped_) PushHeaps(s.ent, now);
  return events->size() - before;
}

size_t TokenPool::SpotPreemptionCandidates(std::vector<uint64_t>* ids) {
  if (guaranteed_waiting_ == 0) return 0;
  const Time now = clock_.Now();
  uint32_t idx;
  if (!PeekBand(0, now, &idx)) return 0;
  DecayPool(now);
  const ResourceVector c = CostVector(nodes_[ents_[idx].q_head].cost);
  const ResourceVector used{rate_level_ * inv_window_s_, kv_used_, conc_used_};
  ResourceVector need;
  for (Dim d : kAllDims) need[d] = std::max(0.0, used[d] + c[d] - capacity_[d]);
  if (need.IsZero()) return 0;  // it fits physically: it waits for lending, not for spot
  // Open spot reservations, newest first.
  std::vector<uint32_t> spot;
  for (uint32_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].open && ents_[slots_[i].ent].spec.cls == EntitlementClass::kSpot) {
      spot.push_back(i);
    }
  }
  std::sort(spot.begin(), spot.end(),
            [&](uint32_t a, uint32_t b) { return slots_[a].start > slots_[b].start; });
  ResourceVector freed;
  const size_t before = ids->size();
  for (uint32_t i : spot) {
    const ResSlot& r = slots_[i];
    const double total = static_cast<double>(r.cost.Total().v);
    const double decay = std::exp(-ToSeconds(now - r.start) * inv_window_s_);
    freed += ResourceVector{total * decay * inv_window_s_, total, 1};
    ids->push_back((static_cast<uint64_t>(r.generation) << 32) | i);
    if (need.AllLe(freed)) return ids->size() - before;
  }
  ids->resize(before);  // even all of spot would not make room
  return 0;
}

Time TokenPool::NextWakeup() {
  Time t = Time::Max();
  auto later = [](const ExpiryEntry& a, const ExpiryEntry& b) {
    return a.deadline_ns > b.deadline_ns;
  };
  while (!expiry_.empty()) {
    const ExpiryEntry& x = expiry_.front();
    const QNode& n = nodes_[x.node];
    if (n.live && n.generation == x.generation) {
      t = Time::FromNanos(x.deadline_ns);
      break;
    }
    std::pop_heap(expiry_.begin(), expiry_.end(), later);
    expiry_.pop_back();
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// Settle and release.

void TokenPool::CloseSlot(uint32_t slot, const Usage* actual) {
  ResSlot& s = slots_[slot];
  assert(s.open && "reservation closed twice");
  EntState& e = ents_[s.ent];
  const Time now = clock_.Now();
  DecayPool(now);
  DecayEnt(e, now);
  const double est = static_cast<double>(s.cost.Total().v);
  e.kv_used -= est;
  e.conc_used -= 1;
  kv_used_ -= est;
  conc_used_ -= 1;
  // The charge has decayed since admission; correct it as if the right amount had been charged
  // then: delta x exp(-age / window).
  const double age_decay = std::exp(-ToSeconds(now - s.start) * inv_window_s_);
  const double delta = actual ? static_cast<double>(actual->Total().v) - est : -est;
  const double applied = std::max(-e.rate_level, delta * age_decay);
  e.rate_level += applied;
  rate_level_ = std::max(0.0, rate_level_ + applied);
  const int64_t delta_tokens = static_cast<int64_t>(delta);
  for (int w = 0; w < kNumQuotaWindows; ++w) {
    if (e.spec.quotas.limit[w] == 0) continue;
    if (e.quota_window[w] == s.quota_window[w]) {
      e.quota_used[w] = std::max<int64_t>(0, e.quota_used[w] + delta_tokens);
    } else if (delta_tokens > 0 && e.quota_window[w] == WindowIndex(now, w)) {
      e.quota_used[w] += delta_tokens;  // overrun lands in the window where it is learned
    }
  }
  ChargeService(e, delta);
  if (actual != nullptr) {
    ++counters_.settled;
    ++e.counters.settled;
    counters_.prompt_tokens += actual->prompt.v;
    counters_.completion_tokens += actual->completion.v;
    e.counters.prompt_tokens += actual->prompt.v;
    e.counters.completion_tokens += actual->completion.v;
    // 0.05: the hint follows changes in service time over ~20 completions.
    mean_hold_s_ += 0.05 * (ToSeconds(now - s.start) - mean_hold_s_);
  } else {
    ++counters_.released;
    ++e.counters.released;
  }
  s.open = false;
  ++s.generation;
  free_slots_.push_back(slot);
  --e.open;
  --open_reservations_;
  Retally(e);
  if (e.q_len > 0 && orders_[static_cast<int>(e.spec.cls)]->UsesVirtualTime()) {
    PushHeaps(s.ent, now);  // its counter moved
  }
  if (e.draining && e.open == 0) FreeEntitlement(s.ent);
}

Reservation::Reservation(Reservation&& o) noexcept
    : pool_(o.pool_), slot_(o.slot_), generation_(o.generation_) {
  o.pool_ = nullptr;
}

Reservation& Reservation::operator=(Reservation&& o) noexcept {
  if (this != &o) {
    Release();
    pool_ = o.pool_;
    slot_ = o.slot_;
    generation_ = o.generation_;
    o.pool_ = nullptr;
  }
  return *this;
}

void Reservation::Settle(const Usage& actual) {
  if (pool_ == nullptr) return;
  TokenPool* p = pool_;
  pool_ = nullptr;
  p->CloseSlot(slot_, &actual);
}

void Reservation::Release() {
  if (pool_ == nullptr) return;
  TokenPool* p = pool_;
  pool_ = nullptr;
  p->CloseSlot(slot_, nullptr);
}

uint64_t Reservation::id() const {
  if (pool_ == nullptr) return 0;
  return (static_cast<uint64_t>(generation_) << 32) | slot_;
}

EntitlementRef Reservation::entitlement() const {
  if (pool_ == nullptr) return {};
  const uint32_t ent = pool_->slots_[slot_].ent;
  return {ent, pool_->ents_[ent].generation};
}

// ---------------------------------------------------------------------------------------------
// Introspection.

ResourceVector TokenPool::InUse() {
  DecayPool(clock_.Now());
  return {rate_level_ * inv_window_s_, kv_used_, conc_used_};
}

double TokenPool::Utilization() {
  const ResourceVector u = InUse();
  double m = 0;
  for (Dim d : kAllDims) m = std::max(m, u[d] / capacity_[d]);
  return m;
}

PoolSnapshot TokenPool::Snapshot() {
  const Time now = clock_.Now();
  Advance(now);
  PoolSnapshot s;
  s.name = config_.name;
  s.replicas = replicas_;
  s.capacity = capacity_;
  s.max_capacity = max_capacity_;
  s.in_use = InUse();
  s.guarantees = sum_g_;
  s.queued_demand = queued_cost_;
  for (Dim d : kAllDims) {
    s.spare[d] = std::max(0.0, capacity_[d] - agg_max_ug_[d] + lambda_ * agg_unused_[d]);
  }
  s.lending_factor = lambda_;
  s.queued = queued_total_;
  s.guaranteed_waiting = guaranteed_waiting_;
  s.open_reservations = open_reservations_;
  s.counters = counters_;
  return s;
}

Result<EntitlementSnapshot> TokenPool::SnapshotEntitlement(EntitlementRef ref) {
  EntState* ep = Get(ref);
  if (ep == nullptr) return NotFound("entitlement: unknown");
  EntState& e = *ep;
  const Time now = clock_.Now();
  Advance(now);
  DecayEnt(e, now);
  Retally(e);
  EntitlementSnapshot s;
  s.name = e.spec.name;
  s.tenant = e.spec.tenant;
  s.cls = e.spec.cls;
  s.guarantee = e.g;
  s.burst = e.b;
  s.in_use = e.cached_u;
  for (Dim d : kAllDims) s.burst_ceiling[d] = Ceiling(e, d);
  s.debt_tokens = e.spec.weight * (v_floor_ - e.vtime);
  s.virtual_tokens = e.vtime;
  s.queued = e.q_len;
  for (int w = 0; w < kNumQuotaWindows; ++w) {
    const int64_t limit = e.spec.quotas.limit[w];
    if (limit == 0) {
      s.quota_remaining[w] = -1;
    } else {
      const int64_t used = e.quota_window[w] == WindowIndex(now, w) ? e.quota_used[w] : 0;
      s.quota_remaining[w] = std::max<int64_t>(0, limit - used);
    }
  }
  s.served_tokens = e.served;
  s.counters = e.counters;
  s.draining = e.draining;
  return s;
}

std::vector<TenantSnapshot> TokenPool::SnapshotTenants() {
  std::map<std::string, TenantSnapshot, std::less<>> by;
  for (const auto& [tenant, c] : retired_counters_) by[tenant].counters += c;
  for (uint32_t i = 0; i < ents_.size(); ++i) {
    if (!ents_[i].live) continue;
    const Result<EntitlementSnapshot> e = SnapshotEntitlement({i, ents_[i].generation});
    TenantSnapshot& t = by[e->tenant];
    t.counters += e->counters;
    t.in_use += e->in_use;
    t.queued += e->queued;
  }
  std::vector<TenantSnapshot> out;
  out.reserve(by.size());
  for (auto& [tenant, t] : by) {
    t.tenant = tenant;
    out.push_back(std::move(t));
  }
  return out;
}

AdmissionCounters& AdmissionCounters::operator+=(const AdmissionCounters& o) {
  for (size_t i = 0; i < outcomes.size(); ++i) outcomes[i] += o.outcomes[i];
  dispatched += o.dispatched;
  settled += o.settled;
  released += o.released;
  prompt_tokens += o.prompt_tokens;
  completion_tokens += o.completion_tokens;
  return *this;
}

}  // namespace tokenpool
