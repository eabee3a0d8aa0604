// PromptText: bodies are valid JSON with the requested settings, text is deterministic, and
// each kind's bytes per token matches the mock's stand-in tokenizer (so a trace's prompt size
// arrives as about that many prompt tokens).
#include "load/text.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>

#include "mock/tokenizer.h"

namespace tokenpool::load {
namespace {

namespace json = boost::json;

class PromptTextTest : public ::testing::TestWithParam<ContentType> {};

TEST_P(PromptTextTest, BodyIsValidJsonWithAboutTheRequestedTokens) {
  const PromptText text(7);
  const ContentType t = GetParam();
  for (int64_t tokens : {20, 300, 2000, 90000}) {
    int64_t counted = 0;
    const int samples = 20;
    for (int i = 0; i < samples; ++i) {
      std::string body;
      text.AppendChatBody("m", t, tokens, 17, static_cast<uint64_t>(i), &body);
      boost::system::error_code ec;
      json::value v = json::parse(body, ec);
      ASSERT_FALSE(ec) << ContentTypeName(t) << " " << tokens << ": " << ec.message();
      const json::object& o = v.as_object();
      EXPECT_EQ(o.at("model").as_string(), "m");
      EXPECT_EQ(o.at("max_tokens").as_int64(), 17);
      EXPECT_TRUE(o.at("stream").as_bool());
      EXPECT_TRUE(o.at("stream_options").as_object().at("include_usage").as_bool());
      const json::string& content =
          o.at("messages").as_array()[0].as_object().at("content").as_string();
      counted += mock::CountChatContentTokens(std::string_view(content.data(), content.size())) +
                 mock::kChatFramingTokens + mock::kChatPerMessageTokens;
    }
    const double mean = static_cast<double>(counted) / samples;
    // 20 tokens is mostly framing; beyond that the mean is within 12% of the request.
    const double tolerance = tokens < 100 ? 0.35 : 0.12;
    EXPECT_NEAR(mean / static_cast<double>(tokens), 1.0, tolerance)
        << ContentTypeName(t) << " at " << tokens << " tokens: " << mean;
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, PromptTextTest,
                         ::testing::Values(ContentType::kProse, ContentType::kCode,
                                           ContentType::kJson, ContentType::kMultilingual),
                         [](const auto& p) { return std::string(ContentTypeName(p.param)); });

TEST(PromptText, DeterministicPerSeedAndIndex) {
  const PromptText a(1), b(1), c(2);
  std::string x, y, z, w;
  a.AppendEscaped(ContentType::kProse, 100, 5, &x);
  b.AppendEscaped(ContentType::kProse, 100, 5, &y);
  c.AppendEscaped(ContentType::kProse, 100, 5, &z);
  a.AppendEscaped(ContentType::kProse, 100, 6, &w);
  EXPECT_EQ(x, y);
  EXPECT_NE(x, z);
  EXPECT_NE(x, w);
}

TEST(PromptText, KindsLookDifferent) {
  const PromptText text(3);
  EXPECT_NE(text.corpus(ContentType::kCode).find("return "), std::string::npos);
  EXPECT_NE(text.corpus(ContentType::kJson).find("{\\\"id\\\": "), std::string::npos);
  EXPECT_NE(text.corpus(ContentType::kMultilingual).find("系统"), std::string::npos);
  EXPECT_NE(text.corpus(ContentType::kProse).find(". "), std::string::npos);
}

}  // namespace
}  // namespace tokenpool::load
