#include "endpoints.hpp"

#include <new>
#include <string>
#include <vector>

#include "http_reply.hpp"
#include "metrics.hpp"
#include "poll.hpp"
#include "protocol/protocol.hpp"
#include "static_files.hpp"
#include "worker.hpp"

namespace rt {

namespace {

// One GET /healthz waiting for PING. Freed in its reply callback (called exactly once).
struct HealthCall {
  Worker* w;
  http::Request* req;
};

void on_pong(redisReply* r, void* priv) noexcept {
  auto* call = static_cast<HealthCall*>(priv);
  bool ok = r != nullptr && (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_STRING) &&
            call->w->redis_unavailable().empty();
  if (ok)
    send_json(call->req, 200, call->w->healthy_body(), metrics::Endpoint::healthz, call->w->reply_options());
  else
    send_error(call->req, 503, "redis unavailable", metrics::Endpoint::healthz, call->w->reply_options());
  delete call;
}

}  // namespace

void handle_rt(Worker& w, http::Request* req) noexcept {
  uint64_t started_us = req->started_us();
  std::vector<proto::ChannelPos> chans;
  std::string detail;
  try {
    if (proto::parse_rt_query(req->query(), w.cfg().max_channels, &chans, &detail) != proto::QueryError::none) {
      send_error(req, 400, detail, metrics::Endpoint::rt, w.reply_options());
      return;
    }
  } catch (...) {
    send_error(req, 503, "out of memory", metrics::Endpoint::rt, w.reply_options());
    return;
  }
  Poll::start(w, req, std::move(chans), started_us);
}

void handle_healthz(Worker& w, http::Request* req) noexcept {
  std::string why = w.redis_unavailable();
  if (!why.empty()) {
    send_error(req, 503, why, metrics::Endpoint::healthz, w.reply_options());
    return;
  }
  auto* call = new (std::nothrow) HealthCall{&w, req};
  // The link's command timeout bounds the wait (a hung Redis is dropped, the reply is NULL).
  if (call == nullptr || !w.ping(on_pong, call)) {
    delete call;
    send_error(req, 503, "redis unavailable", metrics::Endpoint::healthz, w.reply_options());
  }
}

void handle_metrics(Worker& w, http::Request* req) noexcept {
  std::string body;
  try {
    body = metrics::render();
  } catch (...) {
    send_error(req, 503, "out of memory", metrics::Endpoint::metrics, w.reply_options());
    return;
  }
  send_text(req, 200, body, "text/plain; version=0.0.4; charset=utf-8", metrics::Endpoint::metrics);
}

void handle_static(Worker& w, http::Request* req) noexcept { serve_static(w.cfg().web_dir, req, req->path()); }

}  // namespace rt
