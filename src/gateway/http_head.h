// HTTP/1.x message heads written straight into a string, for the request path's own messages
// (the request to a backend, the reply to a client). Beast's serializer walks a message's
// fields through nested buffer-sequence views: about 12 K instructions per message, the send
// included (callgrind, inclusive, bench/gateway/run_gateway_profile.sh: 23.6 K for the two
// messages of a non-streaming request, a fifth of its 124.7 K); appending the same bytes costs
// a few hundred. Beast still parses every message and writes the gateway's
// own error and admin replies. Names and values must be valid field text (no CR or LF): they
// come from Beast's parser or from the gateway itself.
//
//   HeadWriter h(&conn.head);  // appends to what the string holds
//   h.StatusLine(11, 200);
//   h.Field("Content-Type", "application/json");
//   h.ContentLength(body.size());
//   h.End(11, true);
//   h.Finish();  // or the destructor: the string ends where the head does
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "gateway/line_writer.h"

namespace tokenpool::gateway {

// One head's pieces into a string (a connection's, reused from request to request): the
// string is resized once to room for a typical head, each piece checks that room inline and
// is copied with memcpy (inlined for literals), and Finish trims the string to what was
// written. std::string::append per piece was an out-of-line call of ~85 instructions
// (_M_replace) and AppendField's resize per field ~105; docs/benchmarks.md, tenth pass.
// No piece may point into the string itself.
class HeadWriter {
 public:
  static constexpr size_t kChunk = 512;  // most heads fit: one resize
  // `room`: what the head will most likely take (more is made as needed).
  explicit HeadWriter(std::string* w, size_t room = kChunk) : w_(w) { Room(room); }
  ~HeadWriter() { Finish(); }
  HeadWriter(const HeadWriter&) = delete;
  HeadWriter& operator=(const HeadWriter&) = delete;

  void Put(std::string_view s) {
    if (static_cast<size_t>(end_ - p_) < s.size() && s.size() >= kChunk) {
      PutLong(s);
      return;
    }
    Ensure(s.size());
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }
  template <size_t N>
  void Put(const char (&literal)[N]) {  // a constant length: the copy is inlined
    Ensure(N - 1);
    std::memcpy(p_, literal, N - 1);
    p_ += N - 1;
  }
  // `n` in `base` (10, or 16 for a chunk size).
  void Uint(uint64_t n, int base) {
    Ensure(kNumberRoom);
    LineWriter lw(p_);
    lw.Padded(n, 1, base);
    p_ = lw.end();
  }
  // `v` with `decimals` (0-3) digits after the point (LineWriter::Fixed).
  void Fixed(double v, int decimals) {
    Ensure(kNumberRoom);
    LineWriter lw(p_);
    lw.Fixed(v, decimals);
    p_ = lw.end();
  }
  // "POST /target HTTP/1.1\r\n"
  void RequestLine(std::string_view method, std::string_view target);
  // "HTTP/1.1 200 OK\r\n" (version 10 or 11; the reason phrase is the standard one).
  void StatusLine(unsigned version, unsigned status);
  // "name: value\r\n"
  void Field(std::string_view name, std::string_view value) {
    Ensure(name.size() + value.size() + 4);
    std::memcpy(p_, name.data(), name.size());
    p_ += name.size();
    std::memcpy(p_, ": ", 2);
    p_ += 2;
    std::memcpy(p_, value.data(), value.size());
    p_ += value.size();
    std::memcpy(p_, "\r\n", 2);
    p_ += 2;
  }
  // "Content-Length: n\r\n"
  void ContentLength(size_t n) {
    Put("Content-Length: ");
    Uint(n, 10);
    Put("\r\n");
  }
  // The connection header that keep-alive needs at this version (HTTP/1.1 keeps alive unless
  // told "close"; HTTP/1.0 closes unless told "keep-alive"), then the empty line ending the
  // head.
  void End(unsigned version, bool keep_alive) {
    if (version >= 11 && !keep_alive) Put("Connection: close\r\n");
    if (version < 11 && keep_alive) Put("Connection: keep-alive\r\n");
    Put("\r\n");
  }
  // Trims the string to what was written (idempotent; the destructor calls it).
  void Finish() {
    if (w_ != nullptr) w_->resize(static_cast<size_t>(p_ - w_->data()));
    w_ = nullptr;
  }

 private:
  static constexpr size_t kNumberRoom = 24;  // LineWriter::Fixed's most
  void Ensure(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) Room(n < kChunk ? kChunk : n);
  }
  // n more bytes of room after p_ (out of line: once a head, more only for a long one).
  void Room(size_t n);
  // A piece of kChunk or more that does not fit: appended after what was written, not copied
  // into room made by a resize, which would zero-fill its bytes first (a stream chunk's data:
  // memset was ~4.5 K of callgrind's instructions per streamed request, rep stosb being
  // counted by the byte). Leaves no room; the next piece makes some.
  void PutLong(std::string_view s);

  std::string* w_;
  char* p_ = nullptr;
  char* end_ = nullptr;
};

// "name: value\r\n" appended to *w, for a head built a field at a time (the client fields
// that go upstream, http_message.cc).
void AppendField(std::string* w, std::string_view name, std::string_view value);

}  // namespace tokenpool::gateway
