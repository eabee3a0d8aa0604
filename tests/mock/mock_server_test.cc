// `tokenpool mock` end to end: a child process on a free port, a real HTTP client over loopback.
// Endpoints, the streaming chunk format, usage numbers, /metrics as Prometheus text, every fault
// mode, and that timing follows the engine model. Timing checks compare two measurements
// (longer prompt vs shorter, loaded vs idle); none asserts a wall-clock threshold.

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "mock/tokenizer.h"
#include "mock_test_util.h"

namespace tokenpool::mock {
namespace {

using testing::Client;
using testing::MockProcess;
using testing::Response;
using testing::SseEvents;
namespace json = boost::json;

constexpr const char* kModel = "test-model";

std::vector<std::string> Args(std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {"--model", kModel, "--seed", "7"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

std::string ChatBody(const std::string& content, int max_tokens, bool stream = false,
                     bool include_usage = false, const std::string& model = kModel) {
  json::object o;
  o["model"] = model;
  json::array messages;
  messages.push_back(json::object{{"role", "user"}, {"content", content}});
  o["messages"] = messages;
  if (max_tokens > 0) o["max_tokens"] = max_tokens;
  if (stream) o["stream"] = true;
  if (include_usage) o["stream_options"] = json::object{{"include_usage", true}};
  return json::serialize(o);
}

std::string Words(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += i == 0 ? "word" : " word";
  return s;
}

json::object ParseObject(const std::string& s) {
  boost::system::error_code ec;
  json::value v = json::parse(s, ec);
  EXPECT_FALSE(ec) << s;
  if (ec || !v.is_object()) return {};
  return v.as_object();
}

// --- Prometheus text format check ------------------------------------------------------------
struct Exposition {
  std::map<std::string, std::string> types;  // family -> type
  std::map<std::string, double> samples;     // "name{labels}" as written -> value
  std::string error;                         // empty when the text parses
};

Exposition ParsePrometheus(const std::string& text) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  Exposition e;
  static const std::regex kName("[a-zA-Z_:][a-zA-Z0-9_:]*");
  static const std::regex kType(
      "# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|"
      "summary|untyped)");
  static const std::regex kSample(
      R"re(([a-zA-Z_:][a-zA-Z0-9_:]*))re"                      // 1: name
      R"re((\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*"))re"     // first label
      R"re((,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*\})?)re"  // more labels
      R"re( ([^ ]+)( [0-9]+)?)re");                            // 7: value
  size_t pos = 0;
  int line_no = 0;
  std::map<std::string, std::vector<std::pair<double, double>>> buckets;  // series -> (le, n)
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) {
      e.error = "last line has no newline";
      return e;
    }
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.empty()) continue;
    std::smatch m;
    if (line.rfind("# HELP ", 0) == 0) continue;
    if (line.rfind("# TYPE ", 0) == 0) {
      if (!std::regex_match(line, m, kType)) {
        e.error = "bad TYPE line " + std::to_string(line_no) + ": " + line;
        return e;
      }
      e.types[m[1]] = m[2];
      continue;
    }
    if (line[0] == '#') continue;
    if (!std::regex_match(line, m, kSample)) {
      e.error = "bad sample line " + std::to_string(line_no) + ": " + line;
      return e;
    }
    const std::string name = m[1];
    const std::string value_s = m[7];
    char* endp = nullptr;
    double v = value_s == "+Inf" ? kInf : std::strtod(value_s.c_str(), &endp);
    if (value_s != "+Inf" && (endp == nullptr || *endp != '\0')) {
      e.error = "bad value on line " + std::to_string(line_no) + ": " + line;
      return e;
    }
    std::string family = name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string sfx = suffix;
      if (family.size() > sfx.size() && family.ends_with(sfx) &&
          e.types.count(family.substr(0, family.size() - sfx.size())) &&
          e.types[family.substr(0, family.size() - sfx.size())] == "histogram") {
        family = family.substr(0, family.size() - sfx.size());
      }
    }
    if (!e.types.count(family)) {
      e.error = "sample before its TYPE on line " + std::to_string(line_no) + ": " + line;
      return e;
    }
    const std::string series = line.substr(0, line.rfind(' '));
    e.samples[series] = v;
    if (name.ends_with("_bucket")) {
      std::smatch le;
      static const std::regex kLe(R"re(le="([^"]+)")re");
      if (!std::regex_search(line, le, kLe)) {
        e.error = "bucket without le on line " + std::to_string(line_no);
        return e;
      }
      const std::string les = le[1];
      std::string key = std::regex_replace(series, std::regex(R"re(,?le="[^"]+")re"), "");
      buckets[key].push_back({les == "+Inf" ? kInf : std::stod(les), v});
    }
  }
  for (auto& [key, b] : buckets) {
    for (size_t i = 1; i < b.size(); ++i) {
      if (!(b[i].first > b[i - 1].first) || b[i].second < b[i - 1].second) {
        e.error = "buckets not cumulative in " + key;
        return e;
      }
    }
    if (b.empty() || !std::isinf(b.back().first)) e.error = "no +Inf bucket in " + key;
  }
  return e;
}

double Sample(const Exposition& e, const std::string& prefix) {
  for (const auto& [series, v] : e.samples) {
    if (series.rfind(prefix, 0) == 0) return v;
  }
  return std::numeric_limits<double>::quiet_NaN();
}

// Polls /metrics until `series` reaches at least `want` (the server works on its own schedule:
// no fixed sleep is long enough on a busy machine); returns the last exposition.
// The metrics once `series` is at least `want` (at most, with at_most), or after ~5 s.
Exposition WaitForMetric(int port, const std::string& series, double want, bool at_most = false) {
  Exposition e;
  for (int i = 0; i < 500; ++i) {
    Client c(port);
    e = ParsePrometheus(c.Request("GET", "/metrics").body);
    const double v = Sample(e, series);
    if (at_most ? v <= want : v >= want) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return e;
}

// --- Endpoints --------------------------------------------------------------------------------
TEST(MockServerTest, HealthAndModels) {
  MockProcess mock(Args({"--max-model-len", "4096"}));
  ASSERT_GT(mock.port(), 0) << mock.banner();
  Client c(mock.port());
  ASSERT_TRUE(c.connected());
  Response h = c.Request("GET", "/health");
  EXPECT_EQ(h.status, 200);
  Response m = c.Request("GET", "/v1/models");  // same connection: keep-alive
  ASSERT_EQ(m.status, 200);
  json::object o = ParseObject(m.body);
  EXPECT_EQ(o["object"], "list");
  EXPECT_EQ(o["data"].as_array()[0].as_object()["id"], kModel);
  EXPECT_EQ(o["data"].as_array()[0].as_object()["max_model_len"], 4096);
  EXPECT_EQ(c.Request("GET", "/nope").status, 404);
}

TEST(MockServerTest, ChatCompletionUsageAndDeterministicText) {
  MockProcess mock(Args({"--speedup", "20"}));
  ASSERT_GT(mock.port(), 0) << mock.banner();
  Client c(mock.port());
  const std::string content = "Hello, world! How are you today? Let's count 12345 tokens.";
  Response r = c.Request("POST", "/v1/chat/completions", ChatBody(content, 7));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["content-type"], "application/json");
  json::object o = ParseObject(r.body);
  EXPECT_EQ(o["object"], "chat.completion");
  EXPECT_EQ(o["model"], kModel);
  json::object usage = o["usage"].as_object();
  EXPECT_EQ(usage["prompt_tokens"].as_int64(),
            kChatFramingTokens + kChatPerMessageTokens + CountChatContentTokens(content));
  EXPECT_EQ(usage["completion_tokens"].as_int64(), 7);
  EXPECT_EQ(usage["total_tokens"].as_int64(),
            usage["prompt_tokens"].as_int64() + usage["completion_tokens"].as_int64());
  json::object choice = o["choices"].as_array()[0].as_object();
  EXPECT_EQ(choice["finish_reason"], "length");
  std::string text(choice["message"].as_object()["content"].as_string());
  EXPECT_EQ(std::count(text.begin(), text.end(), ' '), 6);  // 7 one-token words

  // Same seed and prompt: same text; another seed: other text.
  Response again = c.Request("POST", "/v1/chat/completions", ChatBody(content, 7));
  EXPECT_EQ(ParseObject(again.body)["choices"]
                .as_array()[0]
                .as_object()["message"]
                .as_object()["content"]
                .as_string()
                .c_str(),
            text);
  MockProcess other(std::vector<std::string>{"--model", kModel, "--seed", "8", "--speedup", "20"});
  Client c2(other.port());
  Response r2 = c2.Request("POST", "/v1/chat/completions", ChatBody(content, 7));
  EXPECT_NE(std::string(ParseObject(r2.body)["choices"]
                            .as_array()[0]
                            .as_object()["message"]
                            .as_object()["content"]
                            .as_string()),
            text);
}

TEST(MockServerTest, NoMaxTokensStopsAtDefaultLength) {
  MockProcess mock(Args({"--instant", "--default-max-tokens", "9"}));
  Client c(mock.port());
  Response r = c.Request("POST", "/v1/chat/completions", ChatBody("hi", 0));
  ASSERT_EQ(r.status, 200) << r.body;
  json::object o = ParseObject(r.body);
  EXPECT_EQ(o["usage"].as_object()["completion_tokens"].as_int64(), 9);
  EXPECT_EQ(o["choices"].as_array()[0].as_object()["finish_reason"], "stop");
}

TEST(MockServerTest, TextCompletion) {
  MockProcess mock(Args({"--speedup", "20"}));
  Client c(mock.port());
  const std::string prompt = "Once upon a time, in 2024,";
  Response r =
      c.Request("POST", "/v1/completions",
                "{\"model\":\"test-model\",\"prompt\":\"" + prompt + "\",\"max_tokens\":4}");
  ASSERT_EQ(r.status, 200) << r.body;
  json::object o = ParseObject(r.body);
  EXPECT_EQ(o["object"], "text_completion");
  EXPECT_EQ(o["usage"].as_object()["prompt_tokens"].as_int64(), 1 + CountTokens(prompt));
  EXPECT_EQ(o["usage"].as_object()["completion_tokens"].as_int64(), 4);
  EXPECT_TRUE(o["choices"].as_array()[0].as_object()["text"].is_string());
  // Token-id prompts count exactly.
  Response ids = c.Request("POST", "/v1/completions",
                           "{\"model\":\"test-model\",\"prompt\":[1,2,3,4,5],\"max_tokens\":1}");
  EXPECT_EQ(ParseObject(ids.body)["usage"].as_object()["prompt_tokens"].as_int64(), 6);
}

TEST(MockServerTest, StreamingChunksOnePerIterationWithUsage) {
  MockProcess mock(Args({"--speedup", "1"}));  // ~7 ms iterations: one chunk each
  Client c(mock.port());
  const int n = 6;
  Response r =
      c.Request("POST", "/v1/chat/completions", ChatBody("Tell me a story.", n, true, true));
  ASSERT_EQ(r.status, 200);
  ASSERT_TRUE(r.complete);
  EXPECT_EQ(r.headers["content-type"], "text/event-stream");
  EXPECT_EQ(r.headers["transfer-encoding"], "chunked");
  // One HTTP chunk per engine iteration that produced a token (a lone request: one token per
  // iteration), each holding whole SSE events.
  ASSERT_EQ(r.chunks.size(), static_cast<size_t>(n));
  for (const std::string& chunk : r.chunks) {
    EXPECT_EQ(chunk.rfind("data: ", 0), 0u);
    EXPECT_TRUE(chunk.ends_with("\n\n"));
  }
  std::vector<std::string> events = SseEvents(r.body);
  ASSERT_EQ(events.size(), static_cast<size_t>(1 + n + 1 + 1));  // role, tokens, usage, DONE
  EXPECT_EQ(events.back(), "[DONE]");
  json::object role = ParseObject(events[0]);
  EXPECT_EQ(role["object"], "chat.completion.chunk");
  EXPECT_EQ(role["choices"].as_array()[0].as_object()["delta"].as_object()["role"], "assistant");
  std::string text;
  for (int i = 1; i <= n; ++i) {
    json::object ev = ParseObject(events[static_cast<size_t>(i)]);
    EXPECT_TRUE(ev["usage"].is_null());
    json::object choice = ev["choices"].as_array()[0].as_object();
    text += std::string(choice["delta"].as_object()["content"].as_string());
    EXPECT_EQ(choice["finish_reason"].is_null(), i < n);
  }
  json::object usage_ev = ParseObject(events[static_cast<size_t>(n + 1)]);
  EXPECT_TRUE(usage_ev["choices"].as_array().empty());
  EXPECT_EQ(usage_ev["usage"].as_object()["completion_tokens"].as_int64(), n);
  EXPECT_EQ(usage_ev["usage"].as_object()["prompt_tokens"].as_int64(),
            10 + CountChatContentTokens("Tell me a story."));

  // The streamed text equals the non-streamed text; without include_usage there is no usage.
  Response full = c.Request("POST", "/v1/chat/completions", ChatBody("Tell me a story.", n));
  EXPECT_EQ(ParseObject(full.body)["choices"]
                .as_array()[0]
                .as_object()["message"]
                .as_object()["content"]
                .as_string()
                .c_str(),
            text);
  Response plain =
      c.Request("POST", "/v1/chat/completions", ChatBody("Tell me a story.", n, true, false));
  EXPECT_EQ(plain.body.find("usage"), std::string::npos);
  EXPECT_TRUE(plain.body.ends_with("data: [DONE]\n\n"));
}

TEST(MockServerTest, StreamingTextCompletion) {
  MockProcess mock(Args({"--instant"}));
  Client c(mock.port());
  Response r =
      c.Request("POST", "/v1/completions",
                "{\"model\":\"test-model\",\"prompt\":\"abc\",\"max_tokens\":3,\"stream\":true}");
  ASSERT_EQ(r.status, 200);
  std::vector<std::string> events = SseEvents(r.body);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(ParseObject(events[0])["object"], "text_completion");
  EXPECT_EQ(events[3], "[DONE]");
}

// The text of each choice of a non-streamed answer, by its "index".
std::map<int64_t, std::string> ChoiceTexts(json::object o) {
  std::map<int64_t, std::string> texts;
  for (const auto& c : o["choices"].as_array()) {
    const json::object& choice = c.as_object();
    const json::value* msg = choice.if_contains("message");
    texts[choice.at("index").as_int64()] = std::string(
        msg != nullptr ? msg->at("content").as_string() : choice.at("text").as_string());
  }
  return texts;
}

// n choices are n sequences in the engine (vLLM's parallel sampling): each its own text and
// max_tokens, usage counting the prompt once and every choice's tokens; streamed, each event
// names its choice's index, every choice opens with a role chunk, and a choice's streamed text
// is its non-streamed text. Before, the mock answered one choice whatever n.
TEST(MockServerTest, ChoicesAreSequencesOfTheirOwn) {
  for (const char* mode : {"--speedup", "--instant"}) {
    SCOPED_TRACE(mode);
    MockProcess mock(std::string(mode) == "--instant" ? Args({"--instant"})
                                                      : Args({"--speedup", "20"}));
    ASSERT_GT(mock.port(), 0) << mock.banner();
    Client c(mock.port());
    const std::string content = "Name three colours.";
    const int64_t prompt = 10 + CountChatContentTokens(content);
    json::object body = ParseObject(ChatBody(content, 5));
    body["n"] = 3;
    Response r = c.Request("POST", "/v1/chat/completions", json::serialize(body));
    ASSERT_EQ(r.status, 200) << r.body;
    json::object o = ParseObject(r.body);
    EXPECT_EQ(o["usage"].as_object()["prompt_tokens"].as_int64(), prompt);
    EXPECT_EQ(o["usage"].as_object()["completion_tokens"].as_int64(), 15);
    const std::map<int64_t, std::string> texts = ChoiceTexts(o);
    ASSERT_EQ(texts.size(), 3u);
    for (const auto& [index, text] : texts) {
      EXPECT_EQ(std::count(text.begin(), text.end(), ' '), 4) << index;  // 5 one-token words
    }
    EXPECT_NE(texts.at(0), texts.at(1));
    EXPECT_NE(texts.at(1), texts.at(2));
    // Choice 0 is what n = 1 gives.
    Response one = c.Request("POST", "/v1/chat/completions", ChatBody(content, 5));
    EXPECT_EQ(ChoiceTexts(ParseObject(one.body)).at(0), texts.at(0));

    body["stream"] = true;
    body["stream_options"] = json::object{{"include_usage", true}};
    Response st = c.Request("POST", "/v1/chat/completions", json::serialize(body));
    ASSERT_EQ(st.status, 200);
    ASSERT_TRUE(st.complete);
    std::map<int64_t, std::string> streamed;
    std::map<int64_t, int> roles, finishes;
    int64_t usage_completion = -1;
    for (const std::string& ev : SseEvents(st.body)) {
      if (ev == "[DONE]") continue;
      json::object e = ParseObject(ev);
      if (e["choices"].as_array().empty()) {
        usage_completion = e["usage"].as_object()["completion_tokens"].as_int64();
        continue;
      }
      ASSERT_EQ(e["choices"].as_array().size(), 1u);
      json::object ch = e["choices"].as_array()[0].as_object();
      const int64_t index = ch["index"].as_int64();
      json::object delta = ch["delta"].as_object();
      if (delta.contains("role")) ++roles[index];
      streamed[index] += std::string(delta["content"].as_string());
      if (!ch["finish_reason"].is_null()) ++finishes[index];
    }
    EXPECT_EQ(streamed, texts);
    EXPECT_EQ(roles, (std::map<int64_t, int>{{0, 1}, {1, 1}, {2, 1}}));
    EXPECT_EQ(finishes, (std::map<int64_t, int>{{0, 1}, {1, 1}, {2, 1}}));
    EXPECT_EQ(usage_completion, 15);
  }
}

// A completions batch: each prompt is its own sequences, checked against the context on its
// own, as vLLM does (before, the mock summed the prompts: two prompts that each fit were
// refused together); choices are ordered prompt by prompt, n each; usage sums the prompts.
TEST(MockServerTest, BatchPromptsAreEachTheirOwnSequences) {
  MockProcess mock(Args({"--instant", "--max-model-len", "4096"}));
  ASSERT_GT(mock.port(), 0) << mock.banner();
  Client c(mock.port());
  const std::string a = Words(1500), b = "A short one.";
  json::object body{{"model", kModel},
                    {"prompt", json::array{json::string(a), json::string(b)}},
                    {"max_tokens", 1000},
                    {"n", 2}};
  Response r = c.Request("POST", "/v1/completions", json::serialize(body));
  ASSERT_EQ(r.status, 200) << r.body;
  json::object o = ParseObject(r.body);
  EXPECT_EQ(o["usage"].as_object()["prompt_tokens"].as_int64(),
            1 + CountTokens(a) + 1 + CountTokens(b));
  EXPECT_EQ(o["usage"].as_object()["completion_tokens"].as_int64(), 4 * 1000);
  std::map<int64_t, std::string> texts = ChoiceTexts(o);
  ASSERT_EQ(texts.size(), 4u);
  // Choices 0-1 are prompt a's, 2-3 prompt b's: the first of each is the prompt's n = 1 text.
  for (const auto& [prompt, index] : {std::pair{a, 0}, std::pair{b, 2}}) {
    json::object single{{"model", kModel}, {"prompt", prompt}, {"max_tokens", 1000}};
    Response one = c.Request("POST", "/v1/completions", json::serialize(single));
    EXPECT_EQ(ChoiceTexts(ParseObject(one.body)).at(0), texts.at(index)) << index;
  }
  // Token-id prompts, one list or a batch of lists.
  Response ids = c.Request("POST", "/v1/completions",
                           R"({"model":"test-model","prompt":[[1,2,3],[4,5]],"max_tokens":2})");
  ASSERT_EQ(ids.status, 200) << ids.body;
  o = ParseObject(ids.body);
  EXPECT_EQ(o["usage"].as_object()["prompt_tokens"].as_int64(), 4 + 3);
  EXPECT_EQ(o["choices"].as_array().size(), 2u);
  // One prompt over the context is refused with its own numbers.
  body["prompt"] = json::array{json::string(b), json::string(Words(3500))};
  r = c.Request("POST", "/v1/completions", json::serialize(body));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("However, you requested " +
                        std::to_string(1 + CountTokens(Words(3500)) + 1000) + " tokens"),
            std::string::npos)
      << r.body;
  // A batch mixing strings and token ids is refused, naming the element.
  r = c.Request("POST", "/v1/completions",
                R"({"model":"test-model","prompt":["a",[1]],"max_tokens":1})");
  EXPECT_EQ(r.status, 400) << r.body;
}

TEST(MockServerTest, ErrorsAsVllm) {
  MockProcess mock(Args({"--max-model-len", "2048"}));
  Client c(mock.port());
  Response too_long = c.Request("POST", "/v1/chat/completions", ChatBody(Words(2100), 10));
  ASSERT_EQ(too_long.status, 400);
  json::object e = ParseObject(too_long.body);
  EXPECT_EQ(e["object"], "error");
  EXPECT_EQ(e["type"], "BadRequestError");
  EXPECT_TRUE(e["param"].is_null());
  EXPECT_EQ(e["code"], 400);
  const std::string msg(e["message"].as_string());
  EXPECT_EQ(msg.rfind("This model's maximum context length is 2048 tokens. However, you "
                      "requested ",
                      0),
            0u)
      << msg;
  EXPECT_NE(msg.find("in the messages, 10 in the completion)"), std::string::npos) << msg;

  Response bad = c.Request("POST", "/v1/chat/completions", "{\"model\": \"test-model\", ");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(ParseObject(bad.body)["object"], "error");
  Response unknown =
      c.Request("POST", "/v1/chat/completions", ChatBody("hi", 3, false, false, "gpt-5"));
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(ParseObject(unknown.body)["type"], "NotFoundError");
  EXPECT_EQ(c.Request("GET", "/health").status, 200);  // errors keep the connection
}

// The sampling parameters and message shapes that vLLM refuses with a 400 (they were served
// with a 200): a gateway test against the mock sees vLLM's answer.
TEST(MockServerTest, SamplingParametersAndMessagesAreCheckedAsVllm) {
  MockProcess mock(Args({"--instant"}));
  Client c(mock.port());
  const std::string m = R"({"model":"test-model","max_tokens":3,)";
  const std::string hi = R"("messages":[{"role":"user","content":"hi"}])";
  for (const auto& [body, message] : std::vector<std::pair<std::string, std::string>>{
           {m + R"("temperature":-1,)" + hi, "temperature must be non-negative"},
           {m + R"("temperature":"hot",)" + hi, "temperature: must be a number"},
           {m + R"("top_p":5,)" + hi, "top_p must be in (0, 1]"},
           {m + R"("n":2,"best_of":1,)" + hi, "best_of must be greater than or equal to n"},
           {m + R"("min_tokens":5,)" + hi, "min_tokens must be less than or equal to max_tokens"},
           {m + R"("stop":5,)" + hi, "stop: must be a string or a list of strings"},
           {m + R"("stream_options":{"include_usage":true},)" + hi,
            "Stream options can only be defined when `stream=True`"},
           {m + R"("messages":[{"content":"hi"}]})", "messages[0].role: required"},
           {m + R"("messages":[{"role":"wizard","content":"hi"}]})",
            "messages[0].role: must be one of"},
           {m + R"("messages":[{}]})", "messages[0].role: required"}}) {
    const std::string full = body.back() == '}' ? body : body + "}";
    const Response r = c.Request("POST", "/v1/chat/completions", full);
    EXPECT_EQ(r.status, 400) << full << " -> " << r.body;
    EXPECT_NE(r.body.find(message), std::string::npos) << full << " -> " << r.body;
  }
  // What vLLM takes is taken.
  for (const std::string& ok :
       {m + R"("temperature":0,"top_p":1,"stop":["x","y"],"min_tokens":3,"n":2,"best_of":2,)" + hi +
            "}",
        m + R"("stream":true,"stream_options":{"include_usage":true},"stop":null,)" + hi + "}"}) {
    EXPECT_EQ(c.Request("POST", "/v1/chat/completions", ok).status, 200) << ok;
  }
}

// One header field over 64 KiB (within the 1 MiB head) closes that connection; the mock serves
// on. Before, Beast's fields threw and the process ended.
TEST(MockServerTest, AHugeHeaderFieldClosesTheConnectionNotTheServer) {
  MockProcess mock(Args({"--instant"}));
  {
    Client c(mock.port());
    const Response r = c.Request("GET", "/health", "", {{"X-A", std::string(70000, 'a')}});
    EXPECT_EQ(r.status, 0);  // closed without an answer
  }
  Client c(mock.port());
  const Response r = c.Request("GET", "/health");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.count("content-type"), 0U);  // no empty Content-Type on an empty body
}

