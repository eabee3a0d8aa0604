#include "gateway/http_head.h"

#include <boost/beast/http/status.hpp>
#include <ostream>  // boost/core/detail/string_view.hpp needs it and does not include it

namespace tokenpool::gateway {

void HeadWriter::Room(size_t n) {
  const size_t used = p_ == nullptr ? w_->size() : static_cast<size_t>(p_ - w_->data());
  w_->resize(used + n);
  p_ = w_->data() + used;
  end_ = w_->data() + w_->size();
}

void HeadWriter::PutLong(std::string_view s) {
  w_->resize(static_cast<size_t>(p_ - w_->data()));  // the unused room goes (no fill)
  w_->append(s);
  p_ = end_ = w_->data() + w_->size();
}

void HeadWriter::RequestLine(std::string_view method, std::string_view target) {
  Put(method);
  Put(" ");
  Put(target);
  Put(" HTTP/1.1\r\n");
}

void HeadWriter::StatusLine(unsigned version, unsigned status) {
  if (status == 200) {  // nearly every answer
    if (version == 10) {
      Put("HTTP/1.0 200 OK\r\n");
    } else {
      Put("HTTP/1.1 200 OK\r\n");
    }
    return;
  }
  if (version == 10) {
    Put("HTTP/1.0 ");
  } else {
    Put("HTTP/1.1 ");
  }
  Uint(status, 10);
  Put(" ");
  namespace http = boost::beast::http;
  const http::status s = http::int_to_status(status);
  if (s == http::status::unknown) {
    Put("Unknown");
  } else {
    const auto reason = http::obsolete_reason(s);
    Put(std::string_view(reason.data(), reason.size()));
  }
  Put("\r\n");
}

void AppendField(std::string* w, std::string_view name, std::string_view value) {
  HeadWriter h(w, name.size() + value.size() + 4);
  h.Field(name, value);
}

}  // namespace tokenpool::gateway
