// Trace parsing: header detection, per-line field parsing with line-numbered errors.

#include "tokenpool/trace.h"

#include <charconv>
#include <cmath>
#include <string>
#include <system_error>

namespace tokenpool {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

std::vector<std::string_view> SplitCsv(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t start = 0;
  while (true) {
    const size_t comma = line.find(',', start);
    if (comma == std::string_view::npos) {
      fields.push_back(Trim(line.substr(start)));
      return fields;
    }
    fields.push_back(Trim(line.substr(start, comma - start)));
    start = comma + 1;
  }
}

std::string TooMany() { return "must be at most " + std::to_string(kMaxTraceTokens) + " tokens"; }

class LineError {
 public:
  LineError(std::string_view source, int64_t line) : source_(source), line_(line) {}
  Status operator()(std::string_view field, std::string_view rule, std::string_view got) const {
    return InvalidArgument(std::string(source_) + ":" + std::to_string(line_) + ": " +
                           std::string(field) + ": " + std::string(rule) + ", got \"" +
                           std::string(got) + "\"");
  }

 private:
  std::string_view source_;
  int64_t line_;
};

bool ParseInt(std::string_view s, int64_t& out) {
  if (s.empty()) return false;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

bool ParseDouble(std::string_view s, double& out) {
  if (s.empty()) return false;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size() && std::isfinite(out);
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

// "2023-11-16 18:17:03.9799600" → whole seconds since the epoch and the fraction, kept apart
// so that 100 ns digits survive (a double of epoch seconds keeps only ~0.2 µs).
struct Timestamp {
  int64_t seconds = 0;
  double fraction = 0;
};

bool ParseTimestamp(std::string_view s, Timestamp& out) {
  // Fixed positions: YYYY-MM-DD HH:MM:SS, then an optional .digits.
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' || (s[10] != ' ' && s[10] != 'T') ||
      s[13] != ':' || s[16] != ':') {
    return false;
  }
  int64_t y, mo, d, h, mi, sec;
  if (!ParseInt(s.substr(0, 4), y) || !ParseInt(s.substr(5, 2), mo) ||
      !ParseInt(s.substr(8, 2), d) || !ParseInt(s.substr(11, 2), h) ||
      !ParseInt(s.substr(14, 2), mi) || !ParseInt(s.substr(17, 2), sec)) {
    return false;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return false;
  double fraction = 0;
  std::string_view rest = s.substr(19);
  if (!rest.empty()) {
    if (rest.front() != '.' || rest.size() < 2) return false;
    double scale = 0.1;
    for (char c : rest.substr(1)) {
      if (c < '0' || c > '9') return false;
      fraction += (c - '0') * scale;
      scale /= 10;
    }
  }
  out.seconds = DaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
  out.fraction = fraction;
  return true;
}

struct Layout {
  TraceFormat format;
  int arrival = -1;  // column of the arrival (TIMESTAMP or arrival_s), -1 if none
  int input = -1;
  int output = -1;
  std::string_view arrival_name, input_name, output_name;
  size_t columns = 0;
};

int Find(const std::vector<std::string_view>& header, std::string_view name) {
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == name) return static_cast<int>(i);
  }
  return -1;
}

bool Detect(const std::vector<std::string_view>& header, Layout& out) {
  struct Candidate {
    TraceFormat format;
    std::string_view arrival, input, output;
  };
  static constexpr Candidate kCandidates[] = {
      {TraceFormat::kAzure, "TIMESTAMP", "ContextTokens", "GeneratedTokens"},
      {TraceFormat::kPlain, "arrival_s", "input_tokens", "output_tokens"},
      {TraceFormat::kLengthsOnly, "", "num_prefill_tokens", "num_decode_tokens"},
  };
  for (const Candidate& c : kCandidates) {
    const int in = Find(header, c.input);
    const int outc = Find(header, c.output);
    const int arr = c.arrival.empty() ? -1 : Find(header, c.arrival);
    if (in < 0 || outc < 0 || (!c.arrival.empty() && arr < 0)) continue;
    out = {.format = c.format,
           .arrival = arr,
           .input = in,
           .output = outc,
           .arrival_name = c.arrival,
           .input_name = c.input,
           .output_name = c.output,
           .columns = header.size()};
    return true;
  }
  return false;
}

}  // namespace

