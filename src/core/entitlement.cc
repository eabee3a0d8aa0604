#include "tokenpool/entitlement.h"

#include <cmath>
#include <cstdio>

namespace tokenpool {

std::string_view EntitlementClassName(EntitlementClass c) {
  switch (c) {
    case EntitlementClass::kGuaranteed:
      return "guaranteed";
    case EntitlementClass::kElastic:
      return "elastic";
    case EntitlementClass::kSpot:
      return "spot";
  }
  return "unknown";
}

Result<EntitlementClass> ParseEntitlementClass(std::string_view name) {
  if (name == "guaranteed") return EntitlementClass::kGuaranteed;
  if (name == "elastic") return EntitlementClass::kElastic;
  if (name == "spot") return EntitlementClass::kSpot;
  return InvalidArgument("must be one of guaranteed, elastic, spot; got \"" + std::string(name) +
                         "\"");
}

std::string_view QuotaWindowName(QuotaWindow w) {
  switch (w) {
    case QuotaWindow::kMinute:
      return "minute";
    case QuotaWindow::kHour:
      return "hour";
    case QuotaWindow::kDay:
      return "day";
    case QuotaWindow::kMonth:
      return "month";
  }
  return "unknown";
}

Duration QuotaWindowLength(QuotaWindow w) {
  switch (w) {
    case QuotaWindow::kMinute:
      return Seconds(60);
    case QuotaWindow::kHour:
      return Seconds(3600);
    case QuotaWindow::kDay:
      return Seconds(86400);
    case QuotaWindow::kMonth:
      return Seconds(30.0 * 86400);
  }
  return Seconds(60);
}

Status EntitlementSpec::Validate() const {
  const std::string where = "entitlements[" + (name.empty() ? std::string("?") : name) + "]";
  if (name.empty()) return InvalidArgument(where + ".name: must not be empty");
  if (tenant.empty()) return InvalidArgument(where + ".tenant: must not be empty");
  if (static_cast<int>(cls) >= kNumClasses) {
    return InvalidArgument(where + ".class: must be one of guaranteed, elastic, spot");
  }
  if (!(weight >= kMinWeight && weight <= kMaxWeight)) {
    return InvalidArgument(where + ".weight: must be in [" + MessageNumber(kMinWeight) + ", " +
                           MessageNumber(kMaxWeight) + "], got " + MessageNumber(weight));
  }
  for (Dim d : kAllDims) {
    const std::string dim(DimName(d));
    if (!std::isfinite(guarantee[d]) || guarantee[d] < 0) {
      return InvalidArgument(where + ".guarantee." + dim + ": must be >= 0, got " +
                             MessageNumber(guarantee[d]));
    }
    if (!std::isfinite(burst[d]) || burst[d] < 0) {
      return InvalidArgument(where + ".burst." + dim + ": must be >= 0, got " +
                             MessageNumber(burst[d]));
    }
    if (burst[d] < guarantee[d]) {
      return InvalidArgument(where + ".burst." + dim + ": must be >= guarantee." + dim + " (" +
                             MessageNumber(guarantee[d]) + "), got " + MessageNumber(burst[d]));
    }
    if (cls == EntitlementClass::kSpot && guarantee[d] != 0) {
      return InvalidArgument(where + ".guarantee." + dim +
                             ": must be 0 for class spot (spot has no guarantee), got " +
                             MessageNumber(guarantee[d]));
    }
    if ((d == Dim::kConcurrency || d == Dim::kKvTokens) &&
        (guarantee[d] != std::floor(guarantee[d]) || burst[d] != std::floor(burst[d]))) {
      return InvalidArgument(where + "." + dim + ": guarantee and burst must be whole numbers");
    }
  }
  if (burst.concurrency < 1 || burst.kv_tokens < 1 || burst.token_rate <= 0) {
    return InvalidArgument(where +
                           ".burst: every dimension must be > 0 (an entitlement that can never "
                           "run a request is a configuration error), got " +
                           burst.ToString());
  }
  if (cls == EntitlementClass::kGuaranteed && guarantee.concurrency < 1) {
    return InvalidArgument(where + ".guarantee.concurrency: must be >= 1 for class guaranteed");
  }
  if (slo.ttft_target <= Duration::zero()) {
    return InvalidArgument(where + ".slo.ttft_target: must be > 0");
  }
  if (slo.max_queue_wait < Duration::zero()) {
    return InvalidArgument(where + ".slo.max_queue_wait: must be >= 0");
  }
  for (int w = 0; w < kNumQuotaWindows; ++w) {
    if (quotas.limit[w] < 0) {
      return InvalidArgument(
          where + ".quotas." + std::string(QuotaWindowName(static_cast<QuotaWindow>(w))) +
          ": must be >= 0 (0 = unlimited), got " + std::to_string(quotas.limit[w]));
    }
  }
  return Status::Ok();
}

}  // namespace tokenpool
