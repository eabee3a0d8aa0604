#pragma once
// LoadPlan: every request of a run, decided before the first one is sent: when it is due, its
// tenant, its content category, and its prompt and output lengths. Deterministic: the same
// config (and seed) gives the same plan, so two runs send the same requests.
//
// Sources:
//   --trace FILE     a CSV trace (tokenpool/trace.h). With arrival times it is replayed with
//                    the times compressed (or stretched) to --rate and looped until --duration,
//                    as the simulator's `process: trace`; without them (or --process poisson)
//                    arrivals are Poisson at --rate with lengths drawn uniformly from the rows.
//                    Tenants come from --key flags, picked per request by share.
//   --scenario FILE  the simulator's scenario YAML, loaded by src/scenario (so errors name
//                    file, line and field): its shared workload split by tenant share and each
//                    tenant's own stream, with the simulator's arrival processes (trace,
//                    poisson, onoff) and its Rng; --rate scales every stream by one factor.
//
//   Result<LoadPlan> p = BuildPlan(config);
//   for (const PlannedRequest& r : p->requests) ...   // sorted by at_s
//
// Thread-safety: BuildPlan is reentrant; the plan is a plain value.

#include <cstdint>
#include <string>
#include <vector>

#include "load/config.h"
#include "tokenpool/status.h"

namespace tokenpool::load {

struct PlannedRequest {
  double at_s = 0;  // due time since the run's start
  uint32_t tenant = 0;
  uint32_t category = 0;  // index into LoadPlan::categories
  int32_t prompt_tokens = 1;
  int32_t output_tokens = 1;
};

struct PlanTenant {
  std::string name;
  std::string key;  // empty: no Authorization header
  double share = 0;
};

struct LoadPlan {
  std::vector<PlanTenant> tenants;
  std::vector<ContentShare> categories;
  std::vector<PlannedRequest> requests;  // by at_s
  double duration_s = 0;                 // the arrival window
  double nominal_rate_rps = 0;           // requests / duration
  std::string source;                    // "trace conv.csv (replay x12.5)", for reports
};

Result<LoadPlan> BuildPlan(const LoadConfig& config);

}  // namespace tokenpool::load
