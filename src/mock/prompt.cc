#include "mock/prompt.h"

#include <simdjson.h>

#include <string>

#include "mock/tokenizer.h"

namespace tokenpool::mock {
namespace {

namespace od = simdjson::ondemand;

constexpr uint64_t kFnvOffset = 1469598103934665603ULL;
constexpr uint64_t kFnvPrime = 1099511628211ULL;

void HashInto(uint64_t* h, std::string_view s) {
  for (char ch : s) {
    *h ^= static_cast<unsigned char>(ch);
    *h *= kFnvPrime;
  }
}

Status JsonError(const std::string& where, simdjson::error_code e) {
  return InvalidArgument(where + ": " + simdjson::error_message(e));
}

// Tokens of a chat content value: string, null, or an array of parts.
Status ContentTokens(od::value v, const std::string& where, int64_t* tokens, uint64_t* hash) {
  od::json_type type;
  if (auto e = v.type().get(type)) return JsonError(where, e);
  if (type == od::json_type::null) return Status::Ok();
  if (type == od::json_type::string) {
    std::string_view s;
    if (auto e = v.get_string().get(s)) return JsonError(where, e);
    *tokens += CountChatContentTokens(s);
    HashInto(hash, s);
    return Status::Ok();
  }
  if (type != od::json_type::array) {
    return InvalidArgument(where + ": expected string, array or null");
  }
  od::array parts;
  if (auto e = v.get_array().get(parts)) return JsonError(where, e);
  int64_t texts = 0;
  for (auto part : parts) {
    od::object obj;
    if (auto e = part.get_object().get(obj)) return JsonError(where, e);
    for (auto field : obj) {
      std::string_view key;
      if (auto e = field.unescaped_key().get(key)) return JsonError(where, e);
      if (key != "text") continue;
      std::string_view s;
      if (auto e = field.value().get_string().get(s)) return JsonError(where + ".text", e);
      *tokens += CountChatContentTokens(s) + (texts > 0 ? 1 : 0);  // joined by "\n"
      HashInto(hash, s);
      ++texts;
    }
  }
  return Status::Ok();
}

}  // namespace

Result<PromptInfo> PromptReader::Read(std::string_view body, Endpoint endpoint) {
  buffer_.reserve(body.size() + simdjson::SIMDJSON_PADDING);
  buffer_.assign(body);
  thread_local od::parser parser;
  od::document doc;
  if (auto e = parser.iterate(buffer_.data(), buffer_.size(), buffer_.capacity()).get(doc)) {
    return JsonError("body", e);
  }
  od::object root;
  if (auto e = doc.get_object().get(root)) return JsonError("body", e);
  PromptInfo info;
  info.hash = kFnvOffset;
  bool seen = false;
  for (auto field : root) {
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return JsonError("body", e);
    if (endpoint == Endpoint::kChatCompletions && key == "messages") {
      seen = true;
      od::array messages;
      if (auto e = field.value().get_array().get(messages)) return JsonError("messages", e);
      info.prompt_tokens = kChatFramingTokens;
      int64_t index = 0;
      for (auto message : messages) {
        const std::string where = "messages[" + std::to_string(index++) + "]";
        od::object m;
        if (auto e = message.get_object().get(m)) return JsonError(where, e);
        info.prompt_tokens += kChatPerMessageTokens;
        for (auto mf : m) {
          std::string_view mk;
          if (auto e = mf.unescaped_key().get(mk)) return JsonError(where, e);
          if (mk != "content") continue;
          od::value v;
          if (auto e = mf.value().get(v)) return JsonError(where + ".content", e);
          Status s = ContentTokens(v, where + ".content", &info.prompt_tokens, &info.hash);
          if (!s.ok()) return s;
        }
      }
    } else if (endpoint == Endpoint::kCompletions && key == "prompt") {
      seen = true;
      info.prompt_tokens = 1;  // <|begin_of_text|>
      od::value v;
      if (auto e = field.value().get(v)) return JsonError("prompt", e);
      od::json_type type;
      if (auto e = v.type().get(type)) return JsonError("prompt", e);
      if (type == od::json_type::string) {
        std::string_view s;
        if (auto e = v.get_string().get(s)) return JsonError("prompt", e);
        info.prompt_tokens += CountTokens(s);
        HashInto(&info.hash, s);
      } else if (type == od::json_type::array) {
        od::array items;
        if (auto e = v.get_array().get(items)) return JsonError("prompt", e);
        for (auto item : items) {
          od::json_type it;
          if (auto e = item.type().get(it)) return JsonError("prompt[]", e);
          if (it == od::json_type::number) {
            int64_t id = 0;
            if (auto e = item.get_int64().get(id)) return JsonError("prompt[]", e);
            ++info.prompt_tokens;
            info.hash = (info.hash ^ static_cast<uint64_t>(id)) * kFnvPrime;
          } else {
            std::string_view s;
            if (auto e = item.get_string().get(s)) return JsonError("prompt[]", e);
            info.prompt_tokens += CountTokens(s);
            HashInto(&info.hash, s);
          }
        }
      } else {
        return InvalidArgument("prompt: expected string or array");
      }
    }
  }
  if (!seen) {
    return InvalidArgument(endpoint == Endpoint::kChatCompletions ? "messages: required"
                                                                  : "prompt: required");
  }
  return info;
}

}  // namespace tokenpool::mock
