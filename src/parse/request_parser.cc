#include "parse/request_parser.h"

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

#include "parse/byte_stats.h"

namespace tokenpool::parse {

static_assert(RequestParser::kPadding == simdjson::SIMDJSON_PADDING);

namespace od = simdjson::ondemand;

namespace {

// The JSON path of the value being read, built only when an error is reported.
struct Path {
  const char* field = "";  // top-level key
  int64_t index = -1;      // element of that array, if any
  const char* sub = "";    // key inside the element
  int64_t sub_index = -1;  // element of that key's array, if any
  const char* leaf = "";   // key inside that element

  std::string ToString() const {
    std::string s(field);
    AppendIndex(index, &s);
    if (*sub != '\0') s.append(".").append(sub);
    AppendIndex(sub_index, &s);
    if (*leaf != '\0') s.append(".").append(leaf);
    if (s.empty()) s.assign("body");
    return s;
  }
  static void AppendIndex(int64_t i, std::string* s) {
    if (i < 0) return;
    char buf[24];
    const int n = std::snprintf(buf, sizeof(buf), "[%lld]", static_cast<long long>(i));
    s->append(buf, static_cast<size_t>(n));
  }
};

const char* TypeName(od::json_type t) {
  switch (t) {
    case od::json_type::array:
      return "array";
    case od::json_type::object:
      return "object";
    case od::json_type::number:
      return "number";
    case od::json_type::string:
      return "string";
    case od::json_type::boolean:
      return "boolean";
    case od::json_type::null:
      return "null";
  }
  return "unknown";
}

Status JsonError(const Path& p, simdjson::error_code e) {
  return InvalidArgument(p.ToString() + ": malformed JSON (" + simdjson::error_message(e) + ")");
}

Status TypeError(const Path& p, const char* expected, od::json_type got) {
  return InvalidArgument(p.ToString() + ": expected " + expected + ", got " + TypeName(got));
}

// Reads the type of v; a malformed value is reported at p.
Status TypeOf(od::value& v, const Path& p, od::json_type* t) {
  if (auto e = v.type().get(*t)) return JsonError(p, e);
  return Status::Ok();
}

// An integer in [lo, hi], or null (then *present stays false).
Status ReadCount(od::value& v, const Path& p, int64_t lo, int64_t hi, int64_t* out,
                 bool* present) {
  od::json_type t{};
  if (Status s = TypeOf(v, p, &t); !s.ok()) return s;
  if (t == od::json_type::null) {  // as absent, also after an earlier member of the name
    *present = false;
    return Status::Ok();
  }
  if (t != od::json_type::number) return TypeError(p, "integer", t);
  int64_t n = 0;
  if (v.get_int64().get(n)) {
    // 2.0 or 1e3 are integers to vLLM (pydantic's lax int): taken when whole and in range.
    double d = 0;
    if (v.get_double().get(d) || d != std::floor(d) || !(d >= -9.0e18 && d <= 9.0e18)) {
      return InvalidArgument(p.ToString() + ": expected an integer");
    }
    n = static_cast<int64_t>(d);
  }
  if (n < lo || n > hi) {
    return InvalidArgument(p.ToString() + ": must be in [" + std::to_string(lo) + ", " +
                           std::to_string(hi) + "], got " + std::to_string(n));
  }
  *out = n;
  *present = true;
  return Status::Ok();
}

Status ReadBool(od::value& v, const Path& p, bool* out) {
  od::json_type t{};
  if (Status s = TypeOf(v, p, &t); !s.ok()) return s;
  if (t == od::json_type::null) return Status::Ok();
  if (t != od::json_type::boolean) return TypeError(p, "boolean", t);
  if (auto e = v.get_bool().get(*out)) return JsonError(p, e);
  return Status::Ok();
}

// A member's name, compared as the backend's JSON reader reads it: as written, until Decode
// finds an escape in it ("max_tok\u0065ns" is max_tokens to vLLM; compared as written, it
// passed every check, the reserve, the bounds and the route, unread). Only a name that matched
// none of those a loop knows is looked at for a backslash: decoding every name first cost ~900
// of the ~10,200 instructions of a 1 KB chat request's parse, this ~120 (docs/benchmarks.md,
// "Member names read with their escapes").
class MemberName {
 public:
  explicit MemberName(od::field& field) : field_(field), raw_(field.key()) {}
  // Inlined: the compare of a literal is then a few instructions (out of line it cost ~400
  // per 1 KB parse).
  [[gnu::always_inline]] bool operator==(std::string_view name) const {
    return decoded_ ? text_ == name : raw_ == name;
  }
  // For a name that matched none: true when it has an escape and is decoded now (compare it
  // again); false when it is as written, was decoded already, or has a bad escape (error()).
  bool Decode() {
    if (decoded_) return false;
    const char* c = raw_.raw();
    while (*c != '"' && *c != '\\') ++c;
    if (*c != '\\') return false;
    error_ = field_.unescaped_key().get(text_);
    decoded_ = error_ == simdjson::SUCCESS;
    return decoded_;
  }
  simdjson::error_code error() const { return error_; }

