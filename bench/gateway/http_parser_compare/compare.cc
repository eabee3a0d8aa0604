// Instructions to parse wrk's benchmark request (head and a 179-byte body) with Beast's
// basic_parser, as the gateway does, against llhttp 8.1 (Node.js's parser; Debian 12 ships its C
// sources in node-llhttp). Built and counted by compare.sh; not part of the build.
//   compare beast | compare llhttp
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>

extern "C" {
#include "llhttp.h"
}

namespace {

namespace http = boost::beast::http;
using boost::core::string_view;
using boost::system::error_code;

const std::string kRequest =
    "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:41235\r\n"
    "Content-Type: application/json\r\nAuthorization: Bearer sk-bench\r\n"
    "Content-Length: 179\r\n\r\n"
    "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"You are a helpful "
    "assistant.\"},{\"role\":\"user\",\"content\":\"Write a haiku about token pools and GPUs, "
    "please.\"}],\"max_tokens\":16}";

// The gateway's shape of parser: fields seen one by one, the body appended to a string.
struct BeastParser final : http::basic_parser<true> {
  std::string body;
  size_t fields = 0;
  void on_request_impl(http::verb, string_view, string_view, int, error_code&) override {}
  void on_response_impl(int, string_view, int, error_code&) override {}
  void on_field_impl(http::field, string_view, string_view, error_code&) override { ++fields; }
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
  size_t on_body_impl(string_view s, error_code&) override {
    body.append(s.data(), s.size());
    return s.size();
  }
  void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
  size_t on_chunk_body_impl(std::uint64_t, string_view s, error_code&) override {
    return s.size();
  }
  void on_finish_impl(error_code&) override {}
};

struct LlhttpState {
  std::string body;
  size_t fields = 0;
  std::string_view name;
};
int OnField(llhttp_t* p, const char* at, size_t n) {
  static_cast<LlhttpState*>(p->data)->name = std::string_view(at, n);
  return 0;
}
int OnValue(llhttp_t* p, const char*, size_t) {
  ++static_cast<LlhttpState*>(p->data)->fields;
  return 0;
}
int OnBody(llhttp_t* p, const char* at, size_t n) {
  static_cast<LlhttpState*>(p->data)->body.append(at, n);
  return 0;
}
int OnDone(llhttp_t*) { return HPE_PAUSED; }

}  // namespace

int main(int argc, char** argv) {
  constexpr int kRounds = 100000;
  const bool use_llhttp = argc > 1 && std::string_view(argv[1]) == "llhttp";
  size_t sink = 0;
  llhttp_settings_t settings;
  llhttp_settings_init(&settings);
  settings.on_header_field = OnField;
  settings.on_header_value = OnValue;
  settings.on_body = OnBody;
  settings.on_message_complete = OnDone;
  LlhttpState state;
  state.body.reserve(4096);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kRounds; ++i) {
    if (use_llhttp) {
      llhttp_t p;
      llhttp_init(&p, HTTP_REQUEST, &settings);
      p.data = &state;
      state.body.clear();
      const llhttp_errno_t e = llhttp_execute(&p, kRequest.data(), kRequest.size());
      sink += state.body.size() + (e == HPE_PAUSED) + llhttp_should_keep_alive(&p);
    } else {
      BeastParser p;
      p.body.reserve(4096);
      p.eager(true);
      error_code ec;
      const size_t used = p.put(boost::asio::buffer(kRequest), ec);
      sink += p.body.size() + used + p.is_done() + p.keep_alive();
    }
  }
  const auto t1 = std::chrono::steady_clock::now();
  std::printf("%s: %.1f ns per request (checksum %zu)\n", use_llhttp ? "llhttp" : "beast",
              std::chrono::duration<double, std::nano>(t1 - t0).count() / kRounds, sink);
}
