#include "load/plan.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>
#include <utility>

#include "scenario/scenario.h"
#include "sim/arrivals.h"
#include "sim/config.h"
#include "sim/rng.h"
#include "tokenpool/text_file.h"
#include "tokenpool/trace.h"
#include "tokenpool/units.h"

namespace tokenpool::load {
namespace {

using sim::ArrivalProcess;
using sim::ArrivalSpec;

// 50 M requests is 1.2 GB of plan and far past what one generator core can send in a run.
constexpr size_t kMaxPlannedRequests = 50'000'000;

// Weighted choice by a cumulative table.
struct Cdf {
  std::vector<double> sums;
  std::vector<uint32_t> values;
  void Add(uint32_t v, double w) {
    if (!(w > 0)) return;
    sums.push_back((sums.empty() ? 0 : sums.back()) + w);
    values.push_back(v);
  }
  bool empty() const { return sums.empty(); }
  uint32_t Pick(sim::Rng& rng) const {
    const double x = rng.Uniform() * sums.back();
    const size_t i =
        static_cast<size_t>(std::upper_bound(sums.begin(), sums.end(), x) - sums.begin());
    return values[std::min(i, values.size() - 1)];
  }
};

// The recorded rate of a trace stream and the length of one replay, as the simulator computes
// them: one replay lasts the span plus one mean gap, so replays do not overlap.
struct TraceShape {
  double first = 0;
  double period_s = 1;
  double recorded_rate = 1;
};

TraceShape ShapeOf(const std::vector<TraceRequest>& rows) {
  TraceShape t;
  t.first = *rows.front().arrival_s;
  const double span = *rows.back().arrival_s - t.first;
  const double n = static_cast<double>(rows.size());
  t.period_s = span + (n > 1 ? span / (n - 1) : 1.0);
  if (!(t.period_s > 0)) t.period_s = 1;
  t.recorded_rate = n / t.period_s;
  return t;
}

// The mean of a rate schedule over [from_s, to_s): the integral of its piecewise-linear rate
// (trapezoids between the points, exact) over the window.
double ScheduleMeanRate(const std::vector<sim::RatePoint>& sched, double from_s, double to_s) {
  if (!(to_s > from_s)) return sim::ScheduledRate(sched, from_s);
  std::vector<double> xs{from_s};
  for (const sim::RatePoint& pt : sched) {
    if (pt.at_s > from_s && pt.at_s < to_s) xs.push_back(pt.at_s);
  }
  xs.push_back(to_s);
  double area = 0;
  for (size_t i = 1; i < xs.size(); ++i) {
    area += (xs[i] - xs[i - 1]) *
            (sim::ScheduledRate(sched, xs[i - 1]) + sim::ScheduledRate(sched, xs[i])) / 2;
  }
  return area / (to_s - from_s);
}

// A stream's share of the run's mean arrival rate over [0, run_end_s), as it would be planned:
// its rate over its own window [start_s, end_s), weighted by the part of the run that window
// covers (a 100 req/s stream of the run's first 0.5 s of 4 adds 12.5 req/s, not 100).
double NominalRate(const ArrivalSpec& a, double run_end_s) {
  if (!(run_end_s > 0)) return 0;
  const double from = std::clamp(a.start_s, 0.0, run_end_s);
  const double to = a.end_s > 0 ? std::clamp(a.end_s, from, run_end_s) : run_end_s;
  const double covered = (to - from) / run_end_s;
  if (a.process == ArrivalProcess::kTrace && a.rate_rps <= 0) {
    return ShapeOf(*a.lengths).recorded_rate * covered;
  }
  if (!a.rate_schedule.empty()) {
    return to > from ? ScheduleMeanRate(a.rate_schedule, from, to) * covered : 0;
  }
  return a.rate_rps * covered;
}

// `a` with every rate multiplied by `factor` (--rate); a trace kept at its recorded rate gets
// that rate made explicit first.
ArrivalSpec Scaled(const ArrivalSpec& a, double factor) {
  ArrivalSpec s = a;
  if (factor == 1) return s;
  if (s.process == ArrivalProcess::kTrace && s.rate_rps <= 0) {
    s.rate_rps = ShapeOf(*s.lengths).recorded_rate;
  }
  s.rate_rps *= factor;
  for (sim::RatePoint& pt : s.rate_schedule) pt.rps *= factor;
  return s;
}

struct StreamContext {
  const ArrivalSpec* spec = nullptr;
  double factor = 1;    // rate multiplier from --rate
  double end_s = 0;     // the run's arrival window
  int64_t tenant = -1;  // -1: the shared stream, split by `tenants`
  const Cdf* tenants = nullptr;
  const std::vector<Cdf>* categories = nullptr;  // per tenant
  uint64_t seed = 1;                             // used when the spec has no seed of its own
};

// The arrival times come from the simulator's own code (sim/arrivals.h), and the draws per
// request are the simulator's, in its order (tenant, lengths, category, body noise): a stream
// with a seed of its own (arrivals.seed) plans the arrivals `tokenpool sim` runs.
Status Generate(const StreamContext& c, const LoadConfig& config,
                std::vector<PlannedRequest>* out) {
  const ArrivalSpec a = Scaled(*c.spec, c.factor);
  if (a.lengths->empty()) return InvalidArgument(a.source + ": no rows");
  if (a.process != ArrivalProcess::kTrace && a.rate_schedule.empty() && !(a.rate_rps > 0)) {
    return Status::Ok();
  }
  sim::Rng rng(a.seed ? *a.seed : c.seed);
  sim::ArrivalCursor cursor = sim::StartArrivals(a, Time::Zero() + Seconds(c.end_s), rng);
  for (Time t = sim::NextArrival(a, cursor, rng, Time::Zero()); t < cursor.end;
       t = sim::NextArrival(a, cursor, rng, t)) {
    if (out->size() >= kMaxPlannedRequests) {
      return InvalidArgument("--rate/--duration: more than 50,000,000 requests in the plan");
    }
    PlannedRequest r;
    r.at_s = t.seconds();
    r.tenant = c.tenant >= 0 ? static_cast<uint32_t>(c.tenant) : c.tenants->Pick(rng);
    const TraceRequest& row = sim::TakeRow(a, cursor, rng);
    r.category = (*c.categories)[r.tenant].Pick(rng);
    rng.Normal();  // the simulator's body-size noise: drawn to keep the next arrival in step
    int64_t p = std::max<int64_t>(1, row.input_tokens);
    int64_t o = std::max<int64_t>(1, row.output_tokens);
    if (config.max_prompt_tokens > 0) p = std::min(p, config.max_prompt_tokens);
    if (config.max_output_tokens > 0) o = std::min(o, config.max_output_tokens);
    r.prompt_tokens = static_cast<int32_t>(std::min<int64_t>(p, INT32_MAX));
    r.output_tokens = static_cast<int32_t>(std::min<int64_t>(o, INT32_MAX));
    out->push_back(r);
  }
  return Status::Ok();
}

Result<std::string> ReadFile(const std::string& path, const char* flag) {
  Result<std::string> text = ReadTextFile(path);
  if (!text.ok()) {
    return InvalidArgument(std::string(flag) + ": cannot read \"" + path +
                           "\": " + text.status().message());
  }
  return text;
}

uint64_t StreamSeed(uint64_t seed, uint64_t stream) {
  return seed * 0x9E3779B97F4A7C15ULL + stream * 0xD1B54A32D192ED03ULL + 1;
}

}  // namespace

Result<LoadPlan> BuildPlan(const LoadConfig& config) {
  if (Status s = config.Validate(); !s.ok()) return s;
  LoadPlan plan;
  std::vector<std::unique_ptr<ArrivalSpec>> owned;
  std::vector<StreamContext> streams;
  Cdf shared_tenants;
  std::vector<Cdf> tenant_categories;
  double run_end = config.duration_s;

  auto mix_cdf = [](const std::vector<ContentShare>& mix, uint32_t offset) {
    Cdf cdf;
    for (uint32_t i = 0; i < mix.size(); ++i) cdf.Add(offset + i, mix[i].share);
    return cdf;
  };

  if (!config.trace_path.empty()) {
    Result<std::string> text = ReadFile(config.trace_path, "--trace");
    if (!text.ok()) return text.status();
    Result<Trace> trace = ParseTrace(*text, config.trace_path);
    if (!trace.ok()) return trace.status();
    auto spec = std::make_unique<ArrivalSpec>();
    spec->lengths = std::make_shared<const std::vector<TraceRequest>>(std::move(trace->requests));
    spec->source = config.trace_path;
    const bool has_times = spec->lengths->front().arrival_s.has_value();
    const std::string process =
        config.process.empty() ? (has_times ? "trace" : "poisson") : config.process;
    if (process == "trace") {
      if (!has_times) {
        return InvalidArgument("--process trace: " + config.trace_path +
                               " has no arrival times (use --process poisson with --rate)");
      }
      spec->process = ArrivalProcess::kTrace;
      spec->rate_rps = config.rate_rps;
      if (run_end <= 0) {
        const TraceShape shape = ShapeOf(*spec->lengths);
        run_end =
            shape.period_s * (config.rate_rps > 0 ? shape.recorded_rate / config.rate_rps : 1.0);
      }
    } else {
      if (!(config.rate_rps > 0)) {
        return InvalidArgument("--rate: required (> 0) for Poisson arrivals from " +
                               config.trace_path);
      }
      spec->process = ArrivalProcess::kPoisson;
      spec->rate_rps = config.rate_rps;
      if (run_end <= 0) {
        run_end = static_cast<double>(spec->lengths->size()) / config.rate_rps;
      }
    }
    // A run end derived from the trace and the rate is bounded as --duration is: past 1e9 s
    // (a rate of 1e-10, rows 1e308 s apart) the due times overflow the clock, and the requests
    // were cut at once.
    if (!IsDurationSeconds(run_end, false)) {
      return InvalidArgument("--trace " + config.trace_path + " at " +
                             (config.rate_rps > 0 ? "--rate " + MessageNumber(config.rate_rps)
                                                  : std::string("its recorded rate")) +
                             ": the run would last " + MessageNumber(run_end) +
                             " s, past 1e9 s (set --duration or a higher --rate)");
    }
    if (config.keys.empty()) {
      plan.tenants.push_back({"default", "", 1});
    } else {
      for (const TenantKey& k : config.keys) {
        plan.tenants.push_back({k.name, k.key, k.share < 0 ? 1 : k.share});
      }
    }
    plan.categories = config.mix.empty() ? DefaultMix() : config.mix;
    for (uint32_t t = 0; t < plan.tenants.size(); ++t) {
      shared_tenants.Add(t, plan.tenants[t].share);
      tenant_categories.push_back(mix_cdf(plan.categories, 0));
    }
    if (shared_tenants.empty()) return InvalidArgument("--key: the tenant shares sum to 0");
    plan.source = "trace " + config.trace_path + " (" + process + ")";
    streams.push_back({spec.get(), 1, 0, -1, nullptr, nullptr, StreamSeed(config.seed, 0)});
    owned.push_back(std::move(spec));
  } else {
    Result<scenario::Scenario> sc = scenario::LoadScenarioFile(config.scenario_path);
    if (!sc.ok()) return sc.status();
    const sim::SimConfig& sim = sc->config;
    if (run_end <= 0) run_end = sim.duration_s;
    for (const TenantKey& k : config.keys) {
      const bool known = std::any_of(sim.tenants.begin(), sim.tenants.end(),
                                     [&](const sim::TenantSpec& t) { return t.name == k.name; });
      if (!known) {
        return InvalidArgument("--key: no tenant \"" + k.name + "\" in " + config.scenario_path);
      }
    }
    if (!config.mix.empty()) {
      plan.categories = config.mix;
    } else {
      for (const sim::ContentCategory& c : sim.categories) {
        plan.categories.push_back({c.name, ContentTypeForCategory(c.name), c.share});
      }
    }
    const Cdf scenario_cats = mix_cdf(plan.categories, 0);
    for (uint32_t t = 0; t < sim.tenants.size(); ++t) {
      const sim::TenantSpec& ts = sim.tenants[t];
      PlanTenant pt{ts.name, ts.name, ts.share};
      for (const TenantKey& k : config.keys) {
        if (k.name != ts.name) continue;
        pt.key = k.key;
        if (k.share >= 0) pt.share = k.share;
      }
      plan.tenants.push_back(pt);
      shared_tenants.Add(t, pt.share);
      if (!ts.categories.empty() && config.mix.empty()) {
        const uint32_t offset = static_cast<uint32_t>(plan.categories.size());
        std::vector<ContentShare> own;
        for (const sim::ContentCategory& c : ts.categories) {
          own.push_back({c.name, ContentTypeForCategory(c.name), c.share});
        }
        tenant_categories.push_back(mix_cdf(own, offset));
        plan.categories.insert(plan.categories.end(), own.begin(), own.end());
      } else {
        tenant_categories.push_back(scenario_cats);
      }
    }
    double nominal = 0;
    if (sim.workload && !shared_tenants.empty()) {
      streams.push_back({&*sim.workload, 1, 0, -1, nullptr, nullptr, StreamSeed(config.seed, 0)});
      nominal += NominalRate(*sim.workload, run_end);
    }
    for (uint32_t t = 0; t < sim.tenants.size(); ++t) {
      if (!sim.tenants[t].arrivals) continue;
      streams.push_back(
          {&*sim.tenants[t].arrivals, 1, 0, t, nullptr, nullptr, StreamSeed(config.seed, t + 1)});
      nominal += NominalRate(*sim.tenants[t].arrivals, run_end);
    }
    if (streams.empty()) {
      return InvalidArgument(config.scenario_path +
                             ": no arrivals (no workload with tenant "
                             "shares and no tenant arrivals)");
    }
    const double factor = config.rate_rps > 0 && nominal > 0 ? config.rate_rps / nominal : 1;
    for (StreamContext& s : streams) s.factor = factor;
    plan.source = "scenario " + config.scenario_path;
    // The specs live in `sc` until the plan is built below.
    for (StreamContext& s : streams) {
      s.end_s = run_end;
      s.tenants = &shared_tenants;
      s.categories = &tenant_categories;
      if (Status st = Generate(s, config, &plan.requests); !st.ok()) return st;
    }
    streams.clear();
  }
  for (StreamContext& s : streams) {
    s.end_s = run_end;
    s.tenants = &shared_tenants;
    s.categories = &tenant_categories;
    if (Status st = Generate(s, config, &plan.requests); !st.ok()) return st;
  }
  std::stable_sort(
      plan.requests.begin(), plan.requests.end(),
      [](const PlannedRequest& a, const PlannedRequest& b) { return a.at_s < b.at_s; });
  plan.duration_s = run_end;
  plan.nominal_rate_rps = run_end > 0 ? static_cast<double>(plan.requests.size()) / run_end : 0;
  return plan;
}

}  // namespace tokenpool::load
