// The event loop of the fleet simulator: arrivals, the gateway path, engine steps, capacity
// changes, autoscaling and sampling on one EventQueue. See simulator.h.

#include "sim/simulator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/engine.h"
#include "sim/admission_policy.h"
#include "sim/arrivals.h"
#include "sim/event_queue.h"
#include "sim/rng.h"
#include "tokenpool/clock.h"
#include "tokenpool/planner.h"

namespace tokenpool::sim {
namespace {

constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
constexpr double kInf = std::numeric_limits<double>::infinity();
// An engine step that could not schedule anything (it only preempted) is retried after this:
// the next real iteration would start no earlier.
constexpr Duration kEmptyStepRetry = Milliseconds(1);

struct Instance {
  std::unique_ptr<engine::Engine> engine;
  engine::StepResult step;
  uint32_t generation = 0;
  bool alive = true;  // starting, serving or draining
  bool ready = false;
  bool draining = false;
  bool stepping = false;
  int64_t outstanding_tokens = 0;  // prompt + output of the requests on it
  int64_t reserved_kv = 0;         // same, the KV they may hold at their longest
  int64_t requests = 0;
  int32_t owner = -1;            // dedicated endpoints: the tenant it serves; -1: shared
  std::vector<int64_t> started;  // requests started here, per tenant
};

struct PoolState {
  const PoolSpec* spec = nullptr;
  engine::EngineConfig engine_config;
  PoolConfig pool_config;
  std::unique_ptr<TokenPool> tp;
  std::unique_ptr<Autoscaler> autoscaler;
  std::vector<std::unique_ptr<Instance>> instances;  // append-only; dead ones stay, !alive
  std::vector<EntitlementRef> ents;                  // per tenant
  int64_t kv_tokens_per_instance = 0;
  int64_t slots_per_instance = 0;
  Time wakeup_scheduled = Time::Max();
  bool needs_dispatch = false;
  // GPU-time accounting.
  int32_t alive_count = 0;
  Time alive_since;
  double replica_seconds = 0;
  int32_t peak = 0;
  int64_t iterations = 0;
  std::map<std::string, int64_t> routed;
};

struct Live {
  uint32_t generation = 0;
  bool in_use = false;
  bool measured = false;
  bool got_first = false;
  bool on_engine = false;
  uint32_t tenant = 0;
  uint32_t pool = kNone;
  uint32_t instance = kNone;
  uint32_t category = 0;
  int64_t prompt = 0;
  int64_t output = 0;
  int64_t text_bytes = 0;
  int64_t generated = 0;
  int64_t preemptions = 0;
  Time arrival;
  Time first_token;
  Duration waited{};
  QueueTicket ticket;  // while queued in the pool
  Reservation res;
};

struct Stream {
  const ArrivalSpec* spec = nullptr;
  uint32_t tenant = kNone;  // kNone: the shared workload, split by share
  ArrivalCursor cursor;
  std::unique_ptr<Rng> rng;  // ArrivalSpec::seed: draws of its own
};

struct GroupAcc {
  GroupStats s;
  std::vector<double> ttft, tpot, e2e, wait, ttft_all;
};

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  rank = std::clamp<size_t>(rank, 1, v.size()) - 1;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(rank), v.end());
  return v[rank];
}

LatencyStats Summarize(std::vector<double>& v) {
  LatencyStats l;
  l.count = static_cast<int64_t>(v.size());
  if (v.empty()) return l;
  double sum = 0;
  for (double x : v) sum += x;
  l.mean_s = sum / static_cast<double>(v.size());
  l.p50_s = Percentile(v, 0.5);
  l.p90_s = Percentile(v, 0.9);
  l.p99_s = Percentile(v, 0.99);
  return l;
}

const char* EndName(RequestEnd e) {
  switch (e) {
    case RequestEnd::kCompleted:
      return "completed";
    case RequestEnd::kRefused:
      return "refused";
    case RequestEnd::kExpired:
      return "expired";
    case RequestEnd::kFailed:
      return "failed";
    case RequestEnd::kCutOff:
      return "cut_off";
  }
  return "unknown";
}

// Synthetic request features: `bytes` of text with byte-class counts in fixed proportions of a
// plain-text mix, so every estimator mode (static, ema, linear) sees a consistent body.
void MakeFeatures(int64_t bytes, int64_t max_tokens, RequestFeatures* f) {
  f->Clear();
  f->model = "sim";
  f->messages = 1;
  f->has_max_tokens = true;
  f->max_output_tokens = max_tokens;
  f->text_bytes = bytes;
  ByteStats& s = f->text;
  s.bytes = bytes;
  s.letters = bytes * 3 / 4;
  s.letter_runs = bytes / 6;
  s.letters_ge4 = bytes / 3;
  s.letters_ge8 = bytes / 20;
  s.spaces = bytes / 6;
  s.space_runs = bytes / 6;
  s.punct = bytes - s.letters - s.spaces;
  s.punct_runs = s.punct;
  s.colons_commas = s.punct / 2;
}

class Simulation {
 public:
  Simulation(const SimConfig& config, const RunOptions& options)
      : config_(config), options_(options), rng_(config.seed) {}

  Status Init();
  void Run();
  SimResult Finish();

