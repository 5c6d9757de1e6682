// The rules of one GET /rt poll, without I/O (the pattern of the client's ClientCore): the
// driver (poll.cpp) feeds events in, PollCore appends Actions, the driver carries them out
// in order. Time is an event too (the poll timeout).
//
// The life of a poll:
//   subscribing  every channel's SUBSCRIBE confirmed by Redis first, so that a message
//                published from then on reaches us on pub/sub or is in the backlog a read
//                returns (no loss);
//   reading      a round: each channel decided by its mirror (hold / newest) or read from
//                Redis; results may come back per channel, in any order;
//   fencing      the round has news on some channels while mirrors call others unchanged: a
//                message published just before the poll may still be on its way to those,
//                so wait once for a hub fence and decide the round again;
//   held         nothing new: answer from pub/sub messages that continue the chain (the
//                first one's prev is the client's id, each later one's prev the id before
//                it); anything else (a gap, an overflowing buffer, evidence of lost history)
//                means a new round;
//   closed       answered, failed or dropped; waiting for reads still in flight;
//   freed        the driver may free the poll (told exactly once).
// Pub/sub messages that arrive while a round is in flight are kept and examined after it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mirror.hpp"
#include "protocol/protocol.hpp"
#include "redis/channel_reader.hpp"

namespace rt {

class PollCore {
 public:
  using Decision = ChannelMirror::Decision;
  static constexpr size_t kMaxPending = 1000;          // buffered pub/sub messages per channel
  static constexpr size_t kResponseBudget = 8 << 20;   // bytes of messages in one response
  static constexpr int kMaxRereads = 3;                // re-reads in a row that found nothing

  // What the core may ask synchronously about its channels (in-process state, no I/O): the
  // hub's names and mirrors in the driver, a table in the tests.
  class ChannelView {
   public:
    virtual ~ChannelView() = default;
    virtual const std::string& channel(size_t idx) const noexcept = 0;
    // The mirror's decision for channel `idx` at last id `last` (see ChannelMirror::decide);
    // for `newest`, *msg is the message, valid until the next event.
    virtual Decision decide(size_t idx, uint64_t last, const proto::Message** msg) noexcept = 0;
  };

  // A pub/sub message kept by the core: `msg` stays valid while `owner` is held. The owner is
  // the driver's (its SharedMessage, which caches the fan-out body); the core only keeps it.
  struct MessageRef {
    std::shared_ptr<const void> owner;
    const proto::Message* msg = nullptr;
  };

  enum class ActionKind {
    // subscribe / unsubscribe are about the poll's whole channel set (it never changes)
    subscribe,      // add every channel to the hub; report on_subscribed / on_hub_unavailable
    unsubscribe,    // remove every channel from the hub (also those never confirmed)
    read,           // read `channels` from Redis (read_channels); report on_read_result each
    fence,          // ask the hub for a fence; report on_fence, or on_fence_refused at once
    cancel_fence,   // forget the fence asked for
    arm_timer,      // call on_timeout after `delay_ms`
    stop_timer,
    hold,           // the poll is held from now on (the rt_held_polls gauge; may repeat)
    answer,         // 200 with `body`; `delivered` messages, `resets_*`, `entries` for metrics
    answer_single,  // 200 with the one-message answer of channel 0 for `single` (the fan-out
                    // case: the same bytes for every such poll; see single_body())
    fail,           // `status` with {"error": `error`}
    drop,           // the client went away: free the request without an answer
    wake,           // call run() from the next loop turn (coalesce repeated wakes)
    free,           // nothing more will happen: free the poll (not from inside a callback)
  };
  struct Action {
    ActionKind kind = ActionKind::wake;
    std::vector<uint32_t> channels;  // read
    uint64_t delay_ms = 0;           // arm_timer
    std::string body;                // answer
    MessageRef single;               // answer_single
    int status = 200;                // fail
    std::string error;               // fail
    uint64_t delivered = 0, resets_behind = 0, resets_lost = 0, entries = 0;  // answer*
  };
  using Actions = std::vector<Action>;

  // Counts for the metrics, accumulated until the driver takes them.
  struct Counts {
    uint64_t mirror_decisions = 0, backlog_reads = 0, redis_errors = 0, poll_timeouts = 0, rereads = 0;
  };

  // chans[i].last_id is the client's m for channel i (the names are the view's). `view`
  // outlives the core.
  PollCore(const std::vector<proto::ChannelPos>& chans, ChannelView& view, uint64_t timeout_ms);

