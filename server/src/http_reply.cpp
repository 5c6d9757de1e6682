#include "http_reply.hpp"

#include <ctime>

#include "protocol/protocol.hpp"

namespace rt {

const char* reason_phrase(int code) noexcept {
  switch (code) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

metrics::Endpoint endpoint_for_path(std::string_view p, bool web) noexcept {
  return p == "/rt"        ? metrics::Endpoint::rt
         : p == "/publish" ? metrics::Endpoint::publish
         : p == "/healthz" ? metrics::Endpoint::healthz
         : p == "/metrics" ? metrics::Endpoint::metrics
         : web             ? metrics::Endpoint::web
                           : metrics::Endpoint::other;
}

namespace {

// Every 503 rt sends (Redis unreachable or failing over, too many polls, out of memory)
// tells clients when to come back: the outages it stands for are short (a reconnect, a
// Sentinel failover of a few seconds), and a crowd retrying at once would prolong them.
constexpr std::string_view kRetryAfter503 = "Retry-After: 1\r\n";

// "Date: <IMF-fixdate>\r\n", formatted again only when the second changes (per thread: each
// worker has its own loop).
std::string_view date_line() noexcept {
  thread_local time_t cached_sec = 0;
  thread_local char line[64];
  thread_local size_t len = 0;
  time_t now = time(nullptr);
  if (now != cached_sec || len == 0) {
    tm t;
    gmtime_r(&now, &t);
    len = strftime(line, sizeof line, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &t);
    cached_sec = now;
  }
  return std::string_view(line, len);
}

void append_uint(std::string* s, size_t v) {
  char buf[24];
  char* p = buf + sizeof buf;
  do {
    *--p = char('0' + v % 10);
    v /= 10;
  } while (v);
  s->append(p, size_t(buf + sizeof buf - p));
}

// The common tail of every answer: the header block, the body, counting.
void send_body(http::Request* req, int code, std::string_view body, std::string_view content_type,
               const char* cache_control, std::string_view cors_origin, bool cors_credentials,
               std::string_view extra, metrics::Endpoint ep) noexcept {
  metrics::count_request(ep, code);
  if (!req->connected()) {
    req->respond({}, {});  // nobody to answer: just frees it
    return;
  }
  thread_local std::string head;
  try {
    head.clear();
    head += "HTTP/1.1 ";
    append_uint(&head, size_t(code));
    head += ' ';
    head += reason_phrase(code);
    head += "\r\n";
    if (code != 204) {
      head += "Content-Type: ";
      head += content_type;
      head += "\r\nContent-Length: ";
      append_uint(&head, body.size());
      head += "\r\n";
    }
    head += "Cache-Control: ";
    head += cache_control;
    head += "\r\n";
    head += date_line();
    if (req->closing()) head += "Connection: close\r\n";
    else if (req->minor_version() == 0) head += "Connection: keep-alive\r\n";
    if (!cors_origin.empty()) {
      head += "Access-Control-Allow-Origin: ";
      head += cors_origin;
      // Pages read Retry-After of a 503 to wait as long as the server asks.
      head += "\r\nVary: Origin\r\nAccess-Control-Expose-Headers: Retry-After\r\n";
      if (cors_credentials) head += "Access-Control-Allow-Credentials: true\r\n";
    }
    if (code == 503 && extra.find("Retry-After:") == std::string_view::npos) head += kRetryAfter503;
    head += extra;
    head += "\r\n";
  } catch (...) {
    req->release();  // out of memory: close the connection rather than answer half
    return;
  }
  req->respond(head, code == 204 ? std::string_view() : body);
}

}  // namespace

void send_json(http::Request* req, int code, std::string_view body, metrics::Endpoint ep,
               const ReplyOptions& opt, std::string_view extra_headers) noexcept {
  std::string_view cors = opt.cors_origin ? std::string_view(*opt.cors_origin) : std::string_view();
  send_body(req, code, body, "application/json", "no-store", cors, opt.cors_credentials, extra_headers, ep);
}

void send_error(http::Request* req, int code, std::string_view message, metrics::Endpoint ep,
                const ReplyOptions& opt, std::string_view extra_headers) noexcept {
  std::string body;
  try {
    body = proto::error_body(message);
  } catch (...) {
    body = "{\"error\":\"out of memory\"}";
  }
  send_json(req, code, body, ep, opt, extra_headers);
}

void send_text(http::Request* req, int code, std::string_view body, const char* content_type,
               metrics::Endpoint ep, const char* cache_control, std::string_view extra_headers) noexcept {
  send_body(req, code, body, content_type, cache_control, {}, false, extra_headers, ep);
}

}  // namespace rt
