#include "gateway/server.h"

#include <sys/socket.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <csignal>
#include <ctime>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "gateway/errors.h"
#include "gateway/metrics.h"
#include "gateway/sha256.h"
#include "gateway/state.h"
#include "parse/request_parser.h"
#include "tokenpool/real_clock.h"

namespace tokenpool::gateway {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Request = http::request<http::string_body>;
using StringResponse = http::response<http::string_body>;
constexpr auto kTuple = net::as_tuple(net::use_awaitable);

// Idle upstream connections kept per backend instance. 64: more than the concurrency a mock or
// vLLM replica serves at once in our tests and demos; beyond it, connections are closed.
constexpr size_t kMaxIdlePerBackend = 64;

int64_t UnixNow() { return static_cast<int64_t>(std::time(nullptr)); }

// A queued request waiting for Dispatch: the timer is its condition variable.
struct Waiter {
  explicit Waiter(const net::any_io_executor& ex) : timer(ex) {}
  net::steady_timer timer;
  bool done = false;
  QueueEvent event;
};

// Watches a client socket while the gateway waits for something else (the queue, a backend):
// when the client closes the connection, on_gone runs. The watch ends with Stop() or the
// destructor, before what on_gone touches goes away. A readable socket that is not a close (a
// pipelined request) ends the watch without a call.
class ClientWatch {
 public:
  ClientWatch(tcp::socket& client, std::function<void()> on_gone)
      : client_(client), state_(std::make_shared<State>()) {
    state_->on_gone = std::move(on_gone);
    client.async_wait(tcp::socket::wait_read,
                      [st = state_, fd = client.native_handle()](boost::system::error_code ec) {
                        if (ec || !st->watching) return;
                        char c;
                        if (::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0) {
                          st->gone = true;
                          st->on_gone();
                        }
                      });
  }
  ~ClientWatch() { Stop(); }
  ClientWatch(const ClientWatch&) = delete;
  ClientWatch& operator=(const ClientWatch&) = delete;

  void Stop() {
    if (!state_->watching) return;
    state_->watching = false;
    boost::system::error_code ignored;
    client_.cancel(ignored);
  }
  bool gone() const { return state_->gone; }

 private:
  struct State {
    bool watching = true;
    bool gone = false;
    std::function<void()> on_gone;
  };
  tcp::socket& client_;
  std::shared_ptr<State> state_;
};

// Usage read from a backend's JSON (a response body or an SSE chunk).
bool ReadUsage(std::string_view json, Usage* u) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(json, ec);
  if (ec || !v.is_object()) return false;
  const boost::json::value* usage = v.as_object().if_contains("usage");
  if (usage == nullptr || !usage->is_object()) return false;
  const auto& o = usage->as_object();
  const boost::json::value* p = o.if_contains("prompt_tokens");
  const boost::json::value* c = o.if_contains("completion_tokens");
  if (p == nullptr || c == nullptr || !p->is_int64() || !c->is_int64()) return false;
  u->prompt = Tokens(p->as_int64());
  u->completion = Tokens(c->as_int64());
  return true;
}

// The body with stream_options.include_usage = true (the client did not ask for it).
std::string WithIncludeUsage(const std::string& body) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(body, ec);
  if (ec || !v.is_object()) return body;
  auto& o = v.as_object();
  boost::json::value& so = o["stream_options"];
  if (!so.is_object()) so = boost::json::object();
  so.as_object()["include_usage"] = true;
  return boost::json::serialize(v);
}

class Server {
 public:
  Server(const GatewayConfig& config, std::unique_ptr<GatewayState> state)
      : config_(config),
        state_(std::move(state)),
        parser_(parse::ParserConfig{.max_body_bytes = config.limits.max_body_bytes}),
        metrics_(clock_, state_->pool_count()),
        io_(1),
        acceptor_(io_),
        admin_acceptor_(io_) {
    idle_.resize(static_cast<size_t>(state_->pool_count()));
    for (int p = 0; p < state_->pool_count(); ++p) {
      idle_[static_cast<size_t>(p)].resize(state_->pool(p).backends.size());
    }
  }
  ~Server() {
    // Coroutine frames still pending are destroyed with io_ (below); their reservation guards
    // must then only release, not dispatch.
    stopping_ = true;
  }

  net::io_context& io() { return io_; }

