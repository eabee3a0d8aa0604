#pragma once
// Status and Result<T>: errors as values across the core API (no exceptions cross it).
//
//   Result<Profile> p = ParseProfile(...);
//   if (!p.ok()) return p.status();          // message names the field and the rule
//   Use(p.value());
//
// Thread-safety: plain values; safe to copy and move between threads.

#include <cassert>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace tokenpool {

// Canonical codes (the subset of absl/gRPC codes we use). Each carries retry meaning:
// kResourceExhausted and kUnavailable are retryable later; the others are not without a change.
enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // input breaks a rule; the message names the field and the rule
  kNotFound,            // a named thing (entitlement, pool, profile) does not exist
  kAlreadyExists,       // creating what exists
  kFailedPrecondition,  // the system is not in a state that allows the call (e.g. guarantees
                        // would exceed the pool at its maximum replicas)
  kResourceExhausted,   // a limit is reached now; retry later
  kOutOfRange,          // a value is valid in type but outside what can be served
  kUnavailable,         // transient
  kInternal,            // a bug: an invariant broke
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "INVALID_ARGUMENT: tenants[2].guarantee.kv_tokens: must be >= 0"
  std::string ToString() const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
inline Status FailedPrecondition(std::string m) {
  return {StatusCode::kFailedPrecondition, std::move(m)};
}
inline Status ResourceExhausted(std::string m) {
  return {StatusCode::kResourceExhausted, std::move(m)};
}
inline Status OutOfRange(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

// A number as an error message shows it: printf's %g (six significant digits: 1e+300, 0.5,
// 20308).
inline std::string MessageNumber(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// A value or a non-OK Status, shaped like std::expected (C++23) which GCC 12 lacks in C++20.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design, like std::expected
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok() && "Result constructed from an OK Status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }

  // Requires ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  // OK when a value is held.
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace tokenpool
