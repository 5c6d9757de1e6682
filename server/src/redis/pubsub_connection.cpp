#include "pubsub_connection.hpp"

#include <cstring>

#include "log.hpp"
#include "metrics.hpp"
#include "mirror_timing.hpp"
#include "protocol/protocol.hpp"

namespace rt {

namespace {
constexpr uint64_t kTickMs = timing::kHubTickMs;
using timing::kPingEveryMs;

// One fence PUBLISH in flight. Freed in its reply callback (called exactly once).
struct FenceCall {
  StandalonePubSub* conn;
  uint64_t seq;
};
}  // namespace

StandalonePubSub::StandalonePubSub(event_base* base, RedisLink& link, RedisLink* command_link,
                                   const proto::Keys& keys, uint64_t timeout_ms, const std::string& tag)
    : link_(link), command_link_(command_link), keys_(keys), timeout_ms_(timeout_ms) {
  // Not a valid channel name ('!'), so no client channel can collide with it.
  sentinel_ = keys_.pubsub("!rt-hub." + tag);
  tick_ev_.reset(event_new(base, -1, EV_PERSIST, on_tick, this));
  fence_ev_.reset(event_new(base, -1, 0, on_fence_send, this));
  timeval tv = ms_to_tv(kTickMs);
  event_add(tick_ev_.get(), &tv);
  link_.set_listener(this);
}

// Sends `verb wire_name` on the raw context. The reply (a subscribe or unsubscribe
// confirmation, and for SUBSCRIBE every later message of the channel) reaches on_sub_reply.
bool StandalonePubSub::send(const char* verb, const std::string& wire_name) noexcept {
  redisAsyncContext* ac = link_.context();
  if (ac == nullptr) return false;
  const char* argv[] = {verb, wire_name.c_str()};
  size_t lens[] = {strlen(verb), wire_name.size()};
  if (redisAsyncCommandArgv(ac, on_sub_reply, this, 2, argv, lens) != REDIS_OK) return false;
  try {
    in_flight_.push_back(now_ms());
  } catch (...) {
    drop("out of memory");  // its reply could not be timed: start over
  }
  return true;
}

bool StandalonePubSub::subscribe(const std::string& channel) noexcept {
  if (!link_.up()) return false;
  try {
    auto it = wire_.find(channel);
    if (it != wire_.end()) {
      // Still leaving (the caller forgot it already): SUBSCRIBE again once its UNSUBSCRIBE
      // reply is back, never both in flight.
      if (it->second == Wire::leaving) it->second = Wire::resubscribe;
      return it->second == Wire::resubscribe;
    }
    std::string name = keys_.pubsub(channel);
    it = wire_.emplace(channel, Wire::subscribing).first;
    if (send("SUBSCRIBE", name)) return true;
    wire_.erase(it);
    return false;
  } catch (...) {
    return false;
  }
}

bool StandalonePubSub::unsubscribe(const std::string& channel) noexcept {
  auto it = wire_.find(channel);
  if (it == wire_.end() || it->second != Wire::subscribed) return false;
  try {
    if (!send("UNSUBSCRIBE", keys_.pubsub(channel))) return false;
  } catch (...) {
    return false;
  }
  it->second = Wire::leaving;
  return true;
}

void StandalonePubSub::drop(const char* reason) noexcept {
  if (drop_reason_ == nullptr) drop_reason_ = reason;
}

void StandalonePubSub::on_sub_reply(redisAsyncContext* ac, void* reply, void* priv) noexcept {
  if (reply == nullptr || ac->data == nullptr) return;  // connection going away
  static_cast<StandalonePubSub*>(priv)->handle_reply(static_cast<redisReply*>(reply));
}

void StandalonePubSub::handle_reply(redisReply* r) noexcept {
  last_rx_ms_ = now_ms();
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 || r->element[0]->type != REDIS_REPLY_STRING ||
      r->element[1]->type != REDIS_REPLY_STRING)
    return;
  std::string_view type(r->element[0]->str, r->element[0]->len);
  std::string_view name(r->element[1]->str, r->element[1]->len);
  bool is_sub = type == "subscribe", is_unsub = type == "unsubscribe";
  if ((is_sub || is_unsub) && !in_flight_.empty()) in_flight_.pop_front();
  if (name == sentinel_) {
    handle_sentinel(type, r);
    return;
  }
  std::string channel;
  try {
    if (!keys_.channel_of_pubsub(name, &channel)) return;
  } catch (...) {
    drop("out of memory");  // a message might be lost: start over
    return;
  }
  auto it = wire_.find(channel);
  if (it == wire_.end()) return;

  if (type == "message") {
    metrics::get().pubsub_messages.fetch_add(1, std::memory_order_relaxed);
    if (r->element[2]->type != REDIS_REPLY_STRING) return;
    if (sink_) sink_->on_message(channel, r->element[2]->str, r->element[2]->len);
  } else if (is_sub) {
    if (it->second != Wire::subscribing) return;
    it->second = Wire::subscribed;
    if (sink_) sink_->on_subscribed(channel);
  } else if (is_unsub) {
    if (it->second == Wire::leaving) {
      wire_.erase(it);
    } else if (it->second == Wire::resubscribe) {
      // Wanted again while it was leaving: subscribe anew.
      bool sent = false;
      try {
        sent = send("SUBSCRIBE", keys_.pubsub(channel));
      } catch (...) {
      }
      it->second = Wire::subscribing;
      if (!sent) drop("pub/sub send failed");
    }
  }
}

