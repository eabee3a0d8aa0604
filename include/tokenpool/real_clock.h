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

  // While a Pin of this clock lives on a thread, Now() on that thread returns the time read at
  // its first call under the pin: one read of steady_clock for a section of work that is one
  // instant anyway, such as the gateway's sections under its lock, whose core calls read this
  // clock 6 times per plain request (callgrind call counts of run_gateway_profile.sh). The vDSO
  // read was 1.2% of the gateway's CPU at saturation when it ran ~11 times per request (perf
  // record -e cpu-clock -C 1 -g during a 5 s wrk run in saturation.sh's placement). Pinned
  // inside such a lock, the times the core sees stay monotonic across threads. A pin made
  // while one is in force does nothing.
  class Pin {
   public:
    explicit Pin(const RealClock& clock);
    ~Pin();
    Pin(const Pin&) = delete;
    Pin& operator=(const Pin&) = delete;

   private:
    bool owner_ = false;
  };

  // Wall time that `d` of this clock's time takes (d / K).
  Duration ToWall(Duration d) const;
  // This clock's time that wall time `d` is (d × K).
  Duration FromWall(Duration d) const;

 private:
  Time Read() const;  // steady_clock, scaled
  double scale_;
};

}  // namespace tokenpool
