// The command side of one worker on a Redis Cluster (--redis redis+cluster://...): one
// RedisLink per master (plus the seed nodes, kept to ask for the map), the slot map, and
// commands routed to the master of their key's slot.
//
//  - The map comes from CLUSTER SHARDS (CLUSTER SLOTS when a node does not know SHARDS) of
//    any connected node, at start, on every connection trouble, on MOVED, and every
//    kRefreshEveryMs; questions are coalesced and start at most every kMinRefreshGapMs.
//  - command(): sent to the slot's master. MOVED updates that slot at once, asks for a new
//    map and retries there; ASK sends ASKING + the command to the named node, once per
//    redirect; TRYAGAIN and CLUSTERDOWN retry after a short pause. A command whose master
//    is unknown or not connected waits (retried every kParkTickMs) until its deadline, the
//    --redis-timeout from the first try: a failover is followed without failing requests
//    that fit in it. At most kMaxRedirects redirects per command.
//  - Scripts are loaded (SCRIPT LOAD) on every node link when it comes up; run_script goes
//    through command(), so NOSCRIPT -> EVAL happens on whichever node runs it.
//
// Callbacks: the ReplyFn of a command() that returned true is called exactly once, from the
// event loop, never from inside command(): with the final reply, or NULL (connection lost
// while the command was in flight, deadline passed, shutdown). A NULL after the command was
// sent does not say whether it ran.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backoff.hpp"
#include "config.hpp"
#include "redis_link.hpp"
#include "scripts.hpp"
#include "slots.hpp"
#include "util.hpp"

namespace rt {

class ClusterLinks {
 public:
  class Listener {
   public:
    virtual ~Listener() = default;
    // A new slot map was taken (masters may have come or gone, slots moved). From the event
    // loop, from a link's reply callback: do not destroy links from here (defer).
    virtual void on_cluster_map() noexcept = 0;
    // The command link of master `addr` came up (e.g. seed sharded subscriptions again).
    virtual void on_cluster_link_up(const cluster::NodeAddr& addr) noexcept { (void)addr; }
    // A command met ASK: keys of `slot` are being migrated to `to` (publishes of the moved
    // keys run there from now on). From a link's reply callback.
    virtual void on_cluster_ask(uint16_t slot, const cluster::NodeAddr& to) noexcept {
      (void)slot;
      (void)to;
    }
  };

  // `addr` holds the seeds and the credentials; `scripts` (may be NULL) is loaded into
  // every node link that comes up.
  ClusterLinks(event_base* base, const RedisAddress& addr, uint64_t timeout_ms, std::string tag, ScriptSet* scripts);
  ~ClusterLinks();  // pending commands get NULL
  ClusterLinks(const ClusterLinks&) = delete;
  ClusterLinks& operator=(const ClusterLinks&) = delete;

  void set_listener(Listener* l) noexcept { listener_ = l; }
  void start() noexcept;
  // Closes every connection for good (worker shutdown): pending commands get NULL.
  void shut_down() noexcept;

  // Routed command (see the file comment). Returns false (fn never called) only when
  // out of memory or shut down.
  bool command(uint16_t slot, RedisLink::ReplyFn fn, void* priv, int argc, const char** argv,
               const size_t* lens) noexcept;
  bool command_for_key(std::string_view key, RedisLink::ReplyFn fn, void* priv, int argc, const char** argv,
                       const size_t* lens) noexcept {
    return command(cluster::key_slot(key), fn, priv, argc, argv, lens);
  }
  // `script` with keys[0]'s slot (every key of one call must share it: one channel).
  bool run_script(Script& script, const std::vector<std::string>& keys, const std::vector<std::string>& args,
                  RedisLink::ReplyFn fn, void* priv) noexcept;

  // Asks for a new slot map (coalesced, rate limited).
  void refresh() noexcept;
  // A node answered MOVED: `slot` is served by `to` from now on (its link is made when
  // new), and a new map is asked for.
  void learn_moved(uint16_t slot, const cluster::NodeAddr& to) noexcept;

  // The slot map as last taken (masters() empty until the first one).
  const cluster::SlotMap& map() const noexcept { return map_; }
  uint64_t map_version() const noexcept { return map_version_; }
  // The connected master serving `slot` (NULL: unknown or not connected).
  RedisLink* link_for_slot(uint16_t slot) noexcept;
  // Every slot served by a connected master.
  bool ready() const noexcept;
  // For /healthz and logs: masters up, slots covered, or what is missing.
  std::string describe() const;

 private:
  struct Node;
  struct Call;
  struct MapCall;

  Node* node(const cluster::NodeAddr& a) noexcept;        // NULL when there is none
  Node* ensure_node(const cluster::NodeAddr& a) noexcept;  // made and started when new
  void dispatch(Call* c) noexcept;
  void park(Call* c) noexcept;
  void finish(Call* c, redisReply* r) noexcept;
  static void on_reply(redisReply* r, void* priv) noexcept;
  static void on_map_reply(redisReply* r, void* priv) noexcept;
  static void on_timer(evutil_socket_t, short, void* arg) noexcept;
  static void on_park_tick(evutil_socket_t, short, void* arg) noexcept;
  static void on_reap(evutil_socket_t, short, void* arg) noexcept;
  static void on_trouble(void* arg, RedisLink& link, bool not_master) noexcept;
  void start_refresh() noexcept;
  bool ask_next() noexcept;
  void take_map(cluster::SlotMap&& m, const std::string& from) noexcept;
  void node_up(Node& n) noexcept;

  event_base* base_;
  RedisAddress addr_;  // credentials; host/port unused
  uint64_t timeout_ms_;
  std::string tag_;
  ScriptSet* scripts_;
  Listener* listener_ = nullptr;
  std::vector<cluster::NodeAddr> seeds_;
  std::vector<std::unique_ptr<Node>> nodes_;     // seeds and masters, one link each
  std::vector<std::unique_ptr<Node>> retired_;   // freed from the next loop turn (on_reap)
  cluster::SlotMap map_;
  std::vector<Node*> slot_node_;                 // per master index of map_: its node
  uint64_t map_version_ = 0;
  bool stopped_ = false;
  bool asking_ = false;       // a map question is in flight
  bool again_ = false;        // refresh() came meanwhile: ask once more after it
  bool timer_pending_ = false;
  size_t ask_from_ = 0;       // the next node to ask (rotates)
  size_t asked_in_round_ = 0;
  uint64_t round_ = 0;
  uint64_t last_round_ms_ = 0;
  Backoff backoff_;
  std::vector<Call*> parked_;
  EventPtr timer_;     // refresh rate limit / backoff, and the periodic refresh
  EventPtr park_ev_;   // retries parked commands
  EventPtr reap_ev_;   // frees retired nodes
  EventPtr periodic_ev_;
};

}  // namespace rt
