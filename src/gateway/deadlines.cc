#include "gateway/deadlines.h"

#include <boost/beast/core/error.hpp>

namespace tokenpool::gateway {

Deadline::~Deadline() {
  if (owner_ != nullptr) owner_->Clear(this);
}

boost::system::error_code Deadline::Cause(const boost::system::error_code& ec) const {
  if (ec && expired_) return boost::beast::error::timeout;
  return ec;
}

Deadlines::~Deadlines() {
  for (Deadline* d : armed_) d->owner_ = nullptr;
}

void Deadlines::Set(Deadline* d, boost::asio::ip::tcp::socket& s,
                    std::chrono::steady_clock::duration limit,
                    const boost::beast::flat_buffer* client_buffer, bool begun) {
  d->socket_ = &s;
  d->at_ = std::chrono::steady_clock::now() + limit;
  d->expired_ = false;
  d->client_buffer_ = client_buffer;
  d->begun_ = begun;
  if (d->owner_ == nullptr) {
    d->owner_ = this;
    d->index_ = armed_.size();
    armed_.push_back(d);
  }
  if (!timer_armed_) Arm();
}

void Deadlines::Clear(Deadline* d) {
  if (d->owner_ == nullptr) return;
  Deadline* last = armed_.back();
  armed_[d->index_] = last;
  last->index_ = d->index_;
  armed_.pop_back();
  d->owner_ = nullptr;
}

int Deadlines::SpareOrCancelClientReads() {
  int spared = 0;
  for (Deadline* d : armed_) {
    if (d->client_buffer_ == nullptr) continue;
    boost::system::error_code ec;
    const bool arriving =
        d->begun_ || d->client_buffer_->size() != 0 || (d->socket_->available(ec) != 0 && !ec);
    if (arriving) {
      d->spared_ = true;
      ++spared;
    } else {
      d->socket_->cancel(ec);
    }
  }
  return spared;
}

void Deadlines::ExpireAll() {
  boost::system::error_code ignored;
  while (!armed_.empty()) {
    Deadline* d = armed_.back();
    d->expired_ = true;
    Clear(d);
    d->socket_->cancel(ignored);
  }
}

void Deadlines::Arm() {
  timer_armed_ = true;
  timer_.expires_after(kTick);
  timer_.async_wait([this](boost::system::error_code ec) {
    timer_armed_ = false;
    if (ec) return;
    Tick();
  });
}

void Deadlines::Tick() {
  const auto now = std::chrono::steady_clock::now();
  boost::system::error_code ignored;
  for (size_t i = 0; i < armed_.size();) {
    Deadline* d = armed_[i];
    if (d->at_ <= now) {
      d->expired_ = true;
      Clear(d);  // moves the last one to i
      d->socket_->cancel(ignored);
    } else {
      ++i;
    }
  }
  if (!armed_.empty()) Arm();
}

}  // namespace tokenpool::gateway
