#include "mock/responses.h"

#include <array>
#include <charconv>

namespace tokenpool::mock {
namespace {

// 64 common English words: generated text looks like prose and every word is one token.
constexpr std::array<std::string_view, 64> kWords = {
    "the",   "of",   "and",  "to",    "in",    "is",    "that", "for",   "it",    "as",    "with",
    "was",   "on",   "be",   "by",    "this",  "are",   "or",   "from",  "at",    "which", "an",
    "not",   "have", "has",  "but",   "were",  "they",  "one",  "all",   "can",   "their", "more",
    "other", "time", "will", "some",  "would", "there", "what", "model", "token", "pool",  "data",
    "we",    "when", "each", "these", "two",   "also",  "new",  "used",  "may",   "first", "most",
    "only",  "over", "such", "into",  "then",  "than",  "very", "well",  "state"};

uint64_t Mix(uint64_t x) {  // splitmix64 finalizer
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

void AppendInt(int64_t v, std::string* out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}

void AppendHead(const ResponseMeta& m, bool chunk, std::string* out) {
  const bool chat = m.endpoint == Endpoint::kChatCompletions;
  out->append(chat ? "{\"id\":\"chatcmpl-" : "{\"id\":\"cmpl-");
  AppendInt(static_cast<int64_t>(m.id), out);
  out->append("\",\"object\":\"");
  out->append(chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion");
  out->append("\",\"created\":");
  AppendInt(m.created, out);
  out->append(",\"model\":");
  AppendJsonString(m.model, out);
}

void AppendUsage(int64_t prompt, int64_t completion, std::string* out) {
  out->append("\"usage\":{\"prompt_tokens\":");
  AppendInt(prompt, out);
  out->append(",\"total_tokens\":");
  AppendInt(prompt + completion, out);
  out->append(",\"completion_tokens\":");
  AppendInt(completion, out);
  out->append("}");
}

}  // namespace

void AppendJsonString(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(ch);
    } else if (c < 0x20) {
      out->append("\\u00");
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    } else {
      out->push_back(ch);
    }
  }
  out->push_back('"');
}

void AppendGeneratedText(uint64_t seed, uint64_t prompt_hash, int64_t from, int64_t count,
                         std::string* out) {
  const uint64_t base = Mix(seed ^ Mix(prompt_hash));
  for (int64_t i = from; i < from + count; ++i) {
    if (i > 0) out->push_back(' ');
    out->append(kWords[Mix(base + static_cast<uint64_t>(i)) % kWords.size()]);
  }
}

void AppendFullResponse(const ResponseMeta& m, std::span<const std::string> texts,
                        std::string_view finish_reason, int64_t prompt_tokens,
                        int64_t completion_tokens, std::string* out) {
  AppendHead(m, false, out);
  const bool chat = m.endpoint == Endpoint::kChatCompletions;
  out->append(",\"choices\":[");
  for (size_t i = 0; i < texts.size(); ++i) {
    if (i > 0) out->push_back(',');
    out->append("{\"index\":");
    AppendInt(static_cast<int64_t>(i), out);
    out->append(chat ? ",\"message\":{\"role\":\"assistant\",\"content\":" : ",\"text\":");
    AppendJsonString(texts[i], out);
    out->append(chat ? "},\"logprobs\":null,\"finish_reason\":\""
                     : ",\"logprobs\":null,\"finish_reason\":\"");
    out->append(finish_reason);
    out->append("\"}");
  }
  out->append("],");
  AppendUsage(prompt_tokens, completion_tokens, out);
  out->append("}");
}

void AppendChunkEvent(const ResponseMeta& m, int64_t index, std::string_view text,
                      const char* finish_reason, bool role_chunk, bool usage_null,
                      std::string* out) {
  out->append("data: ");
  AppendHead(m, true, out);
  out->append(",\"choices\":[{\"index\":");
  AppendInt(index, out);
  if (m.endpoint == Endpoint::kChatCompletions) {
    out->append(role_chunk ? ",\"delta\":{\"role\":\"assistant\",\"content\":"
                           : ",\"delta\":{\"content\":");
    AppendJsonString(text, out);
    out->append("},\"logprobs\":null,\"finish_reason\":");
  } else {
    out->append(",\"text\":");
    AppendJsonString(text, out);
    out->append(",\"logprobs\":null,\"finish_reason\":");
  }
  if (finish_reason != nullptr) {
    out->push_back('"');
    out->append(finish_reason);
    out->push_back('"');
  } else {
    out->append("null");
  }
  out->append("}]");
  if (usage_null) out->append(",\"usage\":null");
  out->append("}\n\n");
}

void AppendUsageEvent(const ResponseMeta& m, int64_t prompt_tokens, int64_t completion_tokens,
                      std::string* out) {
  out->append("data: ");
  AppendHead(m, true, out);
  out->append(",\"choices\":[],");
  AppendUsage(prompt_tokens, completion_tokens, out);
  out->append("}\n\n");
}

std::string ErrorJson(std::string_view message, std::string_view type, int code) {
  std::string out = "{\"object\":\"error\",\"message\":";
  AppendJsonString(message, &out);
  out.append(",\"type\":");
  AppendJsonString(type, &out);
  out.append(",\"param\":null,\"code\":");
  AppendInt(code, &out);
  out.append("}");
  return out;
}

std::string ModelsJson(std::string_view model, int64_t max_model_len, int64_t created) {
  std::string out = "{\"object\":\"list\",\"data\":[{\"id\":";
  AppendJsonString(model, &out);
  out.append(",\"object\":\"model\",\"created\":");
  AppendInt(created, &out);
  out.append(",\"owned_by\":\"vllm\",\"root\":");
  AppendJsonString(model, &out);
  out.append(",\"parent\":null,\"max_model_len\":");
  AppendInt(max_model_len, &out);
  out.append("}]}");
  return out;
}

}  // namespace tokenpool::mock
