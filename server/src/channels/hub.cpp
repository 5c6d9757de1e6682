#include "hub.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "json_check.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "mirror_timing.hpp"
#include "protocol/protocol.hpp"

namespace rt {

namespace {
constexpr size_t kMaxIdle = 10000;     // beyond this many lingering channels, unsubscribe at once
using timing::kLingerMs;
using timing::kPingEveryMs;
constexpr uint64_t kTickMs = timing::kHubTickMs;
constexpr uint64_t kTicksPerSweep = timing::kSweepMs / timing::kHubTickMs;
}  // namespace

Hub::Hub(event_base* base, RedisLink& link, RedisLink* pinger, ScriptSet* scripts, std::string key_prefix,
         uint64_t timeout_ms, const std::string& tag)
    : link_(link), pinger_(pinger), scripts_(scripts), keys_(std::move(key_prefix)), timeout_ms_(timeout_ms) {
  // Not a valid channel name ('!'), so no client channel can collide with it.
  sentinel_ = keys_.pubsub("!rt-hub." + tag);
  tick_ev_.reset(event_new(base, -1, EV_PERSIST, on_tick, this));
  fence_ev_.reset(event_new(base, -1, 0, on_fence_send, this));
  timeval tv = ms_to_tv(kTickMs);
  event_add(tick_ev_.get(), &tv);
}

Hub::~Hub() {
  for (auto& kv : chans_)
    if (kv.second.state == SubState::subscribed)
      metrics::get().subscribed_channels.fetch_sub(1, std::memory_order_relaxed);
}

std::string Hub::pubsub_name(const std::string& channel) const { return keys_.pubsub(channel); }

void Hub::set_state(Chan& c, SubState s) noexcept {
  if (c.state == SubState::subscribed && s != SubState::subscribed)
    metrics::get().subscribed_channels.fetch_sub(1, std::memory_order_relaxed);
  if (c.state != SubState::subscribed && s == SubState::subscribed)
    metrics::get().subscribed_channels.fetch_add(1, std::memory_order_relaxed);
  c.state = s;
}

bool Hub::send(const char* verb, const std::string& channel) noexcept {
  redisAsyncContext* ac = link_.context();
  if (ac == nullptr) return false;
  std::string name = channel.empty() ? sentinel_ : pubsub_name(channel);
  const char* argv[] = {verb, name.c_str()};
  size_t lens[] = {strlen(verb), name.size()};
  // SUBSCRIBE registers on_sub_reply for the channel; UNSUBSCRIBE's reply goes to it too.
  if (redisAsyncCommandArgv(ac, on_sub_reply, this, 2, argv, lens) != REDIS_OK) return false;
  in_flight_.push_back(now_ms());
  return true;
}

Hub::AddResult Hub::add(const std::string& channel, HubLink* link) {
  if (!link_.up()) return AddResult::unavailable;
  auto it = chans_.find(channel);
  if (it == chans_.end()) {
    if (!send("SUBSCRIBE", channel)) return AddResult::unavailable;
    it = chans_.emplace(channel, Chan()).first;
    it->second.name = &it->first;
    it->second.state = SubState::subscribing;
  }
  Chan& c = it->second;
  if (c.empty() && c.state == SubState::subscribed && idle_count_ > 0) idle_count_--;
  link->prev = nullptr;
  link->next = c.head;
  if (c.head) c.head->prev = link;
  c.head = link;
  link->chan = &c;
  return c.state == SubState::subscribed && !c.seed_gate ? AddResult::confirmed : AddResult::pending;
}

void Hub::remove(HubLink* link) noexcept {
  if (link->chan == nullptr) return;
  Chan& c = *static_cast<Chan*>(link->chan);
  if (link->prev) link->prev->next = link->next;
  else c.head = link->next;
  if (link->next) link->next->prev = link->prev;
  link->prev = link->next = nullptr;
  link->chan = nullptr;
  if (!c.empty()) return;
  if (c.state == SubState::subscribed) {
    c.idle_since_ms = now_ms();
    idle_count_++;
    if (idle_count_ > kMaxIdle) {
      // Too many lingering channels: this one goes at once.
      if (send("UNSUBSCRIBE", *c.name)) {
        idle_count_--;
        set_state(c, SubState::unsubscribing);
        c.mirror.drop();
        c.seed_gate = false;
      }
    }
  }
  // subscribing: decided when the confirmation arrives; unsubscribing: already leaving.
}

const std::string& Hub::channel_of(const HubLink& link) const noexcept {
  static const std::string none;
  return link.chan ? *static_cast<const Chan*>(link.chan)->name : none;
}

void Hub::on_sub_reply(redisAsyncContext* ac, void* reply, void* priv) noexcept {
  if (reply == nullptr || ac->data == nullptr) return;  // connection going away
  static_cast<Hub*>(priv)->handle_reply(static_cast<redisReply*>(reply));
}

void Hub::handle_reply(redisReply* r) noexcept {
  last_rx_ms_ = now_ms();
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 || r->element[0]->type != REDIS_REPLY_STRING ||
      r->element[1]->type != REDIS_REPLY_STRING)
    return;
  std::string_view type(r->element[0]->str, r->element[0]->len);
  std::string_view name(r->element[1]->str, r->element[1]->len);
  bool is_sub = type == "subscribe", is_unsub = type == "unsubscribe";
  if ((is_sub || is_unsub) && !in_flight_.empty()) in_flight_.pop_front();
  if (name == sentinel_) {
    if (type == "message") {
      // The connection delivers. (The message may come before the PUBLISH's own reply on the
      // command link: the sequence number tells on_ping_published it already arrived.)
      uint64_t seq = 0;
      std::string_view text = r->element[2]->type == REDIS_REPLY_STRING
                                  ? std::string_view(r->element[2]->str, r->element[2]->len)
                                  : std::string_view();
      if (!text.empty() && text[0] == 'f') {
        if (proto::parse_id(text.substr(1), &seq)) fences_done(seq, true);  // a fence: see fence()
      } else if (proto::parse_id(text, &seq) && seq > ping_seen_) {
        ping_seen_ = seq;
      }
      ping_awaited_ms_ = 0;
    } else if (is_sub) {
      sentinel_confirmed_ = true;
      RT_LOG(debug, "pub/sub hub ready").kv("link", link_.name());
    }
    return;
  }
  std::string channel;
  if (!keys_.channel_of_pubsub(name, &channel)) return;
  auto it = chans_.find(channel);
  if (it == chans_.end()) return;
  Chan& c = it->second;

