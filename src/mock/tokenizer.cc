#include "mock/tokenizer.h"

#include <cmath>
#include <cstddef>

namespace tokenpool::mock {
namespace {

enum class Cls : uint8_t { kLetter, kDigit, kSpace, kNewline, kOther };

struct Char {
  uint32_t cp = 0;
  uint8_t len = 1;
  Cls cls = Cls::kOther;
  // Token pieces one character of a letter run costs (fractional; the run is rounded up).
  double weight = 0;
};

// Letters-per-piece rates, fitted on the open corpus (docs/mock.md): ASCII words up to
// kAsciiFreeLetters letters are one piece (Llama 3's 128K vocabulary holds most such words with
// their leading space), then one more piece per kAsciiLettersPerPiece letters. Fitted values
// moved the corpus MAPE from 14.5% (6, 4, punctuation 2 per piece) to 7.5%, and the per-script
// weights below and the foreign-word rule to 6.7%.
constexpr double kAsciiFreeLetters = 8;
constexpr double kAsciiLettersPerPiece = 5;
// Runs with TeX's braces, ^, $ or backslash (and no quote, which marks JSON) merge less: "}{",
// "^{", "$$" split more often than "://". 1.5 took LaTeX from -10.5% to -4.5% bias.
constexpr double kTexPunctCharsPerPiece = 1.5;
// Words with accented Latin letters (German, Polish, French, Turkish...) have fewer whole-word
// entries in the vocabulary: their ASCII letters split sooner.
constexpr double kForeignFreeLetters = 4;
constexpr double kForeignLettersPerPiece = 3.5;
constexpr double kCamelHumpPieces = 0.5;  // getElementById: humps often start a new piece
constexpr double kPunctPrefixPieces = 0;  // "(word", ".get", "_id": mostly merged with the word
// A backslash before letters (\frac in LaTeX, \n in code) is a piece of its own.
constexpr double kBackslashPrefixPieces = 1;
constexpr double kPunctCharsPerPiece = 3;  // "://", "\",\"", "});" are common merges

// Pieces per character of non-ASCII letters, by block, fitted per language on the open corpus
// (Llama 3 bytes/token there: Cyrillic ~4.9, Georgian ~1.5, Armenian ~1.2, Tamil ~2.0, Hindi
// ~4.6, Han ~3.5).
double NonAsciiWeight(uint32_t cp) {
  if (cp < 0x250) return 1.0;   // accented Latin
  if (cp < 0x370) return 1.0;   // IPA, combining marks
  if (cp < 0x400) return 0.46;  // Greek
  if (cp < 0x530) return 0.36;  // Cyrillic
  if (cp < 0x590) return 1.6;   // Armenian
  if (cp < 0x600) return 0.7;   // Hebrew
  if (cp < 0x800) return 0.4;   // Arabic, Syriac, Thaana
  if (cp < 0x900) return 1.0;
  if (cp < 0x980) return 0.57;                   // Devanagari
  if (cp < 0xE00) return 1.4;                    // Bengali ... Sinhala
  if (cp < 0xF00) return 0.52;                   // Thai, Lao
  if (cp < 0x1000) return 1.4;                   // Tibetan
  if (cp >= 0x10A0 && cp < 0x1100) return 1.9;   // Georgian
  if (cp >= 0x1E00 && cp < 0x2000) return 0.6;   // Latin extended additional, Greek extended
  if (cp >= 0x3040 && cp < 0x3100) return 0.8;   // kana
  if (cp >= 0x3400 && cp < 0xA000) return 0.8;   // Han
  if (cp >= 0xAC00 && cp < 0xD800) return 0.75;  // Hangul
  if (cp >= 0x20000) return 1.5;                 // rare ideographs: byte pieces
  return 1.0;
}

Cls NonAsciiClass(uint32_t cp) {
  if (cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
      cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000) {
    return Cls::kSpace;
  }
  if (cp < 0xC0) return Cls::kOther;  // Latin-1 punctuation and symbols
  if (cp == 0xD7 || cp == 0xF7) return Cls::kOther;
  if (cp >= 0x2000 && cp < 0x2C00) return Cls::kOther;  // punctuation, arrows, math, boxes
  if (cp >= 0x2E00 && cp < 0x2E80) return Cls::kOther;
  if (cp >= 0x3000 && cp < 0x3040) return Cls::kOther;  // CJK punctuation
  if (cp >= 0xE000 && cp < 0xF900) return Cls::kOther;  // private use
  if (cp >= 0xFE30 && cp < 0xFE70) return Cls::kOther;
  if (cp >= 0xFF10 && cp <= 0xFF19) return Cls::kDigit;  // fullwidth digits
  if ((cp >= 0xFF00 && cp < 0xFF10) || (cp >= 0xFF1A && cp <= 0xFF20) ||
      (cp >= 0xFF3B && cp <= 0xFF40) || (cp >= 0xFF5B && cp <= 0xFF65)) {
    return Cls::kOther;
  }
  if (cp >= 0x1F000 && cp < 0x20000) return Cls::kOther;  // emoji and pictographs
  return Cls::kLetter;
}

Char Decode(std::string_view s, size_t i) {
  Char c;
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    c.cp = b0;
    if ((b0 | 0x20) >= 'a' && (b0 | 0x20) <= 'z') {
      c.cls = Cls::kLetter;
    } else if (b0 >= '0' && b0 <= '9') {
      c.cls = Cls::kDigit;
    } else if (b0 == '\n' || b0 == '\r') {
      c.cls = Cls::kNewline;
    } else if (b0 == ' ' || b0 == '\t' || b0 == '\v' || b0 == '\f') {
      c.cls = Cls::kSpace;
    }
    return c;
  }
  size_t len = b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC0 ? 2 : 1;
  if (len == 1 || i + len > s.size()) return c;  // stray byte: a symbol of its own
  uint32_t cp = len == 2 ? (b0 & 0x1Fu) : len == 3 ? (b0 & 0x0Fu) : (b0 & 0x07u);
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return c;
    cp = (cp << 6) | (b & 0x3Fu);
  }
  c.cp = cp;
  c.len = static_cast<uint8_t>(len);
  c.cls = NonAsciiClass(cp);
  if (c.cls == Cls::kLetter) c.weight = NonAsciiWeight(cp);
  return c;
}