// `Expect: 100-continue` gets a 100 before the body is sent, as from uvicorn (curl waited a
// second for it on every body over 1 MiB).
TEST(MockServerTest, ExpectContinueGetsA100) {
  MockProcess mock(Args({"--instant"}));
  Client c(mock.port());
  const std::string body = ChatBody("hi", 3);
  ASSERT_TRUE(
      c.SendRaw("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                "Content-Type: application/json\r\nExpect: 100-continue\r\n"
                "Content-Length: " +
                std::to_string(body.size()) + "\r\n\r\n"));
  EXPECT_EQ(c.ReadHead().status, 100);
  ASSERT_TRUE(c.SendRaw(body));
  Response r = c.ReadHead();
  EXPECT_EQ(r.status, 200);
  c.ReadBody(&r);
  EXPECT_NE(r.body.find("\"usage\""), std::string::npos) << r.body;
}

TEST(MockServerTest, MetricsAreValidPrometheusWithVllmNames) {
  MockProcess mock(Args({"--speedup", "20"}));
  Client c(mock.port());
  ASSERT_EQ(c.Request("POST", "/v1/chat/completions", ChatBody("one two three", 5)).status, 200);
  Response r = c.Request("GET", "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-type"].rfind("text/plain", 0), 0u);
  Exposition e = ParsePrometheus(r.body);
  ASSERT_EQ(e.error, "") << r.body;
  const std::map<std::string, std::string> expected = {
      {"vllm:num_requests_running", "gauge"},
      {"vllm:num_requests_waiting", "gauge"},
      {"vllm:kv_cache_usage_perc", "gauge"},
      {"vllm:num_preemptions_total", "counter"},
      {"vllm:prompt_tokens_total", "counter"},
      {"vllm:generation_tokens_total", "counter"},
      {"vllm:request_success_total", "counter"},
      {"vllm:time_to_first_token_seconds", "histogram"},
      {"vllm:time_per_output_token_seconds", "histogram"},
      {"vllm:e2e_request_latency_seconds", "histogram"},
  };
  for (const auto& [name, type] : expected) EXPECT_EQ(e.types[name], type) << name;
  const double prompt = 10 + static_cast<double>(CountChatContentTokens("one two three"));
  EXPECT_EQ(Sample(e, "vllm:prompt_tokens_total{"), prompt);
  EXPECT_EQ(Sample(e, "vllm:generation_tokens_total{"), 5);
  EXPECT_EQ(Sample(e, "vllm:time_to_first_token_seconds_count{"), 1);
  EXPECT_EQ(Sample(e, "vllm:num_requests_running{"), 0);
  EXPECT_EQ(Sample(e, "vllm:kv_cache_usage_perc{"), 0);
  EXPECT_EQ(Sample(e, "vllm:request_success_total{finished_reason=\"length\""), 1);
}

