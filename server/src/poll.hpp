// One GET /rt request's life: subscribe its channels on the hub (confirmed by Redis) →
// read every channel (one read.lua EVALSHA per channel, pipelined) → decide ok/reset/none
// per channel → answer at once, or hold → answer from pub/sub (contiguous messages), re-read
// on anything non-contiguous, answer {} at the poll timeout, or free at once when the client
// of a held poll goes away.
//
// No loss: reads start only after every channel's SUBSCRIBE is confirmed, and pub/sub
// messages that arrive while a read is in flight are kept and examined after it.
#pragma once

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
  void on_message(size_t idx, const proto::Message& msg) noexcept override;
  void on_hub_lost() noexcept override;
  void on_redis_head(size_t idx, uint64_t n) noexcept override;
  void run_deferred() noexcept override;

 private:
  enum class State { subscribing, reading, held, done };

  struct Chan {
    Poll* poll = nullptr;
    std::string name;
    uint64_t last = 0;       // the client's m
    bool in_hub = false;
    // pub/sub messages with id > last, ascending, not yet answered
    std::vector<proto::Message> pending;
    bool overflow = false;   // pending hit its bound: only a re-read is exact now
    // result of the current read round
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
  void store_read(Chan& c, redisReply* reply) noexcept;
  void evaluate_round() noexcept;
  void evaluate_pending() noexcept;
  void answer(std::vector<proto::Entry> entries) noexcept;
  void answer_error(int code, const std::string& message) noexcept;
  void finish() noexcept;  // leaves the hub, stops the timer; the object is freed later

  Worker& w_;
  http::Request* req_;  // ours until answered or released (also once detached)
  uint64_t started_us_;
  std::vector<Chan> chans_;
  State state_ = State::subscribing;
  size_t unconfirmed_ = 0;
  size_t reads_outstanding_ = 0;
  bool timed_out_ = false, client_gone_ = false, hub_lost_ = false, woken_ = false;
  bool read_failed_ = false;
  bool hub_never_up_ = false;  // the hub was down when the poll came
  bool counted_held_ = false;  // counted in rt_held_polls
  int rereads_ = 0;            // re-read rounds in a row that answered nothing
  std::string read_error_;
  EventPtr timer_;
};

}  // namespace rt
