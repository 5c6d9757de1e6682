#include "channel_registry.hpp"

#include <algorithm>
#include <vector>

#include "json_check.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "mirror_timing.hpp"

namespace rt {

namespace {
using timing::kLingerMs;

void gauge(int delta) noexcept {
  metrics::get().subscribed_channels.fetch_add(delta, std::memory_order_relaxed);
}
}  // namespace

ChannelRegistry::ChannelRegistry(event_base* base, PubSubConnection& conn) : conn_(conn) {
  conn_.set_sink(this);
  sweep_ev_.reset(event_new(base, -1, EV_PERSIST, on_sweep, this));
  timeval tv = ms_to_tv(timing::kSweepMs);
  event_add(sweep_ev_.get(), &tv);
}

ChannelRegistry::~ChannelRegistry() {
  for (auto& kv : chans_)
    if (kv.second.subscribed) gauge(-1);
}

ChannelRegistry::AddResult ChannelRegistry::add(const std::string& channel, HubLink* link) {
  if (!conn_.connected()) return AddResult::unavailable;
  auto it = chans_.find(channel);
  if (it == chans_.end()) {
    it = chans_.emplace(channel, ChannelEntry()).first;
    if (!conn_.subscribe(channel)) {
      chans_.erase(it);
      return AddResult::unavailable;
    }
    it->second.name = &it->first;
    it->second.gen = ++next_gen_;
  }
  ChannelEntry& e = it->second;
  if (e.empty() && e.subscribed && idle_count_ > 0) idle_count_--;
  link->prev = nullptr;
  link->next = e.head;
  if (e.head) e.head->prev = link;
  e.head = link;
  link->chan = &e;
  return e.subscribed && !e.seed_gate ? AddResult::confirmed : AddResult::pending;
}

void ChannelRegistry::remove(HubLink* link) noexcept {
  if (link->chan == nullptr) return;
  ChannelEntry& e = *static_cast<ChannelEntry*>(link->chan);
  if (link->prev) link->prev->next = link->next;
  else e.head = link->next;
  if (link->next) link->next->prev = link->prev;
  link->prev = link->next = nullptr;
  link->chan = nullptr;
  if (!e.empty()) return;
  // Not subscribed yet: decided when the confirmation arrives.
  if (e.subscribed) {
    became_idle(e);
    if (idle_count_ > kMaxIdle) unsubscribe(e);  // too many lingering channels: this one goes at once
  }
}

void ChannelRegistry::became_idle(ChannelEntry& e) noexcept {
  e.idle_since_ms = now_ms();
  idle_count_++;
}

// Unsubscribes lingering `e` and forgets it (its mirror with it). When the connection cannot
// send, `e` stays and lingers on.
void ChannelRegistry::unsubscribe(ChannelEntry& e) noexcept {
  if (!conn_.unsubscribe(*e.name)) return;
  idle_count_--;
  gauge(-1);
  chans_.erase(*e.name);
}

const std::string& ChannelRegistry::channel_of(const HubLink& link) const noexcept {
  static const std::string none;
  return link.chan ? *static_cast<const ChannelEntry*>(link.chan)->name : none;
}

ChannelEntry* ChannelRegistry::find(const std::string& channel) noexcept {
  auto it = chans_.find(channel);
  return it == chans_.end() ? nullptr : &it->second;
}

ChannelMirror::Decision ChannelRegistry::decide(const std::string& channel, uint64_t last,
                                                const proto::Message** msg) noexcept {
  ChannelEntry* e = find(channel);
  if (e == nullptr || !e->subscribed || driver_ == nullptr) return ChannelMirror::Decision::unknown;
  return driver_->decide(*e, last, msg);
}

ChannelMirror::Decision ChannelRegistry::decide(const HubLink& link, uint64_t last, const proto::Message** msg) noexcept {
  auto* e = static_cast<ChannelEntry*>(link.chan);
  if (e == nullptr || !e->subscribed || driver_ == nullptr) return ChannelMirror::Decision::unknown;
  return driver_->decide(*e, last, msg);
}

void ChannelRegistry::tell_head(ChannelEntry& e, uint64_t n) noexcept {
  for (HubLink* l = e.head; l; l = l->next) l->listener->on_redis_head(l->idx, n);
}

void ChannelRegistry::release(ChannelEntry& e) noexcept {
  if (!e.seed_gate) return;
  e.seed_gate = false;
  for (HubLink* l = e.head; l; l = l->next) l->listener->on_subscribed(l->idx);
}

void ChannelRegistry::on_subscribed(const std::string& channel) noexcept {
  ChannelEntry* e = find(channel);
  if (e == nullptr || e->subscribed) return;
  e->subscribed = true;
  gauge(+1);
  // The seed read must start after the subscription is confirmed. The listeners hear
  // "subscribed" only when it is back (or could not be sent): polls that came together
  // (a fan-out's thousands, a front page's hundreds of channels) then decide from the
  // mirror instead of each reading Redis for the same channel.
  e->seed_gate = driver_ != nullptr && driver_->first_seed(*e);
  if (e->empty()) {
    became_idle(*e);
    return;
  }
  if (!e->seed_gate)
    for (HubLink* l = e->head; l; l = l->next) l->listener->on_subscribed(l->idx);
}

void ChannelRegistry::on_message(const std::string& channel, const char* data, size_t len) noexcept {
  ChannelEntry* e = find(channel);
  if (e == nullptr) return;  // unsubscribed, its UNSUBSCRIBE still in flight
  std::shared_ptr<SharedMessage> shared;
  try {
    shared = std::make_shared<SharedMessage>();
    shared->msg.json.assign(data, len);
  } catch (...) {
    // Out of memory: the message cannot be passed on. Polls would miss it silently, so
    // drop the connection: every open poll is answered 503 and retries from its last id.
    conn_.drop("out of memory on a pub/sub message");
    return;
  }
  proto::Message& msg = shared->msg;
  if (!check_message(msg.json, &msg.id, &msg.prev)) {
    metrics::get().invalid_messages.fetch_add(1, std::memory_order_relaxed);
    RT_LOG(warn, "invalid message on pub/sub, skipped").kv("channel", channel).kv("message", msg.json.substr(0, 200));
    return;
  }
  if (driver_) driver_->on_message(*e, msg);  // before the listeners: a poll woken now sees the same N
  SharedMessagePtr ptr(std::move(shared));
  for (HubLink* l = e->head; l; l = l->next) l->listener->on_message(l->idx, ptr);
}

void ChannelRegistry::on_lost() noexcept {
  idle_count_ = 0;
  std::vector<HubListener*> lost;
  for (auto& kv : chans_) {
    if (kv.second.subscribed) gauge(-1);
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

void ChannelRegistry::on_channel_lost(const std::string& channel) noexcept {
  auto it = chans_.find(channel);
  if (it == chans_.end()) return;
  ChannelEntry& e = it->second;
  if (e.subscribed) {
    gauge(-1);
    if (e.empty() && idle_count_ > 0) idle_count_--;  // it was lingering
  }
  std::vector<HubListener*> lost;
  try {
    for (HubLink* l = e.head; l; l = l->next) lost.push_back(l->listener);
  } catch (...) {
    // Out of memory: these listeners cannot be told; fail every poll instead (never leave
    // one waiting on a channel whose messages go elsewhere now).
    on_lost();
    return;
  }
  for (HubLink* l = e.head; l; l = l->next) l->chan = nullptr;  // the entry is about to go
  chans_.erase(it);
  std::sort(lost.begin(), lost.end());
  lost.erase(std::unique(lost.begin(), lost.end()), lost.end());
  if (!lost.empty()) RT_LOG(info, "channel's subscription lost, failing its polls").kv("channel", channel).kv("polls", lost.size());
  for (HubListener* l : lost) l->on_hub_lost();
}

void ChannelRegistry::on_sweep(evutil_socket_t, short, void* arg) noexcept {
  static_cast<ChannelRegistry*>(arg)->sweep();
}

// Every kSweepMs: the mirrors' seeds and verifications, then unsubscribe the channels that
// have lingered unused long enough (full scans).
void ChannelRegistry::sweep() noexcept {
  if (!conn_.connected()) return;
  uint64_t now = now_ms();
  if (driver_) driver_->sweep(now);
  if (idle_count_ == 0) return;
  std::vector<std::string> expired;
  try {
    for (auto& kv : chans_) {
      const ChannelEntry& e = kv.second;
      if (e.subscribed && e.empty() && now - e.idle_since_ms >= kLingerMs) expired.push_back(kv.first);
    }
  } catch (...) {  // out of memory: the rest next time
  }
  for (const auto& name : expired) {
    ChannelEntry* e = find(name);
    size_t before = chans_.size();
    if (e) unsubscribe(*e);
    if (chans_.size() == before) break;  // not sent: the connection is failing
  }
}

}  // namespace rt
