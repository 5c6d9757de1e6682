#include "http_reply.hpp"

#include <strings.h>

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
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

namespace {

// The headers of this thread's answers. Each is linked into one answer at a time and
// unlinked before the next (Request::respond writes the head synchronously).
struct Fixed {
  evkeyval content_type{}, content_length{}, cache_control{}, date{}, allow_origin{}, vary{}, expose{},
      credentials{}, retry_after{};
  char length[24] = {};
  char date_text[40] = {};
  time_t date_sec = 0;

  Fixed() {
    set(&content_type, "Content-Type", "application/json");
    set(&content_length, "Content-Length", length);
    set(&cache_control, "Cache-Control", "no-store");
    set(&date, "Date", date_text);
    set(&allow_origin, "Access-Control-Allow-Origin", "");
    set(&vary, "Vary", "Origin");
    // Pages read Retry-After of a 503 to wait as long as the server asks.
    set(&expose, "Access-Control-Expose-Headers", "Retry-After");
    set(&credentials, "Access-Control-Allow-Credentials", "true");
    set(&retry_after, "Retry-After", "1");
  }
  static void set(evkeyval* kv, const char* k, const char* v) noexcept {
    kv->key = const_cast<char*>(k);
    kv->value = const_cast<char*>(v);
  }
  // IMF-fixdate, formatted again only when the second changes.
  void refresh_date() noexcept {
    time_t now = time(nullptr);
    if (now == date_sec && date_text[0] != '\0') return;
    tm t;
    gmtime_r(&now, &t);
    strftime(date_text, sizeof date_text, "%a, %d %b %Y %H:%M:%S GMT", &t);
    date_sec = now;
  }
  void set_length(size_t v) noexcept {
    char* p = length + sizeof length - 1;
    *p = '\0';
    do {
      *--p = char('0' + v % 10);
      v /= 10;
    } while (v);
    content_length.value = p;
  }
};

thread_local Fixed fixed;

// The common tail of every answer: the header block, the body, counting.
void send_body(http::Request* req, int code, std::string_view body, evbuffer* shared, const char* content_type,
               const char* cache_control, const std::string* cors_origin, bool cors_credentials,
               ExtraHeaders extra, metrics::Endpoint ep) noexcept {
  // The one place that records an answer: counted by endpoint and status, and for /rt and
  // /publish its latency from the request's arrival.
  metrics::count_request(ep, code);
  if (ep == metrics::Endpoint::rt) metrics::get().rt_latency.observe_us(now_us() - req->started_us());
  else if (ep == metrics::Endpoint::publish) metrics::get().publish_latency.observe_us(now_us() - req->started_us());
  if (!req->connected()) {
    req->respond(code, nullptr, {});  // nobody to answer: just frees it
    return;
  }
  Fixed& f = fixed;
  if (code != 204) {
    Fixed::set(&f.content_type, "Content-Type", content_type);
    f.set_length(shared ? evbuffer_get_length(shared) : body.size());
    req->link_header(&f.content_type);
    req->link_header(&f.content_length);
  }
  f.cache_control.value = const_cast<char*>(cache_control);
  req->link_header(&f.cache_control);
  f.refresh_date();
  req->link_header(&f.date);
  if (cors_origin != nullptr && !cors_origin->empty()) {
    f.allow_origin.value = const_cast<char*>(cors_origin->c_str());
    req->link_header(&f.allow_origin);
    req->link_header(&f.vary);
    req->link_header(&f.expose);
    if (cors_credentials) req->link_header(&f.credentials);
  }
  // Every 503 rt sends (Redis unreachable or failing over, too many polls, out of memory)
  // tells clients when to come back: the outages it stands for are short (a reconnect, a
  // Sentinel failover of a few seconds), and a crowd retrying at once would prolong them.
  bool retry_after = code == 503;
  for (const Header& h : extra) {
    if (strcasecmp(h.name, "Retry-After") == 0) retry_after = false;
    req->add_header(h.name, h.value);
  }
  if (retry_after) req->link_header(&f.retry_after);
  req->respond(code, reason_phrase(code), code == 204 ? std::string_view() : body, code == 204 ? nullptr : shared);
}

}  // namespace

void send_json(http::Request* req, int code, std::string_view body, metrics::Endpoint ep,
               const ReplyOptions& opt, ExtraHeaders extra) noexcept {
  send_body(req, code, body, nullptr, "application/json", "no-store", opt.cors_origin, opt.cors_credentials, extra, ep);
}

void send_json_shared(http::Request* req, int code, evbuffer* body, metrics::Endpoint ep,
                      const ReplyOptions& opt) noexcept {
  send_body(req, code, {}, body, "application/json", "no-store", opt.cors_origin, opt.cors_credentials, {}, ep);
}

void send_error(http::Request* req, int code, std::string_view message, metrics::Endpoint ep,
                const ReplyOptions& opt, ExtraHeaders extra) noexcept {
  std::string body;
  try {
    body = proto::error_body(message);
  } catch (...) {
    body = "{\"error\":\"out of memory\"}";
  }
  send_json(req, code, body, ep, opt, extra);
}

void send_text(http::Request* req, int code, std::string_view body, const char* content_type,
               metrics::Endpoint ep, const char* cache_control, ExtraHeaders extra) noexcept {
  send_body(req, code, body, nullptr, content_type, cache_control, nullptr, false, extra, ep);
}

}  // namespace rt