 private:
  Time Now() const { return clock_.Now(); }
  Time At(double s) const { return Time::Zero() + Seconds(s); }
  void Push(Time t, Phase phase, Event e) { queue_.Push(t, phase, e); }
  void Hash(uint64_t x) {
    for (int i = 0; i < 8; ++i) {
      hash_ ^= (x >> (8 * i)) & 0xff;
      hash_ *= 0x100000001b3ULL;
    }
  }

  uint64_t Allocate();
  Live& Get(uint64_t id) { return live_[static_cast<uint32_t>(id)]; }
  void End(uint64_t id, RequestEnd end, std::string_view reason);
  template <typename F>
  void ForGroups(const Live& l, F&& f) {
    f(groups_[l.tenant]);
    f(groups_[tenant_count_ + static_cast<size_t>(config_.tenants[l.tenant].cls)]);
    if (l.pool != kNone) f(groups_[tenant_count_ + kNumClasses + l.pool]);
    f(groups_.back());
  }

  void ScheduleNextArrival(uint32_t stream);
  void OnArrival(uint32_t stream);
  void StartOnInstance(uint64_t id, Reservation res);
  void StartStep(uint32_t p, uint32_t i);
  void OnStepEnd(uint32_t p, uint32_t i, uint32_t gen);
  void Complete(uint64_t id);
  void DispatchPool(uint32_t p);
  void ScheduleWakeup(uint32_t p);
  void UpdateCapacity(uint32_t p);
  void CountAlive(uint32_t p, int delta);
  uint32_t AddInstance(uint32_t p, bool ready);
  void FailInstance(uint32_t p, uint32_t i);
  void OnCapacityEvent(uint32_t index);
  void OnAutoscale();
  void OnSample();
  void CutOffAll();
  double RouteUtilization(uint32_t p);

  const SimConfig& config_;
  const RunOptions& options_;
  Rng rng_;
  ManualClock clock_;
  EventQueue queue_;
  uint64_t hash_ = 0xcbf29ce484222325ULL;
  int64_t events_ = 0;
  size_t tenant_count_ = 0;
  std::vector<PoolState> pools_;
  std::vector<Stream> streams_;
  std::vector<double> share_cdf_;  // over tenants, for the shared workload
  std::unique_ptr<TokenEstimator> estimator_;
  std::unique_ptr<Router> router_;
  std::vector<Live> live_;
  std::vector<uint32_t> free_live_;
  int64_t live_count_ = 0;
  int64_t requests_ = 0;
  std::vector<GroupAcc> groups_;
  std::map<std::string, int64_t> ends_;
  std::vector<int64_t> interval_tokens_;
  std::vector<TimeSample> samples_;
  EstimatorStats est_;
  double est_err_sum_ = 0;
  std::vector<QueueEvent> qevents_;
  std::vector<RoutePool> route_pools_;
  RequestFeatures features_;
  Time arrivals_end_;
  Time hard_end_;
  bool token_pools_ = true;  // config_.admission == kTokenPools
  std::unique_ptr<AdmissionPolicy> policy_;
};

