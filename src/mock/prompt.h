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
// Completions: 1 (<|begin_of_text|>) + tokens of each prompt: "prompt" is one string, one list
// of token ids, or a batch (an array of strings or of token-id lists), each prompt its own
// sequences in the engine, as vLLM runs them.
// `n` (choices per prompt, default 1) is read too; every choice is a sequence of its own.
// Errors: InvalidArgument naming the field ("messages[1].content: expected string, array or
// null"), or the simdjson error for malformed JSON.
//
// Thread-safety: not thread-safe; one reader per thread.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenpool/request_features.h"
#include "tokenpool/status.h"

namespace tokenpool::mock {

struct PromptPart {
  int64_t tokens = 0;
  uint64_t hash = 0;  // FNV-1a over the prompt text: the same prompt, the same generated text
};

struct PromptInfo {
  int64_t prompt_tokens = 0;        // over all prompts (usage.prompt_tokens)
  std::vector<PromptPart> prompts;  // one, or a completions batch's, in order
  int64_t choices_per_prompt = 1;   // n
};

class PromptReader {
 public:
  Result<PromptInfo> Read(std::string_view body, Endpoint endpoint);

 private:
  std::string buffer_;  // body copy with simdjson's padding
};

}  // namespace tokenpool::mock
