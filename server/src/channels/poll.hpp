// One GET /rt request's life: subscribe its channels on the hub (confirmed by Redis) →
// read every channel (one read.lua EVALSHA per channel, pipelined) → decide ok/reset/none
// per channel → answer at once, or hold → answer from pub/sub (messages that continue the
// chain: the first one's prev is the client's id, each later one's prev the id before it),
// re-read on anything else, answer {} at the poll timeout, or free at once when the client
// of a held poll goes away.
//
// No loss: reads start only after every channel's SUBSCRIBE is confirmed, and pub/sub
// messages that arrive while a read is in flight are kept and examined after it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "http_server.hpp"
#include "hub.hpp"
#include "protocol/protocol.hpp"
#include "worker.hpp"

namespace rt {

class Poll final : public HubListener, public Deferred {
 public:
  // Takes over `req`: answers it exactly once, or releases it when its client went away.
  // `chans` is the parsed, valid query. `started_us` is the request's arrival (now_us()).
  static void start(Worker& w, http::Request* req, std::vector<proto::ChannelPos> chans,
                    uint64_t started_us) noexcept;

  void on_subscribed(size_t idx) noexcept override;
  void on_message(size_t idx, const SharedMessagePtr& msg) noexcept override;
  void on_hub_lost() noexcept override;
  void on_redis_head(size_t idx, uint64_t n) noexcept override;
  void on_fence(bool ok) noexcept override;
  void run_deferred() noexcept override;

 private:
  enum class State { subscribing, reading, held, done };

  // Per channel for the poll's whole life: kept small (a held front-page poll has hundreds).
  struct Chan {
    HubLink link;            // listener = this poll, idx = the index; the name lives in the hub
    uint64_t last = 0;       // the client's m
    bool overflow = false;   // pending hit its bound, or history lost: only a re-read is exact now
    // pub/sub messages with id > last, ascending, not yet answered (allocated when one comes)
    std::unique_ptr<std::vector<SharedMessagePtr>> pending;
  };
  // Per channel for one read round only (round_ is empty while the poll is held).
  struct RoundResult {
    Poll* poll = nullptr;
    size_t idx = 0;
    uint64_t newest = 0;
    std::vector<proto::Message> after;
    proto::Message tail;
    bool has_tail = false;
  };

  Poll(Worker& w, http::Request* req, uint64_t started_us);

  // The catch-up fast path: answers `req` at once, with no Poll and no Redis round trip,
  // when the hub's mirrors decide every channel and at least one has news. Returns false
  // (req untouched) when any channel needs Redis or all are up to date (to be held).
  static bool answer_from_mirrors(Worker& w, http::Request* req, const std::vector<proto::ChannelPos>& chans,
                                  uint64_t started_us) noexcept;
  ~Poll() override;

  static void on_read_reply(redisReply* reply, void* priv) noexcept;
  static void on_timeout(evutil_socket_t, short, void* arg) noexcept;
  static void on_gone(void* arg) noexcept;  // the client's connection died

  void step() noexcept;
  void start_round() noexcept;
  void store_read(RoundResult& rr, redisReply* reply) noexcept;
  const std::string& name_of(const Chan& c) const noexcept { return w_.hub().channel_of(c.link); }
  static bool has_pending(const Chan& c) noexcept { return c.pending && !c.pending->empty(); }
  void evaluate_round() noexcept;
  void evaluate_pending() noexcept;
  void answer(std::vector<proto::Entry> entries) noexcept;
  // Sends a built 200 body, or the bytes of `shared` by reference (a fan-out answer built
  // once per message); `delivered` messages, `resets` reset entries, `entries` in all.
  struct Resets {
    uint64_t behind = 0, lost = 0;
  };
  void send_answer(std::string_view body, evbuffer* shared, uint64_t delivered, Resets resets,
                   size_t entries) noexcept;
  void answer_error(int code, const std::string& message) noexcept;
  void finish() noexcept;  // leaves the hub, stops the timer; the object is freed later

  Worker& w_;
  http::Request* req_;  // ours until answered or released (also once detached)
  uint64_t started_us_;
  std::vector<Chan> chans_;     // never resized after start(): the hub links point into it
  std::vector<RoundResult> round_;
  State state_ = State::subscribing;
  size_t unconfirmed_ = 0;
  size_t reads_outstanding_ = 0;
  bool timed_out_ = false, client_gone_ = false, hub_lost_ = false, woken_ = false;
  bool read_failed_ = false;
  bool hub_never_up_ = false;  // the hub was down when the poll came
  bool counted_held_ = false;  // counted in rt_held_polls
  int rereads_ = 0;            // re-read rounds in a row that answered nothing
  // A round with news on some channels and mirror "holds" on others waits once for a hub
  // fence before answering (see evaluate_round).
  enum class Fence : uint8_t { none, waiting, passed_redo, passed };
  Fence fence_ = Fence::none;
  size_t mirror_holds_ = 0;    // channels of the current round the mirrors decided "hold"
  std::string read_error_;
  EventPtr timer_;
};

}  // namespace rt
