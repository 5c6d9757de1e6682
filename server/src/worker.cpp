#include "worker.hpp"

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "http_reply.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "poll.hpp"
#include "protocol/protocol.hpp"
#include "publish.hpp"
#include "static_files.hpp"

namespace rt {

namespace {

// One GET /healthz waiting for PING. Freed in its reply callback (called exactly once).
struct HealthCall {
  Worker* w;
  evhttp_request* req;
};

void on_pong(redisReply* r, void* priv) noexcept {
  auto* call = static_cast<HealthCall*>(priv);
  bool ok = r != nullptr && (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_STRING) && call->w->hub().up();
  if (ok)
    send_json(call->req, 200, "{\"status\":\"ok\"}", metrics::Endpoint::healthz, call->w->reply_options());
  else
    send_error(call->req, 503, "redis unavailable", metrics::Endpoint::healthz, call->w->reply_options());
  delete call;
}

}  // namespace

Worker::Worker(const Config& cfg, const std::string& lua_dir, int index, int listen_fd)
    : cfg_(cfg), lua_dir_(lua_dir), index_(index), listen_fd_(listen_fd) {
  reply_opt_.cors_origin = &cfg_.cors_origin;
}

Worker::~Worker() {
  // Order: connections first (their callbacks may still reach the hub), then the hub, then
  // the HTTP server, then the loop.
  cmd_.reset();
  sub_.reset();
  hub_.reset();
  http_.reset();
  deferred_ev_.reset();
  stop_ev_.reset();
  base_.reset();
  for (int fd : stop_pipe_)
    if (fd >= 0) close(fd);
}

std::string Worker::key(const std::string& channel, const char* suffix) const {
  std::string k;
  k.reserve(cfg_.key_prefix.size() + channel.size() + 16);
  k += cfg_.key_prefix;
  k += '{';
  k += channel;
  k += "}:";
  k += suffix;
  return k;
}

bool Worker::init(std::string* error) {
  if (!scripts_.load_files(lua_dir_, error)) return false;
  // epoll change list: evhttp toggles read/write interest several times per request; the
  // change list folds those into at most one epoll_ctl per fd and loop turn. (Its caveat,
  // dup()ed fds in one base, does not apply: every fd here is its own socket.)
  event_config* ec = event_config_new();
  if (ec) event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
  base_.reset(ec ? event_base_new_with_config(ec) : event_base_new());
  if (ec) event_config_free(ec);
  if (!base_) {
    *error = "event_base_new failed";
    return false;
  }
  http_.reset(evhttp_new(base_.get()));
  if (!http_) {
    *error = "evhttp_new failed";
    return false;
  }
  // Requests with a URL over --max-url still parse (then get our JSON 414) up to a request
  // head of 16 x --max-url (at least 1 MiB); beyond that evhttp refuses them itself (400). Bodies up to 16 x --max-body (at least 1 MiB) are read and
  // get our JSON 413; larger ones get evhttp's own 413.
  size_t head_limit = cfg_.max_url * 16 > (1u << 20) ? cfg_.max_url * 16 : (1u << 20);
  evhttp_set_max_headers_size(http_.get(), ev_ssize_t(head_limit));
  size_t body_limit = cfg_.max_body * 16 > (1u << 20) ? cfg_.max_body * 16 : (1u << 20);
  evhttp_set_max_body_size(http_.get(), ev_ssize_t(body_limit));
  evhttp_set_timeout(http_.get(), int(cfg_.poll_timeout_s) + 60);
  evhttp_set_allowed_methods(http_.get(), EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                                              EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                              EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
  evhttp_set_gencb(http_.get(), on_request, this);
  if (evhttp_accept_socket(http_.get(), listen_fd_) != 0) {
    *error = "evhttp_accept_socket failed";
    return false;
  }
  deferred_ev_.reset(event_new(base_.get(), -1, 0, on_deferred, this));
  if (pipe2(stop_pipe_, O_NONBLOCK | O_CLOEXEC) != 0) {
    *error = std::string("pipe2: ") + strerror(errno);
    return false;
  }
  stop_ev_.reset(event_new(base_.get(), stop_pipe_[0], EV_READ, on_stop_pipe, this));
  event_add(stop_ev_.get(), nullptr);

  uint64_t timeout_ms = uint64_t(cfg_.redis_timeout_s * 1000.0 + 0.5);
  std::string tag = "w" + std::to_string(index_);
  cmd_ = std::make_unique<RedisLink>(base_.get(), cfg_.redis, timeout_ms, tag + "/command");
  sub_ = std::make_unique<RedisLink>(base_.get(), cfg_.redis, timeout_ms, tag + "/pubsub");
  hub_ = std::make_unique<Hub>(base_.get(), *sub_, cmd_.get(), &scripts_, cfg_.key_prefix, timeout_ms,
                               std::to_string(getpid()) + "." + std::to_string(index_));
  cmd_->set_listener(this);
  sub_->set_listener(hub_.get());
  cmd_->start();
  sub_->start();
  return true;
}

void Worker::on_link_up() noexcept { scripts_.load_into(*cmd_); }

void Worker::run() noexcept {
  event_base_dispatch(base_.get());
}

void Worker::stop() noexcept {
  char c = 1;
  ssize_t n = write(stop_pipe_[1], &c, 1);
  (void)n;
}

void Worker::on_stop_pipe(evutil_socket_t, short, void* arg) noexcept {
  static_cast<Worker*>(arg)->shutdown();
}

void Worker::shutdown() noexcept {
  RT_LOG(debug, "worker stopping").kv("worker", index_);
  // Failing the Redis links answers every open request (503) through the usual paths.
  cmd_->shut_down();
  sub_->shut_down();
  for (int i = 0; i < 100 && !deferred_.empty(); i++) on_deferred(-1, 0, this);
  http_.reset();  // closes the listener and every client connection
  event_base_loopexit(base_.get(), nullptr);
}

void Worker::defer(Deferred* d) noexcept {
  if (d->queued_) return;
  d->queued_ = true;
  try {
    deferred_.push_back(d);
  } catch (...) {
    d->queued_ = false;
    return;
  }
  event_active(deferred_ev_.get(), EV_TIMEOUT, 1);
}

void Worker::on_deferred(evutil_socket_t, short, void* arg) noexcept {
  auto* self = static_cast<Worker*>(arg);
  std::vector<Deferred*> batch;
  batch.swap(self->deferred_);
  for (Deferred* d : batch) {
    d->queued_ = false;
    d->run_deferred();  // may free d; may defer others (they run in the next batch)
  }
}

void Worker::on_request(evhttp_request* req, void* arg) noexcept {
  static_cast<Worker*>(arg)->route(req);
}

void Worker::route(evhttp_request* req) noexcept {
  uint64_t started_us = now_us();
  const char* uri = evhttp_request_get_uri(req);
  const evhttp_uri* parsed = evhttp_request_get_evhttp_uri(req);
  const char* path = parsed ? evhttp_uri_get_path(parsed) : nullptr;
  std::string_view p = path ? path : "";
  metrics::Endpoint ep = p == "/rt"        ? metrics::Endpoint::rt
                         : p == "/publish" ? metrics::Endpoint::publish
                         : p == "/healthz" ? metrics::Endpoint::healthz
                         : p == "/metrics" ? metrics::Endpoint::metrics
                         : cfg_.web_dir.empty() ? metrics::Endpoint::other
                                                : metrics::Endpoint::web;
  if (uri == nullptr || strlen(uri) > cfg_.max_url) {
    send_error(req, 414, "URL longer than " + std::to_string(cfg_.max_url) + " bytes", ep, reply_opt_);
    return;
  }
  if (path == nullptr) {
    send_error(req, 400, "bad request URL", ep, reply_opt_);
    return;
  }
  evhttp_cmd_type method = evhttp_request_get_command(req);
  const char* query = evhttp_uri_get_query(parsed);
  // Answers 405 with Allow when `method` is not `allowed`; CORS preflights (OPTIONS) of the
  // JSON endpoints get 204 when --cors-origin is set. Returns true when it answered.
  auto refuse_method = [&](evhttp_cmd_type allowed, const char* allow, const char* extra_headers) {
    if (method == allowed) return false;
    evkeyvalq* h = evhttp_request_get_output_headers(req);
    if (method == EVHTTP_REQ_OPTIONS && !cfg_.cors_origin.empty() && ep != metrics::Endpoint::web) {
      evhttp_add_header(h, "Access-Control-Allow-Methods", allow);
      if (extra_headers) evhttp_add_header(h, "Access-Control-Allow-Headers", extra_headers);
      evhttp_add_header(h, "Access-Control-Max-Age", "86400");
      send_json(req, 204, "", ep, reply_opt_);
      return true;
    }
    evhttp_add_header(h, "Allow", allow);
    send_error(req, 405, std::string("method not allowed: use ") + allow + " " + std::string(p), ep, reply_opt_);
    return true;
  };
  switch (ep) {
    case metrics::Endpoint::rt: {
      if (refuse_method(EVHTTP_REQ_GET, "GET", nullptr)) return;
      std::vector<proto::ChannelPos> chans;
      std::string detail;
      if (proto::parse_rt_query(query ? query : "", cfg_.max_channels, &chans, &detail) != proto::QueryError::none) {
        send_error(req, 400, detail, ep, reply_opt_);
        metrics::get().rt_latency.observe_us(now_us() - started_us);
        return;
      }
      Poll::start(*this, req, std::move(chans), started_us);
      return;
    }
    case metrics::Endpoint::publish:
      if (refuse_method(EVHTTP_REQ_POST, "POST", "Authorization, Content-Type")) return;
      handle_publish(*this, req, query, started_us);
      return;
    case metrics::Endpoint::healthz:
      if (refuse_method(EVHTTP_REQ_GET, "GET", nullptr)) return;
      handle_healthz(req);
      return;
    case metrics::Endpoint::metrics:
      if (refuse_method(EVHTTP_REQ_GET, "GET", nullptr)) return;
      handle_metrics(req);
      return;
    case metrics::Endpoint::web:
      if (refuse_method(EVHTTP_REQ_GET, "GET", nullptr)) return;
      serve_static(cfg_.web_dir, req, p);
      return;
    case metrics::Endpoint::other:
      send_error(req, 404, "not found", ep, reply_opt_);
      return;
  }
}

void Worker::handle_healthz(evhttp_request* req) noexcept {
  if (!cmd_->up() || !hub_->up()) {
    send_error(req, 503, "redis unavailable", metrics::Endpoint::healthz, reply_opt_);
    return;
  }
  auto* call = new (std::nothrow) HealthCall{this, req};
  const char* argv[] = {"PING"};
  size_t lens[] = {4};
  // The link's command timeout bounds the wait (a hung Redis is dropped, the reply is NULL).
  if (call == nullptr || !cmd_->command(on_pong, call, 1, argv, lens)) {
    delete call;
    send_error(req, 503, "redis unavailable", metrics::Endpoint::healthz, reply_opt_);
  }
}

void Worker::handle_metrics(evhttp_request* req) noexcept {
  std::string body;
  try {
    body = metrics::render();
  } catch (...) {
    send_error(req, 503, "out of memory", metrics::Endpoint::metrics, reply_opt_);
    return;
  }
  send_text(req, 200, body, "text/plain; version=0.0.4; charset=utf-8", metrics::Endpoint::metrics);
}

}  // namespace rt