  if (type == "message") {
    metrics::get().pubsub_messages.fetch_add(1, std::memory_order_relaxed);
    if (r->element[2]->type != REDIS_REPLY_STRING) return;
    std::shared_ptr<SharedMessage> shared;
    try {
      shared = std::make_shared<SharedMessage>();
      shared->msg.json.assign(r->element[2]->str, r->element[2]->len);
    } catch (...) {
      // Out of memory: the message cannot be passed on. Polls would miss it silently, so
      // drop the connection: every open poll is answered 503 and retries from its last id.
      link_down_pending_ = true;
      return;
    }
    proto::Message& msg = shared->msg;
    if (!check_message(msg.json, &msg.id, &msg.prev)) {
      metrics::get().invalid_messages.fetch_add(1, std::memory_order_relaxed);
      RT_LOG(warn, "invalid message on pub/sub, skipped").kv("channel", channel).kv("message", msg.json.substr(0, 200));
      return;
    }
    c.mirror.on_message(msg);  // before the listeners: a poll woken now sees the same N
    SharedMessagePtr ptr(std::move(shared));
    for (HubLink* l = c.head; l; l = l->next) l->listener->on_message(l->idx, ptr);
  } else if (is_sub) {
    if (c.state != SubState::subscribing) return;
    set_state(c, SubState::subscribed);
    // The seed read must start after the subscription is confirmed. The listeners hear
    // "subscribed" only when it is back (or could not be sent): polls that came together
    // (a fan-out's thousands, a front page's hundreds of channels) then decide from the
    // mirror instead of each reading Redis for the same channel.
    c.seed_gate = start_seed(channel, c);
    if (c.empty()) {
      c.idle_since_ms = now_ms();
      idle_count_++;
      return;
    }
    if (!c.seed_gate)
      for (HubLink* l = c.head; l; l = l->next) l->listener->on_subscribed(l->idx);
  } else if (is_unsub) {
    if (c.state != SubState::unsubscribing) return;
    if (c.empty()) {
      chans_.erase(it);
      return;
    }
    // Someone wanted the channel again while it was leaving: subscribe anew.
    if (send("SUBSCRIBE", channel)) {
      c.state = SubState::subscribing;
    } else {
      link_down_pending_ = true;
    }
  }
}

void Hub::on_tick(evutil_socket_t, short, void* arg) noexcept { static_cast<Hub*>(arg)->tick(); }

