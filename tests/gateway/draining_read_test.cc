// DrainingBuffer (gateway/draining_read.h): a read that empties the socket makes the next one
// wait for epoll instead of trying the socket first, and no data is ever left unread.
#include "gateway/draining_read.h"

#include <gtest/gtest.h>

#include <array>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace tokenpool::gateway {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

struct Pair {
  explicit Pair(net::io_context& io) : writer(io), reader(io) {
    tcp::acceptor a(io, tcp::endpoint(net::ip::address_v4::loopback(), 0));
    writer.connect(a.local_endpoint());
    a.accept(reader);
    reader.non_blocking(true);
    hint = EnableInqHint(reader);
  }
  void Write(const std::string& s) { net::write(writer, net::buffer(s)); }
  tcp::socket writer;
  tcp::socket reader;
  bool hint = false;
};

// Reads with a DrainingBuffer of `room` bytes until `want` bytes came or the stream ended;
// `between` runs after each read (before the next starts). Fails the test on a hang.
std::string ReadAll(net::io_context& io, Pair& p, size_t room, size_t want,
                    const std::function<void(const std::string&)>& between) {
  std::string got;
  std::vector<char> buf(room);
  bool done = false;
  std::function<void()> next = [&] {
    p.reader.async_read_some(DrainingBuffer{net::buffer(buf)},
                             [&](boost::system::error_code ec, size_t n) {
                               got.append(buf.data(), n);
                               if (ec || got.size() >= want) {
                                 done = true;
                                 return;
                               }
                               between(got);
                               next();
                             });
  };
  next();
  io.run_for(std::chrono::seconds(10));
  EXPECT_TRUE(done) << "the read hung with " << got.size() << " of " << want << " bytes";
  return got;
}

TEST(DrainingReadTest, ReadsWhatArrivesAfterTheSocketWasEmptied) {
  net::io_context io;
  Pair p(io);
  p.Write("first");
  net::steady_timer later(io);
  // Each read gets less than its 4 KiB (exhausted); the next part comes 20 ms later.
  const std::string got = ReadAll(io, p, 4096, 15, [&](const std::string& so_far) {
    later.expires_after(std::chrono::milliseconds(20));
    later.async_wait(
        [&, n = so_far.size()](boost::system::error_code) { p.Write(n == 5 ? "secon" : "third"); });
  });
  EXPECT_EQ(got, "firstseconthird");
}

TEST(DrainingReadTest, ReadsWhatArrivedBetweenTheReads) {
  // The data comes after a read emptied the socket and before the next read starts, with no
  // turn of the event loop between: epoll's edge, not a try, must find it.
  net::io_context io;
  Pair p(io);
  p.Write("a");
  const std::string got = ReadAll(
      io, p, 4096, 4, [&](const std::string& so_far) { p.Write(so_far.size() < 3 ? "b" : "c"); });
  EXPECT_EQ(got, "abbc");
}

TEST(DrainingReadTest, AFullReadLeavesTheRestToTheNextReadAtOnce) {
  // A read that fills its buffer may have left data behind: the next one must try the socket
  // (no new edge will come for what is already there).
  net::io_context io;
  Pair p(io);
  p.Write("0123456789");
  const std::string got = ReadAll(io, p, 4, 10, [](const std::string&) {});
  EXPECT_EQ(got, "0123456789");
}

TEST(DrainingReadTest, SeesAnEndOfStreamThatCameWithTheData) {
  // Data and FIN both queued before the first read: that read takes all the data, and the
  // FIN (no new edge will come for it) must still be seen by the next one.
  net::io_context io;
  Pair p(io);
  p.Write("last words");
  p.writer.shutdown(tcp::socket::shutdown_send);
  std::array<char, 4096> buf;
  std::vector<std::string> seen;
  std::function<void()> next = [&] {
    p.reader.async_read_some(DrainingBuffer{net::buffer(buf)},
                             [&](boost::system::error_code ec, size_t n) {
                               seen.push_back(ec ? ec.message() : std::string(buf.data(), n));
                               if (!ec) next();
                             });
  };
  // Let the FIN's edge pass before the first read, as when it came while no read waited.
  net::steady_timer t(io, std::chrono::milliseconds(20));
  t.async_wait([&](boost::system::error_code) { next(); });
  io.run_for(std::chrono::seconds(10));
  EXPECT_EQ(seen, (std::vector<std::string>{"last words", "End of file"}));
}