 private:
  od::field& field_;
  od::raw_json_string raw_;
  std::string_view text_;
  bool decoded_ = false;
  simdjson::error_code error_ = simdjson::SUCCESS;
};

// Reads the parts of a body into *f; one per Parse() call.
// How the text statistics are counted (ParserConfig::byte_stats, ::stats_path).
enum class StatsPath { kNone, kRaw, kUnescaped, kReference };

struct Reader {
  RequestFeatures* f;
  StatsPath byte_stats;
  JsonKernel kernel;

  // Text content (the caller has checked that v is a string). With the statistics: counted on
  // the raw JSON string in place (CountJsonStringStats resolves the simple escapes in its bit
  // masks), so simdjson never copies and unescapes it; a string with a \u escape (or an invalid
  // one: simdjson reports it) is unescaped by simdjson into its string buffer, then counted.
  Status ReadText(od::value& v, const Path& p) {
    if (byte_stats == StatsPath::kRaw) {
      std::string_view raw = v.raw_json_token();
      // The token runs from the opening quote to the next token: drop the trailing whitespace.
      while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\n' || raw.back() == '\r' ||
                              raw.back() == '\t')) {
        raw.remove_suffix(1);
      }
      if (raw.size() >= 2 && raw.front() == '"' && raw.back() == '"' &&
          CountJsonStringStatsWith(kernel, raw.substr(1, raw.size() - 2), &f->text)) {
        return Status::Ok();
      }
    }
    std::string_view text;
    if (auto e = v.get_string().get(text)) return JsonError(p, e);
    if (byte_stats == StatsPath::kRaw || byte_stats == StatsPath::kUnescaped) {
      CountByteStats(text, &f->text);
    } else if (byte_stats == StatsPath::kReference) {
      CountByteStatsReference(text, &f->text);
    } else {
      f->text.bytes += static_cast<int64_t>(text.size());
    }
    return Status::Ok();
  }

  // Structured content (tools, tool calls, schemas): the JSON text's bytes; the elements of an
  // array are counted into *elements.
  Status ReadStructured(od::value& v, const Path& p, int64_t* elements, bool allow_object) {
    od::json_type t{};
    if (Status s = TypeOf(v, p, &t); !s.ok()) return s;
    if (t == od::json_type::null) return Status::Ok();
    std::string_view raw;
    if (t == od::json_type::array) {
      od::array a;
      if (auto e = v.get_array().get(a)) return JsonError(p, e);
      size_t n = 0;
      if (auto e = a.count_elements().get(n)) return JsonError(p, e);
      if (auto e = a.raw_json().get(raw)) return JsonError(p, e);
      if (elements != nullptr) *elements += static_cast<int64_t>(n);
    } else if (t == od::json_type::object && allow_object) {
      od::object o;
      if (auto e = v.get_object().get(o)) return JsonError(p, e);
      if (auto e = o.raw_json().get(raw)) return JsonError(p, e);
      if (elements != nullptr) *elements += 1;
    } else {
      return TypeError(p, allow_object ? "array, object or null" : "array or null", t);
    }
    f->structured_bytes += static_cast<int64_t>(raw.size());
    return Status::Ok();
  }

