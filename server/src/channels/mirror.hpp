// The in-process mirror of one subscribed channel's head: its newest id N and, when Redis
// certainly still holds it, its newest message. It lets a poll be decided without a Redis
// round trip in the two cases that make up nearly all traffic:
//   L == N            nothing new: hold (a later message arrives on pub/sub, which we receive);
//   L == newest.prev  the client is one behind: answer ok with the newest message.
// Everything else is `unknown`: the poll reads Redis as before.
//
// Why only the newest message: the backlog length is per publish and not on pub/sub, so
// after any new message the only backlog member certainly still in Redis is that message
// (backlog >= 1). Answering ok for an older L would be "ok" where Redis says "reset".
//
// How it stays exact (no I/O here: the mirror keeper sends the commands and feeds the replies in):
//  - seeded by an atomic read of N and the newest message that is sent only after the
//    channel's SUBSCRIBE was confirmed; pub/sub messages arriving while the seed is in
//    flight are buffered and applied after it (ids <= the read's N are already counted);
//  - extended by pub/sub messages only while each names N as its prev; anything else (a
//    gap, a new history after a flush or a rollback, a late copy of a message the seed
//    counted, an overflowing seed buffer) drops the mirror (state empty);
//  - history lost WITHOUT a publish (keys deleted or expired, Redis flushed) is invisible to
//    pub/sub, so the mirror is trusted for kTrustMs after its last verification only: a
//    verification is a GET of msg_id sent when the mirror said N_sent; Redis answering less
//    than N_sent means history was lost (the mirror is dropped, held polls must re-read);
//  - the channel registry drops every mirror when the pub/sub connection goes down or a channel is
//    unsubscribed.
#pragma once

#include <cstdint>
#include <vector>

#include "mirror_timing.hpp"
#include "protocol/protocol.hpp"

namespace rt {

class ChannelMirror {
 public:
  static constexpr uint64_t kTrustMs = timing::kTrustMs;              // see mirror_timing.hpp
  static constexpr uint64_t kVerifyAfterMs = timing::kVerifyAfterMs;
  static constexpr size_t kMaxSeedBuffer = 256;   // pub/sub messages buffered during a seed

  enum class State { empty, seeding, valid };
  enum class Decision { unknown, hold, newest };

  State state() const noexcept { return state_; }
  uint64_t newest_id() const noexcept { return n_; }

  // Decides a poll with last id `last` at `now_ms`. `newest` gets the message to answer
  // with (valid until the mirror next changes). Marks the mirror used (see wants_verify).
  Decision decide(uint64_t last, uint64_t now_ms, const proto::Message** newest) noexcept;

  // True when decide() would refuse only because the last verification is too old.
  bool stale(uint64_t now_ms) const noexcept {
    return state_ == State::valid && now_ms - verified_ms_ > kTrustMs;
  }

  // --- seeding: begin_seed() when the channel is confirmed subscribed (state empty) --------
  // Returns the token to hand back to seed_done().
  uint64_t begin_seed(uint64_t now_ms) noexcept;
  // The seed read's result: `ok` false when it failed (the mirror stays empty). `n` = msg_id,
  // `newest` the newest backlog member (may be NULL: backlog empty). Ignored when `token` is
  // not the current one.
  void seed_done(uint64_t token, bool ok, uint64_t n, const proto::Message* newest) noexcept;

  // --- verification ------------------------------------------------------------------------
  // True when a verification should be sent now: valid, none in flight, and either used or
  // held by a listener (`has_listeners`) since the last one, which is kVerifyAfterMs old.
  bool wants_verify(uint64_t now_ms, bool has_listeners) const noexcept;
  // Records a verification being sent; *n_sent gets N now. Returns the token.
  uint64_t begin_verify(uint64_t now_ms, uint64_t* n_sent) noexcept;
  // The GET's result. Returns true when history was lost (Redis's msg_id below n_sent): the
  // mirror is dropped and polls held at the old ids must re-read.
  bool verify_done(uint64_t token, bool ok, uint64_t n_sent, uint64_t n_redis) noexcept;

  // A valid message from pub/sub (the keeper passes it on before the listeners see it).
  void on_message(const proto::Message& msg) noexcept;

  // Forgets everything (unsubscribed, connection lost, failed read); replies in flight are
  // ignored when they come.
  void drop() noexcept;

 private:
  State state_ = State::empty;
  uint64_t token_ = 0;          // bumped by every seed, verification and drop
  uint64_t n_ = 0;              // N (valid)
  bool has_newest_ = false;     // newest_ is message N and certainly still in Redis
  proto::Message newest_;
  uint64_t verified_ms_ = 0;    // when the last successful seed/verification was SENT
  uint64_t verify_sent_ms_ = 0;
  bool verify_in_flight_ = false;
  bool used_ = false;           // decide() called since the last verification was sent
  bool seed_overflow_ = false;
  std::vector<proto::Message> seed_buf_;  // pub/sub messages while seeding
};

}  // namespace rt
