#pragma once
// The discrete-event fleet simulator: the tokenpool core (estimator, router, token pools,
// autoscaler) in front of engine models (src/engine/), on virtual time.
//
// Per request, the gateway path of the core: build synthetic RequestFeatures (bytes that follow
// the true prompt tokens at the category's bytes/token, with noise) -> estimate (or the oracle)
// -> route -> TokenPool admit | queue | refuse -> pick the replica with the least outstanding
// tokens that has KV room -> Engine::Submit; engine iterations run as StepEnd events at the
// iteration model's times; at the end, Settle() with the actual usage and teach the estimator.
//
//   Result<SimResult> r = RunSimulation(config, {});
//
// Deterministic: one EventQueue (sim/event_queue.h), one Rng seeded from config.seed; the same
// config gives the same event log hash and byte-identical reports. Pure: no I/O, no threads,
// no wall clock (the optional progress callback is the caller's).
//
// Thread-safety: RunSimulation is reentrant; separate runs share nothing but immutable traces.

#include <cstdint>
#include <functional>

#include "sim/config.h"
#include "sim/result.h"
#include "tokenpool/status.h"

namespace tokenpool::sim {

struct RunOptions {
  // Called about every 2^16 events with the virtual time and the run's duration (seconds).
  std::function<void(double now_s, double duration_s)> progress;
};

// Validates the config, then runs it to the end. Errors: the config's Validate() message, or
// a core error naming the pool or tenant (e.g. guarantees that exceed a pool).
Result<SimResult> RunSimulation(const SimConfig& config, const RunOptions& options);

}  // namespace tokenpool::sim
