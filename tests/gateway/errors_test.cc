#include "gateway/errors.h"

#include <gtest/gtest.h>

#include <string>

namespace tokenpool::gateway {
namespace {

std::string Rewritten(std::string body, unsigned status = 400) {
  ToOpenAiError(&body, status);
  return body;
}

// A backend's 4xx reaches the client in OpenAI's error shape, whatever shape the backend used.
TEST(ToOpenAiErrorTest, BackendBodiesBecomeOpenAiShaped) {
  // vLLM's flat shape; its context-length message gets OpenAI's code.
  EXPECT_EQ(Rewritten(R"({"object":"error","message":"This model's maximum context length is )"
                      R"(8192 tokens. However, you requested 9000 tokens.","type":)"
                      R"("BadRequestError","param":null,"code":400})"),
            R"({"error":{"message":"This model's maximum context length is 8192 tokens. )"
            R"(However, you requested 9000 tokens.","type":"invalid_request_error",)"
            R"("param":null,"code":"context_length_exceeded"}})");
  EXPECT_EQ(Rewritten(R"({"object":"error","message":"The model `x` does not exist.",)"
                      R"("type":"NotFoundError","param":"model","code":404})"),
            R"({"error":{"message":"The model `x` does not exist.","type":)"
            R"("invalid_request_error","param":"model","code":null}})");
  // FastAPI's validation error, and text: the body is the message.
  EXPECT_EQ(Rewritten(R"({"detail":[{"loc":["body"],"msg":"x"}]})"),
            R"({"error":{"message":"{\"detail\":[{\"loc\":[\"body\"],\"msg\":\"x\"}]}",)"
            R"("type":"invalid_request_error","param":null,"code":null}})");
  EXPECT_EQ(Rewritten("Bad Request"),
            R"({"error":{"message":"Bad Request","type":"invalid_request_error",)"
            R"("param":null,"code":null}})");
  // At most kMaxBackendMessage bytes of it.
  const std::string long_text(3 * kMaxBackendMessage, 'x');
  EXPECT_EQ(Rewritten(long_text).size(), Rewritten(std::string(kMaxBackendMessage, 'x')).size());
  // Well-formed UTF-8 whatever came: a byte of another encoding, a character cut at the 4 KiB
  // mark, an encoded surrogate (strict JSON decoders refuse each).
  EXPECT_EQ(Rewritten("bad \xff byte"),
            R"({"error":{"message":"bad ? byte","type":"invalid_request_error",)"
            R"("param":null,"code":null}})");
  const std::string cut = Rewritten(std::string(kMaxBackendMessage - 1, 'a') + "\xc3\xa9 more");
  EXPECT_NE(cut.find("aaa?\""), std::string::npos) << cut.substr(cut.size() - 80);
  EXPECT_NE(Rewritten("x\xed\xa0\x80y").find("x???y"), std::string::npos);
  EXPECT_NE(Rewritten("caf\xc3\xa9 \xf0\x9f\x98\x80").find("caf\xc3\xa9 \xf0\x9f\x98\x80"),
            std::string::npos);  // well-formed text is kept
  // OpenAI's shape (newer vLLM) is kept byte for byte.
  std::string openai =
      R"({"error":{"message":"m","type":"BadRequestError","param":null,"code":400}})";
  EXPECT_FALSE(ToOpenAiError(&openai, 400));
  EXPECT_EQ(openai,
            R"({"error":{"message":"m","type":"BadRequestError","param":null,"code":400}})");
}

// A backend's own limiter (a 429) is a rate_limit_error, as OpenAI's 429s are: clients (the
// openai library among them) retry on the status, and a type that says "invalid request"
// misleads whoever reads the message.
TEST(ToOpenAiErrorTest, ABackend429IsARateLimitError) {
  EXPECT_EQ(Rewritten(R"({"object":"error","message":"slow down","code":429})", 429),
            R"({"error":{"message":"slow down","type":"rate_limit_error","param":null,)"
            R"("code":null}})");
  EXPECT_EQ(Rewritten("Too Many Requests", 429),
            R"({"error":{"message":"Too Many Requests","type":"rate_limit_error",)"
            R"("param":null,"code":null}})");
}

}  // namespace
}  // namespace tokenpool::gateway
