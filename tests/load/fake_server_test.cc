// RunLoad against a small in-test HTTP/1.1 server that answers like the gateway (class and
// queue-time headers, a streamed answer in several chunks, usage last) or never answers: the
// generator reads the gateway's headers, and a silent server ends in timeouts after --drain
// instead of a hang.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "../common/test_util.h"
#include "load/client.h"
#include "load/plan.h"
#include "load/report.h"

namespace tokenpool::load {
namespace {

// Accepts on a loopback port; per request, reads the head and Content-Length body, then (unless
// silent) answers with a chunked SSE stream of three content events and a usage event.
class FakeGateway {
 public:
  // How the answers look: the gateway's (compact JSON, LF line ends); valid JSON and SSE in
  // other spellings (spaces around colons, CRLF line ends, "data:" without its space, a
  // queue time that is no finite number); or a 200 with a JSON body, no event stream.
  enum class Style { kCompact, kSpaced, kJsonBody };
  // close_after_answer: every connection is closed right after its first answer, without a
  // `Connection: close` header (a server whose keep-alive timeout has passed): the client
  // learns of it only when it sends the next request there.
  explicit FakeGateway(bool silent, bool close_after_answer = false, Style style = Style::kCompact)
      : silent_(silent), close_after_answer_(close_after_answer), style_(style) {
    listen_fd_ = ::tokenpool::test::ListenOnLoopback(&port_);
    thread_ = std::thread([this] { Loop(); });
  }
  ~FakeGateway() {
    stop_ = true;
    thread_.join();
    for (int fd : conns_) close(fd);
    close(listen_fd_);
  }
  int port() const { return port_; }

 private:
  void Loop() {
    std::vector<std::string> bufs;
    while (!stop_) {
      std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}};
      for (int fd : conns_) fds.push_back({fd, POLLIN, 0});
      if (poll(fds.data(), fds.size(), 50) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        conns_.push_back(accept(listen_fd_, nullptr, nullptr));
        bufs.emplace_back();
      }
      for (size_t i = 1; i < fds.size(); ++i) {
        if (!(fds[i].revents & POLLIN)) continue;
        char tmp[65536];
        const ssize_t n = recv(fds[i].fd, tmp, sizeof tmp, 0);
        if (n <= 0) continue;
        std::string& b = bufs[i - 1];
        b.append(tmp, static_cast<size_t>(n));
        for (;;) {
          const size_t end = b.find("\r\n\r\n");
          if (end == std::string::npos) break;
          const size_t cl = b.find("Content-Length: ");
          const size_t body = cl < end ? std::stoul(b.substr(cl + 16)) : 0;
          if (b.size() < end + 4 + body) break;
          b.erase(0, end + 4 + body);
          if (!silent_) Answer(fds[i].fd, style_);
          if (close_after_answer_) {
            close(fds[i].fd);
            conns_[i - 1] = -1;
            ++closed_;
            break;
          }
        }
      }
      for (size_t i = conns_.size(); i-- > 0;) {
        if (conns_[i] < 0) {
          conns_.erase(conns_.begin() + static_cast<std::ptrdiff_t>(i));
          bufs.erase(bufs.begin() + static_cast<std::ptrdiff_t>(i));
        }
      }
    }
  }
  static void Answer(int fd, Style style) {
    auto chunk = [](const std::string& data) {
      char size[16];
      std::snprintf(size, sizeof size, "%zx\r\n", data.size());
      return size + data + "\r\n";
    };
    if (style == Style::kJsonBody) {
      const std::string body = R"({"choices":[{"message":{"content":"hi"}}]})";
      const std::string r =
          "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
          "content-length: " +
          std::to_string(body.size()) + "\r\n\r\n" + body;
      send(fd, r.data(), r.size(), MSG_NOSIGNAL);
      return;
    }
    // The gateway's spelling, or the same events in another valid one.
    const bool spaced = style == Style::kSpaced;
    const std::string end = spaced ? "\r\n\r\n" : "\n\n";
    std::string r =
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n";
    r += spaced ? "x-tokenpool-queue-ms: inf\r\n\r\n"
                : "x-tokenpool-class: elastic\r\nx-tokenpool-queue-ms: 12.5\r\n\r\n";
    r += chunk(spaced
                   ? R"(data:{"choices": [{"delta": {"role": "assistant", "content": ""}}]})" + end
                   : R"(data: {"choices":[{"delta":{"role":"assistant","content":""}}]})" + end);
    for (int t = 0; t < 3; ++t) {
      r +=
          chunk(spaced ? R"(data: {"choices": [{"delta": {"content" : " word"}}]})" + end
                       : R"(data: {"choices":[{"delta":{"content":" word"}}],"usage":null})" + end);
    }
    r += chunk(spaced ? R"(data: {"choices": [], "usage": {"prompt_tokens": 42, )"
                        R"("completion_tokens": 3}})" +
                            end + "data: [DONE]" + end
                      : R"(data: {"choices":[],"usage":{"prompt_tokens":42,"completion_tokens":3,)"
                        R"("total_tokens":45}})" +
                            end + "data: [DONE]" + end);
    r += "0\r\n\r\n";
    send(fd, r.data(), r.size(), MSG_NOSIGNAL);
  }