  // A member the gateway does not read, checked to be well-formed JSON all the way down
  // (simdjson's On-Demand API skips what is not read without checking it, so `"foo":[1,}` or
  // `"foo":tru` went upstream and came back as the backend's 400 in its own format). Nesting
  // is bounded here (On-Demand does not count the depth of what it skips, and each level is
  // a frame of this recursion): past kMaxCheckDepth levels the body is refused.
  static constexpr int kMaxCheckDepth = 1024;
  [[gnu::noinline]] static Status CheckValue(od::value& v, const Path& p, int depth = 0) {
    if (depth >= kMaxCheckDepth) {
      return InvalidArgument(p.ToString() + ": malformed JSON (nested deeper than 1024 levels)");
    }
    od::json_type t{};
    if (Status s = TypeOf(v, p, &t); !s.ok()) return s;
    switch (t) {
      case od::json_type::array: {
        od::array a;
        if (auto e = v.get_array().get(a)) return JsonError(p, e);
        for (auto element_result : a) {
          od::value element;
          if (auto e = std::move(element_result).get(element)) return JsonError(p, e);
          if (Status s = CheckValue(element, p, depth + 1); !s.ok()) return s;
        }
        return Status::Ok();
      }
      case od::json_type::object: {
        od::object o;
        if (auto e = v.get_object().get(o)) return JsonError(p, e);
        for (auto field_result : o) {
          od::field field;
          if (auto e = std::move(field_result).get(field)) return JsonError(p, e);
          std::string_view key;
          if (auto e = field.unescaped_key().get(key)) return JsonError(p, e);
          od::value value = field.value();
          if (Status s = CheckValue(value, p, depth + 1); !s.ok()) return s;
        }
        return Status::Ok();
      }
      case od::json_type::string: {
        std::string_view str;
        if (auto e = v.get_string().get(str)) return JsonError(p, e);
        return Status::Ok();
      }
      case od::json_type::number: {
        od::number n;
        if (auto e = v.get_number().get(n)) return JsonError(p, e);
        return Status::Ok();
      }
      case od::json_type::boolean: {
        bool b = false;
        if (auto e = v.get_bool().get(b)) return JsonError(p, e);
        return Status::Ok();
      }
      case od::json_type::null: {
        bool is_null = false;
        if (auto e = v.is_null().get(is_null)) return JsonError(p, e);
        if (!is_null) return InvalidArgument(p.ToString() + ": malformed JSON (not null)");
        return Status::Ok();
      }
    }
    return Status::Ok();
  }

  // One element of a content array: {"type":"text","text":...} or an image part.
  Status ReadContentPart(od::value& v, Path p) {
    od::json_type t{};
    if (Status s = TypeOf(v, p, &t); !s.ok()) return s;
    if (t == od::json_type::string) {  // some clients send bare strings in content arrays
      return ReadText(v, p);
    }
    if (t != od::json_type::object) return TypeError(p, "object or string", t);
    od::object part;
    if (auto e = v.get_object().get(part)) return JsonError(p, e);
    bool image = false;
    for (auto field_result : part) {
      od::field field;
      if (auto e = std::move(field_result).get(field)) return JsonError(p, e);
      MemberName key(field);
      od::value value = field.value();
      for (;;) {  // as written, then once more decoded when it has an escape
        if (key == "text") {
          p.leaf = "text";
          od::json_type vt{};
          if (Status s = TypeOf(value, p, &vt); !s.ok()) return s;
          if (vt != od::json_type::string) return TypeError(p, "string", vt);
          if (Status s = ReadText(value, p); !s.ok()) return s;
        } else if (key == "type") {
          p.leaf = "type";
          std::string_view type;
          if (value.get_string().get(type))
            return InvalidArgument(p.ToString() + ": expected string");
          if (type == "image_url" || type == "input_image" || type == "image") image = true;
        } else {
          if (key == "image_url" || key == "image") image = true;
          if (key.Decode()) continue;
          if (key.error()) return JsonError(p, key.error());
          p.leaf = "";
          if (Status s = CheckValue(value, p); !s.ok()) return s;
        }
        break;
      }
    }
    if (image) ++f->images;
    return Status::Ok();
  }

