#include "load/client.h"

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <exception>
#include <limits>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "load/text.h"

namespace tokenpool::load {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto kTuple = net::as_tuple(net::use_awaitable);

double MsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

Clock::duration Secs(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// Seconds this process has been runnable but waiting for a CPU (/proc/self/schedstat's second
// field, Linux); -1 when unreadable.
double CpuWaitSeconds() {
  std::FILE* f = std::fopen("/proc/self/schedstat", "r");
  if (f == nullptr) return -1;
  unsigned long long on_cpu = 0, waiting = 0;
  const int n = std::fscanf(f, "%llu %llu", &on_cpu, &waiting);
  std::fclose(f);
  return n == 2 ? static_cast<double>(waiting) * 1e-9 : -1;
}

double CpuSeconds(const timeval& tv) {
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) * 1e-6;
}

bool JsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Where the value of member `"name"` (quoted in `name`) begins in a JSON event, past the
// colon and JSON's whitespace around it (`"content": "x"` as well as `"content":"x"`); npos
// when no occurrence of the name is followed by a colon.
size_t ValueAt(std::string_view ev, std::string_view name) {
  for (size_t at = ev.find(name); at != std::string_view::npos; at = ev.find(name, at + 1)) {
    size_t p = at + name.size();
    while (p < ev.size() && JsonSpace(ev[p])) ++p;
    if (p >= ev.size() || ev[p] != ':') continue;
    ++p;
    while (p < ev.size() && JsonSpace(ev[p])) ++p;
    return p;
  }
  return std::string_view::npos;
}

// Reads `"name":<integer>` from a JSON event; -1 when absent.
int64_t IntField(std::string_view ev, std::string_view name) {
  size_t p = ValueAt(ev, name);
  if (p == std::string_view::npos) return -1;
  int64_t v = 0;
  bool any = false;
  while (p < ev.size() && ev[p] >= '0' && ev[p] <= '9') {
    v = v * 10 + (ev[p++] - '0');
    any = true;
  }
  return any ? v : -1;
}

// The live percentiles: log buckets 5% wide from 1 us (exact ones come at the end).
class LogHistogram {
 public:
  void Add(double ms) {
    const double us = std::max(1.0, ms * 1000);
    const size_t i = std::min(kBuckets - 1, static_cast<size_t>(std::log(us) * 20));
    ++counts_[i];
    ++total_;
  }
  double Quantile(double p) const {
    if (total_ == 0) return 0;
    const auto rank = static_cast<int64_t>(std::ceil(p * static_cast<double>(total_)));
    int64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::exp((static_cast<double>(i) + 0.5) / 20) / 1000;
    }
    return 0;
  }

 private:
  static constexpr size_t kBuckets = 400;  // e^(400/20) us: beyond any timeout
  std::array<int64_t, kBuckets> counts_{};
  int64_t total_ = 0;
};

struct Conn {
  explicit Conn(net::io_context& io) : stream(io) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
};

class Runner {
 public:
  Runner(const LoadConfig& config, const LoadPlan& plan, std::FILE* progress)
      : config_(config),
        plan_(plan),
        progress_out_(progress),
        text_(config.seed),
        dispatch_timer_(io_),
        drain_timer_(io_),
        progress_timer_(io_),
        signals_(io_) {
    result_.records.resize(plan.requests.size());
  }