Status Simulation::Init() {
  tenant_count_ = config_.tenants.size();
  arrivals_end_ = At(config_.duration_s);
  hard_end_ = At(config_.duration_s + config_.drain_s);
  token_pools_ = config_.admission == AdmissionMode::kTokenPools;
  policy_ = MakeAdmissionPolicy(config_);
  if (config_.estimator == EstimatorKind::kCore) {
    auto e = MakeEstimator(config_.estimator_mode, config_.estimator_config);
    if (!e.ok()) return InvalidArgument("estimator: " + e.status().message());
    estimator_ = std::move(e.value());
  }
  auto r = MakeRouter(config_.router, config_.router_config);
  if (!r.ok()) return InvalidArgument("router: " + r.status().message());
  router_ = std::move(r.value());

  // Rows per pool by true size, for the pools' workload shapes.
  std::vector<std::vector<TraceRequest>> pool_rows(config_.pools.size());
  auto collect = [&](const ArrivalSpec& a) {
    for (const TraceRequest& row : *a.lengths) {
      for (size_t p = 0; p < config_.pools.size(); ++p) {
        if (row.total_tokens() <= config_.pools[p].profile.max_model_len) {
          pool_rows[p].push_back(row);
          break;
        }
      }
    }
  };
  if (config_.workload) collect(*config_.workload);
  for (const TenantSpec& t : config_.tenants) {
    if (t.arrivals) collect(*t.arrivals);
  }

  pools_.resize(config_.pools.size());
  for (size_t p = 0; p < config_.pools.size(); ++p) {
    const PoolSpec& spec = config_.pools[p];
    PoolState& ps = pools_[p];
    ps.spec = &spec;
    ps.engine_config = engine::EngineConfig::FromProfile(spec.profile);
    if (Status s = ps.engine_config.Validate(); !s.ok()) {
      return InvalidArgument("pools[" + std::to_string(p) + "] (" + spec.name +
                             "): " + s.message());
    }
    const WorkloadShape shape =
        spec.shape             ? *spec.shape
        : pool_rows[p].empty() ? WorkloadShape{}
                               : ShapeOf(pool_rows[p], spec.profile.iteration.prefill_chunk_tokens);
    ps.pool_config = config_.pool_defaults;
    ps.pool_config.name = spec.name;
    ps.pool_config.replica_capacity = ReplicaCapacity(spec.profile, shape);
    const int32_t max_replicas = std::max(spec.max_replicas, spec.replicas);
    ps.pool_config.min_replicas = spec.min_replicas;
    ps.pool_config.max_replicas = max_replicas;
    ps.pool_config.initial_replicas = spec.replicas;
    if (Status s = ps.pool_config.Validate(); !s.ok()) return s;
    auto tp = TokenPool::Create(ps.pool_config, clock_);
    if (!tp.ok()) return tp.status();
    ps.tp = std::move(tp.value());
    ps.kv_tokens_per_instance = KvTokens(spec.profile);
    ps.slots_per_instance = std::max<int64_t>(1, Slots(spec.profile));
    if (config_.autoscale.enabled) {
      ps.autoscaler = std::make_unique<Autoscaler>(config_.autoscale.config);
    }
    const ResourceVector initial = ps.pool_config.replica_capacity * spec.replicas;
    const ResourceVector at_max = ps.pool_config.replica_capacity * max_replicas;
    for (size_t t = 0; t < config_.tenants.size(); ++t) {
      const TenantSpec& ts = config_.tenants[t];
      EntitlementSpec e;
      e.name = ts.name;
      e.tenant = ts.name;
      e.cls = ts.cls;
      e.priority = ts.priority;
      e.weight = ts.weight;
      e.slo = ts.slo;
      if (ts.cls != EntitlementClass::kSpot) {
        e.guarantee = ts.guarantee ? *ts.guarantee : initial * ts.guarantee_share;
        e.guarantee.kv_tokens = std::floor(e.guarantee.kv_tokens);
        e.guarantee.concurrency = std::floor(e.guarantee.concurrency);
        if (ts.guarantee_share > 0 && e.guarantee.concurrency < 1) e.guarantee.concurrency = 1;
      }
      e.burst = ts.burst ? *ts.burst : at_max * ts.burst_share;
      e.burst.kv_tokens = std::floor(e.burst.kv_tokens);
      e.burst.concurrency = std::floor(e.burst.concurrency);
      e.burst = ResourceVector::Max(e.burst, e.guarantee);
      auto ref = ps.tp->AddEntitlement(e);
      if (!ref.ok()) {
        return Status(ref.status().code(), "tenants[" + std::to_string(t) + "] (" + ts.name +
                                               ") in pool " + spec.name + ": " +
                                               ref.status().message());
      }
      ps.ents.push_back(*ref);
    }
    ps.alive_since = Time::Zero();
    for (int32_t i = 0; i < spec.replicas; ++i) AddInstance(static_cast<uint32_t>(p), true);
    if (config_.admission == AdmissionMode::kDedicated) {
      const std::vector<int32_t> split = DedicatedReplicas(config_.tenants, spec.replicas);
      size_t next = 0;
      for (size_t t = 0; t < split.size(); ++t) {
        for (int32_t k = 0; k < split[t]; ++k)
          ps.instances[next++]->owner = static_cast<int32_t>(t);
      }
    }
    UpdateCapacity(static_cast<uint32_t>(p));
  }

  // Groups: tenants, classes, pools, overall.
  groups_.resize(tenant_count_ + kNumClasses + pools_.size() + 1);
  for (size_t t = 0; t < tenant_count_; ++t) groups_[t].s.name = config_.tenants[t].name;
  for (int c = 0; c < kNumClasses; ++c) {
    groups_[tenant_count_ + static_cast<size_t>(c)].s.name =
        std::string(EntitlementClassName(static_cast<EntitlementClass>(c)));
  }
  for (size_t p = 0; p < pools_.size(); ++p) {
    groups_[tenant_count_ + kNumClasses + p].s.name = config_.pools[p].name;
  }
  groups_.back().s.name = "all";
  interval_tokens_.assign(tenant_count_, 0);

  // Streams.
  double share_sum = 0;
  for (const TenantSpec& t : config_.tenants) {
    share_sum += t.share;
    share_cdf_.push_back(share_sum);
  }
  auto add_stream = [&](const ArrivalSpec& a, uint32_t tenant) {
    Stream s;
    s.spec = &a;
    s.tenant = tenant;
    if (a.seed) s.rng = std::make_unique<Rng>(*a.seed);
    s.cursor = StartArrivals(a, arrivals_end_, s.rng ? *s.rng : rng_);
    streams_.push_back(std::move(s));
  };
  if (config_.workload && share_sum > 0) add_stream(*config_.workload, kNone);
  for (size_t t = 0; t < tenant_count_; ++t) {
    if (config_.tenants[t].arrivals) {
      add_stream(*config_.tenants[t].arrivals, static_cast<uint32_t>(t));
    }
  }
  for (uint32_t s = 0; s < streams_.size(); ++s) ScheduleNextArrival(s);

  if (config_.autoscale.enabled) {
    Push(At(config_.autoscale.interval_s), Phase::kControl, {EventKind::kAutoscaleTick, 0, 0, 0});
  }
  for (uint32_t i = 0; i < config_.capacity_events.size(); ++i) {
    Push(At(config_.capacity_events[i].at_s), Phase::kCapacity,
         {EventKind::kCapacityEvent, i, 0, 0});
  }
  Push(At(config_.sample_interval_s), Phase::kSample, {EventKind::kSample, 0, 0, 0});
  return Status::Ok();
}

