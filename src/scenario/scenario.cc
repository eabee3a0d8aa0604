// Scenario YAML -> sim::SimConfig. Every value is read through one helper that records the
// line of each field, so both parse errors and the config's Validate() errors name file:line.

#include "scenario/scenario.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <utility>

#include "tokenpool/profile.h"
#include "tokenpool/text_file.h"
#include "tokenpool/trace.h"
#include "tokenpool/units.h"

namespace tokenpool::scenario {
namespace {

using sim::ArrivalProcess;
using sim::ArrivalSpec;
using sim::ContentCategory;

class Reader {
 public:
  Reader(std::string source, std::string base_dir)
      : source_(std::move(source)), base_dir_(std::move(base_dir)) {}

  Status Error(const YAML::Node& n, const std::string& field, const std::string& rule) const {
    const int line = n.IsDefined() && n.Mark().line >= 0 ? n.Mark().line + 1 : 0;
    return InvalidArgument(source_ + ":" + std::to_string(line) + ": " + field + ": " + rule);
  }
  void Note(const std::string& field, const YAML::Node& n) {
    if (n.IsDefined() && n.Mark().line >= 0) lines_[field] = n.Mark().line + 1;
  }
  // The line of `field` or of its nearest recorded parent.
  int LineOf(std::string field) const {
    for (;;) {
      auto it = lines_.find(field);
      if (it != lines_.end()) return it->second;
      const size_t cut = field.find_last_of(".[");
      if (cut == std::string::npos || cut == 0) return 1;
      field.resize(cut);
    }
  }
  // "pools[0].replicas: must be >= 1" -> "<source>:<line>: pools[0].replicas: must be >= 1".
  Status Locate(const Status& s) const {
    const std::string& m = s.message();
    const size_t colon = m.find(':');
    const std::string field = colon == std::string::npos ? m : m.substr(0, colon);
    return Status(s.code(), source_ + ":" + std::to_string(LineOf(field)) + ": " + m);
  }

  Status CheckKeys(const YAML::Node& map, const std::string& path,
                   std::initializer_list<const char*> allowed) {
    if (!map.IsMap()) return Error(map, path.empty() ? "(top level)" : path, "expected a mapping");
    Note(path, map);
    std::vector<std::string> seen;
    for (const auto& kv : map) {
      const std::string key = kv.first.as<std::string>();
      // yaml-cpp keeps a repeated key and lookups find the first: `seed: 1` then `seed: 2`
      // would run seed 1.
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
        return Error(kv.first, Join(path, key), "appears twice in this mapping");
      }
      seen.push_back(key);
      bool ok = false;
      for (const char* a : allowed) ok |= key == a;
      if (!ok) {
        std::string list;
        for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
        return Error(kv.first, Join(path, key), "unknown field (known: " + list + ")");
      }
    }
    return Status::Ok();
  }

  static std::string Join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  template <typename T>
  Status Get(const YAML::Node& map, const char* key, const std::string& path, T* out,
             const char* type_name) {
    const YAML::Node n = map[key];
    if (!n.IsDefined() || n.IsNull()) return Status::Ok();
    const std::string field = Join(path, key);
    Note(field, n);
    try {
      *out = n.as<T>();
    } catch (const YAML::Exception&) {
      return Error(n, field, std::string("expected ") + type_name + ", got \"" + Scalar(n) + "\"");
    }
    return Status::Ok();
  }
  Status GetD(const YAML::Node& m, const char* k, const std::string& p, double* o) {
    if (Status s = Get(m, k, p, o, "a number"); !s.ok()) return s;
    if (!std::isfinite(*o)) {  // YAML's .inf and .nan: no field takes them
      return Error(m[k], Join(p, k), "expected a finite number, got \"" + Scalar(m[k]) + "\"");
    }
    return Status::Ok();
  }
  Status GetS(const YAML::Node& m, const char* k, const std::string& p, std::string* o) {
    return Get(m, k, p, o, "a string");
  }
  Status GetI(const YAML::Node& m, const char* k, const std::string& p, int32_t* o) {
    return Get(m, k, p, o, "an integer");
  }
  Status GetB(const YAML::Node& m, const char* k, const std::string& p, bool* o) {
    return Get(m, k, p, o, "true or false");
  }
  Status Require(const YAML::Node& map, const char* key, const std::string& path) {
    if (!map[key].IsDefined() || map[key].IsNull()) {
      return Error(map, Join(path, key), "required field is missing");
    }
    return Status::Ok();
  }

