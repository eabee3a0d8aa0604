#pragma once
// Test helpers for the mock server: start `tokenpool mock` as a child process on a free port
// (--port 0; the port is read from its first stdout line) and stop it by PID, and a minimal
// blocking HTTP/1.1 client over loopback (keep-alive, Content-Length and chunked bodies, with
// the arrival time of every chunk).
//
// Thread-safety: one test thread.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

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

struct Response {
  int status = 0;                              // 0: the connection closed before a status line
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;                            // de-chunked
  std::vector<std::string> chunks;             // chunked bodies: each chunk's data
  std::vector<Clock::time_point> chunk_times;  // when each chunk was complete
  Clock::time_point headers_time;
  bool complete = false;  // the whole message arrived (false: connection dropped mid-way)
};

class Client {
 public:
  explicit Client(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~Client() { close(fd_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }

  bool Send(const std::string& method, const std::string& path, const std::string& body = "") {
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: localhost\r\n";
    if (!body.empty() || method == "POST") {
      req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
             "\r\n";
    }
    req += "\r\n" + body;
    size_t off = 0;
    while (off < req.size()) {
      ssize_t n = send(fd_, req.data() + off, req.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }

  Response Read() {
    Response r;
    std::string head;
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return r;
    }
    head = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    r.headers_time = Clock::now();
    auto line_end = head.find("\r\n");
    r.status = std::atoi(head.c_str() + head.find(' ') + 1);
    size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      size_t e = head.find("\r\n", pos);
      if (e == std::string::npos) e = head.size();
      std::string l = head.substr(pos, e - pos);
      auto c = l.find(':');
      if (c != std::string::npos) {
        std::string name = l.substr(0, c);
        for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        size_t v = c + 1;
        while (v < l.size() && l[v] == ' ') ++v;
        r.headers[name] = l.substr(v);
      }
      pos = e + 2;
    }
    if (r.headers.count("transfer-encoding") != 0) {
      for (;;) {
        size_t le;
        while ((le = buf_.find("\r\n")) == std::string::npos) {
          if (!Fill()) return r;
        }
        const size_t size = std::strtoul(buf_.c_str(), nullptr, 16);
        while (buf_.size() < le + 2 + size + 2) {
          if (!Fill()) return r;
        }
        if (size == 0) {
          buf_.erase(0, le + 4);
          r.complete = true;
          return r;
        }
        r.chunks.push_back(buf_.substr(le + 2, size));
        r.chunk_times.push_back(Clock::now());
        r.body += r.chunks.back();
        buf_.erase(0, le + 2 + size + 2);
      }
    }
    const size_t length = std::strtoul(
        r.headers.count("content-length") ? r.headers["content-length"].c_str() : "0", nullptr, 10);
    while (buf_.size() < length) {
      if (!Fill()) return r;
    }
    r.body = buf_.substr(0, length);
    buf_.erase(0, length);
    r.complete = true;
    return r;
  }

  Response Request(const std::string& method, const std::string& path,
                   const std::string& body = "") {
    if (!Send(method, path, body)) return Response{};
    return Read();
  }

  // True when the server closed the connection (reads EOF or an error within 5 s).
  bool ClosedByPeer() {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0) return false;
    char c;
    return recv(fd_, &c, 1, 0) <= 0;
  }

 private:
  bool Fill() {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 30000) <= 0) return false;
    char tmp[65536];
    ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

// "data: X\n\n" events of an SSE body, X only.
inline std::vector<std::string> SseEvents(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) break;
    std::string ev = body.substr(pos, end - pos);
    out.push_back(ev.rfind("data: ", 0) == 0 ? ev.substr(6) : "<bad event>" + ev);
    pos = end + 2;
  }
  return out;
}

}  // namespace tokenpool::mock::testing