TEST(DrainingReadTest, EndOfStream) {
  net::io_context io;
  Pair p(io);
  p.Write("xy");
  std::array<char, 64> buf;
  boost::system::error_code last;
  size_t total = 0;
  std::function<void()> next = [&] {
    p.reader.async_read_some(DrainingBuffer{net::buffer(buf)},
                             [&](boost::system::error_code ec, size_t n) {
                               total += n;
                               last = ec;
                               if (ec) return;
                               if (total == 2) p.writer.shutdown(tcp::socket::shutdown_send);
                               next();
                             });
  };
  next();
  io.run_for(std::chrono::seconds(10));
  EXPECT_EQ(total, 2u);
  EXPECT_EQ(last, net::error::eof);
}

// The point of it: after a read that emptied the socket, the next read is queued without a
// try. Data written in between is then read only when the reactor polls epoll, after handlers
// already posted; a plain buffer's read finds it by trying at once, before them.
std::vector<std::string> OrderAfterAnEmptyingRead(bool draining) {
  net::io_context io;
  Pair p(io);
  p.Write("a");
  std::array<char, 64> buf;
  std::vector<std::string> order;
  const auto read = [&](auto&& handler) {
    if (draining) {
      p.reader.async_read_some(DrainingBuffer{net::buffer(buf)}, handler);
    } else {
      p.reader.async_read_some(net::buffer(buf), handler);
    }
  };
  read([&](boost::system::error_code, size_t) {
    p.Write("b");  // there now, but the reactor has not seen its edge yet
    read([&](boost::system::error_code ec, size_t n) {
      order.push_back(ec ? ec.message() : std::string(buf.data(), n));
    });
    net::post(io, [&] { order.push_back("posted"); });
  });
  io.run_for(std::chrono::seconds(10));
  return order;
}

TEST(DrainingReadTest, TheReadAfterAnEmptyingReadWaitsForEpoll) {
  EXPECT_EQ(OrderAfterAnEmptyingRead(false), (std::vector<std::string>{"b", "posted"}));
  if (!kDrainingReads) GTEST_SKIP() << "DrainingBuffer reads as a plain buffer with this Boost";
  {
    net::io_context io;
    Pair p(io);
    if (!p.hint) GTEST_SKIP() << "the kernel has no TCP_INQ";
  }
  EXPECT_EQ(OrderAfterAnEmptyingRead(true), (std::vector<std::string>{"posted", "b"}));
}

// MayHaveInput: false only after a read emptied the socket and until epoll reports input
// again (data, or the peer's close); the gateway reuses an idle upstream connection on that
// without looking at the socket itself.
TEST(DrainingReadTest, MayHaveInputUntilAReadEmptiesTheSocketAndAgainOnNewInput) {
  for (const bool close : {false, true}) {
    net::io_context io;
    const auto guard = net::make_work_guard(io);  // so that poll() runs the reactor
    Pair p(io);
    EXPECT_TRUE(MayHaveInput(p.reader)) << "nothing read yet";
    p.Write("answer");
    std::array<char, 64> buf;
    size_t got = 0;
    p.reader.async_read_some(DrainingBuffer{net::buffer(buf)},
                             [&](boost::system::error_code, size_t n) { got = n; });
    io.run_for(std::chrono::milliseconds(50));
    ASSERT_EQ(got, 6u);
    if (!kDrainingReads || !p.hint) {
      EXPECT_TRUE(MayHaveInput(p.reader)) << "unknown without draining reads: look";
      continue;
    }
    EXPECT_FALSE(MayHaveInput(p.reader)) << "the read emptied the socket";
    io.run_for(std::chrono::milliseconds(20));
    EXPECT_FALSE(MayHaveInput(p.reader)) << "no input came";
    if (close) {
      p.writer.shutdown(tcp::socket::shutdown_send);
    } else {
      p.Write("stray");
    }
    for (int i = 0; i < 200 && !MayHaveInput(p.reader); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      io.poll();
    }
    EXPECT_TRUE(MayHaveInput(p.reader)) << (close ? "the peer closed" : "data came");
  }
}

}  // namespace
}  // namespace tokenpool::gateway
