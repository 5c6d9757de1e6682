#include "poll.hpp"

#include "http_reply.hpp"
#include "log.hpp"
#include "metrics.hpp"

namespace rt {

namespace {

// The fast path's view: the channels by name, before any registration exists.
class NamedChannels final : public PollCore::ChannelView {
 public:
  NamedChannels(Hub& hub, const std::vector<proto::ChannelPos>& chans) : hub_(hub), chans_(chans) {}
  const std::string& channel(size_t idx) const noexcept override { return chans_[idx].channel; }
  PollCore::Decision decide(size_t idx, uint64_t last, const proto::Message** msg) noexcept override {
    return hub_.decide(chans_[idx].channel, last, msg);
  }

 private:
  Hub& hub_;
  const std::vector<proto::ChannelPos>& chans_;
};

}  // namespace

Poll::Poll(Worker& w, http::Request* req, std::vector<proto::ChannelPos> chans, uint64_t started_us)
    : w_(w), req_(req), started_us_(started_us), links_(new HubLink[chans.size()]),
      core_(chans, *this, uint64_t(w.cfg().poll_timeout_s * 1000.0 + 0.5)), to_subscribe_(std::move(chans)) {
  for (size_t i = 0; i < to_subscribe_.size(); i++) {
    links_[i].listener = this;
    links_[i].idx = uint32_t(i);
  }
  metrics::get().open_polls.fetch_add(1, std::memory_order_relaxed);
}

Poll::~Poll() {
  metrics::get().open_polls.fetch_sub(1, std::memory_order_relaxed);
  if (counted_held_) metrics::get().held_polls.fetch_sub(1, std::memory_order_relaxed);
}

void Poll::start(Worker& w, http::Request* req, std::vector<proto::ChannelPos> chans, uint64_t started_us) noexcept {
  // The catch-up fast path: no Poll and no Redis round trip when the mirrors know it all.
  {
    NamedChannels view(w.hub(), chans);
    std::string body;
    size_t delivered = 0;
    if (PollCore::answer_from_mirrors(chans, view, &body, &delivered)) {
      send_json(req, 200, body, metrics::Endpoint::rt, w.reply_options());
      auto& mt = metrics::get();
      mt.mirror_decisions.fetch_add(chans.size(), std::memory_order_relaxed);
      mt.deliveries.fetch_add(delivered, std::memory_order_relaxed);
      return;
    }
  }
  // One bound for the whole process (all workers); threads may overshoot it by a few.
  if (metrics::get().open_polls.load(std::memory_order_relaxed) >= int64_t(w.cfg().max_held)) {
    send_error(req, 503, "too many open polls, retry later", metrics::Endpoint::rt, w.reply_options());
    return;
  }
  Poll* p = nullptr;
  try {
    p = new Poll(w, req, std::move(chans), started_us);
  } catch (...) {
    send_error(req, 503, "out of memory", metrics::Endpoint::rt, w.reply_options());
    return;
  }
  // The HTTP layer reads the connection all along: a client that goes away (held or not)
  // is reported here at once.
  req->on_gone(on_gone, p);
  p->feed([p](PollCore::Actions& out) { p->core_.start(out); });
}

// --- events: into the core -----------------------------------------------------------------

// Events go through feed() (below): a held poll keeps no action list, and an event costs no
// allocation for it.

void Poll::on_subscribed(size_t idx) noexcept {
  feed([&](PollCore::Actions& out) { core_.on_subscribed(idx, out); });
}

void Poll::on_message(size_t idx, const SharedMessagePtr& shared) noexcept {
  feed([&](PollCore::Actions& out) { core_.on_message(idx, shared, shared->msg, out); });
}

void Poll::on_hub_lost() noexcept {
  feed([this](PollCore::Actions& out) { core_.on_hub_lost(out); });  // the hub already unregistered every link
}

void Poll::on_redis_head(size_t idx, uint64_t n) noexcept {
  feed([&](PollCore::Actions& out) { core_.on_redis_head(idx, n, out); });
}

void Poll::on_fence(bool ok) noexcept {
  feed([&](PollCore::Actions& out) { core_.on_fence(ok, out); });
}

void Poll::on_channel_read(uint32_t tag, ChannelReadResult&& result) noexcept {
  // Also called from inside read_channels() (a read that could not be sent): see feed().
  feed([&](PollCore::Actions& out) { core_.on_read_result(tag, std::move(result), out); });
}

void Poll::on_timeout(evutil_socket_t, short, void* arg) noexcept {
  auto* p = static_cast<Poll*>(arg);
  p->feed([p](PollCore::Actions& out) { p->core_.on_timeout(out); });
}

void Poll::on_gone(void* arg) noexcept {
  // Only record it: the Request is detached but still ours (released by the drop action).
  auto* p = static_cast<Poll*>(arg);
  metrics::get().client_drops.fetch_add(1, std::memory_order_relaxed);
  RT_LOG(debug, "client closed an open poll");
  p->feed([p](PollCore::Actions& out) { p->core_.on_client_gone(out); });
}

void Poll::run_deferred() noexcept {
  feed([this](PollCore::Actions& out) { core_.run(out); });
  if (free_ && !is_queued()) delete this;
}

// --- actions -------------------------------------------------------------------------------

namespace {

// The action list of one event. Every poll of this thread's loop reuses one list (its capacity
// stays), so an event allocates nothing for its actions; an event of another poll that comes
// while that list is in use (a callback inside an action, rare) gets a list of its own.
class ActionBuffer {
 public:
  ActionBuffer() noexcept : shared_(!busy_) { busy_ = busy_ || shared_; }
  ~ActionBuffer() {
    if (!shared_) return;
    spare().clear();  // destroys what the actions left (moved from); keeps the capacity
    busy_ = false;
  }
  ActionBuffer(const ActionBuffer&) = delete;
  ActionBuffer& operator=(const ActionBuffer&) = delete;
  PollCore::Actions& get() noexcept { return shared_ ? spare() : own_; }

