// One sharded pub/sub connection (SSUBSCRIBE) to one cluster master, kept alive:
// connects, AUTHs, reconnects with backoff (100 ms doubling to 2 s), and drops the
// connection when the node stops answering (connect timeout, a command unanswered for the
// timeout, a PING every kPingEveryMs unanswered).
//
// Why not a hiredis async context: hiredis 0.14 dispatches only SUBSCRIBE/PSUBSCRIBE
// replies itself (__redisGetSubscribeCallback); an SSUBSCRIBE is a plain command there, and
// the first `smessage` push finds no callback and trips its assert. So this is a
// bufferevent of our own: commands formatted by redisFormatCommandArgv, replies parsed by a
// hiredis redisReader, every reply routed here:
//
//   ["ssubscribe", ch, n]    confirmation of our SSUBSCRIBE ch   -> on_ssubscribed
//   ["sunsubscribe", ch, n]  reply to our SUNSUBSCRIBE ch        -> on_sunsubscribed(by_server false)
//                            or sent by the server on its own: ch's slot moved away, or the
//                            node became a replica                -> on_sunsubscribed(by_server true)
//   ["smessage", ch, msg]    a message                           -> on_smessage
//   an error reply           the answer of the oldest command in flight; for an SSUBSCRIBE
//                            (e.g. MOVED: the slot is elsewhere)  -> on_ssubscribe_failed
//
// One channel per SSUBSCRIBE/SUNSUBSCRIBE (so every reply maps to one command). Listener
// callbacks run from the event loop, never from inside ssubscribe()/sunsubscribe(); they
// may call ssubscribe()/sunsubscribe() but must not destroy the subscriber.
#pragma once

#include <event2/bufferevent.h>
#include <hiredis/hiredis.h>

#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include "backoff.hpp"
#include "slots.hpp"
#include "util.hpp"

namespace rt {

class ShardSubscriber {
 public:
  class Listener {
   public:
    virtual ~Listener() = default;
    virtual void on_shard_up(ShardSubscriber& s) noexcept = 0;    // may subscribe from now on
    virtual void on_shard_down(ShardSubscriber& s) noexcept = 0;  // every subscription is gone
    virtual void on_ssubscribed(ShardSubscriber& s, std::string_view channel) noexcept = 0;
    virtual void on_ssubscribe_failed(ShardSubscriber& s, std::string_view channel,
                                      std::string_view error) noexcept = 0;
    virtual void on_sunsubscribed(ShardSubscriber& s, std::string_view channel, bool by_server) noexcept = 0;
    virtual void on_smessage(ShardSubscriber& s, std::string_view channel, std::string_view message) noexcept = 0;
  };

  ShardSubscriber(event_base* base, cluster::NodeAddr addr, std::string user, std::string password,
                  uint64_t timeout_ms, std::string name, Listener* listener);
  ~ShardSubscriber();  // no callbacks from here on
  ShardSubscriber(const ShardSubscriber&) = delete;
  ShardSubscriber& operator=(const ShardSubscriber&) = delete;

  void start() noexcept;
  // Drops the connection now (listener: on_shard_down) and reconnects after a backoff.
  // Not from inside this subscriber's own listener callbacks (use a deferred call).
  void kill(const char* reason) noexcept;
  // Like kill(), without reconnecting (worker shutdown).
  void shut_down() noexcept;

  bool up() const noexcept { return state_ == State::up; }
  const cluster::NodeAddr& addr() const noexcept { return addr_; }
  const std::string& name() const noexcept { return name_; }
  // Sharded subscriptions confirmed and not unsubscribed (the server's own count).
  long long server_count() const noexcept { return server_count_; }

  // false when down (nothing sent).
  bool ssubscribe(std::string_view channel) noexcept;
  bool sunsubscribe(std::string_view channel) noexcept;

 private:
  enum class State { down, connecting, up };
  enum class Sent { auth, ssub, sunsub, ping };
  struct InFlight {
    Sent what;
    std::string channel;
    uint64_t sent_ms;
  };
  struct BevDeleter { void operator()(bufferevent* b) const noexcept { bufferevent_free(b); } };
  struct ReaderDeleter { void operator()(redisReader* r) const noexcept { redisReaderFree(r); } };

  static void on_read(bufferevent* bev, void* arg) noexcept;
  static void on_event(bufferevent* bev, short what, void* arg) noexcept;
  static void on_retry(evutil_socket_t, short, void* arg) noexcept;
  static void on_tick(evutil_socket_t, short, void* arg) noexcept;
  static void on_drop(evutil_socket_t, short, void* arg) noexcept;
  void connect_now() noexcept;
  bool send(Sent what, std::string_view verb, std::string_view arg, std::string_view arg2 = {}) noexcept;
  void handle(const redisReply* r) noexcept;
  void went_down(const std::string& reason, bool retry) noexcept;
  void drop_soon(const char* reason) noexcept;

  event_base* base_;
  cluster::NodeAddr addr_;
  std::string user_, password_;
  uint64_t timeout_ms_;
  std::string name_;
  Listener* listener_;
  State state_ = State::down;
  bool stopped_ = false;
  bool ever_up_ = false;  // a later connect counts as a reconnect (rt_redis_reconnects_total)
  std::unique_ptr<bufferevent, BevDeleter> bev_;
  std::unique_ptr<redisReader, ReaderDeleter> reader_;
  std::deque<InFlight> in_flight_;
  long long server_count_ = 0;
  uint64_t connect_started_ms_ = 0;
  uint64_t up_since_ms_ = 0;
  uint64_t last_rx_ms_ = 0;
  uint64_t last_ping_ms_ = 0;
  const char* drop_reason_ = nullptr;
  Backoff backoff_;
  EventPtr retry_ev_;
  EventPtr tick_ev_;
  EventPtr drop_ev_;
};

}  // namespace rt