  Status ReadMessage(od::value& v, Path p) {
    od::json_type t{};
    if (Status s = TypeOf(v, p, &t); !s.ok()) return s;
    if (t != od::json_type::object) return TypeError(p, "object", t);
    od::object msg;
    if (auto e = v.get_object().get(msg)) return JsonError(p, e);
    for (auto field_result : msg) {
      od::field field;
      if (auto e = std::move(field_result).get(field)) return JsonError(p, e);
      MemberName key(field);
      od::value value = field.value();
      for (;;) {  // as written, then once more decoded when it has an escape
        if (key == "content") {
          p.sub = "content";
          od::json_type ct{};
          if (Status s = TypeOf(value, p, &ct); !s.ok()) return s;
          if (ct == od::json_type::string) {
            if (Status s = ReadText(value, p); !s.ok()) return s;
          } else if (ct == od::json_type::array) {
            od::array parts;
            if (auto e = value.get_array().get(parts)) return JsonError(p, e);
            p.sub_index = 0;
            for (auto part_result : parts) {
              od::value part;
              if (auto e = std::move(part_result).get(part)) return JsonError(p, e);
              if (Status s = ReadContentPart(part, p); !s.ok()) return s;
              ++p.sub_index;
            }
            p.sub_index = -1;
          } else if (ct != od::json_type::null) {
            return TypeError(p, "string, array or null", ct);
          }
        } else if (key == "tool_calls") {
          p.sub = "tool_calls";
          if (Status s = ReadStructured(value, p, &f->tool_calls, false); !s.ok()) return s;
        } else if (key == "function_call") {
          p.sub = "function_call";
          if (Status s = ReadStructured(value, p, &f->tool_calls, true); !s.ok()) return s;
        } else if (key == "role") {
          p.sub = "role";
          od::json_type rt{};
          if (Status s = TypeOf(value, p, &rt); !s.ok()) return s;
          if (rt != od::json_type::string) return TypeError(p, "string", rt);
          std::string_view role;
          if (auto e = value.get_string().get(role)) return JsonError(p, e);
        } else {
          if (key.Decode()) continue;
          if (key.error()) return JsonError(p, key.error());
          p.sub = "";
          if (Status s = CheckValue(value, p); !s.ok()) return s;
        }
        break;
      }
    }
    ++f->messages;
    return Status::Ok();
  }

  Status ReadMessages(od::value& v, Path p) {
    od::json_type t{};
    if (Status s = TypeOf(v, p, &t); !s.ok()) return s;
    if (t != od::json_type::array) return TypeError(p, "array", t);
    od::array messages;
    if (auto e = v.get_array().get(messages)) return JsonError(p, e);
    p.index = 0;
    for (auto message_result : messages) {
      od::value message;
      if (auto e = std::move(message_result).get(message)) return JsonError(p, e);
      if (Status s = ReadMessage(message, p); !s.ok()) return s;
      ++p.index;
    }
    if (p.index == 0) return InvalidArgument("messages: must not be empty");
    return Status::Ok();
  }