void Simulation::ScheduleNextArrival(uint32_t si) {
  Stream& s = streams_[si];
  const Time t = NextArrival(*s.spec, s.cursor, s.rng ? *s.rng : rng_, Now());
  if (t >= s.cursor.end) return;
  Push(t, Phase::kArrival, {EventKind::kArrival, si, 0, 0});
}

uint64_t Simulation::Allocate() {
  uint32_t slot;
  if (!free_live_.empty()) {
    slot = free_live_.back();
    free_live_.pop_back();
  } else {
    slot = static_cast<uint32_t>(live_.size());
    live_.emplace_back();
  }
  Live& l = live_[slot];
  ++l.generation;
  l.in_use = true;
  ++live_count_;
  return (static_cast<uint64_t>(l.generation) << 32) | slot;
}

void Simulation::End(uint64_t id, RequestEnd end, std::string_view reason) {
  Live& l = Get(id);
  Hash(id);
  Hash(static_cast<uint64_t>(end));
  ++ends_[end == RequestEnd::kRefused ? "refused_" + std::string(reason) : EndName(end)];
  if (l.measured) {
    const TenantSpec& ts = config_.tenants[l.tenant];
    const double ttft = l.got_first ? ToSeconds(l.first_token - l.arrival) : kInf;
    const double e2e = ToSeconds(Now() - l.arrival);
    const double tpot =
        l.generated > 1 ? ToSeconds(Now() - l.first_token) / static_cast<double>(l.generated - 1)
                        : 0.0;
    const bool met = end == RequestEnd::kCompleted && ttft <= ToSeconds(ts.slo.ttft_target) &&
                     (ts.tpot_target_s <= 0 || tpot <= ts.tpot_target_s);
    ForGroups(l, [&](GroupAcc& g) {
      GroupStats& s = g.s;
      s.preemptions += l.preemptions;
      if (l.pool != kNone) g.ttft_all.push_back(ttft);
      switch (end) {
        case RequestEnd::kCompleted:
          ++s.completed;
          s.prompt_tokens += l.prompt;
          s.output_tokens += l.generated;
          g.ttft.push_back(ttft);
          g.e2e.push_back(e2e);
          if (l.generated > 1) g.tpot.push_back(tpot);
          if (met) ++s.slo_met;
          break;
        case RequestEnd::kRefused:
          ++s.refused[std::string(reason)];
          ++s.refused_total;
          break;
        case RequestEnd::kExpired:
          ++s.expired;
          break;
        case RequestEnd::kFailed:
          ++s.failed;
          break;
        case RequestEnd::kCutOff:
          ++s.cut_off;
          break;
      }
    });
  }
  l.res = Reservation();
  l.in_use = false;
  l.got_first = l.on_engine = false;
  l.pool = l.instance = kNone;
  l.generated = l.preemptions = 0;
  l.waited = Duration::zero();
  l.ticket = QueueTicket();
  free_live_.push_back(static_cast<uint32_t>(id));
  --live_count_;
}

double Simulation::RouteUtilization(uint32_t p) {
  if (token_pools_) return pools_[p].tp->Utilization();
  int64_t ready = 0, requests = 0;
  for (const auto& inst : pools_[p].instances) {
    if (inst->alive && inst->ready && !inst->draining) {
      ++ready;
      requests += inst->requests;
    }
  }
  if (ready == 0) return 1;
  return static_cast<double>(requests) / static_cast<double>(ready * pools_[p].slots_per_instance);
}

