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

// A backend's 4xx body in the OpenAI shape, for the client: a body that already has an "error"
// object is kept; vLLM's flat one ({"object":"error","message":...,"type":"BadRequestError",
// "param":...,"code":400}, as older vLLM releases and the mock answer) is wrapped, as is any
// other JSON ({"detail":...}, FastAPI's validation errors: the message is the body's text) and
// any text, at most kMaxBackendMessage bytes of it, made well-formed UTF-8 (a byte that is not
// becomes '?'). The type is "rate_limit_error" for a 429 (a backend behind its own limiter),
// else "invalid_request_error" (the backend refused the request itself; a refusal of the
// gateway's credentials is a 502 before this); the code is "context_length_exceeded" for vLLM's
// context-length message, as OpenAI's, else the backend's string code, else null; param is the
// backend's string param, else null. Returns whether the body was rewritten.
inline constexpr size_t kMaxBackendMessage = 4096;
bool ToOpenAiError(std::string* body, unsigned status);

}  // namespace tokenpool::gateway
