// Request parsing: RequestParser::Parse (copy into the padded buffer) and ParsePadded (in
// place) on chat bodies of ~1 KB and ~32 KB, English-like and CJK text, and the byte-class
// counting alone. Goal (issue 3): < 1 µs for 1 KB, < 10 µs for 32 KB.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "parse/byte_stats.h"
#include "parse/request_parser.h"

namespace tokenpool::parse {
namespace {

// Deterministic English-like text with code-ish lines, newlines and some escapes.
std::string Text(size_t bytes, bool cjk) {
  static const char* const kWords[] = {"the",     "request", "token",          "budget", "of",
                                       "a",       "model",   "estimate",       "int",    "x",
                                       "=",       "f(y);",   "return",         "42,",    "pool",
                                       "routing", "\\n",     "\\\"quoted\\\"", "and",    "is"};
  static const char* const kCjk[] = {"\xE4\xB8\xAD", "\xE6\x96\x87", "\xE3\x81\x82",
                                     "\xEF\xBC\x8C", "\xE8\xAF\xB7", "\xE6\xB1\x82"};
  std::string s;
  uint64_t x = 12345;
  while (s.size() < bytes) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    if (cjk) {
      s += kCjk[(x >> 33) % 6];
    } else {
      s += kWords[(x >> 33) % 20];
      s += ((x >> 20) % 12 == 0) ? "\\n" : " ";
    }
  }
  return s;
}

// A chat body of about `bytes` bytes: a system prompt and user/assistant turns.
std::string ChatBody(size_t bytes, bool cjk) {
  std::string body =
      R"({"model":"llama-3-70b","stream":true,"stream_options":{"include_usage":true},)"
      R"("max_tokens":512,"messages":[{"role":"system","content":"You are helpful."})";
  const size_t turns = bytes > 4096 ? 4 : 1;
  const size_t per = (bytes > body.size() + 100 ? bytes - body.size() - 100 : 100) / turns;
  for (size_t i = 0; i < turns; ++i) {
    body += std::string(R"(,{"role":")") + (i % 2 == 0 ? "user" : "assistant") +
            R"(","content":")" + Text(per, cjk) + "\"}";
  }
  return body + "]}";
}

void BM_Parse(benchmark::State& state, size_t bytes, bool cjk, bool padded,
              bool byte_stats = true, bool avx512 = true) {
  const std::string body = ChatBody(bytes, cjk);
  std::vector<char> buf(body.begin(), body.end());
  buf.resize(body.size() + RequestParser::kPadding, ' ');
  RequestParser parser(ParserConfig{.byte_stats = byte_stats, .avx512 = avx512});
  RequestFeatures f;
  for (auto _ : state) {
    const Status s =
        padded ? parser.ParsePadded(std::string_view(buf.data(), body.size()), buf.size(), &f)
               : parser.Parse(body, &f);
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
    benchmark::DoNotOptimize(f.text.letters);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(body.size()));
  state.counters["body_bytes"] = static_cast<double>(body.size());
}

BENCHMARK_CAPTURE(BM_Parse, chat_1kb, 1024, false, false);
BENCHMARK_CAPTURE(BM_Parse, chat_1kb_padded, 1024, false, true);
BENCHMARK_CAPTURE(BM_Parse, chat_32kb, 32 * 1024, false, false);
BENCHMARK_CAPTURE(BM_Parse, chat_32kb_padded, 32 * 1024, false, true);
BENCHMARK_CAPTURE(BM_Parse, chat_32kb_cjk, 32 * 1024, true, false);
// With the AVX2 statistics kernel where the CPU has AVX-512 too: what a CPU without it gets.
BENCHMARK_CAPTURE(BM_Parse, chat_1kb_avx2, 1024, false, false, true, false);
BENCHMARK_CAPTURE(BM_Parse, chat_32kb_avx2, 32 * 1024, false, false, true, false);
BENCHMARK_CAPTURE(BM_Parse, chat_32kb_cjk_avx2, 32 * 1024, true, false, true, false);
// Without the byte-class statistics: simdjson's share of the time.
BENCHMARK_CAPTURE(BM_Parse, chat_1kb_no_stats, 1024, false, true, false);
BENCHMARK_CAPTURE(BM_Parse, chat_32kb_no_stats, 32 * 1024, false, true, false);

void BM_CountByteStats(benchmark::State& state, bool cjk) {
  const std::string text = Text(32 * 1024, cjk);
  for (auto _ : state) {
    ByteStats st;
    CountByteStats(text, &st);
    benchmark::DoNotOptimize(st);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(text.size()));
}
BENCHMARK_CAPTURE(BM_CountByteStats, text_32kb, false);
BENCHMARK_CAPTURE(BM_CountByteStats, cjk_32kb, true);

// CountJsonStringStatsWith(kernel) on `raw`, bytes per second.
void CountJsonLoop(benchmark::State& state, const std::string& raw, JsonKernel kernel) {
  for (auto _ : state) {
    ByteStats st;
    if (!CountJsonStringStatsWith(kernel, raw, &st)) state.SkipWithError("declined");
    benchmark::DoNotOptimize(st);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(raw.size()));
}

// The statistics on the raw JSON string content (Text() is escaped JSON text: "\\n", "\\\""),
// as the parser counts them since the statistics are counted without unescaping.
void BM_CountJsonStringStats(benchmark::State& state, bool cjk, JsonKernel kernel) {
  CountJsonLoop(state, Text(32 * 1024, cjk), kernel);
}
// Short strings, as a chat's system prompt or a short user turn: where the kernels' set-up,
// not their loop, is the cost.
void BM_CountJsonStringStatsShort(benchmark::State& state, JsonKernel kernel, bool escapes) {
  std::string raw = Text(static_cast<size_t>(state.range(0)), false);
  if (!escapes) {  // the same bytes with each backslash a letter: text with nothing escaped
    for (char& c : raw) c = c == '\\' ? 'q' : c;
  }
  CountJsonLoop(state, raw, kernel);
}
// The sizes of the short-string benchmarks.
void ShortSizes(benchmark::internal::Benchmark* b) {
  for (int64_t n = 32; n <= 2048; n *= 2) b->Arg(n);
}
void BM_CountByteStatsShort(benchmark::State& state, bool reference) {
  const std::string raw = Text(static_cast<size_t>(state.range(0)), false);
  for (auto _ : state) {
    ByteStats st;
    if (reference) {
      CountByteStatsReference(raw, &st);
    } else {
      CountByteStats(raw, &st);
    }
    benchmark::DoNotOptimize(st);
  }
}
BENCHMARK_CAPTURE(BM_CountByteStatsShort, simd, false)->Apply(ShortSizes);
BENCHMARK_CAPTURE(BM_CountByteStatsShort, reference, true)->Arg(32)->Arg(64)->Arg(128)->Arg(256);
BENCHMARK_CAPTURE(BM_CountJsonStringStatsShort, best, JsonKernel::kBest, true)->Apply(ShortSizes);
BENCHMARK_CAPTURE(BM_CountJsonStringStatsShort, avx2, JsonKernel::kAvx2, true)->Apply(ShortSizes);
BENCHMARK_CAPTURE(BM_CountJsonStringStatsShort, best_unescaped, JsonKernel::kBest, false)
    ->Apply(ShortSizes);
BENCHMARK_CAPTURE(BM_CountJsonStringStatsShort, avx2_unescaped, JsonKernel::kAvx2, false)
    ->Apply(ShortSizes);

BENCHMARK_CAPTURE(BM_CountJsonStringStats, text_32kb, false, JsonKernel::kBest);
BENCHMARK_CAPTURE(BM_CountJsonStringStats, cjk_32kb, true, JsonKernel::kBest);
BENCHMARK_CAPTURE(BM_CountJsonStringStats, text_32kb_avx2, false, JsonKernel::kAvx2);
BENCHMARK_CAPTURE(BM_CountJsonStringStats, cjk_32kb_avx2, true, JsonKernel::kAvx2);

// `--parse-loop N [BYTES]`: N parses of the chat body of BYTES (1024) and no timing, for an
// instruction count under callgrind (bench/parse/parse_instructions.sh), which the VM's timing
// noise does not move.
int ParseLoop(int n, size_t bytes) {
  const std::string body = ChatBody(bytes, false);
  RequestParser parser;
  RequestFeatures f;
  for (int i = 0; i < n; ++i) {
    if (Status s = parser.Parse(body, &f); !s.ok()) return 1;
    benchmark::DoNotOptimize(f.text.letters);
  }
  return 0;
}

}  // namespace
}  // namespace tokenpool::parse

int main(int argc, char** argv) {
  if (argc >= 3 && std::string_view(argv[1]) == "--parse-loop") {
    const size_t bytes = argc >= 4 ? std::strtoul(argv[3], nullptr, 10) : 1024;
    return tokenpool::parse::ParseLoop(std::atoi(argv[2]), bytes);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