void Hub::on_ping_published(redisReply* reply, void* priv) noexcept {
  auto* self = static_cast<Hub*>(priv);  // the hub outlives its pinger link (see the constructor)
  self->ping_in_flight_ = false;
  // Redis has run the PUBLISH: the message is due on our pub/sub connection from now on (a
  // count of 0 receivers means our subscription is gone: it will time out the same way).
  // A ping sent before the pub/sub connection was replaced proves nothing about the new one.
  if (reply != nullptr && reply->type == REDIS_REPLY_INTEGER && self->ping_awaited_ms_ == 0 &&
      self->ping_epoch_ == self->epoch_ && self->link_.up()) {
    if (self->ping_seen_ < self->ping_seq_)
      self->ping_awaited_ms_ = now_ms();
    else
      RT_LOG(debug, "liveness ping arrived before its PUBLISH reply").kv("link", self->link_.name());
  }
}

void Hub::tick() noexcept {
  if (!link_.up()) return;
  uint64_t now = now_ms();
  if (link_down_pending_ || (!in_flight_.empty() && now - in_flight_.front() > timeout_ms_)) {
    link_down_pending_ = false;
    link_.kill(in_flight_.empty() ? "pub/sub send failed" : "pub/sub timeout");  // -> on_link_down
    return;
  }
  // Liveness: a ping published on the command link must arrive here. Generous deadline, and
  // only a connection that has also delivered nothing else for a timeout counts as silent:
  // under a flood of messages a busy server reads its backlog first, and the ping sits
  // behind it in Redis's output buffer (pub/sub keeps order), late but not lost.
  if (ping_awaited_ms_ != 0 && now - ping_awaited_ms_ > 3 * timeout_ms_ && now - last_rx_ms_ > timeout_ms_) {
    ping_awaited_ms_ = 0;
    link_.kill("pub/sub silent (liveness ping not delivered)");
    return;
  }
  if (pinger_ && sentinel_confirmed_ && !ping_in_flight_ && ping_awaited_ms_ == 0 &&
      now - last_ping_ms_ >= kPingEveryMs) {
    std::string seq = std::to_string(++ping_seq_);
    const char* argv[] = {"PUBLISH", sentinel_.c_str(), seq.c_str()};
    size_t lens[] = {7, sentinel_.size(), seq.size()};
    if (pinger_->command(on_ping_published, this, 3, argv, lens)) {
      ping_in_flight_ = true;
      ping_epoch_ = epoch_;
      last_ping_ms_ = now;
    }
  }
  // Every sweep: mirror seeds and verifications, then unsubscribe channels that have
  // lingered unused long enough (full scans).
  if (++sweep_tick_ % kTicksPerSweep != 0) return;
  maintain_mirrors(now);
  if (idle_count_ == 0) return;
  std::vector<std::string> expired;
  for (auto& kv : chans_) {
    const Chan& c = kv.second;
    if (c.state == SubState::subscribed && c.empty() && now - c.idle_since_ms >= kLingerMs)
      expired.push_back(kv.first);
  }
  for (const auto& name : expired) {
    Chan& c = chans_[name];
    if (!send("UNSUBSCRIBE", name)) break;
    idle_count_--;
    set_state(c, SubState::unsubscribing);
    c.mirror.drop();
    c.seed_gate = false;
  }
}

// --- channel mirrors ------------------------------------------------------------------------

namespace {
// One seed read or verification in flight. Freed in its reply callback (called exactly
// once); the channel is looked up again by name: it may be gone or re-seeded by then.
struct MirrorCall {
  Hub* hub;
  std::string channel;
  uint64_t token;
  uint64_t n_sent;
};
}  // namespace

ChannelMirror::Decision Hub::decide(const std::string& channel, uint64_t last, const proto::Message** msg) noexcept {
  auto it = chans_.find(channel);
  if (it == chans_.end()) return ChannelMirror::Decision::unknown;
  return decide(it->second, last, msg);
}

ChannelMirror::Decision Hub::decide(const HubLink& link, uint64_t last, const proto::Message** msg) noexcept {
  if (link.chan == nullptr) return ChannelMirror::Decision::unknown;
  return decide(*static_cast<Chan*>(link.chan), last, msg);
}

