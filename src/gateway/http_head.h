// HTTP/1.x message heads written straight into a string, for the request path's own messages
// (the request to a backend, the reply to a client). Beast's serializer walks a message's
// fields through nested buffer-sequence views: about 12 K instructions per message, the send
// included (callgrind, inclusive, bench/gateway/run_gateway_profile.sh: 23.6 K for the two
// messages of a non-streaming request, a fifth of its 124.7 K); appending the same bytes costs
// a few hundred. Beast still parses every message and writes the gateway's
// own error and admin replies. Names and values must be valid field text (no CR or LF): they
// come from Beast's parser or from the gateway itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tokenpool::gateway {

// `n` in `base` (10, or 16 for a chunk size) by std::to_chars: fmt's format_to through a
// back_insert_iterator took ~310 instructions a number (AppendContentLength, 2 calls a plain
// request: 626 inclusive, callgrind of bench/gateway/run_gateway_profile.sh at 8e8d350).
void AppendUint(std::string* w, uint64_t n, int base);
// "POST /target HTTP/1.1\r\n"
void AppendRequestLine(std::string* w, std::string_view method, std::string_view target);
// "HTTP/1.1 200 OK\r\n" (version 10 or 11; the reason phrase is the standard one).
void AppendStatusLine(std::string* w, unsigned version, unsigned status);
// "name: value\r\n" (neither may point into *w: it is resized before they are copied)
void AppendField(std::string* w, std::string_view name, std::string_view value);
// "Content-Length: n\r\n"
void AppendContentLength(std::string* w, size_t n);
// The connection header that keep-alive needs at this version (HTTP/1.1 keeps alive unless
// told "close"; HTTP/1.0 closes unless told "keep-alive"), then the empty line ending the head.
void EndHead(std::string* w, unsigned version, bool keep_alive);

}  // namespace tokenpool::gateway
