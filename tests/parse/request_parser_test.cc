#include "parse/request_parser.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <ostream>
#include <string>
#include <vector>

namespace tokenpool::parse {
namespace {

Status ParseBody(const std::string& body, RequestFeatures* f) {
  RequestParser parser;
  return parser.Parse(body, f);
}

TEST(RequestParserTest, ReadsChatRequest) {
  RequestFeatures f;
  ASSERT_TRUE(ParseBody(R"({"model":"llama-3-70b","stream":true,
      "stream_options":{"include_usage":true},"max_tokens":100,"max_completion_tokens":50,
      "messages":[{"role":"system","content":"Be brief."},
                  {"role":"user","content":"Hello 42"}]})",
                        &f)
                  .ok());
  EXPECT_EQ(f.endpoint, Endpoint::kChatCompletions);
  EXPECT_EQ(f.model, "llama-3-70b");
  EXPECT_TRUE(f.stream);
  EXPECT_TRUE(f.include_usage);
  EXPECT_TRUE(f.has_max_tokens);
  EXPECT_EQ(f.max_output_tokens, 50);  // max_completion_tokens wins over max_tokens
  EXPECT_EQ(f.messages, 2);
  EXPECT_EQ(f.text_bytes, 17);
  EXPECT_EQ(f.text.letters, 2 + 5 + 5);
  EXPECT_EQ(f.text.digits, 2);
  EXPECT_EQ(f.text.letter_runs, 3);
  EXPECT_EQ(f.structured_bytes, 0);
}

TEST(RequestParserTest, MaxTokensAloneAndAbsent) {
  RequestFeatures f;
  ASSERT_TRUE(ParseBody(R"({"model":"m","messages":[{"role":"user","content":"x"}],
      "max_tokens":7})",
                        &f)
                  .ok());
  EXPECT_EQ(f.max_output_tokens, 7);
  ASSERT_TRUE(ParseBody(R"({"model":"m","messages":[{"role":"user","content":"x"}],
      "max_tokens":null})",
                        &f)
                  .ok());
  EXPECT_FALSE(f.has_max_tokens);
  EXPECT_FALSE(f.stream);
  // The largest count accepted: 10^9 (9223372036854775807 overflowed prompt + output, and
  // the budget that came out negative fit the short pool).
  ASSERT_TRUE(ParseBody(R"({"model":"m","messages":[{"content":"x"}],"max_tokens":1000000000})",
                        &f)
                  .ok());
  EXPECT_EQ(f.max_output_tokens, kMaxRequestTokens);
}

// A count written as a whole float (2.0, 1e3) is the integer, as vLLM reads it; a fraction is
// not. The least max_tokens is the config's, and the error names the field that broke it.
TEST(RequestParserTest, CountsAsWholeFloatsAndTheLeastMaxTokens) {
  RequestFeatures f;
  ASSERT_TRUE(
      ParseBody(R"({"model":"m","messages":[{"content":"x"}],"max_tokens":1e3,"n":2.0})", &f).ok());
  EXPECT_EQ(f.max_output_tokens, 1000);
  EXPECT_EQ(f.sequences, 2);
  const Status frac = ParseBody(R"({"model":"m","messages":[{"content":"x"}],"n":2.5})", &f);
  EXPECT_EQ(frac.message(), "n: expected an integer") << frac.ToString();
  EXPECT_FALSE(ParseBody(R"({"model":"m","messages":[{"content":"x"}],"n":1e300})", &f).ok());
  EXPECT_TRUE(
      ParseBody(R"({"model":"m","messages":[{"content":"x"}],"max_completion_tokens":0})", &f)
          .ok());  // the mock's parser: vLLM's own message for it
  RequestParser gateway(ParserConfig{.min_max_tokens = 1});
  const Status zero =
      gateway.Parse(R"({"model":"m","messages":[{"content":"x"}],"max_completion_tokens":0})", &f);
  EXPECT_EQ(zero.message(), "max_completion_tokens: must be in [1, 1000000000], got 0");
  const Status negative =
      gateway.Parse(R"({"model":"m","messages":[{"content":"x"}],"max_tokens":-1})", &f);
  EXPECT_EQ(negative.message(), "max_tokens: must be in [1, 1000000000], got -1");
}

