#include "gateway/server.h"

#include <fmt/compile.h>
#include <fmt/format.h>
#include <poll.h>
#include <prometheus/histogram.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gateway/admin.h"
#include "gateway/deadlines.h"
#include "gateway/draining_read.h"
#include "gateway/errors.h"
#include "gateway/http_head.h"
#include "gateway/http_message.h"
#include "gateway/line_writer.h"
#include "gateway/metrics.h"
#include "gateway/sha256.h"
#include "gateway/state.h"
#include "gateway/usage.h"
#include "gateway/write_all.h"
#include "parse/request_parser.h"
#include "tokenpool/real_clock.h"

namespace tokenpool::gateway {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using StringResponse = http::response<http::string_body>;
using SteadyDuration = std::chrono::steady_clock::duration;
constexpr auto kTuple = net::as_tuple(net::use_awaitable);

// Idle upstream connections kept per backend instance and worker. 64: more than the concurrency
// a mock or vLLM replica serves at once in our tests and demos; beyond it, connections close.
constexpr size_t kMaxIdlePerBackend = 64;

// Initial capacity of the read buffers of client and upstream connections (see Session).
constexpr size_t kReadBufferBytes = 16384;
// The most of a client's model name that its log line carries: the line stays one write under
// PIPE_BUF (a 16 MiB body could name a model of megabytes).
constexpr size_t kLogModelBytes = 256;

// A request's target without its query.
std::string_view PathOf(const ClientRequest& req) {
  const std::string_view t = req.target;
  return t.substr(0, t.find('?'));
}

// A POST to one of the completion endpoints (the token-pool path), `path` being PathOf(req).
bool IsCompletion(const ClientRequest& req, std::string_view path) {
  return req.method == http::verb::post &&
         (path == "/v1/chat/completions" || path == "/v1/completions");
}

// The 401 messages: OpenAI's for a key, the admin API's for its token.
constexpr std::string_view kBadApiKey = "Incorrect API key provided.";
constexpr std::string_view kAdminUnauthorized = "admin: missing or wrong bearer token";

// An upstream connection with its read buffer, allocated once with the connection and reused by
// every request it carries: a 16 KiB buffer and a 16 KiB array on the coroutine frame per
// request were the gateway's largest malloc cost (perf: _int_malloc, unlink_chunk, brk).
struct UpstreamConn {
  explicit UpstreamConn(net::io_context& io) : socket(io) { buf.reserve(kReadBufferBytes); }
  tcp::socket socket;
  beast::flat_buffer buf;  // raw bytes for the parser
  Deadline deadline;       // the upstream time limit, while a request waits on it
};
using Upstream = std::unique_ptr<UpstreamConn>;

// The longest server-sent event a stream may carry while it goes on (StreamBack): a bound on
// what one stream holds. (vLLM's events are a chunk's delta, but one may carry a whole
// prompt's logprobs or an echoed prompt: tens of MB for a long one.)
constexpr size_t kMaxSseEventBytes = size_t{64} << 20;

int64_t UnixNow() { return static_cast<int64_t>(std::time(nullptr)); }

SteadyDuration SecondsToSteady(double s) {
  return std::chrono::duration_cast<SteadyDuration>(std::chrono::duration<double>(s));
}

// "2026-11-23T04:05:31.049275Z info " (33 characters), the prefix of the gateway's log
// pattern, for the request lines, which Finish writes itself: the date and time to the second
// are formatted once a second per thread (spdlog's pattern formatter took ~1.5 K instructions
// a line).
void PutLogPrefix(LineWriter* w) {
  const int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  const int64_t sec = us >= 0 ? us / 1000000 : (us - 999999) / 1000000;
  thread_local int64_t cached_sec = INT64_MIN;
  thread_local std::array<char, 19> cached{};
  if (sec != cached_sec) {
    const std::time_t t = static_cast<std::time_t>(sec);
    std::tm tm{};
    gmtime_r(&t, &tm);
    fmt::format_to_n(cached.data(), cached.size(),
                     FMT_COMPILE("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}"), tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cached_sec = sec;
  }
  w->Put(std::string_view(cached.data(), cached.size()));
  w->Put('.');
  w->Padded(static_cast<uint64_t>(us - sec * 1000000), 6);
  w->Put(std::string_view("Z info "));
}

double MsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// A queued request waiting for Dispatch: the timer is its condition variable. `done` and
// `event` are written by Kick under the server's lock, possibly on another worker's thread,
// which then posts the timer's cancel to this waiter's own executor.
struct Waiter {
  explicit Waiter(const net::any_io_executor& ex) : timer(ex) {}
  net::steady_timer timer;
  bool done = false;
  QueueEvent event;
};

class LateWatches;

// What a client socket that epoll called readable says, by one poll(2) with POLLRDHUP: gone (a
// FIN, even behind bytes not read yet, as nginx reads its EPOLLRDHUP; or a reset or error),
// data only (a pipelined request), or nothing (a wake-up with nothing to read).
enum class ClientProbe { kGone, kData, kNothing };
inline ClientProbe ProbeClient(int fd) {
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) < 0) return ClientProbe::kData;  // cannot tell now: polled again later
  if ((p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0) return ClientProbe::kGone;
  return (p.revents & POLLIN) != 0 ? ClientProbe::kData : ClientProbe::kNothing;
}

// Watches a client socket while the gateway waits for something else (the queue, a backend, a
// stream's next bytes): when the client closes or resets the connection, on_gone runs. The
// watch begins with Start() (at once, or later through LateWatches) and ends with Stop() or the
// destructor, before what on_gone touches goes away. It waits for epoll to call the socket
// readable; bytes that are not a close (a pipelined request, left for the connection to read
// later) keep it watching by a poll(2) every LateWatches::kAfter, since a wait for readiness
// would fire again at once on the unread bytes. Single-threaded: the socket's own worker.
class ClientWatch {
 public:
  ClientWatch(tcp::socket& client, LateWatches& late, std::function<void()> on_gone)
      : client_(client), late_watches_(late), on_gone_(std::move(on_gone)) {}
  ~ClientWatch() { Stop(); }
  ClientWatch(const ClientWatch&) = delete;
  ClientWatch& operator=(const ClientWatch&) = delete;

  // Begins the wait on the socket, once; nothing after Stop().
  void Start() {
    if (state_ != nullptr || stopped_) return;
    state_ = std::make_shared<State>();
    state_->on_gone = std::move(on_gone_);
    state_->self = this;
    Wait();
  }
  // Start() once the wait has lasted LateWatches::kAfter.
  inline void StartLate();
  inline void Stop();
  bool gone() const { return state_ != nullptr && state_->gone; }

 private:
  friend class LateWatches;
  struct State {
    bool watching = true;
    bool gone = false;
    ClientWatch* self = nullptr;  // valid while watching (Stop clears watching first)
    std::function<void()> on_gone;
  };
  void Wait() {
    client_.async_wait(tcp::socket::wait_read,
                       [st = state_, fd = client_.native_handle()](boost::system::error_code ec) {
                         if (ec || !st->watching) return;
                         switch (ProbeClient(fd)) {
                           case ClientProbe::kGone:
                             Gone(*st);
                             return;
                           case ClientProbe::kNothing:
                             st->self->Wait();
                             return;
                           case ClientProbe::kData:
                             st->self->PollLater();
                             return;
                         }
                       });
  }
  static void Gone(State& st) {
    st.gone = true;
    st.on_gone();
  }
  inline void PollLater();

  tcp::socket& client_;
  LateWatches& late_watches_;
  std::function<void()> on_gone_;  // until Start
  std::shared_ptr<State> state_;   // from Start; shared with the wait's handler
  bool stopped_ = false;
  bool polled_ = false;      // watched by poll(2) from LateWatches' timer, not by epoll
  bool registered_ = false;  // in late_watches_
  size_t late_index_ = 0;
  std::chrono::steady_clock::time_point since_;
};

// Client watches that start only once their wait has lasted kAfter, and watches kept by a
// poll(2) every kAfter (ClientWatch). A watch costs a system call per request (an async_wait
// makes Asio re-arm the socket in epoll, epoll_ctl), the one system call a plain proxy like
// nginx does not make (its sockets stay registered edge-triggered for good), and most waits
// for a backend that answers at once end before kAfter. A request of an LLM backend lasts far
// longer, so its client is watched after kAfter: a client that leaves is noticed at most
// ~2 kAfter late (its reservation and the backend's work are freed then). One timer per worker,
// armed only while some watch waits here. Single-threaded.
class LateWatches {
 public:
  static constexpr auto kAfter = std::chrono::milliseconds(10);

  explicit LateWatches(net::io_context& io) : timer_(io) {}
  ~LateWatches() {  // frames that outlive this (destroyed with the io_context) must not call back
    for (ClientWatch* w : watches_) w->registered_ = false;
  }
  LateWatches(const LateWatches&) = delete;
  LateWatches& operator=(const LateWatches&) = delete;

  void Add(ClientWatch* w) {
    w->since_ = std::chrono::steady_clock::now();
    w->registered_ = true;
    w->late_index_ = watches_.size();
    watches_.push_back(w);
    if (!armed_) Arm(w->since_ + kAfter);
  }
  void Remove(ClientWatch* w) {
    ClientWatch* last = watches_.back();
    watches_[w->late_index_] = last;
    last->late_index_ = w->late_index_;
    watches_.pop_back();
    w->registered_ = false;
  }

 private:
  void Arm(std::chrono::steady_clock::time_point at) {
    armed_ = true;
    timer_.expires_at(at);
    timer_.async_wait([this](boost::system::error_code ec) {
      armed_ = false;
      if (ec) return;
      Tick();
    });
  }
  void Tick() {
    const auto now = std::chrono::steady_clock::now();
    auto next = std::chrono::steady_clock::time_point::max();
    for (size_t i = 0; i < watches_.size();) {
      ClientWatch* w = watches_[i];
      if (now - w->since_ < kAfter) {
        next = std::min(next, w->since_ + kAfter);
        ++i;
      } else if (!w->polled_) {
        Remove(w);  // moves the last one to i
        w->Start();
      } else if (ProbeClient(w->client_.native_handle()) == ClientProbe::kGone) {
        Remove(w);
        ClientWatch::Gone(*w->state_);  // may end `w`'s request, never this loop's other watches
      } else {
        w->since_ = now;
        next = std::min(next, now + kAfter);
        ++i;
      }
    }
    if (!watches_.empty()) Arm(next);
  }

  std::vector<ClientWatch*> watches_;  // unordered; each knows its index
  net::steady_timer timer_;
  bool armed_ = false;
};

void ClientWatch::StartLate() {
  if (state_ != nullptr || stopped_ || registered_) return;
  late_watches_.Add(this);
}

void ClientWatch::PollLater() {
  polled_ = true;
  late_watches_.Add(this);
}

void ClientWatch::Stop() {
  stopped_ = true;
  if (registered_) late_watches_.Remove(this);
  if (state_ == nullptr || !state_->watching) return;
  state_->watching = false;
  if (!polled_) {
    boost::system::error_code ignored;
    client_.cancel(ignored);
  }
}

// Whether `needle` occurs in `hay`: glibc's memmem (two-way search). std::string_view::find
// calls memchr for the needle's first byte, and for a needle that starts with '"' in JSON that
// is one call per quote: it was the gateway's largest cost after the estimator in callgrind.
bool Contains(std::string_view hay, std::string_view needle) {
  return ::memmem(hay.data(), hay.size(), needle.data(), needle.size()) != nullptr;
}

// The request body's features, and a refusal when it asks for no output or its kind is not
// the path's (the parser tells them by messages / prompt): a completions body sent to the
// chat path would be the backend's 400, in its own format.
Status ParseForPath(parse::RequestParser& parser, const ClientRequest& req, RequestFeatures* f) {
  // vLLM refuses a request for no output: the parser's 400 at the gateway (min_max_tokens),
  // without a reservation taken.
  if (Status st = parser.Parse(req.body, f); !st.ok()) return st;
  const bool chat_path = req.target.starts_with("/v1/chat/");
  if (chat_path == (f->endpoint == Endpoint::kChatCompletions)) return Status::Ok();
  return InvalidArgument(chat_path ? "messages: required by /v1/chat/completions (prompt is a "
                                     "field of /v1/completions)"
                                   : "prompt: required by /v1/completions (messages is a field "
                                     "of /v1/chat/completions)");
}

// A client's x-request-id is kept when it is 1-128 characters of [A-Za-z0-9._:-]; else the
// gateway makes one.
bool UsableRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.' ||
           c == ':';
  });
}

// The last key a client connection authenticated with, so that the requests after the first on
// a keep-alive connection skip the SHA-256 (~3 K instructions, a twentieth of a request's work)
// when they present the same Authorization bytes. Only this connection's own earlier header is
// kept, for the connection's lifetime, and a reload (keys_generation) forgets it.
struct ConnectionAuth {
  std::string header;
  int tenant = -1;
  uint64_t generation = 0;
  // The histograms of the last request's pool for this tenant, valid while `metrics_pool` and
  // `metrics_generation` are the request's pool and `generation` (GatewayMetrics never drops
  // them, so the pointer stays good): GatewayMetrics::ForRequest's map and mutex skipped when
  // a keep-alive client sends to the same pool again.
  RequestMetrics* metrics = nullptr;
  int metrics_pool = -1;
  uint64_t metrics_generation = 0;
};

