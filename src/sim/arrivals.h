#pragma once
// The arrival times of one ArrivalSpec stream (trace replay, Poisson with an optional rate
// schedule, on-off), defined once for the simulator's event loop and the load generator's plan
// (src/load/plan.cc), so that both see the same arrivals for the same scenario and seed.
//
//   ArrivalCursor c = StartArrivals(spec, run_end, rng);
//   for (Time t = NextArrival(spec, c, rng, Time::Zero()); t < c.end;
//        t = NextArrival(spec, c, rng, t)) {
//     const TraceRequest& row = TakeRow(spec, c, rng);   // the arrival's lengths
//     ...
//   }
//
// The draws come from the Rng passed in (the simulator's shared one, or the stream's own when
// ArrivalSpec::seed is set), in this order: StartArrivals, then per arrival NextArrival and
// whatever the caller draws for the request (TakeRow among them).
//
// Thread-safety: plain functions of their arguments; a cursor belongs to one stream.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "sim/config.h"
#include "sim/rng.h"
#include "tokenpool/trace.h"
#include "tokenpool/units.h"

namespace tokenpool::sim {

struct ArrivalCursor {
  Time end;  // no arrival at or after this
  // kTrace
  size_t next_row = 0;
  int64_t loop = 0;
  double scale = 1;     // virtual seconds per recorded second
  double period_s = 0;  // recorded span of one replay
  // kPoisson with a rate schedule: the schedule's peak (the thinning's candidate rate)
  double peak_rps = 0;
  // kOnOff
  Time on_until;
  double on_rate = 0;
};

// The piecewise-linear rate of a schedule at `t_s` (see RatePoint); `sched` is not empty.
double ScheduledRate(const std::vector<RatePoint>& sched, double t_s);

// A cursor at the start of the run for `a` (validated by SimConfig::Validate); `run_end` is
// the end of the run's arrival window. Draws the first on-period of an on-off stream.
ArrivalCursor StartArrivals(const ArrivalSpec& a, Time run_end, Rng& rng);

// The arrival after the one at `now` (Time::Zero() for the first); a time >= c.end when the
// stream has no more.
Time NextArrival(const ArrivalSpec& a, ArrivalCursor& c, Rng& rng, Time now);

// The lengths of the arrival NextArrival just returned: the next row of a trace replay, or a
// row drawn uniformly.
const TraceRequest& TakeRow(const ArrivalSpec& a, ArrivalCursor& c, Rng& rng);

}  // namespace tokenpool::sim
