#include "parse/estimate_eval.h"

#include <simdjson.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <utility>

#include "parse/request_parser.h"

namespace tokenpool::parse {

namespace od = simdjson::ondemand;

namespace {

std::string Where(const std::string& file, int64_t line) {
  return file + ":" + std::to_string(line) + ": ";
}

Status ReadLine(od::parser& json, RequestParser& requests, std::string_view line,
                const std::string& where, EvalRecord* rec) {
  simdjson::padded_string padded(line);
  od::document doc;
  if (auto e = json.iterate(padded).get(doc)) {
    return InvalidArgument(where + "malformed JSON (" + simdjson::error_message(e) + ")");
  }
  od::object root;
  if (auto e = doc.get_object().get(root)) {
    if (e == simdjson::INCORRECT_TYPE) return InvalidArgument(where + "expected a JSON object");
    return InvalidArgument(where + "malformed JSON (" + simdjson::error_message(e) + ")");
  }
  bool has_body = false, has_tokens = false, has_category = false;
  for (auto field_result : root) {
    od::field field;
    if (auto e = std::move(field_result).get(field)) {
      return InvalidArgument(where + "malformed JSON (" + simdjson::error_message(e) + ")");
    }
    od::value value = field.value();
    const od::raw_json_string key = field.key();
    if (key == "body") {
      od::object body;
      std::string_view raw;
      if (value.get_object().get(body) || body.raw_json().get(raw)) {
        return InvalidArgument(where + "body: expected an object");
      }
      if (Status s = requests.Parse(raw, &rec->features); !s.ok()) {
        return Status(s.code(), where + "body." + s.message());
      }
      has_body = true;
    } else if (key == "prompt_tokens_llama3") {
      int64_t n = 0;
      if (value.get_int64().get(n) || n <= 0) {
        return InvalidArgument(where + "prompt_tokens_llama3: expected a positive integer");
      }
      rec->prompt_tokens = n;
      has_tokens = true;
    } else if (key == "category") {
      std::string_view c;
      if (value.get_string().get(c)) {
        return InvalidArgument(where + "category: expected a string");
      }
      rec->category.assign(c);
      has_category = true;
    } else if (key == "headers") {
      od::object headers;
      if (value.get_object().get(headers)) {
        return InvalidArgument(where + "headers: expected an object");
      }
      for (auto h_result : headers) {
        od::field h;
        if (std::move(h_result).get(h)) return InvalidArgument(where + "headers: malformed");
        std::string_view name;
        if (h.unescaped_key().get(name)) return InvalidArgument(where + "headers: malformed");
        if (name == "x-tokenpool-category") {
          std::string_view v;
          if (h.value().get_string().get(v)) {
            return InvalidArgument(where + "headers.x-tokenpool-category: expected a string");
          }
          rec->header_category.assign(v);
        }
      }
    }
  }
  if (!has_body) return InvalidArgument(where + "body: missing");
  if (!has_tokens) return InvalidArgument(where + "prompt_tokens_llama3: missing");
  if (!has_category) return InvalidArgument(where + "category: missing");
  return Status::Ok();
}

}  // namespace

Result<std::vector<EvalRecord>> LoadCorpus(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return NotFound("corpus " + dir + ": not a directory");
  }
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file() && entry.path().extension() == ".jsonl") {
      files.push_back(entry.path());
    }
  }
  if (ec) return NotFound("corpus " + dir + ": " + ec.message());
  if (files.empty()) return NotFound("corpus " + dir + ": no *.jsonl files");
  std::sort(files.begin(), files.end());
  std::vector<EvalRecord> records;
  od::parser json;
  RequestParser requests;
  for (const fs::path& path : files) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return NotFound(path.filename().string() + ": cannot open");
    std::string line;
    int64_t line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank line
      EvalRecord rec;
      if (Status s = ReadLine(json, requests, line, Where(path.filename().string(), line_no), &rec);
          !s.ok()) {
        return s;
      }
      records.push_back(std::move(rec));
    }
  }
  if (records.empty()) return NotFound("corpus " + dir + ": no records");
  return records;
}