bool IsLower(uint32_t cp) { return cp >= 'a' && cp <= 'z'; }
bool IsUpper(uint32_t cp) { return cp >= 'A' && cp <= 'Z'; }

int64_t Pieces(double cost) {
  const int64_t n = static_cast<int64_t>(std::ceil(cost - 1e-9));
  return n < 1 ? 1 : n;
}

// Consumes a letter run at i; returns its cost in pieces (fractional) and advances i.
double LetterRun(std::string_view s, size_t* i) {
  int64_t ascii = 0;
  double other = 0;
  int64_t humps = 0;
  bool latin_ext = false;  // an accented Latin letter: a non-English word, split more finely
  uint32_t prev = 0;
  while (*i < s.size()) {
    Char c = Decode(s, *i);
    if (c.cls != Cls::kLetter) break;
    if (c.cp < 0x80) {
      ++ascii;
      if (IsUpper(c.cp) && IsLower(prev)) ++humps;
    } else {
      other += c.weight;
      latin_ext = latin_ext || c.cp < 0x250 || (c.cp >= 0x1E00 && c.cp < 0x1F00);
    }
    prev = c.cp;
    *i += c.len;
  }
  double cost = other + kCamelHumpPieces * static_cast<double>(humps);
  if (ascii > 0) {
    const double free = latin_ext ? kForeignFreeLetters : kAsciiFreeLetters;
    const double per = latin_ext ? kForeignLettersPerPiece : kAsciiLettersPerPiece;
    const double extra = static_cast<double>(ascii) - free;
    cost += 1 + (extra > 0 ? extra / per : 0);
  }
  return cost;
}

