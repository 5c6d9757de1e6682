// Answers HTTP requests the way every rt endpoint does: JSON bodies, Content-Type
// application/json, Cache-Control: no-store, the CORS header when configured, and the
// request counted in rt_requests_total.
#pragma once

#include <event2/http.h>

#include <string>
#include <string_view>

#include "metrics.hpp"

namespace rt {

struct ReplyOptions {
  const std::string* cors_origin = nullptr;  // Access-Control-Allow-Origin when non-empty
};

// Standard reason phrase of an HTTP status.
const char* reason_phrase(int code) noexcept;

// Sends `body` (JSON) with status `code`. Takes no ownership; `req` is answered exactly once
// (evhttp frees it after sending).
void send_json(evhttp_request* req, int code, std::string_view body, metrics::Endpoint ep,
               const ReplyOptions& opt) noexcept;

// Sends {"error": message} with status `code`.
void send_error(evhttp_request* req, int code, std::string_view message, metrics::Endpoint ep,
                const ReplyOptions& opt) noexcept;

// Sends a non-JSON body (metrics text, static files) with the given content type.
void send_text(evhttp_request* req, int code, std::string_view body, const char* content_type,
               metrics::Endpoint ep) noexcept;

}  // namespace rt
