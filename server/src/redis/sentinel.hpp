// The Redis master of one worker, found and followed through Redis Sentinel
// (--redis redis+sentinel://...). Per sentinel, two connections (RedisLinks, so with
// reconnects, AUTH and timeouts): one for questions, one subscribed to +switch-master.
//
//  - ask(): the sentinels are asked in turn (SENTINEL get-master-addr-by-name NAME) until
//    one names the master; when none does, the round is repeated after a backoff (100 ms
//    doubling to 2 s). Rounds are coalesced and start at most every 100 ms.
//  - +switch-master from any sentinel moves the worker at once (the first of them to
//    announce the new master wins; the others repeat it).
//  - The worker calls trouble() whenever one of its Redis links has trouble (connection
//    lost, connect failed, the server is not the master), so that a failover whose
//    announcement was missed is still found. An address whose server said it is not the
//    master is not taken from a sentinel again for a while (a sentinel that has not heard
//    of the failover yet names the old master): the next sentinel is asked instead.
//
// Listener::on_master() runs whenever the master's address is learned or changes; the
// worker then moves every Redis link there (RedisLink::set_address, which checks ROLE).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backoff.hpp"
#include "config.hpp"
#include "redis_link.hpp"
#include "util.hpp"

namespace rt {

class SentinelWatch {
 public:
  class Listener {
   public:
    virtual ~Listener() = default;
    // The master is at host:port (called from the event loop, from a sentinel link's
    // callback: the worker's own links may be moved from here).
    virtual void on_master(const std::string& host, int port) noexcept = 0;
  };

  // `addr` holds the sentinels, the master name and the sentinels' credentials.
  SentinelWatch(event_base* base, const RedisAddress& addr, uint64_t timeout_ms, const std::string& tag,
                Listener* listener);
  ~SentinelWatch();
  SentinelWatch(const SentinelWatch&) = delete;
  SentinelWatch& operator=(const SentinelWatch&) = delete;

  // Connects to every sentinel; the first round starts when the first one answers.
  void start() noexcept;
  // Closes every sentinel connection for good (worker shutdown); no more on_master.
  void shut_down() noexcept;

  // Asks the sentinels again (coalesced, rate limited).
  void ask() noexcept;
  // A Redis link of the worker had trouble (see RedisLink::TroubleFn): ask again, and when
  // its server said it is not the master, distrust that address for a while.
  void trouble(const RedisLink& link, bool not_master) noexcept;

  bool known() const noexcept { return !host_.empty(); }
  // For /healthz and logs: the master's name and address, or what is being done.
  std::string describe() const;

 private:
  struct Node;
  struct AskCall;

  static void on_ask_reply(redisReply* r, void* priv) noexcept;
  static void on_event(redisAsyncContext* ac, void* reply, void* priv) noexcept;
  static void on_timer(evutil_socket_t, short, void* arg) noexcept;
  void start_round() noexcept;
  void try_next() noexcept;
  void round_failed() noexcept;
  void subscribe(Node& n) noexcept;
  void found(const std::string& host, int port, const char* how, size_t sentinel) noexcept;
  bool distrusted(const std::string& host, int port) const noexcept;

  event_base* base_;
  std::string master_name_;
  Listener* listener_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::string host_;          // the master's address as last learned ("" = not yet)
  int port_ = 0;
  bool asking_ = false;       // a round is in flight
  bool again_ = false;        // ask() came during the round: one more after it
  bool timer_pending_ = false;
  bool stopped_ = false;
  size_t next_ = 0;           // the next sentinel of the round to ask
  uint64_t round_ = 0;        // round number: replies of older rounds are ignored
  uint64_t last_round_ms_ = 0;
  std::string distrusted_host_;  // the last address whose server said it is not the master
  int distrusted_port_ = 0;
  uint64_t distrusted_until_ms_ = 0;
  Backoff backoff_;
  EventPtr timer_;
};

}  // namespace rt
