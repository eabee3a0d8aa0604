// Reading `usage` from backend JSON without parsing the rest (gateway/usage.h).
#include "gateway/usage.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <string>

namespace tokenpool::gateway {
namespace {

TEST(UsageTest, FindsTheTopLevelObject) {
  EXPECT_EQ(FindUsageObject(R"({"id":"a","usage":{"prompt_tokens":3,"completion_tokens":4}})"),
            R"({"prompt_tokens":3,"completion_tokens":4})");
  // Whitespace, nested objects (prompt_tokens_details), braces inside strings.
  EXPECT_EQ(FindUsageObject("{\"usage\" : \n {\"a\":{\"b\":1},\"s\":\"}{\"}}"),
            "{\"a\":{\"b\":1},\"s\":\"}{\"}");
  // A "usage" inside content is escaped and skipped; null and absent give nothing.
  const std::string in_content =
      R"({"choices":[{"message":{"content":"say \"usage\":{\"prompt_tokens\":9}"}}],)"
      R"("usage":{"prompt_tokens":1,"completion_tokens":2}})";
  EXPECT_EQ(FindUsageObject(in_content), R"({"prompt_tokens":1,"completion_tokens":2})");
  // Searched from the end: an escaped "usage" after the real one, and usage not last.
  EXPECT_EQ(FindUsageObject(R"({"usage":{"prompt_tokens":1},"c":"x \"usage\":{\"y\":2}"})"),
            R"({"prompt_tokens":1})");
  EXPECT_EQ(FindUsageObject(R"({"usage":{"prompt_tokens":5},"id":"x","n":[{"k":1}]})"),
            R"({"prompt_tokens":5})");
  EXPECT_EQ(FindUsageObject(R"({"usage":null})"), "");
  EXPECT_EQ(FindUsageObject(R"({"id":"a"})"), "");
  // Many a 'g' after the real key (the search jumps between them), and one at the very start.
  EXPECT_EQ(FindUsageObject(R"({"usage":{"prompt_tokens":5},"g":"gggg","tag":{"g":["g"]}})"),
            R"({"prompt_tokens":5})");
  EXPECT_EQ(FindUsageObject("g"), "");
  EXPECT_EQ(FindUsageObject(R"(usage":{}})"), "");
  EXPECT_EQ(FindUsageObject(R"({"usage":{"prompt_tokens":1)"), "");  // cut off
}

TEST(UsageTest, ReadsPromptAndCompletionTokens) {
  Usage u;
  ASSERT_TRUE(ReadUsage(R"({"usage":{"prompt_tokens":30,"total_tokens":34,)"
                        R"("completion_tokens":4,"prompt_tokens_details":{"cached_tokens":0}}})",
                        &u));
  EXPECT_EQ(u.prompt.v, 30);
  EXPECT_EQ(u.completion.v, 4);
  EXPECT_FALSE(ReadUsage(R"({"usage":{"prompt_tokens":30}})", &u));
  EXPECT_FALSE(ReadUsage(R"({"usage":{"prompt_tokens":"30","completion_tokens":4}})", &u));
  EXPECT_FALSE(ReadUsage("not json", &u));
  // Any order, whitespace, other members of every type skipped; a malformed object refused.
  ASSERT_TRUE(ReadUsage("{\"usage\": {\n \"completion_tokens\" : 7, \"x\": [1, {\"y\": null}],"
                        " \"s\": \"}\", \"prompt_tokens\": 12345678901}}",
                        &u));
  EXPECT_EQ(u.prompt.v, 12345678901);
  EXPECT_EQ(u.completion.v, 7);
  EXPECT_FALSE(ReadUsage(R"({"usage":{"prompt_tokens":1,"completion_tokens":2.5}})", &u));
  EXPECT_FALSE(ReadUsage(R"({"usage":{"prompt_tokens":1,"completion_tokens":2,}})", &u));
  EXPECT_FALSE(ReadUsage(R"({"usage":{"prompt_tokens":1 "completion_tokens":2}})", &u));
  EXPECT_FALSE(ReadUsage(R"({"usage":{"prompt_tokens":-},"completion_tokens":2}})", &u));
  // A negative or absurd count is not a usage (settled as the estimate instead): a count near
  // INT64_MAX overflowed the pools' sums.
  EXPECT_FALSE(ReadUsage(R"({"usage":{"prompt_tokens":-5,"completion_tokens":2}})", &u));
  EXPECT_FALSE(
      ReadUsage(R"({"usage":{"prompt_tokens":1,"completion_tokens":9223372036854775807}})", &u));
  EXPECT_FALSE(ReadUsage(R"({"usage":{"prompt_tokens":1000000000001,"completion_tokens":0}})", &u));
  ASSERT_TRUE(ReadUsage(R"({"usage":{"prompt_tokens":1000000000000,"completion_tokens":0}})", &u));
  EXPECT_EQ(u.prompt.v, 1'000'000'000'000);
}

