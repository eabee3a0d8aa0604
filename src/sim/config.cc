// SimConfig::Validate: every rule names its field.

#include "sim/config.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "tokenpool/units.h"

namespace tokenpool::sim {
namespace {

std::string Num(double v) {
  std::string s = std::to_string(v);
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

Status CheckArrivals(const ArrivalSpec& a, const std::string& f) {
  if (!a.lengths || a.lengths->empty()) {
    return InvalidArgument(f + ".lengths: no rows (a trace that yields no rows is an error)");
  }
  if (!a.rate_schedule.empty() && a.process != ArrivalProcess::kPoisson) {
    return InvalidArgument(f + ".rate_schedule: only with process 'poisson'");
  }
  if (a.process == ArrivalProcess::kTrace) {
    if (!(a.rate_rps >= 0 && std::isfinite(a.rate_rps))) {
      return InvalidArgument(f + ".rate_rps: must be >= 0, got " + Num(a.rate_rps));
    }
    for (const TraceRequest& r : *a.lengths) {
      if (!r.arrival_s) {
        return InvalidArgument(f + ".trace: process 'trace' needs arrival times; " + a.source +
                               " has lengths only (use process 'poisson')");
      }
    }
  } else if (!a.rate_schedule.empty()) {
    bool any = false;
    for (size_t i = 0; i < a.rate_schedule.size(); ++i) {
      const std::string g = f + ".rate_schedule[" + std::to_string(i) + "]";
      const RatePoint& pt = a.rate_schedule[i];
      if (!IsDurationSeconds(pt.at_s, true)) {
        return InvalidArgument(g + ".at_s: must be in [0, 1e9] seconds, got " + Num(pt.at_s));
      }
      if (i > 0 && !(pt.at_s > a.rate_schedule[i - 1].at_s)) {
        return InvalidArgument(g + ".at_s: must be > the previous point's (" +
                               Num(a.rate_schedule[i - 1].at_s) + ")");
      }
      if (!(pt.rps >= 0 && std::isfinite(pt.rps))) {
        return InvalidArgument(g + ".rps: must be >= 0, got " + Num(pt.rps));
      }
      any |= pt.rps > 0;
    }
    if (!any) return InvalidArgument(f + ".rate_schedule: every rate is 0 (no traffic)");
  } else if (!(a.rate_rps > 0 && std::isfinite(a.rate_rps))) {
    return InvalidArgument(f + ".rate_rps: must be > 0, got " + Num(a.rate_rps));
  }
  if (!IsDurationSeconds(a.start_s, true)) {
    return InvalidArgument(f + ".start_s: must be in [0, 1e9] seconds");
  }
  if (!IsDurationSeconds(a.end_s, true)) {
    return InvalidArgument(f + ".end_s: must be in [0, 1e9] seconds");
  }
  if (a.end_s > 0 && a.end_s <= a.start_s) {
    return InvalidArgument(f + ".end_s: must be > start_s (" + Num(a.start_s) + ")");
  }
  if (a.process == ArrivalProcess::kOnOff &&
      !(IsDurationSeconds(a.on_mean_s, false) && IsDurationSeconds(a.off_mean_s, true))) {
    return InvalidArgument(f + ".on_mean_s: must be in (0, 1e9] seconds (and off_mean_s in [0, 1e9])");
  }
  return Status::Ok();
}

// A period that repeats an event: at least 1 ns, since a shorter one rounds to 0 ns and the
// event would repeat at the same instant for ever.
bool IsPeriodSeconds(double s) {
  return IsDurationSeconds(s, false) && Seconds(s) > Duration::zero();
}

// Seconds of the run in which a stream can have arrivals: [start_s, min(end_s, duration_s)).
double WindowSeconds(const ArrivalSpec& a, double duration_s) {
  const double end = a.end_s > 0 ? std::min(a.end_s, duration_s) : duration_s;
  return std::max(0.0, end - a.start_s);
}

// Requests a stream brings over the run at its highest rate: rate_rps (the mean of an
// on-off process, a trace's replay rate; a trace replayed at its own rate brings its rows per
// recorded period), or a schedule's peak.
double PlannedRequests(const ArrivalSpec& a, double duration_s) {
  double rate = a.rate_rps;
  for (const RatePoint& pt : a.rate_schedule) rate = std::max(rate, pt.rps);
  if (a.process == ArrivalProcess::kTrace && rate <= 0 && a.lengths && a.lengths->size() > 1 &&
      a.lengths->front().arrival_s && a.lengths->back().arrival_s) {
    const double span = *a.lengths->back().arrival_s - *a.lengths->front().arrival_s;
    const double n = static_cast<double>(a.lengths->size());
    rate = span > 0 ? (n - 1) / span : n;
  }
  return rate * WindowSeconds(a, duration_s);
}

// An on-off stream's work grows with its on/off cycles, whatever its rate (kMaxOnOffCycles).
Status CheckOnOffCycles(const ArrivalSpec& a, const std::string& f, double duration_s) {
  if (a.process != ArrivalProcess::kOnOff) return Status::Ok();
  const double cycles = WindowSeconds(a, duration_s) / (a.on_mean_s + a.off_mean_s);
  if (cycles > kMaxOnOffCycles) {
    return InvalidArgument(f + ".on_mean_s: the stream's " + Num(WindowSeconds(a, duration_s)) +
                           " s hold about " + Num(std::round(cycles)) +
                           " on/off periods of on_mean_s + off_mean_s, at most " +
                           std::to_string(kMaxOnOffCycles) + " (lengthen on_mean_s or off_mean_s)");
  }
  return Status::Ok();
}

// Tenant and category names go into HTTP headers (`tokenpool load` sends them as the default
// API key and as x-tokenpool-category) and into the reports' CSV: no control characters.
bool HasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return (c < 0x20 && c != '\t') || c == 0x7f;
  });
}
constexpr const char* kNoControl =
    ".name: must not contain control characters (CR, LF...): it is sent as an HTTP header value";