std::vector<size_t> ReplayOrder(size_t n, uint64_t seed) {
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  uint64_t state = seed;
  auto next = [&state] {  // splitmix64
    state += 0x9E3779B97F4A7C15ull;
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  for (size_t i = n; i > 1; --i) {
    const size_t j = static_cast<size_t>(next() % i);  // modulo bias < 2^-50 here: negligible
    std::swap(order[i - 1], order[j]);
  }
  return order;
}

Status EvalOptions::Validate() const {
  if (warmup_per_category < 0) return InvalidArgument("warmup_per_category: must be >= 0");
  // A request is routed long when its budget exceeds the boundary: below 1 every request is.
  if (boundary_tokens < 1) {
    return InvalidArgument("boundary_tokens: must be >= 1, got " + std::to_string(boundary_tokens));
  }
  if (passes < 1) return InvalidArgument("passes: must be >= 1");
  if (Status s = config.Validate(); !s.ok()) return s;
  for (const EstimatorMode& m : EstimatorModes()) {
    if (m.name == mode) return Status::Ok();
  }
  Result<std::unique_ptr<TokenEstimator>> made = MakeEstimator(mode, config);
  return Status(made.status().code(), "mode: " + made.status().message());
}

Result<EvalReport> RunEval(const std::vector<EvalRecord>& records, const EvalOptions& options) {
  if (Status s = options.Validate(); !s.ok()) return s;
  Result<std::unique_ptr<TokenEstimator>> made = MakeEstimator(options.mode, options.config);
  if (!made.ok()) return made.status();
  TokenEstimator& est = **made;
  for (int64_t pass = 1; pass < options.passes; ++pass) {  // training only
    for (size_t i : ReplayOrder(records.size(), options.seed + static_cast<uint64_t>(pass))) {
      const EvalRecord& rec = records[i];
      const Category c = Categorize(rec.features, rec.header_category);
      (void)est.Estimate(rec.features, c);
      est.Observe(rec.features, c, rec.prompt_tokens);
    }
  }

  struct Acc {
    int64_t n = 0, scored = 0;
    double ape = 0, sum_est = 0, sum_true = 0;
    std::array<int64_t, kNumContentClasses> classes{};
  };
  std::map<std::string, Acc> acc;
  static constexpr const char* kSizeNames[] = {"<256", "256-1K", "1K-4K", ">=4K"};
  Acc by_size[4];
  EvalReport r;
  r.mode = options.mode;
  double ape_all = 0;
  for (size_t i : ReplayOrder(records.size(), options.seed)) {
    const EvalRecord& rec = records[i];
    const Category c = Categorize(rec.features, rec.header_category);
    const TokenEstimate e = est.Estimate(rec.features, c);
    est.Observe(rec.features, c, rec.prompt_tokens);
    Acc& a = acc[rec.category];
    ++a.n;
    ++a.classes[static_cast<size_t>(c.content)];
    ++r.n;
    if (a.n <= options.warmup_per_category) continue;
    ++a.scored;
    ++r.n_scored;
    const double actual = static_cast<double>(rec.prompt_tokens);
    const double ape = std::abs(static_cast<double>(e.prompt_tokens) - actual) / actual;
    a.ape += ape;
    ape_all += ape;
    a.sum_est += static_cast<double>(e.prompt_tokens);
    a.sum_true += actual;
    Acc& sz = by_size[rec.prompt_tokens < 256    ? 0
                      : rec.prompt_tokens < 1024 ? 1
                      : rec.prompt_tokens < 4096 ? 2
                                                 : 3];
    ++sz.scored;
    sz.ape += ape;
    sz.sum_est += static_cast<double>(e.prompt_tokens);
    sz.sum_true += actual;
    const bool routed_long = e.routing_budget > options.boundary_tokens;
    const bool truly_long = rec.prompt_tokens + e.output_reserve > options.boundary_tokens;
    if (routed_long != truly_long) ++r.misroutes;
    if (truly_long && !routed_long) ++r.unsafe_misroutes;
  }
  for (const auto& [name, a] : acc) {
    CategoryResult c;
    c.name = name;
    c.n = a.n;
    c.n_scored = a.scored;
    c.content_classes = a.classes;
    if (a.scored > 0) {
      c.mape_after_warmup = a.ape / static_cast<double>(a.scored);
      c.calibration_error = std::abs(a.sum_est - a.sum_true) / a.sum_true;
      c.mean_signed_error = (a.sum_est - a.sum_true) / a.sum_true;
    }
    r.categories.push_back(std::move(c));
  }
  if (r.n_scored > 0) {
    const double n = static_cast<double>(r.n_scored);
    r.overall_mape_after_warmup = ape_all / n;
    r.misroute_rate = static_cast<double>(r.misroutes) / n;
    r.unsafe_misroute_rate = static_cast<double>(r.unsafe_misroutes) / n;
  }
  for (int i = 0; i < 4; ++i) {
    SizeResult sr;
    sr.name = kSizeNames[i];
    sr.n_scored = by_size[i].scored;
    if (sr.n_scored > 0) {
      sr.mape_after_warmup = by_size[i].ape / static_cast<double>(sr.n_scored);
      sr.mean_signed_error = (by_size[i].sum_est - by_size[i].sum_true) / by_size[i].sum_true;
    }
    r.sizes.push_back(std::move(sr));
  }
  r.estimator_categories = est.CategoryCount();
  return r;
}

namespace {
std::string Fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, v);
  return buf;
}
// A fraction, or null when nothing was scored (a group smaller than the warm-up).
std::string Num(int64_t scored, double v) { return scored > 0 ? Fmt("%.6f", v) : "null"; }

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (unsigned char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += static_cast<char>(ch);
    } else if (ch < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", ch);
      out += buf;
    } else {
      out += static_cast<char>(ch);
    }
  }
  return out + "\"";
}
}  // namespace

