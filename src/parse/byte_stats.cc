#include "parse/byte_stats.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>

#if defined(__AVX2__)
// GCC 12's AVX-512 intrinsics (used by the run-time dispatched kernel) set off -Wuninitialized
// in the header itself (_mm512_undefined_epi32, GCC bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace tokenpool::parse {
namespace {

// Script by code-point block. Two tables indexed from the first two bytes of a sequence:
// 2-byte sequences in 16-code-point blocks (Armenian and Hebrew share the 0x580 block),
// 3-byte sequences in 64-code-point blocks. Built at compile time.
constexpr Script ScriptOfCodePoint(uint32_t cp) {
  if (cp < 0x250) return Script::kLatinExt;
  if (cp < 0x370) return Script::kSymbol2;
  if (cp < 0x400) return Script::kGreek;
  if (cp < 0x530) return Script::kCyrillic;
  if (cp < 0x590) return Script::kArmenian;
  if (cp < 0x600) return Script::kHebrew;
  if (cp < 0x900) return Script::kArabic;
  if (cp < 0x980) return Script::kDevanagari;
  if (cp < 0xE00) return Script::kIndic;
  if (cp < 0xF00) return Script::kThai;
  if (cp < 0x1000) return Script::kIndic;
  if (cp >= 0x1080 && cp < 0x1100) return Script::kGeorgian;
  if (cp >= 0x1100 && cp < 0x1200) return Script::kHangul;
  if (cp < 0x1E00) return Script::kOther3;
  if (cp < 0x1F00) return Script::kLatinExt;
  if (cp < 0x2000) return Script::kGreek;
  if (cp < 0x3000) return Script::kSymbol3;
  if (cp < 0x3040) return Script::kCjkPunct;
  if (cp < 0x3100) return Script::kKana;
  if (cp < 0x3400) return Script::kOther3;
  if (cp < 0xA000) return Script::kHan;
  if (cp < 0xAC00) return Script::kOther3;
  if (cp < 0xD800) return Script::kHangul;
  if (cp < 0xF900) return Script::kOther3;
  if (cp < 0x10000) return Script::kFullwidth;
  return Script::kFourByte;
}

constexpr std::array<Script, 128> kScript2 = [] {
  std::array<Script, 128> t{};
  for (uint32_t i = 0; i < 128; ++i) t[i] = ScriptOfCodePoint(i << 4);
  return t;
}();
constexpr std::array<Script, 1024> kScript3 = [] {
  std::array<Script, 1024> t{};
  for (uint32_t i = 0; i < 1024; ++i) t[i] = ScriptOfCodePoint(i << 6);
  return t;
}();

// One bit per byte of a 64-byte block, for each class the statistics need.
struct Masks {
  uint64_t letter = 0, upper = 0, digit = 0, space = 0, newline = 0, non_ascii = 0;
  uint64_t lead2 = 0, lead3 = 0, lead4 = 0, control = 0;
  // Lead bytes whose whole 4,096- or 256-code-point range is one Script, counted without a
  // table lookup: E4-E9 Han (U+4000-9FFF), EB-EC Hangul (U+B000-CFFF), D0-D3 Cyrillic
  // (U+0400-04FF). They are most of CJK and Cyrillic text.
  uint64_t han = 0, hangul = 0, cyrillic = 0;
  uint64_t quote = 0, bracket = 0, colon_comma = 0, code = 0, tex = 0, markup = 0;
};

bool IsLetter(unsigned char b) { return (b | 0x20) >= 'a' && (b | 0x20) <= 'z'; }

void SetBitsScalar(const unsigned char* p, int n, Masks* m) {
  for (int i = 0; i < n; ++i) {
    const unsigned char b = p[i];
    const uint64_t bit = uint64_t{1} << i;
    if (IsLetter(b)) m->letter |= bit;
    if (b >= 'A' && b <= 'Z') m->upper |= bit;
    if (b >= '0' && b <= '9') m->digit |= bit;
    if (b == ' ' || b == '\t') m->space |= bit;
    if (b == '\n' || b == '\r') m->newline |= bit;
    if (b >= 0x80) m->non_ascii |= bit;
    if (b >= 0xC0 && b <= 0xDF) m->lead2 |= bit;
    if (b >= 0xE0 && b <= 0xEF) m->lead3 |= bit;
    if (b >= 0xF0 && b <= 0xF7) m->lead4 |= bit;
    if (b >= 0xE4 && b <= 0xE9) m->han |= bit;
    if (b >= 0xEB && b <= 0xEC) m->hangul |= bit;
    if (b >= 0xD0 && b <= 0xD3) m->cyrillic |= bit;
    if ((b < 0x20 && b != '\t' && b != '\n' && b != '\r') || b == 0x7F) m->control |= bit;
    if (b == '"') m->quote |= bit;
    if (b == '{' || b == '}' || b == '[' || b == ']') m->bracket |= bit;
    if (b == ':' || b == ',') m->colon_comma |= bit;
    if (b == ';' || b == '=' || b == '(' || b == ')' || b == '<' || b == '>') m->code |= bit;
    if (b == '\\' || b == '$' || b == '^') m->tex |= bit;
    if (b == '#' || b == '*' || b == '`' || b == '|' || b == '-') m->markup |= bit;
  }
}

#if defined(__AVX2__)
// Unsigned lo <= v <= hi per byte: (v - lo) == min(v - lo, hi - lo).
inline __m256i InRange(__m256i v, unsigned char lo, unsigned char hi) {
  const __m256i x = _mm256_sub_epi8(v, _mm256_set1_epi8(static_cast<char>(lo)));
  return _mm256_cmpeq_epi8(_mm256_min_epu8(x, _mm256_set1_epi8(static_cast<char>(hi - lo))), x);
}
inline __m256i Eq(__m256i v, char c) { return _mm256_cmpeq_epi8(v, _mm256_set1_epi8(c)); }
inline __m256i Or(__m256i a, __m256i b) { return _mm256_or_si256(a, b); }

// Both 32-byte halves of a block through one classifier, into one 64-bit mask.
template <typename Classify>
[[gnu::always_inline]] inline uint64_t Mask64(__m256i lo, __m256i hi, Classify&& classify) {
  return static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_epi8(classify(lo)))) |
         static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_epi8(classify(hi)))) << 32;
}

