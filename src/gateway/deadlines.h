// Time limits on socket operations, kept by one timer per worker thread.
//
// beast::tcp_stream puts a timer around every read and write it does: a timer operation to
// allocate, schedule and cancel each time (callgrind: ~2 K instructions per proxied request, and
// a timerfd_settime now and then). The gateway's limits are seconds to minutes long (a client's
// idle time, a backend's answer), so a sweep every kTick is precise enough: a limit takes effect
// between its time and one kTick later, by cancelling the socket's operations (they complete
// with operation_aborted) and marking the Deadline expired. Setting one costs a clock read and
// a vector push. Single-threaded: the worker's own io_context.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <chrono>
#include <cstddef>
#include <utility>
#include <vector>

namespace tokenpool::gateway {

class Deadlines;

// One socket's limit, owned by whoever waits on the socket; unregisters itself when destroyed.
class Deadline {
 public:
  Deadline() = default;
  ~Deadline();
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;

  // Whether the limit passed since it was last set (the operation then failed as aborted).
  bool expired() const { return expired_; }
  // An operation's error as its caller reports it: beast::error::timeout when this limit
  // cancelled it, else `ec` as it is.
  boost::system::error_code Cause(const boost::system::error_code& ec) const;
  bool armed() const { return owner_ != nullptr; }
  // Whether SpareOrCancelClientReads left this read to finish (once: it clears the mark).
  bool TakeSpared() { return std::exchange(spared_, false); }

 private:
  friend class Deadlines;
  boost::asio::ip::tcp::socket* socket_ = nullptr;
  std::chrono::steady_clock::time_point at_;
  Deadlines* owner_ = nullptr;  // while armed
  size_t index_ = 0;
  bool expired_ = false;
  // A client connection reading its next request into this buffer (nullptr: not a client's
  // read); `begun_`: some of the request has been read (its head is complete).
  const boost::beast::flat_buffer* client_buffer_ = nullptr;
  bool begun_ = false;
  bool spared_ = false;  // left to finish its read by SpareOrCancelClientReads
};

class Deadlines {
 public:
  static constexpr auto kTick = std::chrono::milliseconds(50);

  explicit Deadlines(boost::asio::io_context& io) : timer_(io) {}
  // Deadlines still armed (their coroutine frames are destroyed after this, with the
  // io_context) forget this one.
  ~Deadlines();
  Deadlines(const Deadlines&) = delete;
  Deadlines& operator=(const Deadlines&) = delete;

  // Arms (or re-arms) `d`: the operations on `s` are cancelled once `limit` has passed.
  // `client_buffer`: `s` is a client connection reading its next request into that buffer,
  // `begun` once some of it is read (SpareOrCancelClientReads).
  void Set(Deadline* d, boost::asio::ip::tcp::socket& s, std::chrono::steady_clock::duration limit,
           const boost::beast::flat_buffer* client_buffer = nullptr, bool begun = false);
  // Disarms `d` (no-op when not armed); its expired() stays as it is.
  void Clear(Deadline* d);
  // Graceful shutdown: cancels the read of every idle client connection, one waiting for a
  // request of which no byte has come, neither into its buffer nor to its socket; a client
  // part-way through sending a request is left to finish (Deadline::TakeSpared), to be
  // answered. Returns how many were left.
  int SpareOrCancelClientReads();
  // Expires every armed limit now (a drain that ran out of time): their operations fail as a
  // limit's would (Deadline::Cause: beast::error::timeout).
  void ExpireAll();
  size_t armed() const { return armed_.size(); }

 private:
  void Arm();
  void Tick();

  std::vector<Deadline*> armed_;  // unordered; each knows its index
  boost::asio::steady_timer timer_;
  bool timer_armed_ = false;
};

}  // namespace tokenpool::gateway
