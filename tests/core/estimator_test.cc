#include "tokenpool/estimator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace tokenpool {
namespace {

// Features of a synthetic English-like request: `words` words of 5 letters and a space.
RequestFeatures Prose(int64_t words, int64_t messages = 1, std::string model = "m") {
  RequestFeatures f;
  f.model = std::move(model);
  f.messages = messages;
  f.text.bytes = words * 6;
  f.text.letters = words * 5;
  f.text.letter_runs = words;
  f.text.letters_ge4 = words * 2;
  f.text.spaces = words;
  f.text.space_runs = words;
  f.text_bytes = f.text.bytes;
  return f;
}

std::unique_ptr<TokenEstimator> Make(std::string_view mode, const EstimatorConfig& c = {}) {
  Result<std::unique_ptr<TokenEstimator>> r = MakeEstimator(mode, c);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return std::move(r).value();
}

TEST(EstimatorFactoryTest, ModesByName) {
  ASSERT_EQ(EstimatorModes().size(), 3u);
  for (const EstimatorMode& m : EstimatorModes()) {
    EXPECT_EQ(Make(m.name)->Name(), m.name);
  }
  const auto r = MakeEstimator("tiktoken", EstimatorConfig{});
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("known: static, ema, linear"), std::string::npos);
  EXPECT_EQ(kDefaultEstimatorMode, "linear");
}

TEST(EstimatorConfigTest, ValidateNamesFieldAndRule) {
  EXPECT_TRUE(EstimatorConfig{}.Validate().ok());
  EstimatorConfig c;
  c.ema.decay = 1.0;
  EXPECT_EQ(c.Validate().message(), "ema.decay: must be in (0, 1)");
  c = {};
  c.linear.gamma = -1;
  EXPECT_EQ(c.Validate().message(), "linear.gamma: must be >= 0");
  c = {};
  c.linear.sample_every = 0;
  EXPECT_EQ(c.Validate().message(), "linear.sample_every: must be >= 1");
  c = {};
  c.linear.sample_after = -1;
  EXPECT_EQ(c.Validate().message(), "linear.sample_after: must be >= 0");
  c = {};
  c.model_output_reserve.push_back({"", 5});
  EXPECT_EQ(c.Validate().message(), "model_output_reserve[0].model: must not be empty");
  c = {};
  c.static_bytes_per_token = 0;
  EXPECT_EQ(MakeEstimator("static", c).status().message(), "static_bytes_per_token: must be > 0");
}

TEST(StaticEstimatorTest, BytesOverRatioPlusFramingImagesAndReserve) {
  RequestFeatures f = Prose(100, 2);  // 600 bytes
  f.structured_bytes = 40;
  f.tool_definitions = 1;
  f.images = 2;
  f.has_max_tokens = true;
  f.max_output_tokens = 300;
  const auto est = Make("static");
  const TokenEstimate e = est->Estimate(f, Categorize(f));
  EXPECT_EQ(e.framing_tokens, 2 * 4 + 8);
  EXPECT_EQ(e.image_tokens, 2 * 8192);
  EXPECT_EQ(e.prompt_tokens, 160 + 16 + 2 * 8192);
  EXPECT_EQ(e.routing_prompt_tokens, e.prompt_tokens);
  EXPECT_EQ(e.output_reserve, 300);
  EXPECT_EQ(e.routing_budget, e.prompt_tokens + 300);
  EXPECT_FALSE(e.learned);
}

TEST(EstimatorTest, OutputReserveDefaultsPerModel) {
  EstimatorConfig c;
  c.default_output_reserve = 1000;
  c.model_output_reserve.push_back({"big", 7000});
  const auto est = Make("linear", c);
  RequestFeatures f = Prose(10, 1, "big");
  EXPECT_EQ(est->Estimate(f, Categorize(f)).output_reserve, 7000);
  f.model = "other";
  EXPECT_EQ(est->Estimate(f, Categorize(f)).output_reserve, 1000);
  f.has_max_tokens = true;
  f.max_output_tokens = 0;
  EXPECT_EQ(est->Estimate(f, Categorize(f)).output_reserve, 0);
}

