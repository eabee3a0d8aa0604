#pragma once
// Entitlements: a tenant's share of a token pool, in inference-native units.
//
//   EntitlementSpec e;
//   e.name = "acme-chat"; e.tenant = "acme"; e.cls = EntitlementClass::kGuaranteed;
//   e.guarantee = {.token_rate = 500, .kv_tokens = 65536, .concurrency = 8};
//   e.burst     = {.token_rate = 2000, .kv_tokens = 262144, .concurrency = 32};
//   if (Status s = e.Validate(); !s.ok()) ...   // "entitlements[acme-chat].burst.kv_tokens: ..."
//
// Classes:
//   guaranteed  G is promised: counted against the pool at its maximum replicas, served in the
//               highest band, and a request within G is never refused (it waits at worst for
//               lent capacity to come back).
//   elastic     G is a fair-share baseline, also counted against the pool at its maximum
//               replicas; served in the middle band; above G it bursts, and among backlogged
//               elastic entitlements service follows weights through debt-based fair share.
//   spot        no guarantee (G must be zero); only backfills what the others leave, and is shed
//               first: no new spot work is admitted while any higher band waits.
//
// Thread-safety: plain values.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "tokenpool/resources.h"
#include "tokenpool/status.h"
#include "tokenpool/units.h"

namespace tokenpool {

enum class EntitlementClass : uint8_t { kGuaranteed = 0, kElastic = 1, kSpot = 2 };
inline constexpr int kNumClasses = 3;

// "guaranteed", "elastic", "spot".
std::string_view EntitlementClassName(EntitlementClass c);
// Parses the names above; anything else is an error naming the accepted values.
Result<EntitlementClass> ParseEntitlementClass(std::string_view name);

struct Slo {
  // Time-to-first-token target, used for reporting and to derive the default queue wait.
  Duration ttft_target = Seconds(2);
  // Longest a request may wait in the queue before it is refused; 0 = never queue (refuse at
  // once when it does not fit). Requests within a guaranteed entitlement's guarantee ignore it.
  Duration max_queue_wait = Seconds(2);
  bool operator==(const Slo&) const = default;
};

// Token quotas per fixed window (prompt + completion tokens). 0 = no quota for that window.
// Windows are fixed-length and aligned to multiples of their length on the pool's clock; a
// "month" is 30 days, since the core has no calendar.
enum class QuotaWindow : uint8_t { kMinute = 0, kHour, kDay, kMonth };
inline constexpr int kNumQuotaWindows = 4;
std::string_view QuotaWindowName(QuotaWindow w);
Duration QuotaWindowLength(QuotaWindow w);

struct TokenQuotas {
  std::array<int64_t, kNumQuotaWindows> limit{};  // tokens per window; 0 = unlimited
  bool operator==(const TokenQuotas&) const = default;
};

inline constexpr double kMinWeight = 1e-3;
inline constexpr double kMaxWeight = 1e3;

struct EntitlementSpec {
  std::string name;    // unique within a pool: "acme-chat"
  std::string tenant;  // who it belongs to: "acme"
  EntitlementClass cls = EntitlementClass::kElastic;
  // Within a class, higher priority is served first. Default 0.
  int32_t priority = 0;
  ResourceVector guarantee;  // G
  ResourceVector burst;      // B >= G on every dimension: the most it may ever use
  // Share of contended capacity relative to peers of its class, in [kMinWeight, kMaxWeight]:
  // a ratio of a million between two tenants is beyond any use, and fair share divides served
  // tokens by it (a weight near 0 made debts infinite, then NaN).
  double weight = 1.0;
  Slo slo;
  TokenQuotas quotas;

  // Names the field and the rule: "entitlements[acme-chat].burst.kv_tokens: must be >=
  // guarantee.kv_tokens (65536), got 1024".
  Status Validate() const;
  bool operator==(const EntitlementSpec&) const = default;
};

}  // namespace tokenpool