// --- Faults -----------------------------------------------------------------------------------
TEST(MockFaultTest, FailRateByFlagAndControlEndpoint) {
  MockProcess mock(Args({"--instant", "--fail-rate", "1", "--fail-status", "500"}));
  Client c(mock.port());
  Response r = c.Request("POST", "/v1/chat/completions", ChatBody("hi", 2));
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(ParseObject(r.body)["object"], "error");
  Response set = c.Request("POST", "/control/faults", "{\"fail_rate\":1,\"fail_status\":503}");
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(c.Request("POST", "/v1/chat/completions", ChatBody("hi", 2)).status, 503);
  ASSERT_EQ(c.Request("POST", "/control/faults", "{\"fail_rate\":0}").status, 200);
  EXPECT_EQ(c.Request("POST", "/v1/chat/completions", ChatBody("hi", 2)).status, 200);
  // A share: about half of 200 requests fail (seeded, so the count is fixed for a seed).
  ASSERT_EQ(c.Request("POST", "/control/faults", "{\"fail_rate\":0.5}").status, 200);
  int failed = 0;
  for (int i = 0; i < 200; ++i) {
    failed += c.Request("POST", "/v1/chat/completions", ChatBody("hi", 2)).status == 503;
  }
  EXPECT_GT(failed, 60);
  EXPECT_LT(failed, 140);
  // Bad control input names the field and changes nothing.
  Response bad = c.Request("POST", "/control/faults", "{\"fail_rate\":2}");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("faults.fail_rate"), std::string::npos);
  // A delay past 1e9 s would overflow the mock's timers (JSON has no infinity; 1e300 is a
  // number).
  bad = c.Request("POST", "/control/faults", "{\"added_latency_ms\":1e300}");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("faults.added_latency_ms: must be in [0, 1e12]"), std::string::npos)
      << bad.body;
  Response metrics = c.Request("GET", "/metrics");
  Exposition e = ParsePrometheus(metrics.body);
  ASSERT_EQ(e.error, "");
  EXPECT_EQ(Sample(e, "tokenpool_mock_faults_injected_total{kind=\"error_500\""), 1);
  EXPECT_GE(Sample(e, "tokenpool_mock_faults_injected_total{kind=\"error_503\""), 61);
}

