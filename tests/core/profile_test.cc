// Instance profiles: the built-in table, lookup, and validation errors that name the field and
// the rule.

#include "tokenpool/profile.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "tokenpool/capacity.h"

namespace tokenpool {
namespace {

using ::testing::HasSubstr;

InstanceProfile Get(const std::string& name) {
  Result<InstanceProfile> p = FindProfile(name);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return p.value();
}

TEST(ProfileTest, EveryBuiltinValidates) {
  const std::vector<std::string> names = BuiltinProfileNames();
  EXPECT_THAT(names,
              ::testing::IsSupersetOf({"llama-3-70b-a100", "llama-3-70b-h100", "llama-3-8b-h100",
                                       "llama-3-8b-a100", "fleetsim-a100", "fleetsim-h100"}));
  for (const std::string& n : names) {
    const InstanceProfile p = Get(n);
    EXPECT_EQ(p.name, n);
    EXPECT_TRUE(p.Validate().ok()) << p.Validate().ToString();
    EXPECT_GT(Slots(p), 0) << n;
  }
}

TEST(ProfileTest, UnknownNameListsTheKnownOnes) {
  Result<InstanceProfile> p = FindProfile("llama-4-900b");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(p.status().message(), HasSubstr("llama-4-900b"));
  EXPECT_THAT(p.status().message(), HasSubstr("llama-3-70b-a100"));
  EXPECT_THAT(p.status().message(), HasSubstr("fleetsim-h100"));
}

TEST(ProfileTest, KvBytesPerTokenOfLlama3) {
  // 2 (K, V) × 80 layers × 8 KV heads × 128 head dim × 2 bytes.
  EXPECT_EQ(KvBytesPerToken(Get("llama-3-70b-a100").shape), 327680);
  EXPECT_EQ(KvBytesPerToken(Get("llama-3-8b-h100").shape), 131072);
  EXPECT_EQ(WeightsBytes(Get("llama-3-70b-h100").shape), int64_t{141107412992});
}

TEST(ProfileTest, WithMaxModelLenChangesOnlyThatField) {
  const InstanceProfile p = Get("llama-3-70b-a100");
  InstanceProfile q = WithMaxModelLen(p, 8192);
  EXPECT_EQ(q.max_model_len, 8192);
  q.max_model_len = p.max_model_len;
  EXPECT_EQ(q.name, p.name);
  EXPECT_EQ(KvTokens(q), KvTokens(p));
  EXPECT_EQ(q.iteration.weights_s, p.iteration.weights_s);
}

void ExpectInvalid(const InstanceProfile& p, const std::string& text) {
  const Status s = p.Validate();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr(text));
}

TEST(ProfileTest, ValidationNamesFieldAndRule) {
  const InstanceProfile base = Get("llama-3-70b-a100");
  InstanceProfile p = base;
  p.shape.kv_heads = 0;
  ExpectInvalid(p, "profiles[llama-3-70b-a100].shape.kv_heads: must be > 0");

  p = base;
  p.reserve_bytes_per_gpu = -1;
  ExpectInvalid(p, "profiles[llama-3-70b-a100].reserve_bytes_per_gpu: must be >= 0");

  p = base;
  p.gpu_memory_utilization = 1.5;
  ExpectInvalid(p, "gpu_memory_utilization: must be in (0, 1]");

  p = base;
  p.iteration.prefill_tokens_per_s = 0;
  ExpectInvalid(p, "iteration.prefill_tokens_per_s: must be > 0");

  p = base;
  p.iteration.per_seq_s = -1e-6;
  ExpectInvalid(p, "iteration.per_seq_s: must be >= 0");

  p = base;
  p.max_num_seqs = 0;
  ExpectInvalid(p, "max_num_seqs: must be > 0");

  p = base;
  p.usd_per_gpu_hour = -2;
  ExpectInvalid(p, "usd_per_gpu_hour: must be >= 0");

  p = base;
  p.name = "";
  ExpectInvalid(p, "profiles[].name: must not be empty");
}

TEST(ProfileTest, WeightsBiggerThanMemoryAreRefused) {
  InstanceProfile p = Get("llama-3-70b-a100");
  p.tensor_parallel = 1;  // 141 GB of weights on one 80 GB GPU
  ExpectInvalid(p,
                "profiles[llama-3-70b-a100].shape.parameter_count: weights (141.1 GB) must "
                "fit the usable GPU memory");
}

TEST(ProfileTest, ZeroCapacityIsRefused) {
  // TP = 2 fits the weights but leaves ~28K tokens of KV: not one 64K sequence. This is why the
  // built-in 70B profiles use TP = 4.
  InstanceProfile p = Get("llama-3-70b-a100");
  p.tensor_parallel = 2;
  EXPECT_GT(KvTokens(p), 0);
  EXPECT_LT(KvTokens(p), 65536);
  ExpectInvalid(p, "max_model_len: must fit the KV cache");
  ExpectInvalid(p, "zero capacity");

  p.reserve_bytes_per_gpu = int64_t{20} << 30;  // nothing left after weights
  ExpectInvalid(p, "reserve_bytes_per_gpu: no memory left for the KV cache");
}

TEST(ProfileTest, OverrideSkipsTheMemoryArithmetic) {
  // fleet-sim states 65,536 blocks for one "GPU", more KV than 80 GB can hold; with the
  // override the profile is still valid and reproduces fleet-sim.
  const InstanceProfile p = Get("fleetsim-a100");
  EXPECT_TRUE(p.Validate().ok());
  EXPECT_EQ(KvBlocks(p), 65536);
  InstanceProfile q = p;
  q.kv_blocks_override = 0;
  ExpectInvalid(q, "kv_blocks_override: must be > 0");
}

}  // namespace
}  // namespace tokenpool