// A repeated stream_options member is read as the backend reads it, the last one whole: the
// first's include_usage does not survive a later null or object without it (before, it did,
// and the gateway did not ask for the usage that the backend then did not send).
TEST(RequestParserTest, ALaterStreamOptionsMemberReplacesAnEarlierOne) {
  RequestFeatures f;
  // A chat body whose members after "messages" are `tail`.
  const auto parses = [&f](const std::string& tail) {
    return ParseBody(R"({"model":"m","messages":[{"content":"x"}],)" + tail + "}", &f).ok();
  };
  ASSERT_TRUE(parses(R"("stream":true,"stream_options":{"include_usage":true},)"
                     R"("stream_options":null)"));
  EXPECT_FALSE(f.include_usage);
  EXPECT_FALSE(f.has_stream_options);
  ASSERT_TRUE(parses(R"("stream":true,"stream_options":{"include_usage":true},)"
                     R"("stream_options":{})"));
  EXPECT_FALSE(f.include_usage);
  EXPECT_TRUE(f.has_stream_options);
  ASSERT_TRUE(parses(R"("stream":true,"stream_options":null,)"
                     R"("stream_options":{"include_usage":true})"));
  EXPECT_TRUE(f.include_usage);
  // The same for a count: a later null is its absence.
  ASSERT_TRUE(parses(R"("max_tokens":7,"max_tokens":null)"));
  EXPECT_FALSE(f.has_max_tokens);
}

TEST(RequestParserTest, ChoicesAreSequences) {
  RequestFeatures f;
  ASSERT_TRUE(ParseBody(R"({"model":"m","messages":[{"content":"x"}]})", &f).ok());
  EXPECT_EQ(f.sequences, 1);
  ASSERT_TRUE(ParseBody(R"({"model":"m","messages":[{"content":"x"}],"n":4})", &f).ok());
  EXPECT_EQ(f.sequences, 4);
  ASSERT_TRUE(ParseBody(R"({"model":"m","messages":[{"content":"x"}],"n":null})", &f).ok());
  EXPECT_EQ(f.sequences, 1);  // starts clean: Clear() before each parse
  ASSERT_TRUE(ParseBody(R"({"model":"m","prompt":"x","n":2,"best_of":5})", &f).ok());
  EXPECT_EQ(f.sequences, 5);
  ASSERT_TRUE(ParseBody(R"({"model":"m","prompt":"x","best_of":3,"n":6})", &f).ok());
  EXPECT_EQ(f.sequences, 6);
  // A batch of prompts: its choices for each (vLLM answers one choice per prompt and n).
  ASSERT_TRUE(ParseBody(R"({"model":"m","prompt":["a","b","c"],"n":2})", &f).ok());
  EXPECT_EQ(f.sequences, 6);
  ASSERT_TRUE(ParseBody(R"({"model":"m","prompt":[[1,2],[3]]})", &f).ok());
  EXPECT_EQ(f.sequences, 2);
  EXPECT_EQ(f.prompt_token_ids, 3);
  ASSERT_TRUE(ParseBody(R"({"model":"m","prompt":[1,2,3]})", &f).ok());  // one prompt of ids
  EXPECT_EQ(f.sequences, 1);
}

TEST(RequestParserTest, ContentPartsToolsAndImages) {
  const std::string tools =
      R"([{"type":"function","function":{"name":"f","parameters":{"type":"object"}}},)"
      R"({"type":"function","function":{"name":"g"}}])";
  const std::string calls = R"([{"id":"c1","type":"function","function":{"name":"f"}}])";
  const std::string schema = R"({"type":"json_schema","json_schema":{"name":"x"}})";
  const std::string body = R"({"model":"m","tools":)" + tools + R"(,"response_format":)" + schema +
                           R"(,"messages":[{"role":"user","content":[
      {"type":"text","text":"abc"},
      {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}},
      {"text":"de","type":"text"}]},
      {"role":"assistant","content":null,"tool_calls":)" +
                           calls + R"(},
      {"role":"tool","tool_call_id":"c1","content":"ok"}]})";
  RequestFeatures f;
  ASSERT_TRUE(ParseBody(body, &f).ok());
  EXPECT_EQ(f.messages, 3);
  EXPECT_EQ(f.images, 1);
  EXPECT_EQ(f.tool_definitions, 2);
  EXPECT_EQ(f.tool_calls, 1);
  EXPECT_EQ(f.text_bytes, 3 + 2 + 2);
  EXPECT_EQ(f.structured_bytes, static_cast<int64_t>(tools.size() + calls.size() + schema.size()));
}