  bool silent_;
  bool close_after_answer_;
  Style style_;
  std::atomic<int> closed_{0};
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::vector<int> conns_;
  std::thread thread_;
};

std::string WriteTrace() {
  std::string name = "tokenpool_load_fake_";
  name += std::to_string(getpid());
  name += ".csv";
  const std::string path = (std::filesystem::temp_directory_path() / name).string();
  std::ofstream(path) << "arrival_s,input_tokens,output_tokens\n0,50,3\n0.01,60,3\n0.02,70,3\n";
  return path;
}

// The three-request trace against `gw` (model "m": the fake has no /v1/models): its plan and
// result.
struct FakeRun {
  Result<LoadPlan> plan = InvalidArgument("not run");
  Result<LoadResult> result = InvalidArgument("not run");
};
FakeRun RunAgainst(const FakeGateway& gw) {
  LoadConfig c;
  c.target = "127.0.0.1:" + std::to_string(gw.port());
  c.trace_path = WriteTrace();
  c.model = "m";
  FakeRun run;
  run.plan = BuildPlan(c);
  if (run.plan.ok()) run.result = RunLoad(c, *run.plan, nullptr);
  std::filesystem::remove(c.trace_path);
  return run;
}

TEST(LoadFakeGatewayTest, ReadsClassQueueTimeAndUsage) {
  FakeGateway gw(false);
  FakeRun run = RunAgainst(gw);
  ASSERT_TRUE(run.plan.ok()) << run.plan.status().message();
  auto& plan = run.plan;
  auto& r = run.result;
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->records.size(), 3u);
  ASSERT_EQ(r->classes.size(), 1u);
  EXPECT_EQ(r->classes[0], "elastic");
  for (const RequestRecord& rec : r->records) {
    EXPECT_EQ(rec.outcome, Outcome::kOk) << rec.error;
    EXPECT_EQ(rec.cls, 0);
    EXPECT_DOUBLE_EQ(rec.queue_ms, 12.5);
    EXPECT_EQ(rec.prompt_tokens, 42);
    EXPECT_EQ(rec.completion_tokens, 3);
    EXPECT_GE(rec.ttft_ms, 0);
    EXPECT_GE(rec.tpot_ms, 0);
  }
  const LoadSummary s = Summarize(*plan, *r);
  EXPECT_EQ(s.groups.front().cls, "elastic");
  EXPECT_EQ(s.groups.front().queue_ms.p50, 12.5);
  EXPECT_EQ(s.groups.front().statuses.at(200), 3);
}

