// Answers HTTP requests the way every rt endpoint does: one status line and header block
// (Content-Type, Content-Length, Cache-Control, a Date cached once per second, Connection
// when the connection closes or an HTTP/1.0 client keeps it, CORS headers when configured,
// extra headers such as Allow or WWW-Authenticate), then the body, handed to the connection
// in one piece (one write/writev), and the request counted in rt_requests_total.
#pragma once

#include <string>
#include <string_view>

#include "http_server.hpp"
#include "metrics.hpp"

namespace rt {

struct ReplyOptions {
  const std::string* cors_origin = nullptr;  // Access-Control-Allow-Origin when non-empty
  bool cors_credentials = false;             // with it, Access-Control-Allow-Credentials: true
};

// Standard reason phrase of an HTTP status.
const char* reason_phrase(int code) noexcept;

// The metrics endpoint a request path belongs to (`web`: static files are served).
metrics::Endpoint endpoint_for_path(std::string_view path, bool web) noexcept;

// Sends `body` (JSON) with status `code`, the CORS headers when configured, and
// `extra_headers` (complete "Name: value\r\n" lines, may be empty). Answers `req` exactly
// once (it is freed; a detached request is just freed).
void send_json(http::Request* req, int code, std::string_view body, metrics::Endpoint ep,
               const ReplyOptions& opt, std::string_view extra_headers = {}) noexcept;

// Sends {"error": message} with status `code` (as send_json).
void send_error(http::Request* req, int code, std::string_view message, metrics::Endpoint ep,
                const ReplyOptions& opt, std::string_view extra_headers = {}) noexcept;

// Sends a non-JSON body (metrics text, static files) with the given content type, no CORS
// headers, `cache_control` and `extra_headers` (as send_json).
void send_text(http::Request* req, int code, std::string_view body, const char* content_type,
               metrics::Endpoint ep, const char* cache_control = "no-store",
               std::string_view extra_headers = {}) noexcept;

}  // namespace rt