  // A token id: an integer >= 0 (vLLM refuses anything else, in its own error format).
  static Status ReadTokenId(od::value& v, const Path& p) {
    uint64_t id = 0;
    if (v.get_uint64().get(id)) {
      return InvalidArgument(p.ToString() + ": expected a token id (an integer >= 0)");
    }
    return Status::Ok();
  }

  // completions: "prompt" is a string, an array of token ids (one prompt), an array of strings
  // or an array of arrays of token ids (a batch: each its own sequences); an array holds one
  // kind, as the API's types say. A batch's longest prompt (bytes of text or ids) is kept:
  // the route is by it, each prompt being a sequence of its own (estimator.h).
  Status ReadPrompt(od::value& v, Path p) {
    od::json_type t{};
    if (Status s = TypeOf(v, p, &t); !s.ok()) return s;
    if (t == od::json_type::string) {
      ++f->messages;
      return ReadText(v, p);
    }
    if (t != od::json_type::array) return TypeError(p, "string or array", t);
    od::array items;
    if (auto e = v.get_array().get(items)) return JsonError(p, e);
    p.index = 0;
    od::json_type kind{};  // of the first element: the others must match
    for (auto item_result : items) {
      od::value item;
      if (auto e = std::move(item_result).get(item)) return JsonError(p, e);
      od::json_type it{};
      if (Status s = TypeOf(item, p, &it); !s.ok()) return s;
      if (p.index == 0) {
        kind = it;
      } else if (it != kind) {
        return TypeError(p,
                         kind == od::json_type::string   ? "string"
                         : kind == od::json_type::number ? "integer"
                                                         : "array",
                         it);
      }
      if (it == od::json_type::string) {
        ++f->messages;
        const int64_t before = f->text.bytes;
        if (Status s = ReadText(item, p); !s.ok()) return s;
        f->longest_prompt_bytes = std::max(f->longest_prompt_bytes, f->text.bytes - before);
      } else if (it == od::json_type::number) {
        if (Status s = ReadTokenId(item, p); !s.ok()) return s;
        ++f->prompt_token_ids;
      } else if (it == od::json_type::array) {
        od::array inner;
        if (auto e = item.get_array().get(inner)) return JsonError(p, e);
        Path q = p;
        q.sub_index = 0;
        for (auto id_result : inner) {
          od::value id;
          if (auto e = std::move(id_result).get(id)) return JsonError(q, e);
          if (Status s = ReadTokenId(id, q); !s.ok()) return s;
          ++f->prompt_token_ids;
          ++q.sub_index;
        }
        if (q.sub_index == 0) return InvalidArgument(p.ToString() + ": must not be empty");
        f->longest_prompt_ids = std::max<int64_t>(f->longest_prompt_ids, q.sub_index);
        ++f->messages;
      } else {
        return TypeError(p, "string, integer or array", it);
      }
      ++p.index;
    }
    if (kind == od::json_type::number) {  // one prompt of ids
      ++f->messages;
      f->longest_prompt_ids = f->prompt_token_ids;
    }
    if (p.index == 0) return InvalidArgument("prompt: must not be empty");
    return Status::Ok();
  }
};

}  // namespace

Status ParserConfig::Validate() const {
  if (max_body_bytes == 0) return InvalidArgument("max_body_bytes: must be > 0");
  if (max_body_bytes > (size_t{1} << 32)) {
    return InvalidArgument("max_body_bytes: must be <= 4 GiB (simdjson's document limit)");
  }
  return Status::Ok();
}

class RequestParser::Impl {
 public:
  explicit Impl(ParserConfig config) : config_(config) {}

