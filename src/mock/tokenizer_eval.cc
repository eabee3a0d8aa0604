#include "mock/tokenizer_eval.h"

#include <boost/json.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>

#include "mock/prompt.h"

namespace tokenpool::mock {
namespace {

struct Acc {
  int64_t n = 0;
  double abs_sum = 0;
  double sum = 0;
  void Add(double rel) {
    ++n;
    abs_sum += std::fabs(rel);
    sum += rel;
  }
  TokenizerEvalRow Row() const {
    TokenizerEvalRow r;
    r.requests = n;
    r.mape = n > 0 ? abs_sum / static_cast<double>(n) : 0;
    r.mean_bias = n > 0 ? sum / static_cast<double>(n) : 0;
    return r;
  }
};

}  // namespace

std::string TokenizerEval::Format() const {
  std::string out = "| category | requests | MAPE | mean bias |\n|---|---:|---:|---:|\n";
  char line[160];
  auto add = [&](const std::string& name, const TokenizerEvalRow& r) {
    std::snprintf(line, sizeof line, "| %s | %lld | %.1f%% | %+.1f%% |\n", name.c_str(),
                  static_cast<long long>(r.requests), r.mape * 100, r.mean_bias * 100);
    out += line;
  };
  for (const auto& [name, row] : by_category) add(name, row);
  add("**all**", all);
  return out;
}

Result<TokenizerEval> EvaluateTokenizer(const std::string& corpus_path) {
  std::ifstream in(corpus_path);
  if (!in) return NotFound(corpus_path + ": cannot open");
  PromptReader reader;
  Acc all;
  std::map<std::string, Acc> by;
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    const std::string where = corpus_path + ":" + std::to_string(line_no);
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(line, ec);
    if (ec || !v.is_object()) return InvalidArgument(where + ": not a JSON object");
    const auto& o = v.as_object();
    const auto* body = o.if_contains("body");
    const auto* cat = o.if_contains("category");
    const auto* truth = o.if_contains("prompt_tokens_llama3");
    if (body == nullptr || cat == nullptr || !cat->is_string() || truth == nullptr ||
        !truth->is_int64()) {
      return InvalidArgument(where + ": needs body, category and prompt_tokens_llama3");
    }
    Result<PromptInfo> p = reader.Read(boost::json::serialize(*body), Endpoint::kChatCompletions);
    if (!p.ok()) return InvalidArgument(where + ": " + p.status().message());
    const double t = static_cast<double>(truth->as_int64());
    const double rel = (static_cast<double>(p->prompt_tokens) - t) / t;
    all.Add(rel);
    by[std::string(cat->as_string())].Add(rel);
  }
  if (all.n == 0) return InvalidArgument(corpus_path + ": no requests");
  TokenizerEval e;
  e.all = all.Row();
  for (const auto& [name, acc] : by) e.by_category[name] = acc.Row();
  return e;
}

}  // namespace tokenpool::mock
