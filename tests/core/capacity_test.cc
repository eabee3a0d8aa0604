// The capacity model: KV sizing, slots, the iteration-time model against the H100 measurements
// of papers.md §4, and short-pool versus long-pool capacity.

#include "tokenpool/capacity.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "tokenpool/profile.h"

namespace tokenpool {
namespace {

InstanceProfile Get(const std::string& name) { return FindProfile(name).value(); }

WorkloadShape Shape(double prompt, double output) {
  WorkloadShape w;
  w.mean_prompt_tokens = prompt;
  w.mean_output_tokens = output;
  return w;
}

TEST(CapacityTest, FleetSimSlotCounts) {
  // 65,536 blocks × 16 tokens = 1,048,576 KV tokens: 16 slots at 64K, 128 at 8K (fleet-sim).
  const InstanceProfile p = Get("fleetsim-a100");
  EXPECT_EQ(KvTokens(p), 1048576);
  EXPECT_EQ(Slots(WithMaxModelLen(p, 65536)), 16);
  EXPECT_EQ(Slots(WithMaxModelLen(p, 8192)), 128);
  // max_num_seqs caps: at 4K the KV would allow 256.
  EXPECT_EQ(Slots(WithMaxModelLen(p, 4096)), 128);
  EXPECT_EQ(Slots(WithMaxModelLen(Get("fleetsim-h100"), 4096)), 256);
}

TEST(CapacityTest, KvBlocksFromMemory) {
  const InstanceProfile p = Get("llama-3-70b-a100");
  const double usable = 4.0 * 81920.0 * 1048576.0 * 0.9;
  const double kv = usable - 141107412992.0 - 4.0 * 2.0 * 1073741824.0;
  EXPECT_DOUBLE_EQ(KvCacheBytes(p), kv);
  EXPECT_EQ(KvBlocks(p), static_cast<int64_t>(std::floor(kv / (327680.0 * 16))));
  EXPECT_EQ(KvTokens(p), KvBlocks(p) * 16);
  EXPECT_EQ(Slots(p), KvTokens(p) / 65536);  // 7
  EXPECT_EQ(Slots(p), 7);
  EXPECT_EQ(Slots(WithMaxModelLen(p, 8192)), 59);
}

TEST(CapacityTest, IterationTimeFormula) {
  const IterationModel m{.weights_s = 0.01,
                         .per_seq_s = 1e-5,
                         .per_context_token_s = 1e-8,
                         .prefill_tokens_per_s = 10000,
                         .prefill_chunk_tokens = 2048,
                         .prefill_model = PrefillModel::kComputeBound};
  EXPECT_DOUBLE_EQ(IterationSeconds(m, 10, 1000, 500), 0.01 + 1e-4 + 1e-5 + 0.05);
  EXPECT_EQ(IterationTime(m, 0, 0, 0), Milliseconds(10));
  IterationModel slot = m;
  slot.prefill_model = PrefillModel::kSlotIterations;  // prefill costs no step time
  EXPECT_DOUBLE_EQ(IterationSeconds(slot, 10, 1000, 500), 0.01 + 1e-4 + 1e-5);
}

TEST(CapacityTest, FleetSimServiceTime) {
  // fleet-sim: E[S] = (ceil(L_in / chunk) + L_out) × (W + H·n), n = slots.
  const InstanceProfile p = WithMaxModelLen(Get("fleetsim-a100"), 65536);
  const ReplicaPerformance r = AnalyzeReplica(p, Shape(1024, 100));
  const double step = 0.008 + 0.00065 * 16;
  EXPECT_DOUBLE_EQ(r.step_s, step);
  EXPECT_DOUBLE_EQ(r.service_s, (2 + 100) * step);
  EXPECT_DOUBLE_EQ(r.requests_per_s, 16 / ((2 + 100) * step));
  EXPECT_DOUBLE_EQ(r.tokens_per_s, r.requests_per_s * 1124);
}

TEST(CapacityTest, ComputeBoundPrefillRespectsTheChunkBudget) {
  // Azure-code-like: long prompts, short outputs; the 2,048-token budget binds on A100.
  const InstanceProfile p = WithMaxModelLen(Get("llama-3-70b-a100"), 8192);
  const WorkloadShape w = Shape(2048, 28);
  const ReplicaPerformance r = AnalyzeReplica(p, w);
  EXPECT_LT(r.active_seqs, static_cast<double>(r.slots));
  EXPECT_NEAR(r.active_seqs * 2048 / r.iterations_per_request, 2048, 1e-6);
  // Then a replica is bounded by prefill compute: req/s <= prefill rate / prompt.
  EXPECT_LE(r.requests_per_s, p.iteration.prefill_tokens_per_s / 2048);
}

TEST(CapacityTest, ShortPoolBeatsLongPoolOnEveryProfile) {
  for (const std::string& name : BuiltinProfileNames()) {
    const InstanceProfile p = Get(name);
    const WorkloadShape w;  // Azure conv means
    const ResourceVector lng = ReplicaCapacity(WithMaxModelLen(p, 65536), w);
    const ResourceVector shrt = ReplicaCapacity(WithMaxModelLen(p, 8192), w);
    EXPECT_GT(shrt.token_rate, lng.token_rate) << name;
    EXPECT_GT(shrt.concurrency, lng.concurrency) << name;
    EXPECT_EQ(shrt.kv_tokens, lng.kv_tokens) << name;  // same replica, same memory
  }
}

TEST(CapacityTest, ContextTermMakesShortStepsCheaper) {
  // With the same number of sequences, shorter contexts give cheaper steps (K > 0): the second
  // effect a W + H·n model misses (papers.md §4).
  const InstanceProfile p = Get("llama-3-8b-h100");
  const ReplicaPerformance shrt = AnalyzeReplica(p, Shape(500, 200));
  const ReplicaPerformance lng = AnalyzeReplica(p, Shape(20000, 200));
  EXPECT_EQ(shrt.slots, lng.slots);
  EXPECT_LT(shrt.step_s, lng.step_s);
}

TEST(CapacityTest, PoolIsReplicasTimesReplica) {
  const InstanceProfile p = Get("llama-3-70b-h100");
  const WorkloadShape w;
  EXPECT_EQ(PoolCapacity(p, w, 4), ReplicaCapacity(p, w) * 4.0);
  EXPECT_TRUE(PoolCapacity(p, w, 0).IsZero());
  const ResourceVector r = ReplicaCapacity(p, w);
  EXPECT_EQ(r.kv_tokens, static_cast<double>(KvTokens(p)));
  EXPECT_EQ(r.concurrency, static_cast<double>(Slots(p)));
}

TEST(CapacityTest, WorkloadValidation) {
  EXPECT_TRUE(WorkloadShape{}.Validate().ok());
  EXPECT_EQ(Shape(-1, 211).Validate().message(),
            "workload.mean_prompt_tokens: must be >= 0 and finite");
  EXPECT_EQ(Shape(0, 0).Validate().code(), StatusCode::kInvalidArgument);
}

// --- The H100 measurements (../shared/docs/h100_decode_profile.jsonl) ---------------------------

struct Row {
  std::string model, kind;
  double b = 0, t = 0, ms = 0;
};

double NumberAfter(const std::string& line, const std::string& key) {
  const size_t at = line.find("\"" + key + "\":");
  if (at == std::string::npos) return NAN;
  return std::stod(line.substr(at + key.size() + 3));
}

std::string StringAfter(const std::string& line, const std::string& key) {
  const size_t at = line.find("\"" + key + "\": \"");
  if (at == std::string::npos) return "";
  const size_t start = at + key.size() + 5;
  return line.substr(start, line.find('"', start) - start);
}

std::vector<Row> ReadProfileRows() {
  std::ifstream in(std::string(TOKENPOOL_SHARED_DIR) + "/docs/h100_decode_profile.jsonl");
  std::vector<Row> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    rows.push_back({StringAfter(line, "model"), StringAfter(line, "kind"), NumberAfter(line, "B"),
                    NumberAfter(line, "T"), NumberAfter(line, "ms")});
  }
  return rows;
}

class H100MeasurementsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rows_ = ReadProfileRows();
    if (rows_.empty()) {
      GTEST_SKIP() << TOKENPOOL_SHARED_DIR
                   << "/docs/h100_decode_profile.jsonl is absent: the check of the iteration "
                      "model against the H100 measurements needs ../shared";
    }
  }
  std::vector<Row> rows_;
};

