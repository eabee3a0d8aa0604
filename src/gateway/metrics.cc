#include "gateway/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace tokenpool::gateway {
namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;
using prometheus::Labels;

// Counters mirror the core's monotonic counts: add the difference since the last scrape.
void SetCounter(Family<Counter>& f, const Labels& l, double value) {
  Counter& c = f.Add(l);
  if (value > c.Value()) c.Increment(value - c.Value());
}
void SetGauge(Family<Gauge>& f, const Labels& l, double value) { f.Add(l).Set(value); }

Family<Counter>& CounterFamily(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r);
}
Family<Histogram>& HistogramFamily(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(r);
}
Family<Gauge>& GaugeFamily(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r);
}

void SetVector(Family<Gauge>& f, Labels l, const ResourceVector& v) {
  for (Dim d : kAllDims) {
    l["dim"] = std::string(DimName(d));
    SetGauge(f, l, v[d]);
  }
}

void SetOutcomes(Family<Counter>& f, Labels l, const AdmissionCounters& c) {
  for (int o = 0; o < kNumAdmissionOutcomes; ++o) {
    l["outcome"] = std::string(AdmissionOutcomeName(static_cast<AdmissionOutcome>(o)));
    SetCounter(f, l, static_cast<double>(c.outcomes[static_cast<size_t>(o)]));
  }
}

}  // namespace

struct GatewayMetrics::Families {
  explicit Families(prometheus::Registry& r)
      : requests(CounterFamily(r, "tokenpool_pool_requests_total",
                               "Admission decisions per pool, by outcome.")),
        settled(CounterFamily(r, "tokenpool_pool_settled_total",
                              "Reservations settled with the backend's usage.")),
        released(CounterFamily(r, "tokenpool_pool_released_total",
                               "Reservations released without usage (failures, cancels).")),
        tokens(CounterFamily(r, "tokenpool_pool_tokens_total",
                             "Settled tokens per pool (kind: prompt, completion).")),
        capacity(GaugeFamily(r, "tokenpool_pool_capacity",
                             "Pool capacity per dimension (token_rate in tokens/s).")),
        in_use(GaugeFamily(r, "tokenpool_pool_in_use", "Pool capacity in use per dimension.")),
        spare(GaugeFamily(r, "tokenpool_pool_spare", "Room for new burst work per dimension.")),
        queued(GaugeFamily(r, "tokenpool_pool_queued", "Requests waiting in the pool's queue.")),
        open(GaugeFamily(r, "tokenpool_pool_open_reservations", "Reservations held now.")),
        lending(GaugeFamily(r, "tokenpool_pool_lending_factor",
                            "Share of unused guarantees lent to burst work.")),
        desired(GaugeFamily(r, "tokenpool_pool_desired_replicas",
                            "Autoscale signal: replicas the pool should have.")),
        t_requests(CounterFamily(r, "tokenpool_tenant_requests_total",
                                 "Admission decisions per tenant and pool, by outcome.")),
        t_in_use(GaugeFamily(r, "tokenpool_tenant_in_use",
                             "Entitlement usage per dimension (token_rate in tokens/s).")),
        t_ceiling(GaugeFamily(r, "tokenpool_tenant_burst_ceiling",
                              "Dynamic burst ceiling per dimension.")),
        t_debt(GaugeFamily(r, "tokenpool_tenant_debt_tokens",
                           "Fair-share debt: service owed to the tenant, in tokens.")),
        t_queued(GaugeFamily(r, "tokenpool_tenant_queued", "Requests of the tenant waiting.")),
        t_tokens(CounterFamily(r, "tokenpool_tenant_tokens_total",
                               "Settled tokens per tenant and pool (kind: prompt, completion).")),
        ttft(HistogramFamily(r, "tokenpool_request_ttft_seconds",
                             "Time to the first content event of streaming requests.")),
        e2e(HistogramFamily(r, "tokenpool_request_duration_seconds",
                            "End-to-end time of successful requests.")),
        queue_wait(HistogramFamily(r, "tokenpool_queue_wait_seconds",
                                   "Time queued requests waited for admission.")),
        estimate_error(
            HistogramFamily(r, "tokenpool_estimator_relative_error",
                            "(estimated - actual) / actual prompt tokens, per settled request.")),
        rejected(CounterFamily(
            r, "tokenpool_requests_rejected_total",
            "Requests refused before reaching a backend, other than by admission (429s are in "
            "tokenpool_pool_requests_total), by OpenAI error code.")) {}
  Family<Counter>& requests;
  Family<Counter>& settled;
  Family<Counter>& released;
  Family<Counter>& tokens;
  Family<Gauge>& capacity;
  Family<Gauge>& in_use;
  Family<Gauge>& spare;
  Family<Gauge>& queued;
  Family<Gauge>& open;
  Family<Gauge>& lending;
  Family<Gauge>& desired;
  Family<Counter>& t_requests;
  Family<Gauge>& t_in_use;
  Family<Gauge>& t_ceiling;
  Family<Gauge>& t_debt;
  Family<Gauge>& t_queued;
  Family<Counter>& t_tokens;
  Family<Histogram>& ttft;
  Family<Histogram>& e2e;
  Family<Histogram>& queue_wait;
  Family<Histogram>& estimate_error;
  Family<Counter>& rejected;
};