// A member's name is read with its escapes decoded, as the backend reads it: written
// "max_tok\u0065ns", max_tokens was not seen (the default reserve held for 4,000 tokens of
// output), nor an escaped "n", "stream", "messages", "text" or "include_usage".
TEST(RequestParserTest, EscapedMemberNamesAreTheMembersTheyName) {
  RequestFeatures plain;
  ASSERT_TRUE(ParseBody(R"({"model":"m","max_tokens":4000,"n":20,"stream":true,
      "stream_options":{"include_usage":true},
      "messages":[{"role":"user","content":[{"type":"text","text":"abcdef"}]}]})",
                        &plain)
                  .ok());
  RequestFeatures escaped;
  ASSERT_TRUE(ParseBody(R"({"m\u006fdel":"m","max_tok\u0065ns":4000,"\u006e":20,"str\u0065am":true,
      "stream_options":{"include\u005fusage":true},
      "m\u0065ssages":[{"r\u006fle":"user","c\u006fntent":[{"typ\u0065":"text","t\u0065xt":"abcdef"}]}]})",
                        &escaped)
                  .ok());
  EXPECT_EQ(escaped.model, plain.model);
  EXPECT_EQ(escaped.max_output_tokens, 4000);
  EXPECT_TRUE(escaped.has_max_tokens);
  EXPECT_EQ(escaped.sequences, 20);
  EXPECT_TRUE(escaped.stream);
  EXPECT_TRUE(escaped.has_stream_options);
  EXPECT_TRUE(escaped.include_usage);
  EXPECT_EQ(escaped.messages, 1);
  EXPECT_EQ(escaped.text_bytes, plain.text_bytes);
  // Its bounds hold however the name is written.
  RequestFeatures f;
  EXPECT_FALSE(ParseBody(R"({"model":"m","messages":[],"max_tok\u0065ns":-1})", &f).ok());
  // A name with a bad escape is malformed JSON, at the top and in a message.
  const Status top = ParseBody(R"({"model":"m","messages":[],"max_\xtokens":1})", &f);
  EXPECT_EQ(top.code(), StatusCode::kInvalidArgument) << top.ToString();
  EXPECT_FALSE(ParseBody(R"({"model":"m","messages":[{"r\qole":"user"}]})", &f).ok());
  // Escapes that decode to no name it knows are other members, as before.
  const Status other =
      ParseBody(R"({"model":"m","messages":[{"content":"x"}],"t\u0065mperature":1})", &f);
  ASSERT_TRUE(other.ok()) << other.ToString();
  EXPECT_FALSE(f.has_max_tokens);
}

TEST(RequestParserTest, EscapedAndRawUtf8GiveTheSameStatistics) {
  RequestFeatures raw, escaped;
  ASSERT_TRUE(ParseBody("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                        "\"caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x98\x80 \xD0\xAF\"}]}",
                        &raw)
                  .ok());
  ASSERT_TRUE(ParseBody(R"({"model": "m", "messages": [{"role": "user", "content": )"
                        R"("caf\u00e9 \u4e2d\u6587 \ud83d\ude00 \u042f"}]})",
                        &escaped)
                  .ok());
  EXPECT_EQ(raw.text, escaped.text);
  EXPECT_EQ(raw.text_bytes, 5 + 1 + 6 + 1 + 4 + 1 + 2);
  EXPECT_EQ(raw.text.utf8_2, 2);
  EXPECT_EQ(raw.text.utf8_3, 2);
  EXPECT_EQ(raw.text.utf8_4, 1);
  EXPECT_EQ(raw.text.script[static_cast<int>(Script::kHan)], 2);
  EXPECT_EQ(raw.text.script[static_cast<int>(Script::kCyrillic)], 1);
  EXPECT_EQ(raw.text.script[static_cast<int>(Script::kLatinExt)], 1);
  EXPECT_EQ(raw.text.script[static_cast<int>(Script::kFourByte)], 1);
}

