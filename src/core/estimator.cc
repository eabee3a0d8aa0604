#include "tokenpool/estimator.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "estimator_internal.h"

namespace tokenpool {

namespace ei = estimator_internal;

std::string_view ContentClassName(ContentClass c) {
  switch (c) {
    case ContentClass::kEmpty:
      return "empty";
    case ContentClass::kProse:
      return "prose";
    case ContentClass::kCode:
      return "code";
    case ContentClass::kJson:
      return "json";
    case ContentClass::kTex:
      return "tex";
    case ContentClass::kMarkup:
      return "markup";
    case ContentClass::kCjk:
      return "cjk";
    case ContentClass::kOtherScript:
      return "other_script";
    case ContentClass::kAccented:
      return "accented";
    case ContentClass::kCyrillic:
      return "cyrillic";
  }
  return "unknown";
}

// Shares of characters; thresholds read off the open corpus's categories (docs/estimator.md):
// text with > 25% non-ASCII characters is "script" text (CJK when Han/Kana/Hangul dominate,
// Cyrillic when Cyrillic/Greek do: tokenizers treat these three families very differently);
// > 2% accented Latin letters: another Latin-script language than English; JSON > 8%
// quotes/brackets/colons/commas; LaTeX > 2% of \ $ ^; code > 3% of ;=()<>; other text with
// > 8% punctuation: markup.
ContentClass ClassifyContent(const ByteStats& s) {
  if (s.bytes == 0) return ContentClass::kEmpty;
  const int64_t wide = s.utf8_2 + s.utf8_3 + s.utf8_4;
  const double chars = static_cast<double>(std::max<int64_t>(1, s.bytes - s.non_ascii + wide));
  if (static_cast<double>(wide) > 0.25 * chars) {
    const auto sc = [&](Script x) { return s.script[static_cast<int>(x)]; };
    const int64_t cjk = sc(Script::kHan) + sc(Script::kKana) + sc(Script::kHangul) +
                        sc(Script::kCjkPunct) + sc(Script::kFullwidth);
    if (2 * cjk > wide) return ContentClass::kCjk;
    const int64_t cyrillic = sc(Script::kCyrillic) + sc(Script::kGreek);
    return 2 * cyrillic > wide ? ContentClass::kCyrillic : ContentClass::kOtherScript;
  }
  const auto share = [&](int64_t n) { return static_cast<double>(n) / chars; };
  if (share(wide) > 0.02 && 2 * s.script[static_cast<int>(Script::kLatinExt)] > wide) {
    return ContentClass::kAccented;
  }
  if (share(s.quotes + s.brackets + s.colons_commas) > 0.08 && s.quotes >= 4) {
    return ContentClass::kJson;
  }
  if (share(s.tex_punct) > 0.02) return ContentClass::kTex;
  if (share(s.code_punct) > 0.03) return ContentClass::kCode;
  if (share(s.punct) > 0.08) return ContentClass::kMarkup;
  return ContentClass::kProse;
}

namespace {
// FNV-1a, 64 bit: stable across runs and libraries (the key must not depend on std::hash).
uint64_t Fnv(std::string_view s, uint64_t h = 0xcbf29ce484222325ull) {
  for (unsigned char ch : s) {
    h ^= ch;
    h *= 0x100000001b3ull;
  }
  return h;
}
}  // namespace

Category Categorize(const RequestFeatures& f, std::string_view override_name) {
  Category c;
  c.content = ClassifyContent(f.text);
  c.model = f.model;
  c.override_name = override_name;
  if (!override_name.empty()) {
    c.key = Fnv(override_name, Fnv("override\x1f"));
  } else {
    c.key = Fnv(f.model);
    c.key = (c.key ^ (static_cast<uint64_t>(c.content) + 1)) * 0x100000001b3ull;
  }
  return c;
}

std::string CategoryName(const Category& c) {
  if (!c.override_name.empty()) return std::string(c.override_name);
  std::string name(c.model);
  name += '/';
  name += ContentClassName(c.content);
  return name;
}

Status EmaConfig::Validate() const {
  if (!(warmup_bytes_per_token > 0)) {
    return InvalidArgument("ema.warmup_bytes_per_token: must be > 0");
  }
  if (!(decay > 0 && decay < 1)) return InvalidArgument("ema.decay: must be in (0, 1)");
  if (min_samples < 1) return InvalidArgument("ema.min_samples: must be >= 1");
  if (!(gamma >= 0)) return InvalidArgument("ema.gamma: must be >= 0");
  return Status::Ok();
}

Status LinearConfig::Validate() const {
  if (!(prior_variance > 0)) return InvalidArgument("linear.prior_variance: must be > 0");
  if (min_global_samples < 1) return InvalidArgument("linear.min_global_samples: must be >= 1");
  if (min_category_samples < 1) {
    return InvalidArgument("linear.min_category_samples: must be >= 1");
  }
  if (!(gamma >= 0)) return InvalidArgument("linear.gamma: must be >= 0");
  if (!(spread_weight > 0 && spread_weight <= 1)) {
    return InvalidArgument("linear.spread_weight: must be in (0, 1]");
  }
  if (spread_min_tokens < 0) return InvalidArgument("linear.spread_min_tokens: must be >= 0");
  if (!(initial_spread >= 0)) return InvalidArgument("linear.initial_spread: must be >= 0");
  if (sample_after < 0) return InvalidArgument("linear.sample_after: must be >= 0");
  if (sample_every < 1) return InvalidArgument("linear.sample_every: must be >= 1");
  return Status::Ok();
}

Status EstimatorConfig::Validate() const {
  if (!(static_bytes_per_token > 0)) {
    return InvalidArgument("static_bytes_per_token: must be > 0");
  }
  if (image_tokens < 0) return InvalidArgument("image_tokens: must be >= 0");
  if (framing_per_message < 0) return InvalidArgument("framing_per_message: must be >= 0");
  if (framing_per_tool_call < 0) return InvalidArgument("framing_per_tool_call: must be >= 0");
  if (default_output_reserve < 0) {
    return InvalidArgument("default_output_reserve: must be >= 0");
  }
  for (size_t i = 0; i < model_output_reserve.size(); ++i) {
    const std::string at = "model_output_reserve[" + std::to_string(i) + "]";
    if (model_output_reserve[i].model.empty()) {
      return InvalidArgument(at + ".model: must not be empty");
    }
    if (model_output_reserve[i].output_tokens < 0) {
      return InvalidArgument(at + ".output_tokens: must be >= 0");
    }
  }
  if (max_categories < 1 || max_categories > 65536) {
    return InvalidArgument("max_categories: must be in [1, 65536]");
  }
  if (Status s = ema.Validate(); !s.ok()) return s;
  return linear.Validate();
}

namespace estimator_internal {

int64_t OutputReserve(const EstimatorConfig& c, const RequestFeatures& f) {
  if (f.has_max_tokens) return f.max_output_tokens;
  for (const ModelOutputDefault& d : c.model_output_reserve) {
    if (d.model == f.model) return d.output_tokens;
  }
  return c.default_output_reserve;
}

int64_t Framing(const EstimatorConfig& c, const RequestFeatures& f) {
  return c.framing_per_message * f.messages +
         c.framing_per_tool_call * (f.tool_calls + f.tool_definitions);
}

TokenEstimate StaticEstimate(const EstimatorConfig& c, const RequestFeatures& f) {
  TokenEstimate e;
  e.framing_tokens = Framing(c, f);
  e.image_tokens = ImageTokens(c, f);
  e.prompt_tokens =
      std::max<int64_t>(1, CeilDiv(static_cast<double>(RatioBytes(f)), c.static_bytes_per_token) +
                               e.framing_tokens + e.image_tokens + f.prompt_token_ids);
  e.routing_prompt_tokens = e.prompt_tokens;
  Finish(c, f, &e);
  return e;
}

int64_t LongestSequencePrompt(const EstimatorConfig& c, const RequestFeatures& f, int64_t whole) {
  if (f.endpoint != Endpoint::kCompletions || f.messages < 2) return whole;
  int64_t longest = whole;
  if (f.longest_prompt_ids > 0) {
    longest = f.longest_prompt_ids + c.framing_per_message;
  } else if (f.longest_prompt_bytes > 0 && f.text.bytes > 0) {
    // whole x bytes is exact in a double (a body is at most 16 MiB, so each is below 2^25 and
    // the product below 2^53), so a share that divides evenly comes out whole.
    longest = static_cast<int64_t>(std::ceil(static_cast<double>(whole) *
                                             static_cast<double>(f.longest_prompt_bytes) /
                                             static_cast<double>(f.text.bytes))) +
              c.framing_per_message;
  }
  return std::clamp<int64_t>(longest, 1, whole);
}

void Finish(const EstimatorConfig& c, const RequestFeatures& f, TokenEstimate* e) {
  e->routing_prompt_tokens = std::max(e->routing_prompt_tokens, e->prompt_tokens);
  e->output_reserve = OutputReserve(c, f);
  e->routing_budget = LongestSequencePrompt(c, f, e->routing_prompt_tokens) + e->output_reserve;
}

}  // namespace estimator_internal

namespace {
constexpr EstimatorMode kModes[] = {
    {"static", "fixed bytes/token over text + structured bytes, plus framing",
     &ei::MakeStaticEstimator},
    {"ema", "per-category bytes/token ratio learned by EMA (the paper's mode)",
     &ei::MakeEmaEstimator},
    {"linear", "per-category online least squares over byte-class counts (default)",
     &ei::MakeLinearEstimator},
};
}  // namespace

std::span<const EstimatorMode> EstimatorModes() { return kModes; }

Result<std::unique_ptr<TokenEstimator>> MakeEstimator(std::string_view mode,
                                                      const EstimatorConfig& config) {
  if (Status s = config.Validate(); !s.ok()) return s;
  std::string known;
  for (const EstimatorMode& m : kModes) {
    if (m.name == mode) return m.make(config);
    if (!known.empty()) known += ", ";
    known += m.name;
  }
  return NotFound("estimator mode \"" + std::string(mode) + "\": unknown (known: " + known + ")");
}

}  // namespace tokenpool
