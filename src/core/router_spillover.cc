// "spillover": two-pool routing, and while the pool a request fits is saturated (utilization at
// or above spill_utilization, or requests queued) it goes to the next larger pool that is not.
// Saturation comes from the token pools' own state, not a guess. If every larger pool is
// saturated too, the request stays where it fits and waits there.
#include "tokenpool/router.h"

namespace tokenpool {

int SmallestFittingPool(int64_t budget, std::span<const RoutePool> pools);

namespace {

class SpilloverRouter final : public Router {
 public:
  explicit SpilloverRouter(const RouterConfig& c) : threshold_(c.spill_utilization) {}
  std::string_view Name() const override { return "spillover"; }
  RouteDecision Route(int64_t budget, std::span<const RoutePool> pools) const override {
    const int fit = SmallestFittingPool(budget, pools);
    if (fit < 0) return {};
    if (!Saturated(pools[fit])) return {fit, fit == 0 ? RouteReason::kShort : RouteReason::kLong};
    for (size_t j = static_cast<size_t>(fit) + 1; j < pools.size(); ++j) {
      if (!Saturated(pools[j])) return {static_cast<int>(j), RouteReason::kSpilled};
    }
    return {fit, fit == 0 ? RouteReason::kShort : RouteReason::kLong};
  }

 private:
  bool Saturated(const RoutePool& p) const { return p.queued > 0 || p.utilization >= threshold_; }
  double threshold_;
};

}  // namespace

std::unique_ptr<Router> MakeSpilloverRouter(const RouterConfig& c) {
  return std::make_unique<SpilloverRouter>(c);
}

}  // namespace tokenpool
