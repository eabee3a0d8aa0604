#pragma once
// PromptText: real-looking prompt text of a requested token size, in four kinds (prose, code,
// JSON, multilingual), without a tokenizer. Each kind has a corpus generated once from the seed
// (word lists and templates drawn with sim::Rng), stored JSON-escaped; a prompt is a slice of
// it at a per-request offset, so building a body is a copy. The slice's byte length is the
// token count times the kind's bytes per token, measured on these corpora with the mock's
// stand-in tokenizer (tests/load/text_test.cc checks it): prose 5.3, code 4.0, JSON 3.1,
// multilingual 4.0 bytes per token of escaped text (the stand-in counts a common word of up to
// eight letters as one token, so its prose ratio is above Llama 3's ~4.5).
//
//   PromptText text(seed);
//   std::string body;
//   text.AppendChatBody("llama-3-8b-h100", ContentType::kCode, 512, 128, request_index, &body);
//
// Thread-safety: immutable after construction; const methods may run on any thread.

#include <cstdint>
#include <string>
#include <string_view>

#include "load/config.h"

namespace tokenpool::load {

class PromptText {
 public:
  explicit PromptText(uint64_t seed);

  // Escaped bytes per token of a kind (the slice length for a token count).
  static double BytesPerToken(ContentType t);

  // Appends about `tokens` tokens of JSON-escaped text (valid inside a JSON string; never cut
  // inside an escape or a UTF-8 sequence). `index` picks the offset: the same index gives
  // the same text.
  void AppendEscaped(ContentType t, int64_t tokens, uint64_t index, std::string* out) const;

  // A whole streaming chat request body: one user message of about `prompt_tokens` tokens in
  // total (the chat template's framing included), max_tokens, stream with include_usage.
  void AppendChatBody(std::string_view model, ContentType t, int64_t prompt_tokens,
                      int64_t max_tokens, uint64_t index, std::string* out) const;

  const std::string& corpus(ContentType t) const { return corpus_[static_cast<int>(t)]; }

 private:
  std::string corpus_[kNumContentTypes];  // JSON-escaped
};

}  // namespace tokenpool::load