  Result<sim::TraceRows> LoadTrace(const YAML::Node& n, const std::string& field) {
    if (!n.IsScalar()) return Error(n, field, "expected a file path");
    const std::string rel = n.Scalar();
    const std::string path = !rel.empty() && rel[0] == '/' ? rel : base_dir_ + rel;
    auto it = traces_.find(path);
    if (it != traces_.end()) return it->second;
    Result<std::string> text = ReadTextFile(path);
    if (!text.ok()) {
      return Error(n, field, "cannot read trace file \"" + rel + "\": " + text.status().message());
    }
    Result<Trace> t = ParseTrace(*text, rel);
    if (!t.ok()) return Error(n, field, t.status().message());
    auto rows = std::make_shared<const std::vector<TraceRequest>>(std::move(t->requests));
    traces_.emplace(path, rows);
    return sim::TraceRows(rows);
  }

  static std::string Scalar(const YAML::Node& n) {
    return n.IsScalar() ? n.Scalar() : std::string("<not a scalar>");
  }

  Status ReadVector(const YAML::Node& n, const std::string& path, ResourceVector* v) {
    if (Status s = CheckKeys(n, path, {"token_rate", "kv_tokens", "concurrency"}); !s.ok()) {
      return s;
    }
    if (Status s = GetD(n, "token_rate", path, &v->token_rate); !s.ok()) return s;
    if (Status s = GetD(n, "kv_tokens", path, &v->kv_tokens); !s.ok()) return s;
    return GetD(n, "concurrency", path, &v->concurrency);
  }

  Status ReadArrivals(const YAML::Node& n, const std::string& path, ArrivalSpec* a) {
    if (Status s = CheckKeys(n, path,
                             {"process", "rate_rps", "rate_schedule", "trace", "start_s", "end_s",
                              "on_mean_s", "off_mean_s", "seed"});
        !s.ok()) {
      return s;
    }
    std::string process = "poisson";
    if (Status s = GetS(n, "process", path, &process); !s.ok()) return s;
    if (process == "trace") {
      a->process = ArrivalProcess::kTrace;
      a->rate_rps = 0;
    } else if (process == "poisson") {
      a->process = ArrivalProcess::kPoisson;
    } else if (process == "onoff") {
      a->process = ArrivalProcess::kOnOff;
    } else {
      return Error(n["process"], path + ".process",
                   "unknown process \"" + process + "\" (known: trace, poisson, onoff)");
    }
    if (Status s = GetD(n, "rate_rps", path, &a->rate_rps); !s.ok()) return s;
    if (Status s = GetD(n, "start_s", path, &a->start_s); !s.ok()) return s;
    if (Status s = GetD(n, "end_s", path, &a->end_s); !s.ok()) return s;
    if (Status s = GetD(n, "on_mean_s", path, &a->on_mean_s); !s.ok()) return s;
    if (Status s = GetD(n, "off_mean_s", path, &a->off_mean_s); !s.ok()) return s;
    if (n["seed"].IsDefined()) {
      int64_t seed = 0;
      if (Status s = Get(n, "seed", path, &seed, "an integer"); !s.ok()) return s;
      if (seed < 0) return Error(n["seed"], path + ".seed", "must be >= 0");
      a->seed = static_cast<uint64_t>(seed);
    }
    if (n["rate_schedule"].IsDefined()) {
      const YAML::Node sched = n["rate_schedule"];
      const std::string sp = path + ".rate_schedule";
      if (n["rate_rps"].IsDefined()) {
        return Error(n["rate_rps"], path + ".rate_rps", "give rate_rps or rate_schedule, not both");
      }
      if (!sched.IsSequence() || sched.size() == 0) {
        return Error(sched, sp, "expected a non-empty list of {at_s, rps}");
      }
      Note(sp, sched);
      for (size_t i = 0; i < sched.size(); ++i) {
        const std::string p = sp + "[" + std::to_string(i) + "]";
        if (Status s = CheckKeys(sched[i], p, {"at_s", "rps"}); !s.ok()) return s;
        for (const char* k : {"at_s", "rps"}) {
          if (Status s = Require(sched[i], k, p); !s.ok()) return s;
        }
        sim::RatePoint pt;
        if (Status s = GetD(sched[i], "at_s", p, &pt.at_s); !s.ok()) return s;
        if (Status s = GetD(sched[i], "rps", p, &pt.rps); !s.ok()) return s;
        a->rate_schedule.push_back(pt);
      }
    }
    if (Status s = Require(n, "trace", path); !s.ok()) return s;
    Note(path + ".lengths", n["trace"]);
    Note(path + ".trace", n["trace"]);
    Result<sim::TraceRows> rows = LoadTrace(n["trace"], path + ".trace");
    if (!rows.ok()) return rows.status();
    a->lengths = *rows;
    a->source = Scalar(n["trace"]);
    return Status::Ok();
  }