// A name the request log shows, kept by the connection from request to request: assigned only
// when it changes (a keep-alive client's tenant and pool rarely do), "-" until set.
// std::string's assign was ~70 instructions a call, four a request (callgrind, PROFILE_KEEP of
// bench/gateway/run_gateway_profile.sh; docs/benchmarks.md, tenth pass).
class RecordName {
 public:
  void Reset() { set_ = false; }
  bool set() const { return set_; }
  void Set(std::string_view v) {
    if (std::string_view(value_) != v) value_.assign(v);
    set_ = true;
  }
  std::string_view view() const { return set_ ? std::string_view(value_) : "-"; }
  const std::string& str() const { return set_ ? value_ : kUnset; }

 private:
  inline static const std::string kUnset = "-";
  std::string value_;
  bool set_ = false;
};

// What one request did, for its log line and its histograms.
struct RequestRecord {
  RequestRecord() { Reset(); }
  RequestRecord(const RequestRecord&) = delete;  // `id` points into its own id_buf
  RequestRecord& operator=(const RequestRecord&) = delete;

  // A new request's values (the strings keep their capacity): "-" and -1 for what is not
  // known yet.
  void Reset() {
    id = {};
    start = std::chrono::steady_clock::now();
    tenant.Reset();
    model = "-";
    pool.Reset();
    cls = outcome = end = "-";
    status = 0;
    stream = false;
    estimated_prompt = 0;
    prompt = completion = -1;
    queue_ms = 0;
    ttft_ms = -1;
    metrics = nullptr;
  }

  std::string_view id;           // in id_buf
  std::array<char, 128> id_buf;  // the client's id (1-128 characters) or ours (16): no malloc
  std::chrono::steady_clock::time_point start;
  RecordName tenant;
  std::string_view model;  // in the connection's RequestFeatures, which outlive the record's use
  RecordName pool;
  std::string_view cls;
  std::string_view outcome;  // the admission outcome (the core's name)
  std::string_view end;      // how it ended when not by a full reply: client_gone, ...
  int status;
  bool stream;
  int64_t estimated_prompt;
  int64_t prompt;
  int64_t completion;
  double queue_ms;
  double ttft_ms;
  RequestMetrics* metrics;  // per pool and tenant, once routed
};

// A client connection's state across its requests: the key memo and the buffers its requests
// (one at a time) need, which keep their capacity (per-request strings of 0.5-2 KiB went to
// malloc's slow path, above its per-thread cache's 1 KiB).
struct ConnectionState {
  ConnectionAuth auth;
  ClientRequest req;         // the request being served
  RequestRecord rec;         // what it did
  RequestFeatures features;  // what its body says
  RoutePlan plan;            // where it goes and what it costs (Completion assigns it)
  BackendResponse up_resp;   // the backend's status line (Proxy)
  std::optional<BackendResponseParser> up_parser;  // the backend's answer (Proxy), into up_resp
  std::optional<ClientWatch> up_watch;  // the client while a non-streamed answer is awaited
  std::string up_head;                  // the request head sent upstream
  std::string up_type;                  // the backend answer's Content-Type
  std::string body;                     // a non-streamed answer, or an error answer
  std::string head;                     // the head of the answer to the client
  std::string pending;                  // SSE bytes not yet a whole event
  std::string out;                      // SSE events to forward
  std::string wire;                     // what goes to the client in one write
  Deadline deadline;                    // the client's idle time, while waiting for a request

  // Gives back what a large request or answer left behind: an idle keep-alive connection holds
  // at most 14 x kKeep here (typically a few KiB), however large its messages were.
  void Trim() {
    constexpr size_t kKeep = 16 * 1024;
    req.Trim(kKeep);
    for (std::string* b : {&up_head, &up_type, &body, &head, &pending, &out, &wire}) {
      if (b->capacity() > kKeep) std::string().swap(*b);
    }
  }
};

// A worker's request log lines, written to standard error together: at the end of the
// event-loop turn that finished them (the first line posts a Flush, which Asio runs after the
// handlers already ready in that turn), or at once when the next line could take the batch past
// PIPE_BUF (4 KiB: a write that size into a pipe is atomic, so the lines of two workers, and
// spdlog's own, never mix). One write(2) per turn instead of one per request: 256-byte lines
// to a file cost 0.95-1.16 microseconds each written one at a time, 0.43-0.52 written four at
// a time (build/bench/log_write_bench, two runs); write(2)s per plain request at saturation
// 1.00 -> 0.21 (strace in bench/gateway/run_gateway_profile.sh).
// A line is never held past the turn: the loop does not sleep while the Flush is pending.
// Single-threaded (its worker's).
class LogBatch {
 public:
  static constexpr size_t kMaxBytes = 4096;
  // Where to write a line of at most `bound` bytes; then Commit its end.
  char* Reserve(size_t bound) {
    if (used_ > 0 && used_ + bound > kMaxBytes) Flush();
    if (buf_.size() < used_ + bound) buf_.resize(std::max(used_ + bound, kMaxBytes));
    return buf_.data() + used_;
  }
  // True for the turn's first line: the caller posts Flush.
  bool Commit(const char* end) {
    const bool first = used_ == 0;
    used_ = static_cast<size_t>(end - buf_.data());
    return first;
  }
  void Flush() {
    if (used_ == 0) return;
    (void)WriteAllFd(STDERR_FILENO, std::string_view(buf_.data(), used_));  // never stops a request
    used_ = 0;
    if (buf_.size() > 64 * 1024) std::string(kMaxBytes, '\0').swap(buf_);  // a huge name's line
  }

 private:
  std::string buf_;
  size_t used_ = 0;
};

// One I/O thread: its io_context, its listener (SO_REUSEPORT: the kernel spreads connections
// over the workers' listeners), its request parser and its idle upstream connections. Only its
// own thread touches these; what the workers share is behind Server::mu_.
struct Worker {
  Worker(int i, const GatewayConfig& config, const std::vector<size_t>& backends_per_pool)
      : index(i),
        parser(parse::ParserConfig{.max_body_bytes = config.limits.max_body_bytes,
                                   .min_max_tokens = 1}) {
    idle.resize(backends_per_pool.size());
    for (size_t p = 0; p < backends_per_pool.size(); ++p) idle[p].resize(backends_per_pool[p]);
  }
  // Declared first: destroyed last, after the sockets below and the coroutine frames it owns.
  // One thread runs it, and only that thread touches its sockets (other threads post to it:
  // Reload, Drain, a waiter's wake-up), so the reactor's per-socket lock is off: Asio's
  // UNSAFE_IO hint (30,084 -> 29,234 instructions per plain request, run_gateway_profile.sh).
  // Posting, timers and io.stop() stay thread-safe under it.
  net::io_context io{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  int index;
  tcp::acceptor acceptor{io};
  tcp::acceptor admin_acceptor{io};  // worker 0 only
  parse::RequestParser parser;
  // Idle upstream connections per backend slot, of the slot's generation (Backend::generation).
  struct IdleSlot {
    uint64_t generation = 0;
    std::vector<Upstream> conns;
  };
  std::vector<std::vector<IdleSlot>> idle;  // [pool][backend]
  uint64_t backends_epoch = 0;              // Server::backends_epoch_ when `idle` was synced
  Deadlines deadlines{io};                  // client idle time and upstream limits
  LateWatches late_watches{io};
  LogBatch log;        // flushed by the loop's posted handler, and after the loop ends
  std::thread thread;  // workers 1..n-1
};

class Server {
 public:
  Server(const GatewayConfig& config, const RealClock& clock, std::unique_ptr<GatewayState> state,
         int workers)
      : config_(config), clock_(clock), state_(std::move(state)) {
    std::vector<size_t> backends;
    for (int p = 0; p < state_->pool_count(); ++p) {
      backends.push_back(state_->pool(p).backends.size());
    }
    for (int i = 0; i < workers; ++i) {
      workers_.push_back(std::make_unique<Worker>(i, config, backends));
    }
    if (!config.admin_state_file.empty()) saver_.emplace(1);
    std::random_device rd;
    id_prefix_ = rd();
  }
  ~Server() {
    // Coroutine frames still pending are destroyed with the workers' io_contexts (below); their
    // reservation guards must then only release, not dispatch. A write still queued on the saver
    // finishes first: its completion (an admin reply's coroutine) goes to worker 0's io_context,
    // and is destroyed with it.
    stopping_ = true;
    FinishSaves();
    workers_.clear();
  }

  Worker& worker(int i) { return *workers_[static_cast<size_t>(i)]; }
  int worker_count() const { return static_cast<int>(workers_.size()); }

  // Waits for the admin state file's writes still queued (after the workers have stopped).
  void FinishSaves() {
    if (saver_) saver_->join();
  }

  // Binds every worker's listener to the same address with SO_REUSEPORT (port 0: the first one
  // picks a free port, the others take the same).
  Status ListenAll(uint16_t* port) {
    uint16_t p = config_.listen.port;
    for (auto& w : workers_) {
      Listener l = config_.listen;
      l.port = p;
      if (Status s = Listen(w->acceptor, l, true, &p); !s.ok()) return s;
    }
    *port = p;
    return Status::Ok();
  }
  Status ListenAdmin(uint16_t* port) {
    return Listen(worker(0).admin_acceptor, config_.admin, false, port);
  }

  void StartAccepting() {
    for (auto& w : workers_) {
      net::co_spawn(w->io, AcceptLoop(*w, w->acceptor, false), net::detached);
    }
    if (config_.admin_enabled) {
      Worker& w = worker(0);
      net::co_spawn(w.io, AcceptLoop(w, w.admin_acceptor, true), net::detached);
    }
  }

  // Reads every backend's /metrics every backend_metrics.interval_s (worker 0), each read on
  // its own coroutine with a time limit of min(interval, 2 s); a read still running when the
  // next tick comes is not doubled.
  void StartBackendScrape() {
    if (config_.backend_metrics.interval_s <= 0) return;
    Worker& w = worker(0);
    net::co_spawn(w.io, ScrapeLoop(w), net::detached);
  }

  // Stops every worker's io_context (thread-safe).
  void Stop() {
    for (auto& w : workers_) w->io.stop();
  }

  // Re-reads the config file and applies its tenants, entitlements and backends, or keeps the
  // running ones when it does not load or is refused. Called on worker 0 (SIGHUP, file watch):
  // the only thread that changes the backend lists, which ScrapeLoop reads without the lock.
  void Reload(const std::string& path, const char* why) {
    Result<GatewayConfig> next = LoadGatewayConfigFile(path);
    Status s = next.status();
    bool backends_changed = false;
    std::vector<std::string> notes;
    size_t entitlements = 0;
    int overrides = 0;
    std::optional<std::string> to_save;  // taken under the lock, written after it
    if (next.ok()) {
      const Locked lock(*this);
      const int before = state_->admin_override_count();
      s = state_->ReloadFile(*next, &backends_changed, &notes);
      entitlements = state_->config().entitlements.size();
      overrides = state_->admin_override_count();
      // Overrides the reload dropped are gone from the state file too.
      if (s.ok() && overrides != before && !config_.admin_state_file.empty()) {
        to_save = AdminOverridesJson(*state_);
      }
      if (backends_changed) backends_epoch_.fetch_add(1, std::memory_order_relaxed);
      for (int p = 0; p < state_->pool_count(); ++p) KickLocked(p);
    }
    if (to_save) {
      SaveAdminStateLater(std::move(*to_save), [path, why](const Status& saved) {
        if (!saved.ok()) spdlog::error("reload of {} ({}): {}", path, why, saved.message());
      });
    }
    if (backends_changed) {
      // Idle connections to retired backends close now, not at the worker's next request.
      for (auto& w : workers_) net::post(w->io, [this, wk = w.get()] { SyncIdle(*wk); });
    }
    if (s.ok()) {
      for (const std::string& n : notes) spdlog::warn("reload of {} ({}): {}", path, why, n);
      int backends = 0;
      for (const PoolSpec& p : next->pools) backends += static_cast<int>(p.backends.size());
      spdlog::info(
          "reloaded {} ({}): {} tenants, {} entitlements, {} admin API overrides kept, "
          "{} backends{}",
          path, why, next->tenants.size(), entitlements, overrides, backends,
          backends_changed ? " (changed)" : "");
    } else {
      spdlog::error("reload of {} ({}) refused, running config kept: {}", path, why, s.message());
    }
  }

  // Graceful shutdown: stop accepting, close idle client connections, let requests in flight
  // finish (their replies say Connection: close), then stop; at most limits.drain_timeout_s.
  // A second call stops at once. Called on worker 0.
  void Drain() {
    if (draining_.exchange(true)) {
      Stop();
      return;
    }
    // Each worker holds the drain open until it has looked at its connections: DrainWait, on
    // worker 0, could otherwise see no request in flight before another worker counted the
    // ones part-way in, and stop.
    active_requests_ += static_cast<int>(workers_.size());
    for (auto& w : workers_) {
      net::post(w->io, [self = this, wk = w.get()] {
        boost::system::error_code ec;
        wk->acceptor.close(ec);
        wk->admin_acceptor.close(ec);
        // A request part-way in counts as in flight until its read ends (Session).
        self->active_requests_ += wk->deadlines.SpareOrCancelClientReads() - 1;
      });
    }
    net::co_spawn(worker(0).io, DrainWait(), net::detached);
  }

