#pragma once
// RequestFeatures: what the token-budget estimator knows about one OpenAI request, read from
// its body by the request parser (src/parse/, simdjson) and consumed by the pure core
// (tokenpool/estimator.h). Plain data: no parser types, no pointers into the body.
//
//   RequestFeatures f;                       // reuse one per thread: Parse() overwrites it
//   Status s = parser.Parse(body, &f);
//   TokenEstimate e = estimator.Estimate(f, Categorize(f, header_category));
//
// Byte statistics (ByteStats) are counted over the content strings as unescaped UTF-8: a
// `\u00e9` escape in the body counts as the two bytes of "é", so a body serialized with
// non-ASCII escaped (Python's json.dumps default) gives the same statistics as one with raw
// UTF-8 (JavaScript's JSON.stringify).
//
// Thread-safety: plain value.

#include <array>
#include <cstdint>
#include <string>

namespace tokenpool {

// Script classes of non-ASCII characters, chosen because tokenizers treat them very
// differently (Llama 3 on the open corpus: Cyrillic ~4.9 bytes/token, Georgian ~1.5, Armenian
// ~1.2, Tamil ~2.0, Hindi ~4.6, Han ~3.5). Decided by the UTF-8 lead byte (and for 3-byte
// sequences the second byte), i.e. 64-code-point blocks: no Unicode tables needed.
enum class Script : uint8_t {
  kLatinExt = 0,  // U+0080-024F, U+1E00-1EFF (accented Latin, Vietnamese)
  kSymbol2,       // U+0250-036F (IPA, modifiers, combining marks)
  kGreek,         // U+0370-03FF, U+1F00-1FFF
  kCyrillic,      // U+0400-052F
  kArmenian,      // U+0530-058F
  kHebrew,        // U+0590-05FF
  kArabic,        // U+0600-07FF (Arabic, Syriac, Thaana, N'Ko)
  kDevanagari,    // U+0900-097F
  kIndic,         // U+0980-0DFF (Bengali ... Sinhala), U+0F00-0FFF (Tibetan)
  kThai,          // U+0E00-0EFF (Thai, Lao)
  kGeorgian,      // U+10A0-10FF
  kOther3,        // other 3-byte characters (Myanmar, Ethiopic, Hangul Jamo, Yi, private use...)
  kSymbol3,       // U+2000-2FFF (punctuation, arrows, math, box drawing)
  kCjkPunct,      // U+3000-303F
  kKana,          // U+3040-30FF
  kHan,           // U+3400-9FFF (CJK ideographs)
  kHangul,        // U+AC00-D7FF
  kFullwidth,     // U+F900-FFFF (CJK compatibility, fullwidth forms)
  kFourByte,      // U+10000 and above (emoji, rare ideographs)
  kCount,
};
inline constexpr int kNumScripts = static_cast<int>(Script::kCount);

// Counts over content text (unescaped UTF-8 bytes). "Runs" are maximal sequences of one class;
// "_ge<k>" counts are hinge sums, sum over runs of max(0, run length - k + 1), i.e. the letters
// that sit at position k or later of their word: BPE splits long words into more tokens.
struct ByteStats {
  int64_t bytes = 0;
  int64_t letters = 0;      // ASCII A-Z a-z
  int64_t upper = 0;        // ASCII A-Z
  int64_t letter_runs = 0;  // ASCII words
  int64_t letters_ge4 = 0;
  int64_t letters_ge8 = 0;
  int64_t camel = 0;  // an upper-case letter right after a lower-case one
  int64_t digits = 0;
  int64_t digit_runs = 0;
  int64_t spaces = 0;  // ' ' and '\t'
  int64_t space_runs = 0;
  int64_t newlines = 0;  // '\n' and '\r'
  int64_t newline_runs = 0;
  int64_t punct = 0;  // other printable ASCII
  int64_t punct_runs = 0;
  int64_t punct_ge3 = 0;
  int64_t control = 0;        // other ASCII below 0x20, and 0x7F
  int64_t quotes = 0;         // '"'
  int64_t brackets = 0;       // {}[]
  int64_t colons_commas = 0;  // ':' ','
  int64_t code_punct = 0;     // ;=()<>
  int64_t tex_punct = 0;      // \ $ ^ (not _: common in code identifiers)
  int64_t markup_punct = 0;   // # * ` | -
  int64_t non_ascii = 0;      // bytes >= 0x80
  int64_t non_ascii_runs = 0;
  int64_t utf8_2 = 0;  // characters encoded in 2 bytes
  int64_t utf8_3 = 0;
  int64_t utf8_4 = 0;
  std::array<int64_t, kNumScripts> script{};  // characters per Script