double SecondsSince(testing::Clock::time_point t0, testing::Clock::time_point t1) {
  return std::chrono::duration<double>(t1 - t0).count();
}

// Fault delays are checked as lower bounds (a timer never fires early), which no load on the
// machine can break; comparing against an undelayed request would be flaky on a busy machine.
TEST(MockFaultTest, AddedLatencyDelaysTheResponse) {
  MockProcess mock(Args({"--instant"}));
  Client c(mock.port());
  ASSERT_EQ(c.Request("POST", "/control/faults", "{\"added_latency_ms\":300}").status, 200);
  const auto t0 = testing::Clock::now();
  ASSERT_EQ(c.Request("POST", "/v1/chat/completions", ChatBody("hi", 2)).status, 200);
  EXPECT_GE(SecondsSince(t0, testing::Clock::now()), 0.3);
  Exposition e = ParsePrometheus(c.Request("GET", "/metrics").body);
  EXPECT_EQ(Sample(e, "tokenpool_mock_faults_injected_total{kind=\"added_latency\""), 1);
}

TEST(MockFaultTest, FirstTokenStallAfterHeaders) {
  MockProcess mock(Args({"--speedup", "20", "--first-token-stall-ms", "300"}));
  Client c(mock.port());
  const auto t0 = testing::Clock::now();
  Response r = c.Request("POST", "/v1/chat/completions", ChatBody("hi", 3, true));
  ASSERT_TRUE(r.complete);
  ASSERT_FALSE(r.chunks.empty());  // tokens made during the stall come together after it
  EXPECT_GE(SecondsSince(t0, r.chunk_times[0]), 0.3);
  EXPECT_EQ(r.headers["content-type"], "text/event-stream");  // the stream had started
  Exposition e = ParsePrometheus(c.Request("GET", "/metrics").body);
  EXPECT_EQ(Sample(e, "tokenpool_mock_faults_injected_total{kind=\"first_token_stall\""), 1);
}

