// Arrival processes: see arrivals.h.

#include "sim/arrivals.h"

#include <algorithm>

namespace tokenpool::sim {

double ScheduledRate(const std::vector<RatePoint>& sched, double t_s) {
  if (t_s <= sched.front().at_s) return sched.front().rps;
  for (size_t i = 1; i < sched.size(); ++i) {
    if (t_s < sched[i].at_s) {
      const RatePoint& a = sched[i - 1];
      const RatePoint& b = sched[i];
      return a.rps + (b.rps - a.rps) * (t_s - a.at_s) / (b.at_s - a.at_s);
    }
  }
  return sched.back().rps;
}

ArrivalCursor StartArrivals(const ArrivalSpec& a, Time run_end, Rng& rng) {
  ArrivalCursor c;
  const Time at_start = Time::Zero() + Seconds(a.start_s);
  c.end = a.end_s > 0 ? std::min(Time::Zero() + Seconds(a.end_s), run_end) : run_end;
  if (a.process == ArrivalProcess::kTrace) {
    const auto& rows = *a.lengths;
    const double first = *rows.front().arrival_s;
    const double span = *rows.back().arrival_s - first;
    const double n = static_cast<double>(rows.size());
    // One replay lasts the span plus one mean gap, so the replays do not overlap.
    c.period_s = span + (n > 1 ? span / (n - 1) : 1.0);
    if (!(c.period_s > 0)) c.period_s = 1;
    const double recorded_rate = n / c.period_s;
    c.scale = a.rate_rps > 0 ? recorded_rate / a.rate_rps : 1.0;
  } else if (a.process == ArrivalProcess::kOnOff) {
    c.on_rate = a.rate_rps * (a.on_mean_s + a.off_mean_s) / a.on_mean_s;
    c.on_until = at_start + Seconds(rng.Exponential(a.on_mean_s));
  } else {
    for (const RatePoint& pt : a.rate_schedule) c.peak_rps = std::max(c.peak_rps, pt.rps);
  }
  return c;
}

Time NextArrival(const ArrivalSpec& a, ArrivalCursor& c, Rng& rng, Time now) {
  const Time base = std::max(now, Time::Zero() + Seconds(a.start_s));
  switch (a.process) {
    case ArrivalProcess::kTrace: {
      const auto& rows = *a.lengths;
      if (c.next_row >= rows.size()) {
        c.next_row = 0;
        ++c.loop;
      }
      const double rec = *rows[c.next_row].arrival_s - *rows.front().arrival_s +
                         static_cast<double>(c.loop) * c.period_s;
      return Time::Zero() + Seconds(a.start_s + rec * c.scale);
    }
    case ArrivalProcess::kPoisson: {
      if (a.rate_schedule.empty()) return base + Seconds(rng.Exponential(1.0 / a.rate_rps));
      // Thinning: candidates at the schedule's peak rate, each kept with rate(t) / peak.
      Time t = base;
      for (;;) {
        t = t + Seconds(rng.Exponential(1.0 / c.peak_rps));
        if (t >= c.end) return t;
        if (rng.Uniform() * c.peak_rps < ScheduledRate(a.rate_schedule, t.seconds())) return t;
      }
    }
    case ArrivalProcess::kOnOff: {
      Time t = base + Seconds(rng.Exponential(1.0 / c.on_rate));
      while (t >= c.on_until) {  // the gap ran past this on-period: skip the off-period
        const Time on_start = c.on_until + Seconds(rng.Exponential(a.off_mean_s));
        c.on_until = on_start + Seconds(rng.Exponential(a.on_mean_s));
        t = on_start + Seconds(rng.Exponential(1.0 / c.on_rate));
      }
      return t;
    }
  }
  return Time::Max();
}

const TraceRequest& TakeRow(const ArrivalSpec& a, ArrivalCursor& c, Rng& rng) {
  const auto& rows = *a.lengths;
  return a.process == ArrivalProcess::kTrace ? rows[c.next_row++] : rows[rng.Below(rows.size())];
}

}  // namespace tokenpool::sim
