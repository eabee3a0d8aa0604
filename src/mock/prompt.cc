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

// One completions prompt that is a list of token ids: 1 + the ids, hashed by value.
Status TokenIdPrompt(od::array ids, const std::string& where, PromptPart* part) {
  part->tokens = 1;  // <|begin_of_text|>
  for (auto item : ids) {
    int64_t id = 0;
    if (auto e = item.get_int64().get(id)) return JsonError(where, e);
    ++part->tokens;
    part->hash = (part->hash ^ static_cast<uint64_t>(id)) * kFnvPrime;
  }
  return Status::Ok();
}

// "prompt": a string, a list of token ids, or a batch of strings or of token-id lists.
Status CompletionPrompts(od::value v, std::vector<PromptPart>* prompts) {
  od::json_type type;
  if (auto e = v.type().get(type)) return JsonError("prompt", e);
  if (type == od::json_type::string) {
    std::string_view s;
    if (auto e = v.get_string().get(s)) return JsonError("prompt", e);
    PromptPart& part = prompts->emplace_back(PromptPart{.tokens = 1, .hash = kFnvOffset});
    part.tokens += CountTokens(s);
    HashInto(&part.hash, s);
    return Status::Ok();
  }
  if (type != od::json_type::array) return InvalidArgument("prompt: expected string or array");
  od::array items;
  if (auto e = v.get_array().get(items)) return JsonError("prompt", e);
  bool ids = false;    // the array is one prompt of token ids
  bool lists = false;  // the array is a batch of token-id lists
  int64_t index = 0;
  for (auto item : items) {
    const std::string where = "prompt[" + std::to_string(index++) + "]";
    od::json_type it;
    if (auto e = item.type().get(it)) return JsonError(where, e);
    if (it == od::json_type::number) {
      if (!ids && !prompts->empty()) return InvalidArgument(where + ": expected string");
      if (!ids) prompts->push_back(PromptPart{.tokens = 1, .hash = kFnvOffset});
      ids = true;
      int64_t id = 0;
      if (auto e = item.get_int64().get(id)) return JsonError(where, e);
      PromptPart& part = prompts->back();
      ++part.tokens;
      part.hash = (part.hash ^ static_cast<uint64_t>(id)) * kFnvPrime;
      continue;
    }
    if (ids) return InvalidArgument(where + ": expected integer");
    // A batch is all strings or all token-id lists, as the API's types say.
    const bool list = it == od::json_type::array;
    if (!prompts->empty() && list != lists) {
      return InvalidArgument(where +
                             (lists ? ": expected a list of token ids" : ": expected string"));
    }
    lists = list;
    PromptPart& part = prompts->emplace_back(PromptPart{.tokens = 0, .hash = kFnvOffset});
    if (list) {
      od::array token_ids;
      if (auto e = item.get_array().get(token_ids)) return JsonError(where, e);
      if (Status st = TokenIdPrompt(token_ids, where, &part); !st.ok()) return st;
      continue;
    }
    std::string_view s;
    if (auto e = item.get_string().get(s)) return JsonError(where, e);
    part.tokens = 1 + CountTokens(s);
    HashInto(&part.hash, s);
  }
  if (prompts->empty()) return InvalidArgument("prompt: must not be empty");
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
  bool seen = false;
  for (auto field : root) {
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return JsonError("body", e);
    if (key == "n") {
      od::value v;
      if (auto e = field.value().get(v)) return JsonError("n", e);
      od::json_type type;
      if (auto e = v.type().get(type)) return JsonError("n", e);
      if (type == od::json_type::null) continue;
      int64_t n = 0;
      if (auto e = v.get_int64().get(n)) return JsonError("n", e);
      if (n < 1 || n > kMaxChoices) {
        return InvalidArgument("n: must be in [1, " + std::to_string(kMaxChoices) + "], got " +
                               std::to_string(n));
      }
      info.choices_per_prompt = n;
    } else if (endpoint == Endpoint::kChatCompletions && key == "messages") {
      seen = true;
      od::array messages;
      if (auto e = field.value().get_array().get(messages)) return JsonError("messages", e);
      PromptPart part{.tokens = kChatFramingTokens, .hash = kFnvOffset};
      int64_t index = 0;
      for (auto message : messages) {
        const std::string where = "messages[" + std::to_string(index++) + "]";
        od::object m;
        if (auto e = message.get_object().get(m)) return JsonError(where, e);
        part.tokens += kChatPerMessageTokens;
        for (auto mf : m) {
          std::string_view mk;
          if (auto e = mf.unescaped_key().get(mk)) return JsonError(where, e);
          if (mk != "content") continue;
          od::value v;
          if (auto e = mf.value().get(v)) return JsonError(where + ".content", e);
          Status s = ContentTokens(v, where + ".content", &part.tokens, &part.hash);
          if (!s.ok()) return s;
        }
      }
      info.prompts.assign(1, part);
    } else if (endpoint == Endpoint::kCompletions && key == "prompt") {
      seen = true;
      od::value v;
      if (auto e = field.value().get(v)) return JsonError("prompt", e);
      info.prompts.clear();
      if (Status st = CompletionPrompts(v, &info.prompts); !st.ok()) return st;
    }
  }
  if (!seen) {
    return InvalidArgument(endpoint == Endpoint::kChatCompletions ? "messages: required"
                                                                  : "prompt: required");
  }
  for (const PromptPart& part : info.prompts) info.prompt_tokens += part.tokens;
  return info;
}

}  // namespace tokenpool::mock
