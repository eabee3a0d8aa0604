#pragma once
// Router: which pool of a model serves a request, from its token budget and the pools' state.
//
// The paper's rule (He et al., arXiv 2604.09613): a request whose total budget (conservative
// prompt estimate + output reserve) fits the short pool's context goes to the short pool, the
// rest to the long pool; short requests spill to the long pool while the short pool is
// saturated. A request is never sent to a pool whose max_model_len it exceeds; one that fits no
// pool is refused.
//
//   auto router = MakeRouter("spillover", RouterConfig{}).value();
//   RoutePool pools[] = {{"short", 8192, short_pool.Utilization(), short_pool.QueueLength()},
//                        {"long", 65536, long_pool.Utilization(), long_pool.QueueLength()}};
//   RouteDecision r = router->Route(estimate.routing_budget, pools);
//   if (!r.ok()) -> 400 with r.message
//
// Pools are given smallest context first. Implementations: "single", "two-pool", "spillover"
// (one file each, src/core/router_*.cc), chosen by name through an explicit table.
// Thread-safety: routers are immutable after construction; Route() is const and safe to call
// from any thread.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "tokenpool/status.h"

namespace tokenpool {

// A pool as the router sees it: its context and its load, read from its TokenPool.
struct RoutePool {
  std::string_view name;
  int64_t max_model_len = 0;
  double utilization = 0;  // TokenPool::Utilization(): largest used/capacity share
  uint32_t queued = 0;     // TokenPool::QueueLength()
};

enum class RouteReason : uint8_t {
  kOnlyPool = 0,  // single-pool routing
  kShort,         // fits the short pool
  kLong,          // too long for the short pool
  kSpilled,       // short, but the short pool is saturated and the long one is not
  kNoPoolFits,    // larger than every pool's max_model_len: refuse (400)
};
// "only_pool", "short", "long", "spilled", "no_pool_fits": also the metric label.
std::string_view RouteReasonName(RouteReason r);

struct RouteDecision {
  int pool = -1;  // index into the pools given, or -1 when none fits
  RouteReason reason = RouteReason::kNoPoolFits;
  bool ok() const { return pool >= 0; }
};

struct RouterConfig {
  // The short pool counts as saturated at this utilization, or when requests wait in its queue.
  // 0.85: fleet-sim's spillover threshold (papers.md section 2).
  double spill_utilization = 0.85;
  Status Validate() const;
};

class Router {
 public:
  virtual ~Router() = default;
  virtual std::string_view Name() const = 0;
  // Requires pools ordered by max_model_len ascending. No allocation.
  virtual RouteDecision Route(int64_t budget_tokens, std::span<const RoutePool> pools) const = 0;
};

struct RouterMode {
  std::string_view name;
  std::string_view description;
  std::unique_ptr<Router> (*make)(const RouterConfig&);
};
std::span<const RouterMode> RouterModes();
// Unknown names are an error listing the known ones.
Result<std::unique_ptr<Router>> MakeRouter(std::string_view name, const RouterConfig& config);

// "request needs 70000 tokens (routing budget); the largest pool for this model, "long",
// accepts 65536": the text of the 400 a gateway returns for kNoPoolFits.
std::string NoPoolFitsMessage(int64_t budget_tokens, std::span<const RoutePool> pools);

// Implementations (one file each).
std::unique_ptr<Router> MakeSinglePoolRouter(const RouterConfig& config);
std::unique_ptr<Router> MakeTwoPoolRouter(const RouterConfig& config);
std::unique_ptr<Router> MakeSpilloverRouter(const RouterConfig& config);

}  // namespace tokenpool
