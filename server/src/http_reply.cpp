#include "http_reply.hpp"

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

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
// The common tail of every answer: Content-Type, Cache-Control, body, counting.
void send_body(evhttp_request* req, int code, std::string_view body, const char* content_type,
               metrics::Endpoint ep) noexcept {
  evkeyvalq* h = evhttp_request_get_output_headers(req);
  evhttp_add_header(h, "Content-Type", content_type);
  evhttp_add_header(h, "Cache-Control", "no-store");
  evbuffer* buf = evbuffer_new();
  if (buf) evbuffer_add(buf, body.data(), body.size());
  evhttp_send_reply(req, code, reason_phrase(code), buf);
  if (buf) evbuffer_free(buf);
  metrics::count_request(ep, code);
}
}  // namespace

void send_json(evhttp_request* req, int code, std::string_view body, metrics::Endpoint ep,
               const ReplyOptions& opt) noexcept {
  if (opt.cors_origin && !opt.cors_origin->empty()) {
    evkeyvalq* h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Access-Control-Allow-Origin", opt.cors_origin->c_str());
    evhttp_add_header(h, "Vary", "Origin");
  }
  send_body(req, code, body, "application/json", ep);
}

void send_error(evhttp_request* req, int code, std::string_view message, metrics::Endpoint ep,
                const ReplyOptions& opt) noexcept {
  std::string body;
  try {
    body = proto::error_body(message);
  } catch (...) {
    body = "{\"error\":\"out of memory\"}";
  }
  send_json(req, code, body, ep, opt);
}

void send_text(evhttp_request* req, int code, std::string_view body, const char* content_type,
               metrics::Endpoint ep) noexcept {
  send_body(req, code, body, content_type, ep);
}

}  // namespace rt
