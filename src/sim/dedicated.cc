// Dedicated endpoints: every tenant gets its own replicas, sized by its share, and no tenant
// uses another's (the isolation a provisioned-throughput deployment buys). See
// admission_policy.h; the simulator tags each replica with its owner and routes only there.

#include <algorithm>
#include <cmath>

#include "sim/admission_policy.h"

namespace tokenpool::sim {

std::vector<int32_t> DedicatedReplicas(const std::vector<TenantSpec>& tenants, int32_t replicas) {
  std::vector<int32_t> out(tenants.size(), 0);
  double total = 0;
  for (const TenantSpec& t : tenants) total += DedicatedShareOf(t);
  if (!(total > 0) || replicas <= 0) return out;
  std::vector<double> remainder(tenants.size(), 0);
  int32_t given = 0;
  for (size_t t = 0; t < tenants.size(); ++t) {
    const double quota = replicas * DedicatedShareOf(tenants[t]) / total;
    out[t] = static_cast<int32_t>(std::floor(quota));
    remainder[t] = quota - out[t];
    given += out[t];
  }
  while (given < replicas) {
    size_t best = 0;
    for (size_t t = 1; t < tenants.size(); ++t) {
      if (remainder[t] > remainder[best] + 1e-12) best = t;
    }
    if (!(remainder[best] > 0)) break;
    ++out[best];
    remainder[best] = 0;
    ++given;
  }
  return out;
}

}  // namespace tokenpool::sim