void Simulation::OnArrival(uint32_t si) {
  Stream& s = streams_[si];
  const ArrivalSpec& a = *s.spec;
  Rng& rng = s.rng ? *s.rng : rng_;
  ++requests_;
  // Tenant.
  uint32_t tenant = s.tenant;
  if (tenant == kNone) {
    const double x = rng.Uniform() * share_cdf_.back();
    tenant = static_cast<uint32_t>(std::upper_bound(share_cdf_.begin(), share_cdf_.end(), x) -
                                   share_cdf_.begin());
    tenant = std::min<uint32_t>(tenant, static_cast<uint32_t>(tenant_count_ - 1));
  }
  const TenantSpec& ts = config_.tenants[tenant];
  // Lengths.
  const TraceRequest& row = TakeRow(a, s.cursor, rng);
  const int64_t prompt = std::max<int64_t>(1, row.input_tokens);
  const int64_t output = std::max<int64_t>(1, row.output_tokens);
  // Content category and body bytes.
  const std::vector<ContentCategory>& cats =
      ts.categories.empty() ? config_.categories : ts.categories;
  double cat_sum = 0;
  for (const ContentCategory& c : cats) cat_sum += c.share;
  double x = rng.Uniform() * cat_sum;
  uint32_t cat = 0;
  while (cat + 1 < cats.size() && x >= cats[cat].share) x -= cats[cat++].share;
  const double ratio =
      cats[cat].bytes_per_token * std::max(0.2, 1.0 + cats[cat].noise * rng.Normal());
  const int64_t bytes = std::max<int64_t>(1, std::llround(static_cast<double>(prompt) * ratio));

  const uint64_t id = Allocate();
  Live& l = Get(id);
  l.tenant = tenant;
  l.category = cat;
  l.prompt = prompt;
  l.output = output;
  l.text_bytes = bytes;
  l.arrival = Now();
  l.measured = Now() >= At(config_.warmup_s);

  // Estimate.
  int64_t est_prompt = prompt, reserve = output, budget = prompt + output;
  if (estimator_) {
    MakeFeatures(bytes, output, &features_);
    const Category c = Categorize(features_, cats[cat].name);
    const TokenEstimate e = estimator_->Estimate(features_, c);
    est_prompt = e.prompt_tokens;
    reserve = e.output_reserve;
    budget = e.routing_budget;
  }
  ++est_.estimates;
  est_err_sum_ += std::abs(static_cast<double>(est_prompt - prompt)) / static_cast<double>(prompt);

  // Route.
  route_pools_.clear();
  for (uint32_t p = 0; p < pools_.size(); ++p) {
    route_pools_.push_back({config_.pools[p].name, config_.pools[p].profile.max_model_len,
                            RouteUtilization(p), token_pools_ ? pools_[p].tp->QueueLength() : 0u});
  }
  const RouteDecision r = router_->Route(budget, route_pools_);
  if (l.measured) {
    ForGroups(l, [](GroupAcc& g) { ++g.s.arrivals; });
  }
  ScheduleNextArrival(si);
  if (policy_) {
    const std::string_view why = policy_->Admit(tenant, Now(), est_prompt + reserve);
    if (!why.empty()) {
      End(id, RequestEnd::kRefused, why);
      return;
    }
  }
  if (!r.ok()) {
    End(id, RequestEnd::kRefused, "no_pool_fits");
    return;
  }
  const uint32_t p = static_cast<uint32_t>(r.pool);
  l.pool = p;
  if (l.measured) ++groups_[tenant_count_ + kNumClasses + p].s.arrivals;
  ++pools_[p].routed[std::string(RouteReasonName(r.reason))];
  uint32_t oracle = kNone;
  for (uint32_t q = 0; q < pools_.size(); ++q) {
    if (prompt + output <= config_.pools[q].profile.max_model_len) {
      oracle = q;
      break;
    }
  }
  if (oracle == kNone || oracle > p) {
    ++est_.misrouted_short;
  } else if (oracle < p && r.reason != RouteReason::kSpilled) {
    ++est_.misrouted_long;
  }

  if (!token_pools_) {  // admitted at once (a policy's refusal returned above)
    if (l.measured) ForGroups(l, [](GroupAcc& g) { ++g.s.admitted; });
    StartOnInstance(id, Reservation());
    return;
  }
  Decision d =
      pools_[p].tp->Admit(pools_[p].ents[tenant], {Tokens(est_prompt), Tokens(reserve)}, id);
  if (IsAdmitted(d.outcome)) {
    if (l.measured) ForGroups(l, [](GroupAcc& g) { ++g.s.admitted; });
    StartOnInstance(id, std::move(d.reservation));
  } else if (d.outcome == AdmissionOutcome::kQueued) {
    l.ticket = d.ticket;
    if (l.measured) ForGroups(l, [](GroupAcc& g) { ++g.s.queued; });
    DispatchPool(p);
  } else {
    End(id, RequestEnd::kRefused, AdmissionOutcomeName(d.outcome));
  }
}

void Simulation::StartOnInstance(uint64_t id, Reservation res) {
  Live& l = Get(id);
  PoolState& ps = pools_[l.pool];
  const int64_t need = l.prompt + l.output;
  uint32_t best = kNone, fallback = kNone;
  const bool dedicated = config_.admission == AdmissionMode::kDedicated;
  for (uint32_t i = 0; i < ps.instances.size(); ++i) {
    const Instance& in = *ps.instances[i];
    if (!in.alive || !in.ready || in.draining) continue;
    if (dedicated && in.owner != static_cast<int32_t>(l.tenant)) continue;
    if (fallback == kNone || in.outstanding_tokens < ps.instances[fallback]->outstanding_tokens) {
      fallback = i;
    }
    const bool room =
        in.reserved_kv + need <= ps.kv_tokens_per_instance && in.requests < ps.slots_per_instance;
    if (room && (best == kNone || in.outstanding_tokens < ps.instances[best]->outstanding_tokens)) {
      best = i;
    }
  }
  if (best == kNone) best = fallback;  // no room anywhere: the engine queues it
  if (best == kNone) {
    res.Release();
    ps.needs_dispatch = true;
    End(id, RequestEnd::kRefused, dedicated ? "no_dedicated_replica" : "no_replica");
    return;
  }
  Instance& in = *ps.instances[best];
  const Status s =
      in.engine->Submit({.id = id, .prompt_tokens = l.prompt, .max_tokens = l.output}, Now());
  if (!s.ok()) {
    res.Release();
    ps.needs_dispatch = true;
    End(id, RequestEnd::kRefused, "engine_context_exceeded");
    return;
  }
  l.res = std::move(res);
  l.instance = best;
  l.on_engine = true;
  in.outstanding_tokens += need;
  in.reserved_kv += need;
  ++in.requests;
  ++in.started[l.tenant];
  if (!in.stepping) StartStep(l.pool, best);
}

