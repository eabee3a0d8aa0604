// TrySendAll + WriteRest (gateway/write_all.h): whole messages whether the socket takes them
// at once or not.
#include "gateway/write_all.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <array>
#include <chrono>
#include <string>

namespace tokenpool::gateway {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

// The call-site pattern of write_all.h.
template <typename Buffers>
net::awaitable<boost::system::error_code> WriteAll(tcp::socket& socket, const Buffers& bufs) {
  boost::system::error_code ec;
  size_t sent = 0;
  if (!TrySendAll(socket, bufs, &sent, &ec)) ec = co_await WriteRest(socket, bufs, sent);
  co_return ec;
}

struct Pair {
  explicit Pair(net::io_context& io) : writer(io), reader(io) {
    tcp::acceptor a(io, tcp::endpoint(net::ip::address_v4::loopback(), 0));
    writer.connect(a.local_endpoint());
    a.accept(reader);
    writer.non_blocking(true);
  }
  tcp::socket writer;
  tcp::socket reader;
};

// Writes head + body with WriteAll, the reader starting only after `delay`; returns what the
// reader got and how WriteAll ended.
std::string RoundTrip(const std::string& head, const std::string& body, int sndbuf,
                      std::chrono::milliseconds delay, boost::system::error_code* result) {
  net::io_context io;
  Pair p(io);
  if (sndbuf > 0) {
    // Set explicitly: the kernel then keeps it (no autotuning), so a large write is partial.
    p.writer.set_option(net::socket_base::send_buffer_size(sndbuf));
  }
  const std::array<net::const_buffer, 2> bufs{net::buffer(head), net::buffer(body)};
  std::string got;
  bool written = false;
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        *result = co_await WriteAll(p.writer, bufs);
        written = true;
        p.writer.shutdown(tcp::socket::shutdown_send);
      },
      net::detached);
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        net::steady_timer t(io, delay);
        co_await t.async_wait(net::use_awaitable);
        char buf[65536];
        for (;;) {
          auto [ec, n] = co_await p.reader.async_read_some(net::buffer(buf),
                                                           net::as_tuple(net::use_awaitable));
          got.append(buf, n);
          if (ec) break;
        }
      },
      net::detached);
  io.run();
  EXPECT_TRUE(written);
  return got;
}

TEST(WriteAllTest, SmallMessageAtOnce) {
  boost::system::error_code ec = net::error::fault;
  const std::string got =
      RoundTrip("HTTP/1.1 200 OK\r\n\r\n", "{}", 0, std::chrono::milliseconds(0), &ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(got, "HTTP/1.1 200 OK\r\n\r\n{}");
}

TEST(WriteAllTest, LargeMessageToASlowReaderArrivesWhole) {
  // 4 MiB through a 4 KiB send buffer to a reader that starts 50 ms late: the first send is
  // partial (or would block), the rest goes out asynchronously, in order.
  std::string body(4 << 20, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + (i * 7919) % 26);
  boost::system::error_code ec = net::error::fault;
  const std::string got = RoundTrip("head|", body, 4096, std::chrono::milliseconds(50), &ec);
  EXPECT_FALSE(ec) << ec.message();
  ASSERT_EQ(got.size(), 5 + body.size());
  EXPECT_EQ(got, "head|" + body);
}

TEST(WriteAllTest, ClosedPeerIsAnError) {
  net::io_context io;
  Pair p(io);
  p.reader.close();
  std::string big(8 << 20, 'x');  // more than the socket can take before the reset arrives
  const std::array<net::const_buffer, 1> bufs{net::buffer(big)};
  boost::system::error_code result;
  bool done = false;
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        result = co_await WriteAll(p.writer, bufs);
        done = true;
      },
      net::detached);
  io.run();
  EXPECT_TRUE(done);
  EXPECT_TRUE(result) << "a write to a closed peer must fail";
}

}  // namespace
}  // namespace tokenpool::gateway
