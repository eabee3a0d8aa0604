// Instance profiles: validation and the built-in table. The source of every figure is given
// beside it and collected in docs/capacity-model.md.

#include "tokenpool/profile.h"

#include <cmath>
#include <cstdio>
#include <string>
#include <utility>

#include "tokenpool/capacity.h"

namespace tokenpool {
namespace {

constexpr int64_t kGiB = int64_t{1} << 30;
constexpr int64_t kMiB = int64_t{1} << 20;

// --- GPUs -------------------------------------------------------------------------------------
// Memory as the driver reports it (nvidia-smi / torch total_memory), which is what vLLM's
// gpu_memory_utilization multiplies: A100-SXM4-80GB reports 81,920 MiB, H100-SXM5-80GB
// (HBM3) 81,559 MiB.
constexpr int64_t kA100MemoryBytes = 81920 * kMiB;
constexpr int64_t kH100MemoryBytes = 81559 * kMiB;
// A100 / H100 scaling of the measured H100 iteration model (papers.md §4):
//   memory-bound terms (W, H, K) by HBM bandwidth, NVIDIA datasheets: H100 SXM 3.35 TB/s,
//   A100 80GB SXM 2.039 TB/s;
//   prefill (compute-bound: 70B at 5K tok/s is ~70% of H100's 989 dense bf16 TFLOPS) by
//   dense bf16 tensor throughput, H100 SXM 989 TFLOPS, A100 312 TFLOPS.
constexpr double kA100SlowdownBandwidth = 3.35 / 2.039;
constexpr double kA100ComputeFraction = 312.0 / 989.0;
// $/GPU-hour: the figures the paper and fleet-sim use (papers.md §2: $2.21 per A100-hour;
// fleet-sim's H100 profile $4.02), so our dollars compare with theirs.
constexpr double kA100UsdPerHour = 2.21;
constexpr double kH100UsdPerHour = 4.02;

// --- vLLM defaults (vllm/engine/arg_utils.py, EngineArgs.get_batch_defaults, OpenAI server):
// GPUs with >= 70 GiB that are not A100: max_num_batched_tokens 8192, max_num_seqs 1024;
// others (A100 included, see vLLM PR #17885): 2048 and 256. Block size 16, utilization 0.9.
constexpr int64_t kH100ChunkTokens = 8192;
constexpr int64_t kH100MaxNumSeqs = 1024;
constexpr int64_t kA100ChunkTokens = 2048;
constexpr int64_t kA100MaxNumSeqs = 256;
// Context of a worst-case provisioned fleet: the paper's homogeneous fleet runs max_model_len
// 65,536 ("≥ 64K", papers.md §2). Llama-3.1 has the Llama-3 shape and a 128K RoPE range.
constexpr int64_t kLongContext = 65536;
// Activations of vLLM's profiling run, CUDA-graph pool and NCCL buffers, per GPU. [ours] A
// round estimate, not measured here: it moves a 70B TP=4 replica's KV by 2% per GiB.
constexpr int64_t kReservePerGpu = 2 * kGiB;

// --- Models (Hugging Face config.json of meta-llama/Meta-Llama-3-{8B,70B}) --------------------
// 70B: 80 layers, 64 query / 8 KV heads, head_dim 128 (8192 / 64); parameters
//   = 80 × 855,654,400 per layer + 2 × 128,256 × 8,192 (embeddings, untied head) + 8,192 norm
//   = 70,553,706,496.
constexpr ModelShape kLlama3_70B{.layers = 80,
                                 .kv_heads = 8,
                                 .head_dim = 128,
                                 .kv_dtype_bytes = 2,
                                 .parameter_count = 70553706496,
                                 .weight_dtype_bytes = 2};
// 8B: 32 layers, 32 query / 8 KV heads, head_dim 128; parameters
//   = 32 × 218,112,000 + 2 × 128,256 × 4,096 + 4,096 = 8,030,261,248.
constexpr ModelShape kLlama3_8B{.layers = 32,
                                .kv_heads = 8,
                                .head_dim = 128,
                                .kv_dtype_bytes = 2,
                                .parameter_count = 8030261248,
                                .weight_dtype_bytes = 2};

// --- Iteration models ---------------------------------------------------------------------------
// Llama-3-70B, measured per layer on one H100 (papers.md §4, h100_decode_profile.jsonl):
// 0.647 ms + 0.41 µs × seqs + 1.32 ns × context tokens; × 80 layers, ÷ TP (ideal split: no
// all-reduce cost, so a lower bound on the step time). Prefill ≈ 5K tokens/s per H100.
constexpr double k70BLayerW = 0.647e-3;
constexpr double k70BLayerH = 0.41e-6;
constexpr double k70BLayerK = 1.32e-9;
constexpr double k70BPrefillPerH100 = 5000;
// TP = 4 for Llama-3-70B bf16 on 80 GB GPUs: weights are 141.1 GB. TP = 2 leaves
// 2 × 80 GiB × 0.9 − 141.1 GB − 2 × 2 GiB ≈ 9.3 GB of KV ≈ 28K tokens: not one 64K sequence.
// TP = 4 leaves ≈ 159 GB ≈ 486K tokens (7 slots at 64K, 59 at 8K). TP = 8 would double the
// KV again but split a memory-bound step 8 ways, where all-reduce costs start to dominate.
constexpr int64_t k70BTensorParallel = 4;
// Llama-3-8B measured on one H100 (papers.md §4): 6.54 ms + 7.0 µs × seqs + 41.9 ns × context
// tokens (max error 4.3%); prefill ≈ 40K tokens/s for 512–8K prompts.
constexpr double k8BW = 6.54e-3;
constexpr double k8BH = 7.0e-6;
constexpr double k8BK = 41.9e-9;
constexpr double k8BPrefill = 40000;

IterationModel Scaled70B(double bandwidth_slowdown, double compute_fraction, int64_t chunk) {
  const double layers = static_cast<double>(kLlama3_70B.layers);
  const double tp = static_cast<double>(k70BTensorParallel);
  return {.weights_s = k70BLayerW * layers / tp * bandwidth_slowdown,
          .per_seq_s = k70BLayerH * layers / tp * bandwidth_slowdown,
          .per_context_token_s = k70BLayerK * layers / tp * bandwidth_slowdown,
          .prefill_tokens_per_s = k70BPrefillPerH100 * tp * compute_fraction,
          .prefill_chunk_tokens = chunk,
          .prefill_model = PrefillModel::kComputeBound};
}

IterationModel Scaled8B(double bandwidth_slowdown, double compute_fraction, int64_t chunk) {
  return {.weights_s = k8BW * bandwidth_slowdown,
          .per_seq_s = k8BH * bandwidth_slowdown,
          .per_context_token_s = k8BK * bandwidth_slowdown,
          .prefill_tokens_per_s = k8BPrefill * compute_fraction,
          .prefill_chunk_tokens = chunk,
          .prefill_model = PrefillModel::kComputeBound};
}

InstanceProfile Llama70B(std::string name, std::string gpu, int64_t memory, bool a100) {
  return {
      .name = std::move(name),
      .model = "meta-llama/Llama-3-70B (bf16)",
      .gpu = std::move(gpu),
      .tensor_parallel = k70BTensorParallel,
      .gpu_memory_bytes = memory,
      .shape = kLlama3_70B,
      .gpu_memory_utilization = 0.9,
      .reserve_bytes_per_gpu = kReservePerGpu,
      .block_size = 16,
      .max_num_seqs = a100 ? kA100MaxNumSeqs : kH100MaxNumSeqs,
      .max_model_len = kLongContext,
      .kv_blocks_override = std::nullopt,
      .iteration = a100 ? Scaled70B(kA100SlowdownBandwidth, kA100ComputeFraction, kA100ChunkTokens)
                        : Scaled70B(1.0, 1.0, kH100ChunkTokens),
      .usd_per_gpu_hour = a100 ? kA100UsdPerHour : kH100UsdPerHour};
}

InstanceProfile Llama8B(std::string name, std::string gpu, int64_t memory, bool a100) {
  return {
      .name = std::move(name),
      .model = "meta-llama/Llama-3-8B (bf16)",
      .gpu = std::move(gpu),
      .tensor_parallel = 1,
      .gpu_memory_bytes = memory,
      .shape = kLlama3_8B,
      .gpu_memory_utilization = 0.9,
      .reserve_bytes_per_gpu = kReservePerGpu,
      .block_size = 16,
      .max_num_seqs = a100 ? kA100MaxNumSeqs : kH100MaxNumSeqs,
      .max_model_len = kLongContext,
      .kv_blocks_override = std::nullopt,
      .iteration = a100 ? Scaled8B(kA100SlowdownBandwidth, kA100ComputeFraction, kA100ChunkTokens)
                        : Scaled8B(1.0, 1.0, kH100ChunkTokens),
      .usd_per_gpu_hour = a100 ? kA100UsdPerHour : kH100UsdPerHour};
}

// fleet-sim's hand-calibrated profiles (semantic-router src/fleet-sim, gpu_profiles/
// profiles.py; papers.md §2): constant W + H·n, no context term, chunk per sequence, 65,536
// KV blocks of 16 tokens stated directly, and one "instance" priced as one GPU. Its comment
// says "Llama-3-70B calibration, 8-GPU TP"; 65,536 × 16 tokens × 327,680 B = 344 GB of KV does
// not fit one 80 GB GPU, so these reproduce fleet-sim's numbers, not a physical replica.
InstanceProfile FleetSim(std::string name, std::string gpu, double w, double h, double k,
                         int64_t chunk, int64_t max_slots, double usd) {
  return {.name = std::move(name),
          .model = "Llama-3-70B (fleet-sim calibration)",
          .gpu = std::move(gpu),
          .tensor_parallel = 1,
          .gpu_memory_bytes = kA100MemoryBytes,
          .shape = kLlama3_70B,
          .gpu_memory_utilization = 0.9,
          .reserve_bytes_per_gpu = 0,
          .block_size = 16,
          .max_num_seqs = max_slots,
          .max_model_len = kLongContext,
          .kv_blocks_override = 65536,
          .iteration = {.weights_s = w,
                        .per_seq_s = h,
                        .per_context_token_s = k,
                        .prefill_tokens_per_s = 0,
                        .prefill_chunk_tokens = chunk,
                        .prefill_model = PrefillModel::kSlotIterations},
          .usd_per_gpu_hour = usd};
}

// The explicit name → profile table (no static self-registration).
std::vector<InstanceProfile> BuiltinProfiles() {
  std::vector<InstanceProfile> v;
  v.push_back(Llama70B("llama-3-70b-a100", "A100-SXM4-80GB", kA100MemoryBytes, true));
  v.push_back(Llama70B("llama-3-70b-h100", "H100-SXM5-80GB", kH100MemoryBytes, false));
  v.push_back(Llama8B("llama-3-8b-h100", "H100-SXM5-80GB", kH100MemoryBytes, false));
  v.push_back(Llama8B("llama-3-8b-a100", "A100-SXM4-80GB", kA100MemoryBytes, true));
  // fleet-sim A100_80GB: W = 8 ms, H = 0.65 ms, chunk 512, max_slots 128, $2.21/h.
  v.push_back(FleetSim("fleetsim-a100", "A100-80GB", 8e-3, 0.65e-3, 0, 512, 128, 2.21));
  // fleet-sim H100_80GB: W = 4 ms, H = 0.32 ms, chunk 1024, max_slots 256, $4.02/h.
  v.push_back(FleetSim("fleetsim-h100", "H100-80GB", 4e-3, 0.32e-3, 0, 1024, 256, 4.02));
  // fleet-sim's later ManualProfile.iter_latency scales H by mean_seq_len / 8,192
  // (calibration_ctx): H·n·len/8192 is a context term K = 0.65 ms / 8,192 = 79.3 ns per
  // context token with no per-sequence term. Same A100 constants otherwise.
  v.push_back(FleetSim("fleetsim-a100-ctx", "A100-80GB", 8e-3, 0, 0.65e-3 / 8192, 512, 128, 2.21));
  return v;
}

std::string Gb(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GB", bytes / 1e9);
  return buf;
}

class Checker {
 public:
  explicit Checker(const InstanceProfile& p) : prefix_("profiles[" + p.name + "].") {}
  bool failed() const { return !status_.ok(); }
  Status status() const { return status_; }
  void Fail(std::string_view field, std::string_view rule) {
    if (!failed())
      status_ = InvalidArgument(prefix_ + std::string(field) + ": " + std::string(rule));
  }
  void Positive(std::string_view field, int64_t v) {
    if (v <= 0) Fail(field, "must be > 0, got " + std::to_string(v));
  }
  void Positive(std::string_view field, double v) {
    if (!std::isfinite(v) || v <= 0) Fail(field, "must be > 0 and finite");
  }
  void NonNegative(std::string_view field, int64_t v) {
    if (v < 0) Fail(field, "must be >= 0, got " + std::to_string(v));
  }
  void NonNegative(std::string_view field, double v) {
    if (!std::isfinite(v) || v < 0) Fail(field, "must be >= 0 and finite");
  }