[[gnu::always_inline]] inline void SetBits64(const unsigned char* p, Masks* m) {
  const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
  const auto fold = [](__m256i v) { return _mm256_or_si256(v, _mm256_set1_epi8(0x20)); };
  const auto space = [](__m256i v) { return Or(Eq(v, ' '), Eq(v, '\t')); };
  const auto newline = [](__m256i v) { return Or(Eq(v, '\n'), Eq(v, '\r')); };
  const auto top = [](__m256i v, int bits, int value) {
    const __m256i mask = _mm256_set1_epi8(static_cast<char>(0xFF << (8 - bits)));
    return Eq(_mm256_and_si256(v, mask), static_cast<char>(value));
  };
  m->letter = Mask64(a, b, [&](__m256i v) { return InRange(fold(v), 'a', 'z'); });
  m->upper = Mask64(a, b, [](__m256i v) { return InRange(v, 'A', 'Z'); });
  m->digit = Mask64(a, b, [](__m256i v) { return InRange(v, '0', '9'); });
  m->space = Mask64(a, b, space);
  m->newline = Mask64(a, b, newline);
  m->non_ascii = Mask64(a, b, [](__m256i v) { return v; });
  if (m->non_ascii != 0) {  // ASCII text skips the lead-byte masks
    m->lead2 = Mask64(a, b, [&](__m256i v) { return top(v, 3, 0xC0); });
    m->lead3 = Mask64(a, b, [&](__m256i v) { return top(v, 4, 0xE0); });
    m->lead4 = Mask64(a, b, [&](__m256i v) { return top(v, 5, 0xF0); });
    m->han = Mask64(a, b, [](__m256i v) { return InRange(v, 0xE4, 0xE9); });
    m->hangul = Mask64(a, b, [](__m256i v) { return InRange(v, 0xEB, 0xEC); });
    m->cyrillic = Mask64(a, b, [](__m256i v) { return InRange(v, 0xD0, 0xD3); });
  }
  m->control = Mask64(a, b, [&](__m256i v) {
    return Or(_mm256_andnot_si256(Or(space(v), newline(v)), InRange(v, 0, 0x1F)), Eq(v, 0x7F));
  });
  m->quote = Mask64(a, b, [](__m256i v) { return Eq(v, '"'); });
  m->bracket = Mask64(a, b, [&](__m256i v) {  // { } and, folded, [ ]
    return Or(Eq(fold(v), '{'), Eq(fold(v), '}'));
  });
  m->colon_comma = Mask64(a, b, [](__m256i v) { return Or(Eq(v, ':'), Eq(v, ',')); });
  m->code = Mask64(a, b, [](__m256i v) {
    return Or(Or(Eq(v, ';'), Eq(v, '=')), Or(InRange(v, '(', ')'), Or(Eq(v, '<'), Eq(v, '>'))));
  });
  m->tex = Mask64(a, b, [](__m256i v) { return Or(Or(Eq(v, '\\'), Eq(v, '$')), Eq(v, '^')); });
  m->markup = Mask64(a, b, [](__m256i v) {
    return Or(Or(Eq(v, '#'), Eq(v, '*')), Or(Or(Eq(v, '`'), Eq(v, '|')), Eq(v, '-')));
  });
}
#elif defined(__SSE2__)
// Unsigned lo <= v <= hi per byte, with SSE2's signed compare: flip the sign bit of v - lo.
inline __m128i InRange(__m128i v, unsigned char lo, unsigned char hi) {
  const __m128i shifted = _mm_xor_si128(_mm_sub_epi8(v, _mm_set1_epi8(static_cast<char>(lo))),
                                        _mm_set1_epi8(static_cast<char>(0x80)));
  return _mm_cmplt_epi8(shifted, _mm_set1_epi8(static_cast<char>((hi - lo + 1) ^ 0x80)));
}
inline __m128i Eq(__m128i v, char c) { return _mm_cmpeq_epi8(v, _mm_set1_epi8(c)); }
inline uint64_t Bits(__m128i m, int shift) {
  return static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(m))) << shift;
}

void SetBits64(const unsigned char* p, Masks* m) {
  for (int k = 0; k < 4; ++k) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * k));
    const int s = 16 * k;
    m->letter |= Bits(InRange(_mm_or_si128(v, _mm_set1_epi8(0x20)), 'a', 'z'), s);
    m->upper |= Bits(InRange(v, 'A', 'Z'), s);
    m->digit |= Bits(InRange(v, '0', '9'), s);
    const __m128i space = _mm_or_si128(Eq(v, ' '), Eq(v, '\t'));
    const __m128i newline = _mm_or_si128(Eq(v, '\n'), Eq(v, '\r'));
    m->space |= Bits(space, s);
    m->newline |= Bits(newline, s);
    m->non_ascii |= Bits(v, s);
    m->lead2 |= Bits(InRange(v, 0xC0, 0xDF), s);
    m->lead3 |= Bits(InRange(v, 0xE0, 0xEF), s);
    m->lead4 |= Bits(InRange(v, 0xF0, 0xF7), s);
    m->han |= Bits(InRange(v, 0xE4, 0xE9), s);
    m->hangul |= Bits(InRange(v, 0xEB, 0xEC), s);
    m->cyrillic |= Bits(InRange(v, 0xD0, 0xD3), s);
    const __m128i low = _mm_andnot_si128(_mm_or_si128(space, newline), InRange(v, 0, 0x1F));
    m->control |= Bits(_mm_or_si128(low, Eq(v, 0x7F)), s);
    m->quote |= Bits(Eq(v, '"'), s);
    // '[' ']' and '{' '}' differ from each other by 2 and from the other pair by 0x20.
    const __m128i br = _mm_or_si128(v, _mm_set1_epi8(0x20));
    m->bracket |= Bits(_mm_or_si128(Eq(br, '{'), Eq(br, '}')), s);
    m->colon_comma |= Bits(_mm_or_si128(Eq(v, ':'), Eq(v, ',')), s);
    m->code |=
        Bits(_mm_or_si128(_mm_or_si128(Eq(v, ';'), Eq(v, '=')),
                          _mm_or_si128(InRange(v, '(', ')'), _mm_or_si128(Eq(v, '<'), Eq(v, '>')))),
             s);
    m->tex |= Bits(_mm_or_si128(_mm_or_si128(Eq(v, '\\'), Eq(v, '$')), Eq(v, '^')), s);
    m->markup |= Bits(_mm_or_si128(_mm_or_si128(Eq(v, '#'), Eq(v, '*')),
                                   _mm_or_si128(_mm_or_si128(Eq(v, '`'), Eq(v, '|')), Eq(v, '-'))),
                      s);
  }
}
#else
void SetBits64(const unsigned char* p, Masks* m) { SetBitsScalar(p, 64, m); }
#endif

inline int64_t Pop(uint64_t x) { return std::popcount(x); }

// Run bookkeeping across blocks: the previous block's mask of each run-tracked class.
struct Carry {
  uint64_t letter = 0, digit = 0, space = 0, newline = 0, punct = 0, non_ascii = 0, lower = 0;
  uint64_t letter2 = 0, letter4 = 0;  // letters with 1 (3) letters before them
};

// x shifted by k bits towards higher positions, filled from the previous block's mask.
inline uint64_t Prev(uint64_t x, uint64_t before, int k) { return (x << k) | (before >> (64 - k)); }

[[gnu::always_inline]] inline void CountBlock(const unsigned char* p, const Masks& m,
                                              uint64_t valid, Carry* c, ByteStats* st) {
  const uint64_t punct =
      valid & ~(m.letter | m.digit | m.space | m.newline | m.non_ascii | m.control);
  const uint64_t lower = m.letter & ~m.upper;
  const uint64_t l = m.letter;
  const uint64_t l1 = Prev(l, c->letter, 1);
  st->letters += Pop(l);
  st->upper += Pop(m.upper);
  st->letter_runs += Pop(l & ~l1);
  // A letter with 3 (7) letters before it: the 4th (8th) or later letter of its word. By
  // doubling: two letters in a row, two such pairs 2 apart, two such quadruples 4 apart.
  const uint64_t ge2 = l & l1;
  const uint64_t ge4 = ge2 & Prev(ge2, c->letter2, 2);
  st->letters_ge4 += Pop(ge4);
  st->letters_ge8 += Pop(ge4 & Prev(ge4, c->letter4, 4));
  st->camel += Pop(m.upper & Prev(lower, c->lower, 1));
  st->digits += Pop(m.digit);
  st->digit_runs += Pop(m.digit & ~Prev(m.digit, c->digit, 1));
  st->spaces += Pop(m.space);
  st->space_runs += Pop(m.space & ~Prev(m.space, c->space, 1));
  st->newlines += Pop(m.newline);
  st->newline_runs += Pop(m.newline & ~Prev(m.newline, c->newline, 1));
  st->punct += Pop(punct);
  st->punct_runs += Pop(punct & ~Prev(punct, c->punct, 1));
  st->punct_ge3 += Pop(punct & Prev(punct, c->punct, 1) & Prev(punct, c->punct, 2));
  st->control += Pop(m.control);
  st->quotes += Pop(m.quote);
  st->brackets += Pop(m.bracket);
  st->colons_commas += Pop(m.colon_comma);
  st->code_punct += Pop(m.code);
  st->tex_punct += Pop(m.tex);
  st->markup_punct += Pop(m.markup);
  st->non_ascii += Pop(m.non_ascii);
  st->non_ascii_runs += Pop(m.non_ascii & ~Prev(m.non_ascii, c->non_ascii, 1));
  st->utf8_2 += Pop(m.lead2);
  st->utf8_3 += Pop(m.lead3);
  st->utf8_4 += Pop(m.lead4);
  st->script[static_cast<int>(Script::kFourByte)] += Pop(m.lead4);
  // Scripts: one table lookup per 2- or 3-byte character (none for ASCII text).
  st->script[static_cast<int>(Script::kHan)] += Pop(m.han);
  st->script[static_cast<int>(Script::kHangul)] += Pop(m.hangul);
  st->script[static_cast<int>(Script::kCyrillic)] += Pop(m.cyrillic);
  const uint64_t fast = m.han | m.hangul | m.cyrillic;
  for (uint64_t leads = (m.lead2 | m.lead3) & ~fast; leads != 0; leads &= leads - 1) {
    const int i = std::countr_zero(leads);
    ++st->script[static_cast<int>(ScriptOf(p[i], p[i + 1]))];
  }
  c->letter = l;
  c->letter2 = ge2;
  c->letter4 = ge4;
  c->lower = lower;
  c->digit = m.digit;
  c->space = m.space;
  c->newline = m.newline;
  c->punct = punct;
  c->non_ascii = m.non_ascii;
}

