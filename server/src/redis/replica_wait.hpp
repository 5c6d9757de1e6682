// Acknowledged means replicated (--publish-min-replicas N): the publishes of one worker run
// on a connection of their own, and a publish is confirmed by a `WAIT N timeout` sent on
// that same connection after its script's reply. WAIT covers every write the connection
// made before it, so one WAIT in flight confirms every publish whose reply came before it
// was sent (group commit); publishes that complete meanwhile wait for the next WAIT, sent
// when the current one answers. WAIT blocks its connection while it waits: that is why
// publishes do not share the command connection the polls read on.
//
// It is the publish link's listener: SCRIPT LOAD on every connect.
#pragma once

#include <cstdint>
#include <vector>

#include "redis_link.hpp"
#include "scripts.hpp"

namespace rt {

class ReplicaWait : public RedisLink::Listener {
 public:
  // `confirmed`: the replicas WAIT counted (>= 0), or -1 when that is unknown (the
  // connection was lost, or WAIT failed). Called exactly once per after_write().
  using DoneFn = void (*)(void* priv, long long confirmed) noexcept;

  // `link` must outlive this object's use and be destroyed before it; `timeout_ms` must be
  // below the link's command timeout.
  ReplicaWait(RedisLink& link, ScriptSet& scripts, uint32_t replicas, uint64_t timeout_ms);

  // Call from the reply callback of a write made on `link` (its connection is then the one
  // that made the write). fn(priv, confirmed) follows, later, from the event loop.
  void after_write(DoneFn fn, void* priv) noexcept;

  uint32_t replicas() const noexcept { return replicas_; }
  uint64_t timeout_ms() const noexcept { return timeout_ms_; }

  void on_link_up() noexcept override { scripts_.load_into(link_); }
  void on_link_down() noexcept override {}

 private:
  struct Waiter {
    DoneFn fn;
    void* priv;
  };
  static void on_wait_reply(redisReply* r, void* priv) noexcept;
  void send_wait() noexcept;
  static void fail_all(std::vector<Waiter>& ws) noexcept;

  RedisLink& link_;
  ScriptSet& scripts_;
  uint32_t replicas_;
  uint64_t timeout_ms_;
  std::vector<Waiter> in_flight_;  // covered by the WAIT in flight
  std::vector<Waiter> queued_;     // writes answered since it was sent
  bool waiting_ = false;
};

}  // namespace rt