TEST(EmaEstimatorTest, FirstObservationInitialisesAndTrustAfterMinSamples) {
  const auto est = Make("ema");
  const RequestFeatures f = Prose(1000);  // 6000 bytes, framing 4
  const Category c = Categorize(f);
  // Truth: 3 bytes/token over content, plus the framing.
  const int64_t actual = 2000 + 4;
  for (int i = 0; i < 9; ++i) {
    est->Observe(f, c, actual);
    EXPECT_FALSE(est->Estimate(f, c).learned);
    EXPECT_EQ(est->Estimate(f, c).prompt_tokens, 1500 + 4);  // warm-up ratio 4.0
  }
  est->Observe(f, c, actual);
  const TokenEstimate e = est->Estimate(f, c);
  EXPECT_TRUE(e.learned);
  EXPECT_EQ(e.prompt_tokens, actual);          // every sample had ratio 3.0 exactly
  EXPECT_EQ(e.routing_prompt_tokens, actual);  // no spread
}

// The admin API's view: per category its name, samples, trust and observed bytes/token.
TEST(EstimatorTest, CategoriesReportLearnedState) {
  for (const char* mode : {"ema", "linear"}) {
    const auto est = Make(mode);
    EXPECT_TRUE(est->Categories().empty()) << mode;
    const RequestFeatures f = Prose(1000, 1, "llama");  // 6000 bytes, framing 4
    for (int i = 0; i < 30; ++i) est->Observe(f, Categorize(f), 2000 + 4);
    est->Observe(f, Categorize(f, "support-bot"), 2000 + 4);
    const std::vector<EstimatorCategoryState> cats = est->Categories();
    ASSERT_EQ(cats.size(), 2u) << mode;
    EXPECT_EQ(cats[0].name, "llama/" + std::string(ContentClassName(Categorize(f).content)));
    EXPECT_EQ(cats[0].samples, 30);
    EXPECT_EQ(cats[0].learned, 30) << mode;  // below linear.sample_after: all of them
    EXPECT_TRUE(cats[0].trusted) << mode;
    EXPECT_EQ(cats[1].name, "support-bot");
    EXPECT_EQ(cats[1].samples, 1);
    EXPECT_FALSE(cats[1].trusted) << mode;
    // 6000 bytes over 2000 content tokens (ema removes the framing; linear keeps it in).
    EXPECT_NEAR(cats[0].bytes_per_token, 3.0, 0.01) << mode;
  }
  EXPECT_TRUE(Make("static")->Categories().empty());
}

TEST(EmaEstimatorTest, ConvergesAndConservativeOverestimates) {
  const auto est = Make("ema");
  uint64_t x = 7;
  for (int i = 0; i < 400; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const int64_t words = 200 + static_cast<int64_t>((x >> 33) % 2000);
    const RequestFeatures f = Prose(words);
    // A ratio that wobbles between 3.3 and 3.7 bytes/token.
    const double ratio = 3.3 + 0.4 * static_cast<double>((x >> 20) % 1000) / 1000.0;
    est->Observe(f, Categorize(f),
                 static_cast<int64_t>(std::llround(static_cast<double>(f.text_bytes) / ratio)) + 4);
  }
  const RequestFeatures f = Prose(1000);
  const TokenEstimate e = est->Estimate(f, Categorize(f));
  EXPECT_NEAR(static_cast<double>(e.prompt_tokens - 4), 6000 / 3.5, 6000 / 3.5 * 0.03);
  EXPECT_GT(e.routing_prompt_tokens, e.prompt_tokens);
}

