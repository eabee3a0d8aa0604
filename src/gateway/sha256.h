#pragma once
// SHA-256 of API keys (OpenSSL): the gateway stores and compares only digests.
// Thread-safety: pure function.

#include <string>
#include <string_view>

namespace tokenpool::gateway {

// 64 lower-case hex characters.
std::string Sha256Hex(std::string_view data);

}  // namespace tokenpool::gateway