// A client that leaves during a first-token stall is aborted then, as vLLM aborts a request
// whose client left: the engine is empty long before the stall would have ended. Before, the
// stall ran its course (a gateway stopped during a 20 s stall held the mock's drain 20 s).
TEST(MockFaultTest, AClientThatLeavesDuringAStallIsAbortedAtOnce) {
  MockProcess mock(Args({"--speedup", "1", "--first-token-stall-ms", "60000"}));
  for (const bool stream : {true, false}) {
    SCOPED_TRACE(stream ? "stream" : "whole");
    {
      Client gone(mock.port());
      ASSERT_TRUE(gone.Send("POST", "/v1/chat/completions", ChatBody("hi", 5000, stream)));
      Exposition e = WaitForMetric(mock.port(), "vllm:num_requests_running{", 1);
      ASSERT_EQ(Sample(e, "vllm:num_requests_running{"), 1);
    }  // closes the connection 60 s before the stall's end
    const Exposition e = WaitForMetric(mock.port(), "vllm:num_requests_running{", 0, true);
    EXPECT_EQ(Sample(e, "vllm:num_requests_running{"), 0);
    EXPECT_EQ(Sample(e, "vllm:kv_cache_usage_perc{"), 0);
  }
}

TEST(MockFaultTest, DropMidStream) {
  MockProcess mock(Args({"--speedup", "20", "--drop-rate", "1"}));
  {
    Client c(mock.port());
    Response r = c.Request("POST", "/v1/chat/completions", ChatBody("hi", 8, true));
    EXPECT_EQ(r.status, 200);  // the stream started...
    EXPECT_FALSE(r.complete);  // ...and was cut
    EXPECT_FALSE(r.chunks.empty());
    EXPECT_EQ(r.body.find("[DONE]"), std::string::npos);
  }
  {
    Client c(mock.port());
    Response r = c.Request("POST", "/v1/chat/completions", ChatBody("hi", 8));
    EXPECT_EQ(r.status, 0);  // closed before any response
  }
  Client c(mock.port());
  ASSERT_EQ(c.Request("POST", "/control/faults", "{\"drop_rate\":0}").status, 200);
  EXPECT_TRUE(c.Request("POST", "/v1/chat/completions", ChatBody("hi", 8, true)).complete);
  Exposition e = ParsePrometheus(c.Request("GET", "/metrics").body);
  EXPECT_EQ(Sample(e, "tokenpool_mock_faults_injected_total{kind=\"drop\""), 2);
  EXPECT_EQ(Sample(e, "vllm:num_requests_running{"), 0);  // dropped requests left the engine
}

