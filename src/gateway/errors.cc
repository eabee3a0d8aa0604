#include "gateway/errors.h"

#include <boost/json.hpp>

namespace tokenpool::gateway {

HttpError OutcomeError(AdmissionOutcome o) {
  switch (o) {
    case AdmissionOutcome::kRejectedOverEntitlement:
    case AdmissionOutcome::kRejectedPoolSaturated:
    case AdmissionOutcome::kRejectedSpotShed:
    case AdmissionOutcome::kRejectedQueueFull:
    case AdmissionOutcome::kExpired:
      return {429, "rate_limit_error", "rate_limit_exceeded"};
    case AdmissionOutcome::kRejectedQuota:
      return {429, "insufficient_quota", "insufficient_quota"};
    case AdmissionOutcome::kRejectedTooLarge:
      // Larger than the entitlement's burst or the whole pool: retrying cannot help.
      return {400, "invalid_request_error", "request_too_large"};
    case AdmissionOutcome::kRejectedUnknownEntitlement:
      return {403, "permission_error", "no_entitlement"};
    case AdmissionOutcome::kCancelled:
      return {503, "server_error", "cancelled"};
    case AdmissionOutcome::kAdmittedGuaranteed:
    case AdmissionOutcome::kAdmittedBurst:
    case AdmissionOutcome::kQueued:
      break;
  }
  return {500, "server_error", "internal_error"};
}

std::string ErrorJson(std::string_view message, std::string_view type, std::string_view code) {
  boost::json::object err;
  err["message"] = message;
  err["type"] = type;
  err["param"] = nullptr;
  err["code"] = code;
  boost::json::object root;
  root["error"] = std::move(err);
  return boost::json::serialize(root);
}

}  // namespace tokenpool::gateway
