#pragma once
// A backend that misbehaves on purpose, for the gateway's tests of its upstream side: it
// listens on a free loopback port, serves each connection on a thread of its own, reads each
// request (head and Content-Length body) and calls `answer(fd, conn, n, request)`, which
// writes whatever the test wants to the socket; answer returns false to close the connection.
// It counts the requests it read and keeps them, so a test can tell one that came twice.
//
// Thread-safety: requests() and Requests() may be called while it serves.

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../common/test_util.h"

namespace tokenpool::gateway::testing {

class FakeBackend {
 public:
  // conn: the connection's number (0, 1, ...); n: the request's number on it.
  using Answer = std::function<bool(int fd, int conn, int n, const std::string& request)>;

  explicit FakeBackend(Answer answer) : answer_(std::move(answer)) {
    listen_fd_ = ::tokenpool::test::ListenOnLoopback(&port_);
    acceptor_ = std::thread([this] { Accept(); });
  }
  ~FakeBackend() {
    stopping_ = true;
    shutdown(listen_fd_, SHUT_RDWR);
    acceptor_.join();
    close(listen_fd_);
    {
      const std::lock_guard<std::mutex> lock(mu_);
      for (int fd : fds_) shutdown(fd, SHUT_RDWR);
    }
    for (std::thread& t : threads_) t.join();
    for (int fd : fds_) close(fd);
  }
  FakeBackend(const FakeBackend&) = delete;
  FakeBackend& operator=(const FakeBackend&) = delete;

  int port() const { return port_; }
  int requests() const { return requests_.load(); }
  std::vector<std::string> Requests() const {
    const std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }

  // Writes all of `bytes` (false when the peer is gone).
  static bool Write(int fd, const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      const ssize_t n = send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }

 private:
  void Accept() {
    for (int conn = 0;; ++conn) {
      const int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0 || stopping_) {
        if (fd >= 0) close(fd);
        return;
      }
      const std::lock_guard<std::mutex> lock(mu_);
      fds_.push_back(fd);
      threads_.emplace_back([this, fd, conn] { Serve(fd, conn); });
    }
  }
  void Serve(int fd, int conn) {
    std::string buf;
    for (int n = 0;; ++n) {
      size_t head_end;
      while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
        if (!Fill(fd, &buf)) return;
      }
      size_t length = 0;
      for (const char* name : {"Content-Length: ", "content-length: "}) {
        const size_t at = buf.find(name);
        if (at != std::string::npos && at < head_end) {
          length = std::strtoul(buf.c_str() + at + 16, nullptr, 10);
        }
      }
      while (buf.size() < head_end + 4 + length) {
        if (!Fill(fd, &buf)) return;
      }
      const std::string request = buf.substr(0, head_end + 4 + length);
      buf.erase(0, request.size());
      ++requests_;
      {
        const std::lock_guard<std::mutex> lock(mu_);
        seen_.push_back(request);
      }
      if (!answer_(fd, conn, n, request)) {
        shutdown(fd, SHUT_RDWR);
        return;
      }
    }
  }
  static bool Fill(int fd, std::string* buf) {
    char tmp[65536];
    const ssize_t got = recv(fd, tmp, sizeof tmp, 0);
    if (got <= 0) return false;
    buf->append(tmp, static_cast<size_t>(got));
    return true;
  }

  Answer answer_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> requests_{0};
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> threads_;
  std::vector<std::string> seen_;
};

}  // namespace tokenpool::gateway::testing