TEST(MockFaultTest, RestartLosesInFlightRequests) {
  MockProcess mock(Args({"--speedup", "1"}));
  Client streaming(mock.port());
  ASSERT_TRUE(streaming.Send("POST", "/v1/chat/completions", ChatBody("hi", 5000, true)));
  Client waiting(mock.port());
  ASSERT_TRUE(waiting.Send("POST", "/v1/chat/completions", ChatBody("hi", 5000)));
  Exposition before = WaitForMetric(mock.port(), "vllm:num_requests_running{", 2);
  EXPECT_EQ(Sample(before, "vllm:num_requests_running{"), 2);  // both are in the engine
  Client control(mock.port());
  // A downtime past 1e12 ms (it overflowed into none) and a misspelt member are refused.
  for (const char* bad : {R"({"down_ms":1e13})", R"({"downms":300})", R"({"down_ms":-1})"}) {
    Client c(mock.port());
    EXPECT_EQ(c.Request("POST", "/control/restart", bad).status, 400) << bad;
  }
  Response r = control.Request("POST", "/control/restart", "{\"down_ms\":300}");
  ASSERT_EQ(r.status, 200);
  Response cut = streaming.Read();
  EXPECT_EQ(cut.status, 200);
  EXPECT_FALSE(cut.complete);
  EXPECT_EQ(waiting.Read().status, 0);  // closed without a response
  // While "restarting", requests are refused by closing the connection; then it serves again
  // with fresh counters.
  Client during(mock.port());
  EXPECT_EQ(during.Request("GET", "/health").status, 0);
  int status = 0;
  for (int i = 0; i < 100 && status != 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    Client after(mock.port());
    status = after.Request("GET", "/health").status;
  }
  EXPECT_EQ(status, 200);
  Client after(mock.port());
  Exposition e = ParsePrometheus(after.Request("GET", "/metrics").body);
  EXPECT_EQ(Sample(e, "vllm:num_requests_running{"), 0);
  EXPECT_EQ(Sample(e, "vllm:generation_tokens_total{"), 0);
  EXPECT_EQ(Sample(e, "tokenpool_mock_faults_injected_total{kind=\"restart\""), 1);
  EXPECT_EQ(after.Request("POST", "/v1/chat/completions", ChatBody("hi", 3)).status, 200);
}

