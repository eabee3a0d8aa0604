#pragma once
// Accuracy of the stand-in tokenizer against a token-count corpus (../shared/corpus/*.jsonl:
// one request per line with its true Llama 3 prompt_tokens_llama3): mean absolute percentage
// error overall and per category. Used by `tokenpool mock --tokenizer-eval FILE` and quoted in
// docs/mock.md.
//
// Thread-safety: pure function of the file's contents.

#include <cstdint>
#include <map>
#include <string>

#include "tokenpool/status.h"

namespace tokenpool::mock {

struct TokenizerEvalRow {
  int64_t requests = 0;
  double mape = 0;       // mean |ours - true| / true
  double mean_bias = 0;  // mean (ours - true) / true: > 0 counts too many
};

struct TokenizerEval {
  TokenizerEvalRow all;
  std::map<std::string, TokenizerEvalRow> by_category;
  std::string Format() const;  // a markdown table
};

// Errors: the file cannot be read, or a line (named by number) lacks body, category or
// prompt_tokens_llama3.
Result<TokenizerEval> EvaluateTokenizer(const std::string& corpus_path);

}  // namespace tokenpool::mock
