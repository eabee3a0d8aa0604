#pragma once
// Scenario files: a YAML description of a simulation (pools, tenants, workload, events, SLO)
// loaded into the simulator's config structs (sim/config.h). This library is the simulator's
// edge: it reads the YAML and the trace files it names (paths relative to the scenario file)
// and turns every problem into a Status that names file, line and field:
//   "e1.yaml:12: pools[0].replicas: must be >= 1"
// yaml-cpp's exceptions are caught here and never cross the API. Format: docs/experiments.md.
//
//   Result<Scenario> s = LoadScenarioFile("sim/scenarios/e1_homogeneous.yaml");
//   Result<SimResult> r = RunSimulation(s->config, {});
//
// Thread-safety: the functions are reentrant; results are plain values.

#include <string>
#include <string_view>

#include "sim/config.h"
#include "sim/sizing.h"
#include "tokenpool/status.h"

namespace tokenpool::scenario {

struct Scenario {
  sim::SimConfig config;
  sim::SizingOptions sizing;
};

// Reads and validates a scenario file (and the traces it names).
Result<Scenario> LoadScenarioFile(const std::string& path);

// Same from text: `source` names it in errors, `base_dir` resolves relative trace paths.
Result<Scenario> LoadScenarioText(std::string_view text, const std::string& source,
                                  const std::string& base_dir);

}  // namespace tokenpool::scenario
