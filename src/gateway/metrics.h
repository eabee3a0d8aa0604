#pragma once
// Prometheus metrics of the gateway (prometheus-cpp core, text format), read from the core's
// snapshots when /metrics is scraped, so the request path pays nothing for them:
//   tokenpool_pool_requests_total{pool,outcome}        admission outcomes (AdmissionOutcomeName)
//   tokenpool_pool_settled_total, _released_total{pool}
//   tokenpool_pool_tokens_total{pool,kind}             settled prompt / completion tokens
//   tokenpool_pool_capacity, _in_use, _spare{pool,dim} per dimension (token_rate in tokens/s)
//   tokenpool_pool_queued, _open_reservations, _lending_factor{pool}
//   tokenpool_pool_desired_replicas{pool}              the autoscale signal
//   tokenpool_tenant_requests_total{pool,tenant,outcome}
//   tokenpool_tenant_in_use, _burst_ceiling{pool,tenant,dim}
//   tokenpool_tenant_debt_tokens, _queued{pool,tenant}
//   tokenpool_tenant_tokens_total{pool,tenant,kind}    settled prompt / completion tokens
// A tenant's counters cover every entitlement it has had in the pool (TokenPool::
// SnapshotTenants: one removed and added again by a reload or the admin API continues its
// series, its settles while draining included), and its in use and queued count its draining
// ones; burst_ceiling and debt_tokens are of the entitlement in force, and their series go
// once it is removed.
// and, observed on the request path (prometheus-cpp histograms: atomic, no lock of ours):
//   tokenpool_request_ttft_seconds{pool,tenant}        first content event (streaming)
//   tokenpool_request_duration_seconds{pool,tenant}    end to end, successful requests
//   tokenpool_queue_wait_seconds{pool,tenant}          time queued (queued requests only)
//   tokenpool_estimator_relative_error{pool}           (estimate - usage) / usage, prompt
//   tokenpool_requests_rejected_total{code}            refused before reaching a backend, not
//                                                      by admission (bad key, body, model, URL,
//                                                      size; no entitlement; no healthy
//                                                      instance), by OpenAI error code
// The autoscaler is sampled at each scrape (its smoothing therefore follows the scrape
// interval).
//
// Thread-safety: Collect() must be called by one thread at a time with the GatewayState
// locked; Serialize() and ForRequest() are thread-safe, and so is observing the histograms of
// a RequestMetrics.

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/state.h"

namespace prometheus {
class Registry;
class Histogram;
class Counter;
}  // namespace prometheus

namespace tokenpool::gateway {

// The histograms of one (pool, tenant), looked up once per request.
struct RequestMetrics {
  prometheus::Histogram* ttft = nullptr;
  prometheus::Histogram* e2e = nullptr;
  prometheus::Histogram* queue_wait = nullptr;
  prometheus::Histogram* estimate_error = nullptr;  // per pool
};

class GatewayMetrics {
 public:
  GatewayMetrics();
  ~GatewayMetrics();
  GatewayMetrics(const GatewayMetrics&) = delete;
  GatewayMetrics& operator=(const GatewayMetrics&) = delete;

  // Refreshes the families read from the core's snapshots (state locked by the caller).
  void Collect(GatewayState& state);
  // The Prometheus text exposition of everything.
  std::string Serialize();
  // The histograms of (pool, tenant), created on first use; the pointer stays valid for this
  // object's life (none is ever dropped, tenants that a reload removed included).
  RequestMetrics* ForRequest(int pool, const std::string& pool_name, const std::string& tenant);
  // Counts a request refused before admission, by its error code (thread-safe).
  void Rejected(std::string_view code);

 private:
  struct Families;  // registered once, in the constructor
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<Families> f_;
  std::mutex request_mu_;  // guards request_
  std::map<std::pair<int, std::string>, std::unique_ptr<RequestMetrics>> request_;
  std::map<std::string, prometheus::Counter*, std::less<>> rejected_;  // guarded by request_mu_
  // (pool, tenant) whose burst_ceiling and debt_tokens series were set by the last Collect.
  std::set<std::pair<std::string, std::string>> in_force_;
};

}  // namespace tokenpool::gateway
