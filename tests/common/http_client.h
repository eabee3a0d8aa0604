#pragma once
// A minimal blocking HTTP/1.1 client over loopback for the tests of the servers (the gateway,
// the mock, the load generator's peers): keep-alive, request headers, raw bytes, Content-Length
// and chunked bodies with the arrival time of every chunk, a close by reset, and SSE event
// splitting. Header-only; each area's binary includes it by relative path.
//
// Thread-safety: one test thread.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

namespace tokenpool::test {

using Clock = std::chrono::steady_clock;

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
  // rcvbuf > 0: a small receive buffer (set before connecting, so the window stays small), for
  // a client that the server cannot write to at once.
  explicit Client(int port, int rcvbuf = 0) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf > 0) setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~Client() {
    if (fd_ >= 0) close(fd_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }
  int fd() const { return fd_; }

  // Closes with a reset (SO_LINGER of 0: RST, not FIN), as a killed client's kernel does when
  // data it never read is left.
  void Reset() {
    linger l{1, 0};
    setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd_);
    fd_ = -1;
  }

  // Sends `bytes` as they are.
  bool SendRaw(const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }

  bool Send(const std::string& method, const std::string& path, const std::string& body = "",
            const std::map<std::string, std::string>& headers = {}) {
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: localhost\r\n";
    for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
    if (method == "POST" || !body.empty()) {
      req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
             "\r\n";
    }
    req += "\r\n" + body;
    return SendRaw(req);
  }

  // Reads the status line and headers only (the body stays in the buffer for ReadBody()).
  Response ReadHead() {
    Response r;
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return r;
    }
    const std::string head = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    r.headers_time = Clock::now();
    r.status = std::atoi(head.c_str() + head.find(' ') + 1);
    size_t pos = head.find("\r\n");
    pos = pos == std::string::npos ? head.size() : pos + 2;
    while (pos < head.size()) {
      size_t e = head.find("\r\n", pos);
      if (e == std::string::npos) e = head.size();
      const std::string l = head.substr(pos, e - pos);
      const size_t c = l.find(':');
      if (c != std::string::npos) {
        std::string name = l.substr(0, c);
        for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        size_t v = c + 1;
        while (v < l.size() && l[v] == ' ') ++v;
        r.headers[name] = l.substr(v);
      }
      pos = e + 2;
    }
    return r;
  }

  void ReadBody(Response* r) {
    if (r->headers.count("transfer-encoding") != 0) {
      for (;;) {
        size_t le;
        while ((le = buf_.find("\r\n")) == std::string::npos) {
          if (!Fill()) return;
        }
        const size_t size = std::strtoul(buf_.c_str(), nullptr, 16);
        while (buf_.size() < le + 2 + size + 2) {
          if (!Fill()) return;
        }
        if (size == 0) {
          buf_.erase(0, le + 4);
          r->complete = true;
          return;
        }
        r->chunks.push_back(buf_.substr(le + 2, size));
        r->chunk_times.push_back(Clock::now());
        r->body += r->chunks.back();
        buf_.erase(0, le + 2 + size + 2);
      }
    }
    const size_t length = std::strtoul(
        r->headers.count("content-length") ? r->headers["content-length"].c_str() : "0", nullptr,
        10);
    while (buf_.size() < length) {
      if (!Fill()) return;
    }
    r->body = buf_.substr(0, length);
    buf_.erase(0, length);
    r->complete = true;
  }

  // One whole answer.
  Response Read() {
    Response r = ReadHead();
    if (r.status != 0) ReadBody(&r);
    return r;
  }

  // All that comes until the server closes the connection (after what ReadHead left).
  std::string ReadToClose() {
    while (Fill()) {
    }
    std::string all = std::move(buf_);
    buf_.clear();
    return all;
  }

  // True when the server closes the connection (EOF or an error) within timeout_ms.
  bool ClosedByPeer(int timeout_ms = 5000) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
    char c;
    return recv(fd_, &c, 1, 0) <= 0;
  }

  Response Request(const std::string& method, const std::string& path, const std::string& body = "",
                   const std::map<std::string, std::string>& headers = {}) {
    if (!Send(method, path, body, headers)) return Response{};
    return Read();
  }

 private:
  bool Fill() {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 30000) <= 0) return false;
    char tmp[65536];
    const ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
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
    const size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) break;
    const std::string ev = body.substr(pos, end - pos);
    out.push_back(ev.rfind("data: ", 0) == 0 ? ev.substr(6) : "<bad event>" + ev);
    pos = end + 2;
  }
  return out;
}

}  // namespace tokenpool::test