  Status ParsePadded(std::string_view body, size_t capacity, RequestFeatures* f) {
    f->Clear();
    Reader reader{f, !config_.byte_stats                      ? StatsPath::kNone
                     : config_.stats_path == ParserConfig::kRaw ? StatsPath::kRaw
                     : config_.stats_path == ParserConfig::kUnescaped
                         ? StatsPath::kUnescaped
                         : StatsPath::kReference,
                  config_.avx512 ? JsonKernel::kBest : JsonKernel::kAvx2};
    if (body.size() > config_.max_body_bytes) {
      return OutOfRange("body: " + std::to_string(body.size()) + " bytes exceeds the limit of " +
                        std::to_string(config_.max_body_bytes));
    }
    if (capacity < body.size() + kPadding) {
      return InvalidArgument("body: ParsePadded needs " + std::to_string(kPadding) +
                             " readable bytes after the body");
    }
    od::document doc;
    if (auto e = parser_.iterate(simdjson::padded_string_view(body.data(), body.size(), capacity))
                     .get(doc)) {
      return JsonError(Path{}, e);
    }
    od::object root;
    {
      od::json_type t{};
      if (auto e = doc.type().get(t)) return JsonError(Path{}, e);
      if (t != od::json_type::object) return TypeError(Path{}, "object", t);
      if (auto e = doc.get_object().get(root)) return JsonError(Path{}, e);
    }
    bool has_messages = false;
    bool has_prompt = false;
    bool has_model = false;
    bool has_max_completion = false;
    int64_t max_completion = 0;
    bool has_max_tokens = false;
    int64_t max_tokens = 0;
    for (auto field_result : root) {
      od::field field;
      if (auto e = std::move(field_result).get(field)) return JsonError(Path{}, e);
      MemberName key(field);
      od::value value = field.value();
      Path p;
      for (;;) {  // as written, then once more decoded when it has an escape
        if (key == "messages") {
          p.field = "messages";
          has_messages = true;
          if (Status s = reader.ReadMessages(value, p); !s.ok()) return s;
        } else if (key == "model") {
          p.field = "model";
          od::json_type t{};
          if (Status s = TypeOf(value, p, &t); !s.ok()) return s;
          if (t != od::json_type::string) return TypeError(p, "string", t);
          std::string_view model;
          if (auto e = value.get_string().get(model)) return JsonError(p, e);
          f->model.assign(model);
          has_model = true;
        } else if (key == "max_completion_tokens") {
          p.field = "max_completion_tokens";
          if (Status s = ReadCount(value, p, config_.min_max_tokens, kMaxRequestTokens,
                                   &max_completion, &has_max_completion);
              !s.ok()) {
            return s;
          }
        } else if (key == "max_tokens") {
          p.field = "max_tokens";
          if (Status s = ReadCount(value, p, config_.min_max_tokens, kMaxRequestTokens, &max_tokens,
                                   &has_max_tokens);
              !s.ok()) {
            return s;
          }
        } else if (key == "n" || key == "best_of") {
          // Choices generated (best_of: completions, at least n): each is a sequence of up to
          // max_tokens, all of them held in the KV cache and counted in usage.completion_tokens.
          p.field = key == "n" ? "n" : "best_of";
          int64_t k = 1;
          bool present = false;
          if (Status s = ReadCount(value, p, 1, kMaxChoices, &k, &present); !s.ok()) return s;
          f->sequences = std::max(f->sequences, k);
        } else if (key == "stream") {
          p.field = "stream";
          if (Status s = ReadBool(value, p, &f->stream); !s.ok()) return s;
        } else if (key == "stream_options") {
          p.field = "stream_options";
          if (Status s = ReadStreamOptions(value, p, f); !s.ok()) return s;
        } else if (key == "tools" || key == "functions") {
          p.field = key == "tools" ? "tools" : "functions";
          if (Status s = reader.ReadStructured(value, p, &f->tool_definitions, false); !s.ok()) {
            return s;
          }
        } else if (key == "response_format") {
          p.field = "response_format";
          if (Status s = reader.ReadStructured(value, p, nullptr, true); !s.ok()) return s;
        } else if (key == "prompt") {
          p.field = "prompt";
          has_prompt = true;
          f->endpoint = Endpoint::kCompletions;
          if (Status s = reader.ReadPrompt(value, p); !s.ok()) return s;
        } else {
          if (key.Decode()) continue;
          if (key.error()) return JsonError(p, key.error());
          if (Status s = Reader::CheckValue(value, p); !s.ok()) return s;
        }
        break;
      }
    }
    // After the root object the iterator must be at the end: anything else is a second value.
    if (auto loc = doc.current_location(); loc.error() != simdjson::OUT_OF_BOUNDS) {
      const char* at = nullptr;
      const size_t offset = std::move(loc).get(at) == simdjson::SUCCESS
                                ? static_cast<size_t>(at - body.data())
                                : body.size();
      return InvalidArgument("body: unexpected content after the JSON object at byte " +
                             std::to_string(offset));
    }
    if (has_messages && has_prompt) {
      return InvalidArgument("body: has both messages (chat) and prompt (completions)");
    }
    if (!has_messages && !has_prompt) {
      return InvalidArgument("body: needs messages (chat) or prompt (completions)");
    }
    if (!has_model) return InvalidArgument("model: required");
    // A completions request with several prompts generates its choices for each of them.
    if (has_prompt) f->sequences *= std::max<int64_t>(1, f->messages);
    if (has_max_completion) {
      f->has_max_tokens = true;
      f->max_output_tokens = max_completion;
    } else if (has_max_tokens) {
      f->has_max_tokens = true;
      f->max_output_tokens = max_tokens;
    }
    f->text_bytes = f->text.bytes;
    return Status::Ok();
  }

