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
// The autoscaler is sampled at each scrape (its smoothing therefore follows the scrape
// interval; a periodic timer is a later slice).
//
// Thread-safety: not synchronized; called on the thread that owns the GatewayState.

#include <memory>
#include <string>
#include <vector>

#include "gateway/state.h"
#include "tokenpool/autoscale.h"
#include "tokenpool/clock.h"

namespace prometheus {
class Registry;
}

namespace tokenpool::gateway {

class GatewayMetrics {
 public:
  GatewayMetrics(const Clock& clock, int pools);
  ~GatewayMetrics();
  GatewayMetrics(const GatewayMetrics&) = delete;
  GatewayMetrics& operator=(const GatewayMetrics&) = delete;

  // Refreshes every family from `state` and returns the Prometheus text exposition.
  std::string Scrape(GatewayState& state);

 private:
  struct Families;  // registered once, in the constructor
  const Clock& clock_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<Families> f_;
  std::vector<Autoscaler> autoscalers_;  // one per pool
};

}  // namespace tokenpool::gateway
