// Writing a message on the request path without an asynchronous operation when the socket
// takes it at once. At a call site:
//   size_t sent = 0;
//   if (!TrySendAll(socket, bufs, &sent, &ec)) ec = co_await WriteRest(stream, bufs, sent);
// (inline rather than in a coroutine of its own: the usual whole send then costs no frame).
#pragma once

#include <boost/asio.hpp>
#include <boost/beast/core/buffers_suffix.hpp>

namespace tokenpool::gateway {

// Sends what the socket (in non-blocking mode) takes of `bufs` now. True when that was all of
// it, or when the send failed (*ec says how); false when the rest, from *sent, must go out
// asynchronously (WriteRest). A head and a small body fit the kernel's send buffer, and then a
// write is one system call with no asynchronous operation around it: no operation object, no
// posted completion, no trip through the scheduler (which polls epoll between handlers), and
// at the call site no coroutine frame either.
template <typename Buffers>
bool TrySendAll(boost::asio::ip::tcp::socket& socket, const Buffers& bufs, size_t* sent,
                boost::system::error_code* ec) {
  namespace net = boost::asio;
  *sent = socket.write_some(bufs, *ec);
  if (*ec == net::error::would_block || *ec == net::error::try_again) {
    *ec = {};
    *sent = 0;
    return false;
  }
  return *ec || *sent == net::buffer_size(bufs);
}

// Writes what TrySendAll left, from `sent` on.
template <typename AsyncStream, typename Buffers>
boost::asio::awaitable<boost::system::error_code> WriteRest(AsyncStream& stream,
                                                            const Buffers& bufs, size_t sent) {
  namespace net = boost::asio;
  boost::beast::buffers_suffix<Buffers> rest(bufs);
  rest.consume(sent);
  auto [ec, n] = co_await net::async_write(stream, rest, net::as_tuple(net::use_awaitable));
  co_return ec;
}

}  // namespace tokenpool::gateway
