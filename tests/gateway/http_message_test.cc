#include "gateway/http_message.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/beast/http/error.hpp>
#include <string>
#include <vector>

#include "gateway/deadlines.h"
#include "gateway/draining_read.h"

namespace tokenpool::gateway {
namespace {

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

// Feeds `wire` to `p` in pieces of `step` bytes, as reads would; the error of the last put.
template <bool isRequest>
boost::system::error_code Feed(http::basic_parser<isRequest>& p, const std::string& wire,
                               size_t step) {
  std::string buf;
  boost::system::error_code ec;
  for (size_t at = 0; at < wire.size() && !p.is_done();) {
    const size_t n = std::min(step, wire.size() - at);
    buf.append(wire, at, n);
    at += n;
    for (;;) {
      const size_t used = p.put(net::buffer(buf), ec);
      buf.erase(0, used);
      if (ec == http::error::need_more) {
        ec = {};
        break;
      }
      if (ec || used == 0 || buf.empty() || p.is_done()) break;
    }
    if (ec) return ec;
  }
  return ec;
}

constexpr std::string_view kRequest =
    "POST /v1/chat/completions?x=1 HTTP/1.1\r\n"
    "Host: gw:8080\r\n"
    "Authorization: Bearer sk-one\r\n"
    "authorization: Bearer sk-two\r\n"
    "X-Request-Id: req-7\r\n"
    "Content-Type: application/json\r\n"
    "X-Tokenpool-Category: code\r\n"
    "Accept: */*\r\n"
    "Connection: keep-alive\r\n"
    "OpenAI-Organization: org-1\r\n"
    "Content-Length: 13\r\n"
    "\r\n"
    "{\"model\":\"m\"}";

TEST(HttpMessageTest, RequestKeepsWhatTheGatewayReadsAndForwardsTheRest) {
  for (size_t step : {kRequest.size(), size_t{1}, size_t{7}}) {
    ClientRequest r;
    ClientRequestParser p(&r, 8192, 1 << 20);
    ASSERT_FALSE(Feed(p, std::string(kRequest), step)) << step;
    ASSERT_TRUE(p.is_done()) << step;
    EXPECT_EQ(r.method, http::verb::post);
    EXPECT_EQ(r.method_string, "POST");
    EXPECT_EQ(r.target, "/v1/chat/completions?x=1");
    EXPECT_EQ(r.version, 11u);
    EXPECT_TRUE(p.keep_alive());
    EXPECT_EQ(r.authorization, "Bearer sk-one");  // the first one
    EXPECT_EQ(r.request_id, "req-7");
    EXPECT_EQ(r.category, "code");
    // Credentials, hop-by-hop fields, Host, Content-* and the request id are the gateway's.
    EXPECT_EQ(r.forward,
              "X-Tokenpool-Category: code\r\nAccept: */*\r\nOpenAI-Organization: org-1\r\n");
    EXPECT_EQ(r.body, "{\"model\":\"m\"}");
    EXPECT_TRUE(r.has_host);
  }
}

// The fields a Connection field names are hop-by-hop (RFC 9110 section 7.6.1): not forwarded,
// wherever they stand. Before, `Connection: keep-alive, X-Hop` sent X-Hop to the backend.
TEST(HttpMessageTest, FieldsTheConnectionFieldNamesAreNotForwarded) {
  const std::string wire =
      "POST /v1/chat/completions HTTP/1.1\r\nX-Hop: secret\r\nHost: gw\r\nAccept: */*\r\n"
      "Connection: keep-alive, x-hop,X-Other\r\nx-other: 1\r\nX-Kept: 2\r\n"
      "Content-Length: 2\r\n\r\n{}";
  ClientRequest r;
  ClientRequestParser p(&r, 8192, 1 << 20);
  ASSERT_FALSE(Feed(p, wire, wire.size()));
  ASSERT_TRUE(p.is_done());
  EXPECT_TRUE(p.keep_alive());
  EXPECT_EQ(r.forward, "Accept: */*\r\nX-Kept: 2\r\n");
}

// The absolute form of a target (RFC 9112 section 3.2.2) is its path and query; a request
// without Host is seen as such (the gateway answers an HTTP/1.1 one 400).
TEST(HttpMessageTest, AbsoluteFormTargetAndNoHost) {
  for (const auto& [target, path] : std::vector<std::pair<std::string, std::string>>{
           {"http://gw:8080/v1/chat/completions?x=1", "/v1/chat/completions?x=1"},
           {"HTTPS://gw/v1/models", "/v1/models"},
           {"http://gw", "/"},
           {"/v1/models", "/v1/models"}}) {
    const std::string wire = "GET " + target + " HTTP/1.1\r\n\r\n";
    ClientRequest r;
    ClientRequestParser p(&r, 8192, 1 << 20);
    ASSERT_FALSE(Feed(p, wire, wire.size())) << target;
    EXPECT_EQ(r.target, path);
    EXPECT_FALSE(r.has_host);
  }
}

TEST(HttpMessageTest, ChunkedRequestBodyAndConnectionClose) {
  const std::string wire =
      "POST /v1/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
      "5\r\n{\"a\":\r\n3\r\n12}\r\n0\r\n\r\n";
  ClientRequest r;
  r.authorization = "left over from the last request";
  ClientRequestParser p(&r, 8192, 1 << 20);
  ASSERT_FALSE(Feed(p, wire, 4));
  ASSERT_TRUE(p.is_done());
  EXPECT_EQ(r.body, "{\"a\":12}");
  EXPECT_FALSE(p.keep_alive());
  EXPECT_EQ(r.authorization, "");  // cleared for each request
  EXPECT_EQ(r.forward, "");
}

TEST(HttpMessageTest, RequestLimits) {
  {
    ClientRequest r;
    ClientRequestParser p(&r, 8192, 10);
    EXPECT_EQ(Feed(p, std::string(kRequest), kRequest.size()), http::error::body_limit);
  }
  {
    ClientRequest r;
    ClientRequestParser p(&r, 64, 1 << 20);
    EXPECT_EQ(Feed(p, std::string(kRequest), kRequest.size()), http::error::header_limit);
  }
  {
    ClientRequest r;
    ClientRequestParser p(&r, 8192, 1 << 20);
    EXPECT_TRUE(Feed(p, "GET / HTTP/1.1\r\nBad Field\r\n\r\n", 100));
  }
}

TEST(HttpMessageTest, ResponseBodyGoesWhereItsStatusSays) {
  const std::string ok =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
      "6\r\ndata: \r\n3\r\n1\n\n\r\n0\r\n\r\n";
  for (size_t step : {ok.size(), size_t{1}, size_t{5}}) {
    std::string type;
    BackendResponse head;
    std::string events;
    std::string other;
    BackendResponseParser p(&head, &type, &events, &other);
    const auto oec = Feed(p, ok, step);
    ASSERT_FALSE(oec) << step << ": " << oec.message();
    ASSERT_TRUE(p.is_done());
    EXPECT_EQ(head.status, 200u);
    EXPECT_EQ(type, "text/event-stream");
    EXPECT_EQ(events, "data: 1\n\n");
    EXPECT_EQ(other, "");
    EXPECT_TRUE(p.keep_alive());
  }
  const std::string error =
      "HTTP/1.0 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
  std::string type;
  BackendResponse head;
  std::string events;
  std::string other;
  BackendResponseParser p(&head, &type, &events, &other);
  const auto fec = Feed(p, error, 3);
  ASSERT_FALSE(fec) << fec.message();
  EXPECT_EQ(head.status, 400u);
  EXPECT_EQ(head.version, 10u);
  EXPECT_EQ(other, "{}");
  EXPECT_EQ(events, "");
  EXPECT_FALSE(p.keep_alive());  // HTTP/1.0 without keep-alive
}

// A connected pair of loopback sockets.
struct Pair {
  explicit Pair(net::io_context& io) : a(io), b(io) {
    tcp::acceptor acc(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    a.connect(acc.local_endpoint());
    b = acc.accept();
    EnableInqHint(b);  // as the gateway's sockets: ReadMessage's reads drain (draining_read.h)
  }
  tcp::socket a;
  tcp::socket b;
};

TEST(HttpMessageTest, ReadMessageReadsPipelinedRequestsAndSeesTheClose) {
  net::io_context io;
  Pair pair(io);
  std::string two = std::string(kRequest) + std::string(kRequest);
  net::write(pair.a, net::buffer(two));
  pair.a.shutdown(tcp::socket::shutdown_send);
  std::vector<std::string> bodies;
  boost::system::error_code last;
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        boost::beast::flat_buffer buf;
        ClientRequest r;
        for (;;) {
          ClientRequestParser p(&r, 8192, 1 << 20);
          last = co_await ReadMessage(pair.b, buf, p, ReadUntil::kDone);
          if (last) break;
          bodies.push_back(r.body);
        }
      },
      net::detached);
  io.run();
  EXPECT_EQ(bodies.size(), 2u);
  EXPECT_EQ(last, http::error::end_of_stream);
}

TEST(HttpMessageTest, StreamingReadReturnsEachPieceAsItComes) {
  net::io_context io;
  Pair pair(io);
  std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  net::write(pair.a, net::buffer(head));
  std::vector<std::string> seen;
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        boost::beast::flat_buffer buf;
        BackendResponse h;
        std::string type;
        std::string events;
        std::string other;
        BackendResponseParser p(&h, &type, &events, &other);
        boost::system::error_code ec = co_await ReadMessage(pair.b, buf, p, ReadUntil::kHeader);
        EXPECT_FALSE(ec);
        for (int i = 0; i < 3 && !p.is_done(); ++i) {
          // The next piece is sent only now: a read that waited for the whole body would hang.
          const std::string piece = i < 2 ? "3\r\nab" + std::to_string(i) + "\r\n" : "0\r\n\r\n";
          net::write(pair.a, net::buffer(piece));
          ec = co_await ReadMessage(pair.b, buf, p, ReadUntil::kAnyBody);
          EXPECT_FALSE(ec) << ec.message();
          seen.push_back(events);
          events.clear();
        }
        EXPECT_TRUE(p.is_done());
      },
      net::detached);
  io.run();
  EXPECT_EQ(seen, (std::vector<std::string>{"ab0", "ab1", ""}));
}