template <bool kScalar>
void CountInto(std::string_view text, ByteStats* st);

template <bool kScalar>
void Count(std::string_view text, ByteStats* out) {
  // Text of one block goes straight into *out: zeroing a local ByteStats (47 counters) and
  // adding it to *out cost more than that block's stores (a 28- and a 50-byte message: 1,280 ->
  // 1,040 instructions, callgrind of bench/gateway/run_gateway_profile.sh).
  if (text.size() <= 64) {
    CountInto<kScalar>(text, out);
    return;
  }
  // A local accumulator: the text is read through a char pointer, which may alias *out, so
  // counting into *out directly would store and reload every counter for every block.
  ByteStats local;
  ByteStats* st = &local;
  CountInto<kScalar>(text, st);
  out->Add(local);
}

template <bool kScalar>
void CountInto(std::string_view text, ByteStats* st) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  st->bytes += static_cast<int64_t>(n);
  Carry carry;
  size_t off = 0;
  // Full blocks only while a byte follows them, so that p[i + 1] above stays inside the text.
  for (; off + 64 < n; off += 64) {
    Masks m;
    if constexpr (kScalar) {
      SetBitsScalar(p + off, 64, &m);
    } else {
      SetBits64(p + off, &m);
    }
    CountBlock(p + off, m, ~uint64_t{0}, &carry, st);
  }
  const size_t rest = n - off;
  if (rest == 0) return;
  unsigned char tail[65] = {};
  std::memcpy(tail, p + off, rest);
  Masks m;
  const uint64_t valid = rest == 64 ? ~uint64_t{0} : (uint64_t{1} << rest) - 1;
  if constexpr (kScalar) {
    SetBitsScalar(tail, static_cast<int>(rest), &m);
  } else {
    SetBits64(tail, &m);  // the zero bytes past `rest` only set control bits, masked below
    m.control &= valid;
  }
  CountBlock(tail, m, valid, &carry, st);
}

#if defined(__AVX2__)
// ---- Statistics from raw JSON string content (CountJsonStringStats) ----
//
// The same statistics as CountInto on the unescaped text, computed on the escaped bytes. An
// escape's backslash is a hole: cleared from every class mask (its '\' is taken off tex_punct
// and `bytes` at the end); the escaped byte after it keeps its position and takes the class of
// the byte it stands for (\n \r: newline, \t: space, \b \f: control; \" \\ \/ are themselves).
// Runs must skip the holes. An escaped byte is never a letter, digit or non-ASCII byte, so a
// hole never lies inside a run of those classes (the byte after it ends the run): their shifted
// masks need no change. Space, newline and punctuation runs can continue across a hole ("\n\n"):
// for them the byte before position i is at i - 2 where i is an escaped byte (P1h below).
//
// The six count-only classes (quotes, brackets, ...) are counted in the vector domain: one
// byte counter per lane and class (compare results subtracted), summed with vpsadbw every 127
// blocks, instead of a mask, a popcount and a counter update per class and block.

// Unsigned lo <= v <= hi per byte in two instructions: v - lo + 0x80 compared as signed.
// simdjson's escape scanner over one 64-byte block: odd runs of backslashes (`bs`) escape the
// byte after them. `*carry` is whether the previous block ended in an escaping backslash; sets
// *escaped (bytes right after an escaping backslash) and *holes (the escaping backslashes).
// Shared by the AVX2 and AVX-512 kernels.
inline void ScanEscapes(uint64_t bs, uint64_t* carry, uint64_t* escaped, uint64_t* holes) {
  if (bs == 0) {
    *escaped = *carry;
    *holes = 0;
    *carry = 0;
    return;
  }
  constexpr uint64_t kOdd = 0xAAAAAAAAAAAAAAAAull;
  const uint64_t potential = bs & ~*carry;
  const uint64_t code = (((potential << 1) | kOdd) - potential) ^ kOdd;
  *escaped = code ^ (bs | *carry);
  *holes = code & bs;
  *carry = *holes >> 63;
}

inline __m256i Range2(__m256i v, int lo, int hi) {
  const __m256i s = _mm256_add_epi8(v, _mm256_set1_epi8(static_cast<char>(0x80 - lo)));
  return _mm256_cmpgt_epi8(_mm256_set1_epi8(static_cast<char>(hi - lo - 127)), s);
}
inline __m256i Sub(__m256i a, __m256i b) { return _mm256_sub_epi8(a, b); }
inline uint64_t MM(__m256i lo, __m256i hi) {
  return static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_epi8(lo))) |
         static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_epi8(hi))) << 32;
}

struct VecCounts {
  __m256i quote, bracket, colon, code, tex, markup;
};

struct JsonCarry {
  uint64_t non_ascii = 0;
  uint64_t escaped = 0;  // 1: the next block's first byte is escaped
};

// The masks of four consecutive blocks, one row per class.
enum GroupMask {
  kgLetter, kgUpper, kgDigit, kgSpace, kgNewline, kgPunct, kgControl, kgEscaped, kgHoles,
  kNumGroupMasks
};
struct alignas(32) Group {
  uint64_t m[kNumGroupMasks][4];
};

struct HalfClasses {
  __m256i letter, upper, digit, space, newline, control, backslash;
};

// Byte sets whose members differ in their low 4 bits are matched in two instructions:
// v == pshufb(table, v), the table holding each member at its low nibble (and a byte with
// another low nibble elsewhere; bytes >= 0x80 look up 0 and never match).
constexpr uint8_t kNoMatch = 0xFF;
struct NibbleSet {
  uint8_t t[16];
  constexpr explicit NibbleSet(const char* members) : t{} {
    for (int i = 0; i < 16; ++i) t[i] = static_cast<uint8_t>(i == 0xF ? 0x0E : 0x0F) ;
    for (const char* m = members; *m != '\0'; ++m) {
      t[static_cast<uint8_t>(*m) & 0xF] = static_cast<uint8_t>(*m);
    }
  }
};

// The constant vectors of the classifier, read from memory: as immediates GCC rebuilds each
// one per use (mov, vmovd, vpbroadcastb) once the 16 ymm registers are taken.
enum Const {
  kFold, kLetterAdd, kLetterLim, kUpperAdd, kUpperLim, kDigitAdd, kDigitLim, kLowAdd, kLowLim,
  kDel, kBackslash, kQuote, kSpaceSet, kNewlineSet, kBracketSet, kColonSet, kCodeSet, kTexSet,
  kMarkupSet, kEscapeSet, kEscB, kEscR, kNumConsts
};
struct alignas(32) ConstTable {
  uint8_t v[kNumConsts][32];
};
constexpr ConstTable MakeConsts() {
  ConstTable c{};
  const auto fill = [&c](int k, int value) {
    for (int i = 0; i < 32; ++i) c.v[k][i] = static_cast<uint8_t>(value);
  };
  const auto set = [&c](int k, const char* members) {
    const NibbleSet n(members);
    for (int i = 0; i < 32; ++i) c.v[k][i] = n.t[i & 15];
  };
  // Range2(lo, hi): add 0x80 - lo, then signed compare against hi - lo - 127.
  fill(kFold, 0x20);
  fill(kLetterAdd, 0x80 - 'a');
  fill(kLetterLim, ('z' - 'a' - 127) & 0xFF);
  fill(kUpperAdd, 0x80 - 'A');
  fill(kUpperLim, ('Z' - 'A' - 127) & 0xFF);
  fill(kDigitAdd, 0x80 - '0');
  fill(kDigitLim, ('9' - '0' - 127) & 0xFF);
  fill(kLowAdd, 0x80);
  fill(kLowLim, (0x1F - 127) & 0xFF);
  fill(kDel, 0x7F);
  fill(kBackslash, '\\');
  fill(kQuote, '"');
  set(kSpaceSet, " \t");
  set(kNewlineSet, "\n\r");
  set(kBracketSet, "{}");  // of v | 0x20: { } and [ ]
  set(kColonSet, ":,");
  set(kCodeSet, ";=()<>");
  set(kTexSet, "\\$^");
  set(kMarkupSet, "#*`|-");
  set(kEscapeSet, "\"\\/fnt");
  fill(kEscB, 'b');
  fill(kEscR, 'r');
  return c;
}
constexpr ConstTable kConsts = MakeConsts();

