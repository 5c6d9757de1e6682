// One Redis connection of one worker (hiredis async on the worker's event_base), kept alive:
// connects, reconnects with backoff (100 ms doubling to 2 s) after a loss, and drops the
// connection when Redis stops answering (connect or command timeout), so that a hung Redis
// turns into failed commands (NULL replies) instead of hung requests.
//
// Every command's callback is called exactly once: with the reply, or with NULL when the
// connection is lost or timed out (also while the link is being destroyed).
#pragma once

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <cstdint>
#include <string>

#include "backoff.hpp"
#include "config.hpp"
#include "util.hpp"

namespace rt {

class RedisLink {
 public:
  // Told about connection state changes. Called from the event loop, never re-entrantly
  // from inside command(); on_link_down runs after every pending callback got NULL.
  class Listener {
   public:
    virtual ~Listener() = default;
    virtual void on_link_up() noexcept = 0;
    virtual void on_link_down() noexcept = 0;
  };

  // reply is owned by hiredis (valid only during the call); NULL on failure.
  using ReplyFn = void (*)(redisReply* reply, void* priv) noexcept;

  RedisLink(event_base* base, const RedisAddress& addr, uint64_t timeout_ms, std::string name);
  ~RedisLink();
  RedisLink(const RedisLink&) = delete;
  RedisLink& operator=(const RedisLink&) = delete;

  void set_listener(Listener* l) noexcept { listener_ = l; }

  // Starts the first connection attempt (further attempts are automatic).
  void start() noexcept;

  bool up() const noexcept { return state_ == State::up; }

  // Sends one command. Returns false (and never calls fn) when the link is down; otherwise
  // fn is called exactly once, later, from the event loop.
  bool command(ReplyFn fn, void* priv, int argc, const char** argv, const size_t* lens) noexcept;

  // The raw context for pub/sub commands (the hub), or NULL while down. Commands sent this
  // way are not covered by the command timeout: their owner watches them and calls kill().
  redisAsyncContext* context() noexcept { return state_ == State::up ? ac_ : nullptr; }

  // Drops the connection now (pending callbacks get NULL, listener gets on_link_down) and
  // schedules a reconnect. No-op while down. Must not be called from a hiredis callback of
  // this link (use it from timers / the worker's deferred queue).
  void kill(const char* reason) noexcept;

  // Like kill(), without reconnecting afterwards (worker shutdown).
  void shut_down() noexcept {
    destroying_ = true;
    kill("shutdown");
  }

  const std::string& name() const noexcept { return name_; }

 private:
  enum class State { down, connecting, up };
  struct Pending;

  static void on_connect(const redisAsyncContext* ac, int status) noexcept;
  static void on_disconnect(const redisAsyncContext* ac, int status) noexcept;
  static void on_auth_reply(redisAsyncContext* ac, void* reply, void* priv) noexcept;
  static void on_reply(redisAsyncContext* ac, void* reply, void* priv) noexcept;
  static void on_retry_timer(evutil_socket_t, short, void* arg) noexcept;
  static void on_watchdog(evutil_socket_t, short, void* arg) noexcept;

  void connect_now() noexcept;
  void went_down(const char* reason) noexcept;  // state -> down, notify, schedule retry
  void schedule_retry() noexcept;

  event_base* base_;
  RedisAddress addr_;
  uint64_t timeout_ms_;
  std::string name_;
  Listener* listener_ = nullptr;
  redisAsyncContext* ac_ = nullptr;
  State state_ = State::down;
  bool ever_up_ = false;
  bool destroying_ = false;
  uint64_t connect_started_ms_ = 0;
  uint64_t up_since_ms_ = 0;
  uint64_t in_flight_ = 0;          // commands sent through command() without a reply yet
  uint64_t last_progress_ms_ = 0;   // last reply, or when in_flight_ went from 0 to 1
  Backoff backoff_;
  EventPtr retry_ev_;
  EventPtr watchdog_ev_;
};

}  // namespace rt
