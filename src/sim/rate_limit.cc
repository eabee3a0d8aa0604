// Per-tenant rate limits, the commonest multi-tenant gate in LLM APIs (requests per minute,
// tokens per minute): a sliding window per tenant; a request is refused when it would take the
// tenant's count in the last `rate_limit_window_s` above limit × window. Nothing queues, and
// the limit does not know how loaded the replicas are. See admission_policy.h.

#include <deque>
#include <utility>

#include "sim/admission_policy.h"

namespace tokenpool::sim {
namespace {

class SlidingWindowLimit final : public AdmissionPolicy {
 public:
  // cost_is_tokens: count tokens (token-rate limit), else requests (request-rate limit).
  SlidingWindowLimit(const SimConfig& c, bool cost_is_tokens)
      : window_(Seconds(c.rate_limit_window_s)), tokens_(cost_is_tokens) {
    for (const TenantSpec& t : c.tenants) {
      const double per_s = cost_is_tokens ? t.rate_limit_tokens_per_s : t.rate_limit_rps;
      tenants_.emplace_back();
      tenants_.back().limit = per_s * c.rate_limit_window_s;
    }
  }

  std::string_view Admit(uint32_t tenant, Time now, int64_t tokens) override {
    Window& w = tenants_[tenant];
    while (!w.entries.empty() && w.entries.front().first <= now - window_) {
      w.sum -= w.entries.front().second;
      w.entries.pop_front();
    }
    const int64_t cost = tokens_ ? tokens : 1;
    // Integer counts against a real limit: 2.5 req/s over 10 s admits 25, refuses the 26th.
    if (static_cast<double>(w.sum + cost) > w.limit + 1e-9) {
      return tokens_ ? "rate_limited_tokens" : "rate_limited_requests";
    }
    w.sum += cost;
    w.entries.emplace_back(now, cost);
    return {};
  }

 private:
  struct Window {
    double limit = 0;
    int64_t sum = 0;
    std::deque<std::pair<Time, int64_t>> entries;
  };
  Duration window_;
  bool tokens_;
  std::vector<Window> tenants_;
};

}  // namespace

std::unique_ptr<AdmissionPolicy> MakeAdmissionPolicy(const SimConfig& config) {
  switch (config.admission) {
    case AdmissionMode::kRequestRate:
      return std::make_unique<SlidingWindowLimit>(config, /*cost_is_tokens=*/false);
    case AdmissionMode::kTokenRate:
      return std::make_unique<SlidingWindowLimit>(config, /*cost_is_tokens=*/true);
    case AdmissionMode::kTokenPools:
    case AdmissionMode::kNone:
    case AdmissionMode::kDedicated:
      break;
  }
  return nullptr;
}

}  // namespace tokenpool::sim
