#include "mock/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace tokenpool::mock {
namespace {

using prometheus::Histogram;

// vLLM's buckets (vllm/engine/metrics.py), so dashboards built for vLLM read the mock alike.
const Histogram::BucketBoundaries kTtftBuckets = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,
                                                  0.25,  0.5,   0.75, 1.0,  2.5,  5.0,  7.5,  10.0};
const Histogram::BucketBoundaries kTpotBuckets = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,
                                                  0.3,  0.4,   0.5,  0.75,  1.0, 2.5};
const Histogram::BucketBoundaries kE2eBuckets = {0.3,  0.5,  0.8,  1.0,  1.5,  2.0,  2.5, 5.0,
                                                 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0};
const Histogram::BucketBoundaries kTokenBuckets = {
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000};

}  // namespace

MockMetrics::MockMetrics(const std::string& model)
    : registry_(std::make_shared<prometheus::Registry>()), model_(model) {
  const prometheus::Labels labels = {{"model_name", model}};
  auto gauge = [&](const char* name, const char* help) {
    return &prometheus::BuildGauge().Name(name).Help(help).Register(*registry_).Add(labels);
  };
  auto counter = [&](const char* name, const char* help) {
    return &prometheus::BuildCounter().Name(name).Help(help).Register(*registry_).Add(labels);
  };
  auto histogram = [&](const char* name, const char* help, const Histogram::BucketBoundaries& b) {
    return &prometheus::BuildHistogram().Name(name).Help(help).Register(*registry_).Add(labels, b);
  };
  running_ = gauge("vllm:num_requests_running", "Number of requests in model execution batches.");
  waiting_ = gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.");
  kv_usage_ = gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.");
  gpu_cache_usage_ = gauge("vllm:gpu_cache_usage_perc", "GPU KV-cache usage (pre-V1 name).");
  preemptions_ = counter("vllm:num_preemptions_total", "Cumulative number of preemptions.");
  prompt_tokens_ = counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.");
  generation_tokens_ =
      counter("vllm:generation_tokens_total", "Number of generation tokens processed.");
  ttft_ = histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token.",
                    kTtftBuckets);
  tpot_ = histogram("vllm:time_per_output_token_seconds", "Histogram of time per output token.",
                    kTpotBuckets);
  e2e_ = histogram("vllm:e2e_request_latency_seconds", "Histogram of end to end latency.",
                   kE2eBuckets);
  prompt_hist_ =
      histogram("vllm:request_prompt_tokens", "Prompt tokens per request.", kTokenBuckets);
  generation_hist_ =
      histogram("vllm:request_generation_tokens", "Generation tokens per request.", kTokenBuckets);
}

MockMetrics::~MockMetrics() = default;

void MockMetrics::SetEngine(const engine::EngineStats& s) {
  running_->Set(static_cast<double>(s.running));
  waiting_->Set(static_cast<double>(s.waiting));
  kv_usage_->Set(s.kv_usage);
  gpu_cache_usage_->Set(s.kv_usage);
  preemptions_->Increment(static_cast<double>(s.preemptions_total - last_.preemptions_total));
  prompt_tokens_->Increment(static_cast<double>(s.prompt_tokens_total - last_.prompt_tokens_total));
  generation_tokens_->Increment(
      static_cast<double>(s.generation_tokens_total - last_.generation_tokens_total));
  last_ = s;
}

void MockMetrics::Finished(const engine::RequestTiming& t, std::string_view finish_reason) {
  ttft_->Observe(ToSeconds(t.ttft()));
  if (t.output_tokens > 1) tpot_->Observe(ToSeconds(t.tpot()));
  e2e_->Observe(ToSeconds(t.e2e()));
  prompt_hist_->Observe(static_cast<double>(t.prompt_tokens));
  generation_hist_->Observe(static_cast<double>(t.output_tokens));
  Succeeded(finish_reason);
}

void MockMetrics::Succeeded(std::string_view finish_reason) {
  auto it = success_.find(finish_reason);
  if (it == success_.end()) {
    auto* c = &prometheus::BuildCounter()
                   .Name("vllm:request_success_total")
                   .Help("Count of successfully processed requests.")
                   .Register(*registry_)
                   .Add({{"model_name", model_}, {"finished_reason", std::string(finish_reason)}});
    it = success_.emplace(std::string(finish_reason), c).first;
  }
  it->second->Increment();
}

void MockMetrics::AddTokens(int64_t prompt_tokens, int64_t generation_tokens) {
  prompt_tokens_->Increment(static_cast<double>(prompt_tokens));
  generation_tokens_->Increment(static_cast<double>(generation_tokens));
}

void MockMetrics::Fault(std::string_view kind) {
  auto it = faults_.find(kind);
  if (it == faults_.end()) {
    auto* c = &prometheus::BuildCounter()
                   .Name("tokenpool_mock_faults_injected_total")
                   .Help("Faults injected by the mock server, by kind.")
                   .Register(*registry_)
                   .Add({{"kind", std::string(kind)}});
    it = faults_.emplace(std::string(kind), c).first;
  }
  it->second->Increment();
}

std::string MockMetrics::Serialize() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace tokenpool::mock