ChannelMirror::Decision Hub::decide(Chan& c, uint64_t last, const proto::Message** msg) noexcept {
  if (c.state != SubState::subscribed) return ChannelMirror::Decision::unknown;
  uint64_t now = now_ms();
  ChannelMirror::Decision d = c.mirror.decide(last, now, msg);
  if (d == ChannelMirror::Decision::unknown) {
    if (c.mirror.state() == ChannelMirror::State::empty)
      start_seed(*c.name, c);
    else if (c.mirror.wants_verify(now, false))
      start_verify(*c.name, c);
  }
  return d;
}

bool Hub::start_seed(const std::string& channel, Chan& c) noexcept {
  if (pinger_ == nullptr || scripts_ == nullptr || !pinger_->up()) return false;
  auto* call = new (std::nothrow) MirrorCall{this, std::string(), 0, 0};
  if (call == nullptr) return false;
  try {
    call->channel = channel;
    call->token = c.mirror.begin_seed(now_ms());
    // read.lua with L = 0 and a limit of 0 messages: {N} or {N, {}, newest}, atomically.
    std::vector<std::string> keys{keys_.msg_id(channel), keys_.backlog(channel)};
    std::vector<std::string> args{"0", "0"};
    if (run_script(*pinger_, scripts_->read, keys, args, on_seed_reply, call)) return true;
  } catch (...) {
  }
  c.mirror.drop();
  delete call;
  return false;
}

void Hub::on_seed_reply(redisReply* r, void* priv) noexcept {
  auto* call = static_cast<MirrorCall*>(priv);
  Hub* self = call->hub;
  auto it = self->chans_.find(call->channel);
  if (it != self->chans_.end()) {
    ChannelMirror& m = it->second.mirror;
    bool ok = r != nullptr && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
              r->element[0]->type == REDIS_REPLY_INTEGER && r->element[0]->integer >= 0;
    proto::Message newest;
    bool has_newest = false;
    if (ok && r->elements >= 3 && r->element[2]->type == REDIS_REPLY_STRING) {
      try {
        newest.json.assign(r->element[2]->str, r->element[2]->len);
        has_newest = check_message(newest.json, &newest.id, &newest.prev);
      } catch (...) {
        ok = false;
      }
    }
    uint64_t n = ok ? uint64_t(r->element[0]->integer) : 0;
    m.seed_done(call->token, ok, n, has_newest ? &newest : nullptr);
    Chan& c = it->second;
    if (ok) {
      RT_LOG(debug, "mirror seeded").kv("channel", call->channel).kv("n", n);
      for (HubLink* l = c.head; l; l = l->next) l->listener->on_redis_head(l->idx, n);
    }
    if (c.seed_gate && c.state == SubState::subscribed && m.state() != ChannelMirror::State::seeding) {
      // The first seed is back (or failed: polls then read Redis): release the listeners.
      c.seed_gate = false;
      for (HubLink* l = c.head; l; l = l->next) l->listener->on_subscribed(l->idx);
    }
  }
  delete call;
}

void Hub::start_verify(const std::string& channel, Chan& c) noexcept {
  if (pinger_ == nullptr || !pinger_->up()) return;
  auto* call = new (std::nothrow) MirrorCall{this, std::string(), 0, 0};
  if (call == nullptr) return;
  try {
    call->channel = channel;
    std::string key = keys_.msg_id(channel);
    call->token = c.mirror.begin_verify(now_ms(), &call->n_sent);
    const char* argv[] = {"GET", key.c_str()};
    size_t lens[] = {3, key.size()};
    if (pinger_->command(on_verify_reply, call, 2, argv, lens)) return;
  } catch (...) {
  }
  c.mirror.drop();
  delete call;
}

void Hub::on_verify_reply(redisReply* r, void* priv) noexcept {
  auto* call = static_cast<MirrorCall*>(priv);
  Hub* self = call->hub;
  auto it = self->chans_.find(call->channel);
  if (it != self->chans_.end()) {
    Chan& c = it->second;
    uint64_t n = 0;
    bool ok = r != nullptr && (r->type == REDIS_REPLY_NIL ||
                               (r->type == REDIS_REPLY_STRING && proto::parse_id(std::string_view(r->str, r->len), &n)));
    bool lost = c.mirror.verify_done(call->token, ok, call->n_sent, n);
    if (ok)
      for (HubLink* l = c.head; l; l = l->next) l->listener->on_redis_head(l->idx, n);
    if (lost) {
      metrics::get().mirror_history_lost.fetch_add(1, std::memory_order_relaxed);
      RT_LOG(info, "channel history lost without a publish (msg_id went back)")
          .kv("channel", call->channel).kv("was", call->n_sent).kv("now", n);
      self->start_seed(call->channel, c);
    }
  }
  delete call;
}