  Result<LoadResult> Run() {
    std::string host;
    uint16_t port = 0;
    if (Status s = ParseTarget(config_.target, &host, &port); !s.ok()) return s;
    host_header_ = host + ":" + std::to_string(port);
    boost::system::error_code ec;
    tcp::resolver resolver(io_);
    auto eps = resolver.resolve(host, std::to_string(port), ec);
    if (ec || eps.empty()) {
      return Status(StatusCode::kUnavailable,
                    "cannot resolve \"" + host + "\": " + (ec ? ec.message() : "no address"));
    }
    endpoint_ = eps.begin()->endpoint();
    RaiseFileLimit();
    ConnectionCap();

    Status check = Internal("start-up check did not run");
    net::co_spawn(io_, Check(), [&](std::exception_ptr e, Status s) {
      check = e ? Internal("start-up check failed") : std::move(s);
    });
    io_.run();
    if (!check.ok()) return check;
    io_.restart();

    // Pre-render the fixed part of each tenant's request head.
    for (const PlanTenant& t : plan_.tenants) {
      std::string head = "POST /v1/chat/completions HTTP/1.1\r\nHost: " + host_header_ +
                         "\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\n";
      if (!t.key.empty()) head += "Authorization: Bearer " + t.key + "\r\n";
      for (const auto& [name, value] : config_.headers) head += name + ": " + value + "\r\n";
      heads_.push_back(std::move(head));
    }

    rusage r0{};
    getrusage(RUSAGE_SELF, &r0);
    const double wait0 = CpuWaitSeconds();
    // A short lead so that the first due time is not already behind when the loop starts.
    t0_ = Clock::now() + std::chrono::milliseconds(20);
    // SIGINT/SIGTERM: no more arrivals, what is in flight cut, and the run reported as far
    // as it went (a second signal, the default handler back, ends the process).
    signals_.add(SIGINT);
    signals_.add(SIGTERM);
    signals_.async_wait([this](const boost::system::error_code& sec, int sig) {
      if (!sec) Interrupt(sig);
    });
    net::co_spawn(io_, Dispatch(), net::detached);
    if (progress_out_ != nullptr) net::co_spawn(io_, Progress(), net::detached);
    io_.run();
    boost::system::error_code ignored;
    signals_.clear(ignored);
    if (result_.interrupted_by != 0) result_.records.resize(dispatched_count_);
    rusage r1{};
    getrusage(RUSAGE_SELF, &r1);
    result_.cpu_user_s = CpuSeconds(r1.ru_utime) - CpuSeconds(r0.ru_utime);
    result_.cpu_system_s = CpuSeconds(r1.ru_stime) - CpuSeconds(r0.ru_stime);
    const double wait1 = CpuWaitSeconds();
    result_.cpu_wait_s = wait0 >= 0 && wait1 >= 0 ? wait1 - wait0 : -1;
    result_.wall_s = std::max(0.0, MsBetween(t0_, end_) / 1000);
    result_.send_window_s = sent_ > 1 ? MsBetween(first_send_, last_send_) / 1000 : 0;
    std::vector<double> lags;
    lags.reserve(result_.records.size());
    for (const RequestRecord& rec : result_.records) {
      if (rec.sent) lags.push_back(rec.send_lag_ms);
    }
    if (!lags.empty()) {
      result_.send_lag_max_ms = *std::max_element(lags.begin(), lags.end());
      result_.send_lag_p50_ms = Quantile(lags, 0.5);
      result_.send_lag_p99_ms = Quantile(lags, 0.99);
    }
    result_.model = model_;
    return std::move(result_);
  }