void Simulation::StartStep(uint32_t p, uint32_t i) {
  Instance& in = *pools_[p].instances[i];
  in.engine->Step(Now(), &in.step);
  if (in.step.empty() && in.engine->HasWork()) in.engine->Step(Now(), &in.step);
  for (uint64_t pre : in.step.preempted) ++Get(pre).preemptions;
  if (in.step.empty() && !in.engine->HasWork()) {
    in.stepping = false;
    return;
  }
  in.stepping = true;
  ++pools_[p].iterations;
  const Time end = in.step.empty() ? Now() + kEmptyStepRetry : in.step.end;
  Push(end, Phase::kStepEnd, {EventKind::kStepEnd, p, i, in.generation});
}

void Simulation::OnStepEnd(uint32_t p, uint32_t i, uint32_t gen) {
  PoolState& ps = pools_[p];
  Instance& in = *ps.instances[i];
  if (!in.alive || in.generation != gen) return;
  bool any_finished = false;
  for (const engine::SeqOutput& o : in.step.outputs) {
    Live& l = Get(o.id);
    if (o.first_token) {
      l.got_first = true;
      l.first_token = Now();
      interval_tokens_[l.tenant] += l.prompt;
    }
    interval_tokens_[l.tenant] += o.new_tokens;
    l.generated = o.output_tokens;
    if (o.finished) {
      Complete(o.id);
      any_finished = true;
    }
  }
  if (in.engine->HasWork()) {
    StartStep(p, i);
  } else {
    in.stepping = false;
    if (in.draining && in.requests == 0) {
      in.alive = false;
      ++in.generation;
      CountAlive(p, -1);
    }
  }
  if (any_finished || ps.needs_dispatch) DispatchPool(p);
}

void Simulation::Complete(uint64_t id) {
  Live& l = Get(id);
  PoolState& ps = pools_[l.pool];
  Instance& in = *ps.instances[l.instance];
  in.outstanding_tokens -= l.prompt + l.output;
  in.reserved_kv -= l.prompt + l.output;
  --in.requests;
  l.res.Settle({.prompt = Tokens(l.prompt), .completion = Tokens(l.generated)});
  if (estimator_) {
    const std::vector<ContentCategory>& cats = config_.tenants[l.tenant].categories.empty()
                                                   ? config_.categories
                                                   : config_.tenants[l.tenant].categories;
    MakeFeatures(l.text_bytes, l.output, &features_);
    estimator_->Observe(features_, Categorize(features_, cats[l.category].name), l.prompt);
  }
  End(id, RequestEnd::kCompleted, {});
}

void Simulation::DispatchPool(uint32_t p) {
  PoolState& ps = pools_[p];
  if (!token_pools_) return;
  do {
    ps.needs_dispatch = false;
    qevents_.clear();
    ps.tp->Dispatch(&qevents_);
    // StartOnInstance never dispatches (it sets needs_dispatch), so qevents_ is stable here.
    for (QueueEvent& ev : qevents_) {
      Live& l = Get(ev.cookie);
      if (IsAdmitted(ev.outcome)) {
        if (l.measured) {
          ForGroups(l, [](GroupAcc& g) { ++g.s.dispatched; });
        }
        l.waited = ev.waited;
        StartOnInstance(ev.cookie, std::move(ev.reservation));
      } else {
        End(ev.cookie,
            ev.outcome == AdmissionOutcome::kExpired ? RequestEnd::kExpired : RequestEnd::kRefused,
            AdmissionOutcomeName(ev.outcome));
      }
    }
  } while (ps.needs_dispatch);
  ScheduleWakeup(p);
}

void Simulation::ScheduleWakeup(uint32_t p) {
  PoolState& ps = pools_[p];
  const Time t = ps.tp->NextWakeup();
  if (t == Time::Max() || t >= ps.wakeup_scheduled) return;
  ps.wakeup_scheduled = std::max(t, Now());
  Push(ps.wakeup_scheduled, Phase::kWakeup, {EventKind::kPoolWakeup, p, 0, 0});
}

void Simulation::UpdateCapacity(uint32_t p) {
  PoolState& ps = pools_[p];
  int32_t serving = 0;
  for (const auto& in : ps.instances) serving += in->alive && in->ready && !in->draining;
  ps.tp->SetCapacity(ps.pool_config.replica_capacity * serving);
}

void Simulation::CountAlive(uint32_t p, int delta) {
  PoolState& ps = pools_[p];
  ps.replica_seconds += ps.alive_count * ToSeconds(Now() - ps.alive_since);
  ps.alive_since = Now();
  ps.alive_count += delta;
  ps.peak = std::max(ps.peak, ps.alive_count);
}

uint32_t Simulation::AddInstance(uint32_t p, bool ready) {
  PoolState& ps = pools_[p];
  auto in = std::make_unique<Instance>();
  in->engine = std::make_unique<engine::Engine>(ps.engine_config);
  in->ready = ready;
  in->started.assign(tenant_count_, 0);
  ps.instances.push_back(std::move(in));
  CountAlive(p, +1);
  return static_cast<uint32_t>(ps.instances.size() - 1);
}

void Simulation::FailInstance(uint32_t p, uint32_t i) {
  PoolState& ps = pools_[p];
  Instance& in = *ps.instances[i];
  for (uint32_t slot = 0; slot < live_.size(); ++slot) {
    Live& l = live_[slot];
    if (!l.in_use || !l.on_engine || l.pool != p || l.instance != i) continue;
    const uint64_t id = (static_cast<uint64_t>(l.generation) << 32) | slot;
    // Partial service is settled with what was used (token_pool.h: Release is for none).
    l.res.Settle({.prompt = Tokens(l.got_first ? l.prompt : 0), .completion = Tokens(l.generated)});
    End(id, RequestEnd::kFailed, {});
  }
  in.engine->AbortAll();
  in.alive = false;
  in.stepping = false;
  ++in.generation;
  in.outstanding_tokens = in.reserved_kv = in.requests = 0;
  CountAlive(p, -1);
}

