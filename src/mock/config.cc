#include "mock/config.h"

#include <boost/json.hpp>
#include <cmath>
#include <string>
#include <utility>

#include "tokenpool/units.h"

namespace tokenpool::mock {

Status FaultConfig::Validate() const {
  auto share = [](double v) { return std::isfinite(v) && v >= 0 && v <= 1; };
  // At most kMaxDurationSeconds (1e9 s): a delay past Time's range would overflow.
  auto delay_ms = [](double v) { return v >= 0 && v <= kMaxDurationSeconds * 1e3; };
  if (!share(fail_rate)) return InvalidArgument("faults.fail_rate: must be in [0, 1]");
  if (fail_status != 500 && fail_status != 503) {
    return InvalidArgument("faults.fail_status: must be 500 or 503");
  }
  if (!delay_ms(added_latency_ms)) {
    return InvalidArgument("faults.added_latency_ms: must be in [0, 1e12]");
  }
  if (!delay_ms(first_token_stall_ms)) {
    return InvalidArgument("faults.first_token_stall_ms: must be in [0, 1e12]");
  }
  if (!share(drop_rate)) return InvalidArgument("faults.drop_rate: must be in [0, 1]");
  return Status::Ok();
}

Status ApplyFaultsJson(std::string_view json, FaultConfig* faults) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(json, ec);
  if (ec) return InvalidArgument("faults: malformed JSON: " + ec.message());
  if (!v.is_object()) return InvalidArgument("faults: expected a JSON object");
  FaultConfig next = *faults;
  for (const auto& [key, value] : v.as_object()) {
    if (!value.is_number()) {
      return InvalidArgument("faults." + std::string(key) + ": expected a number");
    }
    const double d = value.to_number<double>();
    if (key == "fail_rate") {
      next.fail_rate = d;
    } else if (key == "fail_status") {
      next.fail_status = static_cast<int>(d);
    } else if (key == "added_latency_ms") {
      next.added_latency_ms = d;
    } else if (key == "first_token_stall_ms") {
      next.first_token_stall_ms = d;
    } else if (key == "drop_rate") {
      next.drop_rate = d;
    } else {
      return InvalidArgument("faults." + std::string(key) + ": unknown field");
    }
  }
  if (Status s = next.Validate(); !s.ok()) return s;
  *faults = next;
  return Status::Ok();
}

std::string FaultsJson(const FaultConfig& f) {
  boost::json::object o;
  o["fail_rate"] = f.fail_rate;
  o["fail_status"] = f.fail_status;
  o["added_latency_ms"] = f.added_latency_ms;
  o["first_token_stall_ms"] = f.first_token_stall_ms;
  o["drop_rate"] = f.drop_rate;
  return boost::json::serialize(o);
}

Status MockConfig::Validate() const {
  // Model time is wall time × K in int64 nanoseconds: at 1e300 it overflowed at once (negative
  // latencies); at K = 1e4 it lasts 29 years of model time, 10 days of wall time.
  if (!(speedup >= 1e-3 && speedup <= 1e4)) {
    return InvalidArgument("--speedup: must be in [0.001, 10000]");
  }
  for (const auto& [value, flag] : {std::pair{&max_model_len, "--max-model-len"},
                                    {&max_num_seqs, "--max-num-seqs"},
                                    {&num_gpu_blocks_override, "--num-gpu-blocks-override"}}) {
    if (*value && **value <= 0) {
      return InvalidArgument(std::string(flag) + ": must be > 0 (leave it out for the " +
                             "default), got " + std::to_string(**value));
    }
  }
  if (default_max_tokens <= 0) return InvalidArgument("--default-max-tokens: must be > 0");
  Status s = faults.Validate();
  if (s.ok()) return s;
  // The user typed flags: "faults.fail_rate: ..." -> "--fail-rate: ...".
  std::string m = s.message();
  if (m.rfind("faults.", 0) == 0) {
    const size_t colon = m.find(':');
    std::string flag = "--" + m.substr(7, colon - 7);
    for (char& ch : flag) ch = ch == '_' ? '-' : ch;
    m = flag + m.substr(colon);
  }
  return InvalidArgument(m);
}

}  // namespace tokenpool::mock