  Status ReadCategories(const YAML::Node& n, const std::string& path,
                        std::vector<ContentCategory>* out) {
    if (!n.IsSequence()) return Error(n, path, "expected a list");
    Note(path, n);
    out->clear();
    for (size_t i = 0; i < n.size(); ++i) {
      const std::string p = path + "[" + std::to_string(i) + "]";
      ContentCategory c;
      if (Status s = CheckKeys(n[i], p, {"name", "share", "bytes_per_token", "noise"}); !s.ok()) {
        return s;
      }
      if (Status s = GetS(n[i], "name", p, &c.name); !s.ok()) return s;
      if (Status s = GetD(n[i], "share", p, &c.share); !s.ok()) return s;
      if (Status s = GetD(n[i], "bytes_per_token", p, &c.bytes_per_token); !s.ok()) return s;
      if (Status s = GetD(n[i], "noise", p, &c.noise); !s.ok()) return s;
      out->push_back(c);
    }
    return Status::Ok();
  }

  Status ReadPool(const YAML::Node& n, const std::string& path, sim::PoolSpec* p) {
    if (Status s = CheckKeys(n, path,
                             {"name", "profile", "max_model_len", "replicas", "min_replicas",
                              "max_replicas", "shape"});
        !s.ok()) {
      return s;
    }
    for (const char* k : {"name", "profile", "replicas"}) {
      if (Status s = Require(n, k, path); !s.ok()) return s;
    }
    if (Status s = GetS(n, "name", path, &p->name); !s.ok()) return s;
    std::string profile;
    if (Status s = GetS(n, "profile", path, &profile); !s.ok()) return s;
    Result<InstanceProfile> prof = FindProfile(profile);
    if (!prof.ok()) return Error(n["profile"], path + ".profile", prof.status().message());
    p->profile = *prof;
    int32_t len = 0;
    if (Status s = GetI(n, "max_model_len", path, &len); !s.ok()) return s;
    if (n["max_model_len"].IsDefined()) {
      if (len < 1) return Error(n["max_model_len"], path + ".max_model_len", "must be >= 1");
      p->profile = WithMaxModelLen(p->profile, len);
    }
    if (Status s = GetI(n, "replicas", path, &p->replicas); !s.ok()) return s;
    if (Status s = GetI(n, "min_replicas", path, &p->min_replicas); !s.ok()) return s;
    if (Status s = GetI(n, "max_replicas", path, &p->max_replicas); !s.ok()) return s;
    if (n["shape"].IsDefined()) {
      const std::string sp = path + ".shape";
      if (Status s = CheckKeys(n["shape"], sp, {"mean_prompt_tokens", "mean_output_tokens"});
          !s.ok()) {
        return s;
      }
      WorkloadShape w;
      if (Status s = GetD(n["shape"], "mean_prompt_tokens", sp, &w.mean_prompt_tokens); !s.ok()) {
        return s;
      }
      if (Status s = GetD(n["shape"], "mean_output_tokens", sp, &w.mean_output_tokens); !s.ok()) {
        return s;
      }
      if (Status s = w.Validate(); !s.ok()) return Error(n["shape"], sp, s.message());
      p->shape = w;
    }
    return Status::Ok();
  }

