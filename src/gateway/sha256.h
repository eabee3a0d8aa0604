#pragma once
// SHA-256 of API keys (OpenSSL): the gateway stores and compares only digests.
// Thread-safety: pure function.

#include <string>
#include <string_view>

namespace tokenpool::gateway {

// 64 lower-case hex characters.
std::string Sha256Hex(std::string_view data);

// Loads OpenSSL's SHA-256 (its library configuration and provider: ~5.4 M instructions once
// per process, callgrind_annotate --inclusive=yes of run_gateway_profile.sh's PROFILE_KEEP
// output before the call moved here). The gateway calls it at start, so that its first
// authenticated request does not pay for it.
void InitSha256();

}  // namespace tokenpool::gateway