  Status Listen(tcp::acceptor& a, const Listener& l, uint16_t* port) {
    boost::system::error_code ec;
    const auto addr = net::ip::make_address(l.host, ec);
    if (ec) return InvalidArgument("listen.host: not an IP address: " + l.host);
    const tcp::endpoint ep(addr, l.port);
    a.open(ep.protocol(), ec);
    if (!ec) a.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) a.bind(ep, ec);
    if (!ec) a.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status(StatusCode::kUnavailable, "cannot listen on " + l.host + ":" +
                                                  std::to_string(l.port) + ": " + ec.message());
    }
    *port = a.local_endpoint().port();
    return Status::Ok();
  }
  tcp::acceptor& acceptor() { return acceptor_; }
  tcp::acceptor& admin_acceptor() { return admin_acceptor_; }

  net::awaitable<void> AcceptLoop(tcp::acceptor& a, bool admin) {
    for (;;) {
      auto [ec, socket] = co_await a.async_accept(kTuple);
      if (ec) {
        if (!a.is_open()) co_return;
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      net::co_spawn(io_, Session(std::move(socket), admin), net::detached);
    }
  }

  void Stop() {
    boost::system::error_code ec;
    acceptor_.close(ec);
    admin_acceptor_.close(ec);
    io_.stop();
  }

  // SIGHUP: re-read the config file and apply its tenants and entitlements, or keep the
  // running ones when it does not load or is refused.
  void Reload(const std::string& path) {
    Result<GatewayConfig> next = LoadGatewayConfigFile(path);
    Status s = next.ok() ? state_->Reload(*next) : next.status();
    for (int p = 0; p < state_->pool_count(); ++p) Kick(p);
    if (s.ok()) {
      std::fprintf(stderr, "tokenpool serve: reloaded %s: %zu tenants, %zu entitlements\n",
                   path.c_str(), next->tenants.size(), next->entitlements.size());
    } else {
      std::fprintf(stderr, "tokenpool serve: reload refused, running config kept: %s\n",
                   s.message().c_str());
    }
  }

  // Graceful shutdown: stop accepting, close idle client connections, let requests in flight
  // finish (their replies say Connection: close), then stop; at most limits.drain_timeout_s.
  // A second call stops at once.
  void Drain() {
    if (draining_) {
      Stop();
      return;
    }
    draining_ = true;
    boost::system::error_code ec;
    acceptor_.close(ec);
    admin_acceptor_.close(ec);
    for (beast::tcp_stream* s : reading_) s->socket().cancel(ec);
    net::co_spawn(io_, DrainWait(), net::detached);
  }

 private:
  // Holds an admitted request's reservation and its place on a backend. Whatever way the
  // request ends (settled, failed, client gone, coroutine destroyed), the destructor releases
  // what is still held exactly once and lets queued requests in.
  struct Held {
    Held(Server* s, int pool_index, int backend_index, Reservation r, int64_t estimate)
        : server(s),
          pool(pool_index),
          backend(backend_index),
          reservation(std::move(r)),
          tokens(estimate) {
      Backend& b = server->state_->pool(pool).backends[static_cast<size_t>(backend)];
      b.outstanding_tokens += tokens;
      ++b.in_flight;
    }
    // The request goes to another instance of the pool instead.
    void MoveTo(int backend_index) {
      Backend& from = server->state_->pool(pool).backends[static_cast<size_t>(backend)];
      from.outstanding_tokens -= tokens;
      --from.in_flight;
      backend = backend_index;
      Backend& to = server->state_->pool(pool).backends[static_cast<size_t>(backend)];
      to.outstanding_tokens += tokens;
      ++to.in_flight;
    }
    ~Held() {
      reservation.Release();  // no-op once settled
      Backend& b = server->state_->pool(pool).backends[static_cast<size_t>(backend)];
      b.outstanding_tokens -= tokens;
      --b.in_flight;
      if (!server->stopping_) server->Kick(pool);
    }
    Held(const Held&) = delete;
    Held& operator=(const Held&) = delete;
    Server* server;
    int pool;
    int backend;
    Reservation reservation;
    int64_t tokens;
  };

  // Dispatches a pool's queue and hands each admitted or expired request to its waiter. A
  // reservation nobody waits for any more is released at once, which may admit more.
  void Kick(int pool) {
    for (;;) {
      std::vector<QueueEvent> events;
      state_->pool(pool).pool->Dispatch(&events);
      bool freed = false;
      for (QueueEvent& ev : events) {
        auto it = waiters_.find(ev.cookie);
        if (it == waiters_.end()) {
          freed |= ev.reservation.active();
          ev.reservation.Release();
          continue;
        }
        Waiter* w = it->second;
        waiters_.erase(it);
        w->event = std::move(ev);
        w->done = true;
        w->timer.cancel();
      }
      if (!freed) return;
    }
  }

  // --- client side --------------------------------------------------------------------------
  template <typename Body>
  void Common(http::response<Body>& res, const Request& req) {
    res.version(req.version());
    res.keep_alive(req.keep_alive() && !draining_);
  }

  net::awaitable<void> DrainWait() {
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::chrono::duration<double>(config_.limits.drain_timeout_s));
    net::steady_timer t(io_);
    // 20 ms: shutdown latency is not worth a notification path through every request.
    while (active_requests_ > 0 && std::chrono::steady_clock::now() < deadline) {
      t.expires_after(std::chrono::milliseconds(20));
      co_await t.async_wait(kTuple);
    }
    Stop();
  }

  net::awaitable<bool> Reply(tcp::socket& s, StringResponse& res) {
    res.prepare_payload();
    auto [ec, n] = co_await http::async_write(s, res, kTuple);
    co_return !ec && res.keep_alive();
  }

  net::awaitable<bool> ReplyJson(tcp::socket& s, const Request& req, int status, std::string body) {
    StringResponse res{static_cast<http::status>(status), req.version()};
    Common(res, req);
    res.set(http::field::content_type, "application/json");
    res.body() = std::move(body);
    co_return co_await Reply(s, res);
  }

  net::awaitable<bool> ReplyError(tcp::socket& s, const Request& req, int status,
                                  std::string_view message, std::string_view type,
                                  std::string_view code) {
    co_return co_await ReplyJson(s, req, status, ErrorJson(message, type, code));
  }

  net::awaitable<void> Session(tcp::socket raw, bool admin) {
    // The stream's timer bounds only the wait for each request; replies are written on the
    // socket itself, without it.
    beast::tcp_stream stream(std::move(raw));
    tcp::socket& socket = stream.socket();
    const auto idle = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(config_.limits.client_idle_timeout_s));
    beast::flat_buffer buffer;
    for (;;) {
      if (draining_) break;
      http::request_parser<http::string_body> parser;
      parser.header_limit(config_.limits.max_header_bytes);
      parser.body_limit(config_.limits.max_body_bytes);
      stream.expires_after(idle);
      reading_.insert(&stream);
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, kTuple);
      reading_.erase(&stream);
      stream.expires_never();
      if (ec == http::error::body_limit) {
        Request head{parser.get().method(), parser.get().target(), parser.get().version()};
        head.keep_alive(false);
        co_await ReplyError(
            socket, head, 413,
            "Request body exceeds " + std::to_string(config_.limits.max_body_bytes) + " bytes",
            "invalid_request_error", "request_too_large");
        break;
      }
      if (ec == http::error::header_limit) {
        Request head{http::verb::get, "/", 11};
        head.keep_alive(false);
        co_await ReplyError(socket, head, 431, "Request headers too large", "invalid_request_error",
                            "headers_too_large");
        break;
      }
      if (ec) break;
      Request req = parser.release();
      struct Active {  // counts requests in flight for the drain, however this frame ends
        explicit Active(int* n) : count(n) { ++*count; }
        ~Active() { --*count; }
        Active(const Active&) = delete;
        Active& operator=(const Active&) = delete;
        int* count;
      } active(&active_requests_);
      const bool keep = admin ? co_await HandleAdmin(socket, req) : co_await Handle(socket, req);
      if (!keep || draining_) break;
    }
    boost::system::error_code ec;
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
  }

  net::awaitable<bool> HandleAdmin(tcp::socket& s, Request& req) {
    std::string_view target = req.target();
    std::string_view auth = req[http::field::authorization];
    constexpr std::string_view kBearer = "Bearer ";
    if (!auth.starts_with(kBearer) ||
        Sha256Hex(auth.substr(kBearer.size())) != config_.admin_token_sha256) {
      co_return co_await ReplyError(s, req, 401, "admin: missing or wrong bearer token",
                                    "invalid_request_error", "invalid_api_key");
    }
    if (target == "/admin/pools" && req.method() == http::verb::get) {
      co_return co_await ReplyJson(s, req, 200, state_->PoolsJson());
    }
    if (target == "/metrics" && req.method() == http::verb::get) co_return co_await Metrics(s, req);
    co_return co_await ReplyError(s, req, 404, "Not Found", "invalid_request_error", "not_found");
  }

  net::awaitable<bool> Handle(tcp::socket& s, Request& req) {
    std::string_view target = req.target();
    if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
    const bool get = req.method() == http::verb::get;
    const bool post = req.method() == http::verb::post;
    if (post && (target == "/v1/chat/completions" || target == "/v1/completions")) {
      co_return co_await Completion(s, req);
    }
    if (get && target == "/health") {
      StringResponse res{http::status::ok, req.version()};
      Common(res, req);
      co_return co_await Reply(s, res);
    }
    if (get && target == "/metrics") co_return co_await Metrics(s, req);
    if (get && target == "/v1/models") {
      co_return co_await ReplyJson(s, req, 200, state_->ModelsJson(UnixNow()));
    }
    co_return co_await ReplyError(
        s, req, 404,
        "Unknown request URL: " + std::string(req.method_string()) + " " + std::string(target),
        "invalid_request_error", "unknown_url");
  }

  net::awaitable<bool> Metrics(tcp::socket& s, const Request& req) {
    StringResponse res{http::status::ok, req.version()};
    Common(res, req);
    res.set(http::field::content_type, "text/plain; version=0.0.4");
    res.body() = metrics_.Scrape(*state_);
    co_return co_await Reply(s, res);
  }

  // 429 with OpenAI's rate-limit headers, computed from the entitlement: tokens per minute at
  // its dynamic burst ceiling, requests as concurrent sequences.
  net::awaitable<bool> Refuse(tcp::socket& s, const Request& req, const HttpError& e,
                              AdmissionOutcome o, Duration retry, int pool, EntitlementRef ref,
                              EntitlementClass cls) {
    StringResponse res{static_cast<http::status>(e.status), req.version()};
    Common(res, req);
    res.set(http::field::content_type, "application/json");
    res.set("x-tokenpool-pool", state_->pool(pool).spec.name);
    res.set("x-tokenpool-class", EntitlementClassName(cls));
    res.set("x-tokenpool-outcome", AdmissionOutcomeName(o));
    if (e.status == 429) {
      const double retry_s = std::max(1.0, std::ceil(ToSeconds(retry)));
      res.set(http::field::retry_after, std::to_string(static_cast<int64_t>(retry_s)));
      Result<EntitlementSnapshot> snap = state_->pool(pool).pool->SnapshotEntitlement(ref);
      if (snap.ok()) {
        const auto per_min = [](double tokens_per_s) {
          return std::to_string(static_cast<int64_t>(std::max(0.0, tokens_per_s) * 60));
        };
        const auto count = [](double v) {
          return std::to_string(static_cast<int64_t>(std::max(0.0, v)));
        };
        res.set("x-ratelimit-limit-tokens", per_min(snap->burst.token_rate));
        res.set("x-ratelimit-remaining-tokens",
                per_min(snap->burst_ceiling.token_rate - snap->in_use.token_rate));
        res.set("x-ratelimit-reset-tokens", std::to_string(static_cast<int64_t>(retry_s)) + "s");
        res.set("x-ratelimit-limit-requests", count(snap->burst.concurrency));
        res.set("x-ratelimit-remaining-requests",
                count(snap->burst_ceiling.concurrency - snap->in_use.concurrency));
        res.set("x-ratelimit-reset-requests", std::to_string(static_cast<int64_t>(retry_s)) + "s");
      }
    }
    std::string message = "Request refused: " + std::string(AdmissionOutcomeName(o)) + " on pool " +
                          state_->pool(pool).spec.name + ".";
    if (e.status == 429) message += " Retry after the time in the retry-after header.";
    res.body() = ErrorJson(message, e.type, e.code);
    co_return co_await Reply(s, res);
  }

  // Waits for a queued request. Returns the QueueEvent when it left the queue, or nullopt when
  // the client went away (the request is then cancelled in the pool).
  net::awaitable<std::optional<QueueEvent>> WaitQueued(tcp::socket& client, int pool,
                                                       const Decision& d, uint64_t cookie) {
    Waiter w(io_.get_executor());
    waiters_[cookie] = &w;
    ClientWatch watch(client, [&w] { w.timer.cancel(); });
    while (!w.done && !watch.gone()) {
      const Duration left = d.deadline == Time::Max()
                                ? std::chrono::hours(1)
                                : std::max(Duration(0), d.deadline - clock_.Now());
      w.timer.expires_after(left + std::chrono::milliseconds(1));
      auto [ec] = co_await w.timer.async_wait(kTuple);
      if (!ec && !w.done) Kick(pool);  // its deadline: Dispatch expires it
    }
    watch.Stop();
    if (w.done) co_return std::move(w.event);
    waiters_.erase(cookie);
    state_->pool(pool).pool->Cancel(d.ticket);
    co_return std::nullopt;
  }

  net::awaitable<bool> Completion(tcp::socket& s, Request& req) {
    const int tenant = state_->FindTenant(req[http::field::authorization]);
    if (tenant < 0) {
      co_return co_await ReplyError(s, req, 401, "Incorrect API key provided.",
                                    "invalid_request_error", "invalid_api_key");
    }
    auto features = std::make_unique<RequestFeatures>();
    if (Status st = parser_.Parse(req.body(), features.get()); !st.ok()) {
      co_return co_await ReplyError(s, req, 400, st.message(), "invalid_request_error",
                                    "invalid_request");
    }
    const RoutePlan plan = state_->Plan(*features, req["x-tokenpool-category"]);
    if (!plan.ok()) {
      co_return co_await ReplyError(s, req, plan.status, plan.message, plan.error_type,
                                    plan.error_code);
    }
    const int pool = plan.pool;
    const EntitlementRef ref = state_->Entitlement(pool, tenant);
    if (!ref.valid()) {
      co_return co_await ReplyError(
          s, req, 403, "Tenant has no entitlement on pool " + state_->pool(pool).spec.name + ".",
          "permission_error", "no_entitlement");
    }
    const EntitlementClass cls = state_->Class(pool, tenant);
    const uint64_t cookie = ++next_cookie_;
    Decision d = state_->pool(pool).pool->Admit(ref, plan.cost, cookie);
    AdmissionOutcome outcome = d.outcome;
    Reservation reservation = std::move(d.reservation);
    Duration retry = d.retry_after;
    if (outcome == AdmissionOutcome::kQueued) {
      std::optional<QueueEvent> ev = co_await WaitQueued(s, pool, d, cookie);
      if (!ev) co_return false;  // client gone; nothing held
      outcome = ev->outcome;
      reservation = std::move(ev->reservation);
      retry = ev->retry_after;
    }
    if (!IsAdmitted(outcome)) {
      co_return co_await Refuse(s, req, OutcomeError(outcome), outcome, retry, pool, ref, cls);
    }
    const int backend = state_->PickBackend(pool, clock_.Now());
    if (backend < 0) {
      reservation.Release();
      Kick(pool);
      StringResponse res{http::status::service_unavailable, req.version()};
      Common(res, req);
      res.set(http::field::content_type, "application/json");
      res.set(http::field::retry_after,
              std::to_string(static_cast<int64_t>(ToSeconds(GatewayState::kUnhealthyFor))));
      res.body() =
          ErrorJson("No healthy backend instance in pool " + state_->pool(pool).spec.name + ".",
                    "server_error", "no_healthy_backend");
      co_return co_await Reply(s, res);
    }
    Held held(this, pool, backend, std::move(reservation), plan.cost.Total().v);
    co_return co_await Proxy(s, req, *features, plan, held, cls);
  }

  // --- upstream side ------------------------------------------------------------------------
  using Upstream = std::unique_ptr<beast::tcp_stream>;

  // An idle connection to the backend, or a new one. *reused says which.
  net::awaitable<Upstream> Acquire(int pool, int backend, bool* reused,
                                   boost::system::error_code* ec) {
    auto& idle = idle_[static_cast<size_t>(pool)][static_cast<size_t>(backend)];
    if (!idle.empty()) {
      Upstream u = std::move(idle.back());
      idle.pop_back();
      *reused = true;
      co_return u;
    }
    *reused = false;
    const BackendUrl& url = state_->pool(pool).backends[static_cast<size_t>(backend)].url;
    auto u = std::make_unique<beast::tcp_stream>(io_);
    tcp::resolver resolver(io_);
    auto [rec, results] =
        co_await resolver.async_resolve(url.host, std::to_string(url.port), kTuple);
    if (rec) {
      *ec = rec;
      co_return nullptr;
    }
    u->expires_after(std::chrono::seconds(10));
    auto [cec, ep] = co_await u->async_connect(results, kTuple);
    if (cec) {
      *ec = cec;
      co_return nullptr;
    }
    u->socket().set_option(tcp::no_delay(true), cec);
    co_return u;
  }

  void ReleaseUpstream(int pool, int backend, Upstream u) {
    auto& idle = idle_[static_cast<size_t>(pool)][static_cast<size_t>(backend)];
    if (idle.size() < kMaxIdlePerBackend) {
      u->expires_never();
      idle.push_back(std::move(u));
    }
  }

  std::chrono::steady_clock::duration UpstreamTimeout() const {
    return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(config_.limits.upstream_timeout_s));
  }

  void SetDebugHeaders(http::fields& f, int pool, EntitlementClass cls) {
    f.set("x-tokenpool-pool", state_->pool(pool).spec.name);
    f.set("x-tokenpool-class", EntitlementClassName(cls));
  }

  net::awaitable<bool> BackendError(tcp::socket& s, const Request& req,
                                    const boost::system::error_code& ec, int pool) {
    if (ec == beast::error::timeout) {
      co_return co_await ReplyError(
          s, req, 504, "Backend of pool " + state_->pool(pool).spec.name + " timed out.",
          "server_error", "backend_timeout");
    }
    co_return co_await ReplyError(
        s, req, 502, "Backend of pool " + state_->pool(pool).spec.name + " failed: " + ec.message(),
        "server_error", "backend_error");
  }

  net::awaitable<bool> Proxy(tcp::socket& s, const Request& req, const RequestFeatures& f,
                             const RoutePlan& plan, Held& held, EntitlementClass cls) {
    const int pool = held.pool;
    int backend = held.backend;
    const bool add_usage = f.stream && !f.include_usage;
    Request up{http::verb::post, req.target(), 11};
    const auto set_host = [&] {
      const BackendUrl& url = state_->pool(pool).backends[static_cast<size_t>(backend)].url;
      up.set(http::field::host, url.host + ":" + std::to_string(url.port));
    };
    set_host();
    up.set(http::field::content_type, "application/json");
    up.keep_alive(true);
    up.body() = add_usage ? WithIncludeUsage(req.body()) : req.body();
    up.prepare_payload();

    // A reused idle connection may have been closed by the backend meanwhile: one retry on a
    // fresh connection when nothing came back on the reused one.
    Upstream u;
    beast::flat_buffer buf;
    std::optional<http::response_parser<http::buffer_body>> parser;
    boost::system::error_code ec;
    // Non-streaming: a client that leaves while the backend works closes the upstream
    // connection, which aborts the request there (vLLM and the mock free its KV) and ends the
    // wait here. (Streaming notices at its next write.)
    std::optional<ClientWatch> watch;
    if (!f.stream) {
      watch.emplace(s, [&u] {
        if (!u) return;
        boost::system::error_code ignored;
        u->socket().close(ignored);
      });
    }
    // A failed connect marks the instance unhealthy and tries the next healthy one: nothing was
    // sent, so the request cannot run twice.
    const int max_attempts = 2 + static_cast<int>(state_->pool(pool).backends.size());
    for (int attempt = 0; attempt < max_attempts; ++attempt) {
      bool reused = false;
      ec = {};
      u = co_await Acquire(pool, backend, &reused, &ec);
      if (!u) {
        if (watch && watch->gone()) break;
        state_->MarkUnhealthy(pool, backend, clock_.Now());
        const int next = state_->PickBackend(pool, clock_.Now());
        if (next < 0) break;
        held.MoveTo(next);
        backend = next;
        set_host();
        continue;
      }
      u->expires_after(UpstreamTimeout());
      auto [wec, wn] = co_await http::async_write(*u, up, kTuple);
      ec = wec;
      if (!ec) {
        parser.emplace();
        parser->body_limit(boost::none);
        buf.clear();
        auto [rec, rn] = co_await http::async_read_header(*u, buf, *parser, kTuple);
        ec = rec;
      }
      if (!ec || !reused || ec == beast::error::timeout || (watch && watch->gone())) break;
    }
    if (watch && watch->gone()) co_return false;
    if (ec || !u) co_return co_await BackendError(s, req, ec, pool);
    http::response_parser<http::buffer_body>& rp = *parser;

    const unsigned status = rp.get().result_int();
    if (status != 200 || !f.stream) {
      // Read the whole body.
      std::string body;
      char tmp[16384];
      while (!rp.is_done()) {
        rp.get().body().data = tmp;
        rp.get().body().size = sizeof tmp;
        auto [rec, rn] = co_await http::async_read(*u, buf, rp, kTuple);
        if (rec == http::error::need_buffer) rec = {};
        body.append(tmp, sizeof tmp - rp.get().body().size);
        if (watch && watch->gone()) co_return false;
        if (rec) co_return co_await BackendError(s, req, rec, pool);
      }
      if (watch) watch->Stop();
      const bool upstream_keep = rp.get().keep_alive();
      std::string content_type(rp.get()[http::field::content_type]);
      if (upstream_keep) ReleaseUpstream(pool, backend, std::move(u));
      if (status >= 500) {
        co_return co_await ReplyError(s, req, 502,
                                      "Backend of pool " + state_->pool(pool).spec.name +
                                          " answered " + std::to_string(status) + ".",
                                      "server_error", "backend_error");
      }
      if (status == 200) {
        Usage usage;
        if (ReadUsage(body, &usage)) {
          held.reservation.Settle(usage);
          state_->Observe(f, req["x-tokenpool-category"], usage.prompt.v);
        } else {
          held.reservation.Settle({.prompt = Tokens(plan.estimate.prompt_tokens),
                                   .completion = Tokens(plan.estimate.output_reserve)});
        }
      }
      // 4xx from the backend (e.g. context too long): forwarded as is; the reservation is
      // released by `held`.
      StringResponse res{static_cast<http::status>(status), req.version()};
      Common(res, req);
      SetDebugHeaders(res, pool, cls);
      res.set(http::field::content_type, content_type.empty() ? "application/json" : content_type);
      res.body() = std::move(body);
      co_return co_await Reply(s, res);
    }

    // Streaming: our headers now, then each SSE event as it arrives.
    http::response<http::empty_body> head{http::status::ok, req.version()};
    Common(head, req);
    SetDebugHeaders(head, pool, cls);
    head.set(http::field::content_type, "text/event-stream");
    head.set(http::field::cache_control, "no-cache");
    head.chunked(true);
    http::response_serializer<http::empty_body> sr{head};
    if (auto [hec, hn] = co_await http::async_write_header(s, sr, kTuple); hec) co_return false;

    std::string pending, out;
    Usage usage;
    bool have_usage = false;
    int64_t content_events = 0;
    bool client_ok = true;
    char tmp[16384];
    boost::system::error_code rec;
    while (!rp.is_done()) {
      rp.get().body().data = tmp;
      rp.get().body().size = sizeof tmp;
      u->expires_after(UpstreamTimeout());
      auto [e2, rn] = co_await http::async_read_some(*u, buf, rp, kTuple);
      rec = e2 == http::error::need_buffer ? boost::system::error_code() : e2;
      pending.append(tmp, sizeof tmp - rp.get().body().size);
      out.clear();
      for (size_t end; (end = pending.find("\n\n")) != std::string::npos;) {
        std::string ev = pending.substr(0, end + 2);
        pending.erase(0, end + 2);
        std::string_view data(ev);
        if (data.starts_with("data: ") && !data.starts_with("data: [DONE]")) {
          const std::string_view json = data.substr(6, data.size() - 8);
          if (json.find("\"usage\":{") != std::string_view::npos && ReadUsage(json, &usage)) {
            have_usage = true;
            if (add_usage && json.find("\"choices\":[]") != std::string_view::npos) continue;
          }
          ++content_events;
          if (add_usage) {
            // The client did not ask for usage: hide the nulls that include_usage adds.
            constexpr std::string_view kNull = ",\"usage\":null";
            if (size_t at = ev.find(kNull); at != std::string::npos) ev.erase(at, kNull.size());
          }
        }
        out += ev;
      }
      if (!out.empty() && client_ok) {
        auto [wec, wn] = co_await net::async_write(s, http::make_chunk(net::buffer(out)), kTuple);
        if (wec) client_ok = false;
      }
      if (rec || !client_ok) break;
    }
    const bool complete = rp.is_done() && !rec;
    if (complete && rp.get().keep_alive() && client_ok) {
      ReleaseUpstream(pool, backend, std::move(u));
    }
    if (have_usage) {
      held.reservation.Settle(usage);
      state_->Observe(f, req["x-tokenpool-category"], usage.prompt.v);
    } else if (content_events > 0) {
      // Partly served without a usage report: charge the estimate's prompt and one token per
      // event (a backend sends at least one token per chunk).
      held.reservation.Settle(
          {.prompt = Tokens(plan.estimate.prompt_tokens), .completion = Tokens(content_events)});
    }
    if (!client_ok || !complete) co_return false;  // the client sees the stream cut
    auto [lec, ln] = co_await net::async_write(s, http::make_chunk_last(), kTuple);
    co_return !lec && req.keep_alive();
  }

  // Order matters for destruction: io_ (which destroys pending coroutine frames) goes before
  // the state and the waiters those frames touch, and after the sockets that use it.
  const GatewayConfig& config_;
  bool stopping_ = false;
  bool draining_ = false;
  int active_requests_ = 0;
  std::unordered_set<beast::tcp_stream*> reading_;  // sessions waiting for a request
  RealClock clock_;
  std::unique_ptr<GatewayState> state_;
  parse::RequestParser parser_;
  GatewayMetrics metrics_;
  std::unordered_map<uint64_t, Waiter*> waiters_;
  uint64_t next_cookie_ = 0;
  net::io_context io_;
  tcp::acceptor acceptor_;
  tcp::acceptor admin_acceptor_;
  std::vector<std::vector<std::vector<Upstream>>> idle_;  // [pool][backend]
};

}  // namespace

