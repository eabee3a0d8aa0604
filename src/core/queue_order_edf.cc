// "edf": earliest deadline first. The default for the guaranteed band, where every request is
// promised and the one closest to its deadline matters most.
#include "tokenpool/queue_order.h"

namespace tokenpool {
namespace {
class Edf final : public QueueOrder {
 public:
  std::string_view Name() const override { return "edf"; }
  double Key(const QueueHead& h) const override { return h.order_deadline.seconds(); }
  bool UsesVirtualTime() const override { return false; }
};
}  // namespace

const QueueOrder& EdfOrder() {
  static const Edf kOrder;
  return kOrder;
}

}  // namespace tokenpool
