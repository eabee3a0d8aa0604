// Trace parsing: the three formats, header detection, and line-numbered errors.

#include "tokenpool/trace.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace tokenpool {
namespace {

Trace Parse(std::string_view text) {
  Result<Trace> t = ParseTrace(text, "trace.csv");
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? t.value() : Trace{};
}

std::string Error(std::string_view text) {
  Result<Trace> t = ParseTrace(text, "trace.csv");
  EXPECT_FALSE(t.ok());
  if (t.ok()) return "";
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  return t.status().message();
}

TEST(TraceTest, AzureArrivalsAreSecondsSinceTheFirstRow) {
  const Trace t = Parse(
      "TIMESTAMP,ContextTokens,GeneratedTokens\n"
      "2023-11-16 18:17:03.9799600,4808,10\n"
      "2023-11-16 18:17:04.0319600,3180,8\n"
      "2023-11-16 23:59:59.5,1,1\n"
      "2023-11-17 00:00:00,2,0\n");
  EXPECT_EQ(t.format, TraceFormat::kAzure);
  ASSERT_EQ(t.requests.size(), 4u);
  EXPECT_EQ(t.requests[0], (TraceRequest{0.0, 4808, 10}));
  EXPECT_NEAR(*t.requests[1].arrival_s, 0.052, 1e-9);
  EXPECT_EQ(t.requests[1].input_tokens, 3180);
  EXPECT_EQ(t.requests[1].output_tokens, 8);
  // Across midnight: 5 h 42 min 55.52004 s, then half a second more.
  EXPECT_NEAR(*t.requests[2].arrival_s, 5 * 3600 + 42 * 60 + 55.52004, 1e-9);
  EXPECT_NEAR(*t.requests[3].arrival_s, *t.requests[2].arrival_s + 0.5, 1e-9);
  EXPECT_EQ(t.requests[3].total_tokens(), 2);
}

TEST(TraceTest, PlainFormatWithReorderedAndExtraColumns) {
  const Trace t = Parse(
      "input_tokens,arrival_s,output_tokens,tenant\r\n"
      "100,0.5,20,a\r\n"
      "\r\n"
      "200, 1.25 ,30,b\r\n");
  EXPECT_EQ(t.format, TraceFormat::kPlain);
  ASSERT_EQ(t.requests.size(), 2u);
  EXPECT_EQ(t.requests[0], (TraceRequest{0.5, 100, 20}));
  EXPECT_EQ(t.requests[1], (TraceRequest{1.25, 200, 30}));
}

TEST(TraceTest, LengthsOnlyHasNoArrivals) {
  const Trace t = Parse(
      "\xEF\xBB\xBFnum_prefill_tokens,num_decode_tokens,num_total_tokens,"
      "pd_ratio\n3772,54,3826,69.85185185185185\n2015,156,2171,12.9\n");
  EXPECT_EQ(t.format, TraceFormat::kLengthsOnly);
  EXPECT_EQ(TraceFormatName(t.format), "lengths_only");
  ASSERT_EQ(t.requests.size(), 2u);
  EXPECT_FALSE(t.requests[0].arrival_s.has_value());
  EXPECT_EQ(t.requests[1].input_tokens, 2015);
  EXPECT_EQ(t.requests[1].output_tokens, 156);
}

TEST(TraceTest, ErrorsNameLineAndField) {
  const std::string azure =
      "TIMESTAMP,ContextTokens,GeneratedTokens\n"
      "2023-11-16 18:17:03.9799600,4808,10\n";
  EXPECT_EQ(Error(azure + "2023-11-16 18:17:04.0,abc,8\n"),
            "trace.csv:3: ContextTokens: expected a non-negative integer, got \"abc\"");
  EXPECT_EQ(Error(azure + "2023-11-16 18:17:04.0,12,-8\n"),
            "trace.csv:3: GeneratedTokens: expected a non-negative integer, got \"-8\"");
  EXPECT_EQ(Error(azure + "2023-11-16 18:17:04.0,12.5,8\n"),
            "trace.csv:3: ContextTokens: expected a non-negative integer, got \"12.5\"");
  EXPECT_EQ(Error(azure + "16/11/2023 18:17,1,1\n"),
            "trace.csv:3: TIMESTAMP: expected a timestamp like 2023-11-16 18:17:03.9799600, "
            "got \"16/11/2023 18:17\"");
  EXPECT_EQ(Error(azure + "2023-13-16 18:17:04.0,1,1\n").substr(0, 25),
            "trace.csv:3: TIMESTAMP: e");
  EXPECT_EQ(Error(azure + "2023-11-16 18:17:02.0,1,1\n").substr(0, 57),
            "trace.csv:3: TIMESTAMP: arrivals must not go back in time");
  EXPECT_EQ(Error(azure + "\n2023-11-16 18:17:04.0,1\n"),
            "trace.csv:4: line: expected 3 fields, got \"2023-11-16 18:17:04.0,1\"");
  EXPECT_EQ(Error("arrival_s,input_tokens,output_tokens\n-1,5,5\n"),
            "trace.csv:2: arrival_s: expected a non-negative number of seconds, got \"-1\"");
  EXPECT_EQ(Error("arrival_s,input_tokens,output_tokens\nnan,5,5\n"),
            "trace.csv:2: arrival_s: expected a non-negative number of seconds, got \"nan\"");
  EXPECT_EQ(Error("arrival_s,input_tokens,output_tokens\n1,,5\n"),
            "trace.csv:2: input_tokens: expected a non-negative integer, got \"\"");
}

// Each count is bounded (kMaxTraceTokens) so that input + output cannot overflow int64 into a
// "short" request.
TEST(TraceTest, TokenCountsAreBounded) {
  const std::string head = "arrival_s,input_tokens,output_tokens\n";
  auto ok = ParseTrace(head + "0,4294967296,4294967296\n", "t.csv");
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->requests[0].total_tokens(), int64_t{1} << 33);
  auto in = ParseTrace(head + "0,1,1\n1,4294967297,1\n", "t.csv");
  ASSERT_FALSE(in.ok());
  EXPECT_EQ(in.status().message(),
            "t.csv:3: input_tokens: must be at most 4294967296 tokens, got \"4294967297\"");
  auto out = ParseTrace(head + "0,5,9223372036854775807\n", "t.csv");
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().message(),
            "t.csv:2: output_tokens: must be at most 4294967296 tokens, "
            "got \"9223372036854775807\"");
}

