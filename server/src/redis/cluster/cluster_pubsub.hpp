// Sharded pub/sub of one worker on a Redis Cluster: one ShardSubscriber (SSUBSCRIBE
// connection) per master, each channel subscribed on the master owning its slot (the
// channel's hash tag), messages fanned out in process by the sink (the channel registry).
// It speaks in rt channel names like the standalone pub/sub connection; the wire names
// come from protocol/keys.hpp.
//
// Contract: PubSubConnection's (redis/pubsub_connection.hpp), with channel-wise loss:
//  - subscribe(ch): `ch` is not subscribed, or unsubscribe(ch) was called since. false when
//    it cannot be sent (no master known or connected for its slot). Otherwise exactly one
//    of Sink::on_subscribed(ch) / Sink::on_channel_lost(ch) / Sink::on_lost() follows.
//  - unsubscribe(ch): only after on_subscribed(ch). false when it cannot be sent.
//  - Sink::on_channel_lost(ch): the subscription of `ch` is gone and messages may have been
//    missed: its slot moved (the server's own `sunsubscribe`, or a new map names another
//    master), its master's connection was lost, or its SSUBSCRIBE was refused (MOVED:
//    the map is updated at once). The sink forgets the channel (its polls answer 503 and
//    the clients retry: the next poll subscribes on the new owner).
//    A slot being migrated is the one case Redis does not tell subscribers about: once a
//    channel's keys moved, its publishes run on the importing node (ASK) and SPUBLISH there,
//    where no subscription of ours is (a connection in pub/sub mode cannot send ASKING).
//    So an ASK seen by any command of this worker (a publish, a poll's read, a mirror's
//    verification) marks the slot as migrating for kMigratingMs: its channels are lost, and
//    subscribe() refuses channels of the slot while it is marked (their polls answer 503
//    and retry) until the new map names the new owner.
//  - Sink::on_lost(): every subscription is gone (drop(), shutdown).
//  - fence(w): w->on_fence(ok) once every message published before the call, on any shard,
//    has been delivered: a sequence number SPUBLISHed to a sentinel channel of every shard
//    (a name whose slot that master serves; not a valid rt channel name), coming back on
//    each shard's connection in publish order. ok false when some shard cannot tell.
//  - Sink callbacks never run from inside subscribe / unsubscribe / fence / cancel_fence /
//    drop, and must not destroy this object.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "cluster_links.hpp"
#include "protocol/keys.hpp"
#include "pubsub_connection.hpp"
#include "shard_subscriber.hpp"
#include "util.hpp"

namespace rt {

class ClusterPubSub final : public PubSubConnection, private ShardSubscriber::Listener {
 public:
  using Sink = PubSubConnection::Sink;

  // `links` is the worker's command side: its pending callbacks (fences) reach this object,
  // so it is destroyed or shut down first. Call on_cluster_map() and on_cluster_ask() from
  // its listener.
  ClusterPubSub(event_base* base, ClusterLinks& links, const RedisAddress& addr, const proto::Keys& keys,
                uint64_t timeout_ms, std::string tag);
  ~ClusterPubSub() override;

  void set_sink(Sink* sink) noexcept override { sink_ = sink; }
  // Some shard can take subscriptions.
  bool connected() const noexcept override;
  // Every master's connection is up with its sentinel confirmed (the health check).
  bool up() const noexcept override;
  bool subscribe(const std::string& channel) noexcept override;
  bool unsubscribe(const std::string& channel) noexcept override;
  bool fence(FenceWaiter* w) override;
  void cancel_fence(FenceWaiter* w) noexcept override;
  void drop(const char* reason) noexcept override;
  // Closes every connection for good (worker shutdown): every channel is lost.
  void shut_down() noexcept;

  // From the ClusterLinks listener: a new slot map (connections follow the masters,
  // channels whose slot moved are lost), a master's command link is up (fences can go).
  void on_cluster_map() noexcept;
  // From the ClusterLinks listener: a command met ASK for `slot` (see above).
  void on_cluster_ask(uint16_t slot) noexcept;
  static constexpr uint64_t kMigratingMs = 1000;

  size_t shard_count() const noexcept { return shards_.size(); }
  size_t wire_count() const noexcept { return wire_.size(); }
  std::string describe() const;

 private:
  struct Shard;
  enum class Wire { subscribing, subscribed, leaving, resubscribe };
  struct WireChan {
    Shard* shard;
    Wire state;
    bool redirected = false;  // its SSUBSCRIBE was refused once and sent elsewhere
  };
  struct FenceCall;

  void on_shard_up(ShardSubscriber& s) noexcept override;
  void on_shard_down(ShardSubscriber& s) noexcept override;
  void on_ssubscribed(ShardSubscriber& s, std::string_view channel) noexcept override;
  void on_ssubscribe_failed(ShardSubscriber& s, std::string_view channel, std::string_view error) noexcept override;
  void on_sunsubscribed(ShardSubscriber& s, std::string_view channel, bool by_server) noexcept override;
  void on_smessage(ShardSubscriber& s, std::string_view channel, std::string_view message) noexcept override;

  Shard* shard_of(const ShardSubscriber& s) noexcept;
  Shard* owner_shard(const std::string& channel) noexcept;  // NULL: no master known
  bool send_sub(Shard& sh, const std::string& channel) noexcept;
  void pick_sentinel(Shard& sh) noexcept;
  void lose(const std::string& channel) noexcept;       // erase + on_channel_lost
  void lose_shard(Shard& sh) noexcept;                  // every channel of sh
  void fences_done(uint64_t up_to_seq, bool ok) noexcept;
  void fence_progress() noexcept;
  static void on_fence_send(evutil_socket_t, short, void* arg) noexcept;
  static void on_fence_published(redisReply* reply, void* priv) noexcept;
  static void on_deferred(evutil_socket_t, short, void* arg) noexcept;

  event_base* base_;
  ClusterLinks& links_;
  std::string user_, password_;
  proto::Keys keys_;
  uint64_t timeout_ms_;
  std::string tag_;
  Sink* sink_ = nullptr;
  bool stopped_ = false;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<std::unique_ptr<Shard>> retired_;  // freed from the next loop turn
  std::unordered_map<std::string, WireChan> wire_;  // by rt channel name
  struct Migrating {
    uint64_t until_ms;
    cluster::NodeAddr owner;  // the slot's master in the map when it was marked
  };
  std::unordered_map<uint16_t, Migrating> migrating_;  // slots marked migrating (see above)
  const char* drop_reason_ = nullptr;
  EventPtr deferred_ev_;
  // Fences.
  std::vector<std::pair<FenceWaiter*, uint64_t>> fence_waiters_;
  uint64_t fence_seq_ = 0;
  bool fence_scheduled_ = false;
  EventPtr fence_ev_;
};

}  // namespace rt
