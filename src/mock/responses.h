#pragma once
// Response bodies of the mock server in the shapes OpenAI and vLLM use: completions (chat and
// text), their streaming chunks as SSE events, errors, and the model list. Plain string
// building (the mock's hot path in --instant mode), no JSON library.
//
//   std::string body;
//   AppendFullResponse(meta, {text}, "length", 12, 16, &body);
//   AppendChunkEvent(meta, 0, " word", nullptr, false, false, &body);  // "data: {...}\n\n"
//
// Thread-safety: pure functions.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "tokenpool/request_features.h"

namespace tokenpool::mock {

struct ResponseMeta {
  Endpoint endpoint = Endpoint::kChatCompletions;
  uint64_t id = 0;      // rendered "chatcmpl-<id>" or "cmpl-<id>"
  int64_t created = 0;  // Unix seconds
  std::string_view model;
};

// Appends the text of output tokens [from, from + count) of a request: deterministic in
// (seed, prompt_hash, index), one word per token, a leading space on all but token 0.
void AppendGeneratedText(uint64_t seed, uint64_t prompt_hash, int64_t from, int64_t count,
                         std::string* out);

// A whole non-streaming response with usage: one choice per text, "index" 0, 1, ... in order.
void AppendFullResponse(const ResponseMeta& meta, std::span<const std::string> texts,
                        std::string_view finish_reason, int64_t prompt_tokens,
                        int64_t completion_tokens, std::string* out);

// One SSE event "data: {chunk}\n\n" for choice `index`. `role_chunk` (chat only): the opening
// delta with the assistant role and empty content. `finish_reason` null: not finished.
// `usage_null`: the chunk carries "usage":null, as OpenAI does when
// stream_options.include_usage is set.
void AppendChunkEvent(const ResponseMeta& meta, int64_t index, std::string_view text,
                      const char* finish_reason, bool role_chunk, bool usage_null,
                      std::string* out);
// The final usage event (empty choices), sent when stream_options.include_usage is true.
void AppendUsageEvent(const ResponseMeta& meta, int64_t prompt_tokens, int64_t completion_tokens,
                      std::string* out);
inline constexpr std::string_view kDoneEvent = "data: [DONE]\n\n";

// vLLM's error body: {"object":"error","message":...,"type":...,"param":null,"code":N}.
std::string ErrorJson(std::string_view message, std::string_view type, int code);
// GET /v1/models.
std::string ModelsJson(std::string_view model, int64_t max_model_len, int64_t created);

// Appends s as a JSON string literal (quotes included).
void AppendJsonString(std::string_view s, std::string* out);

}  // namespace tokenpool::mock
