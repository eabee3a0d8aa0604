#include "gateway/http_head.h"

#include <gtest/gtest.h>

#include <boost/beast/http.hpp>
#include <string>

namespace tokenpool::gateway {
namespace {

namespace http = boost::beast::http;

// What Beast's own parser reads back from a head written by hand.
template <bool isRequest>
http::message<isRequest, http::string_body> ParseBack(const std::string& wire) {
  http::parser<isRequest, http::string_body> p;
  p.eager(true);
  boost::system::error_code ec;
  const size_t used = p.put(boost::asio::buffer(wire), ec);
  EXPECT_FALSE(ec) << ec.message() << " in:\n" << wire;
  EXPECT_EQ(used, wire.size());
  EXPECT_TRUE(p.is_done());
  return p.release();
}

TEST(HttpHeadTest, RequestReadsBack) {
  std::string w;
  AppendRequestLine(&w, "POST", "/v1/chat/completions?x=1");
  AppendField(&w, "Host", "10.0.0.1:8000");
  AppendField(&w, "x-request-id", "abc");
  const std::string body = R"({"model":"m"})";
  AppendContentLength(&w, body.size());
  EndHead(&w, 11, true);
  auto m = ParseBack<true>(w + body);
  EXPECT_EQ(m.method(), http::verb::post);
  EXPECT_EQ(m.target(), "/v1/chat/completions?x=1");
  EXPECT_EQ(m.version(), 11u);
  EXPECT_EQ(m[http::field::host], "10.0.0.1:8000");
  EXPECT_EQ(m["x-request-id"], "abc");
  EXPECT_EQ(m.body(), body);
  EXPECT_TRUE(m.keep_alive());
}

TEST(HttpHeadTest, StatusLinesAndKeepAliveByVersion) {
  struct Case {
    unsigned version;
    unsigned status;
    bool keep;
  };
  for (const Case c : {Case{11, 200, true}, Case{11, 429, false}, Case{10, 200, true},
                       Case{10, 502, false}, Case{11, 299, true}}) {
    std::string w;
    AppendStatusLine(&w, c.version, c.status);
    AppendField(&w, "Content-Type", "application/json");
    AppendContentLength(&w, 2);
    EndHead(&w, c.version, c.keep);
    auto m = ParseBack<false>(w + "{}");
    EXPECT_EQ(m.result_int(), c.status) << w;
    EXPECT_EQ(m.version(), c.version) << w;
    EXPECT_EQ(m.keep_alive(), c.keep) << w;
    EXPECT_EQ(m.body(), "{}");
  }
  std::string w;
  AppendStatusLine(&w, 11, 429);
  EXPECT_EQ(w, "HTTP/1.1 429 Too Many Requests\r\n");
  w.clear();
  AppendStatusLine(&w, 11, 299);  // not a known code: still a valid status line
  EXPECT_EQ(w, "HTTP/1.1 299 Unknown\r\n");
}

}  // namespace
}  // namespace tokenpool::gateway