TEST(LinearEstimatorTest, LearnsAnExactLinearRule) {
  const auto est = Make("linear");
  uint64_t x = 11;
  auto truth = [](const RequestFeatures& f) {
    return 5 + 5 * f.messages + f.text.letter_runs + f.text.letters_ge4 / 4;
  };
  for (int i = 0; i < 300; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const RequestFeatures f =
        Prose(20 + static_cast<int64_t>((x >> 33) % 3000), 1 + static_cast<int64_t>((x >> 20) % 5));
    est->Observe(f, Categorize(f), truth(f));
  }
  for (int64_t words : {50, 700, 2500}) {
    const RequestFeatures f = Prose(words, 3);
    const TokenEstimate e = est->Estimate(f, Categorize(f));
    EXPECT_TRUE(e.learned);
    // Small requests are learned less precisely: their features are tiny after the division by
    // the request's size, so the prior holds them back longer.
    const double tolerance = words < 100 ? 0.05 : 0.01;
    EXPECT_NEAR(static_cast<double>(e.prompt_tokens), static_cast<double>(truth(f)),
                tolerance * static_cast<double>(truth(f)) + 1)
        << words;
    EXPECT_GE(e.routing_prompt_tokens, e.prompt_tokens);
  }
}

// Past sample_after reports, a model learns from one in sample_every: the same coefficients
// as a model given only those reports (the spread, which sees every report, aside).
TEST(LinearEstimatorTest, LearnsFromOneReportInSampleEveryPastSampleAfter) {
  EstimatorConfig sampled;
  sampled.linear.sample_after = 50;
  sampled.linear.sample_every = 4;
  EstimatorConfig every;
  every.linear.sample_every = 1;
  const auto a = Make("linear", sampled);
  const auto b = Make("linear", every);
  uint64_t x = 5;
  for (int i = 1; i <= 130; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const RequestFeatures f = Prose(100 + static_cast<int64_t>((x >> 33) % 3000),
                                    1 + static_cast<int64_t>((x >> 20) % 4));
    const int64_t tokens = f.text.letter_runs * 6 / 5 + static_cast<int64_t>((x >> 8) % 40);
    a->Observe(f, Categorize(f), tokens);
    if (i <= 50 || (i - 50) % 4 == 0) b->Observe(f, Categorize(f), tokens);
  }
  ASSERT_EQ(a->Categories().size(), 1u);
  EXPECT_EQ(a->Categories()[0].samples, 130);
  EXPECT_EQ(a->Categories()[0].learned, 50 + 80 / 4);
  EXPECT_EQ(b->Categories()[0].learned, 50 + 80 / 4);
  for (int64_t words : {60, 900, 2800}) {
    const RequestFeatures f = Prose(words, 2);
    EXPECT_EQ(a->Estimate(f, Categorize(f)).prompt_tokens,
              b->Estimate(f, Categorize(f)).prompt_tokens)
        << words;
  }
}

TEST(LinearEstimatorTest, ConservativeCoversNoise) {
  const auto est = Make("linear");
  uint64_t x = 3;
  for (int i = 0; i < 500; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const RequestFeatures f = Prose(500 + static_cast<int64_t>((x >> 33) % 3000));
    const double noise = 0.9 + 0.2 * static_cast<double>((x >> 10) % 1000) / 1000.0;
    est->Observe(f, Categorize(f),
                 std::llround(static_cast<double>(f.text.letter_runs) * 1.2 * noise));
  }
  const RequestFeatures f = Prose(2000);
  const TokenEstimate e = est->Estimate(f, Categorize(f));
  EXPECT_NEAR(static_cast<double>(e.prompt_tokens), 2400, 2400 * 0.03);
  EXPECT_GT(e.routing_prompt_tokens, e.prompt_tokens * 103 / 100);  // spread ~5% × γ 1.25
  EXPECT_LT(e.routing_prompt_tokens, e.prompt_tokens * 120 / 100);
}

TEST(LinearEstimatorTest, UnseenScriptIsNotEstimatedAtZero) {
  const auto est = Make("linear");
  for (int i = 0; i < 200; ++i) {
    const RequestFeatures f = Prose(100 + 10 * i);
    est->Observe(f, Categorize(f), f.text.letter_runs * 13 / 10 + 10);
  }
  RequestFeatures georgian;
  georgian.model = "m";
  georgian.messages = 1;
  georgian.text.bytes = georgian.text_bytes = 3000;
  georgian.text.non_ascii = 3000;
  georgian.text.non_ascii_runs = 150;
  georgian.text.utf8_3 = 1000;
  georgian.text.script[static_cast<int>(Script::kGeorgian)] = 1000;
  // Never seen: the prior's one token per character, not the zero of an untrained coefficient.
  EXPECT_GE(est->Estimate(georgian, Categorize(georgian)).prompt_tokens, 900);
}