TEST(TraceTest, HeaderErrors) {
  EXPECT_EQ(Error("").substr(0, 21), "trace.csv: empty trac");
  EXPECT_EQ(Error("arrival_s,input_tokens,output_tokens\n"),
            "trace.csv: trace has a header but no requests");
  const std::string unknown = Error("time,prompt,completion\n1,2,3\n");
  EXPECT_EQ(unknown.substr(0, 47), "trace.csv:1: header: unknown trace format; expe");
  EXPECT_NE(unknown.find("TIMESTAMP,ContextTokens,GeneratedTokens"), std::string::npos);
  EXPECT_NE(unknown.find("got \"time,prompt,completion\""), std::string::npos);
}

TEST(TraceTest, RealAzureCodeTrace) {
  const std::string path =
      std::string(TOKENPOOL_SHARED_DIR) + "/traces/AzureLLMInferenceTrace_code.csv";
  std::ifstream in(path, std::ios::binary);
  if (!in) GTEST_SKIP() << path << " is absent: the real-trace check needs ../shared";
  std::ostringstream text;
  text << in.rdbuf();
  const Trace t = Parse(text.str());
  EXPECT_EQ(t.format, TraceFormat::kAzure);
  ASSERT_EQ(t.requests.size(), 8819u);  // ../shared/traces/README.md
  double input = 0;
  for (const TraceRequest& r : t.requests) input += static_cast<double>(r.input_tokens);
  EXPECT_NEAR(input / 8819, 2048, 1);             // README: mean input 2048
  EXPECT_GT(*t.requests.back().arrival_s, 3000);  // one hour
  EXPECT_LT(*t.requests.back().arrival_s, 3700);
}

}  // namespace
}  // namespace tokenpool
