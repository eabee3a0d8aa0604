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
  const std::string body = R"({"model":"m"})";
  {
    HeadWriter h(&w);
    h.RequestLine("POST", "/v1/chat/completions?x=1");
    h.Field("Host", "10.0.0.1:8000");
    h.Field("x-request-id", "abc");
    h.ContentLength(body.size());
    h.End(11, true);
  }
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
    HeadWriter h(&w);
    h.StatusLine(c.version, c.status);
    h.Field("Content-Type", "application/json");
    h.ContentLength(2);
    h.End(c.version, c.keep);
    h.Finish();
    auto m = ParseBack<false>(w + "{}");
    EXPECT_EQ(m.result_int(), c.status) << w;
    EXPECT_EQ(m.version(), c.version) << w;
    EXPECT_EQ(m.keep_alive(), c.keep) << w;
    EXPECT_EQ(m.body(), "{}");
  }
  std::string w;
  HeadWriter(&w).StatusLine(11, 429);
  EXPECT_EQ(w, "HTTP/1.1 429 Too Many Requests\r\n");
  w.clear();
  HeadWriter(&w).StatusLine(11, 299);  // not a known code: still a valid status line
  EXPECT_EQ(w, "HTTP/1.1 299 Unknown\r\n");
}

// After what the string held, past the room made at the start (each kind of piece crossing
// it), and trimmed to the last byte written.
TEST(HttpHeadTest, AppendsAndGrowsPastItsFirstRoom) {
  std::string w = "keep";
  const std::string value(HeadWriter::kChunk + 100, 'v');
  std::string expect = "keep";
  {
    HeadWriter h(&w);
    for (int i = 0; i < 3; ++i) {
      h.Field("x-long", value);
      expect += "x-long: " + value + "\r\n";
      h.Uint(0xabc, 16);
      expect += "abc";
      h.Fixed(2.5, 3);
      expect += "2.500";
      h.Put(std::string_view(value).substr(0, HeadWriter::kChunk - 3));
      expect += value.substr(0, HeadWriter::kChunk - 3);
      h.Put("\r\n");
      expect += "\r\n";
      h.Put(value);  // longer than any room: appended (PutLong)
      expect += value;
    }
  }
  EXPECT_EQ(w, expect);
  AppendField(&w, "a", "b");
  EXPECT_EQ(w, expect + "a: b\r\n");
}

}  // namespace
}  // namespace tokenpool::gateway
