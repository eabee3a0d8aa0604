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

// A number member (null: absent), as vLLM's pydantic reads it; `*present` says whether one came.
Status OptionalNumber(od::value v, const char* name, double* out, bool* present) {
  od::json_type type;
  if (auto e = v.type().get(type)) return JsonError(name, e);
  if (type == od::json_type::null) return Status::Ok();
  if (type != od::json_type::number) {
    return InvalidArgument(std::string(name) + ": must be a number");
  }
  if (auto e = v.get_double().get(*out)) return JsonError(name, e);
  *present = true;
  return Status::Ok();
}

// `stop`: a string, a list of strings, or null (vLLM's type). The mock generates no text that
// it would match: it is only checked.
Status CheckStop(od::value v) {
  od::json_type type;
  if (auto e = v.type().get(type)) return JsonError("stop", e);
  if (type == od::json_type::null || type == od::json_type::string) return Status::Ok();
  od::array items;
  if (type != od::json_type::array || v.get_array().get(items) != simdjson::SUCCESS) {
    return InvalidArgument("stop: must be a string or a list of strings");
  }
  for (auto item : items) {
    od::json_type it;
    if (item.type().get(it) != simdjson::SUCCESS || it != od::json_type::string) {
      return InvalidArgument("stop: must be a string or a list of strings");
    }
  }
  return Status::Ok();
}

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
  // The sampling parameters vLLM refuses with a 400 (SamplingParams._verify_args and the
  // request model): checked, though the mock's text does not depend on them.
  double temperature = 0, top_p = 1, best_of = 0, min_tokens = 0, max_tokens = 0;
  bool has_temperature = false, has_top_p = false, has_best_of = false, has_min = false,
       has_max = false, stream = false, stream_options = false;
  for (auto field : root) {
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return JsonError("body", e);
    if (key == "temperature" || key == "top_p" || key == "best_of" || key == "min_tokens" ||
        key == "max_tokens" || key == "max_completion_tokens") {
      od::value v;
      if (auto e = field.value().get(v)) return JsonError(std::string(key), e);
      const std::string name(key);
      Status st = key == "temperature"
                      ? OptionalNumber(v, "temperature", &temperature, &has_temperature)
                  : key == "top_p"      ? OptionalNumber(v, "top_p", &top_p, &has_top_p)
                  : key == "best_of"    ? OptionalNumber(v, "best_of", &best_of, &has_best_of)
                  : key == "min_tokens" ? OptionalNumber(v, "min_tokens", &min_tokens, &has_min)
                                        : OptionalNumber(v, name.c_str(), &max_tokens, &has_max);
      if (!st.ok()) return st;
      continue;
    }
    if (key == "stop") {
      od::value v;
      if (auto e = field.value().get(v)) return JsonError("stop", e);
      if (Status st = CheckStop(v); !st.ok()) return st;
      continue;
    }
    if (key == "stream") {
      bool b = false;
      stream = field.value().get_bool().get(b) == simdjson::SUCCESS && b;
      continue;
    }
    if (key == "stream_options") {
      od::value v;
      od::json_type type;
      stream_options = field.value().get(v) == simdjson::SUCCESS &&
                       v.type().get(type) == simdjson::SUCCESS && type != od::json_type::null;
      continue;
    }
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
        bool has_role = false;
        for (auto mf : m) {
          std::string_view mk;
          if (auto e = mf.unescaped_key().get(mk)) return JsonError(where, e);
          if (mk == "role") {
            std::string_view role;
            if (mf.value().get_string().get(role) != simdjson::SUCCESS ||
                (role != "system" && role != "user" && role != "assistant" && role != "tool" &&
                 role != "developer" && role != "function")) {
              return InvalidArgument(where +
                                     ".role: must be one of system, user, assistant, tool, "
                                     "developer, function");
            }
            has_role = true;
            continue;
          }
          if (mk != "content") continue;
          od::value v;
          if (auto e = mf.value().get(v)) return JsonError(where + ".content", e);
          Status s = ContentTokens(v, where + ".content", &part.tokens, &part.hash);
          if (!s.ok()) return s;
        }
        if (!has_role) return InvalidArgument(where + ".role: required");
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
  if (has_temperature && temperature < 0) {
    return InvalidArgument("temperature must be non-negative, got " + MessageNumber(temperature) +
                           ".");
  }
  if (has_top_p && !(top_p > 0 && top_p <= 1)) {
    return InvalidArgument("top_p must be in (0, 1], got " + MessageNumber(top_p) + ".");
  }
  if (has_best_of && best_of < static_cast<double>(info.choices_per_prompt)) {
    return InvalidArgument("best_of must be greater than or equal to n, got n=" +
                           std::to_string(info.choices_per_prompt) +
                           " and best_of=" + MessageNumber(best_of) + ".");
  }
  if (has_min && has_max && min_tokens > max_tokens) {
    return InvalidArgument("min_tokens must be less than or equal to max_tokens=" +
                           MessageNumber(max_tokens) + ", got " + MessageNumber(min_tokens) + ".");
  }
  if (stream_options && !stream) {
    return InvalidArgument("Stream options can only be defined when `stream=True`.");
  }
  for (const PromptPart& part : info.prompts) info.prompt_tokens += part.tokens;
  return info;
}

}  // namespace tokenpool::mock
