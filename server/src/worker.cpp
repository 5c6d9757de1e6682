#include "worker.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "cluster_commands.hpp"
#include "http_reply.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "protocol/protocol.hpp"
#include "router.hpp"

namespace rt {

namespace {
constexpr uint64_t kDrainMs = 2000;  // at a stop: time left to write the last answers
}  // namespace

Worker::Worker(const Config& cfg, const std::string& lua_dir, int index, int listen_fd, bool own_fd)
    : cfg_(cfg), lua_dir_(lua_dir), index_(index), listen_fd_(listen_fd), own_fd_(own_fd), keys_(cfg.key_prefix) {
  reply_opt_.cors_origin = &cfg_.cors_origin;
  reply_opt_.cors_credentials = cfg_.cors_credentials;
}

Worker::~Worker() {
  // Order: the sentinel watcher (it moves the connections), the connections (their
  // callbacks may still reach the hub and the replica wait), then the hub, then the HTTP
  // server, then the loop.
  sentinel_.reset();
  // Cluster: the links first (their last callbacks, NULL replies, may reach the hub's
  // sharded pub/sub and mirrors).
  cluster_.reset();
  cmd_.reset();
  sub_.reset();
  pub_.reset();
  replica_wait_.reset();
  hub_.reset();
  http_.reset();
  deferred_ev_.reset();
  stop_ev_.reset();
  drain_ev_.reset();
  base_.reset();
  for (int fd : stop_pipe_)
    if (fd >= 0) close(fd);
}

bool Worker::init(std::string* error) {
  if (!scripts_.load_files(lua_dir_, error)) return false;
  // The epoll change list: evhttp turns a connection's read and write interest on and off
  // several times per request (and we turn reading back on for drop detection); the list
  // folds those into at most one epoll_ctl per descriptor and loop turn. (Its caveat, dup()ed
  // descriptors in one base, does not apply: every descriptor here is its own socket.)
  event_config* ec = event_config_new();
  if (ec) event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
  base_.reset(ec ? event_base_new_with_config(ec) : event_base_new());
  if (ec) event_config_free(ec);
  if (!base_) {
    *error = "event_base_new failed";
    return false;
  }
  http::ServerOptions ho;
  // A head may hold a URL up to --max-url (longer ones get our 414) plus ordinary headers;
  // beyond that evhttp answers 400 itself.
  ho.max_head = cfg_.max_url + (16u << 10) > (64u << 10) ? cfg_.max_url + (16u << 10) : (64u << 10);
  ho.max_body = cfg_.max_body;
  // By default a keep-alive connection may idle a poll timeout plus a minute between
  // requests, so a client's next poll never races the close.
  ho.idle_timeout_s = cfg_.idle_timeout_s ? cfg_.idle_timeout_s : uint32_t(cfg_.poll_timeout_s) + 60;
  ho.request_timeout_s = cfg_.request_timeout_s;
  ho.max_connections = connection_share(cfg_.max_connections, cfg_.threads, index_);
  ho.listener_sharers = own_fd_ ? 1 : size_t(cfg_.threads);
  http_ = std::make_unique<http::Server>(base_.get(), listen_fd_, own_fd_, ho, static_cast<http::Handler*>(this));
  if (!http_->start()) {
    *error = "cannot start the HTTP server (evhttp)";
    return false;
  }
  deferred_ev_.reset(event_new(base_.get(), -1, 0, on_deferred, this));
  if (pipe2(stop_pipe_, O_NONBLOCK | O_CLOEXEC) != 0) {
    *error = std::string("pipe2: ") + strerror(errno);
    return false;
  }
  stop_ev_.reset(event_new(base_.get(), stop_pipe_[0], EV_READ, on_stop_pipe, this));
  event_add(stop_ev_.get(), nullptr);
  drain_ev_.reset(event_new(base_.get(), -1, EV_PERSIST, on_drain, this));

  uint64_t timeout_ms = uint64_t(cfg_.redis_timeout_s * 1000.0 + 0.5);
  std::string tag = "w" + std::to_string(index_);
  cmd_ = std::make_unique<RedisLink>(base_.get(), cfg_.redis, timeout_ms, tag + "/command");
  sub_ = std::make_unique<RedisLink>(base_.get(), cfg_.redis, timeout_ms, tag + "/pubsub");
  std::string hub_tag = std::to_string(getpid()) + "." + std::to_string(index_);
  if (cfg_.redis.via_cluster()) {
    // The per-master links come from the slot map (the standalone links above have no
    // address and stay down): the hub on the sharded pub/sub, its mirrors' commands
    // routed by slot.
    cluster_ = std::make_unique<ClusterLinks>(base_.get(), cfg_.redis, timeout_ms, tag, &scripts_);
    auto ps = std::make_unique<ClusterPubSub>(base_.get(), *cluster_, cfg_.redis, keys_, timeout_ms, hub_tag);
    cluster_pubsub_ = ps.get();
    hub_ = std::make_unique<Hub>(base_.get(), std::move(ps), std::make_unique<ClusterCommands>(*cluster_),
                                 &scripts_, cfg_.key_prefix);
  } else {
    hub_ = std::make_unique<Hub>(base_.get(), *sub_, cmd_.get(), &scripts_, cfg_.key_prefix, timeout_ms, hub_tag);
  }
  cmd_->set_listener(this);
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
  if (cluster_) {
    cluster_->set_listener(static_cast<ClusterLinks::Listener*>(this));
    cluster_->start();
    return true;
  }
  cmd_->start();
  sub_->start();
  if (pub_) pub_->start();
  return true;
}

void Worker::on_cluster_map() noexcept {
  if (cluster_pubsub_) cluster_pubsub_->on_cluster_map();
}

void Worker::on_cluster_ask(uint16_t slot, const cluster::NodeAddr&) noexcept {
  if (cluster_pubsub_) cluster_pubsub_->on_cluster_ask(slot);
}

bool Worker::ping(RedisLink::ReplyFn fn, void* priv) noexcept {
  const char* argv[] = {"PING"};
  size_t lens[] = {4};
  if (!cluster_) return cmd_->command(fn, priv, 1, argv, lens);
  // One master per call, in turn: the first slot each serves.
  const cluster::SlotMap& m = cluster_->map();
  if (m.masters.empty()) return false;
  size_t want = ping_rotor_++ % m.masters.size();
  for (uint16_t s = 0; s < cluster::kSlots; s++)
    if (m.owner[s] == want) return cluster_->command(s, fn, priv, 1, argv, lens);
  return false;
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
  http_->stop_accepting();  // from now on every answer also closes its connection
  // Failing the Redis links answers every open request (503) through the usual paths.
  if (sentinel_) sentinel_->shut_down();
  if (cluster_pubsub_) cluster_pubsub_->shut_down();
  if (cluster_) cluster_->shut_down();
  cmd_->shut_down();
  sub_->shut_down();
  if (pub_) pub_->shut_down();
  run_all_deferred();
  // Let the loop write those answers out, then close what is left (on_drain).
  drain_deadline_ms_ = now_ms() + kDrainMs;
  timeval tv = ms_to_tv(20);
  if (!drain_ev_ || event_add(drain_ev_.get(), &tv) != 0) on_drain(-1, 0, this);
}

void Worker::on_drain(evutil_socket_t, short, void* arg) noexcept {
  auto* w = static_cast<Worker*>(arg);
  if (w->http_->busy() > 0 && now_ms() < w->drain_deadline_ms_) return;
  if (w->drain_ev_) event_del(w->drain_ev_.get());
  w->http_->close_all();  // idle keep-alive connections; anything still unwritten
  w->run_all_deferred();  // requests detached just now (their polls free themselves)
  event_base_loopexit(w->base_.get(), nullptr);
}

void Worker::run_all_deferred() noexcept {
  for (int i = 0; i < 100 && !deferred_.empty(); i++) on_deferred(-1, 0, this);
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

void Worker::on_request(http::Request* req) noexcept { route_request(*this, req); }

std::string Worker::redis_unavailable() const noexcept {
  if (cluster_) {
    if (cluster_->ready() && cluster_pubsub_->up()) return {};
    try {
      return "redis unavailable (cluster: " + cluster_->describe() + "; " + cluster_pubsub_->describe() + ")";
    } catch (...) {
      return "redis unavailable";
    }
  }
  if (cmd_->up() && hub_->up() && (!pub_ || pub_->up())) return {};
  std::string why = "redis unavailable";
  try {
    // Sentinel: whether the master is known (connecting to it) or being looked for.
    if (sentinel_) why += sentinel_->known() ? " (connecting to " + sentinel_->describe() + ")"
                                             : " (" + sentinel_->describe() + ")";
  } catch (...) {
  }
  return why;
}

std::string Worker::healthy_body() const noexcept {
  std::string body = "{\"status\":\"ok\"}";
  if (cluster_) {
    try {
      body = "{\"status\":\"ok\",\"masters\":" + std::to_string(cluster_->map().masters.size()) + "}";
    } catch (...) {
    }
    return body;
  }
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

}  // namespace rt
