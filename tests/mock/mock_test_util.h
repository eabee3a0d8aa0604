#pragma once
// Test helpers for the mock server: start `tokenpool mock` as a child process on a free port
// (--port 0; the port is read from its first stdout line) and stop it by PID, and the shared
// blocking HTTP/1.1 client over loopback (tests/common/http_client.h: keep-alive,
// Content-Length and chunked bodies, with the arrival time of every chunk).
//
// Thread-safety: one test thread.

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "../common/http_client.h"

namespace tokenpool::mock::testing {

using Clock = std::chrono::steady_clock;

class MockProcess {
 public:
  // Starts `tokenpool mock --port 0 <args>`; port() is 0 when it did not start.
  explicit MockProcess(const std::vector<std::string>& args) {
    int fds[2];
    if (pipe(fds) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      close(fds[1]);
      std::vector<std::string> argv_s = {TOKENPOOL_BINARY, "mock", "--port", "0"};
      argv_s.insert(argv_s.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : argv_s) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(fds[1]);
    std::string line;
    pollfd p{fds[0], POLLIN, 0};
    while (line.find('\n') == std::string::npos && poll(&p, 1, 10000) > 0) {
      char buf[512];
      ssize_t n = read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    close(fds[0]);
    banner_ = line;
    auto at = line.find("listening on ");
    if (at != std::string::npos) {
      auto colon = line.find(':', at);
      port_ = std::atoi(line.c_str() + colon + 1);
    }
  }
  ~MockProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
  }
  MockProcess(const MockProcess&) = delete;
  MockProcess& operator=(const MockProcess&) = delete;

  int port() const { return port_; }
  const std::string& banner() const { return banner_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string banner_;
};

using ::tokenpool::test::Client;
using ::tokenpool::test::Response;
using ::tokenpool::test::SseEvents;

}  // namespace tokenpool::mock::testing