TEST_F(H100MeasurementsTest, Llama8BDecodeFitWithinFivePercent) {
  // Profile llama-3-8b-h100 against every decode row: B sequences of T context tokens each.
  const IterationModel m =
      FindProfile("llama-3-8b-h100")->iteration;  // a copy: the Result is a temporary
  double max_err = 0;
  int n = 0;
  for (const Row& r : rows_) {
    if (r.model != "llama3-8b" || r.kind != "decode") continue;
    const double predicted_ms = IterationSeconds(m, r.b, r.b * r.t, 0) * 1e3;
    max_err = std::max(max_err, std::abs(predicted_ms - r.ms) / r.ms);
    ++n;
  }
  EXPECT_GE(n, 19);
  EXPECT_LT(max_err, 0.05);  // papers.md §4 states 4.3%
}

TEST_F(H100MeasurementsTest, Llama70BPerLayerFit) {
  // The 70B profiles are the per-layer fit × 80 ÷ TP; undo that and compare per layer.
  const InstanceProfile p = Get("llama-3-70b-h100");
  const double per_layer = static_cast<double>(p.tensor_parallel) / 80.0;
  std::vector<double> errs;
  for (const Row& r : rows_) {
    if (r.model != "llama3-70b-1layer" || r.kind != "decode") continue;
    const double predicted_ms = IterationSeconds(p.iteration, r.b, r.b * r.t, 0) * 1e3 * per_layer;
    errs.push_back(std::abs(predicted_ms - r.ms) / r.ms);
  }
  ASSERT_EQ(errs.size(), 11u);
  std::sort(errs.begin(), errs.end());
  // One outlier (B = 1, T = 2,048 measured 0.73 ms, 11% above the fit); the rest within 6%.
  EXPECT_LT(errs.back(), 0.12);
  EXPECT_LT(errs[errs.size() - 2], 0.06);
}

TEST_F(H100MeasurementsTest, PrefillRates) {
  // 8B ≈ 40K tokens/s and 70B ≈ 5K tokens/s per H100 for 512–8K-token prompts (±12%).
  for (const Row& r : rows_) {
    if (r.kind != "prefill" || r.t < 512) continue;
    const bool is_8b = r.model == "llama3-8b";
    const double rate = r.t / (r.ms * 1e-3) / (is_8b ? 1.0 : 80.0);
    EXPECT_NEAR(rate, is_8b ? 40000 : 5000, is_8b ? 4800 : 600) << r.model << " T=" << r.t;
  }
}

}  // namespace
}  // namespace tokenpool