[[gnu::always_inline]] inline __m256i K(const __m256i* k, Const i) {
  return _mm256_load_si256(k + i);
}
[[gnu::always_inline]] inline __m256i InSet(__m256i v, __m256i set) {
  return _mm256_cmpeq_epi8(_mm256_shuffle_epi8(set, v), v);
}

[[gnu::always_inline]] inline HalfClasses ClassifyHalf(__m256i v, const __m256i* k) {
  const __m256i fold = _mm256_or_si256(v, K(k, kFold));
  HalfClasses r;
  r.letter = _mm256_cmpgt_epi8(K(k, kLetterLim), _mm256_add_epi8(fold, K(k, kLetterAdd)));
  r.upper = _mm256_cmpgt_epi8(K(k, kUpperLim), _mm256_add_epi8(v, K(k, kUpperAdd)));
  r.digit = _mm256_cmpgt_epi8(K(k, kDigitLim), _mm256_add_epi8(v, K(k, kDigitAdd)));
  r.space = InSet(v, K(k, kSpaceSet));
  r.newline = InSet(v, K(k, kNewlineSet));
  // Below 0x20 or 0x7F; tab, newline and carriage return are taken out from the masks.
  r.control = Or(_mm256_cmpgt_epi8(K(k, kLowLim), _mm256_add_epi8(v, K(k, kLowAdd))),
                 _mm256_cmpeq_epi8(v, K(k, kDel)));
  r.backslash = _mm256_cmpeq_epi8(v, K(k, kBackslash));
  return r;
}

// The count-only classes of 32 bytes into the byte counters.
[[gnu::always_inline]] inline void CountPunctHalf(__m256i v, const __m256i* k, VecCounts* vc) {
  const __m256i fold = _mm256_or_si256(v, K(k, kFold));
  vc->quote = Sub(vc->quote, _mm256_cmpeq_epi8(v, K(k, kQuote)));
  vc->bracket = Sub(vc->bracket, InSet(fold, K(k, kBracketSet)));
  vc->colon = Sub(vc->colon, InSet(v, K(k, kColonSet)));
  vc->code = Sub(vc->code, InSet(v, K(k, kCodeSet)));
  vc->tex = Sub(vc->tex, InSet(v, K(k, kTexSet)));
  vc->markup = Sub(vc->markup, InSet(v, K(k, kMarkupSet)));
}

inline int64_t SumBytes(__m256i v) {
  const __m256i s = _mm256_sad_epu8(v, _mm256_setzero_si256());
  const __m128i t = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  return _mm_cvtsi128_si64(t) + _mm_extract_epi64(t, 1);
}

void Flush(VecCounts* vc, ByteStats* st) {
  st->quotes += SumBytes(vc->quote);
  st->brackets += SumBytes(vc->bracket);
  st->colons_commas += SumBytes(vc->colon);
  st->code_punct += SumBytes(vc->code);
  st->tex_punct += SumBytes(vc->tex);
  st->markup_punct += SumBytes(vc->markup);
  const __m256i z = _mm256_setzero_si256();
  *vc = VecCounts{z, z, z, z, z, z};
}

// The byte an escaped byte stands for (simple escapes; others are rejected elsewhere).
unsigned char Unescaped(unsigned char b) {
  switch (b) {
    case 'b':
      return '\b';
    case 'f':
      return '\f';
    case 'n':
      return '\n';
    case 'r':
      return '\r';
    case 't':
      return '\t';
    default:
      return b;
  }
}

// The mask of the previous kept byte: x at i - 1, or at i - 2 where i is escaped (i - 1 is a
// hole). x must be zero at the holes.
inline uint64_t P1h(uint64_t x, uint64_t before, uint64_t escaped) {
  return Prev(x, before, 1) | (Prev(x, before, 2) & escaped);
}

// One 64-byte block at p (avail bytes readable from p); valid: the bytes of the string.
// Returns false on a \u or invalid escape.
// The masks of one 64-byte block at p (avail bytes readable from p) into lane j of *g, and
// its non-ASCII counts; valid: the bytes of the string. Returns false on a \u or invalid escape.
[[gnu::always_inline]] inline bool JsonBlock(const unsigned char* p, uint64_t valid, size_t avail,
                                             const __m256i* k, JsonCarry* c, ByteStats* st,
                                             int64_t* holes, Group* g, int j) {
  const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
  const HalfClasses x = ClassifyHalf(a, k);
  const HalfClasses y = ClassifyHalf(b, k);
  uint64_t letter = MM(x.letter, y.letter);
  const uint64_t upper = MM(x.upper, y.upper);
  const uint64_t digit = MM(x.digit, y.digit);
  uint64_t space = MM(x.space, y.space);
  uint64_t newline = MM(x.newline, y.newline);
  uint64_t control = MM(x.control, y.control) & valid & ~(space | newline);
  const uint64_t non_ascii = MM(a, b);
  const uint64_t bs = MM(x.backslash, y.backslash);
  uint64_t kept = valid;
  uint64_t escaped;     // E: bytes right after an escaping backslash
  uint64_t holes_mask;  // H: the escaping backslashes
  ScanEscapes(bs, &c->escaped, &escaped, &holes_mask);
  if ((escaped | holes_mask) != 0) {
    // A valid escaped byte is one of " \ / f n t (distinct low nibbles: one table), b or r.
    const auto valid_escape = [k](__m256i v) {
      return Or(InSet(v, K(k, kEscapeSet)),
                Or(_mm256_cmpeq_epi8(v, K(k, kEscB)), _mm256_cmpeq_epi8(v, K(k, kEscR))));
    };
    if ((escaped & ~MM(valid_escape(a), valid_escape(b))) != 0) return false;
    // An escaped letter is then b f n r t, told apart by bits 1, 3 and 4 of the byte: n (0x6E,
    // bit 3) and r (0x72, bits 4 and 1) stand for newlines, t (0x74, bit 4 alone) for a tab,
    // b (0x62) and f (0x66, neither bit 3 nor 4) for control bytes.
    const uint64_t el = escaped & letter;
    const uint64_t bit1 = MM(_mm256_slli_epi16(a, 6), _mm256_slli_epi16(b, 6));
    const uint64_t bit3 = MM(_mm256_slli_epi16(a, 4), _mm256_slli_epi16(b, 4));
    const uint64_t bit4 = MM(_mm256_slli_epi16(a, 3), _mm256_slli_epi16(b, 3));
    newline |= el & (bit3 | (bit4 & bit1));
    space |= el & bit4 & ~bit1;
    control |= el & ~(bit3 | bit4);
    letter &= ~escaped;
    kept &= ~holes_mask;
    *holes += Pop(holes_mask);
  }
  const uint64_t punct = kept & ~(letter | digit | space | newline | non_ascii | control);
  g->m[kgLetter][j] = letter;
  g->m[kgUpper][j] = upper;
  g->m[kgDigit][j] = digit;
  g->m[kgSpace][j] = space;
  g->m[kgNewline][j] = newline;
  g->m[kgPunct][j] = punct;
  g->m[kgControl][j] = control;
  g->m[kgEscaped][j] = escaped;
  g->m[kgHoles][j] = holes_mask;
  if (non_ascii != 0) {  // ASCII blocks skip the non-ASCII counts
    st->non_ascii += Pop(non_ascii);
    st->non_ascii_runs += Pop(non_ascii & ~Prev(non_ascii, c->non_ascii, 1));
    const auto top = [](__m256i v, int bits, int value) {
      const __m256i mask = _mm256_set1_epi8(static_cast<char>(0xFF << (8 - bits)));
      return Eq(_mm256_and_si256(v, mask), static_cast<char>(value));
    };
    const uint64_t lead2 = MM(top(a, 3, 0xC0), top(b, 3, 0xC0));
    const uint64_t lead3 = MM(top(a, 4, 0xE0), top(b, 4, 0xE0));
    const uint64_t lead4 = MM(top(a, 5, 0xF0), top(b, 5, 0xF0));
    const uint64_t han = MM(Range2(a, 0xE4, 0xE9), Range2(b, 0xE4, 0xE9));
    const uint64_t hangul = MM(Range2(a, 0xEB, 0xEC), Range2(b, 0xEB, 0xEC));
    const uint64_t cyrillic = MM(Range2(a, 0xD0, 0xD3), Range2(b, 0xD0, 0xD3));
    st->utf8_2 += Pop(lead2);
    st->utf8_3 += Pop(lead3);
    st->utf8_4 += Pop(lead4);
    st->script[static_cast<int>(Script::kFourByte)] += Pop(lead4);
    st->script[static_cast<int>(Script::kHan)] += Pop(han);
    st->script[static_cast<int>(Script::kHangul)] += Pop(hangul);
    st->script[static_cast<int>(Script::kCyrillic)] += Pop(cyrillic);
    for (uint64_t leads = (lead2 | lead3) & ~(han | hangul | cyrillic); leads != 0;
         leads &= leads - 1) {
      const auto i = static_cast<size_t>(std::countr_zero(leads));
      unsigned char next = p[i + 1];
      // Only in invalid UTF-8: a lead byte before an escape sees the byte it stands for.
      if (next == '\\') next = i + 2 < avail ? Unescaped(p[i + 2]) : 0;
      ++st->script[static_cast<int>(ScriptOf(p[i], next))];
    }
  }
  c->non_ascii = non_ascii;
  return true;
}

