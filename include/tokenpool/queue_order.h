#pragma once
// QueueOrder: the order inside one priority band of a TokenPool's queue. A policy answers one
// question — the sort key of an entitlement whose head request waits (smaller goes first;
// entitlement priority is always the major key) — and keeps no state, so one instance is shared
// by every band that uses it. A new order is one new file (src/core/queue_order_<name>.cc) and
// one line in the table in src/core/queue_order.cc.
//
//   PoolConfig c;  c.order = {"edf", "fair-share", "fifo"};   // guaranteed, elastic, spot
//
// Thread-safety: immutable; Key() is const and safe from any thread.

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "tokenpool/status.h"
#include "tokenpool/units.h"

namespace tokenpool {

// What an order may look at: the entitlement's fair-share counter and its head request.
struct QueueHead {
  double virtual_tokens = 0;  // the entitlement's counter: charged tokens / weight
  Time order_deadline;        // head's enqueue time + the entitlement's max queue wait
  Time enqueued;              // head's enqueue time
  uint64_t seq = 0;           // head's arrival sequence in the pool
};

class QueueOrder {
 public:
  virtual ~QueueOrder() = default;
  virtual std::string_view Name() const = 0;
  // Smaller is served first.
  virtual double Key(const QueueHead& head) const = 0;
  // True when the key depends on virtual_tokens, which moves at every admission and settle of
  // the entitlement: the pool then re-keys it then.
  virtual bool UsesVirtualTime() const = 0;
};

struct QueueOrderMode {
  std::string_view name;
  std::string_view description;
  const QueueOrder& (*get)();
};
std::span<const QueueOrderMode> QueueOrderModes();
// Unknown names are an error naming the field and the known names.
Result<const QueueOrder*> FindQueueOrder(std::string_view name);

// Implementations (one file each).
const QueueOrder& EdfOrder();        // "edf": earliest deadline first
const QueueOrder& FairShareOrder();  // "fair-share": smallest virtual counter (largest debt)
const QueueOrder& FifoOrder();       // "fifo": arrival order

}  // namespace tokenpool