// Any valid JSON spacing and SSE line ends are read (a server writing `"content": "x"` with
// CRLF had every request "ok" with no TTFT and no tokens), a queue time that is no finite
// number is not taken, and a 200 without an event stream is bad_stream, not ok.
TEST(LoadFakeGatewayTest, OtherSpellingsAreReadAndANonStreamIsNotOk) {
  for (const auto style : {FakeGateway::Style::kSpaced, FakeGateway::Style::kJsonBody}) {
    FakeGateway gw(false, false, style);
    FakeRun run = RunAgainst(gw);
    ASSERT_TRUE(run.plan.ok()) << run.plan.status().message();
    auto& plan = run.plan;
    auto& r = run.result;
    ASSERT_TRUE(r.ok()) << r.status().message();
    ASSERT_EQ(r->records.size(), 3u);
    for (const RequestRecord& rec : r->records) {
      if (style == FakeGateway::Style::kSpaced) {
        EXPECT_EQ(rec.outcome, Outcome::kOk) << rec.error;
        EXPECT_EQ(rec.queue_ms, -1);  // "inf"
        EXPECT_EQ(rec.prompt_tokens, 42);
        EXPECT_EQ(rec.completion_tokens, 3);
        EXPECT_GE(rec.ttft_ms, 0);
        EXPECT_GE(rec.tpot_ms, 0);
      } else {
        EXPECT_EQ(rec.outcome, Outcome::kBadStream);
        EXPECT_EQ(rec.status, 200);
        EXPECT_NE(rec.error.find("application/json"), std::string::npos) << rec.error;
      }
    }
    if (style == FakeGateway::Style::kJsonBody) {
      const LoadSummary s = Summarize(*plan, *r);
      EXPECT_EQ(s.completed, 0);
      EXPECT_EQ(s.groups.back().bad_stream, 3);
      // No sample: null in the JSON, "-" in the table (they read as 0 ms).
      EXPECT_NE(SummaryJson(s).find(R"("ttft_ms":{"count":0,"mean":null,"p50":null)"),
                std::string::npos)
          << SummaryJson(s);
      EXPECT_NE(FormatTable(s).find("|         -         - |         -         - |"),
                std::string::npos)
          << FormatTable(s);
    }
  }
}

TEST(LoadFakeGatewayTest, SilentServerEndsInTimeoutsNotAHang) {
  FakeGateway gw(true);
  LoadConfig c;
  c.target = "127.0.0.1:";
  c.target += std::to_string(gw.port());
  c.trace_path = WriteTrace();
  c.model = "m";
  c.drain_s = 0.3;
  auto plan = BuildPlan(c);
  ASSERT_TRUE(plan.ok());
  auto r = RunLoad(c, *plan, nullptr);
  std::filesystem::remove(c.trace_path);
  ASSERT_TRUE(r.ok()) << r.status().message();
  for (const RequestRecord& rec : r->records) {
    EXPECT_TRUE(rec.sent);
    EXPECT_EQ(rec.outcome, Outcome::kTimeout) << rec.error;
  }
}

// Two keep-alive connections go idle together and the server closes both (its keep-alive
// timeout). The next request finds the first stale and is retried once; the retry must go out
// on a new connection, not on the other idle one, which is just as stale (a live E3 run lost
// five requests this way as "read: end of stream" when a batch of connections timed out).
TEST(LoadFakeGatewayTest, StaleIdleConnectionsAreRetriedOnANewOne) {
  FakeGateway gw(false, /*close_after_answer=*/true);
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("tokenpool_load_stale_" + std::to_string(getpid()) + ".csv"))
                               .string();
  // Two requests at once (two connections), then one 0.3 s later when both are closed.
  std::ofstream(path) << "arrival_s,input_tokens,output_tokens\n0,50,3\n0,60,3\n0.3,70,3\n";
  LoadConfig c;
  c.target = "127.0.0.1:";
  c.target += std::to_string(gw.port());
  c.trace_path = path;
  c.model = "m";
  c.drain_s = 5;
  auto plan = BuildPlan(c);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  auto r = RunLoad(c, *plan, nullptr);
  std::filesystem::remove(path);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->records.size(), 3u);
  for (const RequestRecord& rec : r->records) {
    EXPECT_EQ(rec.outcome, Outcome::kOk) << rec.error;
  }
  EXPECT_GE(r->connections_opened, 3);
}

}  // namespace
}  // namespace tokenpool::load
