// The pub/sub wire of one worker: what the channel registry (channels/channel_registry.hpp)
// needs from Redis pub/sub, as an interface, and its standalone implementation.
//
// PubSubConnection speaks in rt channel names (the registry's); the implementation owns the
// wire names (protocol/keys.hpp), how many connections there are and what runs on them.
// Standalone and Sentinel mode: StandalonePubSub below, SUBSCRIBE on one RedisLink. A Redis
// Cluster implementation (SSUBSCRIBE, one connection per master) plugs in behind the same
// interface without touching the registry or the mirror keeper.
//
// Contract, for every implementation:
//  - subscribe(ch): `ch` is not subscribed, or unsubscribe(ch) was called since. Returns
//    false when it cannot be sent (nothing changes, no callback). Otherwise
//    Sink::on_subscribed(ch) follows exactly once when Redis confirms, unless on_lost comes
//    first. It may be called while an UNSUBSCRIBE of `ch` is still in flight: the
//    implementation orders them.
//  - unsubscribe(ch): only for a channel whose on_subscribed came. Returns false when it
//    cannot be sent (the channel stays subscribed). No callback follows; messages of `ch`
//    may still arrive until Redis has processed it (the sink ignores what it does not know).
//  - Sink::on_message(ch, data, len): a message of a channel asked for with subscribe();
//    `data` valid during the call only.
//  - Sink::on_lost(): messages may have been missed: every subscription is forgotten (the
//    sink forgets its channels too). Called after every fence waiter got on_fence(false).
//    Sink::on_channel_lost(ch): the same for `ch` alone (an implementation with several
//    connections, Redis Cluster's).
//  - fence(w): w->on_fence(ok) is called exactly once, later, once every message published
//    (to any channel) before the call has been delivered to the sink (ok), or that cannot
//    be known (ok false). Returns false (no callback) when that cannot be started.
//  - Sink callbacks are never called from inside subscribe / unsubscribe / fence /
//    cancel_fence / drop. The sink must not destroy the connection from inside them.
#pragma once

#include <deque>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "protocol/keys.hpp"
#include "redis_link.hpp"
#include "util.hpp"

namespace rt {

// Waits for a fence (PubSubConnection::fence). A HubListener is one.
class FenceWaiter {
 public:
  // Every pub/sub message published before the fence was asked for has been delivered
  // (ok), or that cannot be known (ok false: a Redis connection failed).
  virtual void on_fence(bool ok) noexcept = 0;

 protected:
  ~FenceWaiter() = default;
};

class PubSubConnection {
 public:
  class Sink {
   public:
    virtual void on_subscribed(const std::string& channel) noexcept = 0;
    virtual void on_message(const std::string& channel, const char* data, size_t len) noexcept = 0;
    virtual void on_lost() noexcept = 0;
    // Only `channel`'s subscription is gone (messages of it may have been missed); the
    // sink forgets that channel. A sharded connection (Redis Cluster) loses channels one
    // slot or one master at a time; the standalone connection never calls this. By
    // default everything counts as lost.
    virtual void on_channel_lost(const std::string& channel) noexcept {
      (void)channel;
      on_lost();
    }

   protected:
    ~Sink() = default;
  };

  virtual ~PubSubConnection() = default;
  // Set once, before the connection can come up; the sink outlives the connection's use.
  virtual void set_sink(Sink* sink) noexcept = 0;
  // subscribe() can be sent (the transport is up).
  virtual bool connected() const noexcept = 0;
  // Connected and ready: confirmations and messages can be expected (the health check).
  virtual bool up() const noexcept = 0;
  virtual bool subscribe(const std::string& channel) noexcept = 0;
  virtual bool unsubscribe(const std::string& channel) noexcept = 0;
  virtual bool fence(FenceWaiter* w) = 0;
  // Forgets w's pending fences, if any. Never calls back.
  virtual void cancel_fence(FenceWaiter* w) noexcept = 0;
  // The sink cannot go on (out of memory on a message): drop the connection soon, not from
  // inside this call; on_lost follows.
  virtual void drop(const char* reason) noexcept = 0;
};

// SUBSCRIBE on one RedisLink (it registers itself as the link's listener), with the
// hiredis 0.14 pitfalls handled:
//  - a SUBSCRIBE and an UNSUBSCRIBE of the same channel are never in flight together (its
//    callback table is keyed by channel: the unsubscribe reply would drop the new
//    callback): a subscribe() during an UNSUBSCRIBE is sent when its reply is back;
//  - a sentinel channel stays subscribed for the connection's life, so the subscription
//    count never drops to 0 (hiredis would leave subscribe mode and assert on the next
//    subscribe confirmation).
// The sentinel also proves the connection alive: every kPingEveryMs a PUBLISH to it goes
// out on the command link, and a pub/sub connection that does not deliver it in time (a
// silent, half-open TCP connection would otherwise hold polls without ever waking them)
// is dropped. Fences are PUBLISHes to the sentinel too (see fence()). A SUBSCRIBE or
// UNSUBSCRIBE unanswered for `timeout_ms` drops the connection.
class StandalonePubSub final : public PubSubConnection, public RedisLink::Listener {
 public:
  // `link` is the subscribe connection; `command_link` (may be NULL: no liveness pings, no
  // fences) carries the sentinel PUBLISHes. Both must be destroyed before this object
  // (their pending callbacks reach it). `tag` makes the sentinel name unique.
  StandalonePubSub(event_base* base, RedisLink& link, RedisLink* command_link, const proto::Keys& keys,
                   uint64_t timeout_ms, const std::string& tag);
  ~StandalonePubSub() override = default;