// What EntitlementSpec::Validate would refuse when the simulator turns the tenant into one
// entitlement per pool (simulator.cc), checked here so that a scenario names the field and line.
Status CheckEntitlement(const TenantSpec& s, const std::string& f) {
  for (const auto& [vec, name] : {std::pair{&s.guarantee, ".guarantee."}, {&s.burst, ".burst."}}) {
    if (!*vec) continue;
    for (Dim d : kAllDims) {
      const double v = (**vec)[d];
      if (!(v >= 0 && std::isfinite(v))) {
        return InvalidArgument(f + name + std::string(DimName(d)) + ": must be >= 0, got " +
                               Num(v));
      }
    }
  }
  const bool spot = s.cls == EntitlementClass::kSpot;
  // The guarantee, floored as the simulator floors it; unknown (scaled from the pool's
  // capacity) when it comes from guarantee_share.
  std::optional<ResourceVector> g;
  if (spot) {
    g = ResourceVector{};
  } else if (s.guarantee) {
    g = *s.guarantee;
    g->kv_tokens = std::floor(g->kv_tokens);
    g->concurrency = std::floor(g->concurrency);
  } else if (s.guarantee_share == 0) {
    g = ResourceVector{};
  }
  if (s.cls == EntitlementClass::kGuaranteed && g && g->concurrency < 1) {
    return InvalidArgument(
        f +
        (s.guarantee ? ".guarantee.concurrency: must be >= 1" : ".guarantee_share: must be > 0") +
        " for class guaranteed");
  }
  if (s.burst && g) {
    ResourceVector b = *s.burst;
    b.kv_tokens = std::floor(b.kv_tokens);
    b.concurrency = std::floor(b.concurrency);
    b = ResourceVector::Max(b, *g);
    for (Dim d : kAllDims) {
      if (!(b[d] > 0)) {
        return InvalidArgument(f + ".burst." + std::string(DimName(d)) +
                               ": must be > 0 (at least 1 for kv_tokens and concurrency): a "
                               "tenant whose burst ceiling is 0 can never run a request");
      }
    }
  }
  if (s.slo.ttft_target <= Duration::zero()) {
    return InvalidArgument(f + ".slo.ttft_s: must be at least 1e-9 seconds (1 ns)");
  }
  if (s.slo.max_queue_wait < Duration::zero()) {
    return InvalidArgument(f + ".slo.max_queue_wait_s: must be >= 0");
  }
  return Status::Ok();
}

