// DrainingBuffer: a TCP read that tells Asio's reactor when it has emptied the socket, so that
// the next read waits for epoll instead of trying the socket first.
//
// Asio starts every socket read with a speculative recv (the reactor's try_speculative_ flag,
// per socket and direction) and waits for epoll only when that finds nothing; it clears the
// flag only when a read returns 0 bytes (the end of the stream). A proxy's reads mostly find
// nothing at first: the answer to a request just sent upstream, and a keep-alive client's next
// request right after its answer, are not there yet. That was two failed recvfrom(2) calls per
// proxied request (four reads, two of them empty), where nginx waits for epoll's edge.
//
// To know that a read emptied the socket, the socket has TCP_INQ on (EnableInqHint, once per
// connection): each recvmsg(2) then carries the bytes left in the receive queue, and a
// received FIN counts as 1 (the kernel's own rule, so that a reader goes on to see the end of
// the stream). A read through a DrainingBuffer that leaves 0 reports "done and exhausted",
// which makes the reactor clear try_speculative_ under the socket's lock. Data that arrives
// after that recv raises a new edge (Asio registers sockets edge-triggered), and the reactor
// sets the flag again when epoll reports it, before it runs a queued read. So the next read is
// queued at once, without a system call (and without the epoll_ctl that async_wait, which also
// skips the try, costs every time), and runs when data is there. Without the hint (TCP_INQ
// off or unknown to the kernel) a read is what Asio's is.
//
// What this gives up: a reset (RST) that arrived together with the data, before the read,
// sets no "left" count (only a FIN does), so the next read waits for another edge or its
// deadline (the gateway's idle, header and upstream timeouts) instead of failing at once.
//
// This is Asio's own read operation with one rule added, as a specialization of its (internal)
// reactive_socket_recv_op_base for this buffer type; it depends on Asio's internals and is
// used only with the Asio it was written against (Boost 1.81, Debian 12's, on epoll; the
// reactor's use of done_and_exhausted is in detail/impl/epoll_reactor.ipp). With any other
// Boost, DrainingBuffer reads as a plain buffer would.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/detail/config.hpp>
#include <boost/asio/ip/tcp.hpp>  // (before the detail header, which needs socket_base)
//
#include <boost/asio/detail/reactive_socket_recv_op.hpp>
#include <boost/version.hpp>
#include <cerrno>
#include <cstring>

#if BOOST_VERSION == 108100 && defined(BOOST_ASIO_HAS_EPOLL) && \
    !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT) && defined(TCP_INQ)
#define TOKENPOOL_DRAINING_READS 1
#else
#define TOKENPOOL_DRAINING_READS 0
#endif

namespace tokenpool::gateway {

inline constexpr bool kDrainingReads = TOKENPOOL_DRAINING_READS != 0;

// One buffer, as a buffer sequence (begin/end) for async_read_some on a TCP socket.
struct DrainingBuffer {
  boost::asio::mutable_buffer buffer;
  const boost::asio::mutable_buffer* begin() const { return &buffer; }
  const boost::asio::mutable_buffer* end() const { return &buffer + 1; }
};
static_assert(boost::asio::is_mutable_buffer_sequence<DrainingBuffer>::value);

// Turns on the receive-queue hint that DrainingBuffer reads need (TCP_INQ); false where the
// kernel does not have it (then such reads are Asio's plain ones).
inline bool EnableInqHint(boost::asio::ip::tcp::socket& s) {
#if TOKENPOOL_DRAINING_READS
  const int on = 1;
  return ::setsockopt(s.native_handle(), IPPROTO_TCP, TCP_INQ, &on, sizeof on) == 0;
#else
  (void)s;
  return false;
#endif
}

// Whether the socket may have something to read (data, its end, an error). False only when
// the last read of it was a DrainingBuffer read that emptied it and epoll has reported no
// input on it since: the reactor's per-socket "try a read first" flag, which such a read
// clears and which the reactor sets again on the socket's next EPOLLIN, EPOLLHUP or EPOLLERR.
// True wherever that is not known (the flag set, other builds), so that a caller checks the
// socket itself. Input that arrived after the reactor's last epoll_wait is not seen yet: the
// same window as an event-driven proxy's (nginx closes an idle upstream connection when its
// epoll reports it readable). Call it on the thread that runs the socket's io_context (the
// gateway's are single-threaded, BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO: the flag has no lock).
bool MayHaveInput(boost::asio::ip::tcp::socket& s);

}  // namespace tokenpool::gateway

#if TOKENPOOL_DRAINING_READS
namespace boost::asio::detail {

template <>
class reactive_socket_recv_op_base<tokenpool::gateway::DrainingBuffer> : public reactor_op {
 public:
  reactive_socket_recv_op_base(const boost::system::error_code& success_ec, socket_type socket,
                               socket_ops::state_type state,
                               const tokenpool::gateway::DrainingBuffer& buffers,
                               socket_base::message_flags flags, func_type complete_func)
      : reactor_op(success_ec, &reactive_socket_recv_op_base::do_perform, complete_func),
        socket_(socket),
        state_(state),
        buffer_(buffers.buffer),
        flags_(flags) {}

  // Asio's non_blocking_recv1 (the same results and errors), through recvmsg for the hint.
  static status do_perform(reactor_op* base) {
    auto* o = static_cast<reactive_socket_recv_op_base*>(base);
    const bool stream = (o->state_ & socket_ops::stream_oriented) != 0;
    iovec iov{o->buffer_.data(), o->buffer_.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    for (;;) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      const ssize_t n = ::recvmsg(o->socket_, &msg, o->flags_);
      if (n < 0) {
        const int err = errno;
        if (err == EINTR) continue;
        if (err == EAGAIN || err == EWOULDBLOCK) return not_done;
        o->ec_ = boost::system::error_code(err, boost::asio::error::get_system_category());
        o->bytes_transferred_ = 0;
      } else if (n == 0 && stream) {
        o->ec_ = boost::asio::error::eof;
        o->bytes_transferred_ = 0;
      } else {
        o->ec_ = boost::system::error_code();
        o->bytes_transferred_ = static_cast<size_t>(n);
      }
      // Asio's rule: 0 bytes on a stream (its end, or an error) exhausts the socket. Added: so
      // does a read after which the kernel counts nothing left.
      if (!stream) return done;
      return o->bytes_transferred_ == 0 || LeftNothing(msg) ? done_and_exhausted : done;
    }
  }

 private:
  // Whether the kernel said the receive queue is empty after this read (no FIN either).
  static bool LeftNothing(msghdr& msg) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_TCP && c->cmsg_type == TCP_CM_INQ &&
          c->cmsg_len >= CMSG_LEN(sizeof(int))) {
        int left;
        std::memcpy(&left, CMSG_DATA(c), sizeof left);
        return left == 0;
      }
    }
    return false;  // no hint: TCP_INQ is off on this socket
  }

  socket_type socket_;
  socket_ops::state_type state_;
  boost::asio::mutable_buffer buffer_;
  socket_base::message_flags flags_;
};

}  // namespace boost::asio::detail
#endif