  void set_sink(Sink* sink) noexcept override { sink_ = sink; }
  bool connected() const noexcept override { return link_.up(); }
  bool up() const noexcept override { return link_.up() && sentinel_confirmed_; }
  bool subscribe(const std::string& channel) noexcept override;
  bool unsubscribe(const std::string& channel) noexcept override;
  // How: a sequence number PUBLISHed to the sentinel on the command link, sent from the
  // next loop turn (the fences asked for meanwhile share it); Redis delivers a
  // subscriber's messages in publish order, so when it comes back everything published
  // before it is here. False when not up or the command link is down.
  bool fence(FenceWaiter* w) override;
  void cancel_fence(FenceWaiter* w) noexcept override;
  void drop(const char* reason) noexcept override;

  // Channels known on the wire (subscribing, subscribed or leaving), for tests.
  size_t wire_count() const noexcept { return wire_.size(); }

  void on_link_up() noexcept override;
  void on_link_down() noexcept override;

 private:
  // A channel's state on the wire. `resubscribe`: subscribe() came while leaving.
  enum class Wire { subscribing, subscribed, leaving, resubscribe };

  static void on_sub_reply(redisAsyncContext* ac, void* reply, void* priv) noexcept;
  static void on_tick(evutil_socket_t, short, void* arg) noexcept;
  static void on_ping_published(redisReply* reply, void* priv) noexcept;
  static void on_fence_send(evutil_socket_t, short, void* arg) noexcept;
  static void on_fence_published(redisReply* reply, void* priv) noexcept;
  void handle_reply(redisReply* r) noexcept;
  void handle_sentinel(std::string_view type, redisReply* r) noexcept;
  bool send(const char* verb, const std::string& wire_name) noexcept;
  void fences_done(uint64_t up_to_seq, bool ok) noexcept;
  void tick() noexcept;

  RedisLink& link_;
  RedisLink* command_link_;
  Sink* sink_ = nullptr;
  proto::Keys keys_;
  std::string sentinel_;  // wire name of the sentinel channel (not a valid channel name)
  uint64_t timeout_ms_;
  std::unordered_map<std::string, Wire> wire_;  // by rt channel name
  std::deque<uint64_t> in_flight_;  // send times of (UN)SUBSCRIBEs awaiting their reply
  bool sentinel_confirmed_ = false;
  const char* drop_reason_ = nullptr;  // set: drop the connection at the next tick
  // Liveness.
  uint64_t last_ping_ms_ = 0;      // when the last ping was published
  uint64_t ping_awaited_ms_ = 0;   // when Redis ran the PUBLISH of a ping not yet received (0: none)
  uint64_t last_rx_ms_ = 0;        // when the pub/sub connection last delivered anything
  bool ping_in_flight_ = false;
  uint64_t ping_seq_ = 0;          // sequence number of the last ping sent (its payload)
  uint64_t ping_seen_ = 0;         // highest ping sequence number received on pub/sub
  uint64_t epoch_ = 0;             // bumped whenever the pub/sub connection goes up or down
  uint64_t ping_epoch_ = 0;        // epoch_ when the ping in flight was sent
  EventPtr tick_ev_;
  // Fences: waiters with the fence sequence number they need (see fence()).
  std::vector<std::pair<FenceWaiter*, uint64_t>> fence_waiters_;
  uint64_t fence_seq_ = 0;          // the last fence sequence number handed out
  bool fence_scheduled_ = false;    // fence_seq_ is not PUBLISHed yet (on_fence_send will)
  EventPtr fence_ev_;
};

}  // namespace rt