Status RunGateway(const GatewayConfig& config, std::FILE* out,
                  const std::function<void(uint16_t port, uint16_t admin_port)>& on_ready,
                  const std::string& reload_path) {
  RealClock clock;
  Result<std::unique_ptr<GatewayState>> state = GatewayState::Create(config, clock);
  if (!state.ok()) return state.status();
  Server server(config, std::move(*state));
  uint16_t port = 0;
  uint16_t admin_port = 0;
  if (Status s = server.Listen(server.acceptor(), config.listen, &port); !s.ok()) return s;
  if (config.admin_enabled) {
    if (Status s = server.Listen(server.admin_acceptor(), config.admin, &admin_port); !s.ok()) {
      return s;
    }
  }
  const std::string admin = config.admin_enabled
                                ? config.admin.host + ":" + std::to_string(admin_port)
                                : std::string("off");
  std::fprintf(out, "tokenpool serve listening on %s:%u admin=%s pools=%zu tenants=%zu\n",
               config.listen.host.c_str(), static_cast<unsigned>(port), admin.c_str(),
               config.pools.size(), config.tenants.size());
  std::fflush(out);
  if (on_ready) on_ready(port, admin_port);
  // The first SIGINT/SIGTERM drains, a second one stops at once.
  net::signal_set signals(server.io(), SIGINT, SIGTERM);
  std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec,
                                                                      int) {
    if (ec) return;
    server.Drain();
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);
  net::signal_set hup(server.io(), SIGHUP);
  std::function<void(boost::system::error_code, int)> on_hup = [&](boost::system::error_code ec,
                                                                   int) {
    if (ec) return;
    if (!reload_path.empty()) server.Reload(reload_path);
    hup.async_wait(on_hup);
  };
  hup.async_wait(on_hup);
  net::co_spawn(server.io(), server.AcceptLoop(server.acceptor(), false), net::detached);
  if (config.admin_enabled) {
    net::co_spawn(server.io(), server.AcceptLoop(server.admin_acceptor(), true), net::detached);
  }
  server.io().run();
  return Status::Ok();
}

}  // namespace tokenpool::gateway