Status CheckCategories(const std::vector<ContentCategory>& cats, const std::string& f) {
  for (size_t i = 0; i < cats.size(); ++i) {
    const std::string g = f + "[" + std::to_string(i) + "]";
    if (cats[i].name.empty()) return InvalidArgument(g + ".name: must not be empty");
    if (HasControl(cats[i].name)) return InvalidArgument(g + kNoControl);
    if (!(cats[i].share > 0)) return InvalidArgument(g + ".share: must be > 0");
    if (!(cats[i].bytes_per_token > 0)) return InvalidArgument(g + ".bytes_per_token: must be > 0");
    if (!(cats[i].noise >= 0 && cats[i].noise < 1)) {
      return InvalidArgument(g + ".noise: must be in [0, 1)");
    }
  }
  return Status::Ok();
}

}  // namespace

const char* AdmissionModeName(AdmissionMode mode) {
  switch (mode) {
    case AdmissionMode::kTokenPools:
      return "token_pools";
    case AdmissionMode::kNone:
      return "none";
    case AdmissionMode::kRequestRate:
      return "request_rate";
    case AdmissionMode::kTokenRate:
      return "token_rate";
    case AdmissionMode::kDedicated:
      return "dedicated";
  }
  return "unknown";
}

bool ParseAdmissionMode(std::string_view name, AdmissionMode* mode) {
  for (AdmissionMode m :
       {AdmissionMode::kTokenPools, AdmissionMode::kNone, AdmissionMode::kRequestRate,
        AdmissionMode::kTokenRate, AdmissionMode::kDedicated}) {
    if (name == AdmissionModeName(m)) {
      *mode = m;
      return true;
    }
  }
  return false;
}

