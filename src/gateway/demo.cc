#include "gateway/demo.h"

#include "gateway/sha256.h"

namespace tokenpool::gateway {

std::string DemoConfigYaml(const std::string& host, uint16_t port, uint16_t admin_port,
                           uint16_t short_backend_port, uint16_t long_backend_port) {
  const std::string model(kDemoModel);
  const std::string profile(kDemoProfile);
  std::string y;
  y += "listen: {host: " + host + ", port: " + std::to_string(port) + "}\n";
  y += "admin: {host: 127.0.0.1, port: " + std::to_string(admin_port) +
       ", token_sha256: " + Sha256Hex(kDemoAdminToken) + "}\n";
  y += "models: [" + model + "]\n";
  y += "pools:\n";
  y += "  - {name: short, model: " + model + ", profile: " + profile +
       ", max_model_len: " + std::to_string(kDemoShortLen) +
       ", backends: [\"http://127.0.0.1:" + std::to_string(short_backend_port) + "\"]}\n";
  y += "  - {name: long, model: " + model + ", profile: " + profile +
       ", max_model_len: " + std::to_string(kDemoLongLen) +
       ", backends: [\"http://127.0.0.1:" + std::to_string(long_backend_port) + "\"]}\n";
  y += "tenants:\n";
  y += "  - {name: demo, keys: [" + Sha256Hex(kDemoKey) + "]}\n";
  y += "  - {name: free, keys: [" + Sha256Hex(kFreeKey) + "]}\n";
  // Guarantees well inside one replica's capacity (promised = provisioned); bursts up to it.
  y += "entitlements:\n";
  for (const char* pool : {"short", "long"}) {
    y += std::string("  - {tenant: demo, pool: ") + pool +
         ", class: guaranteed, guarantee: {token_rate: 500, kv_tokens: 65536, concurrency: 8}, "
         "burst: {token_rate: 5000, kv_tokens: 262144, concurrency: 64}, "
         "slo: {ttft_ms: 2000, max_queue_wait_ms: 5000}}\n";
  }
  y += "  - {tenant: free, pool: short, class: spot, "
       "burst: {token_rate: 1000, kv_tokens: 32768, concurrency: 4}, "
       "slo: {ttft_ms: 5000, max_queue_wait_ms: 0}}\n";
  y += "router: {mode: spillover}\n";
  return y;
}

}  // namespace tokenpool::gateway