  // --- events: each appends the actions to carry out to `out` --------------------------------
  // Events come from hub, Redis and HTTP callbacks: they only record facts and ask for a wake
  // (or, once the last read is in, free). Decisions happen in run(), called from the next loop
  // turn, and in on_fence_refused(), which the driver calls while carrying out `fence`.
  void start(Actions& out) noexcept;                // subscribe, arm the timer, wake
  void run(Actions& out) noexcept;                  // the deferred step (after a wake)
  void on_subscribed(size_t idx, Actions& out) noexcept;       // confirmed (at add or later)
  void on_hub_unavailable(Actions& out) noexcept;   // an add found the hub down
  void on_hub_lost(Actions& out) noexcept;          // the pub/sub connection was lost
  // A pub/sub message of channel `idx`; `owner` keeps `msg` alive (kept only if needed).
  void on_message(size_t idx, const std::shared_ptr<const void>& owner, const proto::Message& msg,
                  Actions& out) noexcept;
  void on_redis_head(size_t idx, uint64_t n, Actions& out) noexcept;
  // The result of channel `idx`'s read (see ChannelReadSink); ignored unless asked for.
  void on_read_result(size_t idx, ChannelReadResult&& r, Actions& out) noexcept;
  void on_fence(bool ok, Actions& out) noexcept;
  void on_fence_refused(Actions& out) noexcept;     // the hub could not take the fence
  void on_timeout(Actions& out) noexcept;
  void on_client_gone(Actions& out) noexcept;

  // --- for the driver and the tests ---------------------------------------------------------
  enum class State : uint8_t { subscribing, reading, fencing, fenced, held, closed, freed };
  State state() const noexcept { return state_; }
  size_t size() const noexcept { return chans_.size(); }
  uint64_t last_id(size_t idx) const noexcept { return chans_[idx].last; }
  Counts take_counts() noexcept {
    Counts c = counts_;
    counts_ = Counts();
    return c;
  }

  // The whole body of a one-channel answer with one message (answer_single).
  static std::string single_body(const std::string& channel, const proto::Message& msg);

  // The catch-up fast path, before any poll exists: when every channel of `chans` is decided
  // by its mirror (view.decide) and at least one has news and none would be held, returns
  // true with *body the answer and *delivered its messages. False otherwise (nothing known,
  // nothing new, or news next to unchanged channels: that needs a fence; or over budget).
  static bool answer_from_mirrors(const std::vector<proto::ChannelPos>& chans, ChannelView& view,
                                  std::string* body, size_t* delivered) noexcept;

 private:
  // Per channel for the poll's whole life: kept small (a held front-page poll has hundreds).
  struct Chan {
    uint64_t last = 0;        // the client's m
    // pub/sub messages with id > last, ascending, not yet answered (allocated when one comes)
    std::unique_ptr<std::vector<MessageRef>> pending;
    bool overflow = false;    // pending hit its bound, or history lost: only a re-read is exact
    bool subscribed = false;  // confirmed
    bool reading = false;     // a read of this round is in flight
  };
  // Per channel for one round only (empty while the poll is held).
  struct RoundResult {
    uint64_t newest = 0;
    std::vector<proto::Message> after;
    proto::Message tail;
    bool has_tail = false;
  };
  // Why the poll must end at the next step, in rising precedence (a client that went away
  // needs no answer; a hub that was down from the start says so).
  enum class Ending : uint8_t { none, hub_lost, hub_unavailable, client_gone };

  static bool has_pending(const Chan& c) noexcept { return c.pending && !c.pending->empty(); }
  void end_with(Ending e, Actions& out) noexcept;
  void start_round(Actions& out) noexcept;
  void evaluate_round(Actions& out) noexcept;
  void evaluate_pending(Actions& out) noexcept;
  void answer(std::vector<proto::Entry> entries, Actions& out) noexcept;
  void fail_with(int status, std::string error, Actions& out) noexcept;
  void close(Actions& out) noexcept;  // leaves the hub, stops the timer
  static void push(Actions& out, ActionKind kind) noexcept;

  ChannelView& view_;
  uint64_t timeout_ms_;
  std::vector<Chan> chans_;
  std::vector<RoundResult> round_;
  std::vector<proto::Entry> fenced_entries_;  // fencing: the answer if the fence is refused
  State state_ = State::subscribing;
  Ending ending_ = Ending::none;
  bool timed_out_ = false;   // the poll timeout passed
  bool fence_used_ = false;  // a poll waits for one fence at most
  size_t unconfirmed_ = 0;
  size_t reads_in_flight_ = 0;
  size_t mirror_holds_ = 0;  // channels of the current round the mirrors decided "hold"
  int rereads_ = 0;          // re-read rounds in a row that answered nothing
  std::string round_error_;  // the first failed read of the round
  Counts counts_;
};

}  // namespace rt