// include_usage added upstream: written before the closing brace when the client sent no
// stream_options object (no parse), set inside the client's object otherwise, and written at
// the end of a body nested too deep for Boost.JSON (whose default depth, 32, lost the usage of
// such requests: they settled as their estimate).
TEST(UsageTest, WithIncludeUsageAddsTheMember) {
  EXPECT_EQ(WithIncludeUsage(R"({"model":"m","stream":true} )", false),
            R"({"model":"m","stream":true,"stream_options":{"include_usage":true}})");
  EXPECT_EQ(WithIncludeUsage("{ \n}", false), "{ \n\"stream_options\":{\"include_usage\":true}}");
  EXPECT_EQ(WithIncludeUsage(R"({"a":{}})", false),
            R"({"a":{},"stream_options":{"include_usage":true}})");
  // continuous_usage_stats is turned off with it: vLLM honours it only with include_usage,
  // and the client, who did not ask for usage, would get usage in every chunk.
  EXPECT_EQ(WithIncludeUsage(R"({"stream_options":{"continuous_usage_stats":true,)"
                             R"("include_usage":false},"stream":true})",
                             true),
            R"({"stream_options":{"continuous_usage_stats":false,"include_usage":true},)"
            R"("stream":true})");
  std::string deep = R"({"stream_options":{},"x":)";
  for (int i = 0; i < 2000; ++i) deep += "[";
  for (int i = 0; i < 2000; ++i) deep += "]";
  deep += "}";
  const std::string out = WithIncludeUsage(deep, true);
  EXPECT_TRUE(out.ends_with(R"(]],"stream_options":{"include_usage":true}})")) << out.substr(0, 80);
  // 40 levels: Boost.JSON's default depth refused it; parsed now, the member set in place.
  std::string forty = R"({"stream_options":{},"x":)";
  for (int i = 0; i < 40; ++i) forty += "[";
  for (int i = 0; i < 40; ++i) forty += "]";
  forty += "}";
  EXPECT_TRUE(
      WithIncludeUsage(forty, true).starts_with(R"({"stream_options":{"include_usage":true},)"));
  // A repeated member: the last one is the backend's, and the one given include_usage.
  const std::string twice = WithIncludeUsage(
      R"({"stream":true,"stream_options":{"include_usage":true},"stream_options":{}})", true);
  const boost::json::value v = boost::json::parse(twice);
  EXPECT_EQ(v.at("stream_options").at("include_usage"), true) << twice;
}

// The stream's way of scanning (StreamBack): bytes arrive in pieces, whole events are taken
// from the front, and the next scan resumes three bytes before the end of what is left. Every
// split of LF and CRLF streams gives the events of one whole scan.
TEST(UsageTest, ResumedScansFindTheSameEvents) {
  for (const std::string& stream :
       {std::string("data: {\"a\":1}\n\ndata: {\"b\":22}\n\n: c\n\ndata: [DONE]\n\n"),
        std::string(
            "data: {\"a\":1}\r\n\r\nid: 2\r\ndata: {\"b\":22}\r\n\r\ndata: [DONE]\r\n\r\n")}) {
    std::vector<std::string> whole;
    ForEachSseEvent(stream, 0, [&](std::string_view ev) { whole.emplace_back(ev); });
    ASSERT_GE(whole.size(), 3u);
    for (size_t piece = 1; piece <= 7; ++piece) {
      std::vector<std::string> got;
      std::string pending;
      size_t scan_from = 0;
      for (size_t at = 0; at < stream.size(); at += piece) {
        pending.append(stream.substr(at, piece));
        const size_t used =
            ForEachSseEvent(pending, scan_from, [&](std::string_view ev) { got.emplace_back(ev); });
        pending.erase(0, used);
        scan_from = pending.size() > 3 ? pending.size() - 3 : 0;
      }
      EXPECT_EQ(got, whole) << "pieces of " << piece;
      EXPECT_TRUE(pending.empty());
    }
  }
}