TEST(HttpMessageTest, DeadlineCancelsAStalledRead) {
  net::io_context io;
  Pair pair(io);
  Deadlines deadlines(io);
  Deadline d;
  boost::system::error_code ec;
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        boost::beast::flat_buffer buf;
        ClientRequest r;
        ClientRequestParser p(&r, 8192, 1 << 20);
        deadlines.Set(&d, pair.b, std::chrono::milliseconds(30));
        ec = co_await ReadMessage(pair.b, buf, p, ReadUntil::kDone);  // nothing ever comes
      },
      net::detached);
  io.run();
  EXPECT_EQ(ec, net::error::operation_aborted);
  EXPECT_TRUE(d.expired());
  EXPECT_FALSE(d.armed());
  EXPECT_EQ(deadlines.armed(), 0u);
}

TEST(HttpMessageTest, ClearedDeadlineDoesNotFire) {
  net::io_context io;
  Pair pair(io);
  Deadlines deadlines(io);
  Deadline d;
  Deadline other;
  deadlines.Set(&d, pair.b, std::chrono::milliseconds(10));
  deadlines.Set(&other, pair.a, std::chrono::milliseconds(10));
  deadlines.Clear(&d);
  EXPECT_EQ(deadlines.armed(), 1u);
  io.run_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(d.expired());
  EXPECT_TRUE(other.expired());
  {
    Deadline gone;  // unregisters itself when destroyed
    deadlines.Set(&gone, pair.a, std::chrono::seconds(10));
    EXPECT_EQ(deadlines.armed(), 1u);
  }
  EXPECT_EQ(deadlines.armed(), 0u);
}

}  // namespace
}  // namespace tokenpool::gateway
