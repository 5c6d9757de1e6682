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

  // Told when the link has trouble: a connection lost, a connect that failed or timed out,
  // or (`not_master`) a server that is not the master. Not called while the link moves on
  // set_address() or shuts down. Called from the event loop, never from command().
  using TroubleFn = void (*)(void* arg, RedisLink& link, bool not_master) noexcept;

  RedisLink(event_base* base, const RedisAddress& addr, uint64_t timeout_ms, std::string name);
  ~RedisLink();
  RedisLink(const RedisLink&) = delete;
  RedisLink& operator=(const RedisLink&) = delete;

  void set_listener(Listener* l) noexcept { listener_ = l; }
  void set_trouble_hook(TroubleFn fn, void* arg) noexcept {
    trouble_fn_ = fn;
    trouble_arg_ = arg;
  }

  // Only a master will do (Sentinel mode): after connecting (and AUTH / SELECT), ROLE must
  // answer "master" before the link counts as up, and a server that answers anything else
  // is dropped at once. A READONLY error reply (the master was demoted under this
  // connection) drops the connection too.
  void set_require_master(bool on) noexcept { require_master_ = on; }

  // Starts the first connection attempt (further attempts are automatic). A link made
  // with an address without host (Sentinel mode, master not known yet) waits for
  // set_address().
  void start() noexcept;

  // Points the link at host:port (the master moved, or is known at last). When that
  // differs from the current address, the connection, if any, is dropped as by kill()
  // (pending callbacks get NULL, the listener on_link_down) and a new one is started at
  // once; otherwise nothing happens. Must not be called from a hiredis callback of this
  // link.
  void set_address(const std::string& host, int port) noexcept;
  const std::string& host() const noexcept { return addr_.host; }
  int port() const noexcept { return addr_.port; }

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
  static void on_role_reply(redisAsyncContext* ac, void* reply, void* priv) noexcept;
  static void on_retry_timer(evutil_socket_t, short, void* arg) noexcept;
  static void on_watchdog(evutil_socket_t, short, void* arg) noexcept;
  static void on_drop(evutil_socket_t, short, void* arg) noexcept;

  bool has_address() const noexcept { return addr_.unix_socket || !addr_.host.empty(); }
  void connect_now() noexcept;
  void became_up() noexcept;
  void went_down(const char* reason) noexcept;  // state -> down, notify, schedule retry
  void schedule_retry() noexcept;
  void trouble(bool not_master) noexcept;
  // Drops the connection from the next loop turn (safe inside this link's callbacks).
  void drop_soon(const std::string& reason, bool not_master) noexcept;

  event_base* base_;
  RedisAddress addr_;
  uint64_t timeout_ms_;
  std::string name_;
  Listener* listener_ = nullptr;
  TroubleFn trouble_fn_ = nullptr;
  void* trouble_arg_ = nullptr;
  bool require_master_ = false;
  bool moving_ = false;             // inside set_address(): no trouble reports
  std::string drop_reason_;         // set: on_drop drops the connection
  bool drop_not_master_ = false;
  uint64_t conn_seq_ = 0;           // bumped by every connect_now()
  uint64_t drop_seq_ = 0;           // the connection drop_reason_ is about
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
  EventPtr drop_ev_;
};

}  // namespace rt
