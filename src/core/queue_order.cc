#include "tokenpool/queue_order.h"

#include <array>
#include <string>

namespace tokenpool {
namespace {
constexpr std::array<QueueOrderMode, 3> kOrders = {{
    {"edf", "earliest deadline first (the head's enqueue time + max queue wait)", &EdfOrder},
    {"fair-share", "smallest virtual counter first: the most-owed tenant (weighted, in tokens)",
     &FairShareOrder},
    {"fifo", "arrival order across the band", &FifoOrder},
}};
}  // namespace

std::span<const QueueOrderMode> QueueOrderModes() { return kOrders; }

Result<const QueueOrder*> FindQueueOrder(std::string_view name) {
  std::string known;
  for (const QueueOrderMode& m : kOrders) {
    if (m.name == name) return &m.get();
    if (!known.empty()) known += ", ";
    known += m.name;
  }
  return InvalidArgument("order: must be one of " + known + "; got \"" + std::string(name) + "\"");
}

}  // namespace tokenpool