 private:
  static PollCore::Actions& spare() noexcept {
    static thread_local PollCore::Actions list;
    return list;
  }
  static thread_local bool busy_;
  bool shared_;
  PollCore::Actions own_;
};
thread_local bool ActionBuffer::busy_ = false;

}  // namespace

template <class Event>
void Poll::feed(Event&& event) noexcept {
  if (performing_ != nullptr) {
    // An event of this poll from inside one of its own actions (read_channels() reporting a
    // read it could not send): its actions join the list being carried out, after the
    // current one, so nothing is performed twice or out of the list's order.
    event(*performing_);
    return;
  }
  ActionBuffer buf;
  performing_ = &buf.get();
  event(*performing_);
  perform(*performing_);
  performing_ = nullptr;
}

void Poll::perform(PollCore::Actions& out) noexcept {
  for (size_t i = 0; i < out.size(); i++) {
    PollCore::Action a = std::move(out[i]);  // `out` may grow while `a` is carried out
    perform(a, out);
  }
  PollCore::Counts c = core_.take_counts();
  auto& m = metrics::get();
  if (c.mirror_decisions) m.mirror_decisions.fetch_add(c.mirror_decisions, std::memory_order_relaxed);
  if (c.backlog_reads) m.backlog_reads.fetch_add(c.backlog_reads, std::memory_order_relaxed);
  if (c.redis_errors) m.redis_errors.fetch_add(c.redis_errors, std::memory_order_relaxed);
  if (c.poll_timeouts) m.poll_timeouts.fetch_add(c.poll_timeouts, std::memory_order_relaxed);
  if (c.rereads) m.rereads.fetch_add(c.rereads, std::memory_order_relaxed);
}

void Poll::perform(PollCore::Action& a, PollCore::Actions& out) noexcept {
  using K = PollCore::ActionKind;
  switch (a.kind) {
    case K::subscribe:
      subscribe_all(out);
      return;
    case K::unsubscribe:
      for (size_t i = 0; i < core_.size(); i++) w_.hub().remove(&links_[i]);  // no-op when not registered
      if (counted_held_) {
        counted_held_ = false;
        metrics::get().held_polls.fetch_sub(1, std::memory_order_relaxed);
      }
      return;
    case K::read:
      read(a.channels, out);
      return;
    case K::fence:
      if (!w_.hub().fence(this)) core_.on_fence_refused(out);
      return;
    case K::cancel_fence:
      w_.hub().cancel_fence(this);
      return;
    case K::arm_timer: {
      timer_.reset(evtimer_new(w_.base(), on_timeout, this));
      timeval tv = ms_to_tv(a.delay_ms);
      if (timer_) evtimer_add(timer_.get(), &tv);
      return;
    }
    case K::stop_timer:
      timer_.reset();
      return;
    case K::hold:
      if (!counted_held_) {  // held until answered, re-read rounds included: rt_held_polls
        counted_held_ = true;
        metrics::get().held_polls.fetch_add(1, std::memory_order_relaxed);
      }
      return;
    case K::answer:
      if (req_ != nullptr && req_->connected()) {
        send_json(req_, 200, a.body, metrics::Endpoint::rt, w_.reply_options());
        req_ = nullptr;
        sent(200, a);
      } else {
        release_request();
      }
      return;
    case K::answer_single:
      if (req_ != nullptr && req_->connected()) answer_single(a);
      else release_request();
      return;
    case K::fail:
      if (req_ != nullptr && req_->connected()) {
        send_error(req_, a.status, a.error, metrics::Endpoint::rt, w_.reply_options());
        req_ = nullptr;
        sent(a.status, a);
      } else {
        release_request();
      }
      return;
    case K::drop:
      release_request();
      return;
    case K::wake:
      w_.defer(this);
      return;
    case K::free:
      release_request();  // never left unanswered or unreleased
      free_ = true;
      w_.defer(this);  // deleted by run_deferred, never from inside a callback
      return;
  }
}

void Poll::subscribe_all(PollCore::Actions& out) noexcept {
  // Subscribe first: a message published after this point reaches us on pub/sub or is in
  // the backlog the read (which starts once every SUBSCRIBE is confirmed) returns.
  std::vector<proto::ChannelPos> chans = std::move(to_subscribe_);
  to_subscribe_ = {};
  for (size_t i = 0; i < chans.size(); i++) {
    Hub::AddResult r = Hub::AddResult::unavailable;
    try {
      r = w_.hub().add(chans[i].channel, &links_[i]);
    } catch (...) {  // out of memory: like a hub that is down
    }
    if (r == Hub::AddResult::confirmed) core_.on_subscribed(i, out);
    if (r == Hub::AddResult::unavailable) {
      core_.on_hub_unavailable(out);
      return;
    }
  }
}

void Poll::read(const std::vector<uint32_t>& channels, PollCore::Actions& out) noexcept {
  std::vector<ChannelRead> reads;
  try {
    reads.resize(channels.size());
  } catch (...) {
    for (uint32_t i : channels) {
      ChannelReadResult r;
      r.error = "out of memory";
      core_.on_read_result(i, std::move(r), out);
    }
    return;
  }
  for (size_t k = 0; k < channels.size(); k++) {
    reads[k].channel = channel(channels[k]);
    reads[k].last = core_.last_id(channels[k]);
    reads[k].tag = channels[k];
  }
  read_channels(w_, reads, this);
}

void Poll::answer_single(const PollCore::Action& a) noexcept {
  // Every poll of this worker that waits on the same channel at the same id sends the same
  // bytes: built once, by the first, and added by reference by the others.
  const auto* sm = static_cast<const SharedMessage*>(a.single.owner.get());
  if (!sm->single_body) {
    std::string body;
    try {
      body = PollCore::single_body(channel(0), sm->msg);
    } catch (...) {
      send_error(req_, 503, "out of memory", metrics::Endpoint::rt, w_.reply_options());
      req_ = nullptr;
      return;
    }
    EvbufferPtr buf(evbuffer_new());
    if (!buf || evbuffer_add(buf.get(), body.data(), body.size()) != 0) {
      send_json(req_, 200, body, metrics::Endpoint::rt, w_.reply_options());  // out of memory: a copy
      req_ = nullptr;
      sent(200, a);
      return;
    }
    sm->single_body = std::move(buf);
  }
  send_json_shared(req_, 200, sm->single_body.get(), metrics::Endpoint::rt, w_.reply_options());
  req_ = nullptr;
  sent(200, a);
}

void Poll::release_request() noexcept {
  if (req_ == nullptr) return;
  req_->release();
  req_ = nullptr;
}

void Poll::sent(int status, const PollCore::Action& a) noexcept {
  auto& m = metrics::get();
  m.deliveries.fetch_add(a.delivered, std::memory_order_relaxed);
  m.resets_behind.fetch_add(a.resets_behind, std::memory_order_relaxed);
  m.resets_lost.fetch_add(a.resets_lost, std::memory_order_relaxed);
  if (!log::enabled(log::Level::debug)) return;
  uint64_t us = now_us() - started_us_;
  if (status == 200)
    RT_LOG(debug, "rt answered").kv("status", 200).kv("channels", core_.size()).kv("entries", a.entries)
        .kv("messages", a.delivered).kv("ms", double(us) / 1000.0);
  else
    RT_LOG(debug, "rt answered").kv("status", status).kv("error", a.error).kv("ms", double(us) / 1000.0);
}

}  // namespace rt
