// Minimal HTTP/1.1 client pieces for the load generator: request text, response-head
// parsing, and a blocking one-shot exchange used only while setting a scenario up.
//
// The load phases (async_runner) send pre-built request bytes and parse only what they must
// (status, Content-Length), so that the generator stays cheaper than the servers it drives.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace bench {

// The parts of a response head the generator needs.
struct Head {
  int status = 0;
  long long content_length = -1;  // -1: absent
  bool chunked = false;
};

// Parses a response head: the status line and header lines, without the final blank line.
// Returns false when the status line is malformed.
bool parse_head(std::string_view head, Head* out) noexcept;

// Value of header `name` (case-insensitive) in a response head, trimmed; empty if absent.
std::string header_value(std::string_view head, std::string_view name);

// A GET request with keep-alive; `extra_headers` is "" or lines each ending in "\r\n".
std::string make_get(std::string_view host, std::string_view target, std::string_view extra_headers);

// A POST request with a JSON body.
std::string make_post(std::string_view host, std::string_view target, std::string_view extra_headers,
                      std::string_view body);

struct Response {
  int status = 0;
  std::string head;  // status line and headers, without the final blank line
  std::string body;
};

// Sends `request` on a new connection to `dst` and reads one response (Content-Length or
// chunked body). Blocking, with `timeout_ms` for the whole exchange. Setup use only.
// Returns false with *err set on connect/IO errors, timeouts and malformed responses.
bool http_exchange(const sockaddr_in& dst, const std::string& request, int timeout_ms,
                   Response* out, std::string* err);

// 127.0.0.1:port as a sockaddr.
sockaddr_in loopback_addr(const char* ip, uint16_t port);

// CLOCK_MONOTONIC in nanoseconds (the same clock in every process of the run).
uint64_t mono_ns() noexcept;

}  // namespace bench
