// Writing a message on the request path without an asynchronous operation when the socket
// takes it at once.
#pragma once

#include <boost/asio.hpp>
#include <boost/beast/core/buffers_suffix.hpp>

namespace tokenpool::gateway {

// Writes `bufs` whole on `stream` (whose socket is `socket`, in non-blocking mode). A send is
// tried first: a head and a small body fit the kernel's send buffer, and then the write is one
// system call with no asynchronous operation around it (no operation object, no posted
// completion, no trip through the scheduler, which polls epoll between handlers). What the
// socket did not take goes out asynchronously.
template <typename AsyncStream, typename Buffers>
boost::asio::awaitable<boost::system::error_code> WriteAll(AsyncStream& stream,
                                                          boost::asio::ip::tcp::socket& socket,
                                                          const Buffers& bufs) {
  namespace net = boost::asio;
  boost::system::error_code ec;
  const size_t total = net::buffer_size(bufs);
  size_t n = socket.write_some(bufs, ec);
  if (!ec && n == total) co_return ec;
  if (ec == net::error::would_block || ec == net::error::try_again) {
    ec = {};
    n = 0;
  }
  if (ec) co_return ec;
  boost::beast::buffers_suffix<Buffers> rest(bufs);
  rest.consume(n);
  auto [wec, wn] = co_await net::async_write(stream, rest, net::as_tuple(net::use_awaitable));
  co_return wec;
}

}  // namespace tokenpool::gateway
