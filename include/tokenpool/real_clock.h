#pragma once
// RealClock: monotonic time (std::chrono::steady_clock) as a tokenpool::Time. Lives in the
// platform library so that the pure core never reads the wall clock itself.
// Thread-safety: safe from any thread.

#include "tokenpool/clock.h"

namespace tokenpool {

// `d` × `k`, rounded to the nanosecond and saturated at ±2^62 ns (146 years): a duration on
// a clock of scale k from wall time (or back, with 1 / k).
Duration ScaleDuration(Duration d, double k);

class RealClock final : public Clock {
 public:
  // `scale` K > 0 runs the clock K times faster than wall time from an origin shared by every
  // scaled RealClock of this process (the moment the first one was constructed), so two clocks
  // of the same scale always agree: model time = origin + K × (wall − origin), saturating 2^62
  // ns after the origin (53 days of wall time at K = 1000). For a system in front of engines
  // that run K times faster than real ones (`tokenpool mock --speedup K`). 1 (the default) is
  // steady_clock itself; K <= 0 is taken as 1.
  explicit RealClock(double scale = 1.0);
  Time Now() const override;
  double scale() const { return scale_; }

  // Wall time that `d` of this clock's time takes (d / K).
  Duration ToWall(Duration d) const;
  // This clock's time that wall time `d` is (d × K).
  Duration FromWall(Duration d) const;

 private:
  double scale_;
};

}  // namespace tokenpool