// The run features of four consecutive blocks at once, one block per 64-bit lane: the shifts
// of JsonBlock's masks become vpsllq/vpsrlq, the bits shifted in from the block before come
// from the lane before (vpermq; lane 0 from the previous group), and the popcounts are nibble
// lookups summed with vpsadbw into per-counter lanes.
enum Counter {
  kcLetters, kcUpper, kcLetterRuns, kcGe4, kcGe8, kcCamel, kcDigits, kcDigitRuns, kcSpaces,
  kcSpaceRuns, kcNewlines, kcNewlineRuns, kcPunct, kcPunctRuns, kcPunctGe3, kcControl,
  kNumCounters
};

struct LaneCarry {  // the previous group's masks rotated by one lane (lane 0: its last block)
  __m256i letter, ge2, ge4, lower, digit, space, newline, punct, punct1;
};

// Per lane: x of the block before.
[[gnu::always_inline]] inline __m256i PrevLanes(__m256i x, __m256i* carry) {
  const __m256i r = _mm256_permute4x64_epi64(x, 0x93);  // lanes [3, 0, 1, 2]
  const __m256i out = _mm256_blend_epi32(r, *carry, 0x03);
  *carry = r;
  return out;
}
// Per lane: x shifted by k bits towards higher positions, filled from the block before.
template <int kShift>
[[gnu::always_inline]] inline __m256i VPrev(__m256i x, __m256i before) {
  return _mm256_or_si256(_mm256_slli_epi64(x, kShift), _mm256_srli_epi64(before, 64 - kShift));
}
// Per lane: the previous kept byte (see P1h).
[[gnu::always_inline]] inline __m256i VP1h(__m256i x, __m256i before, __m256i escaped) {
  return _mm256_or_si256(VPrev<1>(x, before), _mm256_and_si256(VPrev<2>(x, before), escaped));
}

struct LaneCounts {
  __m256i lut, low4;
  __m256i acc[kNumCounters];
  [[gnu::always_inline]] inline void Add(Counter i, __m256i x) {
    const __m256i lo = _mm256_and_si256(x, low4);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low4);
    const __m256i bytes =
        _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
    acc[i] = _mm256_add_epi64(acc[i], _mm256_sad_epu8(bytes, _mm256_setzero_si256()));
  }
  int64_t Sum(Counter i) const {
    const __m128i t =
        _mm_add_epi64(_mm256_castsi256_si128(acc[i]), _mm256_extracti128_si256(acc[i], 1));
    return _mm_cvtsi128_si64(t) + _mm_extract_epi64(t, 1);
  }
};

[[gnu::always_inline]] inline void GroupRuns(const Group& g, LaneCarry* c, LaneCounts* n) {
  const auto load = [&g](int i) {
    return _mm256_load_si256(reinterpret_cast<const __m256i*>(g.m[i]));
  };
  const __m256i l = load(kgLetter);
  const __m256i upper = load(kgUpper);
  const __m256i escaped = load(kgEscaped);
  const __m256i lower = _mm256_andnot_si256(upper, l);
  const __m256i l1 = VPrev<1>(l, PrevLanes(l, &c->letter));
  n->Add(kcLetters, l);
  n->Add(kcUpper, upper);
  n->Add(kcLetterRuns, _mm256_andnot_si256(l1, l));
  // A letter with 3 (7) letters before it, by doubling, as in CountBlock.
  const __m256i ge2 = _mm256_and_si256(l, l1);
  const __m256i ge4 = _mm256_and_si256(ge2, VPrev<2>(ge2, PrevLanes(ge2, &c->ge2)));
  n->Add(kcGe4, ge4);
  n->Add(kcGe8, _mm256_and_si256(ge4, VPrev<4>(ge4, PrevLanes(ge4, &c->ge4))));
  n->Add(kcCamel, _mm256_and_si256(upper, VPrev<1>(lower, PrevLanes(lower, &c->lower))));
  const __m256i digit = load(kgDigit);
  n->Add(kcDigits, digit);
  n->Add(kcDigitRuns,
         _mm256_andnot_si256(VPrev<1>(digit, PrevLanes(digit, &c->digit)), digit));
  const __m256i space = load(kgSpace);
  n->Add(kcSpaces, space);
  n->Add(kcSpaceRuns,
         _mm256_andnot_si256(VP1h(space, PrevLanes(space, &c->space), escaped), space));
  const __m256i newline = load(kgNewline);
  n->Add(kcNewlines, newline);
  n->Add(kcNewlineRuns, _mm256_andnot_si256(
                            VP1h(newline, PrevLanes(newline, &c->newline), escaped), newline));
  const __m256i punct = load(kgPunct);
  const __m256i p1 = VP1h(punct, PrevLanes(punct, &c->punct), escaped);
  const __m256i y1 = _mm256_andnot_si256(load(kgHoles), p1);
  n->Add(kcPunct, punct);
  n->Add(kcPunctRuns, _mm256_andnot_si256(p1, punct));
  n->Add(kcPunctGe3, _mm256_and_si256(_mm256_and_si256(punct, p1),
                                      VP1h(y1, PrevLanes(y1, &c->punct1), escaped)));
  n->Add(kcControl, load(kgControl));
}


// The count-only classes of the raw bytes, a pass of its own: with the masks and runs of
// JsonBlock in the same loop, the 16 ymm registers do not hold the counters and GCC spills them.
// A zero byte is in none of these classes, so the tail is read from a zero-padded copy.
[[gnu::noinline]] void CountPunct(const unsigned char* p, size_t n, const __m256i* k, ByteStats* st) {
  const __m256i z = _mm256_setzero_si256();
  VecCounts vc{z, z, z, z, z, z};
  size_t off = 0;
  while (off + 64 <= n) {
    const size_t end = std::min(n & ~size_t{63}, off + 127 * 64);
    for (; off < end; off += 64) {  // at most 2 per lane and block: flushed every 127 blocks
      CountPunctHalf(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + off)), k, &vc);
      CountPunctHalf(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + off + 32)), k, &vc);
    }
    Flush(&vc, st);
  }
  if (off < n) {
    alignas(32) unsigned char tail[64] = {};
    std::memcpy(tail, p + off, n - off);
    CountPunctHalf(_mm256_load_si256(reinterpret_cast<const __m256i*>(tail)), k, &vc);
    CountPunctHalf(_mm256_load_si256(reinterpret_cast<const __m256i*>(tail + 32)), k, &vc);
    Flush(&vc, st);
  }
}

