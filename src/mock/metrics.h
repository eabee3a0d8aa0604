#pragma once
// The mock server's /metrics: vLLM's metric names and types (vllm:num_requests_running,
// vllm:num_requests_waiting, vllm:kv_cache_usage_perc, vllm:num_preemptions_total,
// vllm:prompt_tokens_total, vllm:generation_tokens_total, vllm:request_success_total and the
// TTFT / TPOT / end-to-end histograms with vLLM's buckets), labelled model_name like vLLM, plus
// tokenpool_mock_faults_injected_total{kind}. Rendered with prometheus-cpp's text serializer.
//
//   MockMetrics m("llama-3-8b");
//   m.SetEngine(engine.Stats());               // before each scrape
//   std::string text = m.Serialize();
//
// Thread-safety: prometheus-cpp metrics are thread-safe; SetEngine() keeps unsynchronized
// deltas, so one thread (the server's) calls it.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "engine/engine.h"

namespace prometheus {
class Registry;
class Counter;
class Gauge;
class Histogram;
}  // namespace prometheus

namespace tokenpool::mock {

class MockMetrics {
 public:
  explicit MockMetrics(const std::string& model);
  ~MockMetrics();
  MockMetrics(const MockMetrics&) = delete;
  MockMetrics& operator=(const MockMetrics&) = delete;

  // Gauges from the engine, counters by their increase since the last call.
  void SetEngine(const engine::EngineStats& stats);
  // A request that completed (engine mode: its timings; instant mode: zero latencies).
  void Finished(const engine::RequestTiming& timing, std::string_view finish_reason);
  // vllm:request_success_total{finished_reason} alone (Finished() counts it too).
  void Succeeded(std::string_view finish_reason);
  // Instant mode has no engine: token counters move directly.
  void AddTokens(int64_t prompt_tokens, int64_t generation_tokens);
  // kind: "error_500", "error_503", "added_latency", "first_token_stall", "drop", "restart".
  void Fault(std::string_view kind);

  std::string Serialize() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Gauge* running_;
  prometheus::Gauge* waiting_;
  prometheus::Gauge* kv_usage_;
  prometheus::Gauge* gpu_cache_usage_;  // the pre-V1 name, still read by many dashboards
  prometheus::Counter* preemptions_;
  prometheus::Counter* prompt_tokens_;
  prometheus::Counter* generation_tokens_;
  prometheus::Histogram* ttft_;
  prometheus::Histogram* tpot_;
  prometheus::Histogram* e2e_;
  prometheus::Histogram* prompt_hist_;
  prometheus::Histogram* generation_hist_;
  std::string model_;
  // vllm:request_success_total by finished_reason, and faults by kind: looked up once each
  // (a family lookup takes the registry's lock and hashes the labels).
  std::map<std::string, prometheus::Counter*, std::less<>> success_;
  std::map<std::string, prometheus::Counter*, std::less<>> faults_;
  engine::EngineStats last_;  // counters already exported
};

}  // namespace tokenpool::mock
