// "two-pool": the paper's rule. The smallest pool whose context holds the budget; the boundary
// is the short pool's max_model_len. With more than two pools it generalizes to "smallest
// context that fits".
#include "tokenpool/router.h"

namespace tokenpool {

// Shared with the spillover router: the smallest pool that holds the budget, or -1.
int SmallestFittingPool(int64_t budget, std::span<const RoutePool> pools) {
  for (size_t i = 0; i < pools.size(); ++i) {
    if (budget <= pools[i].max_model_len) return static_cast<int>(i);
  }
  return -1;
}

namespace {

class TwoPoolRouter final : public Router {
 public:
  std::string_view Name() const override { return "two-pool"; }
  RouteDecision Route(int64_t budget, std::span<const RoutePool> pools) const override {
    const int i = SmallestFittingPool(budget, pools);
    if (i < 0) return {};
    return {i, i == 0 ? RouteReason::kShort : RouteReason::kLong};
  }
};

}  // namespace

std::unique_ptr<Router> MakeTwoPoolRouter(const RouterConfig&) {
  return std::make_unique<TwoPoolRouter>();
}

}  // namespace tokenpool