  Status Parse(std::string_view body, RequestFeatures* f) {
    if (body.size() > config_.max_body_bytes) return ParsePadded(body, 0, f);
    const size_t need = body.size() + kPadding;
    if (need > capacity_) {
      capacity_ = std::max(need, capacity_ * 2);
      buffer_ = std::make_unique<char[]>(capacity_);
    }
    if (!body.empty()) std::memcpy(buffer_.get(), body.data(), body.size());
    std::memset(buffer_.get() + body.size(), 0, kPadding);
    return ParsePadded(std::string_view(buffer_.get(), body.size()), capacity_, f);
  }

 private:
  static Status ReadStreamOptions(od::value& v, Path p, RequestFeatures* f) {
    // A later stream_options member is the one the backend reads (the last wins in Python's
    // json): nothing of an earlier one stays (before, {"include_usage":true} then null kept
    // include_usage, and the gateway asked for no usage the backend would send).
    f->has_stream_options = false;
    f->include_usage = false;
    od::json_type t{};
    if (Status s = TypeOf(v, p, &t); !s.ok()) return s;
    if (t == od::json_type::null) return Status::Ok();
    if (t != od::json_type::object) return TypeError(p, "object or null", t);
    f->has_stream_options = true;
    od::object o;
    if (auto e = v.get_object().get(o)) return JsonError(p, e);
    for (auto field_result : o) {
      od::field field;
      if (auto e = std::move(field_result).get(field)) return JsonError(p, e);
      MemberName key(field);
      od::value value = field.value();
      if (key == "include_usage" || (key.Decode() && key == "include_usage")) {
        p.sub = "include_usage";
        if (Status s = ReadBool(value, p, &f->include_usage); !s.ok()) return s;
      } else if (key.error()) {
        return JsonError(p, key.error());
      }
    }
    return Status::Ok();
  }

  ParserConfig config_;
  od::parser parser_;
  std::unique_ptr<char[]> buffer_;
  size_t capacity_ = 0;
};

RequestParser::RequestParser(ParserConfig config) : impl_(std::make_unique<Impl>(config)) {}
RequestParser::~RequestParser() = default;

Status RequestParser::Parse(std::string_view body, RequestFeatures* out) {
  return impl_->Parse(body, out);
}

Status RequestParser::ParsePadded(std::string_view body, size_t capacity, RequestFeatures* out) {
  return impl_->ParsePadded(body, capacity, out);
}

}  // namespace tokenpool::parse
