#include "tokenpool/router.h"

#include <array>
#include <cmath>

namespace tokenpool {

std::string_view RouteReasonName(RouteReason r) {
  switch (r) {
    case RouteReason::kOnlyPool:
      return "only_pool";
    case RouteReason::kShort:
      return "short";
    case RouteReason::kLong:
      return "long";
    case RouteReason::kSpilled:
      return "spilled";
    case RouteReason::kNoPoolFits:
      return "no_pool_fits";
  }
  return "unknown";
}

Status RouterConfig::Validate() const {
  if (!(spill_utilization > 0 && spill_utilization <= 1) || !std::isfinite(spill_utilization)) {
    return InvalidArgument("router.spill_utilization: must be in (0, 1]");
  }
  return Status::Ok();
}

namespace {
constexpr std::array<RouterMode, 3> kModes = {{
    {"single", "one pool per model; refuse what exceeds its max_model_len", &MakeSinglePoolRouter},
    {"two-pool", "short pool up to its context, long pool above (the paper's rule)",
     &MakeTwoPoolRouter},
    {"spillover",
     "two-pool, and short requests spill to the long pool while the short pool "
     "is saturated",
     &MakeSpilloverRouter},
}};
}  // namespace

std::span<const RouterMode> RouterModes() { return kModes; }

Result<std::unique_ptr<Router>> MakeRouter(std::string_view name, const RouterConfig& config) {
  if (Status s = config.Validate(); !s.ok()) return s;
  std::string known;
  for (const RouterMode& m : kModes) {
    if (m.name == name) return m.make(config);
    if (!known.empty()) known += ", ";
    known += m.name;
  }
  return InvalidArgument("router.mode: must be one of " + known + "; got \"" + std::string(name) +
                         "\"");
}

std::string NoPoolFitsMessage(int64_t budget_tokens, std::span<const RoutePool> pools) {
  std::string m = "request needs " + std::to_string(budget_tokens) +
                  " tokens (estimated prompt + output reserve)";
  if (pools.empty()) return m + "; no pool serves this model";
  const RoutePool& largest = pools.back();
  return m + "; the largest pool for this model, \"" + std::string(largest.name) + "\", accepts " +
         std::to_string(largest.max_model_len) + " (reduce the prompt or max_tokens)";
}

}  // namespace tokenpool