Status SimConfig::Validate() const {
  // Durations at most kMaxDurationSeconds (1e9), finite: a time past Time's range overflows.
  if (!IsDurationSeconds(duration_s, false)) {
    return InvalidArgument("duration_s: must be in (0, 1e9] seconds");
  }
  if (!(warmup_s >= 0 && warmup_s < duration_s)) {
    return InvalidArgument("warmup_s: must be in [0, duration_s)");
  }
  if (!IsDurationSeconds(drain_s, true)) {
    return InvalidArgument("drain_s: must be in [0, 1e9] seconds");
  }
  if (!IsPeriodSeconds(sample_interval_s)) {
    return InvalidArgument("sample_interval_s: must be in [1e-9, 1e9] seconds");
  }
  // The run keeps a sample per interval (through the drain while requests are live) and a few
  // figures per request: bounded, so that a typo in a rate or a duration is an error and not
  // the machine's memory.
  if ((duration_s + drain_s) / sample_interval_s > kMaxSamples) {
    return InvalidArgument(
        "sample_interval_s: (duration_s + drain_s) / sample_interval_s must be at most " +
        std::to_string(kMaxSamples) + " samples, got " +
        Num((duration_s + drain_s) / sample_interval_s));
  }
  if (!(router_config.spill_utilization > 0 && router_config.spill_utilization <= 1)) {
    return InvalidArgument("spill_utilization: must be in (0, 1], got " +
                           Num(router_config.spill_utilization));
  }
  if (pool_defaults.rate_window <= Duration::zero()) {
    return InvalidArgument("rate_window_s: must be at least 1e-9 seconds (1 ns)");
  }
  if (pools.empty()) return InvalidArgument("pools: at least one pool is required");
  std::set<std::string> names;
  for (size_t p = 0; p < pools.size(); ++p) {
    const std::string f = "pools[" + std::to_string(p) + "]";
    const PoolSpec& s = pools[p];
    if (s.name.empty()) return InvalidArgument(f + ".name: must not be empty");
    if (!names.insert(s.name).second) return InvalidArgument(f + ".name: duplicate " + s.name);
    if (s.replicas < 1 || s.replicas > kMaxReplicas) {
      return InvalidArgument(f + ".replicas: must be in [1, " + std::to_string(kMaxReplicas) + "]");
    }
    if (s.max_replicas > kMaxReplicas) {
      return InvalidArgument(f + ".max_replicas: must be at most " + std::to_string(kMaxReplicas));
    }
    if (s.min_replicas < 0 || s.min_replicas > s.replicas) {
      // Above the starting count it was lowered to it in silence (an autoscaler that never
      // went below 1 where 3 were asked for).
      return InvalidArgument(f + ".min_replicas: must be in [0, replicas (" +
                             std::to_string(s.replicas) + ")]");
    }
    if (s.max_replicas != 0 && s.max_replicas < s.replicas) {
      return InvalidArgument(f + ".max_replicas: must be >= replicas (" +
                             std::to_string(s.replicas) + ")");
    }
    if (Status st = s.profile.Validate(); !st.ok()) {
      return InvalidArgument(f + ".profile: " + st.message());
    }
    if (p > 0 && s.profile.max_model_len < pools[p - 1].profile.max_model_len) {
      return InvalidArgument(f + ".max_model_len: pools must be in ascending max_model_len");
    }
  }
  if (tenants.empty()) return InvalidArgument("tenants: at least one tenant is required");
  names.clear();
  double share = 0;
  bool own_stream = false;
  for (size_t t = 0; t < tenants.size(); ++t) {
    const std::string f = "tenants[" + std::to_string(t) + "]";
    const TenantSpec& s = tenants[t];
    if (s.name.empty()) return InvalidArgument(f + ".name: must not be empty");
    if (HasControl(s.name)) return InvalidArgument(f + kNoControl);
    if (!names.insert(s.name).second) return InvalidArgument(f + ".name: duplicate " + s.name);
    if (!(s.weight >= kMinWeight && s.weight <= kMaxWeight)) {
      return InvalidArgument(f + ".weight: must be in [" + Num(kMinWeight) + ", " +
                             Num(kMaxWeight) + "], got " + Num(s.weight));
    }
    if (!(s.share >= 0)) return InvalidArgument(f + ".share: must be >= 0");
    if (!(s.guarantee_share >= 0 && s.guarantee_share <= 1)) {
      return InvalidArgument(f + ".guarantee_share: must be in [0, 1]");
    }
    if (!(s.burst_share > 0)) return InvalidArgument(f + ".burst_share: must be > 0");
    if (!(s.tpot_target_s >= 0)) return InvalidArgument(f + ".tpot_target_s: must be >= 0");
    if (Status st = CheckEntitlement(s, f); !st.ok()) return st;
    share += s.share;
    if (s.arrivals) {
      own_stream = true;
      if (Status st = CheckArrivals(*s.arrivals, f + ".arrivals"); !st.ok()) return st;
    }
    if (Status st = CheckCategories(s.categories, f + ".categories"); !st.ok()) return st;
    const std::string mode = std::string(" with admission ") + AdmissionModeName(admission);
    if (!(s.rate_limit_rps >= 0))
      return InvalidArgument(f + ".rate_limit.requests_per_s: must be >= 0");
    if (!(s.rate_limit_tokens_per_s >= 0)) {
      return InvalidArgument(f + ".rate_limit.tokens_per_s: must be >= 0");
    }
    if (admission == AdmissionMode::kRequestRate && !(s.rate_limit_rps > 0)) {
      return InvalidArgument(f + ".rate_limit.requests_per_s: must be > 0" + mode);
    }
    if (admission == AdmissionMode::kTokenRate && !(s.rate_limit_tokens_per_s > 0)) {
      return InvalidArgument(f + ".rate_limit.tokens_per_s: must be > 0" + mode);
    }
    if (s.dedicated_share >= 0 && !(s.dedicated_share <= 1)) {
      return InvalidArgument(f + ".dedicated_share: must be in [0, 1]");
    }
  }
  if (admission == AdmissionMode::kRequestRate || admission == AdmissionMode::kTokenRate) {
    if (!IsDurationSeconds(rate_limit_window_s, false)) {
      return InvalidArgument("rate_limit_window_s: must be in (0, 1e9] seconds");
    }
  }
  if (admission == AdmissionMode::kDedicated) {
    double dedicated = 0;
    for (const TenantSpec& s : tenants) dedicated += DedicatedShareOf(s);
    if (!(dedicated > 0)) {
      return InvalidArgument(
          "tenants: no tenant has a dedicated_share (or guarantee_share) with admission dedicated");
    }
    if (autoscale.enabled) {
      return InvalidArgument(
          "autoscale.enabled: not supported with admission dedicated (replicas are split among "
          "tenants at the start)");
    }
    if (!capacity_events.empty()) {
      return InvalidArgument(
          "capacity_events: not supported with admission dedicated (replicas are split among "
          "tenants at the start)");
    }
  }
  if (share > 0 && !workload) {
    return InvalidArgument("workload: tenants have a share but there is no workload");
  }
  if (workload) {
    if (Status st = CheckArrivals(*workload, "workload"); !st.ok()) return st;
  }
  if (share <= 0 && !own_stream) {
    return InvalidArgument("tenants: no traffic (no tenant has a share or arrivals)");
  }
  {
    double planned = share > 0 && workload ? PlannedRequests(*workload, duration_s) : 0;
    for (const TenantSpec& t : tenants) {
      if (t.arrivals) planned += PlannedRequests(*t.arrivals, duration_s);
    }
    if (workload) {
      if (Status st = CheckOnOffCycles(*workload, "workload", duration_s); !st.ok()) return st;
    }
    for (size_t t = 0; t < tenants.size(); ++t) {
      if (!tenants[t].arrivals) continue;
      const std::string f = "tenants[" + std::to_string(t) + "].arrivals";
      if (Status st = CheckOnOffCycles(*tenants[t].arrivals, f, duration_s); !st.ok()) return st;
    }
    if (planned > kMaxPlannedRequests) {
      return InvalidArgument("duration_s: the arrival rates over duration_s plan about " +
                             Num(std::round(planned)) + " requests, at most " +
                             std::to_string(kMaxPlannedRequests) +
                             " (lower a rate_rps or shorten duration_s)");
    }
  }
  if (categories.empty()) return InvalidArgument("categories: at least one is required");
  if (Status st = CheckCategories(categories, "categories"); !st.ok()) return st;
  if (autoscale.enabled) {
    if (!IsPeriodSeconds(autoscale.interval_s)) {
      return InvalidArgument("autoscale.interval_s: must be in [1e-9, 1e9] seconds");
    }
    if (duration_s / autoscale.interval_s > kMaxAutoscaleTicks) {
      return InvalidArgument("autoscale.interval_s: duration_s / interval_s must be at most " +
                             std::to_string(kMaxAutoscaleTicks) + " ticks, got " +
                             Num(std::round(duration_s / autoscale.interval_s)));
    }
    if (!IsDurationSeconds(autoscale.startup_delay_s, true)) {
      return InvalidArgument("autoscale.startup_delay_s: must be in [0, 1e9] seconds");
    }
    if (Status st = autoscale.config.Validate(); !st.ok()) {
      return InvalidArgument("autoscale: " + st.message());
    }
  }
  for (size_t i = 0; i < capacity_events.size(); ++i) {
    const std::string f = "capacity_events[" + std::to_string(i) + "]";
    const CapacityEvent& e = capacity_events[i];
    if (!IsDurationSeconds(e.at_s, true)) {
      return InvalidArgument(f + ".at_s: must be in [0, 1e9] seconds");
    }
    if (e.pool < 0 || static_cast<size_t>(e.pool) >= pools.size()) {
      return InvalidArgument(f + ".pool: no such pool");
    }
    if (e.replicas < 0 || e.replicas > kMaxReplicas) {
      return InvalidArgument(f + ".replicas: must be in [0, " + std::to_string(kMaxReplicas) + "]");
    }
  }
  if (!(slo.ttft_p99_s > 0)) return InvalidArgument("slo.ttft_p99_s: must be > 0");
  if (!(slo.tpot_p99_s > 0)) return InvalidArgument("slo.tpot_p99_s: must be > 0");
  return Status::Ok();
}

}  // namespace tokenpool::sim
