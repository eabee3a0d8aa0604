#pragma once
// OpenAI-shaped errors: the one table from admission outcomes to HTTP statuses and the JSON body
// {"error":{"message","type","code"}} that the OpenAI API and its client libraries expect.
// Thread-safety: pure functions.

#include <string>
#include <string_view>

#include "tokenpool/token_pool.h"

namespace tokenpool::gateway {

struct HttpError {
  int status = 500;
  std::string_view type;  // "invalid_request_error", "rate_limit_error", ...
  std::string_view code;  // "rate_limit_exceeded", ...
};

// The refusal for an outcome that is not an admission (kQueued included: it has no refusal).
HttpError OutcomeError(AdmissionOutcome o);

// {"error":{"message":...,"type":...,"param":null,"code":...}}
std::string ErrorJson(std::string_view message, std::string_view type, std::string_view code);

}  // namespace tokenpool::gateway
