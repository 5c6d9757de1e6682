// A Worker is one event loop: an event_base, an evhttp server (http_server) on the shared
// listening socket (or its own, with --reuseport), its own Redis command connection and
// pub/sub hub, and its own Lua script cache. N workers on N threads share nothing but the
// listening socket, the configuration and the process-wide metrics.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "cluster_links.hpp"
#include "cluster_pubsub.hpp"
#include "config.hpp"
#include "http_reply.hpp"
#include "http_server.hpp"
#include "hub.hpp"
#include "protocol/keys.hpp"
#include "redis_link.hpp"
#include "replica_wait.hpp"
#include "scripts.hpp"
#include "sentinel.hpp"
#include "util.hpp"

namespace rt {

// Work that must run later from the event loop, outside any callback of the object itself
// (hiredis replies, connection-gone callbacks, hub fan-out). See Worker::defer.
class Deferred {
 public:
  virtual ~Deferred() = default;
  // Called once per defer() (coalesced while queued). May delete the object.
  virtual void run_deferred() noexcept = 0;

 protected:
  // True while a run_deferred() is scheduled (the object must not be freed yet).
  bool is_queued() const noexcept { return queued_; }

 private:
  friend class Worker;
  bool queued_ = false;
};

class Worker : private RedisLink::Listener, private http::Handler, private SentinelWatch::Listener,
               private ClusterLinks::Listener {
 public:
  // `listen_fd`: the listening socket; `own_fd`: it is this worker's alone (--reuseport),
  // closed when the worker stops.
  Worker(const Config& cfg, const std::string& lua_dir, int index, int listen_fd, bool own_fd);
  ~Worker() override;
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Creates the loop, the HTTP server and the Redis links. Returns false with *error.
  bool init(std::string* error);

  // Runs the loop until stop() is called; then stops accepting, answers what is open,
  // leaves the answers up to kDrainMs to be written, and returns.
  void run() noexcept;

  // Asks the loop to stop. Thread-safe and async-signal-safe (writes to a pipe).
  void stop() noexcept;

  const Config& cfg() const noexcept { return cfg_; }
  event_base* base() noexcept { return base_.get(); }
  RedisLink& cmd() noexcept { return *cmd_; }
  // The connection publishes run on: the command connection, or with
  // --publish-min-replicas a connection of their own (WAIT blocks it; see replica_wait).
  RedisLink& publish_link() noexcept { return pub_ ? *pub_ : *cmd_; }
  // With --publish-min-replicas: the WAIT of publish_link() (else NULL).
  ReplicaWait* replica_wait() noexcept { return replica_wait_.get(); }
  Hub& hub() noexcept { return *hub_; }
  // redis+cluster:// only (else NULL): the command links per master, routed by slot, and
  // the sharded pub/sub (one SSUBSCRIBE connection per master).
  ClusterLinks* cluster() noexcept { return cluster_.get(); }
  ClusterPubSub* cluster_pubsub() noexcept { return cluster_pubsub_; }
  // Sends PING to Redis (a cluster: to one master, in turn), for /healthz. The contract of
  // RedisLink::command.
  bool ping(RedisLink::ReplyFn fn, void* priv) noexcept;
  ScriptSet& scripts() noexcept { return scripts_; }
  const ReplyOptions& reply_options() const noexcept { return reply_opt_; }
  int index() const noexcept { return index_; }

  // Schedules d->run_deferred() for the next loop iteration (once, however often it is
  // deferred before that). `d` must stay alive until it runs.
  void defer(Deferred* d) noexcept;

  // The body of a 200 /healthz: {"status":"ok"}, with "master":"host:port" under Sentinel.
  std::string healthy_body() const noexcept;
  // Empty when every Redis link of this worker is up; else why not ("redis unavailable",
  // with Sentinel's view of the master).
  std::string redis_unavailable() const noexcept;

  // The Redis names of channels (--key-prefix).
  const proto::Keys& keys() const noexcept { return keys_; }

 private:
  void on_request(http::Request* req) noexcept override;
  static void on_deferred(evutil_socket_t, short, void* arg) noexcept;
  static void on_stop_pipe(evutil_socket_t fd, short, void* arg) noexcept;
  static void on_drain(evutil_socket_t, short, void* arg) noexcept;
  void shutdown() noexcept;
  void run_all_deferred() noexcept;

  void on_link_up() noexcept override;    // command link: load the scripts
  void on_link_down() noexcept override {}
  // Sentinel: the master is at host:port; every Redis link of this worker moves there.
  void on_master(const std::string& host, int port) noexcept override;
  static void on_link_trouble(void* arg, RedisLink& link, bool not_master) noexcept;
  // Cluster: a new slot map; the sharded pub/sub follows it.
  void on_cluster_map() noexcept override;
  void on_cluster_ask(uint16_t slot, const cluster::NodeAddr& to) noexcept override;

  const Config& cfg_;
  std::string lua_dir_;
  int index_;
  int listen_fd_;
  bool own_fd_;
  int stop_pipe_[2] = {-1, -1};
  uint64_t drain_deadline_ms_ = 0;
  ReplyOptions reply_opt_;
  proto::Keys keys_;
  EventBasePtr base_;
  std::unique_ptr<http::Server> http_;
  std::unique_ptr<RedisLink> cmd_;
  std::unique_ptr<RedisLink> sub_;
  std::unique_ptr<RedisLink> pub_;              // --publish-min-replicas only
  std::unique_ptr<ReplicaWait> replica_wait_;   // --publish-min-replicas only
  std::unique_ptr<SentinelWatch> sentinel_;     // redis+sentinel:// only
  std::unique_ptr<ClusterLinks> cluster_;       // redis+cluster:// only
  ClusterPubSub* cluster_pubsub_ = nullptr;     // redis+cluster:// only (owned by the hub)
  size_t ping_rotor_ = 0;
  std::unique_ptr<Hub> hub_;
  ScriptSet scripts_;
  std::vector<Deferred*> deferred_;
  EventPtr deferred_ev_;
  EventPtr stop_ev_;
  EventPtr drain_ev_;
};

}  // namespace rt
