// The capacity model. Derivation, assumptions and sources: docs/capacity-model.md.

#include "tokenpool/capacity.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace tokenpool {
namespace {

Status CheckShapeField(std::string_view field, double v) {
  if (!std::isfinite(v) || v < 0) {
    return InvalidArgument("workload." + std::string(field) + ": must be >= 0 and finite");
  }
  return Status::Ok();
}

}  // namespace

Status WorkloadShape::Validate() const {
  if (Status s = CheckShapeField("mean_prompt_tokens", mean_prompt_tokens); !s.ok()) return s;
  if (Status s = CheckShapeField("mean_output_tokens", mean_output_tokens); !s.ok()) return s;
  if (Status s = CheckShapeField("mean_prefill_chunks", mean_prefill_chunks); !s.ok()) return s;
  if (mean_prompt_tokens + mean_output_tokens <= 0) {
    return InvalidArgument("workload.mean_prompt_tokens: prompt + output must be > 0");
  }
  return Status::Ok();
}

int64_t KvBytesPerToken(const ModelShape& shape) {
  // K and V, for every layer and KV head.
  return 2 * shape.layers * shape.kv_heads * shape.head_dim * shape.kv_dtype_bytes;
}

int64_t WeightsBytes(const ModelShape& shape) {
  return shape.parameter_count * shape.weight_dtype_bytes;
}

double KvCacheBytes(const InstanceProfile& p) {
  const double tp = static_cast<double>(p.tensor_parallel);
  return static_cast<double>(p.gpu_memory_bytes) * tp * p.gpu_memory_utilization -
         static_cast<double>(WeightsBytes(p.shape)) -
         static_cast<double>(p.reserve_bytes_per_gpu) * tp;
}

int64_t KvBlocks(const InstanceProfile& p) {
  if (p.kv_blocks_override) return *p.kv_blocks_override;
  const double block_bytes =
      static_cast<double>(KvBytesPerToken(p.shape)) * static_cast<double>(p.block_size);
  const double bytes = KvCacheBytes(p);
  if (bytes <= 0 || block_bytes <= 0) return 0;
  return static_cast<int64_t>(std::floor(bytes / block_bytes));
}

int64_t KvTokens(const InstanceProfile& p) { return KvBlocks(p) * p.block_size; }

int64_t Slots(const InstanceProfile& p) {
  if (p.max_model_len <= 0) return 0;
  // Worst-case provisioning, as vLLM admission under a full context and fleet-sim assume:
  // every sequence may grow to max_model_len.
  return std::min(p.max_num_seqs, KvTokens(p) / p.max_model_len);
}

double IterationSeconds(const IterationModel& m, double seqs, double context_tokens,
                        double prefill_tokens) {
  double t = m.weights_s + m.per_seq_s * seqs + m.per_context_token_s * context_tokens;
  if (m.prefill_model == PrefillModel::kComputeBound && m.prefill_tokens_per_s > 0) {
    t += prefill_tokens / m.prefill_tokens_per_s;
  }
  return t;
}

Duration IterationTime(const IterationModel& m, double seqs, double context_tokens,
                       double prefill_tokens) {
  return Seconds(IterationSeconds(m, seqs, context_tokens, prefill_tokens));
}

ReplicaPerformance AnalyzeReplica(const InstanceProfile& profile, const WorkloadShape& workload) {
  const IterationModel& m = profile.iteration;
  ReplicaPerformance r;
  r.slots = Slots(profile);
  r.kv_tokens = KvTokens(profile);

  const double prompt = workload.mean_prompt_tokens;
  const double output = workload.mean_output_tokens;
  const double chunk = static_cast<double>(m.prefill_chunk_tokens);
  r.prefill_chunks =
      workload.mean_prefill_chunks > 0 ? workload.mean_prefill_chunks : std::ceil(prompt / chunk);
  // A slot is held for its prefill chunks, then one iteration per output token (as fleet-sim;
  // the last prefill chunk also yields the first token, so this counts one step too many).
  r.iterations_per_request = std::max(1.0, r.prefill_chunks + output);
  // Mean KV a sequence attends over during its decode: its prompt plus half its output.
  r.context_tokens_per_seq =
      std::min(prompt + output / 2, static_cast<double>(profile.max_model_len));

  double active = static_cast<double>(r.slots);
  // Prompt tokens the batch must prefill per iteration when `active` slots turn over.
  double prefill_per_iter = active * prompt / r.iterations_per_request;
  if (m.prefill_model == PrefillModel::kComputeBound && prefill_per_iter > chunk) {
    // The chunked-prefill budget binds: only as many sequences run as the budget can feed;
    // the others wait outside the batch (vLLM's waiting queue holds no KV).
    active = chunk * r.iterations_per_request / prompt;
    prefill_per_iter = chunk;
  }
  r.active_seqs = active;
  r.step_s = IterationSeconds(m, active, active * r.context_tokens_per_seq, prefill_per_iter);
  r.service_s = r.iterations_per_request * r.step_s;
  r.prefill_s = r.prefill_chunks * r.step_s;
  r.requests_per_s = r.service_s > 0 ? active / r.service_s : 0;
  r.tokens_per_s = r.requests_per_s * (prompt + output);
  return r;
}

ResourceVector ReplicaCapacity(const InstanceProfile& profile, const WorkloadShape& workload) {
  const ReplicaPerformance r = AnalyzeReplica(profile, workload);
  return {.token_rate = r.tokens_per_s,
          .kv_tokens = static_cast<double>(r.kv_tokens),
          .concurrency = static_cast<double>(r.slots)};
}

ResourceVector PoolCapacity(const InstanceProfile& profile, const WorkloadShape& workload,
                            int64_t replicas) {
  return ReplicaCapacity(profile, workload) * static_cast<double>(replicas);
}

}  // namespace tokenpool
