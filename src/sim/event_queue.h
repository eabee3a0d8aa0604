#pragma once
// EventQueue: the simulator's one ordering of events. The key (time, phase, seq) is defined here
// and nowhere else: earlier time first; at equal times the lower phase first (so that capacity
// freed by a completion is visible to an arrival at the same instant); then insertion order,
// with `seq` drawn from this queue instance (no process-global counter), so a run's order is a
// function of its inputs alone.
//
//   EventQueue q;
//   q.Push(Time::Zero() + Seconds(1), Phase::kArrival, {.kind = EventKind::kArrival, .a = 0});
//   while (!q.empty()) { ScheduledEvent e = q.Pop(); ... }
//
// Thread-safety: not synchronized; one simulation owns its queue.

#include <cstdint>
#include <queue>
#include <vector>

#include "tokenpool/units.h"

namespace tokenpool::sim {

// Order among events at the same instant.
enum class Phase : uint8_t {
  kCapacity = 0,  // a replica fails, recovers or finishes starting
  kStepEnd = 1,   // an engine iteration's tokens exist
  kWakeup = 2,    // a token pool's queue deadline
  kArrival = 3,   // a request reaches the gateway
  kControl = 4,   // autoscaler tick
  kSample = 5,    // time-series sample (observes, changes nothing)
};

enum class EventKind : uint8_t {
  kArrival,        // a: stream
  kStepEnd,        // a: pool, b: instance, c: instance generation
  kPoolWakeup,     // a: pool
  kCapacityEvent,  // a: index into SimConfig::capacity_events
  kReplicaReady,   // a: pool, b: instance, c: instance generation
  kAutoscaleTick,
  kSample,
};

struct Event {
  EventKind kind = EventKind::kArrival;
  uint32_t a = 0;
  uint32_t b = 0;
  uint32_t c = 0;
};

struct EventKey {
  int64_t time_ns = 0;
  Phase phase = Phase::kArrival;
  uint64_t seq = 0;
  bool operator<(const EventKey& o) const {
    if (time_ns != o.time_ns) return time_ns < o.time_ns;
    if (phase != o.phase) return phase < o.phase;
    return seq < o.seq;
  }
};

struct ScheduledEvent {
  EventKey key;
  Event event;
  Time at() const { return Time::FromNanos(key.time_ns); }
};

class EventQueue {
 public:
  void Push(Time t, Phase phase, const Event& e) { heap_.push({{t.nanos(), phase, seq_++}, e}); }
  bool empty() const { return heap_.empty(); }
  size_t size() const { return heap_.size(); }
  const ScheduledEvent& Top() const { return heap_.top(); }
  ScheduledEvent Pop() {
    ScheduledEvent e = heap_.top();
    heap_.pop();
    return e;
  }

 private:
  struct Later {
    bool operator()(const ScheduledEvent& x, const ScheduledEvent& y) const {
      return y.key < x.key;
    }
  };
  std::priority_queue<ScheduledEvent, std::vector<ScheduledEvent>, Later> heap_;
  uint64_t seq_ = 0;
};

}  // namespace tokenpool::sim
