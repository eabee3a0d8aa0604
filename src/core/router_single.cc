// "single": one pool per model, as a homogeneous fleet is run today.
#include "tokenpool/router.h"

namespace tokenpool {
namespace {

class SinglePoolRouter final : public Router {
 public:
  std::string_view Name() const override { return "single"; }
  RouteDecision Route(int64_t budget, std::span<const RoutePool> pools) const override {
    if (pools.empty() || budget > pools.back().max_model_len) return {};
    // With several pools configured, the single router uses the largest.
    return {static_cast<int>(pools.size()) - 1, RouteReason::kOnlyPool};
  }
};

}  // namespace

std::unique_ptr<Router> MakeSinglePoolRouter(const RouterConfig&) {
  return std::make_unique<SinglePoolRouter>();
}

}  // namespace tokenpool
