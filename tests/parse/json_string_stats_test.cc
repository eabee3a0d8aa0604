// CountJsonStringStats (statistics on raw JSON string content, escapes resolved in the bit
// masks) and the parser's raw path against the reference: the byte-at-a-time
// CountByteStatsReference on the unescaped text. Every field must be equal.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "parse/byte_stats.h"
#include "parse/request_parser.h"

namespace tokenpool::parse {
namespace {

const std::string kCorpusDir = std::string(TOKENPOOL_SHARED_DIR) + "/corpus";

// Unescapes the simple JSON escapes; false on \u, an invalid escape or a lone backslash at the
// end (where CountJsonStringStats must return false too).
bool UnescapeSimple(const std::string& raw, std::string* out, bool* has_u) {
  out->clear();
  *has_u = false;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '\\') {
      out->push_back(raw[i]);
      continue;
    }
    if (++i == raw.size()) return false;
    switch (raw[i]) {
      case '"':
      case '\\':
      case '/':
        out->push_back(raw[i]);
        break;
      case 'b':
        out->push_back('\b');
        break;
      case 'f':
        out->push_back('\f');
        break;
      case 'n':
        out->push_back('\n');
        break;
      case 'r':
        out->push_back('\r');
        break;
      case 't':
        out->push_back('\t');
        break;
      case 'u':
        *has_u = true;
        return false;
      default:
        return false;
    }
  }
  return true;
}

ByteStats& untouched_probe() {
  static ByteStats s;
  return s;
}

// Checks one raw string: CountJsonStringStats gives the reference's statistics of the
// unescaped text, or declines (false, nothing added) exactly where the text is not simple.
int g_accepted = 0;  // strings CountJsonStringStats counted (did not decline)

void CheckRaw(const std::string& raw, const std::string& what) {
  std::string text;
  bool has_u = false;
  const bool simple = UnescapeSimple(raw, &text, &has_u);
  ByteStats ref;  // counters start non-zero: the functions add to them
  ref.letters = 7;
  if (simple) {
    CountByteStatsReference(text, &ref);
    ByteStats plain;
    plain.letters = 7;
    CountByteStats(text, &plain);
    ASSERT_EQ(plain, ref) << what;
  }
  // The raw string inside a larger buffer, as in a JSON body: bytes after it are readable.
  const std::string buf = raw + std::string(80, '\\');
  const std::string_view view(buf.data(), raw.size());
  // Without AVX2 the function always declines (the parser unescapes then).
  const bool fast_path = CountJsonStringStats("x", &untouched_probe());
  bool counted = false;
  // The AVX2 kernel, and the best one for this CPU (the AVX-512 kernel where it has it).
  for (const JsonKernel kernel : {JsonKernel::kAvx2, JsonKernel::kBest}) {
    ByteStats fast;
    fast.letters = 7;
    const bool ok = CountJsonStringStatsWith(kernel, view, &fast);
    if (fast_path) {
      ASSERT_EQ(ok, simple) << what;
    }
    if (ok) {
      ASSERT_EQ(fast, ref) << what << (kernel == JsonKernel::kAvx2 ? " (AVX2)" : " (best)");
      counted = true;
    } else {
      ByteStats untouched;
      untouched.letters = 7;
      ASSERT_EQ(fast, untouched) << what;
    }
  }
  if (counted) ++g_accepted;
}

uint64_t Next(uint64_t* x) {
  *x = *x * 6364136223846793005ull + 1442695040888963407ull;
  return *x >> 33;
}

TEST(JsonStringStatsTest, EscapesAtEveryPositionAndLength) {
  static const char* const kPieces[] = {
      "\\n",   "\\n\\n", "\\\"",  "\\\\",   "\\\\\\\\", "\\/",    "\\t",  "\\r\\n",  "\\b",
      "\\f",   "word ",  "Camel", "x",      "12345",    "   ",    "\n",   ";=()",    "{\"",
      "$^_",   "# * `",  "!!!",   "\xC3\xA9", "\xD0\x9F", "\xE4\xB8\xAD", "\xE3\x81\x82",
      "\xF0\x9F\x98\x80", "\x01", "\x7F", "supercalifragilistic", "abcdefgh\\nijklmnop",
      "---\\\"---", "\t\\t\t", "\xC3\\n", "\xE3\\\\", "\xE3\x81\\t"};
  constexpr size_t kNum = sizeof(kPieces) / sizeof(kPieces[0]);
  uint64_t x = 1;
  g_accepted = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    const size_t target = Next(&x) % 400;
    std::string raw;
    while (raw.size() < target) raw += kPieces[Next(&x) % kNum];
    CheckRaw(raw, "iteration " + std::to_string(iter));
  }
  // No \u or invalid escape among the pieces: all counted where the library has the fast path.
  if (CountJsonStringStats("x", &untouched_probe())) {
    EXPECT_EQ(g_accepted, 4000);
  }
}