std::string FormatTable(const EvalReport& r, bool classes) {
  std::ostringstream o;
  char line[256];
  std::snprintf(line, sizeof(line),
                "mode %s: %" PRId64 " requests, %" PRId64 " scored after warm-up\n\n",
                r.mode.c_str(), r.n, r.n_scored);
  o << line;
  std::snprintf(line, sizeof(line), "%-20s %6s %6s %9s %12s %11s\n", "category", "n", "scored",
                "MAPE %", "calib err %", "bias %");
  o << line;
  for (const CategoryResult& c : r.categories) {
    std::snprintf(line, sizeof(line), "%-20s %6" PRId64 " %6" PRId64 " %9.2f %12.2f %+11.2f\n",
                  c.name.c_str(), c.n, c.n_scored, 100 * c.mape_after_warmup,
                  100 * c.calibration_error, 100 * c.mean_signed_error);
    o << line;
  }
  std::snprintf(line, sizeof(line), "%-20s %6" PRId64 " %6" PRId64 " %9.2f\n", "overall", r.n,
                r.n_scored, 100 * r.overall_mape_after_warmup);
  o << line << "\n";
  std::snprintf(line, sizeof(line), "%-20s %6s %9s %11s\n", "true prompt tokens", "scored",
                "MAPE %", "bias %");
  o << line;
  for (const SizeResult& sz : r.sizes) {
    std::snprintf(line, sizeof(line), "%-20s %6" PRId64 " %9.2f %+11.2f\n", sz.name.c_str(),
                  sz.n_scored, 100 * sz.mape_after_warmup, 100 * sz.mean_signed_error);
    o << line;
  }
  o << "\n";
  if (classes) {
    o << "content classes (ClassifyContent) per category\n";
    for (const CategoryResult& c : r.categories) {
      o << c.name << ":";
      for (int k = 0; k < kNumContentClasses; ++k) {
        if (c.content_classes[static_cast<size_t>(k)] == 0) continue;
        o << " " << ContentClassName(static_cast<ContentClass>(k)) << " "
          << c.content_classes[static_cast<size_t>(k)];
      }
      o << "\n";
    }
    o << "\n";
  }
  std::snprintf(
      line, sizeof(line), "misrouting: %.2f %% (%" PRId64 "), unsafe: %.2f %% (%" PRId64 ")\n",
      100 * r.misroute_rate, r.misroutes, 100 * r.unsafe_misroute_rate, r.unsafe_misroutes);
  o << line;
  return o.str();
}

std::string FormatJson(const EvalReport& r) {
  std::string o = "{\"mode\":" + JsonString(r.mode) + ",\"categories\":{";
  bool first = true;
  for (const CategoryResult& c : r.categories) {
    if (!first) o += ",";
    first = false;
    o += JsonString(c.name) + ":{\"n\":" + std::to_string(c.n) +
         ",\"n_after_warmup\":" + std::to_string(c.n_scored) +
         ",\"mape_after_warmup\":" + Num(c.n_scored, c.mape_after_warmup) +
         ",\"calibration_error\":" + Num(c.n_scored, c.calibration_error) + "}";
  }
  o += "},\"n\":" + std::to_string(r.n) + ",\"n_after_warmup\":" + std::to_string(r.n_scored) +
       ",\"overall_mape_after_warmup\":" + Num(r.n_scored, r.overall_mape_after_warmup) +
       ",\"misroute_rate\":" + Num(r.n_scored, r.misroute_rate) +
       ",\"unsafe_misroute_rate\":" + Num(r.n_scored, r.unsafe_misroute_rate) + "}";
  return o;
}

}  // namespace tokenpool::parse
