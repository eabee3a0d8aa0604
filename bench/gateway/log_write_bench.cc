// What one write(2) per request log line costs against one per batch of lines (the gateway's
// LogBatch writes the lines finished in one event-loop turn together): 256-byte lines to a
// file, as the benches' gateways write their standard error. Per line: items_per_second.
//   build/bench/log_write_bench
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

void BM_WriteLines(benchmark::State& state) {
  const auto batch = static_cast<size_t>(state.range(0));
  char path[] = "/tmp/tokenpool-log-write-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) {
    state.SkipWithError("mkstemp failed");
    return;
  }
  std::string line(255, 'a');
  line += '\n';
  std::string lines;
  for (size_t i = 0; i < batch; ++i) lines += line;
  int64_t written = 0;
  for (auto _ : state) {
    if (::write(fd, lines.data(), lines.size()) != static_cast<ssize_t>(lines.size())) {
      state.SkipWithError("write failed");
      break;
    }
    written += static_cast<int64_t>(batch);
    // A file that grows for the whole run measures the page cache, not the call: start over.
    if (written % (1 << 16) < static_cast<int64_t>(batch) && ::ftruncate(fd, 0) == 0) {
      (void)::lseek(fd, 0, SEEK_SET);
    }
  }
  state.SetItemsProcessed(written);
  ::close(fd);
  std::remove(path);
}
BENCHMARK(BM_WriteLines)->Arg(1)->Arg(2)->Arg(4)->Arg(8)->Arg(16);

}  // namespace

BENCHMARK_MAIN();
