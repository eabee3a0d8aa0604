// MayHaveInput (draining_read.h): reads the reactor's state of a socket. Out of line so that
// the explicit instantiations below, which must appear once in a program, are in one file.
#include "gateway/draining_read.h"

namespace tokenpool::gateway {

#if TOKENPOOL_DRAINING_READS
namespace asio_access {
// Asio keeps what MayHaveInput reads in private members (the socket's reactor state behind
// basic_socket's protected impl_, and that state's try_speculative_ flags). An explicit
// instantiation may name them (access is not checked there), and hands their member pointers
// out through a friend function; this reads them and changes nothing.
using Socket = boost::asio::basic_socket<boost::asio::ip::tcp, boost::asio::any_io_executor>;
using SocketImpl = boost::asio::detail::io_object_impl<
    boost::asio::detail::reactive_socket_service<boost::asio::ip::tcp>,
    boost::asio::any_io_executor>;
using Descriptor = boost::asio::detail::epoll_reactor::descriptor_state;
constexpr int kOps = boost::asio::detail::epoll_reactor::max_ops;

template <typename Tag, typename Tag::type Member>
struct Expose {
  friend typename Tag::type Pick(Tag) { return Member; }
};
struct SocketImplOf {
  using type = SocketImpl Socket::*;
  friend type Pick(SocketImplOf);
};
struct TrySpeculativeOf {
  using type = bool (Descriptor::*)[kOps];
  friend type Pick(TrySpeculativeOf);
};
template struct Expose<SocketImplOf, &Socket::impl_>;
template struct Expose<TrySpeculativeOf, &Descriptor::try_speculative_>;
}  // namespace asio_access
#endif

bool MayHaveInput(boost::asio::ip::tcp::socket& s) {
#if TOKENPOOL_DRAINING_READS
  using namespace asio_access;
  asio_access::Socket& base = s;
  const Descriptor* d = (base.*Pick(SocketImplOf{})).get_implementation().reactor_data_;
  if (d == nullptr) return true;
  return (d->*Pick(TrySpeculativeOf{}))[boost::asio::detail::epoll_reactor::read_op];
#else
  (void)s;
  return true;
#endif
}

}  // namespace tokenpool::gateway