void StandalonePubSub::handle_sentinel(std::string_view type, redisReply* r) noexcept {
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
  } else if (type == "subscribe") {
    sentinel_confirmed_ = true;
    RT_LOG(debug, "pub/sub hub ready").kv("link", link_.name());
  }
}

void StandalonePubSub::on_tick(evutil_socket_t, short, void* arg) noexcept {
  static_cast<StandalonePubSub*>(arg)->tick();
}

void StandalonePubSub::on_ping_published(redisReply* reply, void* priv) noexcept {
  auto* self = static_cast<StandalonePubSub*>(priv);  // outlives its command link (see the constructor)
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

void StandalonePubSub::tick() noexcept {
  if (!link_.up()) return;
  uint64_t now = now_ms();
  if (drop_reason_ != nullptr || (!in_flight_.empty() && now - in_flight_.front() > timeout_ms_)) {
    const char* reason = drop_reason_ ? drop_reason_ : "pub/sub timeout";
    drop_reason_ = nullptr;
    link_.kill(reason);  // -> on_link_down
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
  if (command_link_ && sentinel_confirmed_ && !ping_in_flight_ && ping_awaited_ms_ == 0 &&
      now - last_ping_ms_ >= kPingEveryMs) {
    std::string seq = std::to_string(++ping_seq_);
    const char* argv[] = {"PUBLISH", sentinel_.c_str(), seq.c_str()};
    size_t lens[] = {7, sentinel_.size(), seq.size()};
    if (command_link_->command(on_ping_published, this, 3, argv, lens)) {
      ping_in_flight_ = true;
      ping_epoch_ = epoch_;
      last_ping_ms_ = now;
    }
  }
}

// --- fences -----------------------------------------------------------------------------

bool StandalonePubSub::fence(FenceWaiter* w) {
  if (!up() || command_link_ == nullptr || !command_link_->up()) return false;
  if (!fence_scheduled_) {
    fence_scheduled_ = true;
    fence_seq_++;
    event_active(fence_ev_.get(), EV_TIMEOUT, 1);
  }
  fence_waiters_.emplace_back(w, fence_seq_);
  return true;
}

void StandalonePubSub::cancel_fence(FenceWaiter* w) noexcept {
  for (size_t i = 0; i < fence_waiters_.size();) {
    if (fence_waiters_[i].first == w) {
      fence_waiters_[i] = fence_waiters_.back();
      fence_waiters_.pop_back();
    } else {
      i++;
    }
  }
}

void StandalonePubSub::on_fence_send(evutil_socket_t, short, void* arg) noexcept {
  auto* self = static_cast<StandalonePubSub*>(arg);
  self->fence_scheduled_ = false;
  uint64_t seq = self->fence_seq_;
  std::string payload = "f" + std::to_string(seq);
  const char* argv[] = {"PUBLISH", self->sentinel_.c_str(), payload.c_str()};
  size_t lens[] = {7, self->sentinel_.size(), payload.size()};
  auto* call = new (std::nothrow) FenceCall{self, seq};
  if (call == nullptr || self->command_link_ == nullptr ||
      !self->command_link_->command(on_fence_published, call, 3, argv, lens)) {
    delete call;
    self->fences_done(seq, false);
  }
}

void StandalonePubSub::on_fence_published(redisReply* reply, void* priv) noexcept {
  auto* call = static_cast<FenceCall*>(priv);
  // Redis ran the PUBLISH and our pub/sub connection was among its receivers: the message
  // is on its way (it may even be here already). Otherwise it will never come.
  if (reply == nullptr || reply->type != REDIS_REPLY_INTEGER || reply->integer < 1)
    call->conn->fences_done(call->seq, false);
  delete call;
}

// Calls on_fence(ok) of every waiter of a sequence number up to `up_to_seq`, after taking
// them off the list (a waiter may ask for a new fence from its callback).
void StandalonePubSub::fences_done(uint64_t up_to_seq, bool ok) noexcept {
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

// --- connection state -------------------------------------------------------------------

void StandalonePubSub::on_link_up() noexcept {
  epoch_++;
  sentinel_confirmed_ = false;
  ping_awaited_ms_ = 0;
  drop_reason_ = nullptr;
  in_flight_.clear();
  if (!send("SUBSCRIBE", sentinel_)) drop("pub/sub send failed");
}

void StandalonePubSub::on_link_down() noexcept {
  fences_done(UINT64_MAX, false);
  epoch_++;
  sentinel_confirmed_ = false;
  ping_awaited_ms_ = 0;
  in_flight_.clear();
  wire_.clear();
  if (sink_) sink_->on_lost();
}

}  // namespace rt