  Status ReadTenant(const YAML::Node& n, const std::string& path, sim::TenantSpec* t) {
    if (Status s = CheckKeys(n, path,
                             {"name", "class", "priority", "weight", "share", "guarantee_share",
                              "burst_share", "guarantee", "burst", "slo", "arrivals", "categories",
                              "rate_limit", "dedicated_share"});
        !s.ok()) {
      return s;
    }
    if (Status s = Require(n, "name", path); !s.ok()) return s;
    if (Status s = GetS(n, "name", path, &t->name); !s.ok()) return s;
    std::string cls = "elastic";
    if (Status s = GetS(n, "class", path, &cls); !s.ok()) return s;
    Result<EntitlementClass> c = ParseEntitlementClass(cls);
    if (!c.ok()) return Error(n["class"], path + ".class", c.status().message());
    t->cls = *c;
    if (Status s = GetI(n, "priority", path, &t->priority); !s.ok()) return s;
    if (Status s = GetD(n, "weight", path, &t->weight); !s.ok()) return s;
    if (Status s = GetD(n, "share", path, &t->share); !s.ok()) return s;
    if (Status s = GetD(n, "guarantee_share", path, &t->guarantee_share); !s.ok()) return s;
    if (Status s = GetD(n, "burst_share", path, &t->burst_share); !s.ok()) return s;
    if (Status s = GetD(n, "dedicated_share", path, &t->dedicated_share); !s.ok()) return s;
    if (n["dedicated_share"].IsDefined() && !(t->dedicated_share >= 0)) {
      return Error(n["dedicated_share"], path + ".dedicated_share", "must be in [0, 1]");
    }
    if (n["rate_limit"].IsDefined()) {
      const std::string rp = path + ".rate_limit";
      if (Status s = CheckKeys(n["rate_limit"], rp, {"requests_per_s", "tokens_per_s"}); !s.ok()) {
        return s;
      }
      if (Status s = GetD(n["rate_limit"], "requests_per_s", rp, &t->rate_limit_rps); !s.ok()) {
        return s;
      }
      if (Status s = GetD(n["rate_limit"], "tokens_per_s", rp, &t->rate_limit_tokens_per_s);
          !s.ok()) {
        return s;
      }
    }
    if (n["guarantee"].IsDefined()) {
      ResourceVector v;
      if (Status s = ReadVector(n["guarantee"], path + ".guarantee", &v); !s.ok()) return s;
      t->guarantee = v;
    }
    if (n["burst"].IsDefined()) {
      ResourceVector v;
      if (Status s = ReadVector(n["burst"], path + ".burst", &v); !s.ok()) return s;
      t->burst = v;
    }
    if (n["slo"].IsDefined()) {
      const YAML::Node s = n["slo"];
      const std::string sp = path + ".slo";
      if (Status st = CheckKeys(s, sp, {"ttft_s", "max_queue_wait_s", "tpot_s"}); !st.ok()) {
        return st;
      }
      double ttft = ToSeconds(t->slo.ttft_target), wait = -1;
      if (Status st = GetD(s, "ttft_s", sp, &ttft); !st.ok()) return st;
      if (Status st = GetD(s, "max_queue_wait_s", sp, &wait); !st.ok()) return st;
      if (Status st = GetD(s, "tpot_s", sp, &t->tpot_target_s); !st.ok()) return st;
      if (!IsDurationSeconds(ttft, false)) {
        return Error(s["ttft_s"], sp + ".ttft_s", "must be in (0, 1e9] seconds");
      }
      if (s["max_queue_wait_s"].IsDefined() && !IsDurationSeconds(wait, true)) {
        return Error(s["max_queue_wait_s"], sp + ".max_queue_wait_s",
                     "must be in [0, 1e9] seconds");
      }
      t->slo.ttft_target = Seconds(ttft);
      // Default queue wait: the TTFT target (a request that waits longer has missed it).
      t->slo.max_queue_wait = Seconds(wait >= 0 ? wait : ttft);
    }
    if (n["arrivals"].IsDefined()) {
      ArrivalSpec a;
      if (Status s = ReadArrivals(n["arrivals"], path + ".arrivals", &a); !s.ok()) return s;
      t->arrivals = std::move(a);
    }
    if (n["categories"].IsDefined()) {
      if (Status s = ReadCategories(n["categories"], path + ".categories", &t->categories);
          !s.ok()) {
        return s;
      }
    }
    return Status::Ok();
  }

