#pragma once
// StandInTokenizer: a deterministic token counter that behaves like Llama 3's tokenizer across
// content types, for the mock server's usage.prompt_tokens. No vocabulary: it runs Llama 3's
// pre-tokenizer split (the regex in Meta's tokenizer.py) by hand, then estimates the BPE pieces
// of each pre-token from its class and length:
//   - contractions ('s 't 're 've 'm 'll 'd): 1 token;
//   - letter runs, with one optional leading non-letter (" word", "(word"): ASCII letters at
//     ~kAsciiLettersPerPiece per piece, one more per camelCase hump, non-ASCII letters at a
//     per-script rate (Han ~1 character per token, Cyrillic ~2.5, Georgian ~0.5, ...);
//   - digits in groups of at most 3: 1 token each (exactly as Llama 3);
//   - punctuation runs (with an optional leading space and trailing newlines): ~3 characters
//     per token, ~1.5 in TeX;
//   - whitespace runs and newline runs: 1 token each (Llama 3 has tokens for long runs).
// Chat requests add Llama 3's chat-template framing: 5 + 5 per message, contents trimmed.
// Rates and the error against true Llama 3 counts: docs/mock.md.
//
//   int64_t n = CountTokens("Hello, world!");        // 4
//
// Thread-safety: pure functions.

#include <cstdint>
#include <string_view>

namespace tokenpool::mock {

// Tokens of `text` (UTF-8; invalid bytes count as one symbol each), no BOS.
int64_t CountTokens(std::string_view text);

// Llama 3 chat-template framing: <|begin_of_text|> + per message <|start_header_id|>role
// <|end_header_id|>\n\n ... <|eot_id|> + the generation prompt's header: 5 + 5 per message.
inline constexpr int64_t kChatFramingTokens = 5;
inline constexpr int64_t kChatPerMessageTokens = 5;

// Tokens of one chat message's content as the template renders it: trimmed (Jinja's trim).
int64_t CountChatContentTokens(std::string_view content);

}  // namespace tokenpool::mock
