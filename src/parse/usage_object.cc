#include "parse/usage_object.h"

#include <simdjson.h>

#include <string>

namespace tokenpool::parse {

bool ReadUsageCounts(std::string_view object, int64_t* prompt_tokens, int64_t* completion_tokens) {
  namespace od = simdjson::ondemand;
  // simdjson reads SIMDJSON_PADDING bytes past the end: a usage object is copied into a padded
  // buffer of the thread's (a few hundred bytes; it keeps its capacity).
  thread_local od::parser parser;
  thread_local std::string padded;
  padded.assign(object);
  padded.resize(object.size() + simdjson::SIMDJSON_PADDING, ' ');
  od::document doc;
  if (parser.iterate(padded.data(), object.size(), padded.size()).get(doc) != simdjson::SUCCESS) {
    return false;
  }
  od::object o;
  if (doc.get_object().get(o) != simdjson::SUCCESS) return false;
  int64_t prompt = 0, completion = 0;
  bool have_prompt = false, have_completion = false;
  // One pass in document order, whatever the members' order.
  for (auto field : o) {
    std::string_view key;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS) return false;
    if (key == "prompt_tokens") {
      if (field.value().get_int64().get(prompt) != simdjson::SUCCESS) return false;
      have_prompt = true;
    } else if (key == "completion_tokens") {
      if (field.value().get_int64().get(completion) != simdjson::SUCCESS) return false;
      have_completion = true;
    }
  }
  if (!have_prompt || !have_completion) return false;
  if (prompt < 0 || prompt > kMaxUsageTokens || completion < 0 || completion > kMaxUsageTokens) {
    return false;
  }
  // The whole object is well formed: the loop above stops at the first error it meets.
  *prompt_tokens = prompt;
  *completion_tokens = completion;
  return true;
}

}  // namespace tokenpool::parse
