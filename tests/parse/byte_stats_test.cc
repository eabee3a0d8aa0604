#include "parse/byte_stats.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace tokenpool::parse {
namespace {

enum Cls { kLetter, kDigit, kSpace, kNewline, kPunct, kControl, kNonAscii };

Cls ClassOf(unsigned char b) {
  if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')) return kLetter;
  if (b >= '0' && b <= '9') return kDigit;
  if (b == ' ' || b == '\t') return kSpace;
  if (b == '\n' || b == '\r') return kNewline;
  if (b >= 0x80) return kNonAscii;
  if (b < 0x20 || b == 0x7F) return kControl;
  return kPunct;
}

// A byte-at-a-time implementation written independently of the bit-mask one.
ByteStats Naive(const std::string& s) {
  ByteStats st;
  st.bytes = static_cast<int64_t>(s.size());
  int run = 0;
  int prev = -1;
  bool prev_lower = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    const Cls c = ClassOf(b);
    run = (c == prev) ? run + 1 : 1;
    const bool start = run == 1;
    switch (c) {
      case kLetter:
        ++st.letters;
        st.letter_runs += start;
        st.letters_ge4 += run >= 4;
        st.letters_ge8 += run >= 8;
        if (b >= 'A' && b <= 'Z') {
          ++st.upper;
          st.camel += prev_lower;
        }
        break;
      case kDigit:
        ++st.digits;
        st.digit_runs += start;
        break;
      case kSpace:
        ++st.spaces;
        st.space_runs += start;
        break;
      case kNewline:
        ++st.newlines;
        st.newline_runs += start;
        break;
      case kPunct:
        ++st.punct;
        st.punct_runs += start;
        st.punct_ge3 += run >= 3;
        break;
      case kControl:
        ++st.control;
        break;
      case kNonAscii:
        ++st.non_ascii;
        st.non_ascii_runs += start;
        break;
    }
    prev_lower = b >= 'a' && b <= 'z';
    st.quotes += b == '"';
    st.brackets += b == '{' || b == '}' || b == '[' || b == ']';
    st.colons_commas += b == ':' || b == ',';
    st.code_punct += b == ';' || b == '=' || b == '(' || b == ')' || b == '<' || b == '>';
    st.tex_punct += b == '\\' || b == '$' || b == '^';
    st.markup_punct += b == '#' || b == '*' || b == '`' || b == '|' || b == '-';
    if (b >= 0xC0 && b <= 0xDF) ++st.utf8_2;
    if (b >= 0xE0 && b <= 0xEF) ++st.utf8_3;
    if (b >= 0xF0 && b <= 0xF7) ++st.utf8_4;
    if (b >= 0xC0 && b <= 0xEF) {
      const auto next = i + 1 < s.size() ? static_cast<unsigned char>(s[i + 1]) : 0x80;
      ++st.script[static_cast<int>(ScriptOf(b, next))];
    }
    if (b >= 0xF0 && b <= 0xF7) ++st.script[static_cast<int>(Script::kFourByte)];
    prev = c;
  }
  return st;
}

// Deterministic text mixing every class, with runs across 64-byte block boundaries.
std::string RandomText(uint64_t seed, size_t n) {
  static const char* const kPieces[] = {"word ",
                                        "CamelCase",
                                        "x",
                                        "12345",
                                        "   ",
                                        "\n\n",
                                        "\t",
                                        ";=()",
                                        "{\"k\":[1,2]}",
                                        "\\frac{a}{b}$^_",
                                        "# * ` | -",
                                        "\xC3\xA9",
                                        "\xD0\x9F\xD1\x80",
                                        "\xE4\xB8\xAD",
                                        "\xE1\x83\x90",
                                        "\xF0\x9F\x98\x80",
                                        "\x01",
                                        "\x7F",
                                        "supercalifragilistic",
                                        "!!!???"};
  std::string s;
  uint64_t x = seed;
  while (s.size() < n) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    s += kPieces[(x >> 33) % (sizeof(kPieces) / sizeof(kPieces[0]))];
  }
  return s;
}

TEST(ByteStatsTest, MatchesNaiveReferenceAtEveryLength) {
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    for (size_t n : {0, 1, 5, 63, 64, 65, 127, 128, 129, 300, 1000}) {
      const std::string s = RandomText(seed, n);
      ByteStats fast, scalar;
      CountByteStats(s, &fast);
      CountByteStatsReference(s, &scalar);
      const ByteStats naive = Naive(s);
      ASSERT_EQ(fast, naive) << "seed " << seed << " size " << s.size();
      ASSERT_EQ(scalar, naive) << "seed " << seed << " size " << s.size();
    }
  }
}

TEST(ByteStatsTest, AccumulatesAcrossStringsWithoutJoiningRuns) {
  ByteStats st;
  CountByteStats("abc", &st);
  CountByteStats("def", &st);
  EXPECT_EQ(st.letters, 6);
  EXPECT_EQ(st.letter_runs, 2);
  EXPECT_EQ(st.bytes, 6);
}

TEST(ByteStatsTest, ScriptsOfSampleCharacters) {
  EXPECT_EQ(ScriptOf(0xD5, 0xA1), Script::kArmenian);    // U+0561
  EXPECT_EQ(ScriptOf(0xD7, 0x90), Script::kHebrew);      // U+05D0
  EXPECT_EQ(ScriptOf(0xD8, 0xA7), Script::kArabic);      // U+0627
  EXPECT_EQ(ScriptOf(0xCE, 0xB1), Script::kGreek);       // U+03B1
  EXPECT_EQ(ScriptOf(0xE0, 0xA4), Script::kDevanagari);  // U+0915
  EXPECT_EQ(ScriptOf(0xE0, 0xAE), Script::kIndic);       // Tamil U+0B95
  EXPECT_EQ(ScriptOf(0xE0, 0xB8), Script::kThai);        // U+0E01
  EXPECT_EQ(ScriptOf(0xE1, 0x83), Script::kGeorgian);    // U+10D0
  EXPECT_EQ(ScriptOf(0xE3, 0x81), Script::kKana);        // U+3042
  EXPECT_EQ(ScriptOf(0xEA, 0xB0), Script::kHangul);      // U+AC00
  EXPECT_EQ(ScriptOf(0xEF, 0xBC), Script::kFullwidth);   // U+FF01
  EXPECT_EQ(ScriptOf(0xE1, 0xBB), Script::kLatinExt);    // U+1EC7 (Vietnamese)
}

}  // namespace
}  // namespace tokenpool::parse
