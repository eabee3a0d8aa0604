#include "mock/server.h"

#include <sys/socket.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "engine/engine.h"
#include "mock/metrics.h"
#include "mock/prompt.h"
#include "mock/responses.h"
#include "parse/request_parser.h"
#include "tokenpool/capacity.h"
#include "tokenpool/profile.h"

namespace tokenpool::mock {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using Request = http::request<http::string_body>;
constexpr auto kTuple = net::as_tuple(net::use_awaitable);

// 16 MiB: the request parser's own limit (parse/request_parser.h).
constexpr uint64_t kBodyLimitBytes = uint64_t{16} << 20;
// 1 MiB of request head, the gateway's largest limits.max_header_bytes: vLLM's server (uvicorn
// with httptools) sets no small limit, and Beast's default (8 KiB) made the mock drop a request
// whose head the gateway had accepted and forwarded (a 502 for a 10 KB header).
constexpr uint32_t kHeaderLimitBytes = uint32_t{1} << 20;

// Beast's request parser, with one field longer than basic_fields holds (64 KiB; it throws
// std::length_error from inside the read, which ended the process: one client could kill a
// backend through a gateway that lets long heads in) refused as a head over the limit is.
class RequestParser final : public http::request_parser<http::string_body> {
  void on_field_impl(http::field f, boost::beast::string_view name, boost::beast::string_view value,
                     boost::system::error_code& ec) override {
    if (name.size() > 0xFFFF || value.size() > 0xFFFF) {
      ec = http::error::header_limit;
      return;
    }
    get().insert(f, name, value);
  }
};

// One request inside the engine, shared by its session coroutine and the engine driver. Each
// of its choices is an engine sequence of its own: n per prompt (vLLM's parallel sampling), for
// each prompt of a completions batch.
struct Pending {
  struct Choice {
    uint64_t engine_id = 0;  // 0 until submitted
    int64_t prompt_tokens = 0;
    int64_t max_tokens = 0;
    uint64_t hash = 0;     // seeds its text: its prompt's hash, moved by its index there
    int64_t produced = 0;  // output tokens the engine has produced
    int64_t sent = 0;      // output tokens streamed
    bool finished = false;
  };
  explicit Pending(const net::any_io_executor& ex) : wake(ex, SteadyClock::time_point::max()) {}
  void Notify() { wake.cancel(); }

  net::steady_timer wake;  // a condition variable: cancel() wakes the waiting coroutine
  std::vector<Choice> choices;
  size_t unfinished = 0;
  bool lost = false;  // dropped by a restart
  const char* finish_reason = "length";
};

// Where an engine sequence's tokens go: its request and its choice there.
struct PendingChoice {
  Pending* pending = nullptr;
  size_t choice = 0;
};

int64_t UnixNow() { return static_cast<int64_t>(std::time(nullptr)); }

class Server {
 public:
  Server(net::io_context& io, MockConfig config, engine::EngineConfig engine_config,
         std::string model)
      : io_(io),
        acceptor_(io),
        step_timer_(io),
        config_(std::move(config)),
        engine_config_(std::move(engine_config)),
        model_(std::move(model)),
        engine_(std::make_unique<engine::Engine>(engine_config_)),
        metrics_(std::make_unique<MockMetrics>(model_)),
        parser_(parse::ParserConfig{.byte_stats = false}),
        rng_(config_.seed ^ 0x6A09E667F3BCC909ULL),
        t0_(SteadyClock::now()) {}

  Status Listen(uint16_t* bound_port) {
    boost::system::error_code ec;
    const auto address = net::ip::make_address(config_.host, ec);
    if (ec) return InvalidArgument("--host: " + ec.message());
    const tcp::endpoint ep(address, config_.port);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status(StatusCode::kUnavailable, "cannot listen on " + config_.host + ":" +
                                                  std::to_string(config_.port) + ": " +
                                                  ec.message());
    }
    *bound_port = acceptor_.local_endpoint().port();
    return Status::Ok();
  }