 private:
  std::string prefix_;
  Status status_;
};

}  // namespace

std::string_view PrefillModelName(PrefillModel m) {
  switch (m) {
    case PrefillModel::kComputeBound:
      return "compute_bound";
    case PrefillModel::kSlotIterations:
      return "slot_iterations";
  }
  return "unknown";
}

Status InstanceProfile::Validate() const {
  if (name.empty()) return InvalidArgument("profiles[].name: must not be empty");
  Checker c(*this);
  c.Positive("tensor_parallel", tensor_parallel);
  c.Positive("gpu_memory_bytes", gpu_memory_bytes);
  c.Positive("shape.layers", shape.layers);
  c.Positive("shape.kv_heads", shape.kv_heads);
  c.Positive("shape.head_dim", shape.head_dim);
  c.Positive("shape.kv_dtype_bytes", shape.kv_dtype_bytes);
  c.Positive("shape.parameter_count", shape.parameter_count);
  c.Positive("shape.weight_dtype_bytes", shape.weight_dtype_bytes);
  if (!(gpu_memory_utilization > 0 && gpu_memory_utilization <= 1)) {
    c.Fail("gpu_memory_utilization", "must be in (0, 1]");
  }
  c.NonNegative("reserve_bytes_per_gpu", reserve_bytes_per_gpu);
  c.Positive("block_size", block_size);
  c.Positive("max_num_seqs", max_num_seqs);
  c.Positive("max_model_len", max_model_len);
  if (kv_blocks_override) c.Positive("kv_blocks_override", *kv_blocks_override);
  c.Positive("iteration.weights_s", iteration.weights_s);
  c.NonNegative("iteration.per_seq_s", iteration.per_seq_s);
  c.NonNegative("iteration.per_context_token_s", iteration.per_context_token_s);
  c.Positive("iteration.prefill_chunk_tokens", iteration.prefill_chunk_tokens);
  if (iteration.prefill_model == PrefillModel::kComputeBound) {
    c.Positive("iteration.prefill_tokens_per_s", iteration.prefill_tokens_per_s);
  } else {
    c.NonNegative("iteration.prefill_tokens_per_s", iteration.prefill_tokens_per_s);
  }
  c.NonNegative("usd_per_gpu_hour", usd_per_gpu_hour);
  if (c.failed()) return c.status();

  if (!kv_blocks_override) {
    const double usable = static_cast<double>(gpu_memory_bytes) *
                          static_cast<double>(tensor_parallel) * gpu_memory_utilization;
    const double weights = static_cast<double>(WeightsBytes(shape));
    if (weights >= usable) {
      c.Fail("shape.parameter_count", "weights (" + Gb(weights) +
                                          ") must fit the usable GPU memory (" + Gb(usable) +
                                          " = " + std::to_string(tensor_parallel) + " × " +
                                          Gb(static_cast<double>(gpu_memory_bytes)) +
                                          " × utilization); raise "
                                          "tensor_parallel");
      return c.status();
    }
    if (KvBlocks(*this) <= 0) {
      c.Fail("reserve_bytes_per_gpu", "no memory left for the KV cache after weights (" +
                                          Gb(weights) + ") and reserve: zero capacity");
      return c.status();
    }
  }
  const int64_t kv_tokens = KvTokens(*this);
  if (kv_tokens < max_model_len) {
    c.Fail("max_model_len", "must fit the KV cache (" + std::to_string(kv_tokens) +
                                " tokens) at least once, got " + std::to_string(max_model_len) +
                                ": zero capacity");
  }
  return c.status();
}

InstanceProfile WithMaxModelLen(InstanceProfile profile, int64_t n) {
  profile.max_model_len = n;
  return profile;
}

Result<InstanceProfile> FindProfile(std::string_view name) {
  for (InstanceProfile& p : BuiltinProfiles()) {
    if (p.name == name) return std::move(p);
  }
  std::string known;
  for (const std::string& n : BuiltinProfileNames()) {
    if (!known.empty()) known += ", ";
    known += n;
  }
  return NotFound("profile \"" + std::string(name) + "\": unknown; known profiles: " + known);
}

std::vector<std::string> BuiltinProfileNames() {
  std::vector<std::string> names;
  for (const InstanceProfile& p : BuiltinProfiles()) names.push_back(p.name);
  return names;
}

}  // namespace tokenpool
