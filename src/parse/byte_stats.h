#pragma once
// CountByteStats: the byte-class statistics of one content string (see ByteStats in
// tokenpool/request_features.h), 64 bytes at a time: one bit per byte and class (AVX2 when the
// library is compiled for it, as by default on x86-64; else SSE2, else a scalar loop builds the
// same masks), then popcounts; runs and word lengths from shifted masks. Runs never cross calls:
// each content string is counted on its own, as a tokenizer would see it.
//
// Thread-safety: pure function.

#include <string_view>

#include "tokenpool/request_features.h"

namespace tokenpool::parse {

// Adds the statistics of `text` (UTF-8, already unescaped) to *stats.
void CountByteStats(std::string_view text, ByteStats* stats);

// The same result by a plain byte-at-a-time loop: the reference the tests compare against.
void CountByteStatsReference(std::string_view text, ByteStats* stats);

// The statistics of a JSON string's text from its raw (still escaped) content, the bytes between
// the quotes: the same result as CountByteStats on the unescaped text, without unescaping. The
// simple escapes (\" \\ \/ \b \f \n \r \t) are resolved in the bit masks: the backslash is a
// hole that no class or run sees, the escaped byte takes the class of the byte it stands for.
// Returns false, with *stats untouched, where the content has a \u escape, an invalid escape or
// ends in a lone backslash (the caller unescapes then and calls CountByteStats), and always on a
// build without AVX2 (the portable build unescapes every string).
// Where the CPU has AVX-512 (BW, VBMI2, VPOPCNTDQ) a kernel for it is chosen at run time.
bool CountJsonStringStats(std::string_view raw, ByteStats* stats);

// The same with a chosen kernel (tests): kBest as above, kAvx2 the AVX2 kernel on any CPU.
enum class JsonKernel { kBest, kAvx2 };
bool CountJsonStringStatsWith(JsonKernel kernel, std::string_view raw, ByteStats* stats);

// The Script of a character from its first two UTF-8 bytes (lead byte of a 2- or 3-byte
// sequence, then the next byte); 4-byte sequences are Script::kFourByte.
Script ScriptOf(unsigned char lead, unsigned char next);

}  // namespace tokenpool::parse