TEST(RequestParserTest, CompletionsPrompt) {
  RequestFeatures f;
  ASSERT_TRUE(ParseBody(R"({"model":"m","prompt":"Once upon","max_tokens":5})", &f).ok());
  EXPECT_EQ(f.endpoint, Endpoint::kCompletions);
  EXPECT_EQ(f.messages, 1);
  EXPECT_EQ(f.text_bytes, 9);
  ASSERT_TRUE(ParseBody(R"({"model":"m","prompt":["a","bc"]})", &f).ok());
  EXPECT_EQ(f.messages, 2);
  EXPECT_EQ(f.text_bytes, 3);
  ASSERT_TRUE(ParseBody(R"({"model":"m","prompt":[1,2,3]})", &f).ok());
  EXPECT_EQ(f.prompt_token_ids, 3);
  EXPECT_EQ(f.text_bytes, 0);
  // A batch's longest prompt, by text bytes (unescaped) or token ids: it sets the route.
  ASSERT_TRUE(ParseBody(R"({"model":"m","prompt":["ab","c\nde","f"]})", &f).ok());
  EXPECT_EQ(f.messages, 3);
  EXPECT_EQ(f.text_bytes, 7);
  EXPECT_EQ(f.longest_prompt_bytes, 4);
  EXPECT_EQ(f.longest_prompt_ids, 0);
  ASSERT_TRUE(ParseBody(R"({"model":"m","prompt":[[1,2],[3,4,5,6],[7]]})", &f).ok());
  EXPECT_EQ(f.messages, 3);
  EXPECT_EQ(f.prompt_token_ids, 7);
  EXPECT_EQ(f.longest_prompt_ids, 4);
  EXPECT_EQ(f.longest_prompt_bytes, 0);
}

struct BadCase {
  const char* body;
  StatusCode code;
  const char* message;  // expected substring
};

// Shown in test names and failures instead of the struct's bytes.
void PrintTo(const BadCase& c, std::ostream* os) { *os << c.body; }

class RequestParserErrorTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(RequestParserErrorTest, GivesPreciseError) {
  RequestFeatures f;
  const Status s = ParseBody(GetParam().body, &f);
  ASSERT_FALSE(s.ok()) << GetParam().body;
  EXPECT_EQ(s.code(), GetParam().code) << s.ToString();
  EXPECT_NE(s.message().find(GetParam().message), std::string::npos) << s.ToString();
}

