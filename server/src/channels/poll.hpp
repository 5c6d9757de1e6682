// The driver of one GET /rt request: it owns the evhttp request, the timer, the hub
// registrations and the Redis reads, feeds every event into a PollCore (poll_core.hpp: the
// rules of a poll, without I/O) and carries out the actions that come back. The reads go
// through read_channels() (redis/channel_reader.hpp), which alone knows how Redis is asked.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "channel_reader.hpp"
#include "http_server.hpp"
#include "hub.hpp"
#include "poll_core.hpp"
#include "protocol/protocol.hpp"
#include "worker.hpp"

namespace rt {

class Poll final : public HubListener, public Deferred, public ChannelReadSink, private PollCore::ChannelView {
 public:
  // Takes over `req`: answers it exactly once, or releases it when its client went away.
  // `chans` is the parsed, valid query. `started_us` is the request's arrival (now_us()).
  static void start(Worker& w, http::Request* req, std::vector<proto::ChannelPos> chans,
                    uint64_t started_us) noexcept;

  // HubListener (hub callbacks: only fed into the core; the work runs from run_deferred)
  void on_subscribed(size_t idx) noexcept override;
  void on_message(size_t idx, const SharedMessagePtr& msg) noexcept override;
  void on_hub_lost() noexcept override;
  void on_redis_head(size_t idx, uint64_t n) noexcept override;
  void on_fence(bool ok) noexcept override;
  // ChannelReadSink
  void on_channel_read(uint32_t tag, ChannelReadResult&& result) noexcept override;
  // Deferred: the core's step; frees the poll once the core said `free`
  void run_deferred() noexcept override;

 private:
  Poll(Worker& w, http::Request* req, std::vector<proto::ChannelPos> chans, uint64_t started_us);
  ~Poll() override;

  // PollCore::ChannelView over the hub registrations
  const std::string& channel(size_t idx) const noexcept override { return w_.hub().channel_of(links_[idx]); }
  PollCore::Decision decide(size_t idx, uint64_t last, const proto::Message** msg) noexcept override {
    return w_.hub().decide(links_[idx], last, msg);
  }

  static void on_timeout(evutil_socket_t, short, void* arg) noexcept;
  static void on_gone(void* arg) noexcept;  // the client's connection died

  // Feeds one event into the core (event(out) appends its actions) and carries them out;
  // re-entrant for this poll's own events (see poll.cpp).
  template <class Event>
  void feed(Event&& event) noexcept;
  // Carries out `out` in order, including the actions its own steps append to it.
  void perform(PollCore::Actions& out) noexcept;
  void perform(PollCore::Action& a, PollCore::Actions& out) noexcept;
  void subscribe_all(PollCore::Actions& out) noexcept;
  void read(const std::vector<uint32_t>& channels, PollCore::Actions& out) noexcept;
  void answer_single(const PollCore::Action& a) noexcept;
  void sent(int status, const PollCore::Action& a) noexcept;  // metrics and log of an answer
  void release_request() noexcept;  // the client is gone (detached): free the request

  Worker& w_;
  http::Request* req_;  // ours until answered or released (also once detached)
  uint64_t started_us_;
  std::unique_ptr<HubLink[]> links_;  // one per channel; never moved (the hub points into it)
  PollCore core_;
  std::vector<proto::ChannelPos> to_subscribe_;  // until the subscribe action (then empty)
  EventPtr timer_;
  PollCore::Actions* performing_ = nullptr;  // the list being carried out, inside feed()
  bool counted_held_ = false;  // counted in rt_held_polls
  bool free_ = false;          // the core said free: delete from run_deferred
};

}  // namespace rt
