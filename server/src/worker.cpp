#include "worker.hpp"

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
  http::Request* req;
};

void on_pong(redisReply* r, void* priv) noexcept {
  auto* call = static_cast<HealthCall*>(priv);
  bool ok = r != nullptr && (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_STRING) && call->w->hub().up();
  if (ok)
    send_json(call->req, 200, call->w->healthy_body(), metrics::Endpoint::healthz, call->w->reply_options());
  else
    send_error(call->req, 503, "redis unavailable", metrics::Endpoint::healthz, call->w->reply_options());
  delete call;
}

}  // namespace

Worker::Worker(const Config& cfg, const std::string& lua_dir, int index, int listen_fd)
    : cfg_(cfg), lua_dir_(lua_dir), index_(index), listen_fd_(listen_fd) {
  reply_opt_.cors_origin = &cfg_.cors_origin;
  reply_opt_.cors_credentials = cfg_.cors_credentials;
}

Worker::~Worker() {
  // Order: the sentinel watcher (it moves the connections), the connections (their
  // callbacks may still reach the hub and the replica wait), then the hub, then the HTTP
  // server, then the loop.
  sentinel_.reset();
  cmd_.reset();
  sub_.reset();
  pub_.reset();
  replica_wait_.reset();
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
  // No epoll change list: the HTTP layer adds a connection's read event once and never
  // toggles it, so there is nothing to fold (and a closed fd reused in the same loop turn
  // must not have its changes merged with the old one's).
  base_.reset(event_base_new());
  if (!base_) {
    *error = "event_base_new failed";
    return false;
  }
  http::ServerOptions ho;
  ho.limits.max_url = cfg_.max_url;
  // A head may hold a URL up to --max-url plus ordinary headers.
  ho.limits.max_head = cfg_.max_url + (16u << 10) > (64u << 10) ? cfg_.max_url + (16u << 10) : (64u << 10);
  ho.limits.max_body = cfg_.max_body;
  // By default a keep-alive connection may idle a poll timeout plus a minute between
  // requests (what evhttp's timeout was), so a client's next poll never races the close.
  ho.idle_timeout_s = cfg_.idle_timeout_s ? cfg_.idle_timeout_s : uint32_t(cfg_.poll_timeout_s) + 60;
  ho.request_timeout_s = cfg_.request_timeout_s;
  ho.write_timeout_s = cfg_.request_timeout_s;
  ho.send_error = on_server_error;
  ho.send_error_ctx = this;
  http_ = std::make_unique<http::Server>(base_.get(), listen_fd_, ho, static_cast<http::Handler*>(this));
  if (!http_->start()) {
    *error = "cannot start the HTTP server (libevent)";
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
  if (cfg_.publish_min_replicas > 0) {
    pub_ = std::make_unique<RedisLink>(base_.get(), cfg_.redis, timeout_ms, tag + "/publish");
    // WAIT must answer before the link's command timeout drops the connection.
    uint64_t wait_ms = timeout_ms / 2 > 0 ? timeout_ms / 2 : 1;
    replica_wait_ = std::make_unique<ReplicaWait>(*pub_, scripts_, cfg_.publish_min_replicas, wait_ms);
    pub_->set_listener(replica_wait_.get());
  }
  if (cfg_.redis.via_sentinel()) {
    // The links wait for the master's address; each one checks ROLE on every connect.
    for (RedisLink* l : {cmd_.get(), sub_.get(), pub_.get()}) {
      if (l == nullptr) continue;
      l->set_require_master(true);
      l->set_trouble_hook(on_link_trouble, this);
    }
    sentinel_ = std::make_unique<SentinelWatch>(base_.get(), cfg_.redis, timeout_ms, tag,
                                                static_cast<SentinelWatch::Listener*>(this));
    sentinel_->start();
  }
  cmd_->start();
  sub_->start();
  if (pub_) pub_->start();
  return true;
}

void Worker::on_link_up() noexcept { scripts_.load_into(*cmd_); }

void Worker::on_master(const std::string& host, int port) noexcept {
  // Every open poll and publish on the old connections is answered 503 (Retry-After), and
  // the new connections take requests once ROLE says master.
  for (RedisLink* l : {cmd_.get(), sub_.get(), pub_.get()})
    if (l) l->set_address(host, port);
}

void Worker::on_link_trouble(void* arg, RedisLink& link, bool not_master) noexcept {
  auto* self = static_cast<Worker*>(arg);
  if (self->sentinel_) self->sentinel_->trouble(link, not_master);
}

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
  if (sentinel_) sentinel_->shut_down();
  cmd_->shut_down();
  sub_->shut_down();
  if (pub_) pub_->shut_down();
  for (int i = 0; i < 100 && !deferred_.empty(); i++) on_deferred(-1, 0, this);
  http_->close_all();  // stops accepting, closes every client connection
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

void Worker::on_server_error(http::Request* req, int status, std::string_view message, void* ctx) noexcept {
  auto* w = static_cast<Worker*>(ctx);
  metrics::Endpoint ep = req->path().empty() ? metrics::Endpoint::other : endpoint_for_path(req->path(), !w->cfg_.web_dir.empty());
  send_error(req, status, message, ep, w->reply_opt_);
}

void Worker::route(http::Request* req) noexcept {
  uint64_t started_us = req->started_us();
  std::string_view p = req->path();
  metrics::Endpoint ep = endpoint_for_path(p, !cfg_.web_dir.empty());
  if (req->target().size() > cfg_.max_url) {
    send_error(req, 414, "URL longer than " + std::to_string(cfg_.max_url) + " bytes", ep, reply_opt_);
    return;
  }
  http::Method method = req->method();
  std::string_view query = req->query();
  // Answers 405 with Allow when `method` is not `allowed`; CORS preflights (OPTIONS) of the
  // JSON endpoints get 204 when --cors-origin is set. Returns true when it answered.
  auto refuse_method = [&](http::Method allowed, const char* allow, const char* extra_headers) {
    if (method == allowed) return false;
    std::string h;
    try {
      if (method == http::Method::options && !cfg_.cors_origin.empty() && ep != metrics::Endpoint::web) {
        h = std::string("Access-Control-Allow-Methods: ") + allow + "\r\n";
        if (extra_headers) h += std::string("Access-Control-Allow-Headers: ") + extra_headers + "\r\n";
        h += "Access-Control-Max-Age: 86400\r\n";
        send_json(req, 204, "", ep, reply_opt_, h);
        return true;
      }
      h = std::string("Allow: ") + allow + "\r\n";
      send_error(req, 405, std::string("method not allowed: use ") + allow + " " + std::string(p), ep, reply_opt_, h);
    } catch (...) {
      send_error(req, 503, "out of memory", ep, reply_opt_);
    }
    return true;
  };
  switch (ep) {
    case metrics::Endpoint::rt: {
      if (refuse_method(http::Method::get, "GET", nullptr)) return;
      std::vector<proto::ChannelPos> chans;
      std::string detail;
      if (proto::parse_rt_query(query, cfg_.max_channels, &chans, &detail) != proto::QueryError::none) {
        send_error(req, 400, detail, ep, reply_opt_);
        metrics::get().rt_latency.observe_us(now_us() - started_us);
        return;
      }
      Poll::start(*this, req, std::move(chans), started_us);
      return;
    }
    case metrics::Endpoint::publish:
      if (refuse_method(http::Method::post, "POST", "Authorization, Content-Type")) return;
      handle_publish(*this, req, query, started_us);
      return;
    case metrics::Endpoint::healthz:
      if (refuse_method(http::Method::get, "GET", nullptr)) return;
      handle_healthz(req);
      return;
    case metrics::Endpoint::metrics:
      if (refuse_method(http::Method::get, "GET", nullptr)) return;
      handle_metrics(req);
      return;
    case metrics::Endpoint::web:
      if (refuse_method(http::Method::get, "GET", nullptr)) return;
      serve_static(cfg_.web_dir, req, p);
      return;
    case metrics::Endpoint::other:
      send_error(req, 404, "not found", ep, reply_opt_);
      return;
  }
}

void Worker::handle_healthz(http::Request* req) noexcept {
  if (!cmd_->up() || !hub_->up() || (pub_ && !pub_->up())) {
    std::string why = "redis unavailable";
    try {
      // Sentinel: whether the master is known (connecting to it) or being looked for.
      if (sentinel_) why += sentinel_->known() ? " (connecting to " + sentinel_->describe() + ")"
                                               : " (" + sentinel_->describe() + ")";
    } catch (...) {
    }
    send_error(req, 503, why, metrics::Endpoint::healthz, reply_opt_);
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

std::string Worker::healthy_body() const noexcept {
  std::string body = "{\"status\":\"ok\"}";
  if (!sentinel_) return body;
  // Sentinel: which server this worker is on (host names come from the sentinels: escaped).
  JsonPtr j(json_pack("{s:s, s:s}", "status", "ok", "master",
                      (cmd_->host() + ":" + std::to_string(cmd_->port())).c_str()));
  char* text = j ? json_dumps(j.get(), JSON_COMPACT) : nullptr;
  if (text) {
    try {
      body = text;
    } catch (...) {
    }
    free(text);
  }
  return body;
}

void Worker::handle_metrics(http::Request* req) noexcept {
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