INSTANTIATE_TEST_SUITE_P(
    BadBodies, RequestParserErrorTest,
    ::testing::Values(
        BadCase{"", StatusCode::kInvalidArgument, "body: malformed JSON"},
        BadCase{"[1,2]", StatusCode::kInvalidArgument, "body: expected object, got array"},
        BadCase{R"({"model":"m","messages":[{"role":"user","content":"x"})",
                StatusCode::kInvalidArgument, "malformed JSON"},
        BadCase{R"({"model":"m","messages":{}})", StatusCode::kInvalidArgument,
                "messages: expected array, got object"},
        BadCase{R"({"model":"m","messages":[]})", StatusCode::kInvalidArgument,
                "messages: must not be empty"},
        BadCase{R"({"model":"m","messages":[{"content":"a"},{"content":"b"},{"content":3}]})",
                StatusCode::kInvalidArgument,
                "messages[2].content: expected string, array or null, got number"},
        BadCase{R"({"model":"m","messages":["hi"]})", StatusCode::kInvalidArgument,
                "messages[0]: expected object, got string"},
        BadCase{R"({"model":"m","messages":[{"content":[{"type":"text","text":5}]}]})",
                StatusCode::kInvalidArgument,
                "messages[0].content[0].text: expected string, got number"},
        BadCase{R"({"model":"m","messages":[{"content":"a","tool_calls":"x"}]})",
                StatusCode::kInvalidArgument, "messages[0].tool_calls: expected array or null"},
        BadCase{R"({"model":"m","messages":[{"content":"a"}],"max_tokens":-1})",
                StatusCode::kInvalidArgument, "max_tokens: must be in [0, 1000000000], got -1"},
        BadCase{R"({"model":"m","messages":[{"content":"a"}],"max_tokens":9223372036854775807})",
                StatusCode::kInvalidArgument,
                "max_tokens: must be in [0, 1000000000], got 9223372036854775807"},
        BadCase{R"({"model":"m","messages":[{"content":"a"}],"max_completion_tokens":1000000001})",
                StatusCode::kInvalidArgument,
                "max_completion_tokens: must be in [0, 1000000000], got 1000000001"},
        BadCase{R"({"model":"m","messages":[{"content":"a"}],"n":0})", StatusCode::kInvalidArgument,
                "n: must be in [1, 128], got 0"},
        BadCase{R"({"model":"m","prompt":"a","best_of":129})", StatusCode::kInvalidArgument,
                "best_of: must be in [1, 128], got 129"},
        BadCase{R"({"model":"m","messages":[{"content":"a"}],"n":1.5})",
                StatusCode::kInvalidArgument, "n: expected an integer"},
        // Members the parser does not read are checked all the same (simdjson skipped them).
        BadCase{R"({"model":"m","messages":[{"content":"a"}],"foo":[1,2,},"max_tokens":2})",
                StatusCode::kInvalidArgument, "body: malformed JSON"},
        BadCase{R"({"model":"m","messages":[{"content":"a"}],"temperature":tru})",
                StatusCode::kInvalidArgument, "body: malformed JSON"},
        BadCase{R"({"model":"m","messages":[{"content":"a","name":{"x":nul}}]})",
                StatusCode::kInvalidArgument, "messages[0]: malformed JSON"},
        BadCase{R"({"model":"m","messages":[{"content":[{"type":"image_url",)"
                R"("image_url":{"url":[1,}}]}]})",
                StatusCode::kInvalidArgument, "messages[0].content[0]: malformed JSON"},
        BadCase{R"({"model":"m","messages":[{"content":"a"}],"user":"\x"})",
                StatusCode::kInvalidArgument, "body: malformed JSON"},
        BadCase{R"({"model":"m","prompt":[1,-5]})", StatusCode::kInvalidArgument,
                "prompt[1]: expected a token id (an integer >= 0)"},
        BadCase{R"({"model":"m","prompt":[[1],[2,1.5]]})", StatusCode::kInvalidArgument,
                "prompt[1][1]: expected a token id (an integer >= 0)"},
        BadCase{R"({"model":"m","prompt":[[1],[]]})", StatusCode::kInvalidArgument,
                "prompt[1]: must not be empty"},
        // A prompt array holds one kind (strings, token ids or token-id lists).
        BadCase{R"({"model":"m","prompt":["a",[1]]})", StatusCode::kInvalidArgument,
                "prompt[1]: expected string, got array"},
        BadCase{R"({"model":"m","prompt":[1,"a"]})", StatusCode::kInvalidArgument,
                "prompt[1]: expected integer, got string"},
        BadCase{R"({"model":"m","prompt":[[1],2]})", StatusCode::kInvalidArgument,
                "prompt[1]: expected array, got number"},
        BadCase{R"({"model":"m","prompt":[99999999999999999999]})", StatusCode::kInvalidArgument,
                "prompt[0]: expected a token id (an integer >= 0)"},
        BadCase{R"({"model":"m","messages":[{"content":"a"}],"max_tokens":"9"})",
                StatusCode::kInvalidArgument, "max_tokens: expected integer, got string"},
        BadCase{R"({"model":"m","messages":[{"content":"a"}],"stream":"yes"})",
                StatusCode::kInvalidArgument, "stream: expected boolean, got string"},
        BadCase{R"({"model":"m","messages":[{"content":"a"}],)"
                R"("stream_options":{"include_usage":1}})",
                StatusCode::kInvalidArgument, "stream_options.include_usage: expected boolean"},
        BadCase{R"({"model":7,"messages":[{"content":"a"}]})", StatusCode::kInvalidArgument,
                "model: expected string, got number"},
        BadCase{R"({"messages":[{"content":"a"}]})", StatusCode::kInvalidArgument,
                "model: required"},
        BadCase{R"({"model":"m"})", StatusCode::kInvalidArgument,
                "needs messages (chat) or prompt (completions)"},
        BadCase{R"({"model":"m","prompt":"a","messages":[{"content":"a"}]})",
                StatusCode::kInvalidArgument, "both messages (chat) and prompt"},
        BadCase{R"({"model":"m","prompt":{}})", StatusCode::kInvalidArgument,
                "prompt: expected string or array, got object"},
        BadCase{R"({"model":"m","messages":[{"content":"a"}]}{"x":1})",
                StatusCode::kInvalidArgument,
                "body: unexpected content after the JSON object at byte 42"},
        BadCase{R"({"model":"m","messages":[{"content":"a"}]} 7)", StatusCode::kInvalidArgument,
                "body: malformed JSON"},  // found by simdjson's structural pass
        BadCase{"{\"model\":\"m\",\"messages\":[{\"content\":\"\xFF\"}]}",
                StatusCode::kInvalidArgument, "malformed JSON"}));