TEST(UsageTest, ScansWholeServerSentEvents) {
  const std::string block =
      "data: {\"choices\":[{\"delta\":{\"content\":\"a\\nb\"}}],\"usage\":null}\n\n"
      ": a comment\n\n"
      "event: x\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n"
      "data: [DONE]\n\n";
  SseBlock b = ScanSseBlock(block);
  EXPECT_EQ(b.data_events, 2);  // the data line of a multi-line event is read too (SSE's rule)
  ASSERT_TRUE(b.have_usage);
  EXPECT_EQ(b.usage.completion, Tokens(4));
  // CRLF line endings, "data:" without its space, id: and event: lines before the data line.
  const std::string crlf =
      "data:{\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\r\n\r\n"
      "id: 7\r\nevent: message\r\ndata: {\"choices\": [], \"usage\": {\"prompt_tokens\": 3, "
      "\"completion_tokens\": 5}}\r\n\r\n"
      "data: [DONE]\r\n\r\n";
  b = ScanSseBlock(crlf);
  EXPECT_EQ(b.data_events, 2);
  EXPECT_EQ(b.size, crlf.size());  // every event whole, none left for the next read
  ASSERT_TRUE(b.have_usage);
  EXPECT_EQ(b.usage.prompt, Tokens(3));
  EXPECT_EQ(b.usage.completion, Tokens(5));

  const std::string two =
      "data: {\"n\":1,\"usage\":null}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,"
      "\"completion_tokens\":4}}\n\ndata: [DONE]\n\n";
  b = ScanSseBlock(two);
  EXPECT_EQ(b.data_events, 2);
  ASSERT_TRUE(b.have_usage);
  EXPECT_EQ(b.usage.prompt, Tokens(3));
  EXPECT_EQ(b.usage.completion, Tokens(4));

  // Usage on an event that is not the last (a backend that puts it on the finish chunk), and
  // running totals on every chunk: the last usage read wins.
  b = ScanSseBlock(
      "data: {\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\n"
      "data: {\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n"
      "data: {\"choices\":[{\"delta\":{}}]}\n\n");
  EXPECT_EQ(b.data_events, 3);
  ASSERT_TRUE(b.have_usage);
  EXPECT_EQ(b.usage.completion, Tokens(2));

  // Nothing whole, or only [DONE]: nothing counted.
  EXPECT_EQ(ScanSseBlock("data: {\"n\":1}\n").data_events, 0);
  EXPECT_EQ(ScanSseBlock("data: [DONE]\n\n").data_events, 0);
  // A partial event after the last blank line is not looked at.
  b = ScanSseBlock(
      "data: {\"n\":1}\n\ndata: {\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}");
  EXPECT_EQ(b.data_events, 1);
  EXPECT_FALSE(b.have_usage);
}

// vLLM's context-length refusals name the prompt's true count, in the old and new wordings.
TEST(UsageTest, PromptTokensOfContextError) {
  EXPECT_EQ(PromptTokensOfContextError(
                R"({"object":"error","message":"This model's maximum context length is 8192 )"
                R"(tokens. However, you requested 9000 tokens (7211 in the messages, 1789 in )"
                R"(the completion). Please reduce the length of the messages or completion."})"),
            7211);
  EXPECT_EQ(PromptTokensOfContextError("This model's maximum context length is 2048 tokens. "
                                       "However, you requested 3000 tokens (2900 in the prompt, "
                                       "100 in the completion)."),
            2900);
  EXPECT_EQ(PromptTokensOfContextError("This model's maximum context length is 2048 tokens. "
                                       "However, your request has 4000 input tokens."),
            4000);
  EXPECT_EQ(PromptTokensOfContextError(R"({"message":"bad temperature"})"), -1);
  EXPECT_EQ(PromptTokensOfContextError("maximum context length; (x in the messages"), -1);
}

}  // namespace
}  // namespace tokenpool::gateway
