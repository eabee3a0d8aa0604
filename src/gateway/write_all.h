// Writing a message on the request path without an asynchronous operation when the socket
// takes it at once. At a call site:
//   size_t sent = 0;
//   if (!TrySendAll(socket, bufs, &sent, &ec)) ec = co_await WriteRest(stream, bufs, sent);
// (inline rather than in a coroutine of its own: the usual whole send then costs no frame).
#pragma once

#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <cerrno>
#include <string_view>

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

// All of `data` to the file descriptor `fd` with write(2), a short write or EINTR continuing.
// 0, or the errno of the write that failed (EIO for one that wrote nothing).
inline int WriteAllFd(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t w = ::write(fd, data.data(), data.size());
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return errno;
    if (w == 0) return EIO;
    data.remove_prefix(static_cast<size_t>(w));
  }
  return 0;
}

}  // namespace tokenpool::gateway
