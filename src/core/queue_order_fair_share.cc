// "fair-share": the smallest virtual counter (charged tokens / weight) first, i.e. the largest
// debt. Weighted fair queueing on tokens, as VTC does; the default for the elastic band. See
// docs/token-pools.md for the counter lift, the debt cap and the measured service-gap bound.
#include "tokenpool/queue_order.h"

namespace tokenpool {
namespace {
class FairShare final : public QueueOrder {
 public:
  std::string_view Name() const override { return "fair-share"; }
  double Key(const QueueHead& h) const override { return h.virtual_tokens; }
  bool UsesVirtualTime() const override { return true; }
};
}  // namespace

const QueueOrder& FairShareOrder() {
  static const FairShare kOrder;
  return kOrder;
}

}  // namespace tokenpool