TEST(JsonStringStatsTest, BlockBoundaries) {
  // An escape, a run or a multi-byte character straddling each 64-byte boundary.
  for (const char* const piece_c :
       {"\\n", "\\\\", "\\\"", "\\t\\t", "\\n\\n\\n", "abcdefghij", "     ", ";;;;;",
        "\xE3\x81\x82", "\xC3\xA9", "\\u0041", "\\x", "aB", "12", "\\\\\\n"}) {
    const std::string piece = piece_c;
    for (size_t pre = 40; pre < 140; ++pre) {
      for (const char fill : {'a', ' ', '-', '\n', '7'}) {
        std::string raw(pre, fill);
        raw += piece;
        raw += std::string(pre % 7, fill);
        CheckRaw(raw, "piece " + piece + " at " + std::to_string(pre));
      }
    }
  }
}

TEST(JsonStringStatsTest, AllByteValuesAndLoneBackslash) {
  uint64_t x = 7;
  for (int iter = 0; iter < 3000; ++iter) {
    const size_t n = Next(&x) % 300;
    std::string raw;
    for (size_t i = 0; i < n; ++i) {
      const auto r = Next(&x) % 10;
      raw.push_back(r < 2 ? '\\' : static_cast<char>(Next(&x) & 0xFF));
    }
    CheckRaw(raw, "random bytes " + std::to_string(iter));
  }
  for (const std::string& raw : {std::string("\\"), std::string("abc\\"), std::string(63, 'a') + "\\",
                                std::string(64, 'a') + "\\", std::string(127, ' ') + "\\"}) {
    CheckRaw(raw, "lone backslash");
  }
  CheckRaw("", "empty");
}

// Without a backslash (the short-text path of kBest), every other byte value, every length
// around the short-text bound.
TEST(JsonStringStatsTest, RandomBytesWithoutEscapes) {
  uint64_t x = 5;
  for (int iter = 0; iter < 2000; ++iter) {
    const size_t n = iter < 1000 ? Next(&x) % 900 : 150 + Next(&x) % 100;
    std::string raw;
    for (size_t i = 0; i < n; ++i) {
      char c = static_cast<char>(Next(&x) & 0xFF);
      if (c == '\\') c = 'q';
      raw.push_back(c);
    }
    CheckRaw(raw, "no backslash " + std::to_string(iter));
  }
}

TEST(JsonStringStatsTest, EveryLeadByteBeforeEveryByte) {
  // The script of a character comes from its lead byte and the byte after it, whatever that is
  // (invalid UTF-8 included): each pair at several offsets within a block.
  for (int lead = 0x80; lead <= 0xFF; ++lead) {
    for (size_t shift : {0, 13, 62}) {
      std::string raw(shift, 'x');
      for (int next = 0; next <= 0xFF; ++next) {
        raw.push_back(static_cast<char>(lead));
        if (next == '\\' || next == '"') {
          raw += next == '"' ? "\\\"" : "\\n";  // a valid escape after the lead byte
        } else {
          raw.push_back(static_cast<char>(next));
        }
        raw.push_back(' ');
      }
      CheckRaw(raw, "lead " + std::to_string(lead) + " shift " + std::to_string(shift));
    }
  }
}

TEST(JsonStringStatsTest, RandomBytesWithValidEscapes) {
  static const char* const kEscapes[] = {"\\n", "\\t", "\\r", "\\b", "\\f", "\\/", "\\\\", "\\\""};
  uint64_t x = 11;
  g_accepted = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    const size_t n = Next(&x) % 400;
    std::string raw;
    while (raw.size() < n) {
      const auto r = Next(&x) % 8;
      if (r == 0) {
        raw += kEscapes[Next(&x) % 8];
      } else {
        const auto b = static_cast<char>(Next(&x) & 0xFF);
        if (b != '\\') raw.push_back(b);
      }
    }
    CheckRaw(raw, "random bytes with escapes " + std::to_string(iter));
  }
  if (CountJsonStringStats("x", &untouched_probe())) {
    EXPECT_GT(g_accepted, 1000);  // most strings have only valid escapes
  }
}

// Every field of RequestFeatures.
void ExpectSame(const RequestFeatures& a, const RequestFeatures& b, const std::string& what) {
  EXPECT_EQ(a.endpoint, b.endpoint) << what;
  EXPECT_EQ(a.model, b.model) << what;
  EXPECT_EQ(a.stream, b.stream) << what;
  EXPECT_EQ(a.include_usage, b.include_usage) << what;
  EXPECT_EQ(a.has_max_tokens, b.has_max_tokens) << what;
  EXPECT_EQ(a.max_output_tokens, b.max_output_tokens) << what;
  EXPECT_EQ(a.text_bytes, b.text_bytes) << what;
  EXPECT_EQ(a.structured_bytes, b.structured_bytes) << what;
  EXPECT_EQ(a.messages, b.messages) << what;
  EXPECT_EQ(a.tool_calls, b.tool_calls) << what;
  EXPECT_EQ(a.tool_definitions, b.tool_definitions) << what;
  EXPECT_EQ(a.images, b.images) << what;
  EXPECT_EQ(a.prompt_token_ids, b.prompt_token_ids) << what;
  EXPECT_EQ(a.text, b.text) << what;
}

