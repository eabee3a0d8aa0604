// The two messages of the request path, parsed by Beast's basic_parser straight into buffers
// that the client connection keeps between its requests, and read by a loop on a plain socket.
//
// Beast's request_parser / response_parser store every field in a basic_fields container: a
// malloc per field, an intrusive-set insert, and a linear search per lookup (callgrind: ~5 K
// instructions and ~10 allocations per proxied request, a tenth of the gateway's own work).
// The request path needs a handful of fields by name and the rest only as text to forward, so
// these parsers keep exactly that: the fields the gateway reads, and the forwarded ones already
// written as "name: value\r\n" lines of the upstream request. http::async_read on a
// beast::tcp_stream also nests three composed operations and a timer per read; ReadMessage is
// the same loop (Beast's read_some_op) as one coroutine on the socket, with time limits kept
// by Deadlines (deadlines.h) instead.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <cstdint>
#include <string>
#include <string_view>

namespace tokenpool::gateway {

// A client's request. The strings keep their capacity from one request to the next.
struct ClientRequest {
  boost::beast::http::verb method = boost::beast::http::verb::unknown;
  std::string method_string;
  std::string target;
  unsigned version = 11;
  bool keep_alive = true;
  // `Expect: 100-continue`: the client waits for a 100 (Continue) before it sends the body.
  bool expect_continue = false;
  bool has_host = false;  // a Host field came (HTTP/1.1 requires one: RFC 9112 section 3.2)
  // The first of each of these fields; empty when absent.
  std::string authorization;
  std::string request_id;  // x-request-id
  std::string category;    // x-tokenpool-category
  // Every field that goes upstream unchanged (ForwardsHeader), "name: value\r\n" each, in the
  // client's order and spelling.
  std::string forward;
  std::string body;

  // Empties it for the next request, keeping capacity.
  void Clear();
  // Frees the strings whose capacity is above `keep` bytes (a large request's body).
  void Trim(size_t keep);
};

// Whether a client's request field goes upstream: not the hop-by-hop ones (RFC 9110 §7.6.1),
// not the ones the gateway sets itself, and never the client's credentials (the backend trusts
// the gateway, and a tenant's key must never leave it).
bool ForwardsHeader(boost::beast::http::field f, std::string_view name);

// Beast's basic_parser with the body (de-chunked) appended to *body_, and no-ops for the
// callbacks the gateway's two parsers do not use. body_ is set by the subclass: at once for a
// request, from the status line for a response.
template <bool isRequest>
class BodyToStringParser : public boost::beast::http::basic_parser<isRequest> {
 protected:
  using string_view = boost::beast::string_view;
  using error_code = boost::beast::error_code;
  void on_request_impl(boost::beast::http::verb, string_view, string_view, int,
                       error_code&) override {}
  void on_response_impl(int, string_view, int, error_code&) override {}
  void on_header_impl(error_code&) override {}
  size_t on_body_impl(string_view body, error_code&) override {
    body_->append(body.data(), body.size());
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
  size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code& ec) override {
    return on_body_impl(body, ec);
  }
  void on_finish_impl(error_code&) override {}

  std::string* body_ = nullptr;
};

class ClientRequestParser final : public BodyToStringParser<true> {
 public:
  // Fills `r` (cleared here). Limits: `header_limit` bytes of head, `body_limit` of body.
  ClientRequestParser(ClientRequest* r, uint32_t header_limit, uint64_t body_limit);

 private:
  void on_request_impl(boost::beast::http::verb method, string_view method_str, string_view target,
                       int version, error_code& ec) override;
  void on_field_impl(boost::beast::http::field f, string_view name, string_view value,
                     error_code& ec) override;
  void on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code& ec) override;
  void on_header_impl(error_code& ec) override;

  ClientRequest* r_;
  // The field names that a Connection field lists besides close and keep-alive: hop-by-hop
  // (RFC 9110 section 7.6.1), not forwarded. Empty (no allocation) in the usual request.
  std::string connection_options_;
  bool have_auth_ = false;
  bool have_id_ = false;
  bool have_category_ = false;
};

// What the gateway reads of a backend's response head.
struct BackendResponse {
  unsigned status = 0;
  unsigned version = 11;
  int64_t retry_after_s = -1;  // a Retry-After in delta-seconds (RFC 9110 10.2.3), else -1
};

// A backend's response: the status line into `head`, the first Content-Type into
// `content_type`, the body (de-chunked) into `ok_body` when the status is 200, else into
// `other_body`. All four are cleared here; the strings keep their capacity.
class BackendResponseParser final : public BodyToStringParser<false> {
 public:
  BackendResponseParser(BackendResponse* head, std::string* content_type, std::string* ok_body,
                        std::string* other_body);

 private:
  void on_response_impl(int code, string_view reason, int version, error_code& ec) override;
  void on_field_impl(boost::beast::http::field f, string_view name, string_view value,
                     error_code& ec) override;
  void on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code& ec) override;

  BackendResponse* head_;
  std::string* content_type_;
  std::string* ok_body_;
  std::string* other_body_;
  bool have_content_type_ = false;
};

// How far ReadMessage reads.
enum class ReadUntil {
  kHeader,   // the head is parsed (and whatever of the body came with it)
  kDone,     // the whole message is parsed
  kAnyBody,  // at least one new read's worth is parsed (streaming): one socket read at most
};

// Parses what `buf` holds and reads from `s` until `until`: Beast's http::read_some_op loop.
// The errors are Beast's: http::error::end_of_stream when the peer closed before a message
// began, the parser's own (need_more never), and the socket's (operation_aborted when a
// Deadline or a watch cancelled the read).
template <bool isRequest>
boost::asio::awaitable<boost::system::error_code> ReadMessage(
    boost::asio::ip::tcp::socket& s, boost::beast::flat_buffer& buf,
    boost::beast::http::basic_parser<isRequest>& p, ReadUntil until);

extern template boost::asio::awaitable<boost::system::error_code> ReadMessage<true>(
    boost::asio::ip::tcp::socket&, boost::beast::flat_buffer&,
    boost::beast::http::basic_parser<true>&, ReadUntil);
extern template boost::asio::awaitable<boost::system::error_code> ReadMessage<false>(
    boost::asio::ip::tcp::socket&, boost::beast::flat_buffer&,
    boost::beast::http::basic_parser<false>&, ReadUntil);

}  // namespace tokenpool::gateway
