#pragma once
// The admission baselines that token pools are compared with (E2, E4 in docs/experiments.md),
// behind one small interface the simulator asks at each arrival. Token pools themselves and
// "no admission" are the simulator's own path (sim/simulator.cc); a policy here decides only
// whether a tenant may send a request now, or which replicas may serve it.
//
//   std::unique_ptr<AdmissionPolicy> p = MakeAdmissionPolicy(config);   // null: no gate
//   if (std::string_view why = p->Admit(tenant, now, tokens); !why.empty()) refuse(why);
//
//   std::vector<int32_t> n = DedicatedReplicas(config.tenants, 10);  // replicas per tenant
//
// Pure: no I/O, no clock (the time is passed in). Thread-safety: a policy is used by one
// simulation; the functions are reentrant.

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "sim/config.h"
#include "tokenpool/clock.h"

namespace tokenpool::sim {

class AdmissionPolicy {
 public:
  virtual ~AdmissionPolicy() = default;
  // Whether `tenant` may send a request that costs `tokens` (prompt estimate + max_tokens) at
  // `now`; an admitted request is counted against the tenant. Empty: admitted; otherwise the
  // reason it is refused (a counter name in the report). `now` never decreases.
  virtual std::string_view Admit(uint32_t tenant, Time now, int64_t tokens) = 0;
};

// The gate for config.admission: a request-rate or token-rate limiter per tenant
// (sim/rate_limit.cc); null for the modes that have none (token pools, none, dedicated).
std::unique_ptr<AdmissionPolicy> MakeAdmissionPolicy(const SimConfig& config);

// Dedicated endpoints (sim/dedicated.cc): `replicas` of a pool split among the tenants in
// proportion to DedicatedShareOf (largest remainder; ties to the earlier tenant). A tenant
// with 0 replicas has no endpoint: its requests are refused ("no_dedicated_replica").
std::vector<int32_t> DedicatedReplicas(const std::vector<TenantSpec>& tenants, int32_t replicas);

}  // namespace tokenpool::sim
