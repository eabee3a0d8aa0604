#include "gateway/http_message.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <charconv>

#include "gateway/draining_read.h"
#include "gateway/http_head.h"

namespace tokenpool::gateway {

namespace http = boost::beast::http;

void ClientRequest::Clear() {
  method = http::verb::unknown;
  method_string.clear();
  target.clear();
  version = 11;
  keep_alive = true;
  expect_continue = false;
  has_host = false;
  authorization.clear();
  request_id.clear();
  category.clear();
  forward.clear();
  body.clear();
}

void ClientRequest::Trim(size_t keep) {
  for (std::string* s :
       {&method_string, &target, &authorization, &request_id, &category, &forward, &body}) {
    if (s->capacity() > keep) std::string().swap(*s);
  }
}

bool ForwardsHeader(http::field f, std::string_view name) {
  switch (f) {
    case http::field::authorization:
    case http::field::proxy_authorization:
    case http::field::connection:
    case http::field::keep_alive:
    case http::field::proxy_connection:
    case http::field::te:
    case http::field::trailer:
    case http::field::transfer_encoding:
    case http::field::upgrade:
    case http::field::host:
    case http::field::content_length:
    case http::field::content_type:
    case http::field::expect:
    // The gateway reads each answer (usage, SSE events): an encoded one it could neither read
    // nor, without its Content-Encoding, pass on. Answers go back unencoded, as nginx's do
    // unless told otherwise.
    case http::field::accept_encoding:
      return false;
    case http::field::unknown:
      return !boost::beast::iequals(name, "x-request-id");
    default:
      return true;
  }
}

ClientRequestParser::ClientRequestParser(ClientRequest* r, uint32_t header_limit,
                                         uint64_t body_limit)
    : r_(r) {
  r_->Clear();
  body_ = &r_->body;
  this->header_limit(header_limit);
  this->body_limit(body_limit);
  eager(true);
}

void ClientRequestParser::on_request_impl(http::verb method, string_view method_str,
                                          string_view target, int version, error_code&) {
  r_->method = method;
  r_->method_string.assign(method_str.data(), method_str.size());
  std::string_view t(target.data(), target.size());
  // The absolute form (`POST http://host/v1/...`), which a server must accept (RFC 9112
  // section 3.2.2): its path and query.
  if (!t.empty() && (t[0] == 'h' || t[0] == 'H')) {
    for (std::string_view scheme : {"http://", "https://"}) {
      if (t.size() >= scheme.size() && boost::beast::iequals(t.substr(0, scheme.size()), scheme)) {
        const size_t slash = t.find('/', scheme.size());
        t = slash == std::string_view::npos ? std::string_view("/") : t.substr(slash);
        break;
      }
    }
  }
  r_->target.assign(t);
  r_->version = static_cast<unsigned>(version);
}

void ClientRequestParser::on_field_impl(http::field f, string_view name, string_view value,
                                        error_code&) {
  const std::string_view n(name.data(), name.size());
  const std::string_view v(value.data(), value.size());
  if (f == http::field::authorization) {
    if (!have_auth_) r_->authorization.assign(v);
    have_auth_ = true;
    return;
  }
  if (f == http::field::unknown) {  // ForwardsHeader's rule for these, name compared once
    if (boost::beast::iequals(name, "x-request-id")) {
      if (!have_id_) r_->request_id.assign(v);
      have_id_ = true;
      return;
    }
    if (!have_category_ && boost::beast::iequals(name, "x-tokenpool-category")) {
      r_->category.assign(v);
      have_category_ = true;  // and forwarded, as before
    }
  } else if (!ForwardsHeader(f, n)) {
    if (f == http::field::expect && boost::beast::iequals(value, "100-continue")) {
      r_->expect_continue = true;
    } else if (f == http::field::host) {
      r_->has_host = true;
    } else if (f == http::field::connection) {
      for (const auto& option : http::token_list(value)) {
        if (boost::beast::iequals(option, "close") || boost::beast::iequals(option, "keep-alive")) {
          continue;
        }
        connection_options_.append(option.data(), option.size()).push_back(',');
      }
    }
    return;
  }
  AppendField(&r_->forward, n, v);
}

void ClientRequestParser::on_header_impl(error_code&) {
  if (connection_options_.empty()) return;
  // Drops each forwarded field that the Connection field named ("name: value\r\n" lines).
  std::string kept;
  std::string_view rest = r_->forward;
  while (!rest.empty()) {
    const size_t end = rest.find("\r\n");
    const std::string_view line =
        rest.substr(0, end == std::string_view::npos ? rest.size() : end + 2);
    rest.remove_prefix(line.size());
    const std::string_view name = line.substr(0, line.find(':'));
    bool named = false;
    for (const auto& option : http::token_list(connection_options_)) {
      named = named || boost::beast::iequals(option, name);
    }
    if (!named) kept.append(line);
  }
  r_->forward = std::move(kept);
}

void ClientRequestParser::on_body_init_impl(const boost::optional<std::uint64_t>& length,
                                            error_code&) {
  if (length) r_->body.reserve(static_cast<size_t>(*length));  // within body_limit
}

BackendResponseParser::BackendResponseParser(BackendResponse* head, std::string* content_type,
                                             std::string* ok_body, std::string* other_body)
    : head_(head), content_type_(content_type), ok_body_(ok_body), other_body_(other_body) {
  *head_ = BackendResponse();
  content_type_->clear();
  ok_body_->clear();
  other_body_->clear();
  body_limit(boost::none);  // a backend's answer is as long as it is (the client asked for it)
  eager(true);
}

void BackendResponseParser::on_response_impl(int code, string_view, int version, error_code&) {
  head_->status = static_cast<unsigned>(code);
  head_->version = static_cast<unsigned>(version);
  body_ = code == 200 ? ok_body_ : other_body_;
}

void BackendResponseParser::on_field_impl(http::field f, string_view, string_view value,
                                          error_code&) {
  if (f == http::field::content_type && !have_content_type_) {
    content_type_->assign(value.data(), value.size());
    have_content_type_ = true;
  } else if (f == http::field::retry_after) {
    int64_t v = 0;
    const auto [end, err] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (err == std::errc() && end == value.data() + value.size() && v >= 0) {
      head_->retry_after_s = v;
    }
  }
}

void BackendResponseParser::on_body_init_impl(const boost::optional<std::uint64_t>& length,
                                              error_code&) {
  // A declared length reserves at most 1 MiB ahead: the length is the backend's word.
  if (length) body_->reserve(body_->size() + std::min<size_t>(*length, 1 << 20));
}

template <bool isRequest>
boost::asio::awaitable<boost::system::error_code> ReadMessage(boost::asio::ip::tcp::socket& s,
                                                              boost::beast::flat_buffer& buf,
                                                              http::basic_parser<isRequest>& p,
                                                              ReadUntil until) {
  const auto finished = [&] {
    return until == ReadUntil::kHeader ? p.is_header_done() : p.is_done();
  };
  boost::system::error_code ec;
  bool progressed = false;
  for (;;) {
    // What is buffered first: a pipelined request, or the rest of an answer read with its head.
    while (buf.size() > 0 && !p.is_done()) {
      const size_t used = p.put(buf.data(), ec);
      buf.consume(used);
      progressed |= used > 0;
      if (ec == http::error::need_more) {
        ec = {};
        break;  // an incomplete head or chunk header (after what it took): wait for more
      }
      if (ec) co_return ec;
      if (used == 0) break;
    }
    if (finished() || (until == ReadUntil::kAnyBody && progressed)) co_return ec;
    const size_t size = boost::beast::read_size(buf, 65536);
    // DrainingBuffer: a read that empties the socket lets the next one wait for epoll at once.
    auto [rec, n] = co_await s.async_read_some(DrainingBuffer{buf.prepare(size)},
                                               boost::asio::as_tuple(boost::asio::use_awaitable));
    buf.commit(n);
    if (rec == boost::asio::error::eof) {
      if (!p.got_some()) co_return http::error::end_of_stream;
      p.put_eof(ec);  // complete when the message ends at the close, else partial_message
      co_return ec;
    }
    if (rec) co_return rec;
  }
}

template boost::asio::awaitable<boost::system::error_code> ReadMessage<true>(
    boost::asio::ip::tcp::socket&, boost::beast::flat_buffer&, http::basic_parser<true>&,
    ReadUntil);
template boost::asio::awaitable<boost::system::error_code> ReadMessage<false>(
    boost::asio::ip::tcp::socket&, boost::beast::flat_buffer&, http::basic_parser<false>&,
    ReadUntil);

}  // namespace tokenpool::gateway