TEST(CategoryTest, OverrideAndModelSelectTheCategory) {
  const RequestFeatures a = Prose(10, 1, "model-a");
  const RequestFeatures b = Prose(10, 1, "model-b");
  EXPECT_NE(Categorize(a).key, Categorize(b).key);
  EXPECT_EQ(Categorize(a).key, Categorize(Prose(99, 2, "model-a")).key);
  EXPECT_EQ(Categorize(a, "tenant-x").key, Categorize(b, "tenant-x").key);
  EXPECT_NE(Categorize(a, "tenant-x").key, Categorize(a).key);
  EXPECT_EQ(Categorize(a, "tenant-x").override_name, "tenant-x");

  // An override category learns separately from the model's own category.
  const auto est = Make("ema");
  const Category over = Categorize(a, "tenant-x");
  for (int i = 0; i < 20; ++i) est->Observe(a, over, 10);  // 60 bytes -> 6 tokens: 10 B/tok
  EXPECT_TRUE(est->Estimate(a, over).learned);
  EXPECT_FALSE(est->Estimate(a, Categorize(a)).learned);
}

TEST(CategoryTest, TableIsBounded) {
  EstimatorConfig c;
  c.max_categories = 4;
  for (const char* mode : {"ema", "linear"}) {
    const auto est = Make(mode, c);
    for (int i = 0; i < 10; ++i) {
      const RequestFeatures f = Prose(100);
      est->Observe(f, Categorize(f, "tenant-" + std::to_string(i)), 80);
    }
    EXPECT_EQ(est->CategoryCount(), 4) << mode;
    const RequestFeatures f = Prose(100);
    const TokenEstimate e = est->Estimate(f, Categorize(f, "tenant-9"));
    EXPECT_GT(e.prompt_tokens, 0) << mode;
  }
}

TEST(ClassifierTest, ClassesFromByteShares) {
  ByteStats s;
  EXPECT_EQ(ClassifyContent(s), ContentClass::kEmpty);
  s.bytes = 100;
  s.letters = 80;
  s.spaces = 18;
  s.punct = 2;
  EXPECT_EQ(ClassifyContent(s), ContentClass::kProse);
  ByteStats code = s;
  code.code_punct = 6;
  code.punct = 8;
  EXPECT_EQ(ClassifyContent(code), ContentClass::kCode);
  ByteStats json = s;
  json.quotes = 10;
  json.brackets = 4;
  EXPECT_EQ(ClassifyContent(json), ContentClass::kJson);
  ByteStats tex = s;
  tex.tex_punct = 5;
  EXPECT_EQ(ClassifyContent(tex), ContentClass::kTex);
  ByteStats cjk;
  cjk.bytes = 300;
  cjk.non_ascii = 300;
  cjk.utf8_3 = 100;
  cjk.script[static_cast<int>(Script::kHan)] = 100;
  EXPECT_EQ(ClassifyContent(cjk), ContentClass::kCjk);
  ByteStats cyr;
  cyr.bytes = 200;
  cyr.non_ascii = 200;
  cyr.utf8_2 = 100;
  cyr.script[static_cast<int>(Script::kCyrillic)] = 100;
  EXPECT_EQ(ClassifyContent(cyr), ContentClass::kCyrillic);
  ByteStats georgian = cyr;
  georgian.utf8_2 = 0;
  georgian.utf8_3 = 66;
  georgian.script = {};
  georgian.script[static_cast<int>(Script::kGeorgian)] = 66;
  EXPECT_EQ(ClassifyContent(georgian), ContentClass::kOtherScript);
  ByteStats german = s;
  german.bytes = 106;
  german.non_ascii = 6;
  german.utf8_2 = 3;
  german.script[static_cast<int>(Script::kLatinExt)] = 3;
  EXPECT_EQ(ClassifyContent(german), ContentClass::kAccented);
  EXPECT_EQ(ContentClassName(ContentClass::kOtherScript), "other_script");
}