  void Add(const ByteStats& o) {
    bytes += o.bytes;
    letters += o.letters;
    upper += o.upper;
    letter_runs += o.letter_runs;
    letters_ge4 += o.letters_ge4;
    letters_ge8 += o.letters_ge8;
    camel += o.camel;
    digits += o.digits;
    digit_runs += o.digit_runs;
    spaces += o.spaces;
    space_runs += o.space_runs;
    newlines += o.newlines;
    newline_runs += o.newline_runs;
    punct += o.punct;
    punct_runs += o.punct_runs;
    punct_ge3 += o.punct_ge3;
    control += o.control;
    quotes += o.quotes;
    brackets += o.brackets;
    colons_commas += o.colons_commas;
    code_punct += o.code_punct;
    tex_punct += o.tex_punct;
    markup_punct += o.markup_punct;
    non_ascii += o.non_ascii;
    non_ascii_runs += o.non_ascii_runs;
    utf8_2 += o.utf8_2;
    utf8_3 += o.utf8_3;
    utf8_4 += o.utf8_4;
    for (int i = 0; i < kNumScripts; ++i) script[i] += o.script[i];
  }
  friend bool operator==(const ByteStats&, const ByteStats&) = default;
};

enum class Endpoint : uint8_t { kChatCompletions, kCompletions };

// Bounds of a request's counts, refused past them by the parser (400, naming the field):
// max_tokens / max_completion_tokens at most 10^9 (past any model's context, and far enough
// inside int64 that prompt + output never overflows), n / best_of at most 128 (OpenAI's limit).
inline constexpr int64_t kMaxRequestTokens = 1'000'000'000;
inline constexpr int64_t kMaxChoices = 128;

struct RequestFeatures {
  Endpoint endpoint = Endpoint::kChatCompletions;
  std::string model;  // assigned in place: keeps its capacity across Parse() calls
  bool stream = false;
  bool include_usage = false;     // stream_options.include_usage
  bool has_stream_options = false;  // stream_options is an object (of any members)
  bool has_max_tokens = false;    // max_completion_tokens or max_tokens present
  int64_t max_output_tokens = 0;  // max_completion_tokens, else max_tokens (<= kMaxRequestTokens)
  int64_t sequences = 1;          // choices generated: max(n, best_of) in [1, kMaxChoices],
                                  // times the prompts of a completions batch

  int64_t text_bytes = 0;        // content strings and text parts (== text.bytes)
  int64_t structured_bytes = 0;  // JSON text of tools/functions, tool_calls, response_format
  int64_t messages = 0;          // chat messages, or prompts of a completions request
  int64_t tool_calls = 0;        // entries of assistant tool_calls (and function_call)
  int64_t tool_definitions = 0;  // entries of tools / functions
  int64_t images = 0;            // image parts (image_url, input_image)
  int64_t prompt_token_ids = 0;  // completions prompt given as token ids: exact tokens
  // A completions batch (messages > 1 prompts, each its own sequences): its longest prompt, in
  // text bytes (a batch of strings) or token ids (a batch of id lists); 0 otherwise.
  int64_t longest_prompt_bytes = 0;
  int64_t longest_prompt_ids = 0;
  ByteStats text;                // over all text content

  // Back to defaults; keeps model's capacity (no allocation when a RequestFeatures is reused).
  void Clear() {
    std::string keep = std::move(model);
    keep.clear();
    *this = RequestFeatures();
    model = std::move(keep);
  }
};

}  // namespace tokenpool