  net::awaitable<void> AcceptLoop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(kTuple);
      if (ec) {
        if (ec == net::error::operation_aborted) co_return;
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      net::co_spawn(io_, Session(std::move(socket)), net::detached);
    }
  }

  // Ends every connection and timer so that io_context::run() returns on its own, with every
  // coroutine finished while the server still exists.
  void Stop() {
    boost::system::error_code ec;
    acceptor_.close(ec);
    ++generation_;
    step_timer_.cancel();
    for (auto& [id, pc] : pending_) {
      pc.pending->lost = true;
      pc.pending->Notify();
    }
    for (tcp::socket* s : sessions_) s->close(ec);
  }

 private:
  // --- Engine driver ------------------------------------------------------------------------
  // Engine time runs `speedup` times faster than real time from t0_.
  Time EngineNow() const {
    const double ns = static_cast<double>((SteadyClock::now() - t0_).count()) * config_.speedup;
    return Time::FromNanos(static_cast<int64_t>(ns));
  }
  SteadyClock::time_point RealAt(Time t) const {
    return t0_ + std::chrono::nanoseconds(
                     static_cast<int64_t>(static_cast<double>(t.nanos()) / config_.speedup));
  }

  void Kick() {
    if (step_in_flight_ || !engine_->HasWork()) return;
    step_in_flight_ = true;
    // Posted: requests that arrive in the same turn of the event loop share the iteration.
    net::post(io_, [this, gen = generation_] {
      if (gen == generation_) RunStep();
    });
  }

  // Back-to-back iterations follow each other in model time, as on a GPU: a step timer that
  // wakes a little late (a loaded machine) must not stretch the model, or every late wake-up
  // adds up (the live experiments measured the mock 0-9% slow against the simulator). So a
  // continuing step starts where the last one ended, unless the wake-up was later than
  // kLateWake of real time (a real stall: model time jumps to now) or a request arrived after
  // the last step ended (it must not get a first token before it arrived).
  static constexpr std::chrono::microseconds kLateWake{2000};

  void RunStep(bool continuing = false) {
    const Time real = EngineNow();
    const Duration tolerance =
        std::chrono::duration_cast<Duration>(std::chrono::duration<double, std::micro>(
            static_cast<double>(kLateWake.count()) * config_.speedup));
    const bool smooth =
        continuing && real - last_step_end_ <= tolerance && latest_submit_ <= last_step_end_;
    const Time now = smooth ? last_step_end_ : std::max(real, last_step_end_);
    engine_->Step(now, &step_);
    if (step_.empty()) {
      step_in_flight_ = false;
      return;
    }
    last_step_end_ = step_.end;
    step_timer_.expires_at(RealAt(step_.end));
    step_timer_.async_wait([this, gen = generation_](boost::system::error_code ec) {
      if (!ec && gen == generation_) OnStepDone();
    });
  }

  void OnStepDone() {
    for (const engine::SeqOutput& o : step_.outputs) {
      auto it = pending_.find(o.id);
      if (it == pending_.end()) continue;
      Pending& p = *it->second.pending;
      Pending::Choice& c = p.choices[it->second.choice];
      c.produced = o.output_tokens;
      if (o.finished && !c.finished) {
        c.finished = true;
        --p.unfinished;
      }
      p.Notify();
    }
    for (const engine::RequestTiming& t : step_.finished) {
      auto it = pending_.find(t.id);
      metrics_->Finished(t, it == pending_.end() ? "abort" : it->second.pending->finish_reason);
    }
    step_in_flight_ = false;
    if (engine_->HasWork()) {
      step_in_flight_ = true;
      RunStep(/*continuing=*/true);
    }
  }

  void Restart(double down_ms) {
    ++generation_;
    step_timer_.cancel();
    step_in_flight_ = false;
    last_step_end_ = Time::Zero();
    latest_submit_ = Time::Zero();
    for (auto& [id, pc] : pending_) {
      pc.pending->lost = true;
      pc.pending->Notify();
    }
    engine_ = std::make_unique<engine::Engine>(engine_config_);
    metrics_ = std::make_unique<MockMetrics>(model_);
    metrics_->Fault("restart");
    t0_ = SteadyClock::now();
    down_until_ = t0_ + std::chrono::microseconds(static_cast<int64_t>(down_ms * 1000));
  }

  double Draw() {  // uniform in [0, 1) from splitmix64: the same seed, the same fault pattern
    rng_ += 0x9E3779B97F4A7C15ULL;
    uint64_t z = rng_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * 0x1.0p-53;
  }

  // --- HTTP ---------------------------------------------------------------------------------
  static net::awaitable<bool> Reply(tcp::socket& s, const Request& req, http::status status,
                                    std::string_view content_type, std::string body) {
    http::response<http::string_body> res{status, req.version()};
    if (!content_type.empty()) res.set(http::field::content_type, content_type);
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    auto [ec, n] = co_await http::async_write(s, res, kTuple);
    co_return !ec && req.keep_alive();
  }
  static net::awaitable<bool> ReplyError(tcp::socket& s, const Request& req, int code,
                                         std::string_view type, std::string_view message) {
    co_return co_await Reply(s, req, static_cast<http::status>(code), "application/json",
                             ErrorJson(message, type, code));
  }

  net::awaitable<void> Sleep(double ms) {
    net::steady_timer t(io_, std::chrono::microseconds(static_cast<int64_t>(ms * 1000)));
    co_await t.async_wait(kTuple);
  }

  // Watches `s` for its client's close (a peek when it turns readable sees the end or an
  // error) and calls on_gone() then, unless the returned flag was set false first: the flag
  // outlives the caller's frame in the handler, and on_gone's captures are touched only while
  // it is true. One wait: input that is not a close ends the watch.
  template <class OnGone>
  static std::shared_ptr<bool> WatchForClose(tcp::socket& s, OnGone on_gone) {
    auto watching = std::make_shared<bool>(true);
    s.async_wait(tcp::socket::wait_read, [watching, &s, on_gone](boost::system::error_code ec) {
      if (ec || !*watching) return;
      char c;
      const ssize_t got = ::recv(s.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
      if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) on_gone();
    });
    return watching;
  }

  // A first-token stall: `ms`, or until the client closes the connection (true), as vLLM
  // aborts a request whose client left, stalled or not. (Before, a stall ran its course: a
  // gateway gone during a 20 s stall held the mock's drain for those 20 s.)
  net::awaitable<bool> StallUnlessGone(tcp::socket& s, double ms) {
    net::steady_timer t(io_, std::chrono::microseconds(static_cast<int64_t>(ms * 1000)));
    bool gone = false;
    const auto watching = WatchForClose(s, [&gone, &t] {
      gone = true;
      t.cancel();
    });
    co_await t.async_wait(kTuple);
    *watching = false;
    boost::system::error_code ignored;
    s.cancel(ignored);
    co_return gone;
  }

  net::awaitable<void> Session(tcp::socket socket) {
    sessions_.insert(&socket);
    struct Untrack {
      Server* server;
      tcp::socket* socket;
      ~Untrack() { server->sessions_.erase(socket); }
    } untrack{this, &socket};
    beast::flat_buffer buffer;
    for (;;) {
      RequestParser parser;
      parser.body_limit(kBodyLimitBytes);
      parser.header_limit(kHeaderLimitBytes);
      // The head first: a client that sent `Expect: 100-continue` waits for a 100 before its
      // body (curl for a body over 1 MiB: a second, without it), as uvicorn sends one.
      auto [hec, hn] = co_await http::async_read_header(socket, buffer, parser, kTuple);
      if (hec) break;
      if (!parser.is_done() && parser.get().version() >= 11 &&
          beast::iequals(parser.get()[http::field::expect], "100-continue")) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        auto [wec, wn] = co_await net::async_write(
            socket, net::buffer(kContinue.data(), kContinue.size()), kTuple);
        if (wec) break;
      }
      auto [ec, n] = co_await http::async_read(socket, buffer, parser, kTuple);
      if (ec) break;
      Request req = parser.release();
      if (SteadyClock::now() < down_until_) break;  // "restarting": refuse by closing
      if (!co_await Handle(socket, req)) break;
    }
    boost::system::error_code ec;
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
  }

  // Returns whether the connection stays open.
  net::awaitable<bool> Handle(tcp::socket& s, Request& req) {
    std::string_view target = req.target();
    if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
    const bool get = req.method() == http::verb::get;
    const bool post = req.method() == http::verb::post;
    if (!config_.api_key.empty() && target.starts_with("/v1") &&
        req[http::field::authorization] != "Bearer " + config_.api_key) {
      co_return co_await Reply(s, req, http::status::unauthorized, "application/json",
                               "{\"error\":\"Unauthorized\"}");
    }
    if (target == "/v1/chat/completions" && post) {
      co_return co_await Completion(s, req, Endpoint::kChatCompletions);
    }
    if (target == "/v1/completions" && post) {
      co_return co_await Completion(s, req, Endpoint::kCompletions);
    }
    if (target == "/health" && get) co_return co_await Reply(s, req, http::status::ok, "", "");
    if (target == "/v1/models" && get) {
      co_return co_await Reply(s, req, http::status::ok, "application/json",
                               ModelsJson(model_, engine_config_.max_model_len, UnixNow()));
    }
    if (target == "/metrics" && get) {
      if (!config_.instant) metrics_->SetEngine(engine_->Stats());
      co_return co_await Reply(s, req, http::status::ok, "text/plain; version=0.0.4",
                               metrics_->Serialize());
    }
    if (target == "/control/faults" && (get || post)) {
      if (post) {
        if (Status st = ApplyFaultsJson(req.body(), &config_.faults); !st.ok()) {
          co_return co_await ReplyError(s, req, 400, "BadRequestError", st.message());
        }
      }
      co_return co_await Reply(s, req, http::status::ok, "application/json",
                               FaultsJson(config_.faults));
    }
    if (target == "/control/restart" && post) {
      double down_ms = 0;
      if (!req.body().empty()) {
        boost::system::error_code ec;
        boost::json::value v = boost::json::parse(req.body(), ec);
        const boost::json::value* d =
            (!ec && v.is_object()) ? v.as_object().if_contains("down_ms") : nullptr;
        // down_ms within the faults' bound (1e12 ms): 1e13 overflowed the clock and restarted
        // with no downtime. Another member is a typo ({"downms": 5} restarted at once).
        if (ec || !v.is_object() || v.as_object().size() != (d != nullptr ? 1U : 0U) ||
            (d != nullptr && !d->is_number()) ||
            (d != nullptr && !(d->to_number<double>() >= 0 && d->to_number<double>() <= 1e12))) {
          co_return co_await ReplyError(s, req, 400, "BadRequestError",
                                        "restart: expected {\"down_ms\": number in [0, 1e12]}");
        }
        if (d != nullptr) down_ms = d->to_number<double>();
      }
      const bool keep =
          co_await Reply(s, req, http::status::ok, "application/json", "{\"restarted\":true}");
      Restart(down_ms);
      co_return keep;
    }
    if (target.starts_with("/v1/") || target == "/health" || target == "/metrics" ||
        target.starts_with("/control/")) {
      co_return co_await ReplyError(s, req, 405, "MethodNotAllowed", "Method Not Allowed");
    }
    co_return co_await ReplyError(s, req, 404, "NotFoundError", "Not Found");
  }

  net::awaitable<bool> Completion(tcp::socket& s, Request& req, Endpoint endpoint) {
    // Read everything needed from the shared parsers before the first co_await.
    if (Status st = parser_.Parse(req.body(), &features_); !st.ok()) {
      co_return co_await ReplyError(s, req, 400, "BadRequestError", st.message());
    }
    if (features_.model != model_) {
      co_return co_await ReplyError(s, req, 404, "NotFoundError",
                                    "The model `" + features_.model + "` does not exist.");
    }
    const bool stream = features_.stream;
    const bool include_usage = features_.include_usage;
    const bool has_max = features_.has_max_tokens;
    const int64_t max_out = features_.max_output_tokens;
    Result<PromptInfo> prompt = prompt_reader_.Read(req.body(), endpoint);
    if (!prompt.ok()) {
      co_return co_await ReplyError(s, req, 400, "BadRequestError", prompt.status().message());
    }
    const int64_t max_len = engine_config_.max_model_len;
    if (has_max && max_out < 1) {
      co_return co_await ReplyError(
          s, req, 400, "BadRequestError",
          "max_tokens must be at least 1, got " + std::to_string(max_out) + ".");
    }
    // A sequence per choice: n for each prompt, each checked against the context as vLLM
    // checks each prompt. Without max_tokens vLLM allows up to max_model_len; the mock "emits
    // EOS" earlier.
    std::vector<Pending::Choice> choices;
    choices.reserve(prompt->prompts.size() * static_cast<size_t>(prompt->choices_per_prompt));
    int64_t completion_tokens = 0;
    for (const PromptPart& part : prompt->prompts) {
      const int64_t out =
          has_max
              ? max_out
              : std::max<int64_t>(1, std::min(config_.default_max_tokens, max_len - part.tokens));
      if (part.tokens + out > max_len) {
        co_return co_await ReplyError(s, req, 400, "BadRequestError",
                                      engine::ContextLengthError(max_len, part.tokens, out));
      }
      for (int64_t j = 0; j < prompt->choices_per_prompt; ++j) {
        choices.push_back({.prompt_tokens = part.tokens,
                           .max_tokens = out,
                           .hash = part.hash + static_cast<uint64_t>(j) * 0x9E3779B97F4A7C15ULL});
        completion_tokens += out;
      }
    }
    const int64_t prompt_tokens = prompt->prompt_tokens;
    const char* finish_reason = has_max ? "length" : "stop";

    // Faults, in the order a client would meet them.
    if (config_.faults.added_latency_ms > 0) {
      metrics_->Fault("added_latency");
      co_await Sleep(config_.faults.added_latency_ms);
    }
    if (config_.faults.fail_rate > 0 && Draw() < config_.faults.fail_rate) {
      const int code = config_.faults.fail_status;
      metrics_->Fault(code == 500 ? "error_500" : "error_503");
      co_return co_await ReplyError(s, req, code,
                                    code == 500 ? "InternalServerError" : "ServiceUnavailableError",
                                    "injected fault");
    }
    const bool drop = config_.faults.drop_rate > 0 && Draw() < config_.faults.drop_rate;
    const double stall_ms = config_.faults.first_token_stall_ms;

    const ResponseMeta meta{
        .endpoint = endpoint, .id = next_id_++, .created = UnixNow(), .model = model_};
    if (config_.instant) {
      co_return co_await Instant(s, req, meta, prompt_tokens, completion_tokens, choices,
                                 finish_reason, stream, include_usage, drop);
    }

    Pending pending(io_.get_executor());
    pending.finish_reason = finish_reason;
    pending.choices = std::move(choices);
    // Leaves the engine however this coroutine ends (client gone, drop, restart).
    struct Guard {
      Server* server;
      Pending* p;
      uint64_t generation;
      ~Guard() {
        for (const Pending::Choice& c : p->choices) {
          if (c.engine_id == 0) continue;
          server->pending_.erase(c.engine_id);
          if (!c.finished && !p->lost && generation == server->generation_) {
            (void)server->engine_->Abort(c.engine_id);
          }
        }
      }
    } guard{this, &pending, generation_};
    latest_submit_ = EngineNow();
    for (size_t i = 0; i < pending.choices.size(); ++i) {
      Pending::Choice& c = pending.choices[i];
      const uint64_t id = next_engine_id_++;
      if (Status st = engine_->Submit(
              {.id = id, .prompt_tokens = c.prompt_tokens, .max_tokens = c.max_tokens},
              latest_submit_);
          !st.ok()) {
        co_return co_await ReplyError(s, req, 400, "BadRequestError", st.message());
      }
      c.engine_id = id;
      pending_[id] = {&pending, i};
      ++pending.unfinished;
    }
    Kick();

    if (!stream) {
      if (stall_ms > 0) {
        metrics_->Fault("first_token_stall");
        if (co_await StallUnlessGone(s, stall_ms)) co_return false;
      }
      // Watch the connection while the request is in the engine: a client that closes it (a
      // gateway's timeout) is aborted at once, freeing its KV blocks, as vLLM aborts on
      // disconnect.
      bool gone = false;
      const auto watching = WatchForClose(s, [&gone, &pending] {
        gone = true;
        pending.Notify();
      });
      while (pending.unfinished > 0 && !pending.lost && !gone) {
        co_await pending.wake.async_wait(kTuple);
      }
      *watching = false;
      boost::system::error_code ignored;
      s.cancel(ignored);
      if (pending.lost || gone) co_return false;
      if (drop) {
        metrics_->Fault("drop");
        co_return false;
      }
      std::vector<std::string> texts(pending.choices.size());
      for (size_t i = 0; i < texts.size(); ++i) {
        const Pending::Choice& c = pending.choices[i];
        AppendGeneratedText(config_.seed, c.hash, 0, c.max_tokens, &texts[i]);
      }
      std::string body;
      AppendFullResponse(meta, texts, finish_reason, prompt_tokens, completion_tokens, &body);
      co_return co_await Reply(s, req, http::status::ok, "application/json", std::move(body));
    }

    // Streaming: headers now, then per engine iteration that produced tokens one HTTP chunk
    // with an SSE event for each choice that has new tokens (vLLM's order).
    http::response<http::empty_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "text/event-stream");
    res.set(http::field::cache_control, "no-cache");
    res.keep_alive(req.keep_alive());
    res.chunked(true);
    http::response_serializer<http::empty_body> sr{res};
    if (auto [ec, w] = co_await http::async_write_header(s, sr, kTuple); ec) co_return false;
    if (stall_ms > 0) {
      metrics_->Fault("first_token_stall");
      if (co_await StallUnlessGone(s, stall_ms)) co_return false;
    }
    const auto fresh = [&pending] {
      return std::any_of(pending.choices.begin(), pending.choices.end(),
                         [](const Pending::Choice& c) { return c.produced > c.sent; });
    };
    int64_t sent = 0;
    std::string events, text;
    while (sent < completion_tokens) {
      while (!fresh() && !pending.lost) co_await pending.wake.async_wait(kTuple);
      if (pending.lost) co_return false;
      if (drop && sent >= (completion_tokens + 1) / 2) {
        metrics_->Fault("drop");
        co_return false;
      }
      events.clear();
      if (sent == 0 && endpoint == Endpoint::kChatCompletions) {
        for (size_t i = 0; i < pending.choices.size(); ++i) {
          AppendChunkEvent(meta, static_cast<int64_t>(i), "", nullptr, true, include_usage,
                           &events);
        }
      }
      for (size_t i = 0; i < pending.choices.size(); ++i) {
        Pending::Choice& c = pending.choices[i];
        if (c.produced <= c.sent) continue;
        text.clear();
        AppendGeneratedText(config_.seed, c.hash, c.sent, c.produced - c.sent, &text);
        AppendChunkEvent(meta, static_cast<int64_t>(i), text,
                         c.produced >= c.max_tokens ? finish_reason : nullptr, false, include_usage,
                         &events);
        sent += c.produced - c.sent;
        c.sent = c.produced;
      }
      if (sent >= completion_tokens) {
        if (include_usage) AppendUsageEvent(meta, prompt_tokens, completion_tokens, &events);
        events.append(kDoneEvent);
      }
      auto [ec, w] = co_await net::async_write(s, http::make_chunk(net::buffer(events)), kTuple);
      if (ec) co_return false;
    }
    auto [ec, w] = co_await net::async_write(s, http::make_chunk_last(), kTuple);
    co_return !ec && req.keep_alive();
  }

  // --instant: no engine, no timers; the whole answer at once (throughput mode). A stream's
  // choices take turns token by token, as they would come from the engine's iterations.
  net::awaitable<bool> Instant(tcp::socket& s, Request& req, const ResponseMeta& meta,
                               int64_t prompt_tokens, int64_t completion_tokens,
                               const std::vector<Pending::Choice>& choices,
                               const char* finish_reason, bool stream, bool include_usage,
                               bool drop) {
    // No latency histograms: with no simulated compute they would only record zeros.
    metrics_->AddTokens(prompt_tokens, completion_tokens);
    metrics_->Succeeded(finish_reason);
    if (drop) {
      metrics_->Fault("drop");
      co_return false;
    }
    std::string body;
    if (!stream) {
      std::vector<std::string> texts(choices.size());
      for (size_t i = 0; i < texts.size(); ++i) {
        AppendGeneratedText(config_.seed, choices[i].hash, 0, choices[i].max_tokens, &texts[i]);
      }
      AppendFullResponse(meta, texts, finish_reason, prompt_tokens, completion_tokens, &body);
      co_return co_await Reply(s, req, http::status::ok, "application/json", std::move(body));
    }
    if (meta.endpoint == Endpoint::kChatCompletions) {
      for (size_t i = 0; i < choices.size(); ++i) {
        AppendChunkEvent(meta, static_cast<int64_t>(i), "", nullptr, true, include_usage, &body);
      }
    }
    int64_t longest = 0;
    for (const Pending::Choice& c : choices) longest = std::max(longest, c.max_tokens);
    std::string text;
    for (int64_t t = 0; t < longest; ++t) {
      for (size_t i = 0; i < choices.size(); ++i) {
        if (t >= choices[i].max_tokens) continue;
        text.clear();
        AppendGeneratedText(config_.seed, choices[i].hash, t, 1, &text);
        AppendChunkEvent(meta, static_cast<int64_t>(i), text,
                         t + 1 == choices[i].max_tokens ? finish_reason : nullptr, false,
                         include_usage, &body);
      }
    }
    if (include_usage) AppendUsageEvent(meta, prompt_tokens, completion_tokens, &body);
    body.append(kDoneEvent);
    co_return co_await Reply(s, req, http::status::ok, "text/event-stream", std::move(body));
  }

  net::io_context& io_;
  tcp::acceptor acceptor_;
  net::steady_timer step_timer_;
  MockConfig config_;
  engine::EngineConfig engine_config_;
  std::string model_;
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<MockMetrics> metrics_;
  parse::RequestParser parser_;
  RequestFeatures features_;
  PromptReader prompt_reader_;
  uint64_t rng_;
  SteadyClock::time_point t0_;
  SteadyClock::time_point down_until_{};
  engine::StepResult step_;
  Time last_step_end_;
  Time latest_submit_;  // model time of the last Submit (RunStep)
  bool step_in_flight_ = false;
  uint64_t generation_ = 0;  // bumped by a restart: stale timers and guards ignore themselves
  uint64_t next_id_ = 1;     // responses' ids
  uint64_t next_engine_id_ = 1;                          // engine sequences' ids
  std::unordered_map<uint64_t, PendingChoice> pending_;  // by engine id
  std::unordered_set<tcp::socket*> sessions_;  // open connections, closed by Stop()
};

}  // namespace