 private:
  Status Listen(tcp::acceptor& a, const Listener& l, bool reuse_port, uint16_t* port) {
    boost::system::error_code ec;
    const auto addr = net::ip::make_address(l.host, ec);
    if (ec) return InvalidArgument("listen.host: not an IP address: " + l.host);
    const tcp::endpoint ep(addr, l.port);
    a.open(ep.protocol(), ec);
    if (!ec) a.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec && reuse_port) {
      a.set_option(net::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true), ec);
    }
    if (!ec) a.bind(ep, ec);
    if (!ec) a.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status(StatusCode::kUnavailable, "cannot listen on " + l.host + ":" +
                                                  std::to_string(l.port) + ": " + ec.message());
    }
    *port = a.local_endpoint().port();
    return Status::Ok();
  }

  net::awaitable<void> AcceptLoop(Worker& wk, tcp::acceptor& a, bool admin) {
    for (;;) {
      auto [ec, socket] = co_await a.async_accept(kTuple);
      if (ec) {
        if (!a.is_open()) co_return;
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      socket.non_blocking(true, ec);  // for TrySendAll
      EnableInqHint(socket);          // for ReadMessage's DrainingBuffer reads
      net::co_spawn(wk.io, Session(wk, std::move(socket), admin), net::detached);
    }
  }

  // Runs on worker 0, which alone changes the backend lists (Reload): it reads them without
  // the lock.
  net::awaitable<void> ScrapeLoop(Worker& wk) {
    auto busy = std::make_shared<std::vector<std::vector<bool>>>(state_->pool_count());
    net::steady_timer t(wk.io);
    const auto interval = SecondsToSteady(config_.backend_metrics.interval_s);
    const auto limit = std::min(interval, SteadyDuration(std::chrono::seconds(2)));
    while (!draining_) {
      for (int p = 0; p < state_->pool_count(); ++p) {
        const PoolState& ps = state_->pool(p);
        std::vector<bool>& pool_busy = (*busy)[static_cast<size_t>(p)];
        pool_busy.resize(std::max(pool_busy.size(), ps.backends.size()), false);
        for (size_t b = 0; b < ps.backends.size(); ++b) {
          if (pool_busy[b] || ps.backends[b].retired) continue;
          pool_busy[b] = true;
          net::co_spawn(wk.io, ScrapeOne(wk, p, static_cast<int>(b), limit, busy), net::detached);
        }
      }
      t.expires_after(interval);
      auto [ec] = co_await t.async_wait(kTuple);
      if (ec) co_return;
    }
  }

  net::awaitable<void> ScrapeOne(Worker& wk, int pool, int backend, SteadyDuration limit,
                                 std::shared_ptr<std::vector<std::vector<bool>>> busy) {
    const Backend& slot = state_->pool(pool).backends[static_cast<size_t>(backend)];
    const BackendUrl url = slot.url;
    const uint64_t generation = slot.generation;
    beast::tcp_stream s(wk.io);
    s.expires_after(limit);
    boost::system::error_code ec;
    const net::ip::address addr = net::ip::make_address(url.host, ec);
    if (!ec) {
      auto [cec] = co_await s.async_connect(tcp::endpoint(addr, url.port), kTuple);
      ec = cec;
    } else {
      tcp::resolver resolver(wk.io);
      auto [rec, results] =
          co_await resolver.async_resolve(url.host, std::to_string(url.port), kTuple);
      ec = rec;
      if (!ec) {
        auto [cec, ep] = co_await s.async_connect(results, kTuple);
        ec = cec;
      }
    }
    BackendLoad load;
    if (!ec) {
      http::request<http::empty_body> req{http::verb::get, "/metrics", 11};
      req.set(http::field::host, url.authority);
      req.keep_alive(false);
      auto [wec, wn] = co_await http::async_write(s, req, kTuple);
      ec = wec;
    }
    if (!ec) {
      beast::flat_buffer buf;
      http::response_parser<http::string_body> parser;
      parser.body_limit(8 << 20);
      auto [rec, rn] = co_await http::async_read(s, buf, parser, kTuple);
      ec = rec;
      if (!ec && parser.get().result_int() == 200) load = ParseVllmMetrics(parser.get().body());
    }
    {
      const Locked lock(*this);
      // A backend that answers but exports none of vLLM's gauges is healthy, with unknown load.
      const bool ok = !ec;
      // Not when a reload has retired the slot or given it another URL meanwhile.
      if (state_->pool(pool).backends[static_cast<size_t>(backend)].generation == generation) {
        state_->RecordBackendMetrics(pool, backend, ok ? &load : nullptr, clock_.Now());
        KickLocked(pool);  // the pool's capacity may have grown back
      }
    }
    (*busy)[static_cast<size_t>(pool)][static_cast<size_t>(backend)] = false;
    boost::system::error_code ignored;
    s.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  // Holds an admitted request's reservation and its place on a backend. Whatever way the
  // request ends (settled, failed, client gone, coroutine destroyed), the destructor releases
  // what is still held exactly once and lets queued requests in. Constructed and moved with
  // mu_ held by the caller; the destructor takes mu_ itself.
  struct Held {
    Held(Server* s, int pool_index, int backend_index, Reservation r, int64_t estimate)
        : server(s),
          pool(pool_index),
          backend(backend_index),
          reservation(std::move(r)),
          tokens(estimate) {
      const PoolState& ps = server->state_->pool(pool);
      instances = static_cast<int>(ps.backends.size());
      Take();
    }
    // The request goes to another instance of the pool instead (mu_ held).
    void MoveTo(int backend_index) {
      server->state_->pool(pool).Leave(static_cast<size_t>(backend), tokens);
      backend = backend_index;
      Take();
    }
    // Ends the hold once: releases what is still reserved (nothing once settled), takes the
    // request off its instance and dispatches the queue. Called before the last bytes go to the
    // client, so that a client that has seen the end also sees the capacity back; else by the
    // destructor, however the request ends. DoneLocked requires mu_.
    void Done() {
      // Read without the lock: only the request's own coroutine touches its hold. A settled
      // request's hold ends in SettleWith's section, so its destructor takes no lock.
      if (done) return;
      const Locked lock(*server);
      DoneLocked();
    }
    void DoneLocked() {
      if (done) return;
      done = true;
      reservation.Release();  // no-op once settled
      server->state_->pool(pool).Leave(static_cast<size_t>(backend), tokens);
      if (!server->stopping_) server->KickLocked(pool);
    }
    ~Held() { Done(); }
    Held(const Held&) = delete;
    Held& operator=(const Held&) = delete;
    Server* server;
    int pool;
    int backend;
    Reservation reservation;
    int64_t tokens;
    // The instance's URL and slot generation, read under mu_ when it was picked: the URL stays
    // where it is and unchanged while the request is in flight on it (Backend::retired), so the
    // request path reads it without the lock.
    const BackendUrl* url = nullptr;
    uint64_t generation = 0;
    int instances = 0;  // slots of the pool when admitted: bounds the connect attempts
    bool done = false;

   private:
    void Take() {
      PoolState& ps = server->state_->pool(pool);
      ps.Enter(static_cast<size_t>(backend), tokens);
      const Backend& b = ps.backends[static_cast<size_t>(backend)];
      url = &b.url;
      generation = b.generation;
    }
  };

  // Dispatches a pool's queue and hands each admitted or expired request to its waiter, waking
  // it on its own worker. A reservation nobody waits for any more is released at once, which
  // may admit more. Requires mu_.
  void KickLocked(int pool) {
    TokenPool& tp = *state_->pool(pool).pool;
    // Most kicks (every request's end) find nothing queued: no Dispatch then.
    while (tp.HasQueueWork()) {
      std::vector<QueueEvent> events;
      tp.Dispatch(&events);
      bool freed = false;
      for (QueueEvent& ev : events) {
        auto it = waiters_.find(ev.cookie);
        if (it == waiters_.end()) {
          freed |= ev.reservation.active();
          ev.reservation.Release();
          continue;
        }
        std::shared_ptr<Waiter> w = std::move(it->second);
        waiters_.erase(it);
        w->event = std::move(ev);
        w->done = true;
        net::post(w->timer.get_executor(), [w] { w->timer.cancel(); });
      }
      if (!freed) return;
    }
  }

  // --- client side --------------------------------------------------------------------------
  template <typename Body>
  void Common(http::response<Body>& res, const ClientRequest& req) {
    res.version(req.version);
    res.keep_alive(req.keep_alive && !draining_);
  }

  // Waits for the requests in flight, at most limits.drain_timeout_s. Those still there then
  // are ended rather than dropped with the io_contexts: each queued one gets a 503
  // `shutting_down`, and each wait on a socket with a limit (a backend's answer or its next
  // bytes, a connect, a write to a slow client) fails as its limit would, so that every
  // request answers (a 503, or a stream cut) and writes its log line; Stop() follows once they
  // have (at most kDrainGrace more).
  net::awaitable<void> DrainWait() {
    static constexpr auto kDrainGrace = std::chrono::seconds(1);
    const auto wait_until =
        [this](std::chrono::steady_clock::time_point deadline) -> net::awaitable<void> {
      net::steady_timer t(worker(0).io);
      // 20 ms: shutdown latency is not worth a notification path through every request.
      while (active_requests_ > 0 && std::chrono::steady_clock::now() < deadline) {
        t.expires_after(std::chrono::milliseconds(20));
        co_await t.async_wait(kTuple);
      }
    };
    co_await wait_until(std::chrono::steady_clock::now() +
                        SecondsToSteady(config_.limits.drain_timeout_s));
    if (active_requests_ > 0) {
      drain_expired_ = true;
      {
        const Locked lock(*this);
        for (const auto& [cookie, w] : waiters_) {
          net::post(w->timer.get_executor(), [w = w] { w->timer.cancel(); });
        }
      }
      for (auto& w : workers_) {
        net::post(w->io, [wk = w.get()] { wk->deadlines.ExpireAll(); });
      }
      co_await wait_until(std::chrono::steady_clock::now() + kDrainGrace);
    }
    Stop();
  }

  // The worker whose io_context runs `s` (the error and admin replies, which are not handed
  // one, need its Deadlines).
  Worker& WorkerOf(tcp::socket& s) {
    const net::execution_context* ctx = &net::query(s.get_executor(), net::execution::context);
    for (const auto& w : workers_) {
      if (&w->io == ctx) return *w;
    }
    return *workers_.front();  // not reached: every client socket is a worker's
  }

  // What TrySendAll left of `bufs`, written with at most limits.send_timeout_s between two
  // writes that the client takes (nginx's send_timeout: a slow reader that keeps reading is
  // served; one that stops is cut). `d`: a Deadline of the caller's, not armed.
  // beast::error::timeout when the client took nothing for that long.
  template <typename Buffers>
  net::awaitable<boost::system::error_code> WriteRestToClient(Worker& wk, Deadline& d,
                                                              tcp::socket& s, const Buffers& bufs,
                                                              size_t sent) {
    const SteadyDuration limit = SecondsToSteady(config_.limits.send_timeout_s);
    beast::buffers_suffix<Buffers> rest(bufs);
    rest.consume(sent);
    boost::system::error_code ec;
    while (beast::buffer_bytes(rest) > 0) {
      wk.deadlines.Set(&d, s, limit);
      auto [wec, n] = co_await s.async_write_some(rest, kTuple);
      rest.consume(n);
      if (wec) {
        ec = wec;
        break;
      }
    }
    wk.deadlines.Clear(&d);
    co_return d.Cause(ec);
  }

  // `head_only`: the answer to a HEAD request, its header alone (Content-Length as a GET's).
  // Written within limits.send_timeout_s, as every reply.
  net::awaitable<bool> Reply(tcp::socket& s, StringResponse& res, bool head_only = false) {
    res.prepare_payload();
    Worker& wk = WorkerOf(s);
    Deadline d;
    wk.deadlines.Set(&d, s, SecondsToSteady(config_.limits.send_timeout_s));
    boost::system::error_code ec;
    if (head_only) {
      http::response_serializer<http::string_body> sr{res};
      auto [hec, n] = co_await http::async_write_header(s, sr, kTuple);
      ec = hec;
    } else {
      auto [wec, n] = co_await http::async_write(s, res, kTuple);
      ec = wec;
    }
    wk.deadlines.Clear(&d);
    co_return !ec && res.keep_alive();
  }

  // `allow`: a 405's Allow header (RFC 9110 requires one).
  net::awaitable<bool> ReplyJson(tcp::socket& s, const ClientRequest& req, int status,
                                 std::string body, RequestRecord* rec = nullptr,
                                 std::string_view allow = {}) {
    StringResponse res{static_cast<http::status>(status), req.version};
    Common(res, req);
    res.set(http::field::content_type, "application/json");
    if (!allow.empty()) res.set(http::field::allow, allow);
    if (rec != nullptr) {
      res.set("x-request-id", rec->id);
      // Past the route, the pool (and, past the entitlement's lookup, the class), as on the
      // 429s and the answers that the backend gave.
      if (rec->pool.set()) res.set("x-tokenpool-pool", rec->pool.view());
      if (rec->cls != "-") res.set("x-tokenpool-class", rec->cls);
      rec->status = status;
    }
    res.body() = std::move(body);
    co_return co_await Reply(s, res, req.method == http::verb::head);
  }

  net::awaitable<bool> ReplyError(tcp::socket& s, const ClientRequest& req, int status,
                                  std::string_view message, std::string_view type,
                                  std::string_view code, RequestRecord* rec = nullptr) {
    co_return co_await ReplyJson(s, req, status, ErrorJson(message, type, code), rec);
  }

  // ReplyError for a request refused before reaching a backend, other than by admission:
  // counted in tokenpool_requests_rejected_total by its code.
  net::awaitable<bool> Reject(tcp::socket& s, const ClientRequest& req, int status,
                              std::string_view message, std::string_view type,
                              std::string_view code, RequestRecord* rec = nullptr) {
    metrics_.Rejected(code);
    co_return co_await ReplyError(s, req, status, message, type, code, rec);
  }

  net::awaitable<void> Session(Worker& wk, tcp::socket socket, bool admin) {
    const auto idle = SecondsToSteady(config_.limits.client_idle_timeout_s);
    beast::flat_buffer buffer;
    ConnectionState conn;
    ClientRequest& req = conn.req;
    // Beast's parser takes what the buffer holds, and a read takes at most what the buffer can
    // hold without growing; an empty flat_buffer starts at 512 bytes: a 4 KB request would take
    // 8 reads. 16 KiB, like nginx's client_body_buffer_size on 64-bit, reads a typical chat
    // body at once.
    buffer.reserve(kReadBufferBytes);
    bool linger = false;
    for (;;) {
      if (draining_) break;
      ClientRequestParser parser(&req, config_.limits.max_header_bytes,
                                 config_.limits.max_body_bytes);
      // The idle limit bounds only the wait for each request (and how slowly it comes);
      // replies are written without one.
      wk.deadlines.Set(&conn.deadline, socket, idle, &buffer);
      // To the head first (with whatever of the body came with it, mostly all of it): a client
      // that sent `Expect: 100-continue` waits for a 100 (Continue) before its body (curl, for
      // a body over 1 MiB: without the 100 it waits a second, other clients for ever).
      boost::system::error_code ec =
          co_await ReadMessage(socket, buffer, parser, ReadUntil::kHeader);
      bool refused = false;
      if (!ec && !parser.is_done()) {
        // A request begun: no longer idle for a drain (its limit set again, from now).
        wk.deadlines.Set(&conn.deadline, socket, idle, &buffer, true);
        if (req.expect_continue && req.version >= 11) {
          refused = co_await RefusedBeforeContinue(wk, socket, req, conn, admin);
          if (!refused) {
            static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
            auto [wec, n] = co_await net::async_write(
                socket, net::buffer(kContinue.data(), kContinue.size()), kTuple);
            ec = wec;
          }
        }
        if (!ec && !refused) ec = co_await ReadMessage(socket, buffer, parser, ReadUntil::kDone);
      }
      wk.deadlines.Clear(&conn.deadline);
      struct Active {  // counts requests in flight for the drain, however this frame ends
        Active(std::atomic<int>* n, bool counted) : count(n) {
          if (!counted) ++*count;
        }
        ~Active() { --*count; }
        Active(const Active&) = delete;
        Active& operator=(const Active&) = delete;
        std::atomic<int>* count;
      } active(&active_requests_, conn.deadline.TakeSpared());  // spared: a drain counted it
      if (refused) {  // answered before its body (RefusedBeforeContinue)
        linger = true;
        break;
      }
      // The three answers below go before the request was read through: the client may still
      // be sending, and the close lingers.
      if (ec == http::error::body_limit) {
        linger = true;
        req.keep_alive = false;
        co_await Reject(
            socket, req, 413,
            "Request body exceeds " + std::to_string(config_.limits.max_body_bytes) + " bytes",
            "invalid_request_error", "request_too_large");
        break;
      }
      if (ec == http::error::header_limit) {
        linger = true;
        req.keep_alive = false;
        co_await Reject(socket, req, 431, "Request headers too large", "invalid_request_error",
                        "headers_too_large");
        break;
      }
      if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
          ec != http::error::end_of_stream && ec != http::error::partial_message) {
        // Not HTTP/1.1 (a bad request line, field, length or chunk): a 400 before the close,
        // as nginx answers, rather than a close the client cannot tell from a crash.
        linger = true;
        req.keep_alive = false;
        co_await Reject(socket, req, 400, std::string("Malformed HTTP request: ") + ec.message(),
                        "invalid_request_error", "bad_http_request");
        break;
      }
      if (ec) break;  // the client closed, was idle too long, or a drain
      if (!req.has_host && req.version >= 11) {  // RFC 9112 section 3.2: a 400, as nginx's
        req.keep_alive = false;
        co_await Reject(socket, req, 400, "Host: required in an HTTP/1.1 request",
                        "invalid_request_error", "bad_http_request");
        break;
      }
      req.keep_alive = parser.keep_alive();
      const bool keep =
          admin ? co_await HandleAdmin(socket, req) : co_await Handle(wk, socket, req, conn);
      if (!keep || draining_) break;
      conn.Trim();
    }
    if (linger) co_await LingeringClose(wk, socket, conn.deadline);
    boost::system::error_code ec;
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
  }

  // After an answer sent before its request was read through (413, 431, a malformed request):
  // the client may still be sending, and a close with unread bytes sends a reset, which can
  // reach the client before it reads the answer (Python's http.client, for one, sends the
  // whole body first, then reads: it saw a broken pipe, not the 413). So, as nginx's lingering
  // close: stop sending, then read and drop what comes until the client closes, 5 s pass
  // without a byte, or 30 s in all.
  net::awaitable<void> LingeringClose(Worker& wk, tcp::socket& socket, Deadline& deadline) {
    static constexpr auto kQuiet = std::chrono::seconds(5);
    static constexpr auto kTotal = std::chrono::seconds(30);
    boost::system::error_code ec;
    socket.shutdown(tcp::socket::shutdown_send, ec);
    if (ec) co_return;
    const auto scratch = std::make_unique<char[]>(kReadBufferBytes);
    const auto end = std::chrono::steady_clock::now() + kTotal;
    for (;;) {
      const auto left = end - std::chrono::steady_clock::now();
      if (left <= SteadyDuration::zero()) break;
      wk.deadlines.Set(&deadline, socket, std::min<SteadyDuration>(kQuiet, left));
      auto [rec, n] =
          co_await socket.async_read_some(net::buffer(scratch.get(), kReadBufferBytes), kTuple);
      if (rec) break;
    }
    wk.deadlines.Clear(&deadline);
  }

  // The admin state file is written and synced on saver_, one thread, so that neither the
  // workers nor their requests wait on the disk, in the order the states were taken: they are
  // all taken on worker 0 (admin requests and reloads run there), each queued before worker 0
  // runs anything else, and a one-thread pool runs its queue in order. `done` runs on the saver
  // thread.
  template <typename Done>
  void SaveAdminStateLater(std::string json, Done done) {
    net::post(*saver_, [json = std::move(json), path = config_.admin_state_file,
                        done = std::move(done)]() mutable { done(WriteAdminState(json, path)); });
  }
  // The same, for a caller on worker 0 that waits for the outcome (its admin reply says it):
  // the write on the saver, the outcome back on the caller's executor, which a work guard keeps
  // running meanwhile. (Not a co_spawn of a coroutine lambda on the saver: GCC 12 relocated
  // that lambda's captured strings inside the coroutine frame, and freed an inner pointer.)
  net::awaitable<Status> SaveAdminStateAsync(std::string json) {
    return net::async_initiate<const net::use_awaitable_t<>, void(Status)>(
        [this](auto handler, std::string text) {
          auto guard = net::make_work_guard(net::get_associated_executor(handler));
          auto back = [handler = std::move(handler),
                       guard = std::move(guard)](const Status& saved) mutable {
            const auto ex = guard.get_executor();
            net::post(ex, [h = std::move(handler), saved, g = std::move(guard)]() mutable {
              std::move(h)(saved);
            });
          };
          SaveAdminStateLater(std::move(text), std::move(back));
        },
        net::use_awaitable, std::move(json));
  }

  net::awaitable<bool> HandleAdmin(tcp::socket& s, ClientRequest& req) {
    if (!AdminAuthorized(req)) {
      co_return co_await ReplyError(s, req, 401, kAdminUnauthorized, "invalid_request_error",
                                    "invalid_api_key");
    }
    std::string_view target = req.target;
    if (std::string_view path = target.substr(0, target.find('?')); path == "/metrics") {
      if (req.method == http::verb::get || req.method == http::verb::head) {
        co_return co_await Metrics(s, req);
      }
      co_return co_await ReplyJson(
          s, req, 405, ErrorJson("use GET, HEAD", "invalid_request_error", "method_not_allowed"),
          nullptr, "GET, HEAD");
    }
    AdminReply r;
    std::optional<std::string> to_save;
    {
      const Locked lock(*this);
      r = HandleAdminRequest(*state_, req.method_string, target, req.body);
      if (r.reloaded) {
        for (int p = 0; p < state_->pool_count(); ++p) KickLocked(p);
        if (!config_.admin_state_file.empty()) to_save = AdminOverridesJson(*state_);
      }
    }
    // Written and synced on the saver thread: no worker waits on the disk, only this reply.
    Status saved;
    if (to_save) saved = co_await SaveAdminStateAsync(std::move(*to_save));
    if (!saved.ok()) {
      spdlog::error("admin: {}", saved.message());
      co_return co_await ReplyError(s, req, 500,
                                    "the change is in force but was not saved: " + saved.message(),
                                    "server_error", "state_not_saved");
    }
    co_return co_await ReplyJson(s, req, r.status, std::move(r.body), nullptr, r.allow);
  }

  net::awaitable<bool> Handle(Worker& wk, tcp::socket& s, ClientRequest& req,
                              ConnectionState& conn) {
    const std::string_view target = PathOf(req);
    // (The request path's coroutine frames stay under 1 KiB where they can: Asio recycles none
    // larger, and each costs a malloc and a free per request then.)
    if (IsCompletion(req, target)) {
      RequestRecord& rec = conn.rec;  // on the connection, not in the frame
      StartRecord(req, rec);
      const bool keep = co_await Completion(wk, s, req, rec, conn);
      Finish(wk, rec);
      co_return keep;
    }
    co_return co_await HandleOther(s, req, target);
  }

  // The other endpoints: apart, so that Handle's coroutine frame stays small (see above).
  net::awaitable<bool> HandleOther(tcp::socket& s, ClientRequest& req, std::string_view target) {
    // HEAD: as GET, without the body (and every answer to a HEAD, errors included, has none:
    // a body there would be read as the start of the next answer on a keep-alive connection).
    const bool head = req.method == http::verb::head;
    const bool get = req.method == http::verb::get || head;
    if (get && target == "/health") {
      StringResponse res{http::status::ok, req.version};
      Common(res, req);
      co_return co_await Reply(s, res, head);
    }
    if (get && target == "/metrics" && config_.listen.metrics) co_return co_await Metrics(s, req);
    if (get && target == "/v1/models") {
      std::string body;
      {
        const Locked lock(*this);
        body = state_->ModelsJson(UnixNow());
      }
      co_return co_await ReplyJson(s, req, 200, std::move(body));
    }
    co_return co_await Reject(
        s, req, 404, "Unknown request URL: " + req.method_string + " " + std::string(target),
        "invalid_request_error", "unknown_url");
  }

  // A completion request's record, reset, with its id: the client's x-request-id when usable,
  // else one of the gateway's.
  void StartRecord(const ClientRequest& req, RequestRecord& rec) {
    rec.Reset();
    std::string_view client_id = req.request_id;
    if (UsableRequestId(client_id)) {
      std::copy(client_id.begin(), client_id.end(), rec.id_buf.begin());
      rec.id = std::string_view(rec.id_buf.data(), client_id.size());
    } else {
      // "{:08x}{:08x}" of the prefix and the count.
      LineWriter w(rec.id_buf.data());  // 8 + at most 16 characters
      w.Padded(id_prefix_, 8, 16);
      w.Padded(next_request_id_.fetch_add(1), 8, 16);
      rec.id =
          std::string_view(rec.id_buf.data(), static_cast<size_t>(w.end() - rec.id_buf.data()));
    }
  }

  // Whether the request carries the admin API's bearer token.
  bool AdminAuthorized(const ClientRequest& req) const {
    const std::string_view token = BearerToken(req.authorization);
    return !token.empty() && Sha256Hex(token) == config_.admin_token_sha256;
  }

  // A request refused whatever its body says is answered before the client is asked for the
  // body (`Expect: 100-continue`; curl sends it for bodies over 1 MiB): a wrong key costs no
  // upload. Before, the 100 went first and the 401 came after the whole body. true: answered;
  // the caller closes the connection, lingering (RFC 9110 section 10.1.1: the client may send
  // the body anyway).
  net::awaitable<bool> RefusedBeforeContinue(Worker& wk, tcp::socket& s, ClientRequest& req,
                                             ConnectionState& conn, bool admin) {
    if (admin) {
      if (AdminAuthorized(req)) co_return false;
      req.keep_alive = false;
      co_await ReplyError(s, req, 401, kAdminUnauthorized, "invalid_request_error",
                          "invalid_api_key");
      co_return true;
    }
    if (!IsCompletion(req, PathOf(req))) co_return false;
    RequestRecord& rec = conn.rec;
    StartRecord(req, rec);
    int tenant = -1;
    {
      const Locked lock(*this);
      tenant = TenantLocked(conn.auth, req.authorization, rec);  // kept for the request's path
    }
    if (tenant >= 0) co_return false;
    req.keep_alive = false;
    co_await Reject(s, req, 401, kBadApiKey, "invalid_request_error", "invalid_api_key", &rec);
    Finish(wk, rec);
    co_return true;
  }

  // The request's log line (into the worker's LogBatch) and histograms.
  void Finish(Worker& wk, const RequestRecord& r) {
    const double e2e_ms = MsSince(r.start);
    if (r.metrics != nullptr && r.status == 200) {
      r.metrics->e2e->Observe(e2e_ms / 1000);
      if (r.ttft_ms >= 0) r.metrics->ttft->Observe(r.ttft_ms / 1000);
    }
    if (!config_.log_requests) return;
    // Written piece by piece (numbers by std::to_chars, the times as fixed-point integers)
    // straight into the batch, which goes to standard error, where the gateway's spdlog sink
    // writes its own lines, one write each (stderr is unbuffered). Handing the finished line to
    // a spdlog logger cost 1.07 K instructions a request (spdlog::logger::log_it_, inclusive:
    // its mutex, a formatter pass, fwrite and fflush); fmt's runtime format took ~9 K
    // (callgrind_annotate --inclusive=yes on PROFILE_KEEP of
    // bench/gateway/run_gateway_profile.sh; docs/benchmarks.md).
    using namespace std::string_view_literals;
    // The client's model (and the tenant's name, the config's) as LineWriter::Value: quoted
    // and escaped where it would add a field or a line, the model cut at kLogModelBytes.
    const size_t bound = 512 + r.id.size() + LineWriter::ValueBound(r.tenant.view(), SIZE_MAX) +
                         LineWriter::ValueBound(r.model, kLogModelBytes) + r.pool.view().size() +
                         r.cls.size() + r.outcome.size() + r.end.size();
    LineWriter w(wk.log.Reserve(bound));
    PutLogPrefix(&w);
    w.Field("request id="sv, r.id);
    w.Put(" tenant="sv);
    w.Value(r.tenant.view(), SIZE_MAX);
    w.Put(" model="sv);
    w.Value(r.model, kLogModelBytes);
    w.Field(" pool="sv, r.pool.view());
    w.Field(" class="sv, r.cls);
    w.Field(" status="sv, r.status);
    w.Field(" outcome="sv, r.outcome);
    w.Field(" end="sv, r.end);
    w.Put(r.stream ? " stream=true"sv : " stream=false"sv);
    w.Field(" est_prompt="sv, r.estimated_prompt);
    w.Field(" prompt="sv, r.prompt);
    w.Field(" completion="sv, r.completion);
    w.FixedField(" queue_ms="sv, r.queue_ms, 2);
    w.FixedField(" ttft_ms="sv, r.ttft_ms, 2);
    w.FixedField(" e2e_ms="sv, e2e_ms, 2);
    w.Put('\n');
    if (wk.log.Commit(w.end())) net::post(wk.io, [&wk] { wk.log.Flush(); });
  }

  net::awaitable<bool> Metrics(tcp::socket& s, const ClientRequest& req) {
    StringResponse res{http::status::ok, req.version};
    Common(res, req);
    res.set(http::field::content_type, "text/plain; version=0.0.4");
    {
      const Locked lock(*this);
      metrics_.Collect(*state_);
    }
    res.body() = metrics_.Serialize();
    co_return co_await Reply(s, res, req.method == http::verb::head);
  }

  // 429 with OpenAI's rate-limit headers, computed from the entitlement: tokens per minute at
  // its dynamic burst ceiling, requests as concurrent sequences.
  // (The error is worked out here, not by the caller: a temporary argument would sit in the
  // caller's frame.)
  net::awaitable<bool> Refuse(tcp::socket& s, const ClientRequest& req, AdmissionOutcome o,
                              Duration retry, int pool, EntitlementRef ref, EntitlementClass cls,
                              RequestRecord& rec) {
    const HttpError e = OutcomeError(o);
    StringResponse res{static_cast<http::status>(e.status), req.version};
    Common(res, req);
    rec.status = e.status;
    res.set(http::field::content_type, "application/json");
    res.set("x-request-id", rec.id);
    res.set("x-tokenpool-pool", state_->pool(pool).spec.name);
    res.set("x-tokenpool-class", EntitlementClassName(cls));
    res.set("x-tokenpool-outcome", AdmissionOutcomeName(o));
    res.set("x-tokenpool-queue-ms", fmt::format("{:.3f}", rec.queue_ms));
    if (e.status == 429) {
      // The pool's times and rates are model time (time_scale); the client's are wall time.
      const double retry_s = std::max(1.0, std::ceil(ToSeconds(clock_.ToWall(retry))));
      const double per_wall_min = 60 * clock_.scale();
      res.set(http::field::retry_after, std::to_string(static_cast<int64_t>(retry_s)));
      Result<EntitlementSnapshot> snap = [&] {
        const Locked lock(*this);
        return state_->pool(pool).pool->SnapshotEntitlement(ref);
      }();
      if (snap.ok()) {
        // Saturating: an entitlement's burst may be any finite number (1e308 is accepted), and
        // a double past int64's range cast to it is undefined (it printed INT64_MIN).
        const auto per_min = [per_wall_min](double tokens_per_s) {
          return std::to_string(SaturatingInt64(std::max(0.0, tokens_per_s) * per_wall_min));
        };
        const auto count = [](double v) { return std::to_string(SaturatingInt64(std::max(0.0, v))); };
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
    std::string message = o == AdmissionOutcome::kCancelled
                              ? "Request refused: its entitlement on pool " +
                                    state_->pool(pool).spec.name +
                                    " was removed while it waited in the queue."
                              : "Request refused: " + std::string(AdmissionOutcomeName(o)) +
                                    " on pool " + state_->pool(pool).spec.name + ".";
    if (e.status == 429) message += " Retry after the time in the retry-after header.";
    res.body() = ErrorJson(message, e.type, e.code);
    co_return co_await Reply(s, res);
  }

  // Waits for a queued request. Returns the QueueEvent when it left the queue, or nullopt when
  // the client went away (the request is then cancelled in the pool, or, if a Dispatch admitted
  // it meanwhile, its reservation released).
  // `w` was registered in waiters_ under the same lock as the Admit that queued the request, so
  // no Dispatch on another worker can miss it.
  // Nullopt too when the drain's time ran out (drain_expired_) and the client is still there.
  net::awaitable<std::optional<QueueEvent>> WaitQueued(tcp::socket& client, LateWatches& late,
                                                       int pool, const Decision& d, uint64_t cookie,
                                                       std::shared_ptr<Waiter> w) {
    // However this frame ends (returned, client gone, destroyed at shutdown), the pool forgets
    // the request or gets its reservation back, under the lock.
    struct Leave {
      Server* server;
      int pool;
      uint64_t cookie;
      QueueTicket ticket;
      std::shared_ptr<Waiter> w;
      std::optional<QueueEvent>* out = nullptr;  // set: hand the event over instead
      ~Leave() {
        const Locked lock(*server);
        if (w->done) {
          if (out != nullptr) {
            *out = std::move(w->event);
          } else if (w->event.reservation.active()) {
            w->event.reservation.Release();
            if (!server->stopping_) server->KickLocked(pool);
          }
          return;
        }
        server->waiters_.erase(cookie);
        server->state_->pool(pool).pool->Cancel(ticket);
        if (!server->stopping_) server->KickLocked(pool);
      }
    };
    std::optional<QueueEvent> result;
    {
      Leave leave{this, pool, cookie, d.ticket, w};
      ClientWatch watch(client, late, [w] { w->timer.cancel(); });
      watch.Start();
      for (;;) {
        {
          const Locked lock(*this);
          if (w->done) break;
        }
        if (watch.gone() || drain_expired_) break;
        // The deadline is the pool's (model) time; the timer waits wall time.
        const Duration left = d.deadline == Time::Max()
                                  ? std::chrono::hours(1)
                                  : clock_.ToWall(std::max(Duration(0), d.deadline - clock_.Now()));
        w->timer.expires_after(left + std::chrono::milliseconds(1));
        auto [ec] = co_await w->timer.async_wait(kTuple);
        if (!ec) {  // its deadline: Dispatch expires it
          const Locked lock(*this);
          if (!w->done) KickLocked(pool);
        }
      }
      watch.Stop();
      if (!watch.gone()) leave.out = &result;
    }
    co_return result;
  }

  // The tenant of the key in `header` (-1: none), its name into rec.tenant. The connection
  // keeps the last lookup while the keys' generation and the header stay the same. Requires mu_.
  int TenantLocked(ConnectionAuth& auth, std::string_view header, RequestRecord& rec) {
    if (auth.tenant < 0 || auth.generation != state_->keys_generation() || header != auth.header) {
      auth.tenant = state_->FindTenant(header);
      auth.generation = state_->keys_generation();
      auth.metrics = nullptr;  // another key, maybe another tenant
      if (auth.tenant >= 0) auth.header.assign(header);
    }
    if (auth.tenant >= 0) rec.tenant.Set(state_->tenant(auth.tenant).name);
    return auth.tenant;
  }

  net::awaitable<bool> Completion(Worker& wk, tcp::socket& s, ClientRequest& req,
                                  RequestRecord& rec, ConnectionState& conn) {
    ConnectionAuth& auth = conn.auth;
    int tenant = -1;
    {
      const Locked lock(*this);
      tenant = TenantLocked(auth, req.authorization, rec);
    }
    if (tenant < 0) {
      co_return co_await Reject(s, req, 401, kBadApiKey, "invalid_request_error", "invalid_api_key",
                                &rec);
    }
    RequestFeatures* const features = &conn.features;  // Parse clears it
    // (One co_await for both refusals: each co_await site takes room in this frame, which
    // must stay under Asio's 1,020-byte recycling limit: bench/gateway/frame_sizes.sh.)
    if (Status st = ParseForPath(wk.parser, req, features); !st.ok()) {
      co_return co_await Reject(s, req, 400, st.message(), "invalid_request_error",
                                "invalid_request", &rec);
    }
    rec.model = features->model;
    rec.stream = features->stream;
    const std::string_view category = req.category;
    RoutePlan& plan = conn.plan;  // on the connection: ~200 bytes out of this frame
    EntitlementRef ref;
    EntitlementClass cls = EntitlementClass::kElastic;
    Decision d;
    uint64_t cookie = 0;
    std::optional<Held> held;
    std::shared_ptr<Waiter> waiter;
    bool no_healthy = false;  // every instance of the pool is down: 503 without admission
    bool key_gone = false;    // a reload during the parse took the key away: 401
    {
      const Locked lock(*this);
      // A reload between the key's lookup and this section (the body was parsed meanwhile,
      // without the lock) renumbers the tenants: look the key up again, or `tenant` could name
      // another tenant, or none.
      if (auth.generation != state_->keys_generation()) {
        tenant = TenantLocked(auth, req.authorization, rec);
        key_gone = tenant < 0;
      }
      if (!key_gone) plan = state_->Plan(*features, tenant, category);
      if (!key_gone && plan.ok()) {
        const Time now = clock_.Now();
        if (state_->UpdateServingCapacity(plan.pool, now)) KickLocked(plan.pool);
        no_healthy = state_->pool(plan.pool).serving == 0;  // as just updated
        ref = plan.ref;
        if (ref.valid() && !no_healthy) {
          cls = plan.cls;
          cookie = ++next_cookie_;
          d = state_->pool(plan.pool).pool->Admit(ref, plan.cost, cookie);
          if (d.outcome == AdmissionOutcome::kQueued) {
            waiter = std::make_shared<Waiter>(wk.io.get_executor());
            waiters_[cookie] = waiter;
            // A request queued behind work that the pool's last dispatch found blocked: a
            // dispatch now, as the simulator does, in case that block has passed without a
            // release since (the queue's last blocked request left it).
            KickLocked(plan.pool);
          } else if (IsAdmitted(d.outcome)) {
            const int backend = state_->PickBackend(plan.pool, clock_.Now());
            if (backend >= 0) {
              held.emplace(this, plan.pool, backend, std::move(d.reservation), plan.cost.Total().v);
            } else {
              d.reservation.Release();
              KickLocked(plan.pool);
            }
          }
        }
      }
    }
    if (key_gone) {
      co_return co_await Reject(s, req, 401, kBadApiKey, "invalid_request_error", "invalid_api_key",
                                &rec);
    }
    if (!plan.ok()) {
      co_return co_await Reject(s, req, plan.status, plan.message, plan.error_type, plan.error_code,
                                &rec);
    }
    const int pool = plan.pool;
    rec.pool.Set(state_->pool(pool).spec.name);
    rec.estimated_prompt = plan.estimate.prompt_tokens;
    if (!ref.valid()) {
      co_return co_await NoEntitlement(s, req, rec);
    }
    rec.cls = EntitlementClassName(cls);
    if (auth.metrics == nullptr || auth.metrics_pool != pool ||
        auth.metrics_generation != auth.generation) {
      auth.metrics = metrics_.ForRequest(pool, rec.pool.str(), rec.tenant.str());
      auth.metrics_pool = pool;
      auth.metrics_generation = auth.generation;
    }
    rec.metrics = auth.metrics;
    AdmissionOutcome outcome = d.outcome;
    Duration retry = d.retry_after;
    bool no_backend = no_healthy || (IsAdmitted(outcome) && !held);
    if (outcome == AdmissionOutcome::kQueued) {
      const auto queued_at = std::chrono::steady_clock::now();
      std::optional<QueueEvent> ev =
          co_await WaitQueued(s, wk.late_watches, pool, d, cookie, std::move(waiter));
      rec.queue_ms = MsSince(queued_at);
      rec.metrics->queue_wait->Observe(rec.queue_ms / 1000);
      // Its log line says where it was when it left (before: outcome=-).
      if (!ev) rec.outcome = AdmissionOutcomeName(AdmissionOutcome::kQueued);
      // Nothing held; it left the queue at the drain's end (a client that left is a 499).
      if (!ev && drain_expired_ && ProbeClient(s.native_handle()) != ClientProbe::kGone) {
        co_return co_await ShuttingDown(s, req, rec);
      }
      if (!ev) {  // client gone; nothing held
        rec.end = "client_gone";
        rec.status = 499;
        co_return false;
      }
      outcome = ev->outcome;
      retry = ev->retry_after;
      if (IsAdmitted(outcome)) {
        const Locked lock(*this);
        // Admitted by a release the drain's end caused (its waiter was woken to leave): no
        // new backend work once Stop is near; the reservation goes back, the client a 503.
        const int backend = drain_expired_ ? -1 : state_->PickBackend(pool, clock_.Now());
        if (backend >= 0) {
          held.emplace(this, pool, backend, std::move(ev->reservation), plan.cost.Total().v);
        } else {
          ev->reservation.Release();
          KickLocked(pool);
          no_backend = true;
        }
      }
    }
    if (!no_healthy) rec.outcome = AdmissionOutcomeName(outcome);
    if (!no_healthy && !IsAdmitted(outcome)) {
      co_return co_await Refuse(s, req, outcome, retry, pool, ref, cls, rec);
    }
    if (no_backend) {
      co_return co_await NoHealthyBackend(s, req, rec);
    }
    co_return co_await Proxy(wk, s, req, *features, plan, *held, rec, conn);
  }

  // The 403 for a tenant without an entitlement on the pool its request was routed to.
  net::awaitable<bool> NoEntitlement(tcp::socket& s, const ClientRequest& req, RequestRecord& rec) {
    co_return co_await Reject(s, req, 403,
                              "Tenant has no entitlement on pool " + rec.pool.str() + ".",
                              "permission_error", "no_entitlement", &rec);
  }

  // The 503 when no instance of the pool is healthy. (The error replies of the request path
  // are coroutines of their own: their temporaries would otherwise enlarge the path's frames,
  // which Asio then no longer recycles.)
  // (At the drain's end, where a queued request was admitted by a release the end caused and
  // given no backend: the shutdown's 503.)
  net::awaitable<bool> NoHealthyBackend(tcp::socket& s, const ClientRequest& req,
                                        RequestRecord& rec) {
    if (drain_expired_) co_return co_await ShuttingDown(s, req, rec);
    metrics_.Rejected("no_healthy_backend");
    StringResponse res{http::status::service_unavailable, req.version};
    Common(res, req);
    rec.status = 503;
    res.set(http::field::content_type, "application/json");
    res.set("x-request-id", rec.id);
    // The back-off is wall time at any time_scale.
    res.set(http::field::retry_after,
            std::to_string(static_cast<int64_t>(ToSeconds(GatewayState::kUnhealthyFor))));
    res.body() = ErrorJson("No healthy backend instance in pool " + rec.pool.str() + ".",
                           "server_error", "no_healthy_backend");
    co_return co_await Reply(s, res);
  }

  // The 502 for a backend's 401/403 or 5xx answer.
  net::awaitable<bool> BackendRefused(tcp::socket& s, const ClientRequest& req, unsigned status,
                                      RequestRecord& rec) {
    if (status == 401 || status == 403) {
      // The backend refused the gateway's own credentials (pools[].api_key_env): the client's
      // key was fine, so not its 401.
      co_return co_await ReplyError(s, req, 502,
                                    "Backend of pool " + rec.pool.str() +
                                        " refused the gateway's credentials (HTTP " +
                                        std::to_string(status) + "); check the pool's api_key_env.",
                                    "server_error", "backend_auth_failed", &rec);
    }
    co_return co_await ReplyError(
        s, req, 502,
        "Backend of pool " + rec.pool.str() + " answered " + std::to_string(status) + ".",
        "server_error", "backend_error", &rec);
  }

  // --- upstream side ------------------------------------------------------------------------

  // The worker's idle connections to a backend slot, for a request that picked the slot at
  // `generation`; nullptr when the slot has moved on since (retired, or another URL by a
  // reload), so that none of them is reused for, or mixed with, another generation's.
  std::vector<Upstream>* IdleOf(Worker& wk, int pool, int backend, uint64_t generation) {
    if (backends_epoch_.load(std::memory_order_relaxed) != wk.backends_epoch) SyncIdle(wk);
    auto& slots = wk.idle[static_cast<size_t>(pool)];
    if (static_cast<size_t>(backend) >= slots.size())
      slots.resize(static_cast<size_t>(backend) + 1);
    Worker::IdleSlot& slot = slots[static_cast<size_t>(backend)];
    if (slot.generation != generation) {
      if (generation < slot.generation) return nullptr;
      slot.conns.clear();
      slot.generation = generation;
    }
    return &slot.conns;
  }

  // After a reload changed backends: closes the worker's idle connections whose slot has moved
  // on. Called on the worker's thread (IdleOf, and posted by Reload for idle workers).
  void SyncIdle(Worker& wk) {
    const Locked lock(*this);
    for (int p = 0; p < state_->pool_count(); ++p) {
      const PoolState& ps = state_->pool(p);
      auto& slots = wk.idle[static_cast<size_t>(p)];
      slots.resize(std::max(slots.size(), ps.backends.size()));
      for (size_t b = 0; b < ps.backends.size(); ++b) {
        if (slots[b].generation == ps.backends[b].generation) continue;
        slots[b].conns.clear();
        slots[b].generation = ps.backends[b].generation;
      }
    }
    wk.backends_epoch = backends_epoch_.load(std::memory_order_relaxed);
  }

  // An idle connection of this worker to the backend to reuse, or nullptr (then Connect).
  // One that has anything to read while idle is closed instead: the backend's close (its
  // keep-alive timeout, a restart), or bytes nobody asked for, which would be read as the next
  // request's answer (another tenant's, maybe). What the reactor knows answers without a
  // system call when epoll has reported nothing on it since its last answer was read to the
  // socket's end (MayHaveInput; nginx learns the same from its idle connections' epoll
  // events); otherwise one recv(MSG_PEEK) looks.
  Upstream TakeIdle(Worker& wk, int pool, int backend, uint64_t generation) {
    std::vector<Upstream>* idle = IdleOf(wk, pool, backend, generation);
    while (idle != nullptr && !idle->empty()) {
      Upstream u = std::move(idle->back());
      idle->pop_back();
      if (!MayHaveInput(u->socket)) return u;
      char c;
      const ssize_t n = ::recv(u->socket.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return u;
    }
    return nullptr;
  }

  // A new connection to the backend; nullptr and *ec when it fails.
  net::awaitable<Upstream> Connect(Worker& wk, const BackendUrl& url,
                                   boost::system::error_code* ec) {
    auto conn = std::make_unique<UpstreamConn>(wk.io);
    tcp::socket* u = &conn->socket;
    wk.deadlines.Set(&conn->deadline, *u, std::chrono::seconds(10));
    boost::system::error_code aec;
    const net::ip::address addr = net::ip::make_address(url.host, aec);
    if (!aec) {  // an IP literal: no resolver round trip
      auto [cec] = co_await u->async_connect(tcp::endpoint(addr, url.port), kTuple);
      aec = cec;
    } else {
      tcp::resolver resolver(wk.io);
      auto [rec, results] =
          co_await resolver.async_resolve(url.host, std::to_string(url.port), kTuple);
      aec = rec;
      // The limit cancels the socket's operations, not the resolver's: when it passed during
      // the lookup, the connect would start without one.
      if (!aec && conn->deadline.expired()) aec = net::error::operation_aborted;
      if (!aec) {
        auto [cec, ep] = co_await net::async_connect(*u, results, kTuple);
        aec = cec;
      }
    }
    wk.deadlines.Clear(&conn->deadline);
    if (aec) {
      *ec = conn->deadline.Cause(aec);
      co_return nullptr;
    }
    u->set_option(tcp::no_delay(true), aec);
    u->non_blocking(true, aec);  // for TrySendAll
    EnableInqHint(*u);           // for ReadMessage's DrainingBuffer reads
    co_return conn;
  }

  // Keeps the connection for the next request to the backend, or closes it (too many kept, or
  // the backend retired meanwhile).
  // Back to the idle pool, unless bytes past the answer came with it (then the connection is
  // out of step with its requests: closed).
  void ReleaseUpstream(Worker& wk, int pool, int backend, uint64_t generation, Upstream u) {
    if (u->buf.size() != 0) return;
    std::vector<Upstream>* idle = IdleOf(wk, pool, backend, generation);
    if (idle != nullptr && idle->size() < kMaxIdlePerBackend) {
      wk.deadlines.Clear(&u->deadline);
      idle->push_back(std::move(u));
    }
  }

  static void DebugHeaders(HeadWriter& h, const RequestRecord& rec) {
    h.Field("x-request-id", rec.id);
    h.Field("x-tokenpool-pool", rec.pool.view());
    h.Field("x-tokenpool-class", rec.cls);
    h.Put("x-tokenpool-queue-ms: ");
    h.Fixed(rec.queue_ms, 3);
    h.Put("\r\n");
  }

  // A request that the drain's end took from the queue or from its backend.
  net::awaitable<bool> ShuttingDown(tcp::socket& s, const ClientRequest& req, RequestRecord& rec) {
    rec.end = "shutdown";
    co_return co_await ReplyError(s, req, 503, "The gateway is shutting down; retry the request.",
                                  "server_error", "shutting_down", &rec);
  }

  net::awaitable<bool> BackendError(tcp::socket& s, const ClientRequest& req,
                                    const boost::system::error_code& ec, RequestRecord& rec) {
    if (ec == beast::error::timeout && drain_expired_) co_return co_await ShuttingDown(s, req, rec);
    if (ec == beast::error::timeout) {
      co_return co_await ReplyError(s, req, 504,
                                    "Backend of pool " + rec.pool.str() + " timed out.",
                                    "server_error", "backend_timeout", &rec);
    }
    co_return co_await ReplyError(s, req, 502,
                                  "Backend of pool " + rec.pool.str() + " failed: " + ec.message(),
                                  "server_error", "backend_error", &rec);
  }

  // Settles with the backend's usage, feeds the estimator (when `learn`) and ends the hold
  // (Held::Done); records what was used.
  void SettleWith(Held& held, const RequestFeatures& f, const RoutePlan& plan, const Usage& usage,
                  bool learn, RequestRecord& rec) {
    {
      const Locked lock(*this);
      held.reservation.Settle(usage);
      if (learn) state_->Observe(f, plan.category, usage.prompt.v);
      held.DoneLocked();
    }
    rec.prompt = usage.prompt.v;
    rec.completion = usage.completion.v;
    if (learn && usage.prompt.v > 0) {
      rec.metrics->estimate_error->Observe(
          static_cast<double>(plan.estimate.prompt_tokens - usage.prompt.v) /
          static_cast<double>(usage.prompt.v));
    }
  }

  // A backend's context-length 400 for a chat request or a single completions prompt (a
  // batch's count is one prompt's): its true prompt count teaches the estimator.
  void LearnFromContextError(const RequestFeatures& f, const RoutePlan& plan,
                             std::string_view body) {
    if (f.endpoint == Endpoint::kCompletions && f.messages > 1) return;
    const int64_t n = PromptTokensOfContextError(body);
    if (n <= 0) return;
    const Locked lock(*this);
    state_->Observe(f, plan.category, n);
  }

  // A stream's settlement: its usage chunk, else (partly served without a usage report) the
  // estimate's prompt and one token per event (a backend sends at least one token per chunk);
  // nothing served: released by the hold.
  void SettleStream(Held& held, const RequestFeatures& f, const RoutePlan& plan, bool have_usage,
                    const Usage& usage, int64_t content_events, RequestRecord& rec) {
    if (have_usage) {
      SettleWith(held, f, plan, usage, true, rec);
    } else if (content_events > 0) {
      SettleWith(
          held, f, plan,
          {.prompt = Tokens(plan.estimate.prompt_tokens), .completion = Tokens(content_events)},
          false, rec);
    }
  }

  net::awaitable<bool> Proxy(Worker& wk, tcp::socket& s, const ClientRequest& req,
                             const RequestFeatures& f, const RoutePlan& plan, Held& held,
                             RequestRecord& rec, ConnectionState& conn) {
    const int pool = held.pool;
    int backend = held.backend;
    const bool add_usage = f.stream && !f.include_usage;
    // The request upstream: the client's head less what ForwardsHeader drops, then Host, our
    // content type and request id, written by hand (http_head.h); the body is the client's own
    // bytes unless include_usage had to be added.
    std::string& up_head = conn.up_head;
    std::string up_body_added;
    if (add_usage) up_body_added = WithIncludeUsage(req.body, f.has_stream_options);
    const std::string_view up_body =
        add_usage ? std::string_view(up_body_added) : std::string_view(req.body);
    const auto build_head = [&] {
      const BackendUrl& url = *held.url;
      up_head.clear();
      HeadWriter h(&up_head);
      h.RequestLine("POST", req.target);
      h.Put(req.forward);              // the client's fields that go upstream (ForwardsHeader)
      h.Field("Host", url.authority);  // "host:port", formatted once at load
      // The gateway reads every answer (usage, SSE events) and passes it on as it is: no
      // content coding (without the field, any is acceptable: RFC 9110 section 12.5.3, and a
      // gzip answer reached the client unlabelled, its usage unread).
      h.Put("Content-Type: application/json\r\nAccept-Encoding: identity\r\n");
      if (const std::string& key = state_->pool(pool).spec.api_key; !key.empty()) {
        h.Put("Authorization: Bearer ");
        h.Put(key);
        h.Put("\r\n");
      }
      h.Field("x-request-id", rec.id);
      h.ContentLength(up_body.size());
      h.End(11, true);
    };
    build_head();

    // A reused idle connection may have been closed by the backend meanwhile: one retry on a
    // fresh connection when nothing came back on the reused one.
    Upstream u;
    BackendResponse& resp = conn.up_resp;
    // The answer's body: a 200 stream's events into `pending`, any other body into `body`.
    std::string* const ok_body = f.stream ? &conn.pending : &conn.body;
    std::optional<BackendResponseParser>& parser = conn.up_parser;  // out of this frame
    boost::system::error_code ec;
    // A client that leaves (a close or a reset) while the backend works or streams closes the
    // upstream connection, which aborts the request there (vLLM and the mock free its KV) and
    // ends the wait here: a stream does not wait for its next write to notice, which may be
    // seconds away (the first token of a long prompt, a backend's stall).
    // The watch lives on the connection (~100 bytes out of this frame) and ends with this
    // call: its callback reaches `u`, declared above the guard, so destroyed after it.
    std::optional<ClientWatch>& watch = conn.up_watch;
    struct EndWatch {
      std::optional<ClientWatch>* w;
      ~EndWatch() { w->reset(); }
    } end_watch{&watch};
    watch.emplace(s, wk.late_watches, [&u] {
      if (!u) return;
      boost::system::error_code ignored;
      u->socket.close(ignored);
    });
    watch->StartLate();  // started if the backend takes longer than kAfter
    // A failed connect marks the instance unhealthy and tries the next healthy one: nothing was
    // sent, so the request cannot run twice.
    const int max_attempts = 2 + held.instances;
    const SteadyDuration upstream_timeout = SecondsToSteady(config_.limits.upstream_timeout_s);
    for (int attempt = 0; attempt < max_attempts; ++attempt) {
      ec = {};
      // The idle connection without a coroutine call: the usual case costs no frame.
      u = TakeIdle(wk, pool, backend, held.generation);
      const bool reused = u != nullptr;
      if (!u) u = co_await Connect(wk, *held.url, &ec);
      // A client that left while the connection was being made (its watch could not close
      // what did not exist yet): nothing is sent.
      if (watch->gone()) break;
      // A connect that the drain's end cut (Deadlines::ExpireAll): not the instance's fault,
      // and no other is tried; answered below (503 shutting_down).
      if (!u && drain_expired_ && ec == beast::error::timeout) break;
      if (!u) {
        int next = -1;
        {
          const Locked lock(*this);
          state_->MarkUnhealthy(pool, backend, clock_.Now());
          next = state_->PickBackend(pool, clock_.Now());
          if (next >= 0) held.MoveTo(next);
        }
        if (next < 0) break;
        backend = next;
        build_head();
        continue;
      }
      // Non-streaming: the limit is for the whole exchange; streaming: for each wait (below).
      wk.deadlines.Set(&u->deadline, u->socket, upstream_timeout);
      const std::array<net::const_buffer, 2> up_bufs{net::buffer(up_head), net::buffer(up_body)};
      size_t sent = 0;
      if (!TrySendAll(u->socket, up_bufs, &sent, &ec)) {
        ec = co_await WriteRest(u->socket, up_bufs, sent);
      }
      bool got_some = false;  // of an answer: then the backend has the request
      if (!ec) {
        u->buf.clear();
        // Interim answers (100 Continue, 103 Early Hints) are skipped to the final one (RFC
        // 9110 15.2): taken as the answer, they left the real one to the next request.
        do {
          parser.emplace(&resp, &conn.up_type, ok_body, &conn.body);  // clears all four
          ec = co_await ReadMessage(u->socket, u->buf, *parser, ReadUntil::kHeader);
          got_some = got_some || parser->got_some();
        } while (!ec && resp.status >= 100 && resp.status < 200);
      }
      ec = u->deadline.Cause(ec);
      // A retry only for a reused connection that the backend closed before any answer (the
      // race with its keep-alive timeout that TakeIdle's check can miss): a backend that began
      // an answer, or sent a broken one, has the request, and running it twice is a second
      // generation.
      const bool closed = ec == http::error::end_of_stream || ec == net::error::eof ||
                          ec == net::error::connection_reset || ec == net::error::broken_pipe;
      if (!ec || !reused || !closed || got_some || watch->gone()) break;
      // A reused connection the backend had closed (restarted, killed, idle timeout): its other
      // idle connections are as stale, so they go too, and the retry opens a fresh one — which
      // fails to connect, moving the request to the next healthy instance, if the backend is
      // gone. (Before, each retry took the next stale idle connection until the attempts ran
      // out: a 502 for a request that a healthy instance could have served.)
      if (auto* idle = IdleOf(wk, pool, backend, held.generation)) idle->clear();
    }
    if (watch->gone()) {
      rec.end = "client_gone";
      rec.status = 499;
      co_return false;
    }
    if (ec || !u) co_return co_await BackendError(s, req, ec, rec);
    BackendResponseParser& rp = *parser;
    const unsigned status = resp.status;
    if (status != 200 || !f.stream) {
      // The whole body (into conn.body), under the exchange's limit set above.
      if (!rp.is_done()) {
        ec = u->deadline.Cause(co_await ReadMessage(u->socket, u->buf, rp, ReadUntil::kDone));
      }
      if (watch->gone()) {
        rec.end = "client_gone";
        rec.status = 499;
        co_return false;
      }
      if (ec) co_return co_await BackendError(s, req, ec, rec);
      std::string& body = conn.body;
      watch->Stop();
      const std::string_view content_type = conn.up_type;
      if (rp.keep_alive()) ReleaseUpstream(wk, pool, backend, held.generation, std::move(u));
      // A context-length refusal names the prompt's true count: learned from, as usage is (the
      // same request was misrouted again and again; one backend report is bounded by
      // LearnsFrom's plausibility).
      if (status == 400) LearnFromContextError(f, plan, body);
      if (status != 200) held.Done();  // released before the client sees the answer
      if (status == 401 || status == 403 || status >= 500) {
        co_return co_await BackendRefused(s, req, status, rec);
      }
      if (status == 200) {
        Usage usage;
        if (ReadUsage(body, &usage)) {
          SettleWith(held, f, plan, usage, true, rec);
        } else {
          SettleWith(held, f, plan,
                     {.prompt = Tokens(plan.estimate.prompt_tokens),
                      .completion = plan.cost.output},
                     false, rec);
        }
      }
      // 4xx from the backend (e.g. context too long): forwarded with its status, its body in
      // OpenAI's error shape (ToOpenAiError), a 429's Retry-After with it; the reservation is
      // released by `held`.
      const bool rewritten = status >= 400 && ToOpenAiError(&body, status);
      rec.status = static_cast<int>(status);
      const bool keep = req.keep_alive && !draining_;
      std::string& head = conn.head;
      head.clear();
      {
        HeadWriter h(&head);
        h.StatusLine(req.version, status);
        h.Field("Content-Type", rewritten || content_type.empty()
                                    ? std::string_view("application/json")
                                    : content_type);
        DebugHeaders(h, rec);
        if (status == 429 && resp.retry_after_s >= 0) {
          h.Put("retry-after: ");
          h.Uint(static_cast<uint64_t>(resp.retry_after_s), 10);
          h.Put("\r\n");
        }
        h.ContentLength(body.size());
        h.End(req.version, keep);
      }
      const std::array<net::const_buffer, 2> bufs{net::buffer(head), net::buffer(body)};
      boost::system::error_code wec;
      size_t sent = 0;
      if (!TrySendAll(s, bufs, &sent, &wec)) {
        wec = co_await WriteRestToClient(wk, conn.deadline, s, bufs, sent);
      }
      co_return !wec && keep;
    }

    co_return co_await StreamBack(wk, s, req, f, plan, held, rec, conn, u, add_usage);
  }

  // Proxy's part for a 200 stream: each SSE event as it arrives, usage read on the way. A
  // coroutine of its own, so that the frame of a non-streamed request does not carry this
  // loop's locals (Asio recycles no frame above 1 KiB: frame_sizes.sh).
  net::awaitable<bool> StreamBack(Worker& wk, tcp::socket& s, const ClientRequest& req,
                                  const RequestFeatures& f, const RoutePlan& plan, Held& held,
                                  RequestRecord& rec, ConnectionState& conn, Upstream& u,
                                  bool add_usage) {
    BackendResponseParser& rp = *conn.up_parser;
    const int pool = held.pool;
    const int backend = held.backend;
    const SteadyDuration upstream_timeout = SecondsToSteady(config_.limits.upstream_timeout_s);
    // Streaming: each SSE event as it arrives. Our status line and headers go out with the
    // first events (one write, not two), and the last chunk with the last events.
    bool head_sent = false;
    std::string& wire = conn.wire;
    wire.clear();
    // HTTP/1.0 has no chunked coding: its stream goes out as it comes and ends at the close.
    const bool chunked = req.version >= 11;
    const auto append_head = [&] {
      HeadWriter h(&wire);
      h.StatusLine(req.version, 200);
      DebugHeaders(h, rec);
      h.Put("Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n");
      if (chunked) h.Put("Transfer-Encoding: chunked\r\n");
      h.End(req.version, chunked && req.keep_alive && !draining_);
      head_sent = true;
    };

    std::string& pending = conn.pending;  // holds what came with the head
    std::string& out = conn.out;
    out.clear();
    Usage usage;
    bool have_usage = false;
    bool last_sent = false;
    int64_t content_events = 0;
    size_t scan_from = 0;  // where the next scan of `pending` for an event's end starts
    bool client_ok = true;
    boost::system::error_code rd_ec;
    // The first round forwards what came with the head; each later one reads once more (all
    // that the socket has: events that arrived together go out together, in one client write).
    for (bool first = true;; first = false) {
      if (!first) {
        wk.deadlines.Set(&u->deadline, u->socket, upstream_timeout);  // each wait for bytes
        rd_ec = u->deadline.Cause(co_await ReadMessage(u->socket, u->buf, rp, ReadUntil::kAnyBody));
      }
      wire.clear();
      // Whole events ("...\n\n") from `pending` go out as one chunk; the tail stays for the
      // next read.
      const auto append_chunk = [&](std::string_view data) {
        if (!head_sent) append_head();
        HeadWriter h(&wire, 32);  // the size line; long data is appended (HeadWriter::PutLong)
        if (!chunked) {
          h.Put(data);
          return;
        }
        h.Uint(data.size(), 16);
        h.Put("\r\n");
        h.Put(data);
        h.Put("\r\n");
      };
      if (!add_usage) {
        // Passed through as they came, counted and read for usage by ScanSseBlock (a content
        // chunk that ends with "usage":null by one comparison), instead of each event searched
        // for usage and copied twice (run_gateway_profile.sh: 51.6 K -> 46.6 K instructions
        // per streamed request).
        const SseBlock b = ScanSseBlock(pending, scan_from);
        if (b.size > 0) {
          content_events += b.data_events;
          if (b.have_usage) {
            have_usage = true;
            usage = b.usage;
          }
          append_chunk(std::string_view(pending.data(), b.size));
          pending.erase(0, b.size);
        }
      } else {
        // The client did not ask for usage: hide the nulls that include_usage adds, and the
        // usage chunk. vLLM writes usage last (see FindUsageValue), so a content chunk ends
        // with the null: one comparison, and no usage to look for.
        out.clear();
        const size_t used = ForEachSseEvent(pending, scan_from, [&](std::string_view ev) {
          std::string_view json;
          if (SseData(ev, &json)) {
            if (ev.ends_with(kUsageNullEnd)) {
              ++content_events;
              out.append(ev.substr(0, ev.size() - kUsageNullEnd.size()));
              out.append("}\n\n");
              return;
            }
            const bool read = ReadUsage(json, &usage);
            have_usage = have_usage || read;
            // The usage chunk (its choices empty, written with or without a space): hidden
            // even when its usage cannot be read (then settled as a stream without usage).
            if ((read || HasUsageObject(json)) &&
                (Contains(json, "\"choices\":[]") || Contains(json, "\"choices\": []"))) {
              return;
            }
            ++content_events;
            if (const size_t n = ev.rfind(kUsageNull); n != std::string_view::npos) {
              out.append(ev.substr(0, n));
              out.append(ev.substr(n + kUsageNull.size()));
              out.append("\n\n");
              return;
            }
          }
          out.append(ev);
          out.append("\n\n");
        });
        pending.erase(0, used);
        if (!out.empty()) append_chunk(out);
      }
      // What is left is part of an event: the next read's scan resumes near its end (a blank
      // line may straddle the two reads by up to three bytes) instead of from its start.
      scan_from = pending.size() > 3 ? pending.size() - 3 : 0;
      // An event that has not ended within kMaxSseEventBytes while more is coming: cut, not
      // held without bound.
      if (pending.size() > kMaxSseEventBytes && !rd_ec && !rp.is_done()) {
        rd_ec = http::error::body_limit;
      }
      const bool done_now = !rd_ec && rp.is_done();
      if (done_now) {
        // Bytes at the end that make no whole event (a last event without its blank line, or
        // an answer that is not SSE at all): passed on as they came and counted as served,
        // not dropped into an empty 200 that nobody pays for.
        if (pending.find_first_not_of("\r\n\t ") != std::string::npos) {
          Usage tail_usage;
          if (!have_usage && ReadUsage(pending, &tail_usage)) {
            have_usage = true;
            usage = tail_usage;
          }
          content_events = std::max<int64_t>(content_events, 1);
          append_chunk(pending);
        }
        pending.clear();
        if (!head_sent) append_head();
        if (chunked) wire += "0\r\n\r\n";
        last_sent = true;
        // Settled before the client sees the end (see Held::Done).
        SettleStream(held, f, plan, have_usage, usage, content_events, rec);
      }
      if (!wire.empty()) {
        const std::array<net::const_buffer, 1> wire_buf{net::buffer(wire)};
        boost::system::error_code wec;
        size_t sent = 0;
        if (!TrySendAll(s, wire_buf, &sent, &wec)) {
          // A client that stops reading: cut at limits.send_timeout_s, and settled below.
          wec = co_await WriteRestToClient(wk, conn.deadline, s, wire_buf, sent);
        }
        if (wec) client_ok = false;
        if (rec.ttft_ms < 0 && content_events > 0) rec.ttft_ms = MsSince(rec.start);
      }
      if (rd_ec || !client_ok || done_now) break;
    }
    const bool complete = rp.is_done() && !rd_ec;
    // The client's watch closed the upstream connection when the client left.
    const bool client_left = conn.up_watch->gone();
    if (complete && rp.keep_alive() && client_ok && !client_left) {
      ReleaseUpstream(wk, pool, backend, held.generation, std::move(u));
    }
    if (!last_sent) SettleStream(held, f, plan, have_usage, usage, content_events, rec);
    if (!client_ok && drain_expired_ && conn.deadline.expired()) {  // the drain's end cut it
      rec.end = "shutdown";
      rec.status = 502;
      co_return false;
    }
    if (!client_ok || (client_left && !last_sent)) {
      rec.end = "client_gone";
      rec.status = 499;
      co_return false;
    }
    if (!complete) {
      if (!head_sent) {  // nothing reached the client yet: a proper error instead of a cut
        co_return co_await BackendError(s, req, rd_ec, rec);
      }
      rec.end = drain_expired_ ? "shutdown" : "backend_cut";
      rec.status = 502;
      co_return false;  // the client sees the stream cut
    }
    rec.status = 200;
    co_return last_sent && chunked && req.keep_alive && !draining_;
  }

  // mu_ held, and the pools' clock pinned for the section (RealClock::Pin, taken after the
  // lock so that the instants the core sees are monotonic across workers): the core's
  // Now() calls of a section read steady_clock once (RealClock::Pin says how often before).
  struct Locked {
    explicit Locked(Server& s) : lock(s.mu_), pin(s.clock_) {}
    std::lock_guard<std::mutex> lock;
    RealClock::Pin pin;
  };

  // Members. Destruction order: workers_ (their io_contexts destroy pending coroutine frames,
  // whose guards lock mu_ and touch state_) goes before everything below it in this list.
  const GatewayConfig& config_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> draining_{false};
  std::atomic<bool> drain_expired_{false};  // the drain's time is up: end what is left
  std::atomic<int> active_requests_{0};
  const RealClock& clock_;  // the state's: time_scale, model time in and out of the core
  // mu_ guards state_ (pools, estimator, router, backends), waiters_ and next_cookie_. Every
  // section under it is short and never awaits; the request path takes it 3-4 times.
  std::mutex mu_;
  std::unique_ptr<GatewayState> state_;
  // Bumped under mu_ by each reload that changes backends: a worker that sees a new value
  // syncs its idle connections (SyncIdle). Read without the lock on the request path.
  std::atomic<uint64_t> backends_epoch_{0};
  GatewayMetrics metrics_;
  std::unordered_map<uint64_t, std::shared_ptr<Waiter>> waiters_;
  uint64_t next_cookie_ = 0;
  uint32_t id_prefix_ = 0;
  std::atomic<uint64_t> next_request_id_{0};
  std::vector<std::unique_ptr<Worker>> workers_;
  // Writes the admin state file (SaveAdminStateLater); only with admin.state_file. Joined by
  // FinishSaves (RunGateway, ~Server) before the workers go.
  std::optional<net::thread_pool> saver_;
};

// What tells one version of the config file from the next: its inode (an editor's or a
// deployment's rename into place), modification time and size. `ok` false: unreadable.
struct FileStamp {
  bool ok = false;
  dev_t dev = 0;
  ino_t ino = 0;
  int64_t mtime_ns = 0;
  off_t size = 0;
  bool operator==(const FileStamp&) const = default;
};

FileStamp StampOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {.ok = true,
          .dev = st.st_dev,
          .ino = st.st_ino,
          .mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
          .size = st.st_size};
}

// The version of the config file that the running config was read from (or last refused
// from), shared by the file watcher and SIGHUP on worker 0's thread: a SIGHUP's reload is
// not done a second time by the watcher.
struct ConfigFileWatch {
  std::string path;
  FileStamp loaded;
};

// Runs a worker's io_context until it stops or runs out of work, as io_context::run() does. With
// busy_poll_us > 0 it polls (epoll_wait with a zero timeout) while the worker has been idle for
// less than that, and blocks only after: on a VM, a blocked thread's vCPU halts and waking it
// costs tens of microseconds per message (docs/gateway.md, "Busy polling"). The window starts
// again after every handler, the gateway's own timers' included.
void RunWorkerLoop(net::io_context& io, int64_t busy_poll_us) {
  if (busy_poll_us <= 0) {
    io.run();
    return;
  }
  using Clock = std::chrono::steady_clock;
  const auto spin = std::chrono::microseconds(busy_poll_us);
  Clock::time_point last_event = Clock::now();
  while (!io.stopped()) {
    if (io.poll() > 0) {
      last_event = Clock::now();
    } else if (!io.stopped() && Clock::now() - last_event >= spin) {
      io.run_one();  // blocks until a handler ran (or the io_context stopped)
      last_event = Clock::now();
    }
  }
}

// A worker's thread: its loop, then the log lines whose posted Flush a stop left unrun.
void RunWorker(Worker& w, int64_t busy_poll_us) {
  RunWorkerLoop(w.io, busy_poll_us);
  w.log.Flush();
}

// Polls the config file every 0.5 s and reloads once a new version (FileStamp) has stood still
// for one poll. Runs on worker 0, as SIGHUP's handler does (both keep `w.loaded`).
net::awaitable<void> WatchConfigFile(Server& server, net::io_context& io, ConfigFileWatch& w) {
  net::steady_timer t(io);
  FileStamp pending;  // a change seen at the last poll, not yet read
  for (;;) {
    t.expires_after(std::chrono::milliseconds(500));
    auto [ec] = co_await t.async_wait(kTuple);
    if (ec) co_return;
    const FileStamp now = StampOf(w.path);
    if (!now.ok || now == w.loaded) {
      pending = {};
      continue;
    }
    // Read only once it has stood still for a poll: a file written in place can be seen half
    // written, and half a file may be valid YAML (entitlements missing from it would be
    // removed, and admin API overrides that agree with the cut dropped).
    if (now != pending) {
      pending = now;
      continue;
    }
    w.loaded = now;
    pending = {};
    server.Reload(w.path, "file changed");
  }
}

void SetUpLogging() {
  // Synchronous and unbuffered: one write(2) per line from the thread that logs, like nginx's
  // access log. An async logger measured slower here (a futex wake and a context switch to its
  // thread per line, docs/benchmarks.md) and can lose lines on a crash.
  if (spdlog::get("tokenpool-gateway") != nullptr) return;
  auto logger = std::make_shared<spdlog::logger>("tokenpool-gateway",
                                                 std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %l %v", spdlog::pattern_time_type::utc);
  logger->flush_on(spdlog::level::info);
  spdlog::register_logger(logger);
  spdlog::set_default_logger(logger);
  // Request lines go to the same stream without spdlog (Server::Finish).
}

}  // namespace

Status RunGateway(const GatewayConfig& config, std::FILE* out,
                  const std::function<void(uint16_t port, uint16_t admin_port)>& on_ready,
                  const std::string& reload_path) {
  // Taken before anything else: a change made while the gateway starts is still seen.
  ConfigFileWatch watch{.path = reload_path,
                        .loaded = reload_path.empty() ? FileStamp{} : StampOf(reload_path)};
  RealClock clock(config.time_scale);
  Result<std::unique_ptr<GatewayState>> state = GatewayState::Create(config, clock);
  if (!state.ok()) return state.status();
  // The entitlement changes an earlier run made through the admin API.
  std::vector<std::string> restore_notes;
  if (!config.admin_state_file.empty()) {
    if (Status s = LoadAdminState(**state, config.admin_state_file, &restore_notes); !s.ok()) {
      return s;
    }
  }
  const int restored = (*state)->admin_override_count();
  const int workers = config.workers > 0
                          ? config.workers
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  SetUpLogging();
  for (const std::string& n : restore_notes) {
    spdlog::warn("admin state {}: {}", config.admin_state_file, n);
  }
  if (restored > 0) {
    spdlog::info("admin state {}: {} entitlement change(s) made through the admin API restored",
                 config.admin_state_file, restored);
  }
  Server server(config, clock, std::move(*state), workers);
  uint16_t port = 0;
  uint16_t admin_port = 0;
  if (Status s = server.ListenAll(&port); !s.ok()) return s;
  if (config.admin_enabled) {
    if (Status s = server.ListenAdmin(&admin_port); !s.ok()) return s;
  }
  const std::string admin = config.admin_enabled
                                ? config.admin.host + ":" + std::to_string(admin_port)
                                : std::string("off");
  std::fprintf(out,
               "tokenpool serve listening on %s:%u admin=%s pools=%zu tenants=%zu workers=%d\n",
               config.listen.host.c_str(), static_cast<unsigned>(port), admin.c_str(),
               config.pools.size(), config.tenants.size(), workers);
  std::fflush(out);
  if (on_ready) on_ready(port, admin_port);
  net::io_context& io0 = server.worker(0).io;
  // The first SIGINT/SIGTERM drains, a second one stops at once.
  net::signal_set signals(io0, SIGINT, SIGTERM);
  std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec,
                                                                      int) {
    if (ec) return;
    server.Drain();
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);
  net::signal_set hup(io0, SIGHUP);
  std::function<void(boost::system::error_code, int)> on_hup = [&](boost::system::error_code ec,
                                                                   int) {
    if (ec) return;
    if (!reload_path.empty()) {
      watch.loaded = StampOf(reload_path);
      server.Reload(reload_path, "SIGHUP");
    }
    hup.async_wait(on_hup);
  };
  hup.async_wait(on_hup);
  if (!reload_path.empty()) {
    net::co_spawn(io0, WatchConfigFile(server, io0, watch), net::detached);
  }
  server.StartAccepting();
  server.StartBackendScrape();
  for (int i = 1; i < workers; ++i) {
    Worker& w = server.worker(i);
    w.thread = std::thread([&w, spin = config.busy_poll_us] { RunWorker(w, spin); });
  }
  RunWorker(server.worker(0), config.busy_poll_us);
  server.Stop();
  for (int i = 1; i < workers; ++i) server.worker(i).thread.join();
  server.FinishSaves();  // an admin change's or a reload's file still being written
  signals.cancel();
  hup.cancel();
  return Status::Ok();
}

}  // namespace tokenpool::gateway