// The parser on a body: the raw path (best kernel, and the AVX2 kernel), the unescaping path
// and the reference give the same RequestFeatures (or the same error).
void CheckBody(const std::string& body, const std::string& what) {
  RequestParser raw_parser;
  RequestParser unescaped_parser(ParserConfig{.stats_path = ParserConfig::kUnescaped});
  RequestParser ref_parser(ParserConfig{.stats_path = ParserConfig::kReference});
  RequestParser avx2_parser(ParserConfig{.avx512 = false});  // the AVX2 kernel on any CPU
  RequestFeatures a, b, c, d;
  const Status sd = avx2_parser.Parse(body, &d);
  const Status sa = raw_parser.Parse(body, &a);
  const Status sb = unescaped_parser.Parse(body, &b);
  const Status sc = ref_parser.Parse(body, &c);
  ASSERT_EQ(sa.ToString(), sc.ToString()) << what;
  ASSERT_EQ(sb.ToString(), sc.ToString()) << what;
  ASSERT_EQ(sd.ToString(), sc.ToString()) << what;
  if (!sc.ok()) return;
  ExpectSame(a, c, what);
  ExpectSame(b, c, what);
  ExpectSame(d, c, what + " (AVX2 kernel)");
}

// The "body" object of each line of a corpus file (the corpus is one JSON object per line).
std::vector<std::string> CorpusBodies(const std::string& path) {
  std::vector<std::string> bodies;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const size_t start = line.find("\"body\":");
    if (start == std::string::npos) continue;
    // Find the end of the body object by matching braces outside strings.
    size_t i = start + 7;
    int depth = 0;
    bool in_string = false;
    size_t end = std::string::npos;
    for (; i < line.size(); ++i) {
      const char ch = line[i];
      if (in_string) {
        if (ch == '\\') {
          ++i;
        } else if (ch == '"') {
          in_string = false;
        }
      } else if (ch == '"') {
        in_string = true;
      } else if (ch == '{') {
        ++depth;
      } else if (ch == '}') {
        if (--depth == 0) {
          end = i + 1;
          break;
        }
      }
    }
    if (end != std::string::npos) bodies.push_back(line.substr(start + 7, end - start - 7));
  }
  return bodies;
}

TEST(JsonStringStatsTest, WholeOpenCorpusGivesIdenticalFeatures) {
  const std::vector<std::string> bodies = CorpusBodies(kCorpusDir + "/open.jsonl");
  if (bodies.empty()) GTEST_SKIP() << "corpus not found at " << kCorpusDir;
  EXPECT_GE(bodies.size(), 2400u);
  for (size_t i = 0; i < bodies.size(); ++i) CheckBody(bodies[i], "corpus line " + std::to_string(i));
}

TEST(JsonStringStatsTest, AdversarialBodies) {
  const std::string head = R"({"model":"m","messages":[{"role":"user","content":)";
  for (const char* const content_c :
       {R"("")", R"("\n")", R"("a\u0041b")", R"("\ud83d\ude00 x")", R"("bad \x escape")",
        R"("tab\there" )", "\"trailing\"  \n\t ", R"("\\\\\"\\")", "\"raw \x01 control\"",
        "\"bad utf8 \xC3\x28\"", "\"\xE3\\\\n\"", R"(["a\nb", {"type":"text","text":"c\td"}])",
        R"([{"type":"text","text":"\u00e9\n"}, "\"q\""])"}) {
    const std::string content = content_c;
    CheckBody(head + content + "}]}", content);
  }
  CheckBody(R"({"model":"m","prompt":["a\nb","c\\d"]})", "prompt array");
  CheckBody(R"({"model":"m","prompt":"x\"y"})", "prompt string");
  // Long contents with escapes across block boundaries.
  uint64_t x = 3;
  static const char* const kPieces[] = {"\\n", "\\\"", "\\\\", "word", " ", "\\t", "::", "\xE4\xB8\xAD", "Ab", "9"};
  for (int iter = 0; iter < 200; ++iter) {
    std::string s;
    const size_t n = Next(&x) % 3000;
    while (s.size() < n) s += kPieces[Next(&x) % 10];
    CheckBody(head + "\"" + s + "\"}]}", "long " + std::to_string(iter));
  }
}

}  // namespace
}  // namespace tokenpool::parse
