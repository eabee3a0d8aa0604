// LineWriter, for the request log line (server.cc) and the message heads (HeadWriter,
// http_head.h).
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace tokenpool::gateway {

// Writes at a pointer into a buffer that the caller sized beforehand: a piece is one inlined
// memcpy, where std::string::append is an out-of-line call with its own length checks (~30
// pieces a log line).
class LineWriter {
 public:
  explicit LineWriter(char* p) : p_(p) {}
  void Put(std::string_view s) {
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }
  void Put(char c) { *p_++ = c; }
  void Int(int64_t v) { p_ = std::to_chars(p_, p_ + 20, v).ptr; }
  // `v` in base 10 or 16 as `width` (at most 20) digits or more, zero-padded on the left.
  // Digits written from the right into place, not std::to_chars into a scratch buffer and a
  // copy: 11 numbers a request (the id, the log line); see HeadWriter (http_head.h) for the
  // measured difference of the two. Always inlined: called out of line (as the compiler chose
  // once the class left server.cc) the request's log line and heads took ~350 instructions
  // more (callgrind, run_gateway_profile.sh).
  [[gnu::always_inline]] void Padded(uint64_t v, int width, int base = 10) {
    int n = 1;
    if (base == 16) {
      for (uint64_t t = v >> 4; t != 0; t >>= 4) ++n;
    } else {
      for (uint64_t t = v / 10; t != 0; t /= 10) ++n;
    }
    if (n < width) {
      p_ = std::fill_n(p_, width - n, '0');
    }
    char* q = p_ + n;
    p_ = q;
    if (base == 16) {
      do {
        *--q = "0123456789abcdef"[v & 15];
        v >>= 4;
      } while (v != 0);
    } else {
      do {
        *--q = static_cast<char>('0' + v % 10);
        v /= 10;
      } while (v != 0);
    }
  }
  // `v` with `decimals` (0-3) digits after the point, like "{:.Nf}" for the times in logs and
  // headers (|v| < 1e12): the value scaled and rounded half away from zero, then printed as
  // integers, without a floating-point formatter. At most 24 characters.
  void Fixed(double v, int decimals) {
    static constexpr int64_t kScale[] = {1, 10, 100, 1000};
    decimals = std::clamp(decimals, 0, 3);
    const int64_t scale = kScale[decimals];
    // NaN, infinities and values beyond int64 (never a time here) print as 0.
    const double scaled = v * static_cast<double>(scale);
    const int64_t n = std::fabs(scaled) < 9e18 ? std::llround(scaled) : 0;
    const uint64_t a = n < 0 ? 0 - static_cast<uint64_t>(n) : static_cast<uint64_t>(n);
    if (n < 0) Put('-');
    Padded(a / static_cast<uint64_t>(scale), 1);
    if (decimals == 0) return;
    Put('.');
    Padded(a % static_cast<uint64_t>(scale), decimals);
  }
  // ` key=value` pairs of the log line (`key` carries its leading space and '=').
  void Field(std::string_view key, std::string_view v) {
    Put(key);
    Put(v);
  }
  // A value that came from outside (the client's model, a tenant's name): as is when it is
  // one token of printable ASCII without '"', '=' or '\\' (every usual name), else quoted,
  // with '"' and '\\' escaped and control bytes as \xHH, so that no value can end the line or
  // add a field (a model "z\n... status=200" forged a line); at most `max` of its bytes,
  // then "...". Writes at most ValueBound(v, max) bytes. The check is a table lookup a byte
  // (std::all_of over four comparisons was ~150 instructions a value, callgrind).
  void Value(std::string_view v, size_t max) {
    if (!v.empty() && v.size() <= max) {
      bool plain = true;
      for (const char c : v) plain &= kPlain[static_cast<unsigned char>(c)];
      if (plain) {
        Put(v);
        return;
      }
    }
    Quoted(v, max);
  }
  static constexpr size_t ValueBound(std::string_view v, size_t max) {
    return 4 * std::min(v.size(), max) + 5;
  }
  void Field(std::string_view key, int64_t v) {
    Put(key);
    Int(v);
  }
  void FixedField(std::string_view key, double v, int decimals) {
    Put(key);
    Fixed(v, decimals);
  }
  char* end() const { return p_; }

 private:
  static constexpr std::array<bool, 256> kPlain = [] {
    std::array<bool, 256> t{};
    for (int c = 0x21; c < 0x7f; ++c) t[static_cast<size_t>(c)] = c != '"' && c != '=' && c != '\\';
    return t;
  }();
  [[gnu::cold, gnu::noinline]] void Quoted(std::string_view v, size_t max) {
    Put('"');
    for (const char c : v.substr(0, max)) {
      const auto u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        Put('\\');
        Put(c);
      } else if (u < 0x20 || u == 0x7f) {
        Put("\\x");
        Put("0123456789abcdef"[u >> 4]);
        Put("0123456789abcdef"[u & 15]);
      } else {
        Put(c);
      }
    }
    if (v.size() > max) Put("...");
    Put('"');
  }

  char* p_;
};

}  // namespace tokenpool::gateway