// --- Timing follows the engine model ----------------------------------------------------------
double TimeToFirstChunk(Client& c, const std::string& content, int max_tokens) {
  const auto t0 = testing::Clock::now();
  Response r = c.Request("POST", "/v1/chat/completions", ChatBody(content, max_tokens, true));
  EXPECT_TRUE(r.complete);
  return r.chunk_times.empty() ? 0.0 : SecondsSince(t0, r.chunk_times[0]);
}

TEST(MockTimingTest, TtftGrowsWithPromptLength) {
  // Llama-3-8B on an H100: a 16K-token prompt prefills in ~0.4 s of model time, a short one in
  // one ~7 ms iteration.
  MockProcess mock(Args({"--profile", "llama-3-8b-h100"}));
  Client c(mock.port());
  const double short_ttft = TimeToFirstChunk(c, Words(50), 2);
  const double short_model = Sample(ParsePrometheus(c.Request("GET", "/metrics").body),
                                    "vllm:time_to_first_token_seconds_sum{");
  const double long_ttft = TimeToFirstChunk(c, Words(16000), 2);
  EXPECT_GT(long_ttft, short_ttft);
  // The engine's own TTFT (model time, in the histogram) agrees.
  Exposition e = ParsePrometheus(c.Request("GET", "/metrics").body);
  EXPECT_EQ(Sample(e, "vllm:time_to_first_token_seconds_count{"), 2);
  EXPECT_GT(Sample(e, "vllm:time_to_first_token_seconds_sum{") - short_model, short_model);
}