void Simulation::OnCapacityEvent(uint32_t index) {
  const CapacityEvent& ev = config_.capacity_events[index];
  const uint32_t p = static_cast<uint32_t>(ev.pool);
  PoolState& ps = pools_[p];
  int32_t serving = 0;
  for (const auto& in : ps.instances) serving += in->alive && in->ready && !in->draining;
  for (uint32_t i = static_cast<uint32_t>(ps.instances.size()); i-- > 0 && serving > ev.replicas;) {
    Instance& in = *ps.instances[i];
    if (in.alive && in.ready && !in.draining) {
      FailInstance(p, i);
      --serving;
    }
  }
  while (serving < ev.replicas) {
    AddInstance(p, true);
    ++serving;
  }
  UpdateCapacity(p);
  DispatchPool(p);
}

void Simulation::OnAutoscale() {
  for (uint32_t p = 0; p < pools_.size(); ++p) {
    PoolState& ps = pools_[p];
    if (!ps.autoscaler) continue;
    const int32_t desired =
        ps.autoscaler->Recommend(Now(), ps.tp->Snapshot(), ps.pool_config).desired;
    int32_t current = 0;
    for (const auto& in : ps.instances) current += in->alive && !in->draining;
    for (; current < desired; ++current) {
      const uint32_t i = AddInstance(p, false);
      Push(Now() + Seconds(config_.autoscale.startup_delay_s), Phase::kCapacity,
           {EventKind::kReplicaReady, p, i, ps.instances[i]->generation});
    }
    // Scale down: starting replicas first (newest first), then the least loaded serving ones.
    for (uint32_t i = static_cast<uint32_t>(ps.instances.size()); i-- > 0 && current > desired;) {
      Instance& in = *ps.instances[i];
      if (in.alive && !in.ready) {
        in.alive = false;
        ++in.generation;
        CountAlive(p, -1);
        --current;
      }
    }
    while (current > desired) {
      uint32_t pick = kNone;
      for (uint32_t i = 0; i < ps.instances.size(); ++i) {
        const Instance& in = *ps.instances[i];
        if (in.alive && in.ready && !in.draining &&
            (pick == kNone || in.outstanding_tokens < ps.instances[pick]->outstanding_tokens)) {
          pick = i;
        }
      }
      if (pick == kNone) break;
      Instance& in = *ps.instances[pick];
      in.draining = true;
      if (in.requests == 0 && !in.stepping) {
        in.alive = false;
        ++in.generation;
        CountAlive(p, -1);
      }
      --current;
    }
    UpdateCapacity(p);
    DispatchPool(p);
  }
  if (Now() < arrivals_end_) {
    Push(Now() + Seconds(config_.autoscale.interval_s), Phase::kControl,
         {EventKind::kAutoscaleTick, 0, 0, 0});
  }
}

void Simulation::OnSample() {
  TimeSample s;
  s.t_s = Now().seconds();
  s.tenant_tokens = interval_tokens_;
  std::fill(interval_tokens_.begin(), interval_tokens_.end(), 0);
  s.tenant_debt.assign(tenant_count_, 0);
  for (PoolState& ps : pools_) {
    int32_t serving = 0;
    for (const auto& in : ps.instances) serving += in->alive && in->ready && !in->draining;
    s.pool_replicas.push_back(serving);
    s.pool_utilization.push_back(ps.tp->Utilization());
    s.pool_queued.push_back(ps.tp->QueueLength());
    for (size_t t = 0; t < tenant_count_; ++t) {
      auto snap = ps.tp->SnapshotEntitlement(ps.ents[t]);
      if (snap.ok()) s.tenant_debt[t] += snap->debt_tokens;
    }
  }
  samples_.push_back(std::move(s));
  if (Now() < arrivals_end_ || live_count_ > 0) {
    Push(Now() + Seconds(config_.sample_interval_s), Phase::kSample, {EventKind::kSample, 0, 0, 0});
  }
}

void Simulation::Run() {
  while (!queue_.empty()) {
    const ScheduledEvent ev = queue_.Pop();
    if (ev.at() > hard_end_) break;
    clock_.Set(ev.at());
    ++events_;
    Hash(static_cast<uint64_t>(ev.key.time_ns));
    Hash((static_cast<uint64_t>(ev.event.kind) << 32) | ev.event.a);
    Hash((static_cast<uint64_t>(ev.event.b) << 32) | ev.event.c);
    if (options_.progress && (events_ & 0xffff) == 0) {
      options_.progress(Now().seconds(), config_.duration_s);
    }
    const Event& e = ev.event;
    switch (e.kind) {
      case EventKind::kArrival:
        OnArrival(e.a);
        break;
      case EventKind::kStepEnd:
        OnStepEnd(e.a, e.b, e.c);
        break;
      case EventKind::kPoolWakeup:
        pools_[e.a].wakeup_scheduled = Time::Max();
        DispatchPool(e.a);
        break;
      case EventKind::kCapacityEvent:
        OnCapacityEvent(e.a);
        break;
      case EventKind::kReplicaReady: {
        Instance& in = *pools_[e.a].instances[e.b];
        if (in.alive && in.generation == e.c) {
          in.ready = true;
          UpdateCapacity(e.a);
          DispatchPool(e.a);
        }
        break;
      }
      case EventKind::kAutoscaleTick:
        OnAutoscale();
        break;
      case EventKind::kSample:
        OnSample();
        break;
    }
  }
  CutOffAll();
}

