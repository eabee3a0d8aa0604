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
      // Its entitlement was removed while it waited (admin API or reload): what a new request
      // of the tenant gets too (kRejectedUnknownEntitlement), not a 503 that clients retry.
      return {403, "permission_error", "entitlement_removed"};
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

namespace {

// `s` as well-formed UTF-8 (RFC 3629: no overlongs, surrogates or code points past U+10FFFF):
// each byte that does not begin or continue a well-formed sequence becomes '?' (a backend's
// text in another encoding, or a message cut inside a character), as strict JSON decoders
// refuse the rest.
std::string ValidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
    const unsigned char c = b(0);
    const size_t len = c < 0x80                 ? 1
                       : c >= 0xC2 && c <= 0xDF ? 2
                       : c >= 0xE0 && c <= 0xEF ? 3
                       : c >= 0xF0 && c <= 0xF4 ? 4
                                                : 0;
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) ok = (b(k) & 0xC0) == 0x80;
    if (ok && len == 3) ok = !(c == 0xE0 && b(1) < 0xA0) && !(c == 0xED && b(1) >= 0xA0);
    if (ok && len == 4) ok = !(c == 0xF0 && b(1) < 0x90) && !(c == 0xF4 && b(1) >= 0x90);
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out.push_back('?');
      ++i;
    }
  }
  return out;
}

}  // namespace

bool ToOpenAiError(std::string* body, unsigned status) {
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(*body, ec);
  const boost::json::object* o = !ec && v.is_object() ? &v.as_object() : nullptr;
  if (o != nullptr) {
    if (const boost::json::value* e = o->if_contains("error"); e != nullptr && e->is_object()) {
      return false;  // OpenAI's shape already
    }
  }
  boost::json::object err;
  const boost::json::value* msg = o != nullptr ? o->if_contains("message") : nullptr;
  std::string_view message = msg != nullptr && msg->is_string() ? std::string_view(msg->as_string())
                                                                : std::string_view(*body);
  if (message.size() > kMaxBackendMessage) message = message.substr(0, kMaxBackendMessage);
  err["message"] = ValidUtf8(message);
  err["type"] = status == 429 ? "rate_limit_error" : "invalid_request_error";
  const boost::json::value* param = o != nullptr ? o->if_contains("param") : nullptr;
  err["param"] = param != nullptr && param->is_string() ? *param : boost::json::value(nullptr);
  const boost::json::value* code = o != nullptr ? o->if_contains("code") : nullptr;
  if (message.find("maximum context length") != std::string_view::npos) {
    err["code"] = "context_length_exceeded";
  } else {
    err["code"] = code != nullptr && code->is_string() ? *code : boost::json::value(nullptr);
  }
  boost::json::object root;
  root["error"] = std::move(err);
  *body = boost::json::serialize(root);
  return true;
}

}  // namespace tokenpool::gateway