// GCC's SLP vectorizer packs the popcounts of a block into vectors to add them to adjacent
// counters (vpinsrd, vpunpcklqdq, vpaddq, store, reload): slower than the scalar adds.
#if defined(__GNUC__) && !defined(__clang__)
[[gnu::optimize("no-tree-slp-vectorize")]]
#endif
bool CountJson(std::string_view raw, ByteStats* out) {
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  const size_t n = raw.size();
  ByteStats local;
  JsonCarry carry;
  int64_t holes = 0;
  // Opaque to the optimizer, so that the constants stay memory operands (see Const).
  const __m256i* k = reinterpret_cast<const __m256i*>(&kConsts);
  asm("" : "+r"(k));
  Group g;
  const __m256i z = _mm256_setzero_si256();
  LaneCarry lanes{z, z, z, z, z, z, z, z, z};
  LaneCounts counts;
  counts.lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2,
                                2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  counts.low4 = _mm256_set1_epi8(0x0F);
  for (__m256i& a : counts.acc) a = z;
  int j = 0;
  size_t off = 0;
  for (; off + 64 < n; off += 64) {
    if (!JsonBlock(p + off, ~uint64_t{0}, n - off, k, &carry, &local, &holes, &g, j)) {
      return false;
    }
    if (++j == 4) {
      GroupRuns(g, &lanes, &counts);
      j = 0;
    }
  }
  const size_t rest = n - off;
  if (rest != 0) {
    alignas(32) unsigned char tail[96] = {};
    std::memcpy(tail, p + off, rest);
    const uint64_t valid = rest == 64 ? ~uint64_t{0} : (uint64_t{1} << rest) - 1;
    if (!JsonBlock(tail, valid, sizeof(tail), k, &carry, &local, &holes, &g, j)) return false;
    ++j;
  }
  if (j != 0) {  // a partial group: the lanes after the last block count nothing
    for (auto& row : g.m) {
      for (int i = j; i < 4; ++i) row[i] = 0;
    }
    GroupRuns(g, &lanes, &counts);
  }
  local.letters += counts.Sum(kcLetters);
  local.upper += counts.Sum(kcUpper);
  local.letter_runs += counts.Sum(kcLetterRuns);
  local.letters_ge4 += counts.Sum(kcGe4);
  local.letters_ge8 += counts.Sum(kcGe8);
  local.camel += counts.Sum(kcCamel);
  local.digits += counts.Sum(kcDigits);
  local.digit_runs += counts.Sum(kcDigitRuns);
  local.spaces += counts.Sum(kcSpaces);
  local.space_runs += counts.Sum(kcSpaceRuns);
  local.newlines += counts.Sum(kcNewlines);
  local.newline_runs += counts.Sum(kcNewlineRuns);
  local.punct += counts.Sum(kcPunct);
  local.punct_runs += counts.Sum(kcPunctRuns);
  local.punct_ge3 += counts.Sum(kcPunctGe3);
  local.control += counts.Sum(kcControl);
  if (carry.escaped != 0) return false;  // a lone backslash at the end
  CountPunct(p, n, k, &local);
  local.bytes = static_cast<int64_t>(n) - holes;
  local.tex_punct -= holes;
  out->Add(local);
  return true;
}
// ---- The same with AVX-512 (run-time dispatch) ----
//
// Where the CPU has AVX-512 BW, VBMI2 and VPOPCNTDQ (Ice Lake and later, Zen 4 and later), the
// library built for Haswell still uses them, in the functions compiled for that target below:
// one compare per class and 64-byte block straight into a 64-bit mask (no movemask halves), the
// count-only classes as masked byte increments, and the run features of eight blocks at once
// (one block per lane of a zmm: valignq brings the block before, vpshldq shifts with the bits
// of the block before, vpopcntq counts). Same statistics, same bits, by the same formulas.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi2,avx512vpopcntdq,bmi,bmi2,popcnt")
#define TOKENPOOL_HAVE_AVX512_KERNEL 1

struct alignas(64) Group8 {
  uint64_t m[kNumGroupMasks][8];
};

struct Lane8Carry {  // the previous group's masks (lane 7: its last block)
  __m512i letter, ge2, ge4, lower, digit, space, newline, punct, punct1;
};

struct Json512 {
  // Constants (32 zmm registers: GCC keeps them).
  __m512i fold, a, A, zero_c, del, bsl, space_set, newline_set, bracket_set, colon_set, code_set,
      tex_set, markup_set, esc_set, esc_b, esc_r, quote, one;
  // Count-only classes: one byte counter per lane, at most 1 per block: flushed every 255.
  __m512i quote_n, bracket_n, colon_n, code_n, tex_n, markup_n;
  int pending = 0;
  __m512i acc[kNumCounters];
  Lane8Carry lanes;
  Group8 g;
  uint64_t escaped_carry = 0;
  uint64_t non_ascii_carry = 0;
  int64_t holes = 0;
};

inline __m512i Row(int i) {  // a constant row, twice (no _mm512_broadcast_i64x4: as Sum512)
  alignas(64) uint8_t t[64];
  std::memcpy(t, kConsts.v[i], 32);
  std::memcpy(t + 32, kConsts.v[i], 32);
  return _mm512_load_si512(t);
}
inline uint64_t InSet512(__m512i v, __m512i set) {
  return _mm512_cmpeq_epi8_mask(_mm512_shuffle_epi8(set, v), v);
}
// (Not _mm512_reduce_add_epi64: GCC 12 warns on its header, -Wuninitialized.)
inline int64_t Sum512(__m512i v) {
  alignas(64) int64_t t[8];
  _mm512_store_si512(t, v);
  return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}
inline int64_t SumBytes512(__m512i v) { return Sum512(_mm512_sad_epu8(v, _mm512_setzero_si512())); }

void Flush512(Json512* s, ByteStats* st) {
  st->quotes += SumBytes512(s->quote_n);
  st->brackets += SumBytes512(s->bracket_n);
  st->colons_commas += SumBytes512(s->colon_n);
  st->code_punct += SumBytes512(s->code_n);
  st->tex_punct += SumBytes512(s->tex_n);
  st->markup_punct += SumBytes512(s->markup_n);
  const __m512i z = _mm512_setzero_si512();
  s->quote_n = s->bracket_n = s->colon_n = s->code_n = s->tex_n = s->markup_n = z;
  s->pending = 0;
}