bool ContractionAt(std::string_view s, size_t i, size_t* len) {
  if (s[i] != '\'' || i + 1 >= s.size()) return false;
  const char a = static_cast<char>(s[i + 1] | 0x20);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') {
    *len = 2;
    return true;
  }
  if (i + 2 < s.size()) {
    const char b = static_cast<char>(s[i + 2] | 0x20);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
      *len = 3;
      return true;
    }
  }
  return false;
}

}  // namespace

int64_t CountTokens(std::string_view s) {
  int64_t tokens = 0;
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    size_t clen = 0;
    if (ContractionAt(s, i, &clen)) {  // (?i:'s|'t|'re|'ve|'m|'ll|'d)
      ++tokens;
      i += clen;
      continue;
    }
    const Char c = Decode(s, i);
    if (c.cls == Cls::kLetter) {  // \p{L}+
      tokens += Pieces(LetterRun(s, &i));
      continue;
    }
    const size_t next = i + c.len;
    if (c.cls != Cls::kNewline && c.cls != Cls::kDigit && next < n &&
        Decode(s, next).cls == Cls::kLetter) {  // [^\r\n\p{L}\p{N}]\p{L}+
      size_t j = next;
      double cost = LetterRun(s, &j);
      if (c.cls == Cls::kOther) {
        cost += c.cp == '\\' ? kBackslashPrefixPieces : kPunctPrefixPieces;
      }
      tokens += Pieces(cost);
      i = j;
      continue;
    }
    if (c.cls == Cls::kDigit) {  // \p{N}{1,3}
      size_t j = i;
      for (int k = 0; k < 3 && j < n; ++k) {
        const Char d = Decode(s, j);
        if (d.cls != Cls::kDigit) break;
        j += d.len;
      }
      ++tokens;
      i = j;
      continue;
    }
    const bool space_then_other = c.cp == ' ' && next < n && Decode(s, next).cls == Cls::kOther;
    if (c.cls == Cls::kOther || space_then_other) {  // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
      size_t j = space_then_other ? next : i;
      int64_t chars = 0;
      bool tex = false, quote = false;
      while (j < n) {
        const Char d = Decode(s, j);
        if (d.cls != Cls::kOther) break;
        chars += d.cp >= 0x10000 ? 2 : 1;  // emoji: byte-level pieces
        tex = tex || d.cp == '{' || d.cp == '}' || d.cp == '^' || d.cp == '$' || d.cp == '\\';
        quote = quote || d.cp == '"';  // JSON's "}, and ": { merge well
        j += d.len;
      }
      while (j < n && (s[j] == '\n' || s[j] == '\r')) ++j;
      tokens += Pieces(static_cast<double>(chars) /
                       (tex && !quote ? kTexPunctCharsPerPiece : kPunctCharsPerPiece));
      i = j;
      continue;
    }
    // Whitespace: \s*[\r\n]+ | \s+(?!\S) | \s+
    size_t j = i;
    size_t last_newline_end = 0;
    size_t last_start = i;
    while (j < n) {
      const Char d = Decode(s, j);
      if (d.cls != Cls::kSpace && d.cls != Cls::kNewline) break;
      last_start = j;
      j += d.len;
      if (d.cls == Cls::kNewline) last_newline_end = j;
    }
    ++tokens;
    if (last_newline_end > 0) {
      i = last_newline_end;
    } else if (j < n && last_start > i) {
      i = last_start;  // the last space joins the next word or punctuation
    } else {
      i = j;
    }
  }
  return tokens;
}

int64_t CountChatContentTokens(std::string_view content) {
  auto is_space = [](char ch) {
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
  };
  size_t b = 0, e = content.size();
  while (b < e && is_space(content[b])) ++b;
  while (e > b && is_space(content[e - 1])) --e;
  return CountTokens(content.substr(b, e - b));
}

}  // namespace tokenpool::mock