 private:
  static void RaiseFileLimit() {
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
      lim.rlim_cur = lim.rlim_max;
      setrlimit(RLIMIT_NOFILE, &lim);
    }
  }

  // --max-connections, or the open-file limit less 64 descriptors for the process itself
  // (files, epoll, timers) where that is lower (LoadResult says which).
  int64_t ConnectionCap() {
    if (cap_ > 0) return cap_;
    rlimit lim{};
    int64_t cap = config_.max_connections;
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY) {
      cap = std::min<int64_t>(cap, static_cast<int64_t>(lim.rlim_cur) - 64);
    }
    cap_ = std::max<int64_t>(1, cap);
    result_.connection_cap = cap_;
    result_.cap_by_file_limit = cap_ < config_.max_connections;
    return cap_;
  }

  net::awaitable<std::unique_ptr<Conn>> Connect(boost::system::error_code* ec) {
    auto c = std::make_unique<Conn>(io_);
    c->stream.expires_after(Secs(config_.connect_timeout_s));
    auto [e] = co_await c->stream.async_connect(endpoint_, kTuple);
    *ec = e;
    if (e) co_return nullptr;
    c->stream.socket().set_option(tcp::no_delay(true), *ec);
    c->stream.expires_never();
    ++result_.connections_opened;
    co_return c;
  }

  std::string Where() const { return host_header_; }

  net::awaitable<Status> Check() {
    boost::system::error_code ec;
    std::unique_ptr<Conn> c = co_await Connect(&ec);
    if (!c) {
      const std::string why =
          ec == beast::error::timeout
              ? "no answer within " + std::to_string(config_.connect_timeout_s) + " s"
              : ec.message();
      co_return Status(StatusCode::kUnavailable, "cannot connect to " + Where() + ": " + why +
                                                     " (is the gateway or mock listening there?)");
    }
    model_ = config_.model;
    if (model_.empty()) {
      http::request<http::empty_body> req(http::verb::get, "/v1/models", 11);
      req.set(http::field::host, host_header_);
      if (!plan_.tenants.empty() && !plan_.tenants[0].key.empty()) {
        req.set(http::field::authorization, "Bearer " + plan_.tenants[0].key);
      }
      c->stream.expires_after(Secs(config_.connect_timeout_s));
      auto [we, wn] = co_await http::async_write(c->stream, req, kTuple);
      http::response<http::string_body> res;
      boost::system::error_code re = we;
      if (!we) {
        auto [e2, rn] = co_await http::async_read(c->stream, c->buffer, res, kTuple);
        re = e2;
      }
      if (re) {
        co_return Status(StatusCode::kUnavailable, "GET /v1/models on " + Where() + ": " +
                                                       re.message() +
                                                       " (is the gateway or mock listening "
                                                       "there?)");
      }
      if (res.result_int() == 200) {
        boost::system::error_code je;
        boost::json::value v = boost::json::parse(res.body(), je);
        if (!je && v.is_object()) {
          const auto* data = v.as_object().if_contains("data");
          if (data != nullptr && data->is_array() && !data->as_array().empty() &&
              data->as_array()[0].is_object()) {
            if (const auto* id = data->as_array()[0].as_object().if_contains("id");
                id != nullptr && id->is_string()) {
              model_ = std::string(id->as_string());
            }
          }
        }
      }
      if (model_.empty()) {
        co_return FailedPrecondition("GET /v1/models on " + Where() + " answered " +
                                     std::to_string(res.result_int()) +
                                     " without a model id; pass --model");
      }
      if (!res.keep_alive()) co_return Status::Ok();
    }
    c->stream.expires_never();
    ++open_;
    result_.max_open_connections = std::max(result_.max_open_connections, open_);
    idle_.push_back(std::move(c));
    co_return Status::Ok();
  }

  void Interrupt(int sig) {
    result_.interrupted_by = sig;
    signals_.clear();  // the default handlers again: a second signal ends the process
    dispatch_timer_.cancel();
    CutInFlight();
    drain_timer_.cancel();
  }

  // What is still running is cut (recorded as timeouts); a connect still under way sends
  // nothing (Issue checks drain_expired_).
  void CutInFlight() {
    drain_expired_ = true;
    for (auto& [conn, idx] : busy_) {
      boost::system::error_code ignored;
      conn->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
      conn->stream.cancel();
    }
  }

  net::awaitable<void> Dispatch() {
    const size_t n = plan_.requests.size();
    size_t i = 0;
    while (i < n && result_.interrupted_by == 0) {
      const Clock::time_point due = t0_ + Secs(plan_.requests[i].at_s);
      if (Clock::now() < due) {
        dispatch_timer_.expires_at(due);
        co_await dispatch_timer_.async_wait(kTuple);
        if (result_.interrupted_by != 0) break;
      }
      const Clock::time_point now = Clock::now();
      while (i < n && t0_ + Secs(plan_.requests[i].at_s) <= now) {
        ++in_flight_;  // before the spawn: the coroutine starts only when this one yields
        // An exception out of a request (std::bad_alloc building a huge body...) ends up here
        // rather than in detached's void: recorded with its reason, and accounted.
        net::co_spawn(io_, Issue(i), [this, i](std::exception_ptr e) {
          if (e) Failed(i, e);
        });
        ++i;
      }
    }
    dispatched_ = true;
    dispatched_count_ = i;
    const double last = n > 0 ? plan_.requests.back().at_s : 0;
    drain_deadline_ = t0_ + Secs(std::max(last, plan_.duration_s) + config_.drain_s);
    if (in_flight_ > 0 && result_.interrupted_by == 0) {
      drain_timer_.expires_at(drain_deadline_);
      auto [ec] = co_await drain_timer_.async_wait(kTuple);
      if (!ec && in_flight_ > 0) CutInFlight();  // past the drain
    }
    end_ = Clock::now();
    finished_ = true;
    progress_timer_.cancel();
    boost::system::error_code ignored;
    signals_.cancel(ignored);  // its wait would keep the run going
    for (auto& c : idle_) {
      c->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
      c->stream.close();
    }
    idle_.clear();
  }

  // Issue(i) ended with an exception: the request is the generator's error, with the reason.
  void Failed(size_t i, std::exception_ptr e) {
    RequestRecord& rec = result_.records[i];
    rec.outcome = Outcome::kGenerator;
    rec.e2e_ms = -1;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      rec.error = std::string("generator: ") + ex.what();
    } catch (...) {
      rec.error = "generator: unknown exception";
    }
    ++errors_;
    Finish();
  }

  void Finish() {
    --in_flight_;
    if (dispatched_ && in_flight_ == 0) drain_timer_.cancel();
  }

  net::awaitable<void> Issue(size_t i) {
    RequestRecord& rec = result_.records[i];
    const PlannedRequest& pr = plan_.requests[i];
    const Clock::time_point due = t0_ + Secs(pr.at_s);

    std::string message = heads_[pr.tenant];
    message += "x-tokenpool-category: ";
    message += plan_.categories[pr.category].name;
    message += "\r\nContent-Length: ";
    std::string body;
    body.reserve(static_cast<size_t>(pr.prompt_tokens) * 5 + 256);
    text_.AppendChatBody(model_, plan_.categories[pr.category].type, pr.prompt_tokens,
                         pr.output_tokens, i, &body);
    message += std::to_string(body.size());
    message += "\r\n\r\n";
    message += body;

    for (int attempt = 0; attempt < 2; ++attempt) {
      std::unique_ptr<Conn> conn;
      // Every path below closes `conn` or hands it back to idle_; left here only by an
      // exception, it still counts against open_.
      struct Held {
        Runner* r;
        const std::unique_ptr<Conn>& c;
        ~Held() {
          if (c) --r->open_;
        }
      } held{this, conn};
      bool reused = false;
      // The retry opens a new connection: the other idle ones went idle about when the stale
      // one did, and a server's keep-alive timeout closes them together.
      if (attempt == 0 && !idle_.empty()) {
        conn = std::move(idle_.back());
        idle_.pop_back();
        reused = true;
      } else if (open_ < ConnectionCap()) {
        ++open_;
        result_.max_open_connections = std::max(result_.max_open_connections, open_);
        boost::system::error_code ec;
        const Clock::time_point connect_start = Clock::now();
        conn = co_await Connect(&ec);
        rec.connect_ms = MsBetween(connect_start, Clock::now());
        if (!conn) {
          --open_;
          rec.outcome = ec == beast::error::timeout ? Outcome::kTimeout : Outcome::kTransport;
          rec.error = "connect: " + ec.message();
          ++errors_;
          Finish();
          co_return;
        }
      } else {
        rec.outcome = Outcome::kDropped;
        ++dropped_;
        Finish();
        co_return;
      }
      if (drain_expired_) {  // a connect that finished after the drain's end: do not send
        rec.outcome = Outcome::kTimeout;
        rec.error = "not sent: the drain ended while connecting";
        Close(std::move(conn));
        break;
      }
      const After after = co_await Exchange(i, *conn, message, due, reused && attempt == 0);
      if (after == After::kRetry) {
        Close(std::move(conn));
        continue;
      }
      if (after == After::kKeep && !drain_expired_) {
        idle_.push_back(std::move(conn));
      } else {
        Close(std::move(conn));
      }
      break;
    }
    if (rec.outcome != Outcome::kOk) ++errors_;
    Finish();
  }

  void Close(std::unique_ptr<Conn> c) {
    boost::system::error_code ignored;
    c->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    c->stream.close();
    --open_;
  }

  enum class After : uint8_t { kClose, kKeep, kRetry };

  // One request on one connection. kRetry: a reused connection turned out closed before any
  // response byte (the server's keep-alive timeout), and the caller retries once on a new one.
  net::awaitable<After> Exchange(size_t i, Conn& conn, const std::string& message,
                                 Clock::time_point due, bool may_retry) {
    RequestRecord& rec = result_.records[i];
    const Clock::time_point send = Clock::now();
    if (!rec.sent) {
      rec.sent = true;
      rec.send_lag_ms = std::max(0.0, MsBetween(due, send));
      rec.late = rec.send_lag_ms > config_.late_ms;
      if (rec.late) ++late_;
      if (sent_++ == 0) first_send_ = send;
      last_send_ = send;
    }
    busy_[&conn] = i;
    struct Unbusy {
      Runner* r;
      Conn* c;
      ~Unbusy() { r->busy_.erase(c); }
    } unbusy{this, &conn};
    conn.stream.expires_at(send + Secs(config_.timeout_s));

    auto fail = [&](const boost::system::error_code& ec, const char* what) {
      rec.outcome =
          drain_expired_ || ec == beast::error::timeout ? Outcome::kTimeout : Outcome::kTransport;
      rec.error = std::string(what) + ": " + ec.message();
      rec.e2e_ms = -1;
    };

    auto [we, wn] = co_await net::async_write(conn.stream, net::buffer(message), kTuple);
    if (we) {
      if (may_retry && !drain_expired_) co_return After::kRetry;
      fail(we, "write");
      co_return After::kClose;
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    auto [he, hn] = co_await http::async_read_header(conn.stream, conn.buffer, parser, kTuple);
    if (he) {
      if (may_retry && !drain_expired_ &&
          (he == http::error::end_of_stream || he == net::error::connection_reset ||
           he == net::error::eof)) {
        co_return After::kRetry;
      }
      fail(he, "read");
      co_return After::kClose;
    }
    const auto& head = parser.get();
    rec.status = static_cast<int32_t>(head.result_int());
    if (auto it = head.find("x-tokenpool-class"); it != head.end()) {
      rec.cls = ClassIndex(it->value());
    }
    if (auto it = head.find("x-tokenpool-queue-ms"); it != head.end()) {
      // A finite decimal number and nothing else (strtod took "inf", "12.5ms" and "0x10").
      const std::string_view v = it->value();
      double q = -1;
      const auto [end, err] = std::from_chars(v.data(), v.data() + v.size(), q);
      if (err == std::errc() && end == v.data() + v.size() && std::isfinite(q) && q >= 0) {
        rec.queue_ms = q;
      }
    }
    const bool ok_status = rec.status >= 200 && rec.status < 300;

    // Stream: scan complete SSE events as they arrive. An event ends at an empty line, its
    // lines ending in LF or CRLF (the SSE spec's); its data is past "data:" and one space.
    bool got_first = false;
    Clock::time_point first{}, last{};
    int64_t token_events = 0;
    int64_t data_events = 0;  // events with data, [DONE] included
    auto scan = [&](Clock::time_point now) {
      if (!ok_status) return;
      std::string& b = parser.get().body();
      size_t pos = 0;
      for (size_t nl = b.find('\n', pos); nl != std::string::npos; nl = b.find('\n', nl + 1)) {
        size_t next = 0;  // past the empty line, if one follows
        if (nl + 1 < b.size() && b[nl + 1] == '\n') {
          next = nl + 2;
        } else if (nl + 2 < b.size() && b[nl + 1] == '\r' && b[nl + 2] == '\n') {
          next = nl + 3;
        } else {
          continue;
        }
        std::string_view ev(b.data() + pos, nl - pos);
        pos = next;
        nl = next - 1;
        if (ev.ends_with('\r')) ev.remove_suffix(1);
        if (!ev.starts_with("data:")) continue;
        ev.remove_prefix(ev.starts_with("data: ") ? 6 : 5);
        ++data_events;
        if (ev == "[DONE]") continue;
        if (const size_t u = ValueAt(ev, "\"usage\"");
            u != std::string_view::npos && u < ev.size() && ev[u] == '{') {
          const std::string_view usage = ev.substr(u);
          rec.prompt_tokens = IntField(usage, "\"prompt_tokens\"");
          rec.completion_tokens = IntField(usage, "\"completion_tokens\"");
        }
        const size_t c = ValueAt(ev, "\"content\"");
        if (c != std::string_view::npos && c + 1 < ev.size() && ev[c] == '"' && ev[c + 1] != '"') {
          if (!got_first) {
            got_first = true;
            first = now;
          }
          last = now;
          ++token_events;
        }
      }
      b.erase(0, pos);
    };
    scan(Clock::now());
    while (!parser.is_done()) {
      auto [re, rn] = co_await http::async_read_some(conn.stream, conn.buffer, parser, kTuple);
      if (re) {
        fail(re, "read");
        co_return After::kClose;
      }
      scan(Clock::now());
    }
    const Clock::time_point end = Clock::now();
    rec.e2e_ms = MsBetween(send, end);
    const After after = parser.keep_alive() ? After::kKeep : After::kClose;
    if (!ok_status) {
      rec.outcome = Outcome::kHttpError;
      const std::string& b = parser.get().body();
      const size_t m = b.find("\"message\":");
      rec.error = b.substr(m == std::string::npos ? 0 : m, 160);
      co_return after;
    }
    if (data_events == 0) {
      // A 2xx that is no event stream (a JSON answer to a streamed request, another framing):
      // nothing to time, and not "ok".
      rec.outcome = Outcome::kBadStream;
      const auto ct = head.find(http::field::content_type);
      rec.error = "2xx without a server-sent event (Content-Type: " +
                  std::string(ct == head.end() ? "none" : std::string_view(ct->value())) + ")";
      co_return after;
    }
    rec.outcome = Outcome::kOk;
    if (got_first) {
      rec.ttft_ms = MsBetween(send, first);
      ttft_hist_.Add(rec.ttft_ms);
      const int64_t n = rec.completion_tokens > 0 ? rec.completion_tokens : token_events;
      if (n > 1) rec.tpot_ms = MsBetween(first, last) / static_cast<double>(n - 1);
    }
    co_return after;
  }

  int32_t ClassIndex(std::string_view v) {
    for (size_t k = 0; k < result_.classes.size(); ++k) {
      if (result_.classes[k] == v) return static_cast<int32_t>(k);
    }
    result_.classes.emplace_back(v);
    return static_cast<int32_t>(result_.classes.size() - 1);
  }

  net::awaitable<void> Progress() {
    int64_t last_sent = 0;
    Clock::time_point last_t = t0_;
    for (;;) {
      progress_timer_.expires_after(std::chrono::seconds(1));
      auto [ec] = co_await progress_timer_.async_wait(kTuple);
      if (ec || finished_) break;
      const Clock::time_point now = Clock::now();
      const double dt = std::max(1e-3, MsBetween(last_t, now) / 1000);
      std::fprintf(progress_out_,
                   "\r\x1b[K%6.0f s  sent %lld (%.0f/s)  in flight %lld  errors %lld  "
                   "late %lld  dropped %lld  TTFT p50 %.1f ms p99 %.1f ms",
                   MsBetween(t0_, now) / 1000, static_cast<long long>(sent_),
                   static_cast<double>(sent_ - last_sent) / dt, static_cast<long long>(in_flight_),
                   static_cast<long long>(errors_), static_cast<long long>(late_),
                   static_cast<long long>(dropped_), ttft_hist_.Quantile(0.5),
                   ttft_hist_.Quantile(0.99));
      std::fflush(progress_out_);
      last_sent = sent_;
      last_t = now;
    }
    std::fputs("\r\x1b[K", progress_out_);
    std::fflush(progress_out_);
  }

  const LoadConfig& config_;
  const LoadPlan& plan_;
  std::FILE* progress_out_;
  PromptText text_;
  net::io_context io_{1};
  net::steady_timer dispatch_timer_;
  net::steady_timer drain_timer_;
  net::steady_timer progress_timer_;
  net::signal_set signals_;
  size_t dispatched_count_ = 0;
  int64_t cap_ = 0;  // ConnectionCap()
  tcp::endpoint endpoint_;
  std::string host_header_;
  std::string model_;
  std::vector<std::string> heads_;
  std::vector<std::unique_ptr<Conn>> idle_;
  std::unordered_map<Conn*, size_t> busy_;
  int64_t open_ = 0;
  int64_t in_flight_ = 0;
  int64_t sent_ = 0;
  int64_t errors_ = 0;
  int64_t late_ = 0;
  int64_t dropped_ = 0;
  bool dispatched_ = false;
  bool drain_expired_ = false;
  bool finished_ = false;
  Clock::time_point t0_, end_, drain_deadline_, first_send_, last_send_;
  LogHistogram ttft_hist_;
  LoadResult result_;
};

}  // namespace

Result<LoadResult> RunLoad(const LoadConfig& config, const LoadPlan& plan, std::FILE* progress) {
  auto runner = std::make_unique<Runner>(config, plan, progress);
  return runner->Run();
}

}  // namespace tokenpool::load