namespace {
// Latency buckets from 1 ms to 5 minutes (TTFT of a queued long prompt; a long answer).
const Histogram::BucketBoundaries& LatencyBuckets() {
  static const Histogram::BucketBoundaries b = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
  return b;
}
const Histogram::BucketBoundaries& ErrorBuckets() {
  static const Histogram::BucketBoundaries b = {-0.5, -0.25, -0.1, -0.05, -0.02, 0,
                                                0.02, 0.05,  0.1,  0.25,  0.5,   1};
  return b;
}
}  // namespace

RequestMetrics* GatewayMetrics::ForRequest(int pool, const std::string& pool_name,
                                           const std::string& tenant) {
  std::lock_guard lock(request_mu_);
  auto& slot = request_[{pool, tenant}];
  if (slot == nullptr) {
    const Labels l = {{"pool", pool_name}, {"tenant", tenant}};
    slot = std::make_unique<RequestMetrics>();
    slot->ttft = &f_->ttft.Add(l, LatencyBuckets());
    slot->e2e = &f_->e2e.Add(l, LatencyBuckets());
    slot->queue_wait = &f_->queue_wait.Add(l, LatencyBuckets());
    slot->estimate_error = &f_->estimate_error.Add({{"pool", pool_name}}, ErrorBuckets());
  }
  return slot.get();
}

void GatewayMetrics::Rejected(std::string_view code) {
  std::lock_guard lock(request_mu_);
  auto it = rejected_.find(code);
  if (it == rejected_.end()) {
    it = rejected_.emplace(std::string(code), &f_->rejected.Add({{"code", std::string(code)}}))
             .first;
  }
  it->second->Increment();
}

GatewayMetrics::GatewayMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      f_(std::make_unique<Families>(*registry_)) {}

GatewayMetrics::~GatewayMetrics() = default;

std::string GatewayMetrics::Serialize() {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

void GatewayMetrics::Collect(GatewayState& state) {
  Families& f = *f_;
  std::set<std::pair<std::string, std::string>> in_force;
  for (int p = 0; p < state.pool_count(); ++p) {
    PoolState& ps = state.pool(p);
    const PoolSnapshot snap = ps.pool->Snapshot();
    const Labels l = {{"pool", ps.spec.name}};
    SetOutcomes(f.requests, l, snap.counters);
    SetCounter(f.settled, l, static_cast<double>(snap.counters.settled));
    SetCounter(f.released, l, static_cast<double>(snap.counters.released));
    SetCounter(f.tokens, {{"pool", ps.spec.name}, {"kind", "prompt"}},
               static_cast<double>(snap.counters.prompt_tokens));
    SetCounter(f.tokens, {{"pool", ps.spec.name}, {"kind", "completion"}},
               static_cast<double>(snap.counters.completion_tokens));
    SetVector(f.capacity, l, snap.capacity);
    SetVector(f.in_use, l, snap.in_use);
    SetVector(f.spare, l, snap.spare);
    SetGauge(f.queued, l, snap.queued);
    SetGauge(f.open, l, snap.open_reservations);
    SetGauge(f.lending, l, snap.lending_factor);
    SetGauge(f.desired, l, state.DesiredReplicas(p, snap));
    for (const TenantSnapshot& t : ps.pool->SnapshotTenants()) {
      const Labels tl = {{"pool", ps.spec.name}, {"tenant", t.tenant}};
      SetOutcomes(f.t_requests, tl, t.counters);
      SetVector(f.t_in_use, tl, t.in_use);
      SetGauge(f.t_queued, tl, t.queued);
      SetCounter(f.t_tokens, {{"pool", ps.spec.name}, {"tenant", t.tenant}, {"kind", "prompt"}},
                 static_cast<double>(t.counters.prompt_tokens));
      SetCounter(f.t_tokens, {{"pool", ps.spec.name}, {"tenant", t.tenant}, {"kind", "completion"}},
                 static_cast<double>(t.counters.completion_tokens));
    }
    for (const auto& [tenant, te] : ps.by_tenant) {
      Result<EntitlementSnapshot> e = ps.pool->SnapshotEntitlement(te.ref);
      if (!e.ok()) continue;
      const Labels tl = {{"pool", ps.spec.name}, {"tenant", tenant}};
      SetVector(f.t_ceiling, tl, e->burst_ceiling);
      SetGauge(f.t_debt, tl, e->debt_tokens);
      in_force.emplace(ps.spec.name, tenant);
    }
  }
  // The ceiling and debt of an entitlement no longer in force mean nothing: their series go.
  for (const auto& [pool, tenant] : in_force_) {
    if (in_force.contains({pool, tenant})) continue;
    Labels tl = {{"pool", pool}, {"tenant", tenant}};
    f.t_debt.Remove(&f.t_debt.Add(tl));
    for (Dim d : kAllDims) {
      tl["dim"] = std::string(DimName(d));
      f.t_ceiling.Remove(&f.t_ceiling.Add(tl));
    }
  }
  in_force_ = std::move(in_force);
}

}  // namespace tokenpool::gateway