std::string_view TraceFormatName(TraceFormat f) {
  switch (f) {
    case TraceFormat::kAzure:
      return "azure";
    case TraceFormat::kPlain:
      return "plain";
    case TraceFormat::kLengthsOnly:
      return "lengths_only";
  }
  return "unknown";
}

Result<Trace> ParseTrace(std::string_view text, std::string_view source) {
  // A UTF-8 byte-order mark (spreadsheet exports) is not part of the first column's name.
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  Trace trace;
  Layout layout{};
  bool have_header = false;
  bool have_first = false;
  Timestamp first_ts;
  double last_arrival = 0;
  int64_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = Trim(text.substr(pos, end - pos));
    pos = end + 1;
    ++line_no;
    if (line.empty()) continue;
    const std::vector<std::string_view> fields = SplitCsv(line);
    const LineError error(source, line_no);
    if (!have_header) {
      if (!Detect(fields, layout)) {
        return error("header",
                     "unknown trace format; expected columns TIMESTAMP,ContextTokens,"
                     "GeneratedTokens (Azure), arrival_s,input_tokens,output_tokens (plain) "
                     "or num_prefill_tokens,num_decode_tokens (lengths only)",
                     line);
      }
      trace.format = layout.format;
      have_header = true;
      continue;
    }
    if (fields.size() != layout.columns) {
      return error("line", "expected " + std::to_string(layout.columns) + " fields", line);
    }
    TraceRequest r;
    const std::string_view in = fields[static_cast<size_t>(layout.input)];
    if (!ParseInt(in, r.input_tokens) || r.input_tokens < 0) {
      return error(layout.input_name, "expected a non-negative integer", in);
    }
    if (r.input_tokens > kMaxTraceTokens) return error(layout.input_name, TooMany(), in);
    const std::string_view out = fields[static_cast<size_t>(layout.output)];
    if (!ParseInt(out, r.output_tokens) || r.output_tokens < 0) {
      return error(layout.output_name, "expected a non-negative integer", out);
    }
    if (r.output_tokens > kMaxTraceTokens) return error(layout.output_name, TooMany(), out);
    if (layout.arrival >= 0) {
      const std::string_view a = fields[static_cast<size_t>(layout.arrival)];
      double arrival = 0;
      if (layout.format == TraceFormat::kAzure) {
        Timestamp ts;
        if (!ParseTimestamp(a, ts)) {
          return error(layout.arrival_name, "expected a timestamp like 2023-11-16 18:17:03.9799600",
                       a);
        }
        if (!have_first) first_ts = ts;
        arrival =
            static_cast<double>(ts.seconds - first_ts.seconds) + (ts.fraction - first_ts.fraction);
      } else if (!ParseDouble(a, arrival) || arrival < 0) {
        return error(layout.arrival_name, "expected a non-negative number of seconds", a);
      }
      if (have_first && arrival < last_arrival) {
        return error(layout.arrival_name,
                     "arrivals must not go back in time (previous row at " +
                         std::to_string(last_arrival) + " s)",
                     a);
      }
      have_first = true;
      last_arrival = arrival;
      r.arrival_s = arrival;
    }
    trace.requests.push_back(r);
  }
  if (!have_header) {
    return InvalidArgument(std::string(source) + ": empty trace: no header line");
  }
  if (trace.requests.empty()) {
    return InvalidArgument(std::string(source) + ": trace has a header but no requests");
  }
  return trace;
}

}  // namespace tokenpool