  Result<Scenario> Read(const YAML::Node& root) {
    Scenario sc;
    sim::SimConfig& c = sc.config;
    if (Status s = CheckKeys(root, "",
                             {"name",
                              "seed",
                              "duration_s",
                              "warmup_s",
                              "drain_s",
                              "sample_interval_s",
                              "router",
                              "spill_utilization",
                              "estimator",
                              "admission",
                              "slo",
                              "pools",
                              "workload",
                              "categories",
                              "tenants",
                              "autoscale",
                              "capacity_events",
                              "sizing",
                              "rate_window_s",
                              "rate_limit_window_s"});
        !s.ok()) {
      return s;
    }
    if (Status s = GetS(root, "name", "", &c.name); !s.ok()) return s;
    int64_t seed = 1;
    if (Status s = Get(root, "seed", "", &seed, "an integer"); !s.ok()) return s;
    if (seed < 0) return Error(root["seed"], "seed", "must be >= 0");
    c.seed = static_cast<uint64_t>(seed);
    if (Status s = Require(root, "duration_s", ""); !s.ok()) return s;
    if (Status s = GetD(root, "duration_s", "", &c.duration_s); !s.ok()) return s;
    if (Status s = GetD(root, "warmup_s", "", &c.warmup_s); !s.ok()) return s;
    if (Status s = GetD(root, "drain_s", "", &c.drain_s); !s.ok()) return s;
    if (Status s = GetD(root, "sample_interval_s", "", &c.sample_interval_s); !s.ok()) return s;
    if (Status s = GetS(root, "router", "", &c.router); !s.ok()) return s;
    if (Status s = GetD(root, "spill_utilization", "", &c.router_config.spill_utilization);
        !s.ok()) {
      return s;
    }
    bool known_router = false;
    for (const RouterMode& m : RouterModes()) known_router |= m.name == c.router;
    if (!known_router) {
      return Error(root["router"], "router",
                   "unknown router \"" + c.router + "\"" + " (known: single, two-pool, spillover)");
    }
    std::string est = "ema";
    if (Status s = GetS(root, "estimator", "", &est); !s.ok()) return s;
    if (est == "oracle") {
      c.estimator = sim::EstimatorKind::kOracle;
    } else {
      bool known = false;
      for (const EstimatorMode& m : EstimatorModes()) known |= m.name == est;
      if (!known) {
        return Error(root["estimator"], "estimator",
                     "unknown estimator \"" + est + "\" (known: static, ema, linear, oracle)");
      }
      c.estimator_mode = est;
    }
    std::string admission = "token_pools";
    if (Status s = GetS(root, "admission", "", &admission); !s.ok()) return s;
    if (!sim::ParseAdmissionMode(admission, &c.admission)) {
      return Error(root["admission"], "admission",
                   "unknown admission \"" + admission +
                       "\" (known: token_pools, none, request_rate, token_rate, dedicated)");
    }
    if (Status s = GetD(root, "rate_limit_window_s", "", &c.rate_limit_window_s); !s.ok()) {
      return s;
    }
    double window = ToSeconds(c.pool_defaults.rate_window);
    if (Status s = GetD(root, "rate_window_s", "", &window); !s.ok()) return s;
    if (!IsDurationSeconds(window, false)) {
      return Error(root["rate_window_s"], "rate_window_s", "must be in (0, 1e9] seconds");
    }
    c.pool_defaults.rate_window = Seconds(window);
    if (root["slo"].IsDefined()) {
      if (Status s = CheckKeys(root["slo"], "slo", {"ttft_p99_s", "tpot_p99_s"}); !s.ok()) {
        return s;
      }
      if (Status s = GetD(root["slo"], "ttft_p99_s", "slo", &c.slo.ttft_p99_s); !s.ok()) return s;
      if (Status s = GetD(root["slo"], "tpot_p99_s", "slo", &c.slo.tpot_p99_s); !s.ok()) return s;
    }
    if (Status s = Require(root, "pools", ""); !s.ok()) return s;
    const YAML::Node pools = root["pools"];
    if (!pools.IsSequence()) return Error(pools, "pools", "expected a list");
    Note("pools", pools);
    for (size_t i = 0; i < pools.size(); ++i) {
      sim::PoolSpec p;
      if (Status s = ReadPool(pools[i], "pools[" + std::to_string(i) + "]", &p); !s.ok()) {
        return s;
      }
      c.pools.push_back(std::move(p));
    }
    if (root["workload"].IsDefined()) {
      ArrivalSpec a;
      if (Status s = ReadArrivals(root["workload"], "workload", &a); !s.ok()) return s;
      c.workload = std::move(a);
    }
    if (root["categories"].IsDefined()) {
      if (Status s = ReadCategories(root["categories"], "categories", &c.categories); !s.ok()) {
        return s;
      }
    }
    if (Status s = Require(root, "tenants", ""); !s.ok()) return s;
    const YAML::Node tenants = root["tenants"];
    if (!tenants.IsSequence()) return Error(tenants, "tenants", "expected a list");
    Note("tenants", tenants);
    for (size_t i = 0; i < tenants.size(); ++i) {
      sim::TenantSpec t;
      if (Status s = ReadTenant(tenants[i], "tenants[" + std::to_string(i) + "]", &t); !s.ok()) {
        return s;
      }
      c.tenants.push_back(std::move(t));
    }
    if (root["autoscale"].IsDefined()) {
      const YAML::Node a = root["autoscale"];
      if (Status s = CheckKeys(a, "autoscale",
                               {"enabled", "interval_s", "startup_delay_s", "target_utilization",
                                "scale_down_stabilization_s"});
          !s.ok()) {
        return s;
      }
      c.autoscale.enabled = true;
      if (Status s = GetB(a, "enabled", "autoscale", &c.autoscale.enabled); !s.ok()) return s;
      if (Status s = GetD(a, "interval_s", "autoscale", &c.autoscale.interval_s); !s.ok()) {
        return s;
      }
      if (Status s = GetD(a, "startup_delay_s", "autoscale", &c.autoscale.startup_delay_s);
          !s.ok()) {
        return s;
      }
      if (Status s =
              GetD(a, "target_utilization", "autoscale", &c.autoscale.config.target_utilization);
          !s.ok()) {
        return s;
      }
      double stab = ToSeconds(c.autoscale.config.scale_down_stabilization);
      if (Status s = GetD(a, "scale_down_stabilization_s", "autoscale", &stab); !s.ok()) return s;
      if (!IsDurationSeconds(stab, true)) {
        return Error(a["scale_down_stabilization_s"], "autoscale.scale_down_stabilization_s",
                     "must be in [0, 1e9] seconds");
      }
      c.autoscale.config.scale_down_stabilization = Seconds(stab);
    }
    if (root["capacity_events"].IsDefined()) {
      const YAML::Node evs = root["capacity_events"];
      if (!evs.IsSequence()) return Error(evs, "capacity_events", "expected a list");
      for (size_t i = 0; i < evs.size(); ++i) {
        const std::string p = "capacity_events[" + std::to_string(i) + "]";
        if (Status s = CheckKeys(evs[i], p, {"at_s", "pool", "replicas"}); !s.ok()) return s;
        for (const char* k : {"at_s", "pool", "replicas"}) {
          if (Status s = Require(evs[i], k, p); !s.ok()) return s;
        }
        sim::CapacityEvent e;
        if (Status s = GetD(evs[i], "at_s", p, &e.at_s); !s.ok()) return s;
        if (Status s = GetI(evs[i], "replicas", p, &e.replicas); !s.ok()) return s;
        std::string pool;
        if (Status s = GetS(evs[i], "pool", p, &pool); !s.ok()) return s;
        e.pool = -1;
        for (size_t k = 0; k < c.pools.size(); ++k) {
          if (c.pools[k].name == pool) e.pool = static_cast<int32_t>(k);
        }
        if (e.pool < 0) return Error(evs[i]["pool"], p + ".pool", "no pool named " + pool);
        c.capacity_events.push_back(e);
      }
    }
    if (root["sizing"].IsDefined()) {
      if (Status s = CheckKeys(root["sizing"], "sizing", {"max_replicas", "per_tenant_slo"});
          !s.ok()) {
        return s;
      }
      if (Status s = GetI(root["sizing"], "max_replicas", "sizing", &sc.sizing.max_replicas);
          !s.ok()) {
        return s;
      }
      if (Status s = GetB(root["sizing"], "per_tenant_slo", "sizing", &sc.sizing.per_tenant_slo);
          !s.ok()) {
        return s;
      }
    }
    if (Status s = c.Validate(); !s.ok()) return Locate(s);
    if (Status s = sc.sizing.Validate(); !s.ok()) return Locate(s);
    return sc;
  }

 private:
  std::string source_;
  std::string base_dir_;
  std::map<std::string, int> lines_;
  std::map<std::string, sim::TraceRows> traces_;
};

}  // namespace

Result<Scenario> LoadScenarioText(std::string_view text, const std::string& source,
                                  const std::string& base_dir) {
  Reader reader(source, base_dir.empty() || base_dir.back() == '/' ? base_dir : base_dir + "/");
  try {
    const YAML::Node root = YAML::Load(std::string(text));
    if (!root.IsDefined() || root.IsNull()) {
      return InvalidArgument(source + ":1: (top level): the file is empty");
    }
    return reader.Read(root);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(source + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

Result<Scenario> LoadScenarioFile(const std::string& path) {
  Result<std::string> text = ReadTextFile(path);
  if (!text.ok()) {
    return Status(text.status().code(),
                  path + ": cannot read the scenario file: " + text.status().message());
  }
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  return LoadScenarioText(*text, path, dir);
}

}  // namespace tokenpool::scenario
