#pragma once
// Prompt reading for the mock server: the prompt-token count (usage.prompt_tokens) of an OpenAI
// request body by the stand-in tokenizer (mock/tokenizer.h), and a deterministic hash of the
// prompt that seeds the generated text.
//
//   PromptReader reader;                          // one per thread; reuses its buffer
//   Result<PromptInfo> p = reader.Read(body, Endpoint::kChatCompletions);
//
// Chat: 5 + Σ (5 + tokens of the trimmed content) over messages (Llama 3's chat template);
// content is a string, null, or an array of parts whose "text" fields are joined by newlines.
// Completions: 1 (<|begin_of_text|>) + tokens of "prompt" (a string, an array of strings
// counted as one, or token ids counted exactly).
// Errors: InvalidArgument naming the field ("messages[1].content: expected string, array or
// null"), or the simdjson error for malformed JSON.
//
// Thread-safety: not thread-safe; one reader per thread.

#include <cstdint>
#include <string>
#include <string_view>

#include "tokenpool/request_features.h"
#include "tokenpool/status.h"

namespace tokenpool::mock {

struct PromptInfo {
  int64_t prompt_tokens = 0;
  uint64_t hash = 0;  // FNV-1a over the prompt text: the same prompt, the same generated text
};

class PromptReader {
 public:
  Result<PromptInfo> Read(std::string_view body, Endpoint endpoint);

 private:
  std::string buffer_;  // body copy with simdjson's padding
};

}  // namespace tokenpool::mock