// One 64-byte block into lane j of s->g; as JsonBlock.
[[gnu::always_inline]] inline bool Block512(const unsigned char* p, uint64_t valid, size_t avail,
                                            Json512* s, ByteStats* st, int j) {
  const __m512i v = _mm512_loadu_si512(p);
  const __m512i fold = _mm512_or_si512(v, s->fold);
  uint64_t letter = _mm512_cmple_epu8_mask(_mm512_sub_epi8(fold, s->a), _mm512_set1_epi8(25));
  const uint64_t upper =
      _mm512_cmple_epu8_mask(_mm512_sub_epi8(v, s->A), _mm512_set1_epi8(25));
  const uint64_t digit =
      _mm512_cmple_epu8_mask(_mm512_sub_epi8(v, s->zero_c), _mm512_set1_epi8(9));
  uint64_t space = InSet512(v, s->space_set);
  uint64_t newline = InSet512(v, s->newline_set);
  uint64_t control = (_mm512_cmplt_epu8_mask(v, s->fold) | _mm512_cmpeq_epi8_mask(v, s->del)) &
                     valid & ~(space | newline);
  const uint64_t non_ascii = _mm512_movepi8_mask(v);
  const uint64_t bs = _mm512_cmpeq_epi8_mask(v, s->bsl);
  // Count-only classes (zero bytes past the end are in none).
  s->quote_n = _mm512_mask_add_epi8(s->quote_n, _mm512_cmpeq_epi8_mask(v, s->quote), s->quote_n,
                                    s->one);
  s->bracket_n = _mm512_mask_add_epi8(s->bracket_n, InSet512(fold, s->bracket_set), s->bracket_n,
                                      s->one);
  s->colon_n = _mm512_mask_add_epi8(s->colon_n, InSet512(v, s->colon_set), s->colon_n, s->one);
  s->code_n = _mm512_mask_add_epi8(s->code_n, InSet512(v, s->code_set), s->code_n, s->one);
  s->tex_n = _mm512_mask_add_epi8(s->tex_n, InSet512(v, s->tex_set), s->tex_n, s->one);
  s->markup_n =
      _mm512_mask_add_epi8(s->markup_n, InSet512(v, s->markup_set), s->markup_n, s->one);
  if (++s->pending == 255) Flush512(s, st);
  uint64_t kept = valid;
  uint64_t escaped;
  uint64_t holes_mask;
  ScanEscapes(bs, &s->escaped_carry, &escaped, &holes_mask);
  if ((escaped | holes_mask) != 0) {
    const uint64_t ok = InSet512(v, s->esc_set) | _mm512_cmpeq_epi8_mask(v, s->esc_b) |
                        _mm512_cmpeq_epi8_mask(v, s->esc_r);
    if ((escaped & ~ok) != 0) return false;
    const uint64_t el = escaped & letter;
    const uint64_t bit1 = _mm512_test_epi8_mask(v, _mm512_set1_epi8(0x02));
    const uint64_t bit3 = _mm512_test_epi8_mask(v, _mm512_set1_epi8(0x08));
    const uint64_t bit4 = _mm512_test_epi8_mask(v, _mm512_set1_epi8(0x10));
    newline |= el & (bit3 | (bit4 & bit1));
    space |= el & bit4 & ~bit1;
    control |= el & ~(bit3 | bit4);
    letter &= ~escaped;
    kept &= ~holes_mask;
    s->holes += Pop(holes_mask);
  }
  const uint64_t punct = kept & ~(letter | digit | space | newline | non_ascii | control);
  Group8& g = s->g;
  g.m[kgLetter][j] = letter;
  g.m[kgUpper][j] = upper;
  g.m[kgDigit][j] = digit;
  g.m[kgSpace][j] = space;
  g.m[kgNewline][j] = newline;
  g.m[kgPunct][j] = punct;
  g.m[kgControl][j] = control;
  g.m[kgEscaped][j] = escaped;
  g.m[kgHoles][j] = holes_mask;
  if (non_ascii != 0) {
    st->non_ascii += Pop(non_ascii);
    st->non_ascii_runs += Pop(non_ascii & ~Prev(non_ascii, s->non_ascii_carry, 1));
    const auto top = [](__m512i x, int mask, int value) {
      return _mm512_cmpeq_epi8_mask(_mm512_and_si512(x, _mm512_set1_epi8(static_cast<char>(mask))),
                                     _mm512_set1_epi8(static_cast<char>(value)));
    };
    const auto range = [](__m512i x, int lo, int hi) {
      return _mm512_cmple_epu8_mask(_mm512_sub_epi8(x, _mm512_set1_epi8(static_cast<char>(lo))),
                                    _mm512_set1_epi8(static_cast<char>(hi - lo)));
    };
    const uint64_t lead2 = top(v, 0xE0, 0xC0);
    const uint64_t lead3 = top(v, 0xF0, 0xE0);
    const uint64_t lead4 = top(v, 0xF8, 0xF0);
    const uint64_t han = range(v, 0xE4, 0xE9);
    const uint64_t hangul = range(v, 0xEB, 0xEC);
    const uint64_t cyrillic = range(v, 0xD0, 0xD3);
    st->utf8_2 += Pop(lead2);
    st->utf8_3 += Pop(lead3);
    st->utf8_4 += Pop(lead4);
    st->script[static_cast<int>(Script::kFourByte)] += Pop(lead4);
    st->script[static_cast<int>(Script::kHan)] += Pop(han);
    st->script[static_cast<int>(Script::kHangul)] += Pop(hangul);
    st->script[static_cast<int>(Script::kCyrillic)] += Pop(cyrillic);
    // Lead bytes E3 (U+3000-3FFF: CJK punctuation, kana, Han) and EF (U+F000-FFFF: fullwidth
    // forms) by the low 6 bits of the next byte, as ScriptOf's table: common in Japanese and
    // Chinese text. A lead before a backslash (invalid UTF-8) is left to the loop below.
    const __m512i next = _mm512_loadu_si512(p + 1);
    const uint64_t plain_next = ~_mm512_cmpeq_epi8_mask(next, s->bsl);
    const uint64_t e3 = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(static_cast<char>(0xE3))) &
                        plain_next;
    const uint64_t ef = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(static_cast<char>(0xEF))) &
                        plain_next;
    if ((e3 | ef) != 0) {
      const __m512i low6 = _mm512_and_si512(next, _mm512_set1_epi8(0x3F));
      const uint64_t is0 = _mm512_cmpeq_epi8_mask(low6, _mm512_setzero_si512());
      const uint64_t le3 = _mm512_cmple_epu8_mask(low6, _mm512_set1_epi8(0x03));
      const uint64_t le15 = _mm512_cmple_epu8_mask(low6, _mm512_set1_epi8(0x0F));
      const uint64_t lt36 = _mm512_cmplt_epu8_mask(low6, _mm512_set1_epi8(0x24));
      st->script[static_cast<int>(Script::kCjkPunct)] += Pop(e3 & is0);   // U+3000-303F
      st->script[static_cast<int>(Script::kKana)] += Pop(e3 & le3 & ~is0);  // U+3040-30FF
      st->script[static_cast<int>(Script::kOther3)] +=
          Pop(e3 & le15 & ~le3) + Pop(ef & lt36);                            // U+3100-33FF, U+F000-F8FF
      st->script[static_cast<int>(Script::kHan)] += Pop(e3 & ~le15);        // U+3400-3FFF
      st->script[static_cast<int>(Script::kFullwidth)] += Pop(ef & ~lt36);  // U+F900-FFFF
    }
    for (uint64_t leads = (lead2 | lead3) & ~(han | hangul | cyrillic | e3 | ef); leads != 0;
         leads &= leads - 1) {
      const auto i = static_cast<size_t>(std::countr_zero(leads));
      unsigned char next_byte = p[i + 1];
      if (next_byte == '\\') next_byte = i + 2 < avail ? Unescaped(p[i + 2]) : 0;
      ++st->script[static_cast<int>(ScriptOf(p[i], next_byte))];
    }
  }
  s->non_ascii_carry = non_ascii;
  return true;
}

// Per lane: x of the block before (lane 0: the previous group's lane 7).
[[gnu::always_inline]] inline __m512i Before8(__m512i x, __m512i* carry) {
  const __m512i out = _mm512_alignr_epi64(x, *carry, 7);
  *carry = x;
  return out;
}
template <int kShift>
[[gnu::always_inline]] inline __m512i Prev8(__m512i x, __m512i before) {
  return _mm512_shldi_epi64(x, before, kShift);
}
[[gnu::always_inline]] inline __m512i P1h8(__m512i x, __m512i before, __m512i escaped) {
  // Prev1 | (Prev2 & escaped)
  return _mm512_ternarylogic_epi64(Prev8<1>(x, before), Prev8<2>(x, before), escaped, 0xF8);
}