// Mutated bodies (bytes flipped, cut, duplicated, JSON tokens inserted; seeded, so the same
// cases every run) never crash the parser (the sanitizer build checks its memory), give
// either features or InvalidArgument, and features within their bounds whatever came in.
TEST(RequestParserTest, MutatedBodiesGiveFeaturesOrAnError) {
  const std::vector<std::string> seeds = {
      R"({"model":"m","stream":true,"stream_options":{"include_usage":true},"n":2,)"
      R"("messages":[{"role":"system","content":"Be brief. \u00e9\ud83d\ude00"},)"
      R"({"role":"user","content":[{"type":"text","text":"code: if (a<b) {x=\"y\";}"},)"
      R"({"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},)"
      R"({"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function",)"
      R"("function":{"name":"f","arguments":"{\"q\":1}"}}]}],)"
      R"("tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],)"
      R"("response_format":{"type":"json_object"},"max_tokens":64})",
      R"({"model":"m","prompt":["one","two"],"best_of":3,"max_completion_tokens":5})",
      R"({"model":"m","prompt":[1,2,3,4],"max_tokens":null,"stream":false})",
  };
  const char* tokens[] = {"{", "}", "[", "]", ",", ":", "\"", "\\", "null", "-1", "1e400",
                          "\"n\":0", "\"max_tokens\":9223372036854775807", "\xff", "\\u0000",
                          "\\ud800", "{\"a\":[[[[[[[[]]]]]]]]}"};
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&state](uint64_t bound) {  // splitmix64
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (z ^ (z >> 31)) % bound;
  };
  RequestParser parser;  // reused, as a worker's is
  RequestFeatures f;
  int parsed = 0, refused = 0;
  for (const std::string& seed : seeds) {
    ASSERT_TRUE(parser.Parse(seed, &f).ok()) << seed;
    for (int i = 0; i < 3000; ++i) {
      std::string body = seed;
      for (uint64_t m = 1 + next(3); m > 0 && !body.empty(); --m) {
        const size_t at = next(body.size());
        switch (next(5)) {
          case 0:
            body[at] = static_cast<char>(next(256));
            break;
          case 1:
            body.resize(at);
            break;
          case 2:
            body.erase(at, 1 + next(8));
            break;
          case 3:
            body.insert(at, tokens[next(std::size(tokens))]);
            break;
          default:
            body.insert(at, body.substr(at, next(16)));
            break;
        }
      }
      const Status s = parser.Parse(body, &f);
      if (!s.ok()) {
        ++refused;
        EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString() << "\n" << body;
        EXPECT_FALSE(s.message().empty());
        continue;
      }
      ++parsed;
      EXPECT_LE(f.text_bytes, static_cast<int64_t>(body.size())) << body;
      EXPECT_GE(f.text_bytes, 0);
      EXPECT_GE(f.messages, 1) << body;
      EXPECT_GE(f.tool_calls, 0);
      EXPECT_GE(f.tool_definitions, 0);
      EXPECT_GE(f.images, 0);
      EXPECT_GE(f.prompt_token_ids, 0);
      EXPECT_GE(f.sequences, 1);
      EXPECT_LE(f.sequences, kMaxChoices * std::max<int64_t>(1, f.messages));
      EXPECT_GE(f.max_output_tokens, 0);
      EXPECT_LE(f.max_output_tokens, kMaxRequestTokens);
      EXPECT_FALSE(f.model.empty() && body.find("\"model\":\"\"") == std::string::npos) << body;
    }
  }
  RecordProperty("parsed", parsed);
  RecordProperty("refused", refused);
  // Both outcomes are exercised (the mutations are neither all harmless nor all fatal).
  EXPECT_GT(parsed, 500);
  EXPECT_GT(refused, 3000);
}

