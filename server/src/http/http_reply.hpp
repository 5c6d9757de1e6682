// Answers HTTP requests the way every rt endpoint does: Content-Type, Content-Length,
// Cache-Control, a Date formatted once per second, the CORS headers when configured, extra
// headers such as Allow or WWW-Authenticate, then the body; and the request counted in
// rt_requests_total, and its latency in rt_poll_duration_seconds / rt_publish_duration_seconds
// (the one exit path every answer takes: handlers record no request metrics themselves).
//
// The fixed headers are not copied per answer: they are per-thread evkeyval entries linked
// into the evhttp request's header list while evhttp writes the head (http::Request::
// link_header), so an answer costs evhttp's own work and no allocation of ours.
#pragma once

#include <event2/buffer.h>

#include <initializer_list>
#include <string>
#include <string_view>

#include "http_server.hpp"
#include "metrics.hpp"

namespace rt {

struct ReplyOptions {
  const std::string* cors_origin = nullptr;  // Access-Control-Allow-Origin when non-empty
  bool cors_credentials = false;             // with it, Access-Control-Allow-Credentials: true
};

// One extra header of an answer (both strings must outlive the call).
struct Header {
  const char* name;
  const char* value;
};
using ExtraHeaders = std::initializer_list<Header>;

// Standard reason phrase of an HTTP status.
const char* reason_phrase(int code) noexcept;

// Sends `body` (JSON) with status `code`, the CORS headers when configured, and `extra`.
// Answers `req` exactly once (it is freed; a detached request is just freed).
void send_json(http::Request* req, int code, std::string_view body, metrics::Endpoint ep,
               const ReplyOptions& opt, ExtraHeaders extra = {}) noexcept;

// As send_json with the bytes of `body`, added by reference: many answers share one
// buffer (a fan-out), none copies it. The caller may free `body` right after.
void send_json_shared(http::Request* req, int code, evbuffer* body, metrics::Endpoint ep,
                      const ReplyOptions& opt) noexcept;

// Sends {"error": message} with status `code` (as send_json).
void send_error(http::Request* req, int code, std::string_view message, metrics::Endpoint ep,
                const ReplyOptions& opt, ExtraHeaders extra = {}) noexcept;

// Sends a non-JSON body (metrics text, static files) with the given content type, no CORS
// headers, `cache_control` and `extra` (as send_json).
void send_text(http::Request* req, int code, std::string_view body, const char* content_type,
               metrics::Endpoint ep, const char* cache_control = "no-store", ExtraHeaders extra = {}) noexcept;

}  // namespace rt