void Hub::maintain_mirrors(uint64_t now) noexcept {
  if (pinger_ == nullptr || scripts_ == nullptr || !pinger_->up()) return;
  for (auto& kv : chans_) {
    Chan& c = kv.second;
    if (c.state != SubState::subscribed) continue;
    if (c.mirror.state() == ChannelMirror::State::empty)
      start_seed(kv.first, c);  // dropped (a gap, a failed read): seed again
    else if (c.mirror.wants_verify(now, !c.empty()))
      start_verify(kv.first, c);
  }
}

// --- fences -----------------------------------------------------------------------------

namespace {
// One fence PUBLISH in flight. Freed in its reply callback (called exactly once).
struct FenceCall {
  Hub* hub;
  uint64_t seq;
};
}  // namespace

bool Hub::fence(HubListener* l) {
  if (!up() || pinger_ == nullptr || !pinger_->up()) return false;
  if (!fence_scheduled_) {
    fence_scheduled_ = true;
    fence_seq_++;
    event_active(fence_ev_.get(), EV_TIMEOUT, 1);
  }
  fence_waiters_.emplace_back(l, fence_seq_);
  return true;
}

void Hub::cancel_fence(HubListener* l) noexcept {
  for (size_t i = 0; i < fence_waiters_.size();) {
    if (fence_waiters_[i].first == l) {
      fence_waiters_[i] = fence_waiters_.back();
      fence_waiters_.pop_back();
    } else {
      i++;
    }
  }
}

void Hub::on_fence_send(evutil_socket_t, short, void* arg) noexcept {
  auto* self = static_cast<Hub*>(arg);
  self->fence_scheduled_ = false;
  uint64_t seq = self->fence_seq_;
  std::string payload = "f" + std::to_string(seq);
  const char* argv[] = {"PUBLISH", self->sentinel_.c_str(), payload.c_str()};
  size_t lens[] = {7, self->sentinel_.size(), payload.size()};
  auto* call = new (std::nothrow) FenceCall{self, seq};
  if (call == nullptr || self->pinger_ == nullptr || !self->pinger_->command(on_fence_published, call, 3, argv, lens)) {
    delete call;
    self->fences_done(seq, false);
  }
}

void Hub::on_fence_published(redisReply* reply, void* priv) noexcept {
  auto* call = static_cast<FenceCall*>(priv);
  // Redis ran the PUBLISH and our pub/sub connection was among its receivers: the message
  // is on its way (it may even be here already). Otherwise it will never come.
  if (reply == nullptr || reply->type != REDIS_REPLY_INTEGER || reply->integer < 1)
    call->hub->fences_done(call->seq, false);
  delete call;
}

void Hub::fences_done(uint64_t up_to_seq, bool ok) noexcept {
  std::vector<HubListener*> done;
  for (size_t i = 0; i < fence_waiters_.size();) {
    if (fence_waiters_[i].second <= up_to_seq) {
      done.push_back(fence_waiters_[i].first);
      fence_waiters_[i] = fence_waiters_.back();
      fence_waiters_.pop_back();
    } else {
      i++;
    }
  }
  for (HubListener* l : done) l->on_fence(ok);
}

void Hub::on_link_up() noexcept {
  epoch_++;
  sentinel_confirmed_ = false;
  ping_awaited_ms_ = 0;
  link_down_pending_ = false;
  in_flight_.clear();
  if (!send("SUBSCRIBE", std::string())) link_down_pending_ = true;
}

void Hub::on_link_down() noexcept {
  fences_done(UINT64_MAX, false);
  epoch_++;
  sentinel_confirmed_ = false;
  ping_awaited_ms_ = 0;
  in_flight_.clear();
  idle_count_ = 0;
  std::vector<HubListener*> lost;
  for (auto& kv : chans_) {
    if (kv.second.state == SubState::subscribed)
      metrics::get().subscribed_channels.fetch_sub(1, std::memory_order_relaxed);
    for (HubLink* l = kv.second.head; l; l = l->next) {
      lost.push_back(l->listener);
      l->chan = nullptr;  // the entry is about to go: the links are unregistered
    }
  }
  chans_.clear();
  std::sort(lost.begin(), lost.end());
  lost.erase(std::unique(lost.begin(), lost.end()), lost.end());
  if (!lost.empty()) RT_LOG(warn, "pub/sub lost, failing open polls").kv("polls", lost.size());
  for (HubListener* l : lost) l->on_hub_lost();
}

}  // namespace rt
