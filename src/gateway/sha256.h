#pragma once
// SHA-256 of API keys (OpenSSL): the gateway stores and compares only digests.
// Thread-safety: pure function.

#include <string>
#include <string_view>

namespace tokenpool::gateway {

// 64 lower-case hex characters.
std::string Sha256Hex(std::string_view data);

// Loads OpenSSL's SHA-256 (its library configuration and provider: ~5.4 M instructions,
// callgrind, once per process). The gateway calls it at start, so that its first
// authenticated request does not pay for it (~2 ms).
void InitSha256();

}  // namespace tokenpool::gateway