[[gnu::always_inline]] inline void Group8Runs(Json512* s) {
  const auto load = [s](int i) { return _mm512_load_si512(s->g.m[i]); };
  const auto add = [s](Counter i, __m512i x) {
    s->acc[i] = _mm512_add_epi64(s->acc[i], _mm512_popcnt_epi64(x));
  };
  Lane8Carry* c = &s->lanes;
  const __m512i l = load(kgLetter);
  const __m512i upper = load(kgUpper);
  const __m512i escaped = load(kgEscaped);
  const __m512i lower = _mm512_andnot_si512(upper, l);
  const __m512i l1 = Prev8<1>(l, Before8(l, &c->letter));
  add(kcLetters, l);
  add(kcUpper, upper);
  add(kcLetterRuns, _mm512_andnot_si512(l1, l));
  const __m512i ge2 = _mm512_and_si512(l, l1);
  const __m512i ge4 = _mm512_and_si512(ge2, Prev8<2>(ge2, Before8(ge2, &c->ge2)));
  add(kcGe4, ge4);
  add(kcGe8, _mm512_and_si512(ge4, Prev8<4>(ge4, Before8(ge4, &c->ge4))));
  add(kcCamel, _mm512_and_si512(upper, Prev8<1>(lower, Before8(lower, &c->lower))));
  const __m512i digit = load(kgDigit);
  add(kcDigits, digit);
  add(kcDigitRuns, _mm512_andnot_si512(Prev8<1>(digit, Before8(digit, &c->digit)), digit));
  const __m512i space = load(kgSpace);
  add(kcSpaces, space);
  add(kcSpaceRuns,
      _mm512_andnot_si512(P1h8(space, Before8(space, &c->space), escaped), space));
  const __m512i newline = load(kgNewline);
  add(kcNewlines, newline);
  add(kcNewlineRuns,
      _mm512_andnot_si512(P1h8(newline, Before8(newline, &c->newline), escaped), newline));
  const __m512i punct = load(kgPunct);
  const __m512i p1 = P1h8(punct, Before8(punct, &c->punct), escaped);
  const __m512i y1 = _mm512_andnot_si512(load(kgHoles), p1);
  add(kcPunct, punct);
  add(kcPunctRuns, _mm512_andnot_si512(p1, punct));
  add(kcPunctGe3, _mm512_and_si512(_mm512_and_si512(punct, p1),
                                   P1h8(y1, Before8(y1, &c->punct1), escaped)));
  add(kcControl, load(kgControl));
}

bool CountJson512(std::string_view raw, ByteStats* out) {
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  const size_t n = raw.size();
  ByteStats local;
  Json512 s;
  s.fold = _mm512_set1_epi8(0x20);
  s.a = _mm512_set1_epi8('a');
  s.A = _mm512_set1_epi8('A');
  s.zero_c = _mm512_set1_epi8('0');
  s.del = _mm512_set1_epi8(0x7F);
  s.bsl = _mm512_set1_epi8('\\');
  s.quote = _mm512_set1_epi8('"');
  s.one = _mm512_set1_epi8(1);
  s.space_set = Row(kSpaceSet);
  s.newline_set = Row(kNewlineSet);
  s.bracket_set = Row(kBracketSet);
  s.colon_set = Row(kColonSet);
  s.code_set = Row(kCodeSet);
  s.tex_set = Row(kTexSet);
  s.markup_set = Row(kMarkupSet);
  s.esc_set = Row(kEscapeSet);
  s.esc_b = _mm512_set1_epi8('b');
  s.esc_r = _mm512_set1_epi8('r');
  const __m512i z = _mm512_setzero_si512();
  s.quote_n = s.bracket_n = s.colon_n = s.code_n = s.tex_n = s.markup_n = z;
  for (__m512i& a : s.acc) a = z;
  s.lanes = Lane8Carry{z, z, z, z, z, z, z, z, z};
  int j = 0;
  size_t off = 0;
  for (; off + 64 < n; off += 64) {
    if (!Block512(p + off, ~uint64_t{0}, n - off, &s, &local, j)) return false;
    if (++j == 8) {
      Group8Runs(&s);
      j = 0;
    }
  }
  const size_t rest = n - off;
  if (rest != 0) {
    alignas(64) unsigned char tail[128] = {};
    std::memcpy(tail, p + off, rest);
    const uint64_t valid = rest == 64 ? ~uint64_t{0} : (uint64_t{1} << rest) - 1;
    if (!Block512(tail, valid, sizeof(tail), &s, &local, j)) return false;
    ++j;
  }
  if (s.escaped_carry != 0) return false;  // a lone backslash at the end
  if (j != 0) {
    for (auto& row : s.g.m) {
      for (int i = j; i < 8; ++i) row[i] = 0;
    }
    Group8Runs(&s);
  }
  Flush512(&s, &local);
  local.letters += Sum512(s.acc[kcLetters]);
  local.upper += Sum512(s.acc[kcUpper]);
  local.letter_runs += Sum512(s.acc[kcLetterRuns]);
  local.letters_ge4 += Sum512(s.acc[kcGe4]);
  local.letters_ge8 += Sum512(s.acc[kcGe8]);
  local.camel += Sum512(s.acc[kcCamel]);
  local.digits += Sum512(s.acc[kcDigits]);
  local.digit_runs += Sum512(s.acc[kcDigitRuns]);
  local.spaces += Sum512(s.acc[kcSpaces]);
  local.space_runs += Sum512(s.acc[kcSpaceRuns]);
  local.newlines += Sum512(s.acc[kcNewlines]);
  local.newline_runs += Sum512(s.acc[kcNewlineRuns]);
  local.punct += Sum512(s.acc[kcPunct]);
  local.punct_runs += Sum512(s.acc[kcPunctRuns]);
  local.punct_ge3 += Sum512(s.acc[kcPunctGe3]);
  local.control += Sum512(s.acc[kcControl]);
  local.bytes = static_cast<int64_t>(n) - s.holes;
  local.tex_punct -= s.holes;
  out->Add(local);
  return true;
}

#pragma GCC pop_options
#endif  // __GNUC__

bool HaveAvx512Kernel() {
#if defined(TOKENPOOL_HAVE_AVX512_KERNEL)
  static const bool have = __builtin_cpu_supports("avx512f") &&
                           __builtin_cpu_supports("avx512bw") &&
                           __builtin_cpu_supports("avx512vl") &&
                           __builtin_cpu_supports("avx512dq") &&
                           __builtin_cpu_supports("avx512vbmi2") &&
                           __builtin_cpu_supports("avx512vpopcntdq");
  return have;
#else
  return false;
#endif
}
#endif  // __AVX2__

}  // namespace

Script ScriptOf(unsigned char lead, unsigned char next) {
  if (lead < 0xE0) return kScript2[((lead & 0x1Fu) << 2) | ((next >> 4) & 3u)];
  if (lead < 0xF0) return kScript3[((lead & 0x0Fu) << 6) | (next & 0x3Fu)];
  return Script::kFourByte;
}

void CountByteStats(std::string_view text, ByteStats* stats) { Count<false>(text, stats); }

void CountByteStatsReference(std::string_view text, ByteStats* stats) { Count<true>(text, stats); }

bool CountJsonStringStats(std::string_view raw, ByteStats* stats) {
  return CountJsonStringStatsWith(JsonKernel::kBest, raw, stats);
}

bool CountJsonStringStatsWith(JsonKernel kernel, std::string_view raw, ByteStats* stats) {
#if defined(__AVX2__)
  // A short string without a backslash is its own text: CountByteStats counts it for less
  // than the JSON kernels' set-up. request_parser_bench --benchmark_filter=unescaped, two runs
  // on a noisy 2-vCPU AMD EPYC VM (AVX-512): 32 bytes 76 ns against 129-159 ns (the AVX2
  // kernel), 64 bytes 115-139 against 154-169, 128 bytes 116-136 against 135-141, 256 bytes
  // 197-249 against 226-244, 512 bytes 315-409 against 288-358: worth it below ~200 bytes (a
  // system prompt, a short turn).
  constexpr size_t kShortText = 200;
  if (kernel == JsonKernel::kBest && raw.size() < kShortText &&
      std::memchr(raw.data(), '\\', raw.size()) == nullptr) {
    CountByteStats(raw, stats);
    return true;
  }
#if defined(TOKENPOOL_HAVE_AVX512_KERNEL)
  // The AVX-512 kernel's set-up (its constants, eight blocks a group) costs more than a short
  // string: with escapes, under the same bound the AVX2 kernel is faster on this AMD EPYC
  // (request_parser_bench --benchmark_filter='CountJsonStringStatsShort/(best|avx2)/', two
  // runs: 32 bytes 127-134 ns against 202-227, 128 bytes 145-151 against 192-208; 256 bytes
  // 246-251 against 225-233, 1,024 bytes 495-644 against 416-456).
  if (kernel == JsonKernel::kBest && HaveAvx512Kernel() && raw.size() >= kShortText) {
    return CountJson512(raw, stats);
  }
#endif
  (void)kernel;
  return CountJson(raw, stats);
#else
  (void)kernel;
  (void)raw;
  (void)stats;
  return false;
#endif
}

}  // namespace tokenpool::parse
