#include "cluster_pubsub.hpp"

#include <algorithm>
#include <cstring>

#include "log.hpp"
#include "metrics.hpp"
#include "protocol/protocol.hpp"

namespace rt {

namespace {
constexpr uint64_t kTickMs = 100;  // retired shards freed, sentinels (re)subscribed
}  // namespace

struct ClusterPubSub::Shard {
  cluster::NodeAddr addr;
  std::unique_ptr<ShardSubscriber> sub;
  std::string sentinel;        // wire name of this shard's sentinel channel ("" = none yet)
  uint16_t sentinel_slot = 0;
  bool sentinel_pending = false;    // its SSUBSCRIBE is in flight
  bool sentinel_confirmed = false;
  uint64_t fence_seen = 0;     // the highest fence sequence number seen back on this shard
};

// One fence SPUBLISH in flight. Freed in its reply callback (called exactly once).
struct ClusterPubSub::FenceCall {
  ClusterPubSub* owner;
  uint64_t seq;
};

ClusterPubSub::ClusterPubSub(event_base* base, ClusterLinks& links, const RedisAddress& addr, const proto::Keys& keys,
                             uint64_t timeout_ms, std::string tag)
    : base_(base), links_(links), user_(addr.user), password_(addr.password), keys_(keys), timeout_ms_(timeout_ms),
      tag_(std::move(tag)) {
  deferred_ev_.reset(event_new(base_, -1, EV_PERSIST, on_deferred, this));
  fence_ev_.reset(event_new(base_, -1, 0, on_fence_send, this));
  timeval tv = ms_to_tv(kTickMs);
  event_add(deferred_ev_.get(), &tv);
}

ClusterPubSub::~ClusterPubSub() {
  stopped_ = true;
  sink_ = nullptr;
  shards_.clear();
  retired_.clear();
}

ClusterPubSub::Shard* ClusterPubSub::shard_of(const ShardSubscriber& s) noexcept {
  for (auto& sh : shards_)
    if (sh->sub.get() == &s) return sh.get();
  return nullptr;  // retired
}

ClusterPubSub::Shard* ClusterPubSub::owner_shard(const std::string& channel) noexcept {
  const cluster::NodeAddr* m = links_.map().master_of(cluster::key_slot(keys_.pubsub(channel)));
  if (m == nullptr) return nullptr;
  for (auto& sh : shards_)
    if (sh->addr == *m) return sh.get();
  return nullptr;
}

bool ClusterPubSub::connected() const noexcept {
  for (auto& sh : shards_)
    if (sh->sub->up()) return true;
  return false;
}

bool ClusterPubSub::up() const noexcept {
  if (shards_.empty() || shards_.size() != links_.map().masters.size() || links_.map().uncovered() != 0) return false;
  for (auto& sh : shards_)
    if (!sh->sub->up() || !sh->sentinel_confirmed) return false;
  return true;
}

std::string ClusterPubSub::describe() const {
  size_t up = 0;
  for (auto& sh : shards_) up += sh->sub->up() && sh->sentinel_confirmed ? 1 : 0;
  return std::to_string(up) + " of " + std::to_string(links_.map().masters.size()) + " sharded pub/sub connections up";
}

// --- the masters ------------------------------------------------------------------------------

void ClusterPubSub::on_cluster_map() noexcept {
  if (stopped_) return;
  const cluster::SlotMap& map = links_.map();
  // Shards of nodes that are no masters any more: their channels are lost.
  for (size_t i = 0; i < shards_.size();) {
    Shard& sh = *shards_[i];
    if (std::find(map.masters.begin(), map.masters.end(), sh.addr) != map.masters.end()) {
      i++;
      continue;
    }
    lose_shard(sh);
    sh.sub->shut_down();  // not inside its own callbacks: this is the command side's
    try {
      retired_.push_back(std::move(shards_[i]));
    } catch (...) {
      shards_[i].reset();  // freed here: it is shut down, no callback of it is running
    }
    shards_.erase(shards_.begin() + long(i));
  }
  for (const auto& m : map.masters) {
    bool have = false;
    for (auto& sh : shards_) have = have || sh->addr == m;
    if (have) continue;
    try {
      auto sh = std::make_unique<Shard>();
      sh->addr = m;
      sh->fence_seen = fence_seq_;  // fences asked for before concern its channels not
      sh->sub = std::make_unique<ShardSubscriber>(base_, m, user_, password_, timeout_ms_,
                                                  tag_ + "/spubsub/" + m.text(),
                                                  static_cast<ShardSubscriber::Listener*>(this));
      sh->sub->start();
      shards_.push_back(std::move(sh));
    } catch (...) {
    }
  }
  // Channels whose slot another master serves now: lost (the server also says so, with a
  // sunsubscribe, when the slot moved away; not when its node died). Their subscription on
  // the old node, if any, is dropped.
  std::vector<std::string> moved;
  for (auto& kv : wire_)
    if (owner_shard(kv.first) != kv.second.shard) moved.push_back(kv.first);
  for (const auto& ch : moved) {
    Shard* old = wire_[ch].shard;
    bool live = false;
    for (auto& sh : shards_) live = live || sh.get() == old;
    if (live && old->sub->up()) old->sub->sunsubscribe(keys_.pubsub(ch));
    lose(ch);
  }
  // A migration that ended (the map names another owner): its channels subscribe there.
  for (auto it = migrating_.begin(); it != migrating_.end();) {
    const cluster::NodeAddr* m = map.master_of(it->first);
    if (m != nullptr && !(*m == it->second.owner)) it = migrating_.erase(it);
    else ++it;
  }
  // Sentinels whose slot moved away.
  for (auto& sh : shards_) {
    const cluster::NodeAddr* m = sh->sentinel.empty() ? nullptr : map.master_of(sh->sentinel_slot);
    if (!sh->sentinel.empty() && (m == nullptr || !(*m == sh->addr))) {
      if (sh->sub->up() && sh->sentinel_confirmed) sh->sub->sunsubscribe(sh->sentinel);
      sh->sentinel.clear();
      sh->sentinel_confirmed = false;
      sh->sentinel_pending = false;
    }
  }
}

void ClusterPubSub::pick_sentinel(Shard& sh) noexcept {
  // A name (not a valid rt channel name: '!') whose slot this master serves. A master
  // serves about 1/N of the slots: a few tries find one.
  const cluster::SlotMap& map = links_.map();
  for (int k = 0; k < 100000; k++) {
    std::string wire = keys_.pubsub("!rt-hub." + tag_ + "." + std::to_string(k));
    uint16_t slot = cluster::key_slot(wire);
    const cluster::NodeAddr* m = map.master_of(slot);
    if (m != nullptr && *m == sh.addr) {
      sh.sentinel = std::move(wire);
      sh.sentinel_slot = slot;
      return;
    }
  }
}

void ClusterPubSub::on_deferred(evutil_socket_t, short, void* arg) noexcept {
  auto* self = static_cast<ClusterPubSub*>(arg);
  self->retired_.clear();
  if (self->stopped_) return;
  if (self->drop_reason_ != nullptr) {
    const char* why = self->drop_reason_;
    self->drop_reason_ = nullptr;
    for (auto& sh : self->shards_) sh->sub->kill(why);
    self->wire_.clear();
    if (self->sink_) self->sink_->on_lost();
    return;
  }
  for (auto& sh : self->shards_) {
    if (!sh->sub->up() || sh->sentinel_pending || sh->sentinel_confirmed) continue;
    if (sh->sentinel.empty()) self->pick_sentinel(*sh);
    if (!sh->sentinel.empty() && sh->sub->ssubscribe(sh->sentinel)) sh->sentinel_pending = true;
  }
}

void ClusterPubSub::on_shard_up(ShardSubscriber& s) noexcept {
  Shard* sh = shard_of(s);
  if (sh == nullptr) return;
  sh->sentinel_confirmed = false;
  sh->sentinel_pending = false;
  if (sh->sentinel.empty()) pick_sentinel(*sh);
  if (!sh->sentinel.empty() && s.ssubscribe(sh->sentinel)) sh->sentinel_pending = true;
}

void ClusterPubSub::on_shard_down(ShardSubscriber& s) noexcept {
  Shard* sh = shard_of(s);
  if (sh == nullptr) return;
  sh->sentinel_confirmed = false;
  sh->sentinel_pending = false;
  fences_done(UINT64_MAX, false);
  lose_shard(*sh);
  links_.refresh();  // a failover?
}

// --- channels ---------------------------------------------------------------------------------

void ClusterPubSub::lose(const std::string& channel) noexcept {
  auto it = wire_.find(channel);
  if (it == wire_.end()) return;
  // A channel the sink unsubscribed (leaving) is forgotten silently: the sink forgot it.
  bool tell = it->second.state != Wire::leaving;
  wire_.erase(it);
  if (tell && sink_) sink_->on_channel_lost(channel);
}

void ClusterPubSub::lose_shard(Shard& sh) noexcept {
  std::vector<std::string> gone;
  for (auto& kv : wire_)
    if (kv.second.shard == &sh) gone.push_back(kv.first);
  if (!gone.empty())
    RT_LOG(warn, "sharded pub/sub: channels lost with their connection").kv("node", sh.addr.text()).kv("channels", gone.size());
  for (const auto& ch : gone) lose(ch);
}

bool ClusterPubSub::send_sub(Shard& sh, const std::string& channel) noexcept {
  try {
    return sh.sub->ssubscribe(keys_.pubsub(channel));
  } catch (...) {
    return false;
  }
}

void ClusterPubSub::on_cluster_ask(uint16_t slot) noexcept {
  if (stopped_) return;
  uint64_t now = now_ms();
  bool was_marked = false;
  try {
    const cluster::NodeAddr* owner = links_.map().master_of(slot);
    auto it = migrating_.find(slot);
    was_marked = it != migrating_.end() && it->second.until_ms > now;
    migrating_[slot] = Migrating{now + kMigratingMs, owner ? *owner : cluster::NodeAddr()};
  } catch (...) {
  }
  if (was_marked) return;  // its channels are gone already
  std::vector<std::string> gone;
  try {
    for (auto& kv : wire_)
      if (kv.second.state != Wire::leaving && cluster::key_slot(keys_.pubsub(kv.first)) == slot) gone.push_back(kv.first);
  } catch (...) {
  }
  if (!gone.empty())
    RT_LOG(info, "slot migrating (ASK): its channels must subscribe again").kv("slot", slot).kv("channels", gone.size());
  for (const auto& ch : gone) lose(ch);
}

bool ClusterPubSub::subscribe(const std::string& channel) noexcept {
  if (stopped_) return false;
  if (!migrating_.empty()) {
    auto m = migrating_.find(cluster::key_slot(keys_.pubsub(channel)));
    if (m != migrating_.end()) {
      if (m->second.until_ms > now_ms()) return false;  // being migrated: publishes may run elsewhere
      migrating_.erase(m);
    }
  }
  auto it = wire_.find(channel);
  if (it != wire_.end()) {
    // Still leaving: subscribe again once the SUNSUBSCRIBE is answered (never both in flight).
    if (it->second.state == Wire::leaving) it->second.state = Wire::resubscribe;
    return true;
  }
  Shard* sh = owner_shard(channel);
  if (sh == nullptr || !sh->sub->up() || !send_sub(*sh, channel)) return false;
  try {
    wire_.emplace(channel, WireChan{sh, Wire::subscribing});
  } catch (...) {
    sh->sub->sunsubscribe(keys_.pubsub(channel));
    return false;
  }
  return true;
}

bool ClusterPubSub::unsubscribe(const std::string& channel) noexcept {
  auto it = wire_.find(channel);
  if (it == wire_.end() || it->second.state != Wire::subscribed) return true;
  bool sent = false;
  try {
    sent = it->second.shard->sub->sunsubscribe(keys_.pubsub(channel));
  } catch (...) {
  }
  if (!sent) return false;
  it->second.state = Wire::leaving;
  return true;
}

void ClusterPubSub::on_ssubscribed(ShardSubscriber& s, std::string_view wire) noexcept {
  Shard* sh = shard_of(s);
  if (sh == nullptr) return;
  if (wire == sh->sentinel) {
    sh->sentinel_pending = false;
    sh->sentinel_confirmed = true;
    RT_LOG(debug, "sharded pub/sub ready").kv("link", s.name());
    return;
  }
  std::string channel;
  if (!keys_.channel_of_pubsub(wire, &channel)) return;
  auto it = wire_.find(channel);
  if (it == wire_.end() || it->second.shard != sh) {
    s.sunsubscribe(wire);  // a confirmation for a channel given up meanwhile: not wanted here
    return;
  }
  if (it->second.state != Wire::subscribing) return;
  it->second.state = Wire::subscribed;
  if (sink_) sink_->on_subscribed(channel);
}

void ClusterPubSub::on_ssubscribe_failed(ShardSubscriber& s, std::string_view wire, std::string_view error) noexcept {
  Shard* sh = shard_of(s);
  if (sh == nullptr) return;
  RT_LOG(info, "SSUBSCRIBE refused").kv("link", s.name()).kv("error", std::string(error));
  // The node does not serve the slot (MOVED): the map learns it at once.
  try {
    redisReply fake{};
    std::string e(error);
    fake.type = REDIS_REPLY_ERROR;
    fake.str = e.data();
    fake.len = e.size();
    cluster::Redirect rd = cluster::classify(&fake, sh->addr.host);
    if (rd.kind == cluster::ErrorKind::moved) links_.learn_moved(rd.slot, rd.to);
    else links_.refresh();
  } catch (...) {
  }
  if (wire == sh->sentinel) {
    sh->sentinel_pending = false;
    sh->sentinel.clear();  // picked again from the next map
    return;
  }
  std::string channel;
  if (!keys_.channel_of_pubsub(wire, &channel)) return;
  auto it = wire_.find(channel);
  if (it == wire_.end() || it->second.shard != sh) return;
  // Once more on the master the map names now, if it is another one and connected; only
  // once (nodes that disagree for a moment would send it back and forth).
  Shard* now = owner_shard(channel);
  if (!it->second.redirected && now != nullptr && now != sh && it->second.state == Wire::subscribing &&
      now->sub->up() && send_sub(*now, channel)) {
    it->second.shard = now;
    it->second.redirected = true;
    return;
  }
  lose(channel);
}

void ClusterPubSub::on_sunsubscribed(ShardSubscriber& s, std::string_view wire, bool by_server) noexcept {
  Shard* sh = shard_of(s);
  if (sh == nullptr) return;
  if (wire == sh->sentinel) {
    if (by_server) {
      // Its slot moved away: a new sentinel from the next tick.
      sh->sentinel.clear();
      sh->sentinel_confirmed = false;
      sh->sentinel_pending = false;
      fences_done(UINT64_MAX, false);
      links_.refresh();
    }
    return;
  }
  std::string channel;
  if (!keys_.channel_of_pubsub(wire, &channel)) return;
  auto it = wire_.find(channel);
  if (it == wire_.end() || it->second.shard != sh) return;
  if (by_server) {
    RT_LOG(info, "sharded channel unsubscribed by Redis (slot moved)").kv("channel", channel).kv("node", sh->addr.text());
    links_.refresh();
    lose(channel);
    return;
  }
  if (it->second.state == Wire::leaving) {
    wire_.erase(it);
  } else if (it->second.state == Wire::resubscribe) {
    Shard* now = owner_shard(channel);
    if (now != nullptr && now->sub->up() && send_sub(*now, channel)) {
      it->second.shard = now;
      it->second.state = Wire::subscribing;
      it->second.redirected = false;
    } else {
      lose(channel);
    }
  }
}

void ClusterPubSub::on_smessage(ShardSubscriber& s, std::string_view wire, std::string_view message) noexcept {
  Shard* sh = shard_of(s);
  if (sh == nullptr) return;
  if (wire == sh->sentinel) {
    uint64_t seq = 0;
    if (!message.empty() && message[0] == 'f' && proto::parse_id(message.substr(1), &seq) && seq > sh->fence_seen) {
      sh->fence_seen = seq;
      fence_progress();
    }
    return;
  }
  std::string channel;
  if (!keys_.channel_of_pubsub(wire, &channel)) return;
  auto it = wire_.find(channel);
  if (it == wire_.end() || it->second.shard != sh || it->second.state == Wire::subscribing) return;
  if (sink_) sink_->on_message(channel, message.data(), message.size());
}

void ClusterPubSub::drop(const char* reason) noexcept {
  if (drop_reason_ == nullptr) drop_reason_ = reason;
  event_active(deferred_ev_.get(), EV_TIMEOUT, 1);
}

void ClusterPubSub::shut_down() noexcept {
  fences_done(UINT64_MAX, false);
  for (auto& sh : shards_) sh->sub->shut_down();  // their channels are lost (sink told)
  stopped_ = true;
  event_del(deferred_ev_.get());
}

// --- fences -----------------------------------------------------------------------------------

bool ClusterPubSub::fence(FenceWaiter* w) {
  if (stopped_ || !up()) return false;
  if (!fence_scheduled_) {
    fence_scheduled_ = true;
    fence_seq_++;
    event_active(fence_ev_.get(), EV_TIMEOUT, 1);
  }
  fence_waiters_.emplace_back(w, fence_seq_);
  return true;
}

void ClusterPubSub::cancel_fence(FenceWaiter* w) noexcept {
  for (size_t i = 0; i < fence_waiters_.size();) {
    if (fence_waiters_[i].first == w) {
      fence_waiters_[i] = fence_waiters_.back();
      fence_waiters_.pop_back();
    } else {
      i++;
    }
  }
}

void ClusterPubSub::on_fence_send(evutil_socket_t, short, void* arg) noexcept {
  auto* self = static_cast<ClusterPubSub*>(arg);
  self->fence_scheduled_ = false;
  uint64_t seq = self->fence_seq_;
  std::string payload = "f" + std::to_string(seq);
  // One SPUBLISH per shard, on its master (routed by the sentinel's slot).
  for (auto& sh : self->shards_) {
    if (!sh->sentinel_confirmed) {
      self->fences_done(seq, false);
      return;
    }
  }
  for (auto& sh : self->shards_) {
    const char* argv[] = {"SPUBLISH", sh->sentinel.c_str(), payload.c_str()};
    size_t lens[] = {8, sh->sentinel.size(), payload.size()};
    auto* call = new (std::nothrow) FenceCall{self, seq};
    if (call == nullptr || !self->links_.command(sh->sentinel_slot, on_fence_published, call, 3, argv, lens)) {
      delete call;
      self->fences_done(seq, false);
      return;
    }
  }
}

void ClusterPubSub::on_fence_published(redisReply* reply, void* priv) noexcept {
  auto* call = static_cast<FenceCall*>(priv);
  // Our connection must be among the receivers; otherwise the fence never comes back.
  if (reply == nullptr || reply->type != REDIS_REPLY_INTEGER || reply->integer < 1)
    call->owner->fences_done(call->seq, false);
  delete call;
}

void ClusterPubSub::fence_progress() noexcept {
  uint64_t low = UINT64_MAX;
  for (auto& sh : shards_) low = std::min(low, sh->fence_seen);
  if (low != UINT64_MAX && low > 0) fences_done(low, true);
}

void ClusterPubSub::fences_done(uint64_t up_to_seq, bool ok) noexcept {
  std::vector<FenceWaiter*> done;
  for (size_t i = 0; i < fence_waiters_.size();) {
    if (fence_waiters_[i].second <= up_to_seq) {
      done.push_back(fence_waiters_[i].first);
      fence_waiters_[i] = fence_waiters_.back();
      fence_waiters_.pop_back();
    } else {
      i++;
    }
  }
  for (FenceWaiter* w : done) w->on_fence(ok);
}

}  // namespace rt
