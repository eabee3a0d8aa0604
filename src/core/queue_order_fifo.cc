// "fifo": arrival order across the whole band. The default for spot, which has no promise to
// keep and no share to balance.
#include "tokenpool/queue_order.h"

namespace tokenpool {
namespace {
class Fifo final : public QueueOrder {
 public:
  std::string_view Name() const override { return "fifo"; }
  double Key(const QueueHead& h) const override { return static_cast<double>(h.seq); }
  bool UsesVirtualTime() const override { return false; }
};
}  // namespace

const QueueOrder& FifoOrder() {
  static const Fifo kOrder;
  return kOrder;
}

}  // namespace tokenpool