void Simulation::CutOffAll() {
  // Queued requests leave their pool's queue; in-flight ones settle what they used.
  for (uint32_t slot = 0; slot < live_.size(); ++slot) {
    Live& l = live_[slot];
    if (!l.in_use) continue;
    const uint64_t id = (static_cast<uint64_t>(l.generation) << 32) | slot;
    if (l.on_engine) {
      l.res.Settle(
          {.prompt = Tokens(l.got_first ? l.prompt : 0), .completion = Tokens(l.generated)});
    } else {
      l.res.Release();
      if (l.pool != kNone && l.ticket.valid()) (void)pools_[l.pool].tp->Cancel(l.ticket);
    }
    End(id, RequestEnd::kCutOff, {});
  }
  for (uint32_t p = 0; p < pools_.size(); ++p) {
    for (auto& in : pools_[p].instances) {
      if (in->alive) in->engine->AbortAll();
    }
  }
}

SimResult Simulation::Finish() {
  SimResult r;
  r.name = config_.name;
  r.seed = config_.seed;
  r.duration_s = config_.duration_s;
  r.warmup_s = config_.warmup_s;
  r.end_s = Now().seconds();
  r.requests = requests_;
  r.ends = ends_;
  r.events = events_;
  r.event_log_hash = hash_;
  const double window = std::max(1e-9, config_.duration_s - config_.warmup_s);
  auto finish_group = [&](GroupAcc& g) {
    GroupStats s = g.s;
    s.ttft = Summarize(g.ttft);
    s.tpot = Summarize(g.tpot);
    s.e2e = Summarize(g.e2e);
    const double p99_all = Percentile(g.ttft_all, 0.99);
    s.ttft_p99_all_s = std::isinf(p99_all) ? -1 : p99_all;
    s.goodput_rps = static_cast<double>(s.slo_met) / window;
    s.preemptions_per_1k = s.completed > 0 ? 1000.0 * static_cast<double>(s.preemptions) /
                                                 static_cast<double>(s.completed)
                                           : 0;
    s.success_rate =
        s.arrivals > 0 ? static_cast<double>(s.completed) / static_cast<double>(s.arrivals) : 0;
    return s;
  };
  for (size_t t = 0; t < tenant_count_; ++t) {
    r.tenants.push_back(finish_group(groups_[t]));
    r.tenant_names.push_back(config_.tenants[t].name);
  }
  for (int c = 0; c < kNumClasses; ++c) {
    bool present = false;
    for (const TenantSpec& t : config_.tenants) present |= static_cast<int>(t.cls) == c;
    if (present) r.classes.push_back(finish_group(groups_[tenant_count_ + static_cast<size_t>(c)]));
  }
  for (size_t p = 0; p < pools_.size(); ++p) {
    PoolState& ps = pools_[p];
    CountAlive(static_cast<uint32_t>(p), 0);
    PoolStats st;
    st.stats = finish_group(groups_[tenant_count_ + kNumClasses + p]);
    st.replicas_initial = config_.pools[p].replicas;
    int32_t serving = 0;
    for (const auto& in : ps.instances) serving += in->alive && in->ready && !in->draining;
    st.replicas_final = serving;
    st.replicas_peak = ps.peak;
    st.gpus_per_replica = config_.pools[p].profile.tensor_parallel;
    st.gpu_hours = ps.replica_seconds / 3600.0 * static_cast<double>(st.gpus_per_replica);
    st.routed = ps.routed;
    st.engine_iterations = ps.iterations;
    for (const auto& in : ps.instances) {
      st.instance_owner.push_back(in->owner);
      st.instance_started.push_back(in->started);
    }
    r.gpus += static_cast<int64_t>(st.replicas_initial) * st.gpus_per_replica;
    r.gpu_hours += st.gpu_hours;
    r.pools.push_back(st);
    r.pool_names.push_back(config_.pools[p].name);
    const PoolSnapshot snap = ps.tp->Snapshot();
    r.open_reservations_at_end += snap.open_reservations;
    r.in_use_at_end += snap.in_use.kv_tokens + snap.in_use.concurrency;
  }
  r.overall = finish_group(groups_.back());
  r.samples = std::move(samples_);
  r.estimator = est_;
  r.estimator.mean_abs_rel_error =
      est_.estimates > 0 ? est_err_sum_ / static_cast<double>(est_.estimates) : 0;
  return r;
}

}  // namespace

Result<SimResult> RunSimulation(const SimConfig& config, const RunOptions& options) {
  if (Status s = config.Validate(); !s.ok()) return s;
  Simulation sim(config, options);
  if (Status s = sim.Init(); !s.ok()) return s;
  sim.Run();
  return sim.Finish();
}

}  // namespace tokenpool::sim