TEST(MockTimingTest, TtftGrowsWithLoad) {
  // Two sequences at a time: requests beyond them wait in the engine's queue.
  MockProcess mock(Args({"--profile", "llama-3-8b-h100", "--max-num-seqs", "2"}));
  Client probe(mock.port());
  const double idle = TimeToFirstChunk(probe, Words(100), 2);
  std::vector<std::unique_ptr<Client>> load;
  for (int i = 0; i < 4; ++i) {
    load.push_back(std::make_unique<Client>(mock.port()));
    ASSERT_TRUE(load.back()->Send("POST", "/v1/chat/completions", ChatBody(Words(100), 40)));
  }
  // All four are in the engine: two running, the others waiting (40 tokens take ~0.3 s).
  Exposition e = WaitForMetric(mock.port(), "vllm:num_requests_running{", 2);
  EXPECT_EQ(Sample(e, "vllm:num_requests_running{"), 2);
  EXPECT_GE(Sample(e, "vllm:num_requests_waiting{"), 1);
  const double loaded = TimeToFirstChunk(probe, Words(100), 2);
  EXPECT_GT(loaded, idle);
  for (auto& c : load) EXPECT_EQ(c->Read().status, 200);
}

TEST(MockTimingTest, SmallKvCachePreemptsAndStillCompletes) {
  // 128 blocks = 2,048 KV tokens; four requests growing to ~700 tokens each cannot all stay.
  MockProcess mock(
      Args({"--max-model-len", "1024", "--num-gpu-blocks-override", "128", "--speedup", "10"}));
  ASSERT_GT(mock.port(), 0) << mock.banner();
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(std::make_unique<Client>(mock.port()));
    ASSERT_TRUE(clients.back()->Send("POST", "/v1/chat/completions", ChatBody(Words(300), 400)));
  }
  for (auto& c : clients) {
    Response r = c->Read();
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(ParseObject(r.body)["usage"].as_object()["completion_tokens"].as_int64(), 400);
  }
  Client c(mock.port());
  Exposition e = ParsePrometheus(c.Request("GET", "/metrics").body);
  EXPECT_GT(Sample(e, "vllm:num_preemptions_total{"), 0);
  EXPECT_EQ(Sample(e, "vllm:generation_tokens_total{"), 1600);  // recompute samples nothing twice
  EXPECT_EQ(Sample(e, "vllm:kv_cache_usage_perc{"), 0);
}

TEST(MockServerTest, ClientThatLeavesIsAbortedInTheEngine) {
  MockProcess mock(Args({"--speedup", "1"}));
  {
    Client gone(mock.port());
    ASSERT_TRUE(gone.Send("POST", "/v1/chat/completions", ChatBody("hi", 5000)));
    Exposition e = WaitForMetric(mock.port(), "vllm:num_requests_running{", 1);
    ASSERT_EQ(Sample(e, "vllm:num_requests_running{"), 1);
  }  // closes the connection long before 5,000 tokens (~35 s of model time)
  const Exposition e = WaitForMetric(mock.port(), "vllm:num_requests_running{", 0, true);
  EXPECT_EQ(Sample(e, "vllm:num_requests_running{"), 0);
  EXPECT_EQ(Sample(e, "vllm:kv_cache_usage_perc{"), 0);
  EXPECT_LT(Sample(e, "vllm:generation_tokens_total{"), 5000);
}

TEST(MockServerTest, BadFlagsExitNonZero) {
  const std::string cmd = std::string(TOKENPOOL_BINARY) + " mock --port 0 --profile nope 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof buf, p) != nullptr) out += buf;
  const int status = pclose(p);
  EXPECT_NE(WEXITSTATUS(status), 0);
  EXPECT_NE(out.find("--profile"), std::string::npos) << out;
  for (const auto& [args, flag] : std::vector<std::pair<std::string, std::string>>{
           {"--fail-rate 2", "--fail-rate:"},
           {"--fail-status 404", "--fail-status:"},
           {"--max-model-len 100000000", "--max-model-len:"},
           {"--speedup 0", "--speedup:"},
           {"--speedup 1e300", "--speedup: must be in [0.001, 10000]"}}) {
    const std::string c = std::string(TOKENPOOL_BINARY) + " mock --port 0 " + args + " 2>&1";
    FILE* q = popen(c.c_str(), "r");
    ASSERT_NE(q, nullptr);
    std::string o;
    while (fgets(buf, sizeof buf, q) != nullptr) o += buf;
    EXPECT_NE(WEXITSTATUS(pclose(q)), 0) << args;
    EXPECT_NE(o.find(flag), std::string::npos) << args << ": " << o;
  }
}

// 0 is not "the profile's value" (it was silently replaced by it and the server started): a
// flag error naming the flag, exit 2. `timeout` ends a server that did start.
TEST(MockServerTest, ZeroSizesAreFlagErrors) {
  for (const char* flag : {"--max-model-len", "--max-num-seqs", "--num-gpu-blocks-override"}) {
    const std::string c =
        "timeout 5 " + std::string(TOKENPOOL_BINARY) + " mock --port 0 " + flag + " 0 2>&1";
    FILE* q = popen(c.c_str(), "r");
    ASSERT_NE(q, nullptr);
    std::string o;
    char buf[512];
    while (fgets(buf, sizeof buf, q) != nullptr) o += buf;
    EXPECT_EQ(WEXITSTATUS(pclose(q)), 2) << flag << ": " << o;
    EXPECT_NE(o.find(std::string(flag) + ": must be > 0"), std::string::npos) << o;
  }
}

}  // namespace
}  // namespace tokenpool::mock