TEST(EstimatorTest, ImagesAndTokenIdsAreAddedExactly) {
  EstimatorConfig c;
  c.image_tokens = 1000;
  for (const EstimatorMode& m : EstimatorModes()) {
    const auto est = Make(m.name, c);
    RequestFeatures f = Prose(10);
    const int64_t base = est->Estimate(f, Categorize(f)).prompt_tokens;
    f.images = 2;
    f.prompt_token_ids = 7;
    EXPECT_EQ(est->Estimate(f, Categorize(f)).prompt_tokens, base + 2007) << m.name;
  }
}

// A completions batch is held as all its prompts (routing_prompt_tokens) but routed by its
// longest (routing_budget): each prompt is its own sequences, checked against the context on
// its own. Chat and single prompts route by the whole, as before.
TEST(EstimatorTest, BatchRoutesByItsLongestPrompt) {
  for (const EstimatorMode& m : EstimatorModes()) {
    const auto est = Make(m.name);
    RequestFeatures f = Prose(3000, 3);  // three prompts, 18,000 bytes
    f.endpoint = Endpoint::kCompletions;
    f.has_max_tokens = true;
    f.max_output_tokens = 100;
    const TokenEstimate whole = est->Estimate(f, Categorize(f));
    EXPECT_EQ(whole.routing_budget, whole.routing_prompt_tokens + 100) << m.name;  // no share
    f.longest_prompt_bytes = 6000;  // a third of the bytes
    const TokenEstimate batch = est->Estimate(f, Categorize(f));
    EXPECT_EQ(batch.routing_prompt_tokens, whole.routing_prompt_tokens) << m.name;  // held whole
    const int64_t third =
        (whole.routing_prompt_tokens + 2) / 3 + EstimatorConfig{}.framing_per_message;
    EXPECT_EQ(batch.routing_budget, third + 100) << m.name;
    f.endpoint = Endpoint::kChatCompletions;  // three messages of one chat: one sequence
    EXPECT_EQ(est->Estimate(f, Categorize(f)).routing_budget, whole.routing_budget) << m.name;
    // Token-id lists: the longest list, exactly, plus one prompt's framing.
    RequestFeatures ids;
    ids.model = "m";
    ids.endpoint = Endpoint::kCompletions;
    ids.messages = 2;
    ids.prompt_token_ids = 5000;
    ids.longest_prompt_ids = 4000;
    ids.has_max_tokens = true;
    ids.max_output_tokens = 10;
    const TokenEstimate e = est->Estimate(ids, Categorize(ids));
    EXPECT_GE(e.routing_prompt_tokens, 5000) << m.name;
    EXPECT_EQ(e.routing_budget, 4000 + EstimatorConfig{}.framing_per_message + 10) << m.name;
  }
}

// For each mode: two estimators taught the same 200 prose reports, then `extra` fed only to
// the first; what it saw there must teach nothing: both estimate text alike.
void ExpectExtraReportsTeachNothing(const std::function<void(TokenEstimator*)>& extra) {
  for (const EstimatorMode& m : EstimatorModes()) {
    const auto seen = Make(m.name);
    const auto unseen = Make(m.name);
    for (int i = 0; i < 200; ++i) {
      const RequestFeatures f = Prose(50 + 10 * (i % 40), 1 + i % 3);
      const int64_t actual = 7 + f.text.letter_runs * 13 / 10;
      seen->Observe(f, Categorize(f), actual);
      unseen->Observe(f, Categorize(f), actual);
    }
    extra(seen.get());
    for (int64_t words : {2, 1000, 60000}) {
      const RequestFeatures f = Prose(words);
      const TokenEstimate a = seen->Estimate(f, Categorize(f));
      const TokenEstimate b = unseen->Estimate(f, Categorize(f));
      EXPECT_EQ(a.prompt_tokens, b.prompt_tokens) << m.name << " " << words;
      EXPECT_EQ(a.routing_prompt_tokens, b.routing_prompt_tokens) << m.name << " " << words;
    }
  }
}

