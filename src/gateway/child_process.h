#pragma once
// A child `tokenpool` process (e.g. `tokenpool mock --port 0 ...`) for the demo: started with
// the same binary, its port read from the first stdout line ("... listening on HOST:PORT ..."),
// stopped by PID (SIGTERM, then waited for) when the object is destroyed.
//
//   ChildProcess mock(SelfExecutable(), {"mock", "--port", "0", "--max-model-len", "8192"});
//   if (mock.port() == 0) ...   // did not start; mock.banner() has what it printed
//
// Thread-safety: not synchronized; one owner.

#include <sys/types.h>

#include <string>
#include <vector>

namespace tokenpool::gateway {

// The path of the running binary (/proc/self/exe resolved).
std::string SelfExecutable();

class ChildProcess {
 public:
  // argv[0] is `binary`; `args` follow. Waits up to 10 s for the first line. With
  // `stderr_path`, the child's standard error goes to that file (created or truncated).
  ChildProcess(const std::string& binary, const std::vector<std::string>& args,
               const std::string& stderr_path = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // True once the child has exited (reaped), waiting up to timeout_ms.
  bool WaitExit(int timeout_ms);

  // Its exit status once WaitExit saw it end (128 + the signal's number if a signal ended
  // it); -1 before.
  int exit_code() const { return exit_code_; }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& banner() const { return banner_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  int exit_code_ = -1;
  std::string banner_;
};

}  // namespace tokenpool::gateway