TEST(RequestParserTest, MembersNotReadAreWellFormedJson) {
  RequestFeatures f;
  EXPECT_TRUE(ParseBody(R"({"model":"m","messages":[{"role":"user","content":"x","name":"n"}],)"
                        R"("temperature":0.7,"top_p":1,"stop":["a",null],"user":"u\u00e9",)"
                        R"("logit_bias":{"5":-1.5},"seed":null,"echo":false})",
                        &f)
                  .ok());
  std::string deep = R"({"model":"m","messages":[{"content":"x"}],"x":)";
  for (int i = 0; i < 5000; ++i) deep += "[";
  for (int i = 0; i < 5000; ++i) deep += "]";
  deep += "}";
  const Status s = ParseBody(deep, &f);  // past 1,024 levels: refused, not skipped
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("body: malformed JSON (nested deeper than 1024 levels)"),
            std::string::npos)
      << s.ToString();
  // A body of nothing but brackets, as deep as the body limit lets it be: refused, without
  // a frame per level (the check stops at its depth).
  std::string brackets = R"({"model":"m","messages":[{"content":"x"}],"x":)";
  brackets += std::string(1'000'000, '[') + std::string(1'000'000, ']') + "}";
  const Status b = ParseBody(brackets, &f);
  EXPECT_NE(b.message().find("nested deeper than 1024 levels"), std::string::npos) << b.ToString();
}

TEST(RequestParserTest, OversizedBodyIsOutOfRange) {
  RequestParser parser(ParserConfig{.max_body_bytes = 100});
  RequestFeatures f;
  const std::string body =
      R"({"model":"m","messages":[{"content":")" + std::string(200, 'a') + R"("}]})";
  const Status s = parser.Parse(body, &f);
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_NE(s.message().find("exceeds the limit of 100"), std::string::npos) << s.ToString();
}

TEST(RequestParserTest, ParsePaddedReadsInPlaceAndChecksCapacity) {
  const std::string json = R"({"model":"m","messages":[{"role":"user","content":"hello"}]})";
  std::vector<char> buf(json.size() + RequestParser::kPadding, ' ');
  std::memcpy(buf.data(), json.data(), json.size());
  RequestParser parser;
  RequestFeatures f;
  ASSERT_TRUE(parser.ParsePadded(std::string_view(buf.data(), json.size()), buf.size(), &f).ok());
  EXPECT_EQ(f.text_bytes, 5);
  const Status s = parser.ParsePadded(std::string_view(buf.data(), json.size()), json.size(), &f);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
}

TEST(RequestParserTest, ReusedParserAndFeaturesStartClean) {
  RequestParser parser;
  RequestFeatures f;
  const std::string big = R"({"model":"a-long-model-name","stream":true,"messages":[)"
                          R"({"content":")" +
                          std::string(5000, 'x') + R"("}],"max_tokens":3})";
  ASSERT_TRUE(parser.Parse(big, &f).ok());
  EXPECT_EQ(f.text_bytes, 5000);
  ASSERT_TRUE(parser.Parse(R"({"model":"b","messages":[{"content":"yz"}]})", &f).ok());
  EXPECT_EQ(f.model, "b");
  EXPECT_EQ(f.text_bytes, 2);
  EXPECT_FALSE(f.stream);
  EXPECT_FALSE(f.has_max_tokens);
  EXPECT_EQ(f.messages, 1);
}

TEST(RequestParserTest, WithoutByteStatsCountsOnlyBytes) {
  RequestParser parser(ParserConfig{.byte_stats = false});
  RequestFeatures f;
  ASSERT_TRUE(parser.Parse(R"({"model":"m","messages":[{"content":"ab 12"}]})", &f).ok());
  EXPECT_EQ(f.text_bytes, 5);
  EXPECT_EQ(f.text.letters, 0);
}

TEST(ParserConfigTest, Validate) {
  EXPECT_TRUE(ParserConfig{}.Validate().ok());
  EXPECT_EQ(ParserConfig{.max_body_bytes = 0}.Validate().message(), "max_body_bytes: must be > 0");
}

}  // namespace
}  // namespace tokenpool::parse
