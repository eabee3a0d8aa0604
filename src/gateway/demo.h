#pragma once
// The built-in demo of `tokenpool serve --demo`: one model served by a short pool (8K context)
// and a long pool (32K), each one `tokenpool mock` replica, and two tenants:
//   demo  guaranteed on both pools, key kDemoKey
//   free  spot on the short pool only, key kFreeKey
// Thread-safety: pure functions.

#include <cstdint>
#include <string>
#include <string_view>

namespace tokenpool::gateway {

inline constexpr std::string_view kDemoModel = "llama-3-8b";
inline constexpr std::string_view kDemoProfile = "llama-3-8b-h100";
inline constexpr std::string_view kDemoKey = "tp-demo-key";
inline constexpr std::string_view kFreeKey = "tp-free-key";
inline constexpr std::string_view kDemoAdminToken = "tp-demo-admin";
inline constexpr int64_t kDemoShortLen = 8192;
inline constexpr int64_t kDemoLongLen = 32768;

// The demo's YAML with the mocks' ports filled in.
std::string DemoConfigYaml(const std::string& host, uint16_t port, uint16_t admin_port,
                           uint16_t short_backend_port, uint16_t long_backend_port);

}  // namespace tokenpool::gateway