// A report for a request with images teaches nothing: a backend that counts an image as 13
// tokens (against image_tokens' 8,192 worst case) had, after 8 such reports, taken a 1,000-word
// prompt's estimate to 1 token. The estimates are those of an estimator that never saw them.
TEST(EstimatorTest, ReportsOfRequestsWithImagesTeachNothing) {
  ExpectExtraReportsTeachNothing([](TokenEstimator* seen) {
    for (int i = 0; i < 50; ++i) {
      RequestFeatures f = Prose(3);
      f.images = 1;
      seen->Observe(f, Categorize(f), 13);
      f = Prose(4000);
      f.images = 2;
      seen->Observe(f, Categorize(f), 100000);
    }
  });
}

// A count that the request's bytes cannot be (a backend's 1e9, or 1e6 for 600 bytes; fewer
// than one token per 64 bytes) teaches nothing. Before, one report of 1e9 took every later
// estimate of the category past the largest pool.
TEST(EstimatorTest, ImplausibleCountsTeachNothing) {
  ExpectExtraReportsTeachNothing([](TokenEstimator* seen) {
    for (int64_t bad : {int64_t{1000000000}, int64_t{1000000}, int64_t{2}}) {
      const RequestFeatures f = Prose(100);  // 600 bytes: 2 tokens is under 1 per 64 bytes
      seen->Observe(f, Categorize(f), bad);
    }
  });
}

// Whatever the fit learned, an estimate stays within what the bytes can be: at least one
// token per 64 bytes, at most one per byte plus the framing (a few tiny samples had a 90 KB
// prompt estimated at 116 K tokens; content unlike the samples, at 1 token).
TEST(EstimatorTest, EstimatesStayWithinWhatTheBytesCanBe) {
  const auto est = Make("linear");
  for (int i = 0; i < 6; ++i) {
    const RequestFeatures f = Prose(1);
    est->Observe(f, Categorize(f), 40);  // a chat template's worth on one word
  }
  RequestFeatures big = Prose(15000);  // 90,000 bytes
  const TokenEstimate e = est->Estimate(big, Categorize(big));
  EXPECT_LE(e.prompt_tokens, 90000 + 64 + 64);
  EXPECT_GE(e.prompt_tokens, 90000 / 64);
  RequestFeatures odd;  // bytes with none of prose's features
  odd.model = "m";
  odd.messages = 1;
  odd.text.bytes = 6400;
  odd.text_bytes = 6400;
  EXPECT_GE(est->Estimate(odd, Categorize(odd)).prompt_tokens, 100);
}

// Cold (before min_global_samples reports), the linear mode's route carries the initial
// spread's margin, as its learned estimates do (it routed by the bare static estimate).
TEST(EstimatorTest, ColdLinearRoutesWithTheInitialMargin) {
  const EstimatorConfig c;
  const auto est = Make("linear", c);
  const RequestFeatures f = Prose(1000);
  const TokenEstimate e = est->Estimate(f, Categorize(f));
  const int64_t framing = c.framing_per_message;
  EXPECT_EQ(e.routing_prompt_tokens,
            static_cast<int64_t>(std::ceil((e.prompt_tokens - framing) *
                                           (1 + c.linear.gamma * c.linear.initial_spread))) +
                framing);
  EXPECT_GT(e.routing_prompt_tokens, e.prompt_tokens);
}

TEST(EstimatorTest, IgnoresNonPositiveFeedback) {
  const auto est = Make("ema");
  const RequestFeatures f = Prose(10);
  for (int i = 0; i < 20; ++i) est->Observe(f, Categorize(f), 0);
  EXPECT_EQ(est->CategoryCount(), 0);
}

}  // namespace
}  // namespace tokenpool