Status RunMockServer(const MockConfig& config, std::FILE* out) {
  if (Status s = config.Validate(); !s.ok()) return s;
  Result<InstanceProfile> profile = FindProfile(config.profile);
  if (!profile.ok()) return InvalidArgument("--profile: " + profile.status().message());
  InstanceProfile prof = *profile;
  if (config.max_model_len) prof = WithMaxModelLen(prof, *config.max_model_len);
  if (config.max_num_seqs) prof.max_num_seqs = *config.max_num_seqs;
  if (config.num_gpu_blocks_override) prof.kv_blocks_override = *config.num_gpu_blocks_override;
  if (Status s = prof.Validate(); !s.ok()) {
    // Name the flag that made the profile invalid.
    const std::string& m = s.message();
    // A context that does not fit the KV cache: with --num-gpu-blocks-override the cache is
    // what was made small, and both flags are named.
    if (config.num_gpu_blocks_override && m.find("KV cache") != std::string::npos) {
      return InvalidArgument("--num-gpu-blocks-override (or --max-model-len): " + m);
    }
    const char* flag = m.find("max_model_len") != std::string::npos  ? "--max-model-len: "
                       : m.find("max_num_seqs") != std::string::npos ? "--max-num-seqs: "
                       : m.find("kv_blocks") != std::string::npos    ? "--num-gpu-blocks-override: "
                                                                     : "--profile: ";
    return InvalidArgument(flag + m);
  }
  engine::EngineConfig ec = engine::EngineConfig::FromProfile(prof);
  if (Status s = ec.Validate(); !s.ok()) return s;
  const std::string model = config.model.empty() ? prof.name : config.model;

  net::io_context io(1);
  Server server(io, config, ec, model);
  uint16_t port = 0;
  if (Status s = server.Listen(&port); !s.ok()) return s;
  std::fprintf(out,
               "tokenpool mock listening on %s:%u model=%s profile=%s max_model_len=%lld "
               "max_num_seqs=%lld kv_blocks=%lld speedup=%g%s\n",
               config.host.c_str(), static_cast<unsigned>(port), model.c_str(), prof.name.c_str(),
               static_cast<long long>(ec.max_model_len), static_cast<long long>(ec.max_num_seqs),
               static_cast<long long>(ec.kv_blocks), config.speedup,
               config.instant ? " instant" : "");
  std::fflush(out);

  net::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code, int) { server.Stop(); });
  net::co_spawn(io, server.AcceptLoop(), net::detached);
  io.run();
  return Status::Ok();
}

}  // namespace tokenpool::mock
